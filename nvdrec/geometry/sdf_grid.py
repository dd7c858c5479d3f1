"""What DMTet and FlexiCubes share: an SDF value and a bounded offset per grid vertex,
DMTet's SDF regulariser and its schedule, the cavity fill of the final surface."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..ops import gather_rows
from ..structures.mesh import Mesh, auto_normals, compute_tangents
from .cavities import box_boundary, fill_cavities

__all__ = ["SDFGrid", "sdf_reg_weight", "sdf_regularizer"]


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


class SDFGrid(nn.Module):
    """Parameters on the vertices of a grid: ``sdf`` [N] (uniform in [-0.1, 0.9) from
    ``seed``, as nvdiffrec starts) and ``deform`` [N, 3], an offset bounded by ``tanh`` to
    ``min(1 / grid_res, offset_share * spacing)`` in world units.

    Args:
        verts: grid vertices [N, 3] in the unit box; scaled by ``scale``.
        cells: the grid's cells (tetrahedra [T, 4] or cubes [M, 8]), kept as buffer
            ``cells_name``; ``edges`` [E, 2] the vertex pairs the regulariser and the
            cavity fill walk.
        cells_per_axis: cells along one side of the box (sets ``spacing``).
    """

    def __init__(
        self, verts, cells_name, cells, edges, grid_res, scale, cells_per_axis, offset_share, seed
    ) -> None:
        super().__init__()
        self.grid_res = grid_res
        self.scale = float(scale)
        self.spacing = self.scale / cells_per_axis
        self.max_offset = min(1.0 / grid_res, offset_share * self.spacing)
        self.register_buffer("verts", verts * self.scale, persistent=False)
        self.register_buffer(cells_name, cells, persistent=False)
        self.register_buffer("edges", edges, persistent=False)
        g = torch.Generator().manual_seed(seed)
        self.sdf = nn.Parameter(torch.rand(len(verts), generator=g) - 0.1)
        self.deform = nn.Parameter(torch.zeros(len(verts), 3))

    def deformed_verts(self) -> torch.Tensor:
        """Grid vertices with bounded offsets [N, 3]."""
        return self.verts + self.max_offset * torch.tanh(self.deform)

    def filled_sdf(self, passage: int = 1) -> tuple[torch.Tensor, int]:
        """(SDF [N] with the cavities filled, number of vertices filled); ``passage``: see
        :func:`~nvdrec.geometry.cavities.enclosed_outside`."""
        return fill_cavities(self.sdf.detach(), self.edges, box_boundary(self.verts), passage)

    def final_sdf(self, fill: bool, passage: int) -> torch.Tensor:
        """The SDF of the final surface (cavity-filled when ``fill``); the number of
        filled grid vertices is kept in ``filled_vertices``."""
        sdf, self.filled_vertices = self.filled_sdf(passage) if fill else (self.sdf, 0)
        return sdf

    def sdf_loss(self, it: int, total: int, base: float) -> torch.Tensor:
        """DMTet's SDF regulariser, weighted for iteration ``it`` of ``total``."""
        return sdf_regularizer(self.sdf, self.edges) * sdf_reg_weight(base, it, total)


def surface_mesh(r, material=None) -> Mesh:
    """A mesh from an extraction result (``verts``, ``faces``, ``uvs``, ``uv_idx``) with
    smooth normals and tangents."""
    mesh = Mesh(
        v_pos=r.verts, t_pos_idx=r.faces, v_tex=r.uvs, t_tex_idx=r.uv_idx, material=material
    )
    return compute_tangents(auto_normals(mesh))
