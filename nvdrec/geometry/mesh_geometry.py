"""Pass 2's geometry: a mesh of fixed topology whose vertex positions are trained, with
the protocol of :class:`~nvdrec.geometry.DMTetGeometry` and
:class:`~nvdrec.geometry.FlexiCubesGeometry` (``get_mesh``, ``reg_loss``,
``final_mesh``, its parameters), so that one loop trains both passes."""

from __future__ import annotations

import torch
from torch import nn

from ..structures.mesh import Mesh, auto_normals, compute_tangents
from .smooth_param import SmoothPositions

__all__ = ["MeshGeometry", "laplacian_loss"]


def laplacian_loss(lap: torch.Tensor) -> torch.Tensor:
    """Mean of the squared uniform-Laplacian vectors [V, 3] over vertices and coordinates
    (the pass-2 regulariser before its ``laplace_scale`` weight)."""
    return (lap**2).mean()


class MeshGeometry(nn.Module):
    """The vertex positions of ``mesh`` in Large Steps' parametrisation
    (:class:`~nvdrec.geometry.SmoothPositions`, ``u`` trained, ``x = (I + lambda L)^-1 u``).

    Args:
        mesh: the starting mesh (positions [V, 3], faces, UVs, material); its topology
            and UVs stay fixed.
        smoothing: ``lambda`` (the config's ``pos_smoothing``; 0: ``u`` is the positions).
        laplace: "relative" (the Laplacian of the displacement from the start) or
            "absolute" (of the positions), the config's ``laplace``.
        locked: positions frozen (the config's ``lock_pos``): no parameter, no regulariser.
        solver: how the positions are solved for (the config's ``pos_solver``; see
            :class:`~nvdrec.geometry.SmoothPositions`).
    """

    def __init__(
        self,
        mesh: Mesh,
        smoothing: float,
        laplace: str = "relative",
        locked: bool = False,
        solver: str = "auto",
    ) -> None:
        super().__init__()
        self.mesh, self.laplace, self.locked = mesh, laplace, locked
        self.register_buffer("v_init", mesh.v_pos.detach().clone(), persistent=False)
        self.pos = SmoothPositions(self.v_init, mesh.t_pos_idx, smoothing, solver).to(
            mesh.v_pos.device
        )
        self.pos.u.requires_grad_(not locked)
        self._current: torch.Tensor | None = None  # this iteration's positions

    def get_mesh(self) -> Mesh:
        """This iteration's mesh (differentiable in ``u``), with normals and tangents."""
        if self.locked:
            return self.mesh
        self._current = self.pos()
        return compute_tangents(auto_normals(self.mesh.with_(v_pos=self._current)))

    def reg_loss(self, it: int, total: int, base: float) -> torch.Tensor:
        """The Laplacian regulariser of the positions of the last :meth:`get_mesh`,
        weighted ``base`` decaying linearly to 0 over ``total`` iterations."""
        if self.locked:
            return torch.zeros((), device=self.v_init.device)
        v_pos = self._current
        d = v_pos - self.v_init if self.laplace == "relative" else v_pos
        edges, deg = self.pos.edges, self.pos.deg
        mean = (
            torch.zeros_like(d).index_add_(0, edges[:, 0], d.index_select(0, edges[:, 1]))
            / deg[:, None]
        )
        return laplacian_loss(d - mean) * base * (1 - it / max(total, 1))

    @torch.no_grad()
    def final_mesh(self) -> Mesh:
        """The trained mesh (detached), with the starting mesh's material."""
        final = self.get_mesh().detach()
        final.material = self.mesh.material
        return final
