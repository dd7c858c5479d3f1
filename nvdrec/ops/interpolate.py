"""Attribute interpolation over rasterized triangles."""

from __future__ import annotations

import torch

from ..native.build import load
from ._common import check_tensor, gather_rows, pick_backend, zeros_if_none

__all__ = ["interpolate"]


def _gather_corners(attr: torch.Tensor, rast: torch.Tensor, tri: torch.Tensor):
    """Corner attributes [B, H, W, 3, C] of each pixel's triangle and the coverage mask."""
    tid = rast[..., 3].long() - 1  # [B, H, W], -1 = empty
    covered = tid >= 0
    corners = tri.long()[tid.clamp(min=0)]  # [B, H, W, 3]
    # gathers through index_select: its backward (index_add) sums in a fixed order on the
    # CPU, where x[idx]'s accumulating index_put does not
    if attr.ndim == 2:
        return gather_rows(attr, corners), covered
    if attr.shape[0] == 1:
        return gather_rows(attr[0], corners), covered
    n_v = attr.shape[1]
    b = torch.arange(rast.shape[0], device=rast.device).view(-1, 1, 1, 1)
    return gather_rows(attr.reshape(-1, attr.shape[-1]), b * n_v + corners), covered


def _interpolate_ref(attr, rast, tri, rast_db=None, diff_attrs=None):
    vals, covered = _gather_corners(attr, rast, tri)
    a0, a1, a2 = vals.unbind(-2)
    u, v = rast[..., 0:1], rast[..., 1:2]
    mask = covered[..., None].to(attr.dtype)
    out = (a2 + u * (a0 - a2) + v * (a1 - a2)) * mask
    if diff_attrs is None or rast_db is None:
        return out, None
    idx = list(range(attr.shape[-1])) if diff_attrs == "all" else list(diff_attrs)
    e0, e1 = (a0 - a2)[..., idx], (a1 - a2)[..., idx]
    dudx, dudy, dvdx, dvdy = (rast_db[..., k : k + 1] for k in range(4))
    dx = e0 * dudx + e1 * dvdx
    dy = e0 * dudy + e1 * dvdy
    out_da = torch.stack([dx, dy], dim=-1).flatten(-2) * mask
    return out, out_da


def interpolate(
    attr: torch.Tensor,
    rast: torch.Tensor,
    tri: torch.Tensor,
    rast_db: torch.Tensor | None = None,
    diff_attrs=None,
    backend: str = "auto",
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Interpolate vertex attributes with the barycentrics of :func:`rasterize`.

    Args:
        attr: float32 [V, C] (shared by all images) or [B, V, C].
        rast: [B, H, W, 4] from :func:`rasterize`.
        tri: int32 [T, 3], the triangles that were rasterized.
        rast_db: [B, H, W, 4] image-space derivatives, needed for ``out_da``.
        diff_attrs: "all" or a list of attribute channels whose pixel derivatives are
            returned.

    Returns:
        out: [B, H, W, C], zero on empty pixels.
        out_da: [B, H, W, 2 * len(diff_attrs)] = (dA/dX, dA/dY) per selected channel,
            or None.
    """
    check_tensor("attr", attr, (2, 3))
    check_tensor("rast", rast, (4,), last=4)
    check_tensor("tri", tri, (2,), last=3, dtype=(torch.int32, torch.int64))
    if attr.ndim == 3 and attr.shape[0] not in (1, rast.shape[0]):
        raise ValueError(
            f"attr has batch {attr.shape[0]} but rast has batch {rast.shape[0]}; "
            "use [V, C] to share attributes"
        )
    if diff_attrs is not None and rast_db is None:
        raise ValueError("diff_attrs needs rast_db (the second output of rasterize)")
    if rast_db is not None:
        check_tensor("rast_db", rast_db, (4,), last=4)
    chosen = pick_backend(backend, attr, rast)
    if chosen == "nvdiffrast":
        from ._nvdiffrast import module

        return module().interpolate(attr, rast, tri.int(), rast_db=rast_db, diff_attrs=diff_attrs)
    if chosen == "cuda":
        return interpolate_cuda(attr, rast, tri, rast_db, diff_attrs)
    return _interpolate_ref(attr, rast, tri, rast_db, diff_attrs)


# ------------------------------------------------------------------ CUDA
class _InterpolateFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, attr, rast, tri, rast_db, diff_idx):
        out, out_da = load().interpolate_fwd(
            attr=attr, rast=rast, tri=tri, rast_db=rast_db, diff_idx=diff_idx
        )
        ctx.save_for_backward(attr, rast, tri, rast_db, diff_idx)
        ctx.has_db = rast_db is not None
        return out, out_da

    @staticmethod
    def backward(ctx, g_out, g_da):
        attr, rast, tri, rast_db, diff_idx = ctx.saved_tensors
        g_out = zeros_if_none(
            g_out, torch.empty(*rast.shape[:3], attr.shape[-1], device=attr.device)
        )
        g_da = g_da.contiguous() if (g_da is not None and diff_idx.numel()) else None
        grad_attr, grad_rast, grad_db = load().interpolate_bwd(
            attr=attr,
            rast=rast,
            tri=tri,
            rast_db=rast_db if ctx.has_db else None,
            diff_idx=diff_idx,
            grad_out=g_out,
            grad_out_da=g_da,
        )
        return grad_attr, grad_rast, None, (grad_db if diff_idx.numel() else None), None


_INDEX_CACHE: dict = {}


def _index_tensor(idx: tuple, device) -> torch.Tensor:
    """Cached int32 channel list on the device (avoids a host-to-device copy per call)."""
    key = (idx, str(device))
    if key not in _INDEX_CACHE:
        _INDEX_CACHE[key] = torch.tensor(idx, dtype=torch.int32, device=device)
    return _INDEX_CACHE[key]


def interpolate_cuda(attr, rast, tri, rast_db, diff_attrs):
    squeeze = attr.ndim == 2
    a = (attr[None] if squeeze else attr).contiguous().float()
    if diff_attrs is None or rast_db is None:
        idx = []
    elif diff_attrs == "all":
        idx = list(range(a.shape[-1]))
    else:
        idx = list(diff_attrs)
    diff_idx = _index_tensor(tuple(idx), attr.device)
    db = rast_db.contiguous() if (rast_db is not None and idx) else None
    tri = tri.to(device=attr.device, dtype=torch.int32).contiguous()
    out, out_da = _InterpolateFn.apply(a, rast.contiguous(), tri, db, diff_idx)
    return out, (out_da if idx else None)
