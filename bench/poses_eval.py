"""Poses from photos against a capture's own poses: runs ``nvdrec poses`` (pycolmap) on
a capture that comes with LLFF poses (``poses_bounds.npy``, ``images/``, ``masks/``) and
prints the registered count, the seconds per stage, and, after a least-squares similarity
alignment of the camera centres, the median / max rotation error (degrees) and camera
centre error (relative to the median camera-to-origin distance), plus the median IoU of
the written masks against the capture's.

    python bench/poses_eval.py ../shared/data/captures/ethiopianHead [--max-side 1024]
        [--ignore-masks] [--out DIR]   (an --out that holds a result is evaluated again)
"""

import argparse
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nvdrec.data.colmap import ColmapDataset  # noqa: E402
from nvdrec.data.colmap_model import quat_to_rot, read_images, sparse_folder  # noqa: E402
from nvdrec.data.llff import LLFFDataset, _list_images  # noqa: E402
from nvdrec.data.sfm import compare_poses, estimate_poses  # noqa: E402
from nvdrec.structures import camera as cam  # noqa: E402


def _c2w(q, t) -> np.ndarray:
    """OpenGL camera-to-world of a COLMAP image (world-to-camera quaternion, translation)."""
    rot = quat_to_rot(q)
    c2w = torch.eye(4, dtype=torch.float64)
    c2w[:3, :3] = rot.T
    c2w[:3, 3] = -rot.T @ torch.tensor(t, dtype=torch.float64)
    return cam.opencv_to_opengl(c2w).numpy()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("capture")
    ap.add_argument("--max-side", type=int, default=1024)
    ap.add_argument("--ignore-masks", action="store_true")
    ap.add_argument("--out", help="keep the COLMAP folder here (default: a temporary one)")
    a = ap.parse_args()
    cap = Path(a.capture)
    tmp = Path(tempfile.mkdtemp())
    out = Path(a.out) if a.out else tmp / "colmap"
    t0 = time.time()
    rep = None
    if a.out and (out / "sparse").is_dir():  # evaluate an earlier result again
        print(f"evaluating the poses already in {out}")
    else:
        rep = estimate_poses(
            cap, out, max_side=a.max_side, use_masks=not a.ignore_masks, progress=lambda s: None
        )
    total = time.time() - t0
    entries = sorted(read_images(sparse_folder(out)), key=lambda e: e[0])
    names = [Path(e[0]).stem for e in entries]
    ref = LLFFDataset(cap, resolution=(64, 64))
    ref_names = [p.stem for p in _list_images(cap / "images")]
    idx = [ref_names.index(n) for n in names]
    c_est = np.stack([_c2w(q, t) for _, q, t, _ in entries])
    c_ref = torch.linalg.inv(ref.mv.double()).numpy()[idx]
    err = compare_poses(c_est, c_ref)  # distances to the reference cameras' focus point
    print(
        f"machine     {platform.processor() or platform.machine()}, "
        f"{torch.get_num_threads()} threads"
    )
    print(f"capture     {cap} ({len(ref_names)} photos, max side {a.max_side})")
    if rep is not None:
        print("\n".join(rep.lines()))
        print(f"total       {total:.0f} s")
    print(
        f"rotation    median {err['rotation_median_deg']:.2f} deg, "
        f"max {err['rotation_max_deg']:.2f}"
    )
    print(
        f"centre      median {100 * err['centre_median_rel']:.2f} %, "
        f"max {100 * err['centre_max_rel']:.2f} % of the camera distance"
    )
    if (out / "masks").is_dir():
        est = ColmapDataset(out, resolution=(64, 64))
        x, y = est.images[..., 3] > 0.5, ref.images[idx][..., 3] > 0.5
        iou = (x & y).flatten(1).sum(1).float() / (x | y).flatten(1).sum(1).float()
        print(f"masks IoU   median {iou.median():.3f} (undistorted vs the capture's)")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
