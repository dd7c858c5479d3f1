"""PBR materials: kd (base colour), ks (occlusion, roughness, metallic), normal map."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["Material", "Texture2D"]


class Texture2D(nn.Module):
    """A trainable 2D texture, linear values, stored as a parameter [1, H, W, C].

    Args:
        data: [H, W, C] or [1, H, W, C] float tensor, or a sequence of C numbers for a
            1x1 constant texture.
        min_max: optional (min [C], max [C]) used by :meth:`clamp_`.
    """

    def __init__(self, data, min_max: tuple | None = None, trainable: bool = True) -> None:
        super().__init__()
        t = torch.as_tensor(data, dtype=torch.float32)
        if t.ndim == 1:
            t = t.view(1, 1, 1, -1)
        elif t.ndim == 3:
            t = t[None]
        if t.ndim != 4 or t.shape[0] != 1:
            raise ValueError(f"Texture2D: expected [H, W, C] or [1, H, W, C], got {tuple(t.shape)}")
        self.data = nn.Parameter(t.contiguous(), requires_grad=trainable)
        if min_max is not None:
            lo, hi = (
                torch.as_tensor(x, dtype=torch.float32).flatten()[: t.shape[-1]] for x in min_max
            )
            self.register_buffer("lo", lo, persistent=False)
            self.register_buffer("hi", hi, persistent=False)
        else:
            self.lo = self.hi = None
        self.mips: nn.ParameterList | None = None

    def enable_custom_mips(self) -> Texture2D:
        """Give the texture trainable mip levels (nvdiffrec's ``custom_mip``): levels 1..
        down to 1x1 become parameters of their own, initialised by 2x2 box filtering of
        the current texels, and sampling uses them instead of filtering level 0 each time.
        Exports use level 0. Returns self."""
        from ..ops.texture import build_mips

        with torch.no_grad():
            levels = build_mips(self.data.detach())[1:]
        self.mips = nn.ParameterList(
            [nn.Parameter(lv.contiguous(), requires_grad=self.data.requires_grad) for lv in levels]
        )
        return self

    def mip_levels(self) -> list | None:
        """The trainable mip levels [1, H_k, W_k, C] (k = 1..), or None (box-filtered)."""
        return None if self.mips is None else list(self.mips)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.data.shape)

    @property
    def is_constant(self) -> bool:
        return self.data.shape[1] == 1 and self.data.shape[2] == 1

    def image(self) -> torch.Tensor:
        """The texel values [H, W, C] (a view of the parameter)."""
        return self.data[0]

    @torch.no_grad()
    def clamp_(self) -> None:
        """Project texels into [min, max] after an optimiser step."""
        if self.lo is not None:
            for t in [self.data, *(self.mips or [])]:
                t.copy_(torch.max(torch.min(t, self.hi), self.lo))


@dataclass
class Material:
    """A PBR material in nvdiffrec's convention.

    Attributes:
        name: material name (OBJ ``newmtl``).
        kd: base colour texture, linear RGB or RGBA (alpha = coverage for layers > 1).
        ks: (occlusion, roughness, metallic) texture, linear.
        normal: tangent-space normal map in [-1, 1] (None = geometric normal).
        bsdf: shading model name ("pbr", "diffuse", ...).
    """

    name: str = "default"
    kd: Texture2D | None = None
    ks: Texture2D | None = None
    normal: Texture2D | None = None
    bsdf: str = "pbr"

    def parameters(self):
        """Trainable tensors of the textures this material has."""
        for t in (self.kd, self.ks, self.normal):
            if t is not None:
                yield from t.parameters()
