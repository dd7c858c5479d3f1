"""DMTet geometry: an SDF and bounded vertex offsets on a tetrahedral grid."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..ops import gather_rows
from ..structures.mesh import Mesh, auto_normals, compute_tangents
from .cavities import box_boundary, fill_cavities
from .marching_tets import MarchingTetsResult, marching_tets
from .tetgrid import cubes_per_axis, tet_edges, tet_grid

__all__ = ["DMTetGeometry", "sdf_reg_weight", "sdf_regularizer"]


def sdf_reg_weight(base: float, it: int, total: int) -> float:
    """nvdiffrec's schedule: from ``base`` down to 0.01 linearly over the first quarter
    of the pass, then 0.01."""
    frac = min(1.0, 4.0 * it / max(total, 1))
    return base - (base - 0.01) * frac


def sdf_regularizer(sdf: torch.Tensor, edges: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy across sign-changing grid edges [E, 2] (DMTet's regulariser):
    pushes each endpoint's logit towards the other endpoint's side, which removes
    floaters and keeps the surface crossing sharp."""
    s = gather_rows(sdf, edges)  # [E, 2]
    change = (s[:, 0] > 0) != (s[:, 1] > 0)
    s = s.index_select(0, change.nonzero()[:, 0])
    if s.numel() == 0:
        return sdf.sum() * 0.0
    return F.binary_cross_entropy_with_logits(s[:, 0], (s[:, 1] > 0).float()) + (
        F.binary_cross_entropy_with_logits(s[:, 1], (s[:, 0] > 0).float())
    )


class DMTetGeometry(nn.Module):
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
        super().__init__()
        verts, tets = tet_grid(grid_res)
        self.grid_res = grid_res
        self.scale = float(scale)
        self.spacing = self.scale / cubes_per_axis(grid_res)
        self.max_offset = min(1.0 / grid_res, 0.5 * self.spacing)
        self.register_buffer("verts", verts * self.scale, persistent=False)
        self.register_buffer("tets", tets, persistent=False)
        self.register_buffer("edges", tet_edges(tets), persistent=False)
        g = torch.Generator().manual_seed(seed)
        self.sdf = nn.Parameter(torch.rand(len(verts), generator=g) - 0.1)
        self.deform = nn.Parameter(torch.zeros(len(verts), 3))

    def deformed_verts(self) -> torch.Tensor:
        """Grid vertices with bounded offsets [N, 3]."""
        return self.verts + self.max_offset * torch.tanh(self.deform)

    def extract(self, sdf: torch.Tensor | None = None) -> MarchingTetsResult:
        return marching_tets(self.deformed_verts(), self.sdf if sdf is None else sdf, self.tets)

    def get_mesh(self, material=None, sdf: torch.Tensor | None = None) -> Mesh:
        """Current surface with smooth normals and tangents (from the per-face UV layout);
        ``sdf`` [N] replaces the trained one (the cavity-filled SDF of the final mesh)."""
        r = self.extract(sdf)
        mesh = Mesh(
            v_pos=r.verts,
            t_pos_idx=r.faces,
            v_tex=r.uvs,
            t_tex_idx=r.uv_idx,
            material=material,
        )
        return compute_tangents(auto_normals(mesh))

    def final_mesh(self, material=None, fill: bool = True, passage: int = 1) -> Mesh:
        """The surface for baking and export: the training surface, with the enclosed
        empty space filled (``fill``; pockets behind passages narrower than about
        2 x ``passage`` grid steps count as enclosed; see :mod:`~nvdrec.geometry.cavities`;
        the number of filled grid vertices is kept in ``filled_vertices``)."""
        sdf, self.filled_vertices = self.filled_sdf(passage) if fill else (self.sdf, 0)
        return self.get_mesh(material, sdf)

    def filled_sdf(self, passage: int = 1) -> tuple[torch.Tensor, int]:
        """(SDF [N] with the cavities filled, number of vertices filled); ``passage``: see
        :func:`~nvdrec.geometry.cavities.enclosed_outside`."""
        return fill_cavities(self.sdf.detach(), self.edges, box_boundary(self.verts), passage)

    def reg_loss(self, it: int, total: int, base: float) -> torch.Tensor:
        """Weighted SDF regulariser for iteration ``it`` of ``total``."""
        return sdf_regularizer(self.sdf, self.edges) * sdf_reg_weight(base, it, total)
