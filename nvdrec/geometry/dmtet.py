"""DMTet geometry: an SDF and bounded vertex offsets on a tetrahedral grid."""

from __future__ import annotations

import torch

from ..structures.mesh import Mesh
from .marching_tets import MarchingTetsResult, marching_tets
from .sdf_grid import SDFGrid, sdf_reg_weight, sdf_regularizer, surface_mesh
from .tetgrid import cubes_per_axis, tet_edges, tet_grid

__all__ = ["DMTetGeometry", "sdf_reg_weight", "sdf_regularizer"]


class DMTetGeometry(SDFGrid):
    """Trainable DMTet surface.

    Args:
        grid_res: ``dmtet_grid`` (see :func:`~nvdrec.geometry.tet_grid`).
        scale: ``mesh_scale``, edge length of the grid box centred at the origin.
        seed: initialisation seed (SDF uniform in [-0.1, 0.9) as nvdiffrec, offsets 0).

    Offsets are bounded by ``tanh`` to ``1 / grid_res`` in world units, as nvdiffrec
    bounds them (0.0156 at grid 64, about a fifth of a lattice spacing at mesh_scale
    2.1), and never more than half a lattice spacing, so tetrahedra cannot invert.
    Small offsets keep marching tetrahedra's triangles well shaped; larger ones let the
    surface chase noise and fold.
    """

    def __init__(self, grid_res: int = 64, scale: float = 2.1, seed: int = 0) -> None:
        verts, tets = tet_grid(grid_res)
        cells = cubes_per_axis(grid_res)
        super().__init__(verts, "tets", tets, tet_edges(tets), grid_res, scale, cells, 0.5, seed)

    def extract(self, sdf: torch.Tensor | None = None) -> MarchingTetsResult:
        return marching_tets(self.deformed_verts(), self.sdf if sdf is None else sdf, self.tets)

    def get_mesh(self, material=None, sdf: torch.Tensor | None = None) -> Mesh:
        """Current surface with smooth normals and tangents (from the per-face UV layout);
        ``sdf`` [N] replaces the trained one (the cavity-filled SDF of the final mesh)."""
        return surface_mesh(self.extract(sdf), material)

    def final_mesh(self, material=None, fill: bool = True, passage: int = 1) -> Mesh:
        """The surface for baking and export: the training surface, with the enclosed
        empty space filled (``fill``; pockets behind passages narrower than about
        2 x ``passage`` grid steps count as enclosed; see :mod:`~nvdrec.geometry.cavities`;
        the number of filled grid vertices is kept in ``filled_vertices``)."""
        return self.get_mesh(material, self.final_sdf(fill, passage))

    def reg_loss(self, it: int, total: int, base: float) -> torch.Tensor:
        """Weighted SDF regulariser for iteration ``it`` of ``total``."""
        return self.sdf_loss(it, total, base)
