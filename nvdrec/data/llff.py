"""LLFF datasets: ``poses_bounds.npy`` + ``images/`` + ``masks/``.

``poses_bounds.npy`` is [N, 17]: a 3x5 matrix per image whose first four columns are the
camera-to-world rotation and centre with axes (down, right, backwards) and whose fifth
column is (height, width, focal) in pixels, then two depth bounds. Cameras are converted
to OpenGL axes (right, up, backwards), and the scene is recentred on the point closest to
all optical axes (least squares), so that the object sits at the origin of the grid box.
Masks (one per image, same order when sorted by name) become the alpha channel; images and
masks are resized together to ``train_res``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import DataError, MissingFileError
from ..structures import camera as cam
from .nerf import NeRFDataset, check_camera

__all__ = ["LLFFDataset", "is_llff_folder", "axes_focus_point"]

_IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".exr", ".hdr"}


def is_llff_folder(path: Path) -> bool:
    return (Path(path) / "poses_bounds.npy").is_file()


def _list_images(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise MissingFileError(f"'{folder}' does not exist")
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in _IMAGE_EXTS)


def axes_focus_point(origins: torch.Tensor, dirs: torch.Tensor) -> torch.Tensor:
    """Least-squares point closest to the lines origin + t dir: solves
    sum(I - d d^T) p = sum(I - d d^T) o. With one line, or all lines parallel, the
    system is singular: the pseudo-inverse gives the solution nearest the world origin."""
    d = F.normalize(dirs.double(), dim=-1)
    m = torch.eye(3, dtype=torch.float64) - d[:, :, None] * d[:, None, :]
    a, b = m.sum(0), (m @ origins.double()[:, :, None]).sum(0)
    return (torch.linalg.pinv(a, rtol=1e-9) @ b)[:, 0]


class LLFFDataset(NeRFDataset):
    """Cameras and masked images of an LLFF folder (every image is used for training and
    validation, as in nvdiffrec: all of them are validated)."""

    def _read(self, folder: Path, split: str, resolution, near_far) -> tuple:
        try:
            pb = np.load(folder / "poses_bounds.npy", allow_pickle=False)
        except (OSError, ValueError) as e:
            raise DataError(f"'{folder / 'poses_bounds.npy'}' cannot be read: {e}") from None
        if pb.ndim != 2 or pb.shape[1] != 17 or len(pb) == 0:
            raise DataError(f"'{folder / 'poses_bounds.npy'}' must be [N, 17], got {pb.shape}")
        images = _list_images(folder / "images")
        masks = _list_images(folder / "masks")
        if len(images) != len(pb):
            raise DataError(
                f"'{folder / 'images'}' has {len(images)} images but poses_bounds.npy has "
                f"{len(pb)} poses"
            )
        if len(masks) != len(images):
            raise DataError(
                f"'{folder / 'masks'}' has {len(masks)} masks for {len(images)} images; LLFF data "
                "needs one mask per image (the object silhouette), same order when sorted by name"
            )
        poses = torch.tensor(pb[:, :15].reshape(-1, 3, 5), dtype=torch.float64)
        c2w = cam.llff_to_opengl(poses[:, :, :4])  # [N, 4, 4]
        for i, ip in enumerate(images):  # before any image loads
            ph, pw, focal = (float(x) for x in poses[i, :, 4])
            where = f"'{folder / 'poses_bounds.npy'}' row {i} ({ip.name})"
            check_camera(where, c2w[i], focal, focal, pw / 2, ph / 2, pw, ph)
        centre = axes_focus_point(c2w[:, :3, 3], -c2w[:, :3, 2])
        c2w[:, :3, 3] -= centre
        self.centre = centre
        self._count = len(images)
        mvs, projs = [], []
        for i, (ip, mp) in enumerate(zip(images, masks)):
            t, resolution, (h0, w0) = self._load_view(ip, resolution, mp)
            h, w = resolution
            self._store(t)
            ph, pw, focal = (float(x) for x in poses[i, :, 4])
            f = focal * w / pw  # focal given for the (ph, pw) images
            fy = focal * h / ph
            projs.append(cam.perspective_from_intrinsics(f, fy, w / 2, h / 2, w, h, *near_far))
            mvs.append(torch.linalg.inv(c2w[i]).float())
        return torch.stack(mvs), projs
