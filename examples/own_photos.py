"""Reconstruct from your own photos: a COLMAP (or LLFF) folder with one mask per photo.
`nvdrec check` first (cameras, masks, sizes, framing), then training.

    colmap ... && colmap image_undistorter ...       # PINHOLE cameras, see docs/data.md
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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("folder")
    ap.add_argument("--train-res", type=int, default=512)
    ap.add_argument("--iter", type=int, default=2000)
    ap.add_argument("--out", default="out/own_photos")
    ap.add_argument("--tiny", action="store_true")
    a = ap.parse_args()
    lines, warnings = preflight(a.folder)  # what `nvdrec check FOLDER` prints
    print("\n".join(lines))
    for w in warnings:
        print(f"warning: {w}")
    cfg = {
        "ref_mesh": str(Path(a.folder).resolve()),
        "train_res": [a.train_res, a.train_res],
        "iter": a.iter,
        "mesh_scale": "auto",
        "learning_rate": [0.03, 0.003],
        "out_dir": str(Path(a.out).resolve()),
    }
    if a.tiny:
        cfg.update(TINY)
    result = nvdrec.Trainer(nvdrec.load_config(cfg)).fit()
    m = result["metrics"]
    print(f"PSNR {m['psnr']:.2f} dB on the first views; result: {result['paths']['obj']}")


if __name__ == "__main__":
    main()
