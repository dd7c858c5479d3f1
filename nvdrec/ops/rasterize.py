"""Triangle rasterization with perspective-correct barycentrics and depth peeling.

The reference implementation rasterizes in homogeneous 2D (Olano and Greer, "Triangle
Scan Conversion using 2D Homogeneous Coordinates", 1997): for a pixel with NDC centre
(px, py) the unnormalised barycentrics of a triangle with clip-space vertices
(x_i, y_i, z_i, w_i) are ``lam = (x - px w) x (y - py w)`` (a cross product over the
three vertices), which is linear in (px, py). ``b = lam / sum(lam)`` are the
perspective-correct barycentrics of the point where the pixel's ray meets the
triangle's plane; the pixel is covered when every ``b_i >= 0``, that point lies in
front of the camera (``w > 0``) and its depth is inside the near/far range. This needs
no explicit clipping and handles triangles that cross the camera plane.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..native.build import load
from ._common import check_tensor, gather_rows, pick_backend, zeros_if_none

__all__ = ["rasterize", "DepthPeeler", "RasterSettings"]

# Pairs (triangle, pixel) evaluated at once by the torch reference; bounds memory use
# (about 150 bytes per pair).
_PAIR_BUDGET = 1 << 21
_INT32_MASK = (1 << 31) - 1
MAX_DB = 1e4  # bound of |rast_db|: a barycentric change of 1e4 per pixel


@dataclass(frozen=True)
class RasterSettings:
    """Options of :func:`rasterize`.

    Attributes:
        resolution: (H, W) of the output.
        grad_db: let gradients flow through the image-space derivatives ``rast_db``.
    """

    resolution: tuple[int, int]
    grad_db: bool = True


def _expand_triangles(pos: torch.Tensor, tri: torch.Tensor, ranges: torch.Tensor | None):
    """(batch index [N], triangle index [N], clip vertices [N, 3, 4]) of every triangle
    that is drawn, in instanced ([B, V, 4]) or range ([V, 4] + ranges [B, 2]) mode."""
    tri_l = tri.long()
    if pos.ndim == 3:
        n_batch, n_tri = pos.shape[0], tri.shape[0]
        b = torch.arange(n_batch, device=pos.device).repeat_interleave(n_tri)
        t = torch.arange(n_tri, device=pos.device).repeat(n_batch)
        verts = pos[:, tri_l].reshape(-1, 3, 4)
        return b, t, verts, n_batch
    if ranges is None:
        ranges = torch.tensor([[0, tri.shape[0]]], dtype=torch.int32)
    ranges = ranges.to(device=pos.device, dtype=torch.long)
    counts = ranges[:, 1].clamp(min=0)
    b = torch.arange(len(ranges), device=pos.device).repeat_interleave(counts)
    first = torch.cumsum(counts, 0) - counts
    t = torch.arange(int(counts.sum()), device=pos.device) - first[b] + ranges[b, 0]
    if len(t) and (t.min() < 0 or t.max() >= tri.shape[0]):
        raise ValueError(f"ranges {ranges.tolist()} go outside the {tri.shape[0]} triangles")
    return b, t, pos[tri_l[t]], len(ranges)


def _edge_coeffs(v: torch.Tensor):
    """Coefficients of lam(px, py) = A + Bx px + By py for clip vertices v [..., 3, 4]."""
    x, y, w = v[..., 0], v[..., 1], v[..., 3]

    def cross(a, c):
        return torch.stack(
            [
                a[..., 1] * c[..., 2] - a[..., 2] * c[..., 1],
                a[..., 2] * c[..., 0] - a[..., 0] * c[..., 2],
                a[..., 0] * c[..., 1] - a[..., 1] * c[..., 0],
            ],
            dim=-1,
        )

    return cross(x, y), cross(y, w), cross(w, x)


def _sortable(depth: torch.Tensor) -> torch.Tensor:
    """Map float32 depth to int64 whose order matches the float order."""
    bits = depth.float().contiguous().view(torch.int32).long()
    return torch.where(bits < 0, (~bits) & 0xFFFFFFFF, bits | 0x80000000)


def _bbox(v: torch.Tensor, h: int, w: int):
    """Pixel index box (x0, x1, y0, y1) per triangle, and whether it may be drawn."""
    x, y, z, ww = v[..., 0], v[..., 1], v[..., 2], v[..., 3]
    outside = (
        (x > ww).all(-1)
        | (x < -ww).all(-1)
        | (y > ww).all(-1)
        | (y < -ww).all(-1)
        | (z > ww).all(-1)
        | (z < -ww).all(-1)
        | (ww <= 0).all(-1)
    )
    front = (ww > 0).all(-1)
    safe_w = torch.where(ww > 0, ww, torch.ones_like(ww))
    sx = (x / safe_w + 1.0) * 0.5 * w - 0.5
    sy = (y / safe_w + 1.0) * 0.5 * h - 0.5
    x0 = torch.where(front, torch.ceil(sx.min(-1).values - 1e-4), torch.zeros_like(sx[..., 0]))
    x1 = torch.where(
        front, torch.floor(sx.max(-1).values + 1e-4), torch.full_like(sx[..., 0], w - 1)
    )
    y0 = torch.where(front, torch.ceil(sy.min(-1).values - 1e-4), torch.zeros_like(sy[..., 0]))
    y1 = torch.where(
        front, torch.floor(sy.max(-1).values + 1e-4), torch.full_like(sy[..., 0], h - 1)
    )
    x0, y0 = x0.clamp(0, w - 1).long(), y0.clamp(0, h - 1).long()
    x1 = x1.clamp(-1, w - 1).long()
    y1 = y1.clamp(-1, h - 1).long()
    ok = ~outside & (x1 >= x0) & (y1 >= y0)
    return x0, x1, y0, y1, ok


def _coverage(lam_a, lam_bx, lam_by, v, px, py):
    """Barycentrics, depth and the coverage test for pixel centres (px, py) in NDC."""
    lam = lam_a + lam_bx * px[:, None] + lam_by * py[:, None]
    s = lam.sum(-1)
    s_safe = torch.where(s.abs() > 1e-30, s, torch.ones_like(s))
    b = lam / s_safe[:, None]
    wp = (b * v[..., 3]).sum(-1)
    zp = (b * v[..., 2]).sum(-1)
    wp_safe = torch.where(wp > 0, wp, torch.ones_like(wp))
    depth = zp / wp_safe
    inside = (s.abs() > 1e-30) & (b >= 0).all(-1) & (wp > 0) & (depth >= -1.0) & (depth <= 1.0)
    return b, depth, inside


def _find_fragments(pos, tri, ranges, resolution, prev_key=None):
    """Non-differentiable search for the nearest fragment per pixel.

    Returns (winner key [B*H*W] int64, -1 where empty; batch count). The key orders by
    depth, then by triangle index, so ties resolve the same way on every backend.
    """
    h, w = resolution
    with torch.no_grad():
        b_idx, t_idx, verts, n_batch = _expand_triangles(pos.detach(), tri, ranges)
        verts = verts.float()
        lam_a, lam_bx, lam_by = _edge_coeffs(verts)
        x0, x1, y0, y1, ok = _bbox(verts, h, w)
        sel = torch.nonzero(ok).squeeze(1)
        big = torch.iinfo(torch.long).max
        best = torch.full((n_batch * h * w,), big, dtype=torch.long, device=pos.device)
        if len(sel):
            bw = (x1 - x0 + 1)[sel]
            area = bw * (y1 - y0 + 1)[sel]
            cum = torch.cumsum(area, 0)
            # chunk boundaries so that each chunk evaluates about _PAIR_BUDGET pairs
            total = int(cum[-1])
            marks = torch.arange(_PAIR_BUDGET, max(total, _PAIR_BUDGET), _PAIR_BUDGET)
            cuts = torch.searchsorted(cum, marks.to(cum.device), right=True).tolist()
            bounds = sorted(set([0, *cuts, len(sel)]))
            for c0, c1 in zip(bounds[:-1], bounds[1:]):
                if c1 <= c0:
                    continue
                s = sel[c0:c1]
                a = area[c0:c1]
                local_tri = torch.repeat_interleave(torch.arange(c1 - c0, device=pos.device), a)
                start = torch.cumsum(a, 0) - a
                k = torch.arange(int(a.sum()), device=pos.device) - start[local_tri]
                g = s[local_tri]
                pxi = x0[g] + k % bw[c0:c1][local_tri]
                pyi = y0[g] + k // bw[c0:c1][local_tri]
                px = (pxi.float() + 0.5) * (2.0 / w) - 1.0
                py = (pyi.float() + 0.5) * (2.0 / h) - 1.0
                _, depth, inside = _coverage(lam_a[g], lam_bx[g], lam_by[g], verts[g], px, py)
                pix = (b_idx[g] * h + pyi) * w + pxi
                key = (_sortable(depth) << 31) | g
                if prev_key is not None:
                    inside &= key > prev_key[pix]
                best.scatter_reduce_(0, pix[inside], key[inside], reduce="amin")
        best[best == big] = -1
    return best, b_idx, t_idx, n_batch


def _shade_fragments(pos, tri, ranges, resolution, best, b_idx, t_idx, n_batch, grad_db):
    """Differentiable (u, v, z/w, id) and derivatives for the winning fragments."""
    h, w = resolution
    hit = torch.nonzero(best >= 0).squeeze(1)
    g = best[hit] & _INT32_MASK
    tri_l = tri.long()
    # index_select gathers (deterministic backward on the CPU, unlike x[idx])
    if pos.ndim == 3:
        flat = b_idx[g, None] * pos.shape[1] + tri_l[t_idx[g]]
        verts = gather_rows(pos.reshape(-1, pos.shape[-1]), flat)
    else:
        verts = gather_rows(pos, tri_l[t_idx[g]])
    pxi, pyi = hit % w, (hit // w) % h
    px = (pxi.to(pos.dtype) + 0.5) * (2.0 / w) - 1.0
    py = (pyi.to(pos.dtype) + 0.5) * (2.0 / h) - 1.0
    # the product form lam = (x - px w) x (y - py w) loses less precision than the
    # expanded linear form used for the coverage search
    r1 = verts[..., 0] - px[:, None] * verts[..., 3]
    r2 = verts[..., 1] - py[:, None] * verts[..., 3]
    lam = torch.linalg.cross(r1, r2, dim=-1)
    s = lam.sum(-1, keepdim=True)
    s = torch.where(s.abs() > 1e-30, s, torch.ones_like(s))
    b = lam / s
    wp = (b * verts[..., 3]).sum(-1)
    depth = (b * verts[..., 2]).sum(-1) / torch.where(wp > 0, wp, torch.ones_like(wp))
    ids = (t_idx[g] + 1).to(pos.dtype)
    vals = torch.stack([b[:, 0], b[:, 1], depth, ids], dim=-1)
    rast = torch.zeros(n_batch * h * w, 4, device=pos.device, dtype=pos.dtype)
    rast = rast.index_put((hit,), vals).view(n_batch, h, w, 4)
    # d b / d(px, py): d lam / d px = -(w x r2), d lam / d py = -(r1 x w); one pixel
    # is 2/W (2/H) in NDC
    lam_bx = torch.linalg.cross(r2, verts[..., 3], dim=-1)
    lam_by = torch.linalg.cross(verts[..., 3], r1, dim=-1)
    db_dx = (lam_bx * s - lam * lam_bx.sum(-1, keepdim=True)) / (s * s) * (2.0 / w)
    db_dy = (lam_by * s - lam * lam_by.sum(-1, keepdim=True)) / (s * s) * (2.0 / h)
    dvals = torch.stack([db_dx[:, 0], db_dy[:, 0], db_dx[:, 1], db_dy[:, 1]], dim=-1)
    # sliver triangles can give unbounded derivatives: bound them (no gradient beyond)
    dvals = dvals.clamp(-MAX_DB, MAX_DB)
    if not grad_db:
        dvals = dvals.detach()
    rast_db = torch.zeros(n_batch * h * w, 4, device=pos.device, dtype=pos.dtype)
    rast_db = rast_db.index_put((hit,), dvals).view(n_batch, h, w, 4)
    return rast, rast_db


def _rasterize_ref(pos, tri, resolution, ranges=None, grad_db=True, prev_key=None):
    """Pure-torch rasterizer; returns (rast, rast_db, winner keys)."""
    best, b_idx, t_idx, n_batch = _find_fragments(pos, tri, ranges, resolution, prev_key)
    rast, rast_db = _shade_fragments(
        pos, tri, ranges, resolution, best, b_idx, t_idx, n_batch, grad_db
    )
    return rast, rast_db, best


def _check(pos, tri, resolution, ranges):
    check_tensor("pos", pos, (2, 3), last=4)
    check_tensor("tri", tri, (2,), last=3, dtype=(torch.int32, torch.int64))
    if pos.ndim == 2 and ranges is not None:
        check_tensor("ranges", ranges, (2,), last=2)
    if pos.ndim == 3 and ranges is not None:
        raise ValueError("ranges can only be used with pos of shape [V, 4] (range mode)")
    if len(resolution) != 2 or min(resolution) < 1:
        raise ValueError(f"resolution must be (H, W) with positive sizes, got {resolution}")
    if pos.dtype not in (torch.float32, torch.float64):
        raise ValueError(f"pos must be float32 (float64 for the torch backend), got {pos.dtype}")
    return int(resolution[0]), int(resolution[1])


def rasterize(
    pos: torch.Tensor,
    tri: torch.Tensor,
    resolution: tuple[int, int],
    ranges: torch.Tensor | None = None,
    grad_db: bool = True,
    backend: str = "auto",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rasterize triangles; nearest depth wins.

    Args:
        pos: clip-space vertex positions, float32 [B, V, 4] (instanced mode) or [V, 4]
            (range mode).
        tri: triangle vertex indices, int32 [T, 3].
        resolution: (H, W).
        ranges: int32 [B, 2] (first triangle, count) per image in range mode.
        grad_db: propagate gradients through ``rast_db``.
        backend: "auto", "torch" or "cuda".

    Returns:
        rast: float32 [B, H, W, 4] = (u, v, z/w, triangle_id + 1), zero where empty. The
            pixel's point is ``u * v0 + v * v1 + (1 - u - v) * v2`` (perspective
            correct). Row i is NDC y = (i + 0.5) / H * 2 - 1 (docs/conventions.md).
        rast_db: float32 [B, H, W, 4] = (du/dX, du/dY, dv/dX, dv/dY) per pixel step.
    """
    h, w = _check(pos, tri, resolution, ranges)
    chosen = pick_backend(backend, pos)
    if chosen == "nvdiffrast":
        from . import _nvdiffrast as nv

        return nv.module().rasterize(
            nv.ctx_for(pos), pos, tri.int(), (h, w), ranges=ranges, grad_db=grad_db
        )
    if chosen == "cuda":
        rast, rast_db, _ = rasterize_cuda(pos, tri, (h, w), ranges, grad_db, None)
        return rast, rast_db
    rast, rast_db, _ = _rasterize_ref(pos, tri, (h, w), ranges, grad_db)
    return rast, rast_db


class DepthPeeler:
    """Successive depth layers of the same geometry, nearest first.

    Use as a context manager::

        with DepthPeeler(pos, tri, (H, W)) as peeler:
            for _ in range(num_layers):
                rast, rast_db = peeler.rasterize_next_layer()

    Each layer holds, per pixel, the nearest fragment behind the previous layer's
    fragment (ordered by depth, then triangle id); pixels with no more fragments are 0.
    """

    def __init__(self, pos, tri, resolution, ranges=None, grad_db=True, backend="auto"):
        self.resolution = _check(pos, tri, resolution, ranges)
        self.pos, self.tri, self.ranges, self.grad_db = pos, tri, ranges, grad_db
        self.backend = pick_backend(backend, pos)
        self._prev = None
        self._nv = None
        if self.backend == "nvdiffrast":
            from . import _nvdiffrast as nv

            self._nv = nv.module().DepthPeeler(
                nv.ctx_for(pos), pos, tri.int(), self.resolution, ranges=ranges, grad_db=grad_db
            )

    def __enter__(self) -> DepthPeeler:
        self._prev = None
        if self._nv is not None:
            self._nv.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._prev = None
        if self._nv is not None:
            self._nv.__exit__(*exc)

    def rasterize_next_layer(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(rast, rast_db) of the next layer, same layout as :func:`rasterize`."""
        if self._nv is not None:
            return self._nv.rasterize_next_layer()
        prev = self._prev
        if self.backend == "cuda":
            rast, rast_db, key = rasterize_cuda(
                self.pos, self.tri, self.resolution, self.ranges, self.grad_db, prev
            )
        else:
            rast, rast_db, key = _rasterize_ref(
                self.pos, self.tri, self.resolution, self.ranges, self.grad_db, prev
            )
        # an exhausted pixel stays empty in later layers: give it the largest key
        self._prev = torch.where(key < 0, torch.full_like(key, torch.iinfo(torch.long).max), key)
        return rast, rast_db


# ------------------------------------------------------------------ CUDA
class _RasterizeFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, pos, tri, slot_b, slot_t, n_batch, h, w, prev, grad_db):
        rast, rast_db, key = load().rasterize_fwd(
            pos=pos,
            tri=tri,
            slot_batch=slot_b,
            slot_tri=slot_t,
            num_batch=n_batch,
            height=h,
            width=w,
            prev=prev,
        )
        ctx.save_for_backward(pos, tri, rast)
        ctx.grad_db = grad_db
        ctx.mark_non_differentiable(key)
        return rast, rast_db, key

    @staticmethod
    def backward(ctx, g_rast, g_db, _g_key):
        pos, tri, rast = ctx.saved_tensors
        g_rast = zeros_if_none(g_rast, rast)
        g_db = g_db.contiguous() if (ctx.grad_db and g_db is not None) else None
        grad_pos = load().rasterize_bwd(pos=pos, tri=tri, rast=rast, grad_rast=g_rast, grad_db=g_db)
        return grad_pos, None, None, None, None, None, None, None, None


def rasterize_cuda(pos, tri, resolution, ranges, grad_db, prev):
    """(rast, rast_db, keys) with the same layout as the torch reference."""
    h, w = resolution
    pos = pos.contiguous()
    tri = tri.to(device=pos.device, dtype=torch.int32).contiguous()
    empty = torch.zeros(0, dtype=torch.int32, device=pos.device)
    if pos.ndim == 3:
        n_batch, slot_b, slot_t = pos.shape[0], empty, empty
    else:
        if ranges is None:
            ranges = torch.tensor([[0, tri.shape[0]]])
        ranges = ranges.to(device=pos.device, dtype=torch.long)
        counts = ranges[:, 1].clamp(min=0)
        n_batch = len(ranges)
        slot_b = torch.arange(n_batch, device=pos.device).repeat_interleave(counts)
        first = torch.cumsum(counts, 0) - counts
        slot_t = torch.arange(len(slot_b), device=pos.device) - first[slot_b] + ranges[slot_b, 0]
        slot_b, slot_t = slot_b.int().contiguous(), slot_t.int().contiguous()
    if prev is not None:
        prev = prev.contiguous()
    return _RasterizeFn.apply(pos, tri, slot_b, slot_t, n_batch, h, w, prev, grad_db)
