"""Baking of a volumetric material into 2D textures over a mesh's UV atlas (the
render of the material in UV space), and the dilation that fills the texels between
charts."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .. import ops
from ..structures.material import Material, Texture2D
from ..structures.mesh import Mesh

__all__ = ["bake_textures", "dilate"]


def dilate(values: torch.Tensor, mask: torch.Tensor, iterations: int = 16) -> torch.Tensor:
    """Fill uncovered texels [H, W, C] from covered neighbours (mask [H, W] bool).

    Each round gives every empty texel the mean of its covered 3x3 neighbours; after
    ``iterations`` rounds, texels still empty get the mean of all covered texels, so
    mip levels never average in arbitrary values at chart borders.
    """
    v = (values * mask[..., None]).permute(2, 0, 1)[None]
    m = mask[None, None].float()
    k = torch.ones(1, 1, 3, 3, device=values.device)
    for _ in range(iterations):
        if bool(m.min() > 0):
            break
        s = F.conv2d(
            F.pad(v, (1, 1, 1, 1), mode="replicate"),
            k.expand(v.shape[1], 1, 3, 3),
            groups=v.shape[1],
        )
        c = F.conv2d(F.pad(m, (1, 1, 1, 1), mode="replicate"), k)
        fill = (m == 0) & (c > 0)
        v = torch.where(fill, s / c.clamp(min=1), v)
        m = torch.where(fill, torch.ones_like(m), m)
    out = v[0].permute(1, 2, 0)
    if bool((m == 0).any()):
        mean = (values * mask[..., None]).sum((0, 1)) / mask.sum().clamp(min=1)
        out = torch.where(m[0, 0][..., None] > 0, out, mean)
    return out


BAKE_CHUNK = 1 << 17  # points per material evaluation in the bake


@torch.no_grad()
def bake_textures(
    mesh: Mesh, sample_fn, resolution, backend: str = "auto"
) -> tuple[Material, torch.Tensor]:
    """Evaluate ``sample_fn(points [N, 3]) -> (kd, ks, normal)`` at every covered texel.

    Args:
        mesh: mesh with UVs (``unwrap_uv``).
        sample_fn: the (neural) material.
        resolution: (H, W) of the textures.

    Returns:
        (Material with kd/ks/normal Texture2D, coverage mask [H, W]).
    """
    h, w = int(resolution[0]), int(resolution[1])
    uv = mesh.v_tex
    pos_clip = torch.cat([uv * 2 - 1, torch.zeros_like(uv[:, :1]), torch.ones_like(uv[:, :1])], -1)
    rast, _ = ops.rasterize(
        pos_clip[None].contiguous(), mesh.t_tex_idx.int(), (h, w), backend=backend
    )
    gb_pos, _ = ops.interpolate(mesh.v_pos[None], rast, mesh.t_pos_idx.int(), backend=backend)
    mask = rast[0, ..., 3] > 0
    pts = gb_pos[0][mask]
    # bounded chunks: a 1024^2 bake evaluates ~10^6 points, whose hash-grid index
    # tensors alone would take gigabytes at once
    parts = [sample_fn(c) for c in pts.split(BAKE_CHUNK)] if len(pts) else [sample_fn(pts)]
    kd, ks, nrm = (torch.cat(p) for p in zip(*parts))
    maps = []
    for vals in (kd, ks, nrm):
        img = torch.zeros(h, w, vals.shape[-1], device=vals.device)
        img[mask] = vals
        maps.append(dilate(img, mask))
    kd_img, ks_img, n_img = maps
    n_img = F.normalize(n_img, dim=-1)
    mat = Material("baked", kd=Texture2D(kd_img), ks=Texture2D(ks_img), normal=Texture2D(n_img))
    return mat, mask
