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

from .cleanup import graph_labels

__all__ = ["box_boundary", "enclosed_outside", "fill_cavities"]


def box_boundary(verts: torch.Tensor) -> torch.Tensor:
    """bool [N]: grid vertices [N, 3] (undeformed) on a face of the grid's bounding box."""
    lo, hi = verts.amin(0), verts.amax(0)
    eps = 1e-6 * float((hi - lo).max())
    return ((verts <= lo + eps) | (verts >= hi - eps)).any(-1)


def _grow(mask: torch.Tensor, allowed: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
    """``mask`` grown by one edge step, within ``allowed``."""
    hit = mask.clone()
    hit[e[mask[e[:, 0]], 1]] = True
    hit[e[mask[e[:, 1]], 0]] = True
    return hit & allowed


@torch.no_grad()
def enclosed_outside(
    sdf: torch.Tensor, edges: torch.Tensor, boundary: torch.Tensor, passage: int = 0
) -> torch.Tensor:
    """Outside vertices (``sdf >= 0``) that no path of outside vertices along ``edges``
    joins to an outside ``boundary`` vertex.

    Args:
        sdf: SDF per grid vertex [N] (negative inside).
        edges: grid edges [E, 2] (int).
        boundary: bool [N], True for the vertices on the grid box's faces.
        passage: with ``k > 0``, a path must also keep ``k`` edge steps away from the
            inside (a morphological closing of the empty space): pockets behind passages
            narrower than about ``2 k`` grid steps count as enclosed too. Such pockets
            are too narrow for a camera outside to look into; the surface learned there
            is unconstrained by the photos (tunnels and walls inside the object).

    Returns:
        bool [N]. All False when no boundary vertex is outside (the surface touches the
        whole box: no exterior to measure cavities against).
    """
    out = sdf >= 0
    e = edges.long()
    core = out
    for _ in range(passage):  # erode: drop outside vertices next to an inside one
        near_in = _grow(~core, torch.ones_like(out), e)
        core = core & ~near_in
    seeds = core & boundary
    if not bool(seeds.any()):
        return torch.zeros_like(out)
    both = core[e[:, 0]] & core[e[:, 1]]
    label = graph_labels(len(sdf), e[both, 0], e[both, 1])
    reach = torch.zeros(len(sdf), dtype=torch.bool, device=sdf.device)
    reach[label[seeds]] = True
    reached = core & reach[label]
    # dilate back into the empty space next to the surface; one step more than the
    # erosion, for the outside vertices in the grid's staircase along a surface (all of
    # whose outside neighbours touch the inside too)
    for _ in range(passage + 1 if passage else 0):
        reached = _grow(reached, out, e)
    return out & ~reached


@torch.no_grad()
def fill_cavities(
    sdf: torch.Tensor, edges: torch.Tensor, boundary: torch.Tensor, passage: int = 0
) -> tuple[torch.Tensor, int]:
    """The SDF [N] with its enclosed outside vertices (:func:`enclosed_outside`) turned
    inside (``-max(|sdf|, tiny)``), and how many vertices were filled. Distances elsewhere
    are untouched, so the outer surface keeps its exact position."""
    cav = enclosed_outside(sdf, edges, boundary, passage)
    n = int(cav.sum())
    if n == 0:
        return sdf, 0
    tiny = torch.finfo(sdf.dtype).tiny
    filled = torch.where(cav, -sdf.abs().clamp(min=tiny), sdf)
    return filled, n
