"""COLMAP datasets: ``sparse/0/{cameras,images}.{bin,txt}`` + ``images/`` (+ ``masks/``).

Formats as documented by COLMAP ("Output Format"): cameras (id, model, width, height,
params) and images (id, world-to-camera quaternion qw qx qy qz and translation, camera id,
file name). Poses are OpenCV cameras (x right, y down, z forward) and become OpenGL
cameras; the scene is recentred on the point closest to all optical axes, as for LLFF.
PINHOLE and SIMPLE_PINHOLE are supported; distorted models (SIMPLE_RADIAL, RADIAL, OPENCV,
...) must be undistorted first (``colmap image_undistorter`` writes PINHOLE cameras).
Alpha comes from ``masks/`` (``NAME`` or ``NAME.png``), else ``masks_auto/``, else RGBA
images; without any, object masks are made from the photos, cameras and sparse points
into ``masks_auto/`` (:mod:`nvdrec.data.automask`, needs OpenCV).
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..errors import DataError, MissingFileError
from ..structures import camera as cam
from .colmap_model import (
    is_colmap_folder,
    pinhole_intrinsics,
    read_cameras,
    read_images,
    read_points3d,
    read_views,
    sparse_folder,
)
from .llff import axes_focus_point
from .nerf import NeRFDataset, check_camera

__all__ = [
    "ColmapDataset",
    "is_colmap_folder",
    "pinhole_intrinsics",
    "read_cameras",
    "read_images",
    "read_points3d",
]


def _mask_folder(folder: Path, first_image: Path, auto: bool) -> Path | None:
    """The masks of a COLMAP folder: ``masks/`` when present, else ``masks_auto/``; when
    neither exists and the images have no alpha, ``auto`` makes ``masks_auto/`` from the
    photos (:func:`nvdrec.data.automask.auto_masks`). None: alpha comes from the images."""
    if (folder / "masks").is_dir():
        return folder / "masks"
    made = folder / "masks_auto"
    if made.is_dir():
        return made
    sparse = sparse_folder(folder)
    has_points = any((sparse / f"points3D.{e}").is_file() for e in ("bin", "txt"))
    if not auto or not has_points or not first_image.is_file():
        return None  # alpha from the images, or the loader's "needs object masks" error
    from ..io.image import read_image

    if read_image(first_image).shape[-1] == 4:
        return None
    from .automask import auto_masks

    def say(line):
        print(f"nvdrec: masks: {line}", flush=True)

    say(f"'{folder}' has no masks/; making object masks from the photos into '{made}'")
    try:
        auto_masks(folder, made, progress=say)
    except DataError as e:
        raise DataError(
            f"'{folder}' has no masks/ and its images no alpha, and automatic masks failed: "
            f"{e}. The method needs object masks: put one mask image per photo in masks/"
        ) from None
    say(f"done: check '{made / 'overview.png'}'; masks of your own in masks/ take precedence")
    return made


class ColmapDataset(NeRFDataset):
    """Cameras and masked images of a COLMAP reconstruction (all views train and
    all are validated, as nvdiffrec does for LLFF captures). Alpha comes from
    ``masks/``, else ``masks_auto/``, else RGBA images; without any, masks are made from
    the photos into ``masks_auto/`` (needs OpenCV; ``auto_masks=False`` refuses)."""

    def __init__(self, folder, split="train", *args, auto_masks: bool = True, **kwargs) -> None:
        self.auto_masks = auto_masks
        super().__init__(folder, split, *args, **kwargs)

    def _read(self, folder: Path, split: str, resolution, near_far) -> tuple:
        sparse, views = read_views(folder)
        if not views:
            raise DataError(f"'{sparse}' lists no images")
        c2ws, items = [], []
        for v in views:
            c2w_cv = torch.eye(4, dtype=torch.float64)
            c2w_cv[:3, :3] = v.rot.T
            c2w_cv[:3, 3] = -v.rot.T @ torch.tensor(v.t, dtype=torch.float64)
            where = f"'{sparse}' image '{v.name}' (camera {v.camera})"
            check_camera(where, c2w_cv, v.fx, v.fy, v.cx, v.cy, v.width, v.height)
            c2ws.append(cam.opencv_to_opengl(c2w_cv))
            items.append((v.name, v.width, v.height, v.fx, v.fy, v.cx, v.cy))
        c2w = torch.stack(c2ws)
        self.centre = (
            axes_focus_point(c2w[:, :3, 3], -c2w[:, :3, 2]) if len(c2w) > 1 else c2w[0, :3, 3] * 0
        )
        c2w[:, :3, 3] -= self.centre
        self._count = len(items)
        projs = []
        mask_dir = _mask_folder(folder, folder / "images" / items[0][0], self.auto_masks)
        has_masks = mask_dir is not None
        for name, w0, h0, fx, fy, cx, cy in items:
            ip = folder / "images" / name
            if not ip.is_file():
                raise MissingFileError(f"image '{ip}' listed by the COLMAP model does not exist")
            if has_masks:
                mp = next(
                    (p for p in (mask_dir / name, mask_dir / (name + ".png")) if p.is_file()),
                    None,
                )
                if mp is None:
                    raise MissingFileError(
                        f"no mask for '{name}' in '{mask_dir}' (expected '{name}' or '{name}.png')"
                    )
            else:
                mp = None
            t, resolution, full = self._load_view(
                ip,
                resolution,
                mp,
                no_alpha=f"'{ip}' has no alpha channel and '{folder / 'masks'}' does not exist: "
                "the method needs object masks. Put one mask image per photo in masks/ (same "
                "names), or use RGBA images, or let nvdrec make them from the photos (a model "
                "with sparse points, as 'nvdrec poses' writes; then 'nvdrec masks FOLDER')",
            )
            h, w = resolution
            self._store(t)
            sx, sy = w / w0, h / h0
            projs.append(
                cam.perspective_from_intrinsics(fx * sx, fy * sy, cx * sx, cy * sy, w, h, *near_far)
            )
        return torch.linalg.inv(c2w), projs
