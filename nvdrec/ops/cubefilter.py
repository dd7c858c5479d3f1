"""The light filtering of :mod:`nvdrec.ops.cubemap` as one fixed sparse linear map.

The sample directions, weights and mip levels of the specular prefilter and the weights
of the diffuse irradiance do not depend on the light, so the whole filtering of a box
chain is ``y = A x``: built once (:func:`cube_filter_operator`), applied as a CSR product
(our CUDA gather on the GPU, torch's sparse product on the CPU, which is the reference),
differentiable through ``A^T``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch

from .cubeface import cube_dir_to_face
from .cubemap import (
    _filter_grid,
    _irradiance_weights,
    _prefilter_samples,
    prefilter_grid_size,
    upsample_filtered,
)
from .mips import build_mips
from .texture import _cube_level_taps

__all__ = [
    "CubeFilterOperator",
    "cube_filter_operator",
    "apply_cube_filter",
    "filter_cube_map",
]


@dataclass(frozen=True, eq=False)
class CubeFilterOperator:
    """The whole light filtering as one fixed sparse linear map (CSR).

    The sample directions, weights and mip levels of :func:`specular_prefilter` and the
    weights of :func:`diffuse_irradiance` do not depend on the light, so
    ``build_mips``' filtering is ``y = A x`` with ``x`` the box-filtered chain (levels
    concatenated face-major, [K, C]) and ``y`` the specular levels followed by the diffuse
    irradiance ([M, C]). The forward pass gathers along the rows of ``A``, the backward
    along the rows of ``A^T`` (stored too), so neither needs atomics.
    """

    row_ptr: torch.Tensor  # [M + 1] int32
    col: torch.Tensor  # [nnz] int32
    val: torch.Tensor  # [nnz] float32
    t_row_ptr: torch.Tensor  # [K + 1] int32 (transpose)
    t_col: torch.Tensor  # [nnz] int32
    t_val: torch.Tensor  # [nnz] float32
    in_sizes: tuple  # cube size of every chain level
    out_sizes: tuple  # cube size of every output block (specular levels, then diffuse)
    grid_sizes: tuple  # side of the grid each block is filtered on (apron included)
    seg: tuple | None = None  # long rows of A split for the CUDA kernel (_split_rows)
    t_seg: tuple | None = None  # the same for A^T

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.row_ptr) - 1, len(self.t_row_ptr) - 1

    @property
    def nnz(self) -> int:
        return len(self.col)


SEGMENT_LEN = 256  # longest row piece one lane group of the CUDA gather handles


def _split_rows(row_ptr: torch.Tensor, max_len: int = SEGMENT_LEN) -> tuple:
    """Cut the rows of a CSR matrix into segments of at most ``max_len`` entries (balanced
    work for the CUDA gather: a few coarse-level texels are sampled by thousands of
    outputs). Returns int32 tables (seg_ptr [V + 1] entry ranges, seg_out [V] output row or
    -(1 + slot) for a segment of a split row, multi_ptr [S + 1] slot ranges and
    multi_rows [S] of the S split rows) and the number of slots."""
    rp = row_ptr.long()
    dev = rp.device
    lens = rp[1:] - rp[:-1]
    nseg = ((lens + max_len - 1) // max_len).clamp(min=1)
    seg_row = torch.repeat_interleave(torch.arange(len(lens), device=dev), nseg)
    first = torch.cumsum(nseg, 0) - nseg
    k = torch.arange(len(seg_row), device=dev) - first[seg_row]
    seg_ptr = torch.cat([rp[seg_row] + k * max_len, rp[-1:]])
    split = nseg > 1
    in_split = split[seg_row]
    slot = torch.cumsum(in_split.long(), 0) - 1
    seg_out = torch.where(in_split, -1 - slot, seg_row)
    multi_rows = torch.nonzero(split)[:, 0]
    multi_ptr = torch.cat([nseg.new_zeros(1), torch.cumsum(nseg[multi_rows], 0)])
    tables = tuple(t.int().contiguous() for t in (seg_ptr, seg_out, multi_ptr, multi_rows))
    return (*tables, int(in_split.sum()))


def _csr(rows: torch.Tensor, n_rows: int) -> torch.Tensor:
    counts = torch.bincount(rows, minlength=n_rows)
    return torch.cat([counts.new_zeros(1), torch.cumsum(counts, 0)]).int()


@functools.lru_cache(maxsize=4)
def cube_filter_operator(
    res: int, roughness: tuple, samples: tuple, device: str = "cpu", chunk: int = 1 << 17
) -> CubeFilterOperator:
    """The :class:`CubeFilterOperator` of a chain from ``res`` down by halving, one
    specular level per chain level (``roughness[k]``, ``samples[k]``) and the diffuse
    irradiance of the last level. Built once per argument set (cached)."""
    dev = torch.device(device)
    sizes = [res >> k for k in range(len(roughness))]
    n_lv = len(sizes)
    in_off = [0]
    for n in sizes:
        in_off.append(in_off[-1] + 6 * n * n)
    n_cols = in_off[-1]
    offs_t = torch.tensor(in_off[:-1], device=dev)
    sizes_t = torch.tensor(sizes, device=dev)
    rows_all, cols_all, vals_all = [], [], []
    row0 = 0
    grid_sizes = []
    for k, n_out in enumerate(sizes):
        size = prefilter_grid_size(res, k, n_lv, roughness[k], samples[k])
        grid, _ = _filter_grid(n_out, size)
        grid_sizes.append(grid.shape[1])
        l_dir, w, lod = _prefilter_samples(
            grid.reshape(-1, 3).to(dev), res, roughness[k], samples[k]
        )
        lod = lod.clamp(0, n_lv - 1)
        for a in range(0, l_dir.shape[0], chunk):
            d, wc, lc = l_dir[a : a + chunk], w[a : a + chunk], lod[a : a + chunk]
            face, s, t = cube_dir_to_face(d)
            st = torch.stack([s, t], -1)
            rid = (torch.arange(d.shape[0], device=dev) + row0 + a)[:, None].expand_as(wc)
            if n_lv == 1:
                blends = [(torch.zeros_like(face), torch.ones_like(wc))]
            else:
                l0 = torch.floor(lc).long().clamp(max=n_lv - 2)
                frac = lc - l0.to(lc.dtype)
                blends = [(l0, 1 - frac), (l0 + 1, frac)]
            rr, cc, vv = [], [], []
            for lvl, lw in blends:
                for idx, wt in _cube_level_taps(offs_t[lvl], sizes_t[lvl], face, st, False):
                    rr.append(rid.reshape(-1))
                    cc.append(idx.reshape(-1))
                    vv.append((wc * lw * wt).reshape(-1))
            key = torch.cat(rr) * n_cols + torch.cat(cc)
            uniq, inv = torch.unique(key, return_inverse=True)
            val = torch.zeros(len(uniq), device=dev).index_add_(0, inv, torch.cat(vv))
            keep = val != 0
            uniq, val = uniq[keep], val[keep]
            rows_all.append(uniq // n_cols)
            cols_all.append(uniq % n_cols)
            vals_all.append(val)
        row0 += l_dir.shape[0]
    # diffuse irradiance: dense weights over the last chain level
    wd = _irradiance_weights(sizes[-1]).to(dev)
    m = wd.shape[0]
    r, c = torch.meshgrid(torch.arange(m, device=dev), torch.arange(m, device=dev), indexing="ij")
    keep = wd.reshape(-1) != 0
    rows_all.append((r.reshape(-1) + row0)[keep])
    cols_all.append((c.reshape(-1) + in_off[-2])[keep])
    vals_all.append(wd.reshape(-1)[keep])
    n_rows = row0 + m
    rows, cols, vals = torch.cat(rows_all), torch.cat(cols_all), torch.cat(vals_all)
    if len(vals) >= 2**31:
        raise ValueError(f"cube filter operator too large ({len(vals)} entries); lower light_res")
    order = torch.sort(cols, stable=True).indices  # rows stay sorted within each column
    row_ptr, t_row_ptr = _csr(rows, n_rows), _csr(cols, n_cols)
    cuda = dev.type == "cuda"
    return CubeFilterOperator(
        row_ptr=row_ptr,
        col=cols.int(),
        val=vals.float(),
        t_row_ptr=t_row_ptr,
        t_col=rows[order].int(),
        t_val=vals[order].float(),
        in_sizes=tuple(sizes),
        out_sizes=tuple(sizes) + (sizes[-1],),
        grid_sizes=tuple(grid_sizes) + (sizes[-1],),
        seg=_split_rows(row_ptr) if cuda else None,
        t_seg=_split_rows(t_row_ptr) if cuda else None,
    )


def _spmm(
    row_ptr, col, val, x: torch.Tensor, seg: tuple | None = None, split_at: int = 0
) -> torch.Tensor | tuple:
    """CSR matrix times dense [K, C] -> [M, C] (our CUDA kernel, with the row segments of
    :func:`_split_rows` when given; on the CPU torch's sparse CSR product). With
    ``split_at`` > 0 the rows come as two tensors, [:split_at] and [split_at:]."""
    n_rows = len(row_ptr) - 1
    if x.is_cuda:
        from ..native.build import load

        ptr, tables, slots = row_ptr, None, 0
        if seg is not None:  # long rows cut into segments (see _split_rows)
            ptr, seg_out, multi_ptr, multi_rows, slots = seg
            tables = [seg_out, multi_ptr, multi_rows]
        ys = load().csr_gather(
            row_ptr=ptr,
            col=col,
            val=val,
            x=x.contiguous(),
            split=tables,
            rows=n_rows,
            slots=slots,
            split_at=split_at,
        )
        return tuple(ys) if split_at else ys[0]
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "sparse CSR support is in beta"
        a = torch.sparse_csr_tensor(row_ptr, col, val.to(x.dtype), size=(n_rows, x.shape[0]))
        y = a @ x
    return (y[:split_at], y[split_at:]) if split_at else y


class _CubeFilterFn(torch.autograd.Function):
    """y = A x split into its two blocks (specular levels [Ms, C], diffuse [Md, C]) so
    that each consumer's gradient arrives without a zero-filled full-size buffer."""

    @staticmethod
    def forward(ctx, x, op, n_spec):
        ctx.op = op
        ctx.n_spec = n_spec
        # two separate outputs: the specular levels are views of a buffer of their own
        return _spmm(op.row_ptr, op.col, op.val, x, op.seg, split_at=n_spec)

    @staticmethod
    def backward(ctx, g_spec, g_diff):
        return _filter_backward(ctx.op, ctx.n_spec, g_spec, g_diff), None, None


def _filter_backward(op: CubeFilterOperator, n_spec: int, g_spec, g_diff) -> torch.Tensor:
    """A^T g for the gradients of the two output blocks (either may be None)."""
    if g_spec is None:
        g_spec = g_diff.new_zeros(n_spec, g_diff.shape[1])
    if g_diff is None:
        g_diff = g_spec.new_zeros(op.shape[0] - n_spec, g_spec.shape[1])
    g = torch.cat([g_spec, g_diff]).contiguous()
    return _spmm(op.t_row_ptr, op.t_col, op.t_val, g, op.t_seg)


def apply_cube_filter(op: CubeFilterOperator, chain: list[torch.Tensor]) -> list[torch.Tensor]:
    """Filter a box chain (levels [6, N_k, N_k, C]) with ``op``: returns the specular
    levels [6, N_k, N_k, C] followed by the diffuse irradiance [6, N_L, N_L, C]
    (differentiable; the same values as :func:`specular_prefilter` and
    :func:`diffuse_irradiance`). The specular levels are consecutive views of one buffer
    (the fused shading kernel reads it without a copy). Computes in float32, except a
    float64 chain on the CPU, which stays float64 (reference precision: the float32
    weights are then the only rounding)."""
    if tuple(c.shape[1] for c in chain) != op.in_sizes:
        raise ValueError(
            f"chain sizes {[c.shape[1] for c in chain]} do not match the operator's "
            f"{list(op.in_sizes)}"
        )
    c = chain[0].shape[-1]
    x = torch.cat([lv.reshape(-1, c) for lv in chain])
    if x.is_cuda or x.dtype != torch.float64:
        x = x.float()
    spec, diff = _CubeFilterFn.apply(x.contiguous(), op, _n_spec_rows(op))
    return _split_levels(op, spec, diff, c)


def _n_spec_rows(op: CubeFilterOperator) -> int:
    return sum(6 * g * g for g in op.grid_sizes[:-1])


def _split_levels(op: CubeFilterOperator, spec, diff, c: int) -> list[torch.Tensor]:
    """The operator's output blocks as levels: grids with an apron upsampled to their
    level size; on CUDA all specular levels are consecutive views of one buffer (the
    fused shading kernel reads it without a copy). torch.split, not slicing: the gradient
    of n slices of a buffer is n buffer-sized zero fills, that of a split one concat."""
    grids = [
        g.view(6, n, n, c)
        for g, n in zip(spec.split([6 * n * n for n in op.grid_sizes[:-1]]), op.grid_sizes)
    ]
    if any(g != n for g, n in zip(op.grid_sizes, op.out_sizes)):
        grids = [upsample_filtered(g, n) for g, n in zip(grids, op.out_sizes)]
        if spec.is_cuda:
            joined = torch.cat([g.reshape(-1, c) for g in grids])
            sizes = [6 * n * n for n in op.out_sizes[:-1]]
            grids = [g.view(6, n, n, c) for g, n in zip(joined.split(sizes), op.out_sizes)]
    n = op.out_sizes[-1]
    return grids + [diff.view(6, n, n, c)]


class _CubeChainFilterFn(torch.autograd.Function):
    """CUDA: box chain and filter of a cube map in one step. The faces of a level are
    stacked into one [6N, N] image, so our mip kernels build every level straight into the
    layout of the operator's input (level-major, face, row, column); needs even sizes."""

    @staticmethod
    def forward(ctx, base, op, n_spec):
        from ..native.build import load

        c = base.shape[-1]
        hs = [6 * n for n in op.in_sizes]
        ws = list(op.in_sizes)
        offs, total = [0], 0
        for h, w in zip(hs[1:], ws[1:]):
            offs.append(total)
            total += h * w
        img = base.reshape(1, hs[0], ws[0], c).contiguous().float()
        mips = load().mip_build(tex=img, hs=hs, ws=ws, offs=offs, total=total)
        x = torch.cat([img.reshape(-1, c), mips.reshape(-1, c)])
        ctx.op, ctx.n_spec, ctx.meta = op, n_spec, (hs, ws, offs, total, base.shape)
        # two separate outputs: the specular levels are views of a buffer of their own
        return _spmm(op.row_ptr, op.col, op.val, x, op.seg, split_at=n_spec)

    @staticmethod
    def backward(ctx, g_spec, g_diff):
        from ..native.build import load

        g_x = _filter_backward(ctx.op, ctx.n_spec, g_spec, g_diff)
        hs, ws, offs, total, shape = ctx.meta
        c = g_x.shape[1]
        k0 = hs[0] * ws[0]
        g_base = g_x[:k0].view(1, hs[0], ws[0], c)
        # pushes the level gradients down the chain in place, adding into g_base
        load().mip_build_bwd(
            grad_tex=g_base,
            grad_mips=g_x[k0:].view(1, total, c),
            hs=hs,
            ws=ws,
            offs=offs,
            total=total,
        )
        return g_base.view(shape), None, None


def _stackable(sizes: tuple) -> bool:
    return all(n % 2 == 0 and m == n // 2 for n, m in zip(sizes[:-1], sizes[1:]))


def filter_cube_map(op: CubeFilterOperator, base: torch.Tensor) -> list[torch.Tensor]:
    """Box chain of ``base`` [6, R, R, C] (2x2 averages, as :func:`build_mips`) filtered by
    ``op``: the specular levels then the diffuse irradiance, as :func:`apply_cube_filter`.
    On CUDA with even level sizes the chain is built by our mip kernels inside one
    autograd node; otherwise through :func:`build_mips` and :func:`apply_cube_filter`."""
    if not (base.is_cuda and base.dtype == torch.float32 and _stackable(op.in_sizes)):
        chain = build_mips(base[None], max_mip_level=len(op.in_sizes) - 1, cube=True)
        return apply_cube_filter(op, [lv[0] for lv in chain])
    if base.shape[1] != op.in_sizes[0]:
        raise ValueError(
            f"light of size {base.shape[1]} does not match the operator's {op.in_sizes[0]}"
        )
    spec, diff = _CubeChainFilterFn.apply(base, op, _n_spec_rows(op))
    return _split_levels(op, spec, diff, base.shape[-1])
