"""Automatic framing (``mesh_scale: "auto"``): a coarse visual hull from cameras + masks.

Points of a regular grid are kept when they fall inside every image and inside every
mask (alpha > 0.5). The box around the kept points gives the object's centre
and size; the dataset's cameras are moved so the centre is the origin, and ``mesh_scale``
becomes the box's longest side plus a margin. The shift is recorded so exported meshes
are moved back into the input's frame and units.
"""

from __future__ import annotations

import torch

from ..errors import DataError
from ..structures import camera as cam

__all__ = ["visual_hull_box", "auto_frame", "in_visual_hull"]


def _mask_lookup(dataset, i: int, hom: torch.Tensor, alpha_img: torch.Tensor):
    """Project homogeneous points [N, 4] (float64) into view ``i``: (in the frame and in
    front of the camera: bool [N], the alpha image's value there [N])."""
    h, w = dataset.resolution
    mvp = dataset.proj[i].double().cpu() @ dataset.mv[i].double().cpu()
    c = hom @ mvp.T
    front = c[:, 3] > 1e-9
    ndc = c[:, :2] / c[:, 3:].clamp(min=1e-9)
    col = ((ndc[:, 0] + 1) * 0.5 * w).floor().long()
    row = ((ndc[:, 1] + 1) * 0.5 * h).floor().long()
    inside = front & (col >= 0) & (col < w) & (row >= 0) & (row < h)
    alpha = torch.zeros(len(hom), dtype=torch.float32)
    alpha[inside] = alpha_img[row[inside], col[inside]]
    return inside, alpha


@torch.no_grad()
def visual_hull_box(dataset, res: int = 48) -> tuple[torch.Tensor, torch.Tensor]:
    """(min [3], max [3]) of the visual hull of the dataset's masks."""
    c2w = torch.linalg.inv(dataset.mv.double().cpu())
    extent = float(c2w[:, :3, 3].norm(dim=-1).min()) * 0.9
    g = torch.linspace(-extent, extent, res, dtype=torch.float64)
    pts = torch.stack(torch.meshgrid(g, g, g, indexing="ij"), -1).reshape(-1, 3)
    keep = torch.ones(len(pts), dtype=torch.bool)
    seen = torch.zeros(len(pts), dtype=torch.long)
    hom = torch.cat([pts, torch.ones(len(pts), 1, dtype=torch.float64)], -1)
    for i in range(len(dataset)):
        inside, alpha = _mask_lookup(dataset, i, hom, dataset.images[i, ..., 3].float().cpu())
        keep &= ~inside | (alpha > 0.5)
        seen += inside.long()
    # object-centric captures show the whole object in every image: points outside some
    # image frame escape that view's constraint, so only points every view sees count
    keep &= seen == len(dataset)
    if not keep.any():
        raise DataError(
            "automatic framing found no point inside all masks; check the masks and cameras"
        )
    sel = pts[keep]
    return sel.min(0).values, sel.max(0).values


@torch.no_grad()
def in_visual_hull(dataset, points: torch.Tensor, dilate: int = 1) -> torch.Tensor:
    """bool [N]: points [N, 3] (world) whose projection lies inside the mask (alpha >
    0.5, the mask grown by ``dilate`` pixels so surface points on a silhouette pass) in
    every view that sees them, and that at least one view sees."""
    hom = torch.cat([points.double().cpu(), torch.ones(len(points), 1, dtype=torch.float64)], -1)
    keep = torch.ones(len(points), dtype=torch.bool)
    seen = torch.zeros(len(points), dtype=torch.bool)
    k = 2 * dilate + 1
    for i in range(len(dataset)):
        a = dataset.images[i, ..., 3].float()
        if dilate > 0:
            a = torch.nn.functional.max_pool2d(a[None, None], k, stride=1, padding=dilate)[0, 0]
        inside, alpha = _mask_lookup(dataset, i, hom, a.cpu())
        keep &= ~inside | (alpha > 0.5)
        seen |= inside
    return keep & seen


def auto_frame(dataset, margin: float = 1.15) -> tuple[float, torch.Tensor]:
    """Recentre ``dataset`` on its visual hull; returns (mesh_scale, shift [3]) where
    ``shift`` is the hull centre in the input frame (add it to exported vertices)."""
    lo, hi = visual_hull_box(dataset)
    centre = (lo + hi) / 2
    size = float((hi - lo).max()) * margin
    t = cam.translate(*centre.tolist()).to(dataset.mv.device)
    dataset.mv = dataset.mv @ t
    return size, centre.float()
