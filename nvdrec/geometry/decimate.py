"""Mesh decimation to a triangle budget: quadric error edge collapses, in parallel rounds.

Garland and Heckbert ("Surface Simplification Using Quadric Error Metrics", 1997): every
vertex carries the sum of the squared-distance quadrics of the planes of its faces; an
edge (a, b) collapses to the point p among {a, b, (a + b) / 2} with the smallest
``p^T (Q_a + Q_b) p``. Here the quadrics are recomputed from the current mesh every round
(the "memoryless" variant of Lindstrom and Turk, 1998) and each round collapses a set of
edges that are cheapest among all edges within two rings of them, so the collapses of a
round touch disjoint neighbourhoods and are checked and applied together with tensor
operations (CPU or GPU, no per-edge Python loop). A collapse is skipped when it would make
the mesh non-manifold (its endpoints share more than the two opposite vertices: the link
condition), flip or squash one of the faces around it, or move a boundary vertex (open
boundaries and the silhouettes they form stay as they are).
"""

from __future__ import annotations

import torch

from ..structures.mesh import Mesh

__all__ = ["decimate"]


def _face_quadrics(v: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """Area-weighted plane quadric [T, 4, 4] of every face."""
    p0, p1, p2 = v[f[:, 0]], v[f[:, 1]], v[f[:, 2]]
    n = torch.linalg.cross(p1 - p0, p2 - p0, dim=-1)
    area2 = n.norm(dim=-1, keepdim=True)
    n = n / area2.clamp(min=1e-30)
    plane = torch.cat([n, -(n * p0).sum(-1, keepdim=True)], -1)  # [T, 4]
    return plane[:, :, None] * plane[:, None, :] * (0.5 * area2[..., None])


def _edges(f: torch.Tensor, n_v: int):
    """Unique undirected edges [E, 2] (a < b) and how many faces use each [E]."""
    e = torch.cat([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]]).sort(1).values
    key, count = torch.unique(e[:, 0] * n_v + e[:, 1], return_counts=True)
    return torch.stack([key // n_v, key % n_v], 1), count


def _neighbour_min(edges: torch.Tensor, value: torch.Tensor, n_v: int) -> torch.Tensor:
    """Per vertex, the minimum of ``value`` [E] over its edges (inf for none)."""
    out = torch.full((n_v,), float("inf"), dtype=value.dtype, device=value.device)
    out.scatter_reduce_(0, edges[:, 0], value, "amin")
    return out.scatter_reduce_(0, edges[:, 1], value, "amin")


def _common_neighbours(edges: torch.Tensor, cand: torch.Tensor, n_v: int) -> torch.Tensor:
    """For candidate edges cand [C, 2], how many vertices are adjacent to both ends."""
    both = torch.cat([edges, edges.flip(1)])  # directed
    order = torch.argsort(both[:, 0] * n_v + both[:, 1])
    both = both[order]
    keys = both[:, 0] * n_v + both[:, 1]
    start = torch.searchsorted(both[:, 0].contiguous(), torch.arange(n_v + 1, device=edges.device))
    a, b = cand[:, 0], cand[:, 1]
    deg = start[a + 1] - start[a]
    owner = torch.repeat_interleave(torch.arange(len(cand), device=edges.device), deg)
    first = torch.cumsum(deg, 0) - deg
    idx = start[a][owner] + torch.arange(len(owner), device=edges.device) - first[owner]
    w = both[idx, 1]  # neighbours of a
    probe = b[owner] * n_v + w
    pos = torch.searchsorted(keys, probe).clamp(max=len(keys) - 1)
    hit = (keys[pos] == probe).long()
    return torch.zeros(len(cand), dtype=torch.long, device=edges.device).index_add_(0, owner, hit)


def _one_round(v, f, budget, min_cos, blocked, passes=4):
    """One round of independent collapses; returns (v, f, collapsed count, blocked).

    ``blocked``: sorted int64 keys a * V + b of edges whose collapse failed a check (they
    are not tried again). Up to ``passes`` selection passes: each takes the edges that are
    cheapest among all edges within two rings (so no face holds vertices of two
    collapses), checks them, and freezes the one-ring of every accepted collapse for the
    next pass."""
    n_v = len(v)
    dev = v.device
    edges, uses = _edges(f, n_v)
    a, b = edges[:, 0], edges[:, 1]
    keys = a * n_v + b
    # vertices on an open (or non-manifold) edge stay put
    locked = torch.zeros(n_v, dtype=torch.bool, device=dev)
    locked[edges[uses != 2].reshape(-1)] = True
    q = torch.zeros(n_v, 4, 4, dtype=v.dtype, device=dev)
    fq = _face_quadrics(v, f)
    for k in range(3):
        q.index_add_(0, f[:, k], fq)
    cands = torch.stack([v[a], v[b], 0.5 * (v[a] + v[b])], 1)  # [E, 3, 3]
    hom = torch.nn.functional.pad(cands, (0, 1), value=1.0)
    cost = torch.einsum("eki,eij,ekj->ek", hom, q[a] + q[b], hom)
    # a locked end pins the collapse onto it; both locked: no collapse
    la, lb = locked[a], locked[b]
    inf = float("inf")
    cost[:, 0] = cost[:, 0].masked_fill(lb, inf)  # p = v[a]: b moves onto a
    cost[:, 1] = cost[:, 1].masked_fill(la, inf)
    cost[:, 2] = cost[:, 2].masked_fill(la | lb, inf)
    best, choice = cost.min(1)
    avail = torch.isfinite(best)
    if len(blocked):
        pos = torch.searchsorted(blocked, keys).clamp(max=len(blocked) - 1)
        avail &= blocked[pos] != keys
    # distinct ranks (ties broken by edge index) make the local minima unique
    rank = torch.empty(len(edges), dtype=torch.float64, device=dev)
    rank[torch.argsort(best.double(), stable=True)] = torch.arange(
        len(edges), dtype=torch.float64, device=dev
    )
    frozen = torch.zeros(n_v, dtype=torch.bool, device=dev)
    acc_e, acc_p, failed = [], [], []
    n_acc = 0
    for _ in range(passes):
        if n_acc >= budget:
            break
        r = torch.where(avail & ~frozen[a] & ~frozen[b], rank, torch.full_like(rank, inf))
        m1 = _neighbour_min(edges, r, n_v)
        m2 = torch.minimum(m1, _neighbour_min(edges, torch.minimum(m1[a], m1[b]), n_v))
        sel = torch.nonzero(torch.isfinite(r) & (r == torch.minimum(m2[a], m2[b])))[:, 0]
        if len(sel) == 0:
            break
        sel = sel[torch.argsort(r[sel])][: budget - n_acc]  # cheapest first
        ok = _common_neighbours(edges, edges[sel], n_v) == 2  # link condition
        target = cands[sel, choice[sel]]
        ok &= _keeps_faces(v, f, edges[sel], target, min_cos)
        failed.append(keys[sel[~ok]])
        avail[sel] = False
        sel, target = sel[ok], target[ok]
        acc_e.append(edges[sel])
        acc_p.append(target)
        n_acc += len(sel)
        # freeze the accepted ends and their neighbours: later picks stay two rings away
        ends = torch.zeros(n_v, dtype=torch.bool, device=dev)
        ends[edges[sel].reshape(-1)] = True
        frozen |= ends
        frozen[a[ends[b]]] = True
        frozen[b[ends[a]]] = True
    if failed:
        blocked = torch.cat([blocked, *failed]).sort().values
    if n_acc == 0:
        return v, f, 0, blocked
    ce, target = torch.cat(acc_e), torch.cat(acc_p)
    v = v.clone()
    v[ce[:, 0]] = target
    remap = torch.arange(n_v, device=dev)
    remap[ce[:, 1]] = ce[:, 0]
    f = remap[f]
    degenerate = (f[:, 0] == f[:, 1]) | (f[:, 1] == f[:, 2]) | (f[:, 2] == f[:, 0])
    return v, f[~degenerate], n_acc, blocked


def _keeps_faces(v, f, ce, target, min_cos) -> torch.Tensor:
    """For collapses ce [C, 2] -> target [C, 3] touching disjoint sets of faces: whether
    every face around each that survives keeps its orientation (normal turned by less
    than acos(min_cos)) and some area [C]."""
    n_v = len(v)
    moved = torch.full((n_v,), -1, dtype=torch.long, device=v.device)
    moved[ce[:, 0]] = torch.arange(len(ce), device=v.device)
    moved[ce[:, 1]] = torch.arange(len(ce), device=v.device)
    fi = torch.nonzero((moved[f] >= 0).any(1))[:, 0]
    ft = f[fi]
    owner = moved[ft].max(1).values
    dies = (ft == ce[owner, 0, None]).any(1) & (ft == ce[owner, 1, None]).any(1)
    new_pos = v.clone()
    new_pos[ce[:, 0]] = target
    new_pos[ce[:, 1]] = target

    def normals(pos):
        p = pos[ft]
        return torch.linalg.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0], dim=-1)

    n0, n1 = normals(v), normals(new_pos)
    cos = (n0 * n1).sum(-1) / (n0.norm(dim=-1) * n1.norm(dim=-1)).clamp(min=1e-30)
    bad = torch.zeros(len(ce), dtype=torch.bool, device=v.device)
    bad[owner[~dies & ~(cos > min_cos)]] = True
    return ~bad


@torch.no_grad()
def decimate(mesh: Mesh, target_faces: int, min_cos: float = 0.2, max_rounds: int = 200):
    """Simplify a triangle mesh to at most about ``target_faces`` triangles.

    Args:
        mesh: v_pos [V, 3], t_pos_idx [T, 3] (other attributes are dropped: decimation
            runs before the unwrap).
        target_faces: triangle budget; a mesh within it is returned unchanged (a collapse
            removes two triangles, so the result may end one below it).
        min_cos: a collapse is skipped when the normal of a face around it would turn by
            more than acos(min_cos) (78 degrees) or the face would lose its area.
        max_rounds: bound on the parallel rounds.

    Returns:
        (Mesh with unreferenced vertices removed, rounds run). It may stay above the
        budget when no valid collapse is left (e.g. a mesh made only of tiny closed
        pieces), never below it by more than one round's collapses.
    """
    v = mesh.v_pos.detach().double()
    f = mesh.t_pos_idx.long()
    rounds = 0
    blocked = torch.zeros(0, dtype=torch.long, device=v.device)
    while len(f) > target_faces and rounds < max_rounds:
        budget = (len(f) - target_faces + 1) // 2
        v, f, done, blocked = _one_round(v, f, budget, min_cos, blocked)
        rounds += 1
        if done == 0:
            break
    used = torch.zeros(len(v), dtype=torch.bool, device=v.device)
    used[f.reshape(-1)] = True
    remap = torch.cumsum(used.long(), 0) - 1
    out = Mesh(v_pos=v[used].to(mesh.v_pos.dtype), t_pos_idx=remap[f].to(mesh.t_pos_idx.dtype))
    return out, rounds
