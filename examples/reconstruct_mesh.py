"""Reconstruct an object from a reference mesh rendered under an HDR map (nvdiffrec's
bob/spot setting): mesh, PBR textures and the light, compared with the reference.

    python examples/reconstruct_mesh.py [MESH.obj ENVMAP.hdr] [--out out/bob] [--tiny]

Defaults: bob and royal_esplanade from ../shared/data with configs/bob.json (512x512,
batch 4, 1000 + 1000 iterations). Time: 57 s on one H200 (docs/benchmarks.md); on a
2-core CPU the full config takes hours (~2 s per iteration): use --tiny there (4
iterations at 48x48, ~15 s).
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, SHARED, TINY  # noqa: E402

import nvdrec  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mesh", nargs="?", default=str(SHARED / "meshes" / "bob" / "bob_tri.obj"))
    ap.add_argument("envmap", nargs="?", default=str(SHARED / "envmaps" / "royal_esplanade_1k.hdr"))
    ap.add_argument("--out", default="out/reconstruct_mesh")
    ap.add_argument("--overwrite", action="store_true", help="replace an earlier result in --out")
    ap.add_argument("--tiny", action="store_true")
    a = ap.parse_args()
    for what, path in (("MESH", a.mesh), ("ENVMAP", a.envmap)):
        if not Path(path).is_file():
            ap.error(
                f"{what} '{path}' not found: give MESH.obj ENVMAP.hdr (the defaults are in "
                "this repository's ../shared/data)"
            )
    over = {"ref_mesh": a.mesh, "envmap": a.envmap, "out_dir": str(Path(a.out).resolve())}
    cfg = nvdrec.load_config(ROOT / "configs" / "bob.json", {**over, **(TINY if a.tiny else {})})
    result = nvdrec.Trainer(cfg, overwrite=a.overwrite).fit()
    m = result["metrics"]
    print(f"PSNR {m['psnr']:.2f} dB, SSIM {m['ssim']:.4f} over {m['views']} views")
    print(f"mesh, textures and light: {result['paths']['obj']} ({result['seconds']:.0f} s)")


if __name__ == "__main__":
    try:
        main()
    except nvdrec.NvdrecError as e:  # e.g. --out holds an earlier result: one line
        sys.exit(f"reconstruct_mesh: {e}")
