"""Triangle mesh with separate index buffers per attribute (as in OBJ files)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any

import torch

from ..ops import gather_rows

__all__ = ["Mesh", "auto_normals", "compute_tangents", "safe_normalize"]


def safe_normalize(x: torch.Tensor, eps: float = 1e-20) -> torch.Tensor:
    """Normalise along the last axis; zero vectors stay finite."""
    return x / torch.sqrt(torch.clamp((x * x).sum(-1, keepdim=True), min=eps))


@dataclass
class Mesh:
    """A triangle mesh.

    Attributes:
        v_pos: vertex positions, float32 [V, 3].
        t_pos_idx: triangle corner indices into v_pos, int64 [T, 3].
        v_nrm, t_nrm_idx: normals [N, 3] and their indices [T, 3] (optional).
        v_tex, t_tex_idx: texture coordinates [U, 2] and indices [T, 3] (optional).
            UVs follow texture memory: (0, 0) is the first texel row (the top of the
            image file); the OBJ reader flips OBJ's bottom-up ``vt``.
        v_tng, t_tng_idx: tangents [N, 3] and indices [T, 3] (optional).
        material: a :class:`~nvdrec.structures.Material` or None.
        materials: all materials when the mesh has several; ``t_mat_idx`` [T] picks one
            per triangle.
    """

    v_pos: torch.Tensor
    t_pos_idx: torch.Tensor
    v_nrm: torch.Tensor | None = None
    t_nrm_idx: torch.Tensor | None = None
    v_tex: torch.Tensor | None = None
    t_tex_idx: torch.Tensor | None = None
    v_tng: torch.Tensor | None = None
    t_tng_idx: torch.Tensor | None = None
    material: Any = None
    materials: list = field(default_factory=list)
    t_mat_idx: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.v_pos.ndim != 2 or self.v_pos.shape[-1] != 3:
            raise ValueError(f"Mesh.v_pos must be [V, 3], got {tuple(self.v_pos.shape)}")
        if self.t_pos_idx.ndim != 2 or self.t_pos_idx.shape[-1] != 3:
            raise ValueError(f"Mesh.t_pos_idx must be [T, 3], got {tuple(self.t_pos_idx.shape)}")

    @property
    def num_vertices(self) -> int:
        return int(self.v_pos.shape[0])

    @property
    def num_triangles(self) -> int:
        return int(self.t_pos_idx.shape[0])

    def aabb(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Axis-aligned bounding box: (min [3], max [3])."""
        return self.v_pos.min(dim=0).values, self.v_pos.max(dim=0).values

    def with_(self, **changes: Any) -> Mesh:
        """A shallow copy with some fields replaced."""
        return replace(self, **changes)

    def to(self, device: torch.device | str) -> Mesh:
        """Copy of the mesh with every tensor on ``device``."""
        out = {}
        for f in fields(self):
            v = getattr(self, f.name)
            out[f.name] = v.to(device) if isinstance(v, torch.Tensor) else v
        return Mesh(**out)

    def detach(self) -> Mesh:
        out = {}
        for f in fields(self):
            v = getattr(self, f.name)
            out[f.name] = v.detach() if isinstance(v, torch.Tensor) else v
        return Mesh(**out)


def auto_normals(mesh: Mesh) -> Mesh:
    """Area-weighted smooth vertex normals indexed like the positions.

    The cross product of two edges has length twice the triangle area, so summing
    unnormalised face normals onto the corners weights each face by its area.
    """
    i0, i1, i2 = mesh.t_pos_idx.long().unbind(-1)
    v0, v1, v2 = (gather_rows(mesh.v_pos, i) for i in (i0, i1, i2))
    face_n = torch.cross(v1 - v0, v2 - v0, dim=-1)
    v_nrm = torch.zeros_like(mesh.v_pos)
    for idx in (i0, i1, i2):
        v_nrm = v_nrm.index_add(0, idx, face_n)
    # isolated or degenerate vertices get +Y rather than NaN
    # (made on the device: a tensor copied from host memory would synchronise the GPU)
    fallback = torch.eye(3, dtype=v_nrm.dtype, device=v_nrm.device)[1]
    length = v_nrm.norm(dim=-1, keepdim=True)
    v_nrm = torch.where(length > 1e-20, v_nrm / length.clamp(min=1e-20), fallback)
    return mesh.with_(v_nrm=v_nrm, t_nrm_idx=mesh.t_pos_idx)


def compute_tangents(mesh: Mesh) -> Mesh:
    """Per-normal-vertex tangents from UV gradients, orthogonalised against the normal.

    For each triangle the tangent is the direction of increasing u in object space:
    solving [e1 e2] = [T B] [[du1, du2], [dv1, dv2]] for T (the standard derivation of
    tangent frames from UV parameterisation), accumulated per normal-vertex weighted by
    |e1 dv2 - e2 dv1| (larger faces count more), then Gram-Schmidt against the normal.
    Needs v_tex and v_nrm.
    """
    if mesh.v_tex is None or mesh.t_tex_idx is None:
        raise ValueError("compute_tangents needs texture coordinates (v_tex, t_tex_idx)")
    if mesh.v_nrm is None:
        mesh = auto_normals(mesh)
    pi = mesh.t_pos_idx.long()
    ti = mesh.t_tex_idx.long()
    ni = mesh.t_nrm_idx.long()
    p = gather_rows(mesh.v_pos, pi)  # [T, 3, 3]
    uv = gather_rows(mesh.v_tex, ti)  # [T, 3, 2]
    e1, e2 = p[:, 1] - p[:, 0], p[:, 2] - p[:, 0]
    d1, d2 = uv[:, 1] - uv[:, 0], uv[:, 2] - uv[:, 0]
    denom = d1[:, 0] * d2[:, 1] - d2[:, 0] * d1[:, 1]
    # T = (e1 dv2 - e2 dv1) / denom; only its direction matters, so multiply by the sign
    # of the UV area instead of dividing: faces with degenerate UVs then contribute ~0
    # and no huge values (or NaN gradients) appear
    sign = torch.where(denom >= 0, torch.ones_like(denom), -torch.ones_like(denom))
    tang = (e1 * d2[:, 1:2] - e2 * d1[:, 1:2]) * sign[:, None]
    v_tng = torch.zeros_like(mesh.v_nrm)
    for k in range(3):
        v_tng = v_tng.index_add(0, ni[:, k], tang)
    n = mesh.v_nrm
    v_tng = v_tng - (v_tng * n).sum(-1, keepdim=True) * n
    # vertices whose faces have no usable UV gradient get any unit vector normal to n
    # (glTF and engines require unit tangents)
    eye = torch.eye(3, device=n.device, dtype=n.dtype)  # no host-to-device copy
    axis = torch.where(n[:, :1].abs() < 0.9, eye[0].expand_as(n), eye[1].expand_as(n))
    fallback = safe_normalize(torch.cross(n, axis, dim=-1).detach())
    length = v_tng.norm(dim=-1, keepdim=True)
    v_tng = torch.where(length > 1e-12, v_tng / length.clamp(min=1e-12), fallback)
    return mesh.with_(v_tng=v_tng, t_tng_idx=mesh.t_nrm_idx)
