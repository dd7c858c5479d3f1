"""Differentiable marching tetrahedra (the isosurface step of DMTet, Shen et al. 2021).

Sign convention (docs/conventions.md): SDF < 0 inside. For each tetrahedron whose four
vertices are not all on one side, the zero crossings on its sign-changing edges form one
triangle (one or three vertices inside) or a quad split into two triangles (two inside).
Crossing points ``p = (a s_b - b s_a) / (s_b - s_a)`` carry gradients to vertex
positions and SDF values; which tetrahedra and edges are used is bookkeeping without
gradient. Crossings on shared edges are computed once (welded), so the surface is
watertight. The case table below is derived at import time from the geometry of a
reference tetrahedron, so triangles always face outwards (towards positive SDF) for
positively oriented tetrahedra.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch

__all__ = ["marching_tets", "MarchingTetsResult", "TET_EDGES"]

TET_EDGES = ((0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3))


def _build_table() -> tuple[torch.Tensor, torch.Tensor]:
    """[16, 2, 3] local edge indices of up to two triangles per case, and counts [16]."""
    ref = torch.tensor([[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], dtype=torch.float64)
    table = torch.full((16, 2, 3), -1, dtype=torch.long)
    counts = torch.zeros(16, dtype=torch.long)
    for case in range(16):
        inside = [(case >> k) & 1 == 1 for k in range(4)]
        n_in = sum(inside)
        if n_in in (0, 4):
            continue
        cross = [e for e, (a, b) in enumerate(TET_EDGES) if inside[a] != inside[b]]
        pts = {e: (ref[TET_EDGES[e][0]] + ref[TET_EDGES[e][1]]) / 2 for e in cross}
        if len(cross) == 3:
            tris = [cross]
        else:
            # quad: order the four crossings into a cycle (consecutive ones share a vertex)
            cyc = [cross[0]]
            rest = cross[1:]
            while rest:
                last = set(TET_EDGES[cyc[-1]])
                nxt = next(e for e in rest if last & set(TET_EDGES[e]))
                cyc.append(nxt)
                rest.remove(nxt)
            tris = [[cyc[0], cyc[1], cyc[2]], [cyc[0], cyc[2], cyc[3]]]
        centre_in = ref[[k for k in range(4) if inside[k]]].mean(0)
        for t, tri in enumerate(tris):
            a, b, c = (pts[e] for e in tri)
            normal = torch.linalg.cross(b - a, c - a)
            if torch.dot(normal, (a + b + c) / 3 - centre_in) < 0:
                tri = [tri[0], tri[2], tri[1]]
            table[case, t] = torch.tensor(tri)
        counts[case] = len(tris)
    return table, counts


_TABLE, _COUNTS = _build_table()


@dataclass(frozen=True)
class MarchingTetsResult:
    """Output of :func:`marching_tets`.

    Attributes:
        verts: surface vertices [Nv, 3] (differentiable).
        faces: triangles [Nf, 3] int64, counter-clockwise seen from outside.
        face_ids: per face ``2 * tet_index + k`` [Nf]; the same id marks the same
            (tetrahedron, triangle slot) in every iteration.
        uvs: per-face-corner UVs [Nf * 3, 2]: face id ``f`` gets its own small
            right triangle in a regular layout over [0, 1]^2 (used for tangent frames).
        uv_idx: [Nf, 3] indices into ``uvs``.
    """

    verts: torch.Tensor
    faces: torch.Tensor
    face_ids: torch.Tensor
    uvs: torch.Tensor
    uv_idx: torch.Tensor


def _face_uvs(face_ids: torch.Tensor, num_tets: int):
    """Lay out each (tet, slot) as one half of a cell of a G x G grid over [0, 1]^2."""
    g = max(1, int(num_tets**0.5 + 0.999))
    tet = face_ids // 2
    slot = face_ids % 2
    cx = (tet % g).to(torch.float32)
    cy = (tet // g).to(torch.float32)
    pad = 0.1  # keep neighbouring cells apart
    lo, hi = pad, 1.0 - pad
    corner = torch.tensor(
        [[[lo, lo], [hi, lo], [lo, hi]], [[hi, hi], [lo, hi], [hi, lo]]],
        device=face_ids.device,
    )  # [2 slots, 3 corners, 2]
    uv = (corner[slot] + torch.stack([cx, cy], -1)[:, None, :]) / g
    nf = len(face_ids)
    return uv.reshape(-1, 2), torch.arange(nf * 3, device=face_ids.device).view(nf, 3)


@functools.lru_cache(maxsize=8)
def _tables_on(device: str) -> tuple:
    """The case tables on ``device``, copied once (a host-to-device copy per call would
    synchronise the GPU every iteration)."""
    dev = torch.device(device)
    bits = torch.tensor([1, 2, 4, 8], device=dev)
    return _TABLE.to(dev), _COUNTS.to(dev), torch.tensor(TET_EDGES, device=dev), bits


def marching_tets(verts: torch.Tensor, sdf: torch.Tensor, tets: torch.Tensor) -> MarchingTetsResult:
    """Extract the zero level set of ``sdf`` on a tetrahedral grid.

    Args:
        verts: grid vertices [N, 3] (differentiable).
        sdf: signed distance per vertex [N], negative inside (differentiable).
        tets: [M, 4] vertex indices of positively oriented tetrahedra.

    Returns:
        :class:`MarchingTetsResult`.
    """
    device = verts.device
    table, counts, edge_pairs, bits = _tables_on(str(device))
    with torch.no_grad():
        inside = sdf < 0
        code = (inside[tets].long() * bits).sum(-1)
        valid = (code > 0) & (code < 15)
        tet_idx = torch.nonzero(valid).squeeze(1)
        vt = tets[tet_idx]
        # crossing edges, welded: unique sorted vertex pairs
        all_edges = torch.sort(vt[:, edge_pairs].reshape(-1, 2), dim=1).values
        crossing = inside[all_edges[:, 0]] != inside[all_edges[:, 1]]
        # unique vertex pairs through one int64 key (same lexicographic order, much faster
        # than unique(dim=0) on the CPU)
        crossing_edges = all_edges[crossing]
        n_v = max(int(verts.shape[0]), 1)
        key, inv = torch.unique(
            crossing_edges[:, 0] * n_v + crossing_edges[:, 1], return_inverse=True
        )
        uniq = torch.stack([key // n_v, key % n_v], -1)
        edge_to_vert = torch.full((len(all_edges),), -1, dtype=torch.long, device=device)
        edge_to_vert[crossing] = inv
        edge_to_vert = edge_to_vert.view(-1, 6)
        case = code[tet_idx]
        n_tri = counts[case]
    # crossing points (differentiable)
    sa, sb = sdf.index_select(0, uniq[:, 0]), sdf.index_select(0, uniq[:, 1])
    va, vb = verts.index_select(0, uniq[:, 0]), verts.index_select(0, uniq[:, 1])
    denom = sb - sa
    new_verts = (va * sb[:, None] - vb * sa[:, None]) / denom[:, None]
    with torch.no_grad():
        faces, ids = [], []
        for k in range(2):
            sel = n_tri > k
            local = table[case[sel], k]  # [n, 3] local edge indices
            faces.append(torch.gather(edge_to_vert[sel], 1, local))
            ids.append(tet_idx[sel] * 2 + k)
        faces = torch.cat(faces)
        face_ids = torch.cat(ids)
        order = torch.argsort(face_ids)
        faces, face_ids = faces[order], face_ids[order]
        uvs, uv_idx = _face_uvs(face_ids, len(tets))
    return MarchingTetsResult(new_verts, faces, face_ids, uvs, uv_idx)
