"""Reconstruct from your own photos: a folder of photos (masks/ with one mask per photo,
same names, optional), or a COLMAP / LLFF folder that already has poses. Photos without
poses get them first (`nvdrec poses`, needs `pip install 'nvdrec[photos]'`; without
masks/ it also makes object masks from the photos), then `nvdrec check` (cameras, masks,
sizes, framing), then training.

    python examples/own_photos.py FOLDER [--train-res 512] [--iter 2000] [--out DIR] [--tiny]

The object is framed automatically (mesh_scale "auto": the grid box is fitted to the
masks' visual hull) and photos larger than train_res are reduced as they load (and
cached, docs/data.md). Time: depends on the photo count and train_res; loading 119
photos of 3648x3648 took 16.8 s on a 2-core CPU the first time and 0.5 s from the cache;
--tiny (4 iterations at 48x48) ~20 s on that CPU.
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import TINY  # noqa: E402

import nvdrec  # noqa: E402
from nvdrec.data.check import preflight  # noqa: E402
from nvdrec.data.colmap import is_colmap_folder  # noqa: E402
from nvdrec.data.llff import is_llff_folder  # noqa: E402
from nvdrec.data.nerf import is_nerf_folder  # noqa: E402
from nvdrec.data.sfm import estimate_poses  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("folder")
    ap.add_argument("--train-res", type=int, default=512)
    ap.add_argument("--iter", type=int, default=2000)
    ap.add_argument("--out", default="out/own_photos")
    ap.add_argument("--overwrite", action="store_true", help="replace an earlier result in --out")
    ap.add_argument("--tiny", action="store_true")
    a = ap.parse_args()
    folder = Path(a.folder)
    if not (is_colmap_folder(folder) or is_llff_folder(folder) or is_nerf_folder(folder)):
        posed = Path(a.out).resolve().parent / (Path(a.out).name + "_colmap")
        if not (posed / "sparse").is_dir():  # poses from the photos (once)
            report = estimate_poses(folder, posed, progress=lambda s: print("poses:", s))
            print("\n".join(report.lines()))
        folder = posed
    lines, warnings = preflight(folder)  # what `nvdrec check FOLDER` prints
    print("\n".join(lines))
    for w in warnings:
        print(f"warning: {w}")
    cfg = {
        "ref_mesh": str(folder.resolve()),
        "train_res": [a.train_res, a.train_res],
        "iter": a.iter,
        "mesh_scale": "auto",
        "learning_rate": [0.03, 0.003],
        "out_dir": str(Path(a.out).resolve()),
    }
    if a.tiny:
        cfg.update(TINY)
    result = nvdrec.Trainer(nvdrec.load_config(cfg), overwrite=a.overwrite).fit()
    m = result["metrics"]
    print(f"PSNR {m['psnr']:.2f} dB on the first views; result: {result['paths']['obj']}")


if __name__ == "__main__":
    try:
        main()
    except nvdrec.NvdrecError as e:  # a missing package, a bad folder: one line, not a trace
        sys.exit(f"own_photos: {e}")
