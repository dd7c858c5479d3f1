"""Mesh clean-up between pass 1 and the unwrap: weld, drop degenerate triangles and
small disconnected components (floaters), and report what was removed.

An isosurface taken from a learned SDF often carries debris: tiny closed blobs where the
SDF crossed zero in empty space, slivers with zero area. They cost texture space, make
the UV unwrap slow, and show as specks in engines. Nothing here moves a vertex.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..ops import unique_rows
from ..structures.mesh import Mesh

__all__ = [
    "CleanupReport",
    "clean_mesh",
    "connected_components",
    "graph_labels",
    "seen_faces",
    "hidden_faces",
    "weld_vertices",
]


@dataclass(frozen=True)
class CleanupReport:
    """What :func:`clean_mesh` removed."""

    faces_in: int
    faces_out: int
    welded_vertices: int  # vertices merged into another at the same position
    degenerate_faces: int  # repeated corners or (numerically) zero area
    components: int  # connected components before dropping small ones
    dropped_components: int
    dropped_faces: int  # faces of the dropped components
    unseen_faces: int = 0  # faces no training view saw (with ``keep_faces``)
    confirmed_components: int = 0  # small components kept because ``confirm`` passed

    def summary(self) -> str:
        unseen = f"{self.unseen_faces} unseen triangles, " if self.unseen_faces else ""
        if self.confirmed_components:
            unseen += f"{self.confirmed_components} small components kept (inside the masks), "
        return (
            f"{self.faces_in} -> {self.faces_out} triangles: {unseen}{self.dropped_components} "
            f"of {self.components} components dropped ({self.dropped_faces} triangles), "
            f"{self.degenerate_faces} degenerate triangles, {self.welded_vertices} vertices "
            "welded"
        )


def weld_vertices(v: torch.Tensor, f: torch.Tensor, tol: float = 0.0):
    """Merge vertices [V, 3] at the same position (within ``tol``, on a grid of that
    size; exact when 0). Returns (vertices [V', 3], faces [T, 3] reindexed, merged count).
    """
    key = v if tol <= 0 else torch.round(v / tol)
    _, inverse = unique_rows(key, return_inverse=True)
    n = int(inverse.max()) + 1 if len(v) else 0
    # first vertex of each group keeps its exact position
    first = torch.full((n,), len(v), dtype=torch.long, device=v.device)
    first = first.scatter_reduce(0, inverse, torch.arange(len(v), device=v.device), "amin")
    return v[first], inverse[f.long()], len(v) - n


def connected_components(f: torch.Tensor, n_vertices: int) -> torch.Tensor:
    """Component label of every face [T] (faces sharing a vertex are connected), labels
    0..K-1. Min-label propagation with pointer jumping: a few dozen vectorised sweeps
    even for meshes of millions of faces."""
    f = f.long()
    edges = torch.cat([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    label = graph_labels(n_vertices, edges[:, 0], edges[:, 1])
    _, comp = torch.unique(label[f[:, 0]], return_inverse=True)
    return comp


def graph_labels(n: int, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Component label [n] of every node of the graph with edges (a[i], b[i]) (the
    smallest node index of its component): min-label propagation with pointer jumping,
    a few dozen vectorised sweeps even for millions of edges."""
    label = torch.arange(n, device=a.device)
    while True:
        m = torch.minimum(label[a], label[b])
        new = label.scatter_reduce(0, a, m, "amin").scatter_reduce(0, b, m, "amin")
        new = new[new]  # pointer jumping: follow labels to their own labels
        if torch.equal(new, label):
            return label
        label = new


def clean_mesh(
    mesh: Mesh,
    min_component: float = 0.01,
    weld_tol: float = 0.0,
    area_eps: float = 1e-12,
    keep_faces: torch.Tensor | None = None,
    confirm=None,
) -> tuple[Mesh, CleanupReport]:
    """Positions-and-faces clean-up of a mesh (other attributes are dropped: the unwrap
    and normals are made afterwards).

    Args:
        mesh: triangle mesh (v_pos [V, 3], t_pos_idx [T, 3]).
        min_component: a connected component is dropped when its area or its triangle
            count is below this fraction of the largest component's (by area); 0 keeps
            every component.
        weld_tol: vertices closer than this (grid rounding) are merged; 0 merges only
            identical positions.
        area_eps: triangles with area below ``area_eps`` x the mean area are degenerate.
        keep_faces: optional bool [T]: faces where it is False are dropped first (e.g.
            :func:`seen_faces`: faces no training view saw).
        confirm: optional function of points [K, 3] -> bool [K] (e.g. inside the masks'
            visual hull, :func:`~nvdrec.data.framing.in_visual_hull`): a component below
            ``min_component`` is kept when at least half of its vertices pass, so small
            real parts the photos show survive while floaters in empty space go.

    Returns:
        (cleaned Mesh with unreferenced vertices removed, CleanupReport). The largest
        component is always kept, so a non-empty mesh stays non-empty.
    """
    v = mesh.v_pos.detach()
    f = mesh.t_pos_idx.long()
    faces_in = len(f)
    unseen = 0
    if keep_faces is not None:
        if keep_faces.shape != (faces_in,):
            raise ValueError(
                f"keep_faces must be a bool [{faces_in}], got {tuple(keep_faces.shape)}"
            )
        keep_faces = keep_faces.to(f.device)
        if not keep_faces.any():  # nothing seen (cameras off the object): keep everything
            keep_faces = torch.ones_like(keep_faces)
        unseen = int((~keep_faces).sum())
        f = f[keep_faces]
    v, f, welded = weld_vertices(v, f, weld_tol)
    e1 = v[f[:, 1]] - v[f[:, 0]]
    e2 = v[f[:, 2]] - v[f[:, 0]]
    area = torch.linalg.cross(e1, e2, dim=-1).norm(dim=-1) * 0.5
    repeated = (f[:, 0] == f[:, 1]) | (f[:, 1] == f[:, 2]) | (f[:, 2] == f[:, 0])
    thin = area <= area_eps * area.mean().clamp(min=1e-30) if len(f) else repeated
    bad = repeated | thin
    f, area = f[~bad], area[~bad]
    n_comp = dropped = dropped_faces = confirmed = 0
    if len(f):
        comp = connected_components(f, len(v))
        n_comp = int(comp.max()) + 1
        c_area = torch.zeros(n_comp, dtype=area.dtype, device=area.device).index_add_(0, comp, area)
        c_faces = torch.bincount(comp, minlength=n_comp)
        big = int(torch.argmax(c_area))
        keep_c = (c_area >= min_component * c_area[big]) & (c_faces >= min_component * c_faces[big])
        keep_c[big] = True
        kept_by_size = int(keep_c.sum())
        if confirm is not None and not bool(keep_c.all()):
            keep_c |= _confirmed(v, f, comp, ~keep_c, confirm)
            confirmed = int(keep_c.sum()) - kept_by_size
        keep = keep_c[comp]
        dropped = int((~keep_c).sum())
        dropped_faces = int((~keep).sum())
        f = f[keep]
    used = torch.zeros(len(v), dtype=torch.bool, device=v.device)
    used[f.reshape(-1)] = True
    remap = torch.cumsum(used.long(), 0) - 1
    out = Mesh(v_pos=v[used], t_pos_idx=remap[f])
    report = CleanupReport(
        faces_in=faces_in,
        faces_out=len(f),
        welded_vertices=welded,
        degenerate_faces=int(bad.sum()),
        components=n_comp,
        dropped_components=dropped,
        dropped_faces=dropped_faces,
        unseen_faces=unseen,
        confirmed_components=confirmed,
    )
    return out, report


def _confirmed(v, f, comp, small, confirm) -> torch.Tensor:
    """bool [K]: the ``small`` components of which at least half the vertices pass
    ``confirm``."""
    n_comp = len(small)
    fs = f[small[comp]]
    verts = torch.unique(fs.reshape(-1))
    vcomp = torch.empty(len(v), dtype=torch.long, device=v.device)
    vcomp[f.reshape(-1)] = comp.repeat_interleave(3)
    ok = confirm(v[verts]).to(v.device).float()
    cnt = torch.zeros(n_comp, device=v.device).index_add_(0, vcomp[verts], torch.ones_like(ok))
    good = torch.zeros(n_comp, device=v.device).index_add_(0, vcomp[verts], ok)
    return small & (good >= 0.5 * cnt.clamp(min=1))


@torch.no_grad()
def seen_faces(
    mesh: Mesh, mvp: torch.Tensor, resolution, batch: int = 8, backend: str = "auto"
) -> torch.Tensor:
    """Which faces the views see: bool [T], True for a face that is the nearest surface
    at some pixel centre of some view (mvp [N, 4, 4] at ``resolution`` (H, W)), or that
    shares a vertex with such a face (a one-ring margin: faces smaller than a pixel fall
    between pixel centres). Faces hidden inside the object in every view (walls and
    bubbles that an isosurface leaves inside) come out False."""
    from ..ops import rasterize
    from ..ops.shading import xfm_points

    f = mesh.t_pos_idx.long()
    tri = f.int().contiguous()
    hit = torch.zeros(len(f) + 1, dtype=torch.bool, device=f.device)
    for a in range(0, len(mvp), batch):
        m = mvp[a : a + batch].to(mesh.v_pos.device).float()
        clip = xfm_points(mesh.v_pos.detach(), m).contiguous()
        rast, _ = rasterize(clip, tri, tuple(resolution), grad_db=False, backend=backend)
        hit[rast[..., 3].long().reshape(-1)] = True
    seen = hit[1:]
    vert = torch.zeros(len(mesh.v_pos), dtype=torch.bool, device=f.device)
    vert[f[seen].reshape(-1)] = True
    return vert[f].any(-1)


@torch.no_grad()
def hidden_faces(
    mesh: Mesh, views: int = 256, resolution: int = 512, backend: str = "auto"
) -> tuple[torch.Tensor, int]:
    """Faces no outside view can see, and the mesh's interior components.

    Cameras on a Fibonacci sphere (``views`` directions, at 3x the bounding sphere's
    radius, the object filling the frame at ``resolution``^2) look at the mesh's centre;
    :func:`seen_faces` marks what they see. A closed surface seen from all around shows
    every face except those inside it (cavities, walls) or in clefts too deep and narrow
    for any direction.

    Returns:
        (bool [T], True for a hidden face; the number of connected components of which
        no face is seen: surfaces wholly inside the object).
    """
    import math

    from ..structures import camera as cam

    v = mesh.v_pos.detach().float()
    if len(mesh.t_pos_idx) == 0:
        return torch.zeros(0, dtype=torch.bool, device=v.device), 0
    lo, hi = v.amin(0), v.amax(0)
    centre = ((lo + hi) / 2).cpu().double()
    radius = float((v - (lo + hi) / 2).norm(dim=-1).max().clamp(min=1e-6))
    dist = 3.0 * radius
    fovy = 2.0 * math.asin(1.0 / 3.0) * 1.05
    proj = cam.perspective(fovy, 1.0, dist - 1.05 * radius, dist + 1.05 * radius)
    golden = math.pi * (3.0 - math.sqrt(5.0))
    mvps = []
    for i in range(views):
        y = 1.0 - 2.0 * (i + 0.5) / views
        r = math.sqrt(max(0.0, 1.0 - y * y))
        d = torch.tensor([r * math.cos(golden * i), y, r * math.sin(golden * i)])
        eye = centre + dist * d.double()
        up = (1.0, 0.0, 0.0) if abs(y) > 0.99 else (0.0, 1.0, 0.0)
        mvps.append(proj @ cam.look_at(eye.tolist(), centre.tolist(), up))
    seen = seen_faces(mesh, torch.stack(mvps), (resolution, resolution), backend=backend)
    comp = connected_components(mesh.t_pos_idx, mesh.num_vertices)
    n = int(comp.max()) + 1
    comp_seen = torch.zeros(n, dtype=torch.bool, device=comp.device)
    comp_seen[comp[seen]] = True
    return ~seen, int((~comp_seen).sum())
