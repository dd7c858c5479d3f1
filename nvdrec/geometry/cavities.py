"""Enclosed empty space of a learned SDF grid, filled before the final extraction.

A surface learned from images only has to look right from outside. Inside the object the
SDF is free to change sign again, and it does (noise, early iterations, the
regulariser's pull): the isosurface then carries closed bubbles and thin double walls
inside the solid. No view sees them, no image metric reports them, yet they cost
triangles and texture space and break 3D printing, booleans and collision meshes.

An empty ("outside", SDF >= 0) region of the grid that no path of outside vertices
connects to the grid's boundary is such a cavity: marching tetrahedra (and dual
marching cubes) join two outside vertices exactly when an edge of the grid does, so
the cavities of the grid are the cavities of the surface. Marking their vertices inside
removes every interior surface and leaves the outer surface unchanged.
"""

from __future__ import annotations

import torch

__all__ = ["box_boundary", "enclosed_outside", "fill_cavities"]


def _labels(n: int, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Connected-component labels [n] of the graph with edges (a, b): min-label
    propagation with pointer jumping (vectorised sweeps)."""
    label = torch.arange(n, device=a.device)
    while True:
        m = torch.minimum(label[a], label[b])
        new = label.scatter_reduce(0, a, m, "amin").scatter_reduce(0, b, m, "amin")
        new = new[new]
        if torch.equal(new, label):
            return label
        label = new


def box_boundary(verts: torch.Tensor) -> torch.Tensor:
    """bool [N]: grid vertices [N, 3] (undeformed) on a face of the grid's bounding box."""
    lo, hi = verts.amin(0), verts.amax(0)
    eps = 1e-6 * float((hi - lo).max())
    return ((verts <= lo + eps) | (verts >= hi - eps)).any(-1)


@torch.no_grad()
def enclosed_outside(
    sdf: torch.Tensor, edges: torch.Tensor, boundary: torch.Tensor
) -> torch.Tensor:
    """Outside vertices (``sdf >= 0``) that no path of outside vertices along ``edges``
    joins to an outside ``boundary`` vertex.

    Args:
        sdf: SDF per grid vertex [N] (negative inside).
        edges: grid edges [E, 2] (int).
        boundary: bool [N], True for the vertices on the grid box's faces.

    Returns:
        bool [N]. All False when no boundary vertex is outside (the surface touches the
        whole box: no exterior to measure cavities against).
    """
    out = sdf >= 0
    seeds = out & boundary
    if not bool(seeds.any()):
        return torch.zeros_like(out)
    e = edges.long()
    both = out[e[:, 0]] & out[e[:, 1]]
    label = _labels(len(sdf), e[both, 0], e[both, 1])
    reach = torch.zeros(len(sdf), dtype=torch.bool, device=sdf.device)
    reach[label[seeds]] = True
    return out & ~reach[label]


@torch.no_grad()
def fill_cavities(
    sdf: torch.Tensor, edges: torch.Tensor, boundary: torch.Tensor
) -> tuple[torch.Tensor, int]:
    """The SDF [N] with its enclosed outside vertices (:func:`enclosed_outside`) turned
    inside (``-max(|sdf|, tiny)``), and how many vertices were filled. Distances elsewhere
    are untouched, so the outer surface keeps its exact position."""
    cav = enclosed_outside(sdf, edges, boundary)
    n = int(cav.sum())
    if n == 0:
        return sdf, 0
    tiny = torch.finfo(sdf.dtype).tiny
    filled = torch.where(cav, -sdf.abs().clamp(min=tiny), sdf)
    return filled, n
