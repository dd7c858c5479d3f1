"""Preflight report of a dataset folder (``nvdrec check DATASET``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..errors import DataError

__all__ = ["load_dataset_folder", "preflight", "frusta_image"]


CHECK_MAX_SIDE = 512  # nvdrec check looks at the images reduced to fit in this size


def load_dataset_folder(path, resolution=None, max_side=None, cache=None):
    """NeRF-synthetic, LLFF or COLMAP dataset from a folder (training split). With
    ``resolution`` None and ``max_side`` set, images are reduced as they load to fit
    within ``max_side`` pixels (the first image's aspect), so memory stays bounded by the
    number of images, not by the photos' size. ``cache``: an ImageCache or None."""
    from .colmap import ColmapDataset, is_colmap_folder
    from .llff import LLFFDataset, is_llff_folder
    from .nerf import NeRFDataset, is_nerf_folder

    path = Path(path)
    for kind, is_kind, cls, args in (
        ("nerf-synthetic", is_nerf_folder, NeRFDataset, ("train",)),
        ("llff", is_llff_folder, LLFFDataset, ()),
        ("colmap", is_colmap_folder, ColmapDataset, ()),
    ):
        if is_kind(path):
            return kind, cls(path, *args, resolution=resolution, max_side=max_side, cache=cache)
    raise DataError(
        f"'{path}' is not a dataset folder: expected transforms_train.json (NeRF-synthetic), "
        "poses_bounds.npy (LLFF) or sparse/0 (COLMAP)"
    )


def _line(img, p0, p1, color):
    n = int(max(abs(p1[0] - p0[0]), abs(p1[1] - p0[1]))) + 1
    xs = np.linspace(p0[0], p1[0], n).round().astype(int)
    ys = np.linspace(p0[1], p1[1], n).round().astype(int)
    ok = (xs >= 0) & (xs < img.shape[1]) & (ys >= 0) & (ys < img.shape[0])
    img[ys[ok], xs[ok]] = color


def frusta_image(mv: torch.Tensor, box: float, size: int = 384) -> np.ndarray:
    """Top view (x right, -z up) of the camera centres and viewing directions around the
    grid box [-box/2, box/2]^2, as an RGB image [size, size, 3] in [0, 1]."""
    c2w = torch.linalg.inv(mv.double().cpu())
    pos = c2w[:, :3, 3].numpy()
    fwd = -c2w[:, :3, 2].numpy()
    extent = max(float(np.abs(pos[:, [0, 2]]).max()) * 1.15, box)
    img = np.ones((size, size, 3), np.float32)

    def px(p):
        return ((p[0] / extent + 1) * 0.5 * (size - 1), (p[2] / extent + 1) * 0.5 * (size - 1))

    h = box / 2
    corners = [(-h, 0, -h), (h, 0, -h), (h, 0, h), (-h, 0, h)]
    for a, b in zip(corners, corners[1:] + corners[:1]):
        _line(img, px(a), px(b), (0.2, 0.6, 0.2))
    for p, f in zip(pos, fwd):
        _line(img, px(p), px(p + f * extent * 0.15), (0.8, 0.2, 0.2))
        x, y = px(p)
        img[max(0, int(y) - 1) : int(y) + 2, max(0, int(x) - 1) : int(x) + 2] = (0.1, 0.1, 0.8)
    return img


def preflight(
    path, mesh_scale: float = 2.1, picture: Path | None = None, cache="auto"
) -> tuple[list[str], list[str]]:
    """(report lines, warnings) for a dataset folder; optionally writes the frusta picture.
    ``cache``: the reduced-image cache setting ("auto", "off" or a folder)."""
    from .cache import image_cache_from_setting

    kind, ds = load_dataset_folder(
        path, max_side=CHECK_MAX_SIDE, cache=image_cache_from_setting(cache)
    )
    alpha = ds.images[..., 3]
    cover = alpha.flatten(1).gt(0.5).float().mean(1)
    c2w = torch.linalg.inv(ds.mv.double().cpu())
    pos = c2w[:, :3, 3]
    dist = pos.norm(dim=-1)
    fwd = -c2w[:, :3, 2]
    to_origin = torch.nn.functional.normalize(-pos, dim=-1)
    angle = torch.rad2deg(torch.acos((fwd * to_origin).sum(-1).clamp(-1, 1)))
    lines = [
        f"dataset      {path} ({kind})",
        f"images       {len(ds)} at {ds.resolution[1]}x{ds.resolution[0]}",
        f"alpha cover  min {cover.min():.1%}, mean {cover.mean():.1%}, "
        f"max {cover.max():.1%} of pixels",
        f"cameras      distance to the origin {dist.min():.3f} .. {dist.max():.3f}",
        f"aim          angle between view axis and the origin: median {angle.median():.1f} deg, "
        f"max {angle.max():.1f} deg",
    ]
    warns = []
    note = ds.outside_note(path)
    if note:
        warns.append(note)
    empty = int((cover == 0).sum())
    full = int((cover > 0.99).sum())
    if empty:
        warns.append(f"{empty} image(s) have an empty mask (alpha 0 everywhere)")
    if full:
        warns.append(f"{full} image(s) have a full mask: the background is not separated")
    if getattr(ds, "size_mismatches", 0):
        warns.append(
            f"{ds.size_mismatches} image(s) differ in size from the first one; they are resized "
            "(check that intrinsics refer to the files as they are)"
        )
    rotated = {o: c for o, c in getattr(ds, "orientations", {}).items() if o != 1}
    if rotated:
        n_rot = sum(rotated.values())
        warns.append(
            f"{n_rot} photo(s) carry an EXIF orientation tag ({sorted(rotated)}; 1 = upright): "
            "nvdrec uses the pixels as stored, not rotated for display; the camera poses and "
            "masks must refer to the stored pixels"
            + (" (the folder mixes orientations)" if len(ds.orientations) > 1 else "")
        )
    if float(angle.median()) > 20:
        warns.append("most cameras do not look at the origin: the object may be off-centre")
    if float(dist.min()) < mesh_scale * 0.87:
        warns.append(f"a camera is inside the grid box (mesh_scale {mesh_scale}); lower mesh_scale")
    if picture is not None:
        from ..io.image import write_image

        write_image(picture, frusta_image(ds.mv, mesh_scale))
        lines.append(
            f"picture      {picture} (top view: cameras blue, view directions red, box green)"
        )
    return lines, warns
