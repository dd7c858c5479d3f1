"""Multiresolution hash encoding (Mueller et al., "Instant Neural Graphics Primitives", 2022).

Level ``l`` (0..L-1) has ``N_l = floor(base * b^l)`` cells per axis with
``b = exp(ln(finest / base) / (L - 1))``; a point ``x`` in [0, 1]^3 falls in the cell
``floor(x N_l)`` and its feature is the trilinear blend of the F-dimensional entries at
the cell's eight corners. A level whose ``(N_l + 1)^3`` corners fit the table is stored
densely (``i + j (N+1) + k (N+1)^2``); finer levels use the spatial hash
``(i * 1) xor (j * 2654435761) xor (k * 805459861) mod T`` (the primes of the paper).
The output is the concatenation over levels, [P, L * F].
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..native.build import load
from ._common import check_tensor, gather_rows, pick_backend

__all__ = ["HashGridConfig", "hashgrid_encode", "init_hashgrid_params"]

_PRIMES = (1, 2654435761, 805459861)


@dataclass(frozen=True)
class HashGridConfig:
    """Encoding settings (defaults: nvdiffrec's material encoding)."""

    n_levels: int = 16
    n_features: int = 2
    log2_table_size: int = 19
    base_resolution: int = 16
    finest_resolution: int = 4096

    @property
    def table_size(self) -> int:
        return 1 << self.log2_table_size

    @property
    def per_level_scale(self) -> float:
        if self.n_levels == 1:
            return 1.0
        return math.exp(
            math.log(self.finest_resolution / self.base_resolution) / (self.n_levels - 1)
        )

    def level_resolutions(self) -> list[int]:
        """Cells per axis of each level."""
        b = self.per_level_scale
        return [
            int(math.floor(self.base_resolution * b**lvl + 1e-6)) for lvl in range(self.n_levels)
        ]

    def level_dense(self) -> list[bool]:
        """Whether each level is stored densely (its corner grid fits the table)."""
        return [(n + 1) ** 3 <= self.table_size for n in self.level_resolutions()]

    @property
    def output_dim(self) -> int:
        return self.n_levels * self.n_features


def init_hashgrid_params(
    config: HashGridConfig, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Table [L, T, F] initialised uniformly in [-1e-4, 1e-4] (the paper's choice)."""
    t = torch.rand(config.n_levels, config.table_size, config.n_features, generator=generator)
    return (t * 2 - 1) * 1e-4


def _corner_index(ijk: torch.Tensor, res: int, dense: bool, table_size: int) -> torch.Tensor:
    if dense:
        r = res + 1
        return ijk[..., 0] + ijk[..., 1] * r + ijk[..., 2] * (r * r)
    h = ijk[..., 0] * _PRIMES[0]
    h = h ^ (ijk[..., 1] * _PRIMES[1])
    h = h ^ (ijk[..., 2] * _PRIMES[2])
    return h & (table_size - 1)


_CORNERS = torch.tensor([[(c >> k) & 1 for k in range(3)] for c in range(8)])  # [8, 3]


def _hashgrid_ref(x: torch.Tensor, params: torch.Tensor, config: HashGridConfig) -> torch.Tensor:
    x = x.clamp(0.0, 1.0)
    off = _CORNERS.to(x.device)  # [8, 3]
    n_lv, t = config.n_levels, config.table_size
    idx, wts = [], []
    for lvl, (res, dense) in enumerate(zip(config.level_resolutions(), config.level_dense())):
        p = x * res
        base = torch.floor(p).clamp(max=res - 1)
        frac = p - base
        # all 8 corners at once: indices [P, 8] into the flat table, trilinear weights [P, 8]
        idx.append(_corner_index(base.long()[:, None, :] + off, res, dense, t) + lvl * t)
        wts.append(torch.where(off.bool(), frac[:, None, :], 1 - frac[:, None, :]).prod(-1))
    # one gather from the flat [L T, F] table: its backward is one index_add into one
    # zero-filled gradient (a gather per level, params[lvl], filled a full-size zero
    # gradient per level: 16 x 67 MB of memset per iteration with the default 2^19 table)
    vals = gather_rows(params.reshape(n_lv * t, -1), torch.stack(idx, 1))  # [P, L, 8, F]
    out = (vals * torch.stack(wts, 1)[..., None]).sum(2)  # [P, L, F]
    return out.reshape(x.shape[0], n_lv * params.shape[-1])  # [P, L F] (also for P = 0)


def hashgrid_encode(
    x: torch.Tensor, params: torch.Tensor, config: HashGridConfig, backend: str = "auto"
) -> torch.Tensor:
    """Encode points with a multiresolution hash grid.

    Args:
        x: points [P, 3] in [0, 1]^3 (clamped).
        params: table [L, T, F] (float32).
        config: the encoding settings.
        backend: "auto", "torch", "cuda" or "tinycudann" (optional package).

    Returns:
        features [P, L * F]. Gradients flow to ``params`` and to ``x`` (zero where ``x``
        was clamped), on every backend.
    """
    check_tensor("x", x, (2,), last=3)
    check_tensor("params", params, (3,))
    want = (config.n_levels, config.table_size, config.n_features)
    if tuple(params.shape) != want:
        raise ValueError(
            f"params must have shape {want} for this config, got {tuple(params.shape)}"
        )
    if backend == "tinycudann":
        raise ValueError(
            "use nvdrec.render.MLPTexture3D(backend='tinycudann') for tiny-cuda-nn; "
            "hashgrid_encode takes 'auto', 'torch' or 'cuda'"
        )
    if pick_backend(backend, x, params) == "cuda":
        return hashgrid_cuda(x, params, config)
    return _hashgrid_ref(x, params, config)


# ------------------------------------------------------------------ CUDA
class _HashGridFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, table, res, dense):
        ctx.save_for_backward(x, table)
        ctx.meta = (res, dense)
        return load().hashgrid_fwd(x=x, table=table, res=res, dense=dense)

    @staticmethod
    def backward(ctx, g_out):
        x, table = ctx.saved_tensors
        res, dense = ctx.meta
        g_out = g_out.contiguous()
        g_table = g_x = None
        if ctx.needs_input_grad[1]:
            g_table = load().hashgrid_bwd(x=x, table=table, res=res, dense=dense, grad_out=g_out)
        if ctx.needs_input_grad[0]:
            g_x = load().hashgrid_bwd_input(x=x, table=table, res=res, dense=dense, grad_out=g_out)
        return g_x, g_table, None, None


def hashgrid_cuda(x, params, config):
    """Hash-grid encoding on the GPU; gradients to the table and to the points."""
    res = config.level_resolutions()
    dense = [int(d) for d in config.level_dense()]
    return _HashGridFn.apply(x.contiguous().float(), params.contiguous(), res, dense)
