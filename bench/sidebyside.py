"""nvdrec against nvdiffrec on one config: the table of docs/benchmarks.md ("Side by side
with nvdiffrec"), from what the two runs left behind.

    python bench/sidebyside.py --anchor-log NVDIFFREC.log --ours RUN_DIR
        [--anchor-wall S] [--ours-wall S] [--anchor-mem FILE] [--ours-mem FILE]
        [--anchor-mesh OBJ] [--ref-mesh OBJ] [--json FILE]

- ``--anchor-log``: nvdiffrec's standard output (``bash .anchor/run.sh CONFIG``). Its
  ``time=`` lines (ms per iteration, means over 10 iterations) give each pass's median.
  The line ``Base mesh has ...`` separates the passes, and each ``MSE, PSNR`` block gives
  the validation PSNR after that pass.
- ``--ours``: nvdrec's run folder (``run.json``, ``dmtet_validate/`` and
  ``validate/metrics.json``).
- ``--*-wall``: each command's wall time in seconds (``/usr/bin/time`` or ``date``).
- ``--*-mem``: ``nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits
  -lms 200`` written during the run (MiB; the largest value is the peak, CUDA context
  included). Sample both systems this way so that their figures compare.
- ``--ref-mesh``: Chamfer-L1 of both final meshes to it (nvdrec's is
  ``RUN_DIR/mesh/mesh.obj``; nvdiffrec's is ``--anchor-mesh``, usually
  ``.anchor/nvdiffrec/out/<out_dir>/mesh/mesh.obj``).

On the device machine, run the two systems one after the other, so that each has the card
to itself. Only a few files of ``$OUT`` come back from a call, so pack the logs into one
archive there.
"""

import argparse
import json
import re
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SPLIT = "Base mesh has"  # nvdiffrec prints it between its passes


def anchor_log(text: str) -> dict:
    """Per-pass median ms/iter, iteration-line counts and validation PSNRs of nvdiffrec's
    log text."""
    lines = text.splitlines()
    cut = next((i for i, line in enumerate(lines) if line.startswith(SPLIT)), len(lines))

    def times(part):
        return [float(m.group(1)) for m in map(re.compile(r"time=([\d.]+) ms").search, part) if m]

    p1, p2 = times(lines[:cut]), times(lines[cut:])
    psnr = [
        float(lines[i + 1].split(",")[1])
        for i, line in enumerate(lines[:-1])
        if line.replace(" ", "").startswith("MSE,PSNR")
    ]
    return {
        "pass1_ms": statistics.median(p1) if p1 else None,
        "pass2_ms": statistics.median(p2) if p2 else None,
        "lines": (len(p1), len(p2)),
        "psnr_pass1": psnr[0] if len(psnr) > 1 else None,
        "psnr_final": psnr[-1] if psnr else None,
        "triangles": _int_after(text, SPLIT),
    }


def _int_after(text: str, marker: str):
    m = re.search(re.escape(marker) + r"\s+(\d+)", text)
    return int(m.group(1)) if m else None


def ours_run(folder: Path) -> dict:
    """The same figures from an nvdrec run folder."""
    run = json.loads((folder / "run.json").read_text())
    t = run["timing"]

    def psnr(sub):
        f = folder / sub / "metrics.json"
        return json.loads(f.read_text())["psnr"] if f.exists() else None

    return {
        "pass1_ms": t["dmtet_pass1"]["ms_per_iter_median"],
        "pass2_ms": t["mesh_pass"]["ms_per_iter_median"] if "mesh_pass" in t else None,
        "psnr_pass1": psnr("dmtet_validate"),
        "psnr_final": psnr("validate"),
        "triangles": run.get("cleanup", {}).get("faces_out"),
        "allocated_gb": max(p["peak_memory_gb"] or 0.0 for p in t.values()),
    }


def geometry(path):
    """The mesh of an OBJ without its materials (a copied OBJ may have lost its MTL)."""
    import tempfile

    from nvdrec.io import load_mesh

    keep = [
        line
        for line in Path(path).read_text().splitlines()
        if not line.startswith(("mtllib", "usemtl"))
    ]
    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / "mesh.obj"
        f.write_text("\n".join(keep) + "\n")
        return load_mesh(f)


def peak_mib(path) -> int | None:
    """The largest sample of an nvidia-smi memory log (MiB)."""
    if not path:
        return None
    vals = [int(x) for x in Path(path).read_text().split() if x.strip().isdigit()]
    return max(vals) if vals else None


def ratio(ours, theirs):
    return f"{ours / theirs:.2f}" if ours is not None and theirs else "-"


def fmt(v, spec):
    return "-" if v is None else format(v, spec)


def table(a: dict, o: dict) -> str:
    rows = [
        ("pass 1 ms/iter (median)", "pass1_ms", ".1f", True),
        ("pass 2 ms/iter (median)", "pass2_ms", ".1f", True),
        ("whole run s", "wall", ".1f", True),
        ("peak GPU memory MiB (nvidia-smi)", "mem", "d", True),
        ("PSNR after pass 1 dB", "psnr_pass1", ".2f", False),
        ("final PSNR dB", "psnr_final", ".2f", False),
        ("Chamfer-L1 to the reference", "chamfer", ".4f", False),
        ("final triangles", "triangles", "d", False),
    ]
    out = ["| | nvdiffrec | nvdrec | nvdrec / nvdiffrec |", "|---|---|---|---|"]
    for name, key, spec, with_ratio in rows:
        av, ov = a.get(key), o.get(key)
        if av is None and ov is None:
            continue
        r = ratio(ov, av) if with_ratio else "-"
        out.append(f"| {name} | {fmt(av, spec)} | {fmt(ov, spec)} | {r} |")
    return "\n".join(out)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--anchor-log", required=True)
    ap.add_argument("--ours", required=True, help="nvdrec's run folder")
    ap.add_argument("--anchor-wall", type=float)
    ap.add_argument("--ours-wall", type=float)
    ap.add_argument("--anchor-mem")
    ap.add_argument("--ours-mem")
    ap.add_argument("--anchor-mesh")
    ap.add_argument("--ref-mesh")
    ap.add_argument("--json", help="also write both columns as JSON to this file")
    args = ap.parse_args(argv)
    a = anchor_log(Path(args.anchor_log).read_text(errors="replace"))
    o = ours_run(Path(args.ours))
    a["wall"], o["wall"] = args.anchor_wall, args.ours_wall
    a["mem"], o["mem"] = peak_mib(args.anchor_mem), peak_mib(args.ours_mem)
    if args.ref_mesh:
        from quality import chamfer_l1

        ref = geometry(args.ref_mesh)
        o["chamfer"] = chamfer_l1(geometry(Path(args.ours) / "mesh" / "mesh.obj"), ref)
        if args.anchor_mesh:
            a["chamfer"] = chamfer_l1(geometry(args.anchor_mesh), ref)
    print(table(a, o))
    print(f"(nvdiffrec time= lines per pass: {a['lines'][0]} / {a['lines'][1]})")
    if args.json:
        Path(args.json).write_text(json.dumps({"nvdiffrec": a, "nvdrec": o}, indent=2) + "\n")


if __name__ == "__main__":
    main()
