"""Mip chains of 2D textures and cube maps: 2x2 box averages down to one texel (the
torch reference), and the CUDA chain the texture op builds on the GPU."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..native.build import load

__all__ = ["build_mips"]


def _downsample(t: torch.Tensor) -> torch.Tensor:
    """2x2 box filter of [N, H, W, C] (odd sizes: area filter to the floor size)."""
    n, h, w, c = t.shape
    x = t.permute(0, 3, 1, 2)
    if h % 2 == 0 and w % 2 == 0:
        y = F.avg_pool2d(x, 2)
    else:
        y = F.adaptive_avg_pool2d(x, (max(h // 2, 1), max(w // 2, 1)))
    return y.permute(0, 2, 3, 1)


def build_mips(tex: torch.Tensor, max_mip_level: int | None = None, cube: bool = False) -> list:
    """Mip chain [level0, level1, ...] of [B, H, W, C] (or [B, 6, N, N, C] cube maps),
    halving down to 1 texel (or ``max_mip_level`` levels beyond the base)."""
    levels = [tex]
    limit = max_mip_level if max_mip_level is not None else 64
    while len(levels) - 1 < limit:
        t = levels[-1]
        h, w = t.shape[-3], t.shape[-2]
        if h == 1 and w == 1:
            break
        if cube:
            b = t.shape[0]
            levels.append(
                _downsample(t.reshape(b * 6, h, w, -1)).reshape(
                    b, 6, max(h // 2, 1), max(w // 2, 1), -1
                )
            )
        else:
            levels.append(_downsample(t))
    return levels


# ------------------------------------------------------------------ CUDA
class _MipChainFn(torch.autograd.Function):
    """Levels 1.. of images [N, H, W, C] in one buffer [N, M, C] (one kernel per level)."""

    @staticmethod
    def forward(ctx, images, hs, ws, offs, total):
        ctx.meta = (hs, ws, offs, total)
        ctx.shape = images.shape
        return load().mip_build(tex=images, hs=hs, ws=ws, offs=offs, total=total)

    @staticmethod
    def backward(ctx, g_mips):
        hs, ws, offs, total = ctx.meta
        g_tex = torch.zeros(ctx.shape, dtype=g_mips.dtype, device=g_mips.device)
        g = load().mip_build_bwd(
            grad_tex=g_tex,
            grad_mips=g_mips.contiguous().clone(),
            hs=hs,
            ws=ws,
            offs=offs,
            total=total,
        )
        return g, None, None, None, None


def _level_sizes(h: int, w: int, max_mip_level):
    """(heights, widths) of the chain: halve (floor, at least 1) down to 1x1."""
    hs, ws = [h], [w]
    limit = max_mip_level if max_mip_level is not None else 64
    while len(hs) - 1 < min(limit, 15) and (hs[-1] > 1 or ws[-1] > 1):
        hs.append(max(hs[-1] // 2, 1))
        ws.append(max(ws[-1] // 2, 1))
    return hs, ws
