"""Cube-map coordinates: the face and in-face position of a direction and back (face
order and orientation: docs/conventions.md, the OpenGL table)."""

from __future__ import annotations

import torch

__all__ = ["cube_dir_to_face", "cube_face_to_dir"]


def cube_dir_to_face(d: torch.Tensor):
    """Face index [...] (+X,-X,+Y,-Y,+Z,-Z = 0..5) and (s, t) in [0, 1] for directions [..., 3]."""
    x, y, z = d.unbind(-1)
    ax, ay, az = x.abs(), y.abs(), z.abs()
    is_x = (ax >= ay) & (ax >= az)
    is_y = ~is_x & (ay >= az)
    face = torch.where(
        is_x,
        torch.where(x >= 0, 0, 1),
        torch.where(is_y, torch.where(y >= 0, 2, 3), torch.where(z >= 0, 4, 5)),
    )
    ma = torch.where(is_x, ax, torch.where(is_y, ay, az)).clamp(min=1e-20)
    sc = torch.where(
        is_x, torch.where(x >= 0, -z, z), torch.where(is_y, x, torch.where(z >= 0, x, -x))
    )
    tc = torch.where(is_x, -y, torch.where(is_y, torch.where(y >= 0, z, -z), -y))
    return face, (sc / ma + 1) * 0.5, (tc / ma + 1) * 0.5


def cube_face_to_dir(face: torch.Tensor, sc: torch.Tensor, tc: torch.Tensor) -> torch.Tensor:
    """Inverse of the face table: direction [..., 3] for a face and sc, tc in [-1, 1]."""
    one = torch.ones_like(sc)
    table = torch.stack(
        [
            torch.stack([one, -tc, -sc], -1),
            torch.stack([-one, -tc, sc], -1),
            torch.stack([sc, one, tc], -1),
            torch.stack([sc, -one, -tc], -1),
            torch.stack([sc, -tc, one], -1),
            torch.stack([-sc, -tc, -one], -1),
        ],
        dim=-2,
    )  # [..., 6, 3]
    idx = face.long()[..., None, None].expand(*face.shape, 1, 3)
    return torch.gather(table, -2, idx).squeeze(-2)
