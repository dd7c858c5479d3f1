"""Analytic silhouette antialiasing with visibility gradients.

The method follows the description in Laine et al., "Modular Primitives for
High-Performance Differentiable Rendering" (2020): wherever two neighbouring pixels show
different triangles, find the silhouette edge of the nearer triangle that passes between
the two pixel centres and blend the two colours by how far past the midpoint the edge
lies. Because the blend weight is a function of the projected edge vertices, gradients
of the image reach the vertex positions, which lets silhouettes move during
optimisation.

Details of this implementation: the pair (front pixel ``f``, other pixel ``o``) is
examined; the crossing parameter ``t`` in (0, 1) is where the front triangle's edge cuts
the segment from ``f``'s centre to ``o``'s centre. If ``t > 1/2`` the triangle reaches
into ``o`` by ``t - 1/2`` of a pixel and ``o`` takes that fraction of ``f``'s colour; if
``t < 1/2`` ``f`` gives up ``1/2 - t`` to ``o``'s colour. Horizontal pairs use only edges
that are closer to vertical, vertical pairs only edges closer to horizontal, so each
edge is counted once. An edge is a silhouette when it has no neighbouring triangle, is
shared by more than two triangles, or its two triangles have opposite screen-space
winding.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..native.build import load
from ._common import boost_gradient, check_tensor, gather_rows, pick_backend

__all__ = ["antialias", "antialias_construct_topology_hash", "TopologyHash"]


@dataclass(frozen=True)
class TopologyHash:
    """Edge adjacency of a triangle list: for triangle t and edge k (vertices k, k+1),
    ``neighbor[t, k]`` is the triangle across that edge, -1 on a boundary, -2 when the
    edge is shared by more than two triangles."""

    neighbor: torch.Tensor  # [T, 3] int64
    num_triangles: int


def antialias_construct_topology_hash(tri: torch.Tensor) -> TopologyHash:
    """Edge adjacency of ``tri`` [T, 3] (build once, reuse while the topology is fixed)."""
    check_tensor("tri", tri, (2,), last=3)
    t = tri.long()
    n_tri = t.shape[0]
    a = t
    b = t[:, [1, 2, 0]]
    big = int(t.max()) + 1 if n_tri else 1
    key = (torch.minimum(a, b) * big + torch.maximum(a, b)).reshape(-1)
    order = torch.argsort(key, stable=True)
    sk = key[order]
    _, counts = torch.unique_consecutive(sk, return_counts=True)
    starts = torch.cumsum(counts, 0) - counts
    nbr = torch.full((3 * n_tri,), -1, dtype=torch.long, device=tri.device)
    two = counts == 2
    e0, e1 = order[starts[two]], order[starts[two] + 1]
    nbr[e0] = e1 // 3
    nbr[e1] = e0 // 3
    many = torch.repeat_interleave(counts > 2, counts)
    nbr[order[many]] = -2
    return TopologyHash(nbr.view(n_tri, 3), n_tri)


def _screen(pos_b: torch.Tensor, h: int, w: int):
    """Clip positions [..., 4] -> continuous pixel coordinates [..., 2] and w > 0 mask."""
    ww = pos_b[..., 3:4]
    ok = ww[..., 0] > 0
    safe = torch.where(ww > 0, ww, torch.ones_like(ww))
    x = (pos_b[..., 0:1] / safe + 1) * 0.5 * w
    y = (pos_b[..., 1:2] / safe + 1) * 0.5 * h
    return torch.cat([x, y], -1), ok


def _antialias_ref(color, rast, pos, tri, topology_hash, pos_gradient_boost):
    n_batch, h, w, c = color.shape
    topo = topology_hash if topology_hash is not None else antialias_construct_topology_hash(tri)
    pos = boost_gradient(pos, pos_gradient_boost)
    if pos.ndim == 2:
        pos = pos[None].expand(n_batch, *pos.shape)
    tri_l = tri.long()
    scr, ok_v = _screen(pos, h, w)  # [B, V, 2], [B, V]
    # index_select gathers here and below: deterministic backward on the CPU, unlike x[idx]
    tri_scr = scr.index_select(1, tri_l.reshape(-1)).view(n_batch, *tri_l.shape, 2)  # [B, T, 3, 2]
    e1 = tri_scr[:, :, 1] - tri_scr[:, :, 0]
    e2 = tri_scr[:, :, 2] - tri_scr[:, :, 0]
    area_sign = torch.sign((e1[..., 0] * e2[..., 1] - e1[..., 1] * e2[..., 0]).detach())  # [B, T]
    tri_ok = ok_v[:, tri_l].all(-1)  # [B, T]

    tid = rast[..., 3].long() - 1
    depth = rast[..., 2]
    out = color
    deltas_idx, deltas_val = [], []
    flat_color = color.reshape(-1, c)
    for axis in (2, 1):  # horizontal pairs (along W), then vertical (along H)
        if axis == 2:
            ta, tb = tid[:, :, :-1], tid[:, :, 1:]
            da, db = depth[:, :, :-1], depth[:, :, 1:]
        else:
            ta, tb = tid[:, :-1], tid[:, 1:]
            da, db = depth[:, :-1], depth[:, 1:]
        diff = ta != tb
        bi, yi, xi = torch.nonzero(diff, as_tuple=True)
        if len(bi) == 0:
            continue
        tA, tB = ta[bi, yi, xi], tb[bi, yi, xi]
        zA, zB = da[bi, yi, xi], db[bi, yi, xi]
        a_front = (tB < 0) | ((tA >= 0) & (zA < zB))
        pa = (bi * h + yi) * w + xi
        pb = pa + (1 if axis == 2 else w)
        pf = torch.where(a_front, pa, pb)
        po = torch.where(a_front, pb, pa)
        tf = torch.where(a_front, tA, tB)
        cx = xi.to(color.dtype) + 0.5
        cy = yi.to(color.dtype) + 0.5
        step = torch.tensor([1.0, 0.0] if axis == 2 else [0.0, 1.0], device=color.device)
        ca = torch.stack([cx, cy], -1)
        cf = torch.where(a_front[:, None], ca, ca + step)
        co = torch.where(a_front[:, None], ca + step, ca)
        verts = gather_rows(tri_scr.reshape(-1, 3, 2), bi * tri_scr.shape[1] + tf)  # [P, 3, 2]
        best_t = torch.full_like(cx, 2.0)
        found_t = torch.zeros_like(cx)
        for k in range(3):
            pa_, pb_ = verts[:, k], verts[:, (k + 1) % 3]
            d = pb_ - pa_
            # orientation filter: horizontal pairs take near-vertical edges and v.v.
            if axis == 2:
                orient = d[:, 0].abs() <= d[:, 1].abs()
            else:
                orient = d[:, 1].abs() < d[:, 0].abs()
            nb = topo.neighbor[tf, k]
            nb_sign = area_sign[bi, nb.clamp(min=0)]
            silhouette = (nb < 0) | (nb_sign != area_sign[bi, tf]) | ~tri_ok[bi, nb.clamp(min=0)]
            side_f = d[:, 0] * (cf[:, 1] - pa_[:, 1]) - d[:, 1] * (cf[:, 0] - pa_[:, 0])
            side_o = d[:, 0] * (co[:, 1] - pa_[:, 1]) - d[:, 1] * (co[:, 0] - pa_[:, 0])
            crosses = side_f * side_o < 0
            denom = torch.where(crosses, side_f - side_o, torch.ones_like(side_f))
            t = side_f / denom
            # the crossing point must lie on the edge segment itself
            pt = cf + (co - cf) * t[:, None]
            dd = (d * d).sum(-1).clamp(min=1e-20)
            s = ((pt - pa_) * d).sum(-1) / dd
            use = crosses & orient & silhouette & (s >= 0) & (s <= 1) & tri_ok[bi, tf]
            better = use & (t.detach() < best_t)
            best_t = torch.where(better, t.detach(), best_t)
            found_t = torch.where(better, t, found_t)
        hit = best_t <= 1.0
        if not bool(hit.any()):
            continue
        t = found_t[hit]
        pf_h, po_h = pf[hit], po[hit]
        col_f, col_o = gather_rows(flat_color, pf_h), gather_rows(flat_color, po_h)
        into_o = t > 0.5
        amount = (t - 0.5).abs()[:, None]
        target = torch.where(into_o, po_h, pf_h)
        val = torch.where(into_o[:, None], (col_f - col_o), (col_o - col_f)) * amount
        deltas_idx.append(target)
        deltas_val.append(val)
    if deltas_idx:
        idx = torch.cat(deltas_idx)
        vals = torch.cat(deltas_val)
        out = flat_color.index_add(0, idx, vals).view(n_batch, h, w, c)
    return out


def antialias(
    color: torch.Tensor,
    rast: torch.Tensor,
    pos: torch.Tensor,
    tri: torch.Tensor,
    topology_hash: TopologyHash | None = None,
    pos_gradient_boost: float = 1.0,
    backend: str = "auto",
) -> torch.Tensor:
    """Antialias silhouettes and produce visibility gradients for ``pos``.

    Args:
        color: [B, H, W, C] shaded image.
        rast: [B, H, W, 4] output of :func:`rasterize` for the same geometry.
        pos: clip-space positions [B, V, 4] or [V, 4] used for rasterizing.
        tri: int32 [T, 3].
        topology_hash: from :func:`antialias_construct_topology_hash` (optional cache).
        pos_gradient_boost: multiplies the gradient that reaches ``pos``.

    Returns:
        [B, H, W, C] antialiased colour.
    """
    check_tensor("color", color, (4,))
    check_tensor("rast", rast, (4,), last=4)
    check_tensor("pos", pos, (2, 3), last=4)
    check_tensor("tri", tri, (2,), last=3, dtype=(torch.int32, torch.int64))
    if rast.shape[:3] != color.shape[:3]:
        raise ValueError(
            f"color {tuple(color.shape)} and rast {tuple(rast.shape)} differ in [B, H, W]"
        )
    if topology_hash is not None and topology_hash.num_triangles != tri.shape[0]:
        raise ValueError("topology_hash was built for a different triangle count")
    chosen = pick_backend(backend, color, rast, pos)
    if chosen == "nvdiffrast":
        from ._nvdiffrast import module

        # nvdiffrast builds its own topology hash; ours is a different object
        return module().antialias(
            color, rast, pos, tri.int(), pos_gradient_boost=pos_gradient_boost
        )
    if chosen == "cuda":
        topo = topology_hash or antialias_construct_topology_hash(tri)
        return antialias_cuda(color, rast, pos, tri, topo, pos_gradient_boost)
    return _antialias_ref(color, rast, pos, tri, topology_hash, pos_gradient_boost)


# ------------------------------------------------------------------ CUDA
class _AntialiasFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, color, pos, rast, tri, neighbor, boost):
        out = load().antialias_fwd(color=color, rast=rast, pos=pos, tri=tri, neighbor=neighbor)
        ctx.save_for_backward(color, pos, rast, tri, neighbor)
        ctx.boost = boost
        return out

    @staticmethod
    def backward(ctx, g_out):
        color, pos, rast, tri, neighbor = ctx.saved_tensors
        g_color, g_pos = load().antialias_bwd(
            color=color,
            rast=rast,
            pos=pos,
            tri=tri,
            neighbor=neighbor,
            grad_out=g_out.contiguous(),
            boost=ctx.boost,
        )
        return g_color, g_pos, None, None, None, None


def antialias_cuda(color, rast, pos, tri, topo, boost):
    tri = tri.to(device=color.device, dtype=torch.int32).contiguous()
    neighbor = topo.neighbor.to(device=color.device, dtype=torch.int32).contiguous()
    return _AntialiasFn.apply(
        color.contiguous().float(),
        pos.contiguous().float(),
        rast.contiguous(),
        tri,
        neighbor,
        float(boost),
    )
