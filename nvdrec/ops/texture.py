"""Texture sampling: 2D textures and cube maps, nearest / bilinear / trilinear (mipmaps).

Texel centres, UV origin and cube-face orientation follow docs/conventions.md. The mip
level of a pixel is ``log2(rho) + bias`` where ``rho`` is the longer of the two texel
footprint vectors ``(du/dX, dv/dX) * size`` and ``(du/dY, dv/dY) * size`` (the isotropic
level-of-detail rule of the OpenGL specification), clamped to the available levels.
"""

from __future__ import annotations

import torch

from ..native.build import load
from ._common import check_tensor, gather_rows, pick_backend
from .cubeface import cube_dir_to_face, cube_face_to_dir
from .mips import _level_sizes, _MipChainFn, build_mips

__all__ = ["texture", "build_mips", "cube_dir_to_face", "cube_face_to_dir"]

FILTER_MODES = ("auto", "nearest", "linear", "linear-mipmap-nearest", "linear-mipmap-linear")
BOUNDARY_MODES = ("wrap", "clamp", "zero", "cube")


# ------------------------------------------------------------------- sampling
def _level_tables(levels: list, cube: bool):
    """Concatenate levels into one buffer [B, N, C]; offsets/sizes per level."""
    b = levels[0].shape[0]
    flat, offs, hs, ws = [], [], [], []
    total = 0
    for lv in levels:
        h, w = lv.shape[-3], lv.shape[-2]
        flat.append(lv.reshape(b, -1, lv.shape[-1]))
        offs.append(total)
        hs.append(h)
        ws.append(w)
        total += h * w * (6 if cube else 1)
    dev = levels[0].device
    return (
        torch.cat(flat, 1),
        torch.tensor(offs, device=dev),
        torch.tensor(hs, device=dev),
        torch.tensor(ws, device=dev),
    )


def _taps(uv: torch.Tensor, h: torch.Tensor, w: torch.Tensor, nearest: bool):
    """Integer texel coordinates and weights of the 1 or 4 taps at uv [..., 2]."""
    x = uv[..., 0] * w - 0.5
    y = uv[..., 1] * h - 0.5
    if nearest:
        j = torch.floor(x + 0.5).long()
        i = torch.floor(y + 0.5).long()
        return [(i, j, torch.ones_like(x))]
    x0, y0 = torch.floor(x), torch.floor(y)
    fx, fy = x - x0, y - y0
    j0, i0 = x0.long(), y0.long()
    return [
        (i0, j0, (1 - fx) * (1 - fy)),
        (i0, j0 + 1, fx * (1 - fy)),
        (i0 + 1, j0, (1 - fx) * fy),
        (i0 + 1, j0 + 1, fx * fy),
    ]


def _level_taps_2d(off, h, w, uv, boundary, nearest):
    """Flat texel indices and weights [(index, weight), ...] of the 1 or 4 taps of a 2D
    lookup at uv [..., 2] on level(s) of size h x w starting at ``off``."""
    taps = []
    for i, j, wt in _taps(uv, h, w, nearest):
        if boundary == "wrap":
            i, j = torch.remainder(i, h), torch.remainder(j, w)
        else:
            valid = (i >= 0) & (i < h) & (j >= 0) & (j < w)
            i = torch.minimum(torch.clamp(i, min=0), h - 1)
            j = torch.minimum(torch.clamp(j, min=0), w - 1)
            if boundary == "zero":
                wt = wt * valid
        taps.append((off + i * w + j, wt))
    return taps


def _cube_level_taps(off, n, face, st, nearest):
    """Flat texel indices into the level buffer and weights [(index, weight), ...] of the
    1 or 4 taps of a cube-map lookup at face coordinates st [..., 2] on level(s) of size n."""
    taps = []
    for i, j, wt in _taps(st, n, n, nearest):
        outside = (i < 0) | (i >= n) | (j < 0) | (j >= n)
        fi = face
        if bool(outside.any()):
            # taps beyond the face edge continue on the neighbouring face: take the
            # direction of that texel centre on the extended face plane and look it up
            # (computed for those taps only: they are the few near face edges)
            sel = outside.nonzero(as_tuple=True)
            n_o = torch.broadcast_to(torch.as_tensor(n, device=i.device), i.shape)[sel]
            sc = (j[sel].to(st.dtype) + 0.5) / n_o * 2 - 1
            tc = (i[sel].to(st.dtype) + 0.5) / n_o * 2 - 1
            f2, s2, t2 = cube_dir_to_face(cube_face_to_dir(face[sel], sc, tc))
            fi, i, j = face.clone(), i.clone(), j.clone()
            fi[sel] = f2
            j[sel] = torch.minimum(torch.floor(s2 * n_o).long().clamp(min=0), n_o - 1)
            i[sel] = torch.minimum(torch.floor(t2 * n_o).long().clamp(min=0), n_o - 1)
        taps.append((off + (fi * n + i) * n + j, wt))
    return taps


def _lod_from_derivs(uv_da, h, w, cube_dir=None):
    """Level of detail log2(rho) from pixel derivatives of uv (or cube directions)."""
    if cube_dir is None:
        # uv_da = (du/dX, du/dY, dv/dX, dv/dY); footprint vectors in texels
        ax = torch.stack([uv_da[..., 0] * w, uv_da[..., 2] * h], -1)
        ay = torch.stack([uv_da[..., 1] * w, uv_da[..., 3] * h], -1)
    else:
        # derivative of the face coordinates s = sc / |ma| (texel units: * N / 2)
        d = cube_dir
        dx, dy = uv_da[..., 0:3], uv_da[..., 3:6]
        absd = d.abs()
        major = absd.argmax(-1, keepdim=True)
        ma = torch.gather(d, -1, major)
        ma = torch.where(ma.abs() < 1e-20, torch.full_like(ma, 1e-20), ma)

        def proj(dd):
            # in-face gradient: remove the component along the major axis, scale by 1/|ma|
            dma = torch.gather(dd, -1, major)
            g = (dd - d * (dma / ma)) / ma.abs()
            return g * (w * 0.5)

        ax, ay = proj(dx), proj(dy)
    rho2 = torch.maximum((ax * ax).sum(-1), (ay * ay).sum(-1))
    return 0.5 * torch.log2(rho2.clamp(min=1e-30))


def _texture_ref(tex, uv, uv_da, mip_level_bias, mip, filter_mode, boundary_mode, max_mip_level):
    """``texture`` for arguments it has checked and batched (tex [B, H, W, C] or
    [B, 6, N, N, C])."""
    cube = boundary_mode == "cube"
    batch = uv.shape[0]
    mipmapped = filter_mode in ("linear-mipmap-nearest", "linear-mipmap-linear")
    if mipmapped:
        if mip is not None:
            levels = [tex] + [
                m.expand(tex.shape[0], *m.shape[1:]) if m.shape[0] == 1 else m for m in mip
            ]
            if tex.shape[0] == 1 and levels[-1].shape[0] > 1:
                levels = [lv.expand(levels[-1].shape[0], *lv.shape[1:]) for lv in levels]
            if max_mip_level is not None:
                levels = levels[: max_mip_level + 1]
        else:
            levels = build_mips(tex, max_mip_level, cube=cube)
    else:
        levels = [tex]
    buf, offs, hs, ws = _level_tables(levels, cube)
    shape = uv.shape[:-1]
    flat_uv = uv.reshape(batch, -1, uv.shape[-1])
    if cube:
        face, s, t = cube_dir_to_face(flat_uv)
        coords = torch.stack([s, t], -1)
    else:
        coords = flat_uv
    nearest = filter_mode == "nearest"

    def taps(level_idx, scale=None):
        off, h, w = offs[level_idx], hs[level_idx], ws[level_idx]
        if cube:
            out = _cube_level_taps(off, h, face, coords, nearest)
        else:
            out = _level_taps_2d(off, h, w, coords, boundary_mode, nearest)
        return out if scale is None else [(i, wt * scale) for i, wt in out]

    if not mipmapped or len(levels) == 1:
        zero = torch.zeros(flat_uv.shape[:-1], dtype=torch.long, device=uv.device)
        return _gather_taps(buf, taps(zero)).reshape(*shape, -1)
    lod = torch.zeros(flat_uv.shape[:-1], dtype=flat_uv.dtype, device=uv.device)
    if uv_da is not None:
        da = uv_da.reshape(batch, -1, uv_da.shape[-1])
        lod = _lod_from_derivs(
            da, levels[0].shape[-3], levels[0].shape[-2], flat_uv if cube else None
        )
    if mip_level_bias is not None:
        lod = lod + mip_level_bias.reshape(batch, -1)
    lod = lod.clamp(0, len(levels) - 1)
    if filter_mode == "linear-mipmap-nearest":
        return _gather_taps(buf, taps(torch.floor(lod + 0.5).long())).reshape(*shape, -1)
    l0 = torch.floor(lod).long().clamp(max=len(levels) - 2)
    frac = lod - l0.to(lod.dtype)
    out = _gather_taps(buf, taps(l0, 1 - frac) + taps(l0 + 1, frac))
    return out.reshape(*shape, -1)


def _gather_taps(buf: torch.Tensor, taps: list) -> torch.Tensor:
    """sum_k weight_k * buf[index_k] for taps [(index [B, P], weight [B, P]), ...] into the
    level buffer ``buf`` [Bt, N, C] (Bt = 1: shared by the batch) -> [B, P, C].

    One gather for all taps: its backward is one index_add into one zero-filled gradient
    of the texture (a gather per tap filled a texture-sized buffer per tap; with a 512^2
    light chain, 8 x 50 MB of memset per shading call)."""
    index = torch.stack([i for i, _ in taps])  # [K, B, P]
    weight = torch.stack([w for _, w in taps])
    bt, n, c = buf.shape
    if bt > 1:
        index = index + torch.arange(bt, device=index.device).view(1, bt, 1) * n
    vals = gather_rows(buf.reshape(bt * n, c), index)  # [K, B, P, C]
    return (vals * weight[..., None]).sum(0)


def texture(
    tex: torch.Tensor,
    uv: torch.Tensor,
    uv_da: torch.Tensor | None = None,
    mip_level_bias: torch.Tensor | None = None,
    mip: list | None = None,
    filter_mode: str = "auto",
    boundary_mode: str = "wrap",
    max_mip_level: int | None = None,
    backend: str = "auto",
) -> torch.Tensor:
    """Sample a texture.

    Args:
        tex: [B, H, W, C] 2D texture (B may be 1 to share), or for
            ``boundary_mode="cube"`` a cube map [B, 6, N, N, C] or [6, N, N, C].
        uv: [B, h, w, 2] texture coordinates, or [B, h, w, 3] directions for cube maps.
        uv_da: pixel derivatives of uv, [B, h, w, 4] = (du/dX, du/dY, dv/dX, dv/dY)
            (as returned by interpolate with diff_attrs), or [B, h, w, 6] for cube maps
            (d dir/dX then d dir/dY).
        mip_level_bias: [B, h, w] added to the level of detail (in levels).
        mip: custom mip levels 1.. as a list of tensors shaped like ``tex`` at halved
            sizes (gradients flow into them); default: built by 2x2 box filtering.
        filter_mode: "nearest", "linear", "linear-mipmap-nearest",
            "linear-mipmap-linear", or "auto" (trilinear when uv_da or mip_level_bias
            is given, else bilinear).
        boundary_mode: "wrap", "clamp", "zero" or "cube".
        max_mip_level: use at most this many levels beyond the base.

    Returns:
        [B, h, w, C] filtered texels.
    """
    if filter_mode not in FILTER_MODES:
        raise ValueError(f"filter_mode must be one of {FILTER_MODES}, got {filter_mode!r}")
    if boundary_mode not in BOUNDARY_MODES:
        raise ValueError(f"boundary_mode must be one of {BOUNDARY_MODES}, got {boundary_mode!r}")
    cube = boundary_mode == "cube"
    if cube:
        check_tensor("tex", tex, (4, 5))
        if tex.shape[-4] != 6 or tex.shape[-3] != tex.shape[-2]:
            raise ValueError(
                f"cube map tex must be [B, 6, N, N, C] or [6, N, N, C], got {tuple(tex.shape)}"
            )
        check_tensor("uv", uv, (4,), last=3)
        if uv_da is not None:
            check_tensor("uv_da", uv_da, (4,), last=6)
    else:
        check_tensor("tex", tex, (3, 4))
        check_tensor("uv", uv, (4,), last=2)
        if uv_da is not None:
            check_tensor("uv_da", uv_da, (4,), last=4)
    tb = tex.shape[0] if tex.ndim == (5 if cube else 4) else 1
    if tb not in (1, uv.shape[0]):
        raise ValueError(f"tex batch {tb} does not match uv batch {uv.shape[0]} (use 1 to share)")
    if mip_level_bias is not None:
        check_tensor("mip_level_bias", mip_level_bias, (3, 4))
    if filter_mode == "auto":
        mipped = uv_da is not None or mip_level_bias is not None
        filter_mode = "linear-mipmap-linear" if mipped else "linear"
    if mip is not None:  # custom levels may come without the batch dimension
        unbatched = 4 if cube else 3
        mip = [m[None] if m.ndim == unbatched else m for m in mip]
    if tex.ndim == (4 if cube else 3):
        tex = tex[None]
    kw = dict(
        uv_da=uv_da,
        mip_level_bias=mip_level_bias,
        mip=mip,
        filter_mode=filter_mode,
        boundary_mode=boundary_mode,
        max_mip_level=max_mip_level,
    )
    chosen = pick_backend(backend, tex, uv)
    if chosen == "nvdiffrast":  # nvdiffrast's texture() takes the same names
        from ._nvdiffrast import module

        return module().texture(tex, uv, **kw)
    return (texture_cuda if chosen == "cuda" else _texture_ref)(tex, uv, **kw)


# ------------------------------------------------------------------ CUDA
_FILTERS = {"nearest": 0, "linear": 1, "linear-mipmap-nearest": 2, "linear-mipmap-linear": 3}
_BOUNDARIES = {"wrap": 0, "clamp": 1, "zero": 2, "cube": 0}


def _kernel_args(base, buf, uv, uv_da, bias, meta) -> dict:
    """The arguments both texture kernels take, by their names in csrc/texture/texture_bind.cpp."""
    offs, hs, ws, cube, boundary, filt = meta
    return {
        "base": base,
        "buf": buf,
        "offs": offs,
        "hs": hs,
        "ws": ws,
        "cube": cube,
        "boundary": boundary,
        "filter": filt,
        "uv": uv,
        "uv_da": uv_da,
        "bias": bias,
    }


class _TextureFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, base, buf, uv, uv_da, bias, meta):
        out = load().texture_fwd(**_kernel_args(base, buf, uv, uv_da, bias, meta))
        ctx.save_for_backward(base, buf, uv, uv_da, bias)
        ctx.meta = meta
        return out

    @staticmethod
    def backward(ctx, g_out):
        base, buf, uv, uv_da, bias = ctx.saved_tensors
        g_base, g_buf, g_uv, g_da, g_bias = load().texture_bwd(
            **_kernel_args(base, buf, uv, uv_da, bias, ctx.meta), grad_out=g_out.contiguous()
        )
        return (
            g_base,
            g_buf if buf.numel() else None,
            g_uv,
            g_da if uv_da is not None else None,
            g_bias if bias is not None else None,
            None,
        )


def texture_cuda(tex, uv, uv_da, mip_level_bias, mip, filter_mode, boundary_mode, max_mip_level):
    """``texture`` for arguments it has checked and batched (tex [B, H, W, C] or
    [B, 6, N, N, C])."""
    cube = boundary_mode == "cube"
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
