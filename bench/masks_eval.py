"""Automatic object masks against a capture's own: runs ``auto_masks`` on a COLMAP folder
that holds the capture's masks in ``masks/`` (``bench/poses_eval.py --out DIR`` or
``estimate_poses(..., mask_features=False)`` writes one with the cameras from the whole
photos) and prints the IoU per view (median, min, share of views >= 0.9) and the seconds
per stage.

    python bench/masks_eval.py COLMAP_FOLDER [--max-side 512] [--out DIR]
"""

import argparse
import platform
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nvdrec.data.automask import auto_masks, mask_name  # noqa: E402
from nvdrec.data.colmap_model import read_images, sparse_folder  # noqa: E402
from nvdrec.io.image import read_image  # noqa: E402


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("folder")
    ap.add_argument("--max-side", type=int, default=512)
    ap.add_argument("--out", help="keep the masks here (default: a temporary folder)")
    a = ap.parse_args()
    folder = Path(a.folder)
    out = Path(a.out) if a.out else Path(tempfile.mkdtemp()) / "masks"
    rep = auto_masks(folder, out, max_side=a.max_side, progress=lambda s: None)
    names = sorted(e[0] for e in read_images(sparse_folder(folder)))
    ious = []
    for n in names:
        truth = read_image(folder / "masks" / mask_name(n))[..., 0] > 0.5
        ours = read_image(out / mask_name(n))[..., 0] > 0.5
        ious.append(iou(truth, ours))
    ious = np.array(ious)
    print(f"# automatic masks on {folder} ({platform.processor() or platform.machine()})")
    print("\n".join(rep.lines()))
    print(
        f"IoU median {np.median(ious):.3f}  min {ious.min():.3f}  mean {ious.mean():.3f}  "
        f">=0.9: {(ious >= 0.9).mean():.0%} of {len(ious)} views"
    )
    worst = np.argsort(ious)[:5]
    print("worst: " + ", ".join(f"{names[i]} {ious[i]:.3f}" for i in worst))


if __name__ == "__main__":
    main()
