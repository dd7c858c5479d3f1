"""Autograd wrappers around nvdrec's CUDA kernels (csrc/); imported only for CUDA tensors."""

from __future__ import annotations

import torch

from ..native.build import load

_FILTERS = {"nearest": 0, "linear": 1, "linear-mipmap-nearest": 2, "linear-mipmap-linear": 3}
_BOUNDARIES = {"wrap": 0, "clamp": 1, "zero": 2, "cube": 0}


def _zeros_if_none(g, like):
    return torch.zeros_like(like) if g is None else g.contiguous()


# ------------------------------------------------------------------ rasterize
class _RasterizeFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, pos, tri, slot_b, slot_t, n_batch, h, w, prev, grad_db):
        rast, rast_db, key = load().rasterize_fwd(pos, tri, slot_b, slot_t, n_batch, h, w, prev)
        ctx.save_for_backward(pos, tri, rast)
        ctx.grad_db = grad_db
        ctx.mark_non_differentiable(key)
        return rast, rast_db, key

    @staticmethod
    def backward(ctx, g_rast, g_db, _g_key):
        pos, tri, rast = ctx.saved_tensors
        g_rast = _zeros_if_none(g_rast, rast)
        g_db = g_db.contiguous() if (ctx.grad_db and g_db is not None) else None
        grad_pos = load().rasterize_bwd(pos, tri, rast, g_rast, g_db)
        return grad_pos, None, None, None, None, None, None, None, None


def rasterize_cuda(pos, tri, resolution, ranges, grad_db, prev):
    """(rast, rast_db, keys) with the same layout as the torch reference."""
    h, w = resolution
    pos = pos.contiguous()
    tri = tri.to(device=pos.device, dtype=torch.int32).contiguous()
    empty = torch.zeros(0, dtype=torch.int32, device=pos.device)
    if pos.ndim == 3:
        n_batch, slot_b, slot_t = pos.shape[0], empty, empty
    else:
        if ranges is None:
            ranges = torch.tensor([[0, tri.shape[0]]])
        ranges = ranges.to(device=pos.device, dtype=torch.long)
        counts = ranges[:, 1].clamp(min=0)
        n_batch = len(ranges)
        slot_b = torch.arange(n_batch, device=pos.device).repeat_interleave(counts)
        first = torch.cumsum(counts, 0) - counts
        slot_t = torch.arange(len(slot_b), device=pos.device) - first[slot_b] + ranges[slot_b, 0]
        slot_b, slot_t = slot_b.int().contiguous(), slot_t.int().contiguous()
    if prev is not None:
        prev = prev.contiguous()
    return _RasterizeFn.apply(pos, tri, slot_b, slot_t, n_batch, h, w, prev, grad_db)


# ------------------------------------------------------------------ interpolate
class _InterpolateFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, attr, rast, tri, rast_db, diff_idx):
        out, out_da = load().interpolate_fwd(attr, rast, tri, rast_db, diff_idx)
        ctx.save_for_backward(attr, rast, tri, rast_db, diff_idx)
        ctx.has_db = rast_db is not None
        return out, out_da

    @staticmethod
    def backward(ctx, g_out, g_da):
        attr, rast, tri, rast_db, diff_idx = ctx.saved_tensors
        g_out = _zeros_if_none(
            g_out, torch.empty(*rast.shape[:3], attr.shape[-1], device=attr.device)
        )
        g_da = g_da.contiguous() if (g_da is not None and diff_idx.numel()) else None
        grad_attr, grad_rast, grad_db = load().interpolate_bwd(
            attr, rast, tri, rast_db if ctx.has_db else None, diff_idx, g_out, g_da
        )
        return grad_attr, grad_rast, None, (grad_db if diff_idx.numel() else None), None


_INDEX_CACHE: dict = {}


def _index_tensor(idx: tuple, device) -> torch.Tensor:
    """Cached int32 channel list on the device (avoids a host-to-device copy per call)."""
    key = (idx, str(device))
    if key not in _INDEX_CACHE:
        _INDEX_CACHE[key] = torch.tensor(idx, dtype=torch.int32, device=device)
    return _INDEX_CACHE[key]


def interpolate_cuda(attr, rast, tri, rast_db, diff_attrs):
    squeeze = attr.ndim == 2
    a = (attr[None] if squeeze else attr).contiguous().float()
    if diff_attrs is None or rast_db is None:
        idx = []
    elif diff_attrs == "all":
        idx = list(range(a.shape[-1]))
    else:
        idx = list(diff_attrs)
    diff_idx = _index_tensor(tuple(idx), attr.device)
    db = rast_db.contiguous() if (rast_db is not None and idx) else None
    tri = tri.to(device=attr.device, dtype=torch.int32).contiguous()
    out, out_da = _InterpolateFn.apply(a, rast.contiguous(), tri, db, diff_idx)
    return out, (out_da if idx else None)


# ------------------------------------------------------------------ texture
class _TextureFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, base, buf, uv, uv_da, bias, meta):
        offs, hs, ws, cube, boundary, filt = meta
        out = load().texture_fwd(base, buf, offs, hs, ws, cube, boundary, filt, uv, uv_da, bias)
        ctx.save_for_backward(base, buf, uv, uv_da, bias)
        ctx.meta = meta
        return out

    @staticmethod
    def backward(ctx, g_out):
        base, buf, uv, uv_da, bias = ctx.saved_tensors
        offs, hs, ws, cube, boundary, filt = ctx.meta
        g_base, g_buf, g_uv, g_da, g_bias = load().texture_bwd(
            base, buf, offs, hs, ws, cube, boundary, filt, uv, uv_da, bias, g_out.contiguous()
        )
        return (
            g_base,
            g_buf if buf.numel() else None,
            g_uv,
            g_da if uv_da is not None else None,
            g_bias if bias is not None else None,
            None,
        )


class _MipChainFn(torch.autograd.Function):
    """Levels 1.. of images [N, H, W, C] in one buffer [N, M, C] (one kernel per level)."""

    @staticmethod
    def forward(ctx, images, hs, ws, offs, total):
        ctx.meta = (hs, ws, offs, total)
        ctx.shape = images.shape
        return load().mip_build(images, hs, ws, offs, total)

    @staticmethod
    def backward(ctx, g_mips):
        hs, ws, offs, total = ctx.meta
        g_tex = torch.zeros(ctx.shape, dtype=g_mips.dtype, device=g_mips.device)
        g = load().mip_build_bwd(g_tex, g_mips.contiguous().clone(), hs, ws, offs, total)
        return g, None, None, None, None


def _level_sizes(h: int, w: int, max_mip_level):
    """(heights, widths) of the chain: halve (floor, at least 1) down to 1x1."""
    hs, ws = [h], [w]
    limit = max_mip_level if max_mip_level is not None else 64
    while len(hs) - 1 < min(limit, 15) and (hs[-1] > 1 or ws[-1] > 1):
        hs.append(max(hs[-1] // 2, 1))
        ws.append(max(ws[-1] // 2, 1))
    return hs, ws


def texture_cuda(tex, uv, uv_da, mip_level_bias, mip, filter_mode, boundary_mode, max_mip_level):
    from .texture import build_mips

    cube = boundary_mode == "cube"
    if cube and tex.ndim == 4:
        tex = tex[None]
    if not cube and tex.ndim == 3:
        tex = tex[None]
    tex = tex.contiguous().float()
    faces = 6 if cube else 1
    bt, c = tex.shape[0], tex.shape[-1]
    mipmapped = filter_mode in ("linear-mipmap-nearest", "linear-mipmap-linear")
    if not mipmapped:
        hs, ws = [tex.shape[-3]], [tex.shape[-2]]
        levels = None
    elif mip is not None:
        levels = [tex, *mip]
        if max_mip_level is not None:
            levels = levels[: max_mip_level + 1]
        levels = levels[:16]
        levels = [lv.expand(bt, *lv.shape[1:]) if lv.shape[0] != bt else lv for lv in levels]
        hs = [lv.shape[-3] for lv in levels]
        ws = [lv.shape[-2] for lv in levels]
    elif cube:
        levels = build_mips(
            tex, min(max_mip_level if max_mip_level is not None else 15, 15), cube=True
        )
        hs = [lv.shape[-3] for lv in levels]
        ws = [lv.shape[-2] for lv in levels]
    else:
        hs, ws = _level_sizes(tex.shape[-3], tex.shape[-2], max_mip_level)
        levels = None
    # texel offsets of levels 1.. inside the mip buffer (level 0 stays in tex)
    offs, total = [0], 0
    for h, w in zip(hs[1:], ws[1:]):
        offs.append(total)
        total += h * w * faces
    base = tex.reshape(bt, -1, c)
    if len(hs) == 1:
        buf = tex.new_zeros(bt, 0, c)
    elif levels is None:  # 2D chain built by our kernels
        buf = _MipChainFn.apply(tex, hs, ws, offs, total)
    else:
        buf = torch.cat([lv.reshape(bt, -1, c) for lv in levels[1:]], 1).contiguous().float()
    meta = (offs, hs, ws, cube, _BOUNDARIES[boundary_mode], _FILTERS[filter_mode])
    da = uv_da.contiguous().float() if (uv_da is not None and mipmapped) else None
    bias = (
        mip_level_bias.contiguous().float() if (mip_level_bias is not None and mipmapped) else None
    )
    return _TextureFn.apply(base, buf, uv.contiguous().float(), da, bias, meta)


# ------------------------------------------------------------------ antialias
class _AntialiasFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, color, pos, rast, tri, neighbor, boost):
        out = load().antialias_fwd(color, rast, pos, tri, neighbor)
        ctx.save_for_backward(color, pos, rast, tri, neighbor)
        ctx.boost = boost
        return out

    @staticmethod
    def backward(ctx, g_out):
        color, pos, rast, tri, neighbor = ctx.saved_tensors
        g_color, g_pos = load().antialias_bwd(
            color, rast, pos, tri, neighbor, g_out.contiguous(), ctx.boost
        )
        return g_color, g_pos, None, None, None, None


def antialias_cuda(color, rast, pos, tri, topo, boost):
    tri = tri.to(device=color.device, dtype=torch.int32).contiguous()
    neighbor = topo.neighbor.to(device=color.device, dtype=torch.int32).contiguous()
    return _AntialiasFn.apply(
        color.contiguous().float(),
        pos.contiguous().float(),
        rast.contiguous(),
        tri,
        neighbor,
        float(boost),
    )


# ------------------------------------------------------------------ hash grid
class _HashGridFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, table, res, dense):
        ctx.save_for_backward(x, table)
        ctx.meta = (res, dense)
        return load().hashgrid_fwd(x, table, res, dense)

    @staticmethod
    def backward(ctx, g_out):
        x, table = ctx.saved_tensors
        res, dense = ctx.meta
        g_out = g_out.contiguous()
        g_table = g_x = None
        if ctx.needs_input_grad[1]:
            g_table = load().hashgrid_bwd(x, table, res, dense, g_out)
        if ctx.needs_input_grad[0]:
            g_x = load().hashgrid_bwd_input(x, table, res, dense, g_out)
        return g_x, g_table, None, None


def hashgrid_cuda(x, params, config):
    """Hash-grid encoding on the GPU; gradients to the table and to the points."""
    res = config.level_resolutions()
    dense = [int(d) for d in config.level_dense()]
    return _HashGridFn.apply(x.contiguous().float(), params.contiguous(), res, dense)


# ------------------------------------------------------------------ image loss
class _ImageLossFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, img, ref, kind):
        ctx.save_for_backward(img, ref)
        ctx.kind = kind
        return load().image_loss_fwd(img, ref, kind)

    @staticmethod
    def backward(ctx, g):
        img, ref = ctx.saved_tensors
        grad = load().image_loss_bwd(img, ref, ctx.kind, g.reshape(1).float().contiguous())
        return grad, None, None


def image_loss_cuda(img, ref, kind: int):
    """Fused image loss (kind: index into nvdrec.ops.loss.LOSSES), a 0-d tensor."""
    return _ImageLossFn.apply(img.contiguous(), ref.detach().contiguous(), kind)


# ------------------------------------------------------------------ split-sum shading
class _ShadeFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, pos, nrm, kd, ks, diffuse, spec, view, rot, lut, meta):
        batch, specular, sizes, lo, hi = meta
        ctx.save_for_backward(pos, nrm, kd, ks, diffuse, spec, view, rot, lut)
        ctx.meta = meta
        return load().shade_fwd(
            pos, nrm, kd, ks, view, rot, batch, specular, diffuse, spec, sizes, lut, lo, hi
        )

    @staticmethod
    def backward(ctx, g):
        pos, nrm, kd, ks, diffuse, spec, view, rot, lut = ctx.saved_tensors
        batch, specular, sizes, lo, hi = ctx.meta
        light_grad = ctx.needs_input_grad[4] or ctx.needs_input_grad[5]
        g_pos, g_nrm, g_kd, g_ks, g_diff, g_spec = load().shade_bwd(
            pos,
            nrm,
            kd,
            ks,
            view,
            rot,
            batch,
            specular,
            diffuse,
            spec,
            sizes,
            lut,
            lo,
            hi,
            g.contiguous(),
            light_grad,
        )
        if not light_grad:
            g_diff = g_spec = None
        elif not specular:
            g_spec = None
        return g_pos, g_nrm, g_kd, g_ks, g_diff, g_spec, None, None, None, None


def _pixels3(t: torch.Tensor) -> torch.Tensor:
    """[..., 3] as [P, 3] with unit channel stride (a view where possible)."""
    flat = t.reshape(-1, 3)
    if flat.stride(1) != 1 or flat.stride(0) < 3:
        flat = flat.contiguous()
    return flat


def _joined_levels(levels) -> torch.Tensor:
    """The levels [6, N_k, N_k, 3] as one [sum 6 N_k^2, 3] buffer: the buffer they are
    consecutive views of (as apply_cube_filter returns them), else a concatenation."""
    base = levels[0]._base
    if base is not None and base.ndim == 2 and base.is_contiguous():
        ptr, end = base.data_ptr(), 0
        for lv in levels:
            if not (lv._base is base and lv.is_contiguous()):
                break
            if lv.data_ptr() != ptr + end * base.element_size():
                break
            end += lv.numel()
        else:
            if end == base.numel():
                return base
    return torch.cat([lv.reshape(-1, 3) for lv in levels]).contiguous()


def shade_cuda(
    pos, nrm, kd, ks, view, rot, diffuse, specular_levels, lut, roughness_range, specular
):
    """Fused split-sum shading of G-buffers [B, H, W, 3] (see EnvironmentLight.shade);
    ``rot`` [B, 3, 3] or None, ``lut`` [S, S, 2], ``specular_levels`` a list of
    [6, N_k, N_k, 3]. Returns [B, H, W, 3]."""
    shape = pos.shape
    batch = shape[0]
    spec = _joined_levels(specular_levels)
    sizes = [int(s.shape[1]) for s in specular_levels]
    if rot is not None:
        rot = rot.reshape(batch, 9).float().contiguous()
    meta = (batch, bool(specular), sizes, float(roughness_range[0]), float(roughness_range[1]))
    out = _ShadeFn.apply(
        pos.reshape(-1, 3).contiguous(),
        nrm.reshape(-1, 3).contiguous(),
        _pixels3(kd),
        ks.reshape(-1, 3).contiguous(),
        diffuse.contiguous(),
        spec,
        view.reshape(-1, 3).detach().float().contiguous(),
        rot,
        lut.reshape(lut.shape[-3], lut.shape[-2], 2).contiguous(),
        meta,
    )
    return out.view(shape)
