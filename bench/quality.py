"""Result quality of a config: train it (one or several seeds) and print, per seed and as
the median over seeds, the validation PSNR/SSIM after pass 1 and at the end, the
Chamfer-L1 distance of both meshes to the reference mesh, triangle counts, median ms per
iteration of each pass and the peak GPU memory.

    python bench/quality.py configs/bob.json [--seeds 0 1 2] [--json FILE] [--key value ...]

Validation uses the trainer's protocol, nvdiffrec's: for a reference mesh its 50 views
from 0.4 rad above; for an image folder every view of the validation split (all test
frames of a NeRF folder, every photo of an LLFF/COLMAP capture); white or black
background as configured, sRGB, per-view PSNR averaged. So the numbers compare with
nvdiffrec's ``metrics.txt`` of the same views. Clean solids: the share of the final
mesh's faces that no view of a dense orbit (256 directions around it; 64 on a CPU) sees,
and its interior components (no face seen). Chamfer-L1: mean Euclidean distance from 100k
area-weighted surface samples of each mesh to the nearest sample of the other, summed
over both directions (samples drawn with a fixed seed).
"""

import argparse
import json
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import nvdrec  # noqa: E402
from nvdrec.cli import _overrides  # noqa: E402
from nvdrec.geometry import connected_components, hidden_faces  # noqa: E402
from nvdrec.io import load_mesh  # noqa: E402
from nvdrec.train.trainer import Trainer  # noqa: E402


def surface_samples(mesh, n, gen):
    """``n`` points [n, 3] (float64) uniformly distributed over the mesh's area."""
    v = mesh.v_pos.double().cpu()
    f = mesh.t_pos_idx.long().cpu()
    a, b, c = v[f[:, 0]], v[f[:, 1]], v[f[:, 2]]
    area = torch.linalg.cross(b - a, c - a).norm(dim=-1)
    idx = torch.multinomial(area / area.sum(), n, replacement=True, generator=gen)
    u, w = (
        torch.rand(n, generator=gen, dtype=torch.float64),
        torch.rand(n, generator=gen, dtype=torch.float64),
    )
    s = torch.sqrt(u)
    return (1 - s)[:, None] * a[idx] + (s * (1 - w))[:, None] * b[idx] + (s * w)[:, None] * c[idx]


def nearest(a, b, chunk=4096):
    """Distance from each row of ``a`` [N, 3] to its nearest row of ``b`` [M, 3]."""
    out = []
    for i in range(0, len(a), chunk):
        out.append(torch.cdist(a[i : i + chunk], b).min(dim=1).values)
    return torch.cat(out)


def chamfer_l1(m1, m2, n=100_000, device="cpu"):
    g = torch.Generator().manual_seed(0)
    p1 = surface_samples(m1, n, g).float().to(device)
    p2 = surface_samples(m2, n, g).float().to(device)
    return float(nearest(p1, p2).mean() + nearest(p2, p1).mean())


def components(mesh) -> int:
    """Connected components of the mesh (faces joined by shared vertices): 1 for a clean
    single surface; floaters and inner shells add components."""
    if mesh.num_triangles == 0:
        return 0
    return int(connected_components(mesh.t_pos_idx, mesh.num_vertices).max()) + 1


def solid(mesh) -> dict:
    """Share of faces hidden from a dense orbit, interior components (hidden_faces; on
    a CPU 64 directions at 256^2, a GPU takes the default 256 at 512^2)."""
    kw = {} if mesh.v_pos.is_cuda else {"views": 64, "resolution": 256}
    hidden, interior = hidden_faces(mesh, **kw)
    return {"hidden_pct": 100.0 * float(hidden.float().mean()), "interior": interior}


def run_one(config, seed, overrides, device):
    cfg = nvdrec.load_config(config, overrides={**overrides, "seed": seed})
    if "out_dir" not in overrides:
        cfg = cfg.replace(out_dir=f"{cfg.out_dir}_seed{seed}")
    trainer = Trainer(cfg, overwrite=True)  # a benchmark replaces its earlier run
    result = trainer.fit()
    out = Path(result["out_dir"])
    ref = load_mesh(cfg.ref_mesh) if cfg.ref_mesh and Path(cfg.ref_mesh).is_file() else None
    row = {"seed": seed}
    for tag, folder in (("pass1", "dmtet_mesh"), ("final", "mesh")):
        mesh = load_mesh(out / folder / "mesh.obj")
        row[f"tris_{tag}"] = mesh.num_triangles
        row[f"parts_{tag}"] = components(mesh)
        if ref is not None:
            row[f"chamfer_{tag}"] = chamfer_l1(mesh, ref, device=device)
        st = solid(mesh.to(device))
        row[f"hidden_pct_{tag}"] = st["hidden_pct"]
        row[f"interior_{tag}"] = st["interior"]
    m1, m2 = result.get("metrics_pass1") or {}, result.get("metrics") or {}
    row.update(
        views=m2.get("views"),
        psnr_pass1=m1.get("psnr"),
        ssim_pass1=m1.get("ssim"),
        psnr_final=m2.get("psnr"),
        ssim_final=m2.get("ssim"),
    )
    for tag, name in (("pass1", "dmtet_pass1"), ("pass2", "mesh_pass")):
        t = result["timing"].get(name, {})
        row[f"ms_{tag}"] = t.get("ms_per_iter_median")
        row[f"mem_gb_{tag}"] = t.get("peak_memory_gb")
    row["seconds"] = result["seconds"]
    row["stages"] = result.get("stages", {})  # seconds outside the iterations (JSON only)
    return row


COLUMNS = [
    ("seed", "{}"),
    ("views", "{}"),
    ("psnr_pass1", "{:.3f}"),
    ("psnr_final", "{:.3f}"),
    ("ssim_pass1", "{:.4f}"),
    ("ssim_final", "{:.4f}"),
    ("chamfer_pass1", "{:.5f}"),
    ("chamfer_final", "{:.5f}"),
    ("tris_final", "{}"),
    ("parts_final", "{}"),
    ("hidden_pct_pass1", "{:.2f}"),
    ("hidden_pct_final", "{:.2f}"),
    ("interior_final", "{}"),
    ("ms_pass1", "{:.1f}"),
    ("ms_pass2", "{:.1f}"),
    ("mem_gb_pass1", "{:.2f}"),
    ("mem_gb_pass2", "{:.2f}"),
    ("seconds", "{:.0f}"),
]


def fmt(v, f):
    return "-" if v is None else f.format(v)


def table(rows):
    lines = [" | ".join(k for k, _ in COLUMNS)]
    for r in rows:
        lines.append(" | ".join(fmt(r.get(k), f) for k, f in COLUMNS))
    return "\n".join(lines)


def median_row(rows):
    out = {"seed": "median"}
    for k, _ in COLUMNS[1:]:
        vals = [r[k] for r in rows if r.get(k) is not None]
        out[k] = statistics.median(vals) if vals else None
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("config")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--json", help="also write the rows as JSON to this file")
    args, rest = ap.parse_known_args(argv)
    overrides = _overrides(rest)
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    card = torch.cuda.get_device_name() if dev == "cuda" else "cpu"
    rows = []
    for seed in args.seeds:
        rows.append(run_one(args.config, seed, overrides, dev))
        print(table(rows[-1:]), flush=True)
    if len(rows) > 1:
        rows.append(median_row(rows))
    print(f"\n{args.config} on {card}, overrides {overrides}\n" + table(rows), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"card": card, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
