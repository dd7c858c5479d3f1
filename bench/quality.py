"""Quality run of issue #6: train a config, then report ms/iter per pass, peak memory,
validation PSNR and the Chamfer-L1 distance to the reference mesh.

    python bench/quality.py configs/bob.json [--key value ...]

Chamfer-L1: mean Euclidean distance from 100k area-weighted surface samples of each
mesh to the nearest sample of the other, summed over both directions.
"""

import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import nvdrec  # noqa: E402
from nvdrec.cli import _overrides  # noqa: E402
from nvdrec.io import load_mesh  # noqa: E402
from nvdrec.train.trainer import Trainer  # noqa: E402


def surface_samples(mesh, n, gen):
    v = mesh.v_pos.double()
    f = mesh.t_pos_idx.long()
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
    out = []
    for i in range(0, len(a), chunk):
        out.append(torch.cdist(a[i : i + chunk], b).min(dim=1).values)
    return torch.cat(out)


def chamfer_l1(m1, m2, n=100_000, device="cpu"):
    g = torch.Generator().manual_seed(0)
    p1 = surface_samples(m1, n, g).float().to(device)
    p2 = surface_samples(m2, n, g).float().to(device)
    return float(nearest(p1, p2).mean() + nearest(p2, p1).mean())


def main():
    cfg = nvdrec.load_config(sys.argv[1], overrides=_overrides(sys.argv[2:]))
    trainer = Trainer(cfg)
    result = trainer.fit()
    ours = load_mesh(Path(result["out_dir"]) / "mesh" / "mesh.obj")
    ref = load_mesh(cfg.ref_mesh) if cfg.ref_mesh else trainer.dataset.mesh
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    result["chamfer_l1"] = chamfer_l1(ours, ref, device=dev)
    result["device"] = torch.cuda.get_device_name() if dev == "cuda" else "cpu"
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
