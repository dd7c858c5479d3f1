"""Transforms, shading normals and BSDF terms (torch; shapes [..., 3])."""

from __future__ import annotations

import math

import torch

__all__ = [
    "xfm_points",
    "xfm_vectors",
    "safe_normalize",
    "reflect",
    "shading_normal",
    "lambert",
    "ggx_ndf",
    "smith_g2",
    "fresnel_schlick",
    "pbr_bsdf",
    "NORMAL_THRESHOLD",
]

NORMAL_THRESHOLD = 0.1  # n.v below which the shading normal blends to the geometric one


def safe_normalize(x: torch.Tensor, eps: float = 1e-20) -> torch.Tensor:
    return x / torch.sqrt(torch.clamp((x * x).sum(-1, keepdim=True), min=eps))


def xfm_points(points: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    """Points [B, N, 3] or [N, 3] by matrices [B, 4, 4] -> homogeneous [B, N, 4]."""
    p = torch.nn.functional.pad(points, (0, 1), value=1.0)
    if p.ndim == 2:
        p = p[None]
    return p @ matrix.transpose(-1, -2)


def xfm_vectors(vectors: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    """Directions [B, N, 3] or [N, 3] by the linear part of [B, 4, 4] -> [B, N, 3]."""
    v = vectors[None] if vectors.ndim == 2 else vectors
    return v @ matrix[..., :3, :3].transpose(-1, -2)


def reflect(wo: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
    """Mirror direction of ``wo`` (pointing away from the surface) about ``n``."""
    return 2 * (wo * n).sum(-1, keepdim=True) * n - wo


def shading_normal(
    pos: torch.Tensor,
    view_pos: torch.Tensor,
    perturbed: torch.Tensor | None,
    smooth_nrm: torch.Tensor,
    smooth_tng: torch.Tensor | None,
    geom_nrm: torch.Tensor,
    two_sided: bool = True,
) -> torch.Tensor:
    """World-space shading normal from a tangent-space normal map value.

    ``perturbed`` is the map value (x, y, z) in [-1, 1] with +Y up (OpenGL / glTF): the
    normal is ``x T + y B + z N`` with ``B = N x T``. With ``two_sided`` the frame is
    flipped for back faces (the geometric normal points away from the viewer). At grazing
    angles (n.v < NORMAL_THRESHOLD) the result blends smoothly towards the geometric
    normal, which avoids black silhouettes from normals facing away.
    """
    view = safe_normalize(view_pos - pos)
    smooth_nrm = safe_normalize(smooth_nrm)
    geom_nrm = safe_normalize(geom_nrm)
    if two_sided:
        back = (geom_nrm * view).sum(-1, keepdim=True) < 0
        smooth_nrm = torch.where(back, -smooth_nrm, smooth_nrm)
        geom_nrm = torch.where(back, -geom_nrm, geom_nrm)
        if smooth_tng is not None:
            smooth_tng = torch.where(back, -smooth_tng, smooth_tng)
    if perturbed is not None and smooth_tng is not None:
        t = safe_normalize(smooth_tng)
        b = safe_normalize(torch.linalg.cross(smooth_nrm, t, dim=-1))
        n = safe_normalize(
            perturbed[..., 0:1] * t + perturbed[..., 1:2] * b + perturbed[..., 2:3] * smooth_nrm
        )
    else:
        n = smooth_nrm
    ndotv = (n * view).sum(-1, keepdim=True)
    blend = torch.clamp(ndotv / NORMAL_THRESHOLD, 0.0, 1.0)
    return safe_normalize(torch.lerp(geom_nrm, n, blend))


def lambert(n: torch.Tensor, wi: torch.Tensor) -> torch.Tensor:
    """Lambertian BRDF times cosine: max(n.l, 0) / pi."""
    return torch.clamp((n * wi).sum(-1, keepdim=True), min=0.0) / math.pi


def ggx_ndf(alpha_sqr: torch.Tensor, cos_h: torch.Tensor) -> torch.Tensor:
    """GGX / Trowbridge-Reitz normal distribution D(h) for alpha^2 and n.h."""
    c = cos_h.clamp(0.0, 1.0)
    d = (c * c) * (alpha_sqr - 1.0) + 1.0
    return alpha_sqr / (math.pi * d * d)


def smith_g2(alpha_sqr: torch.Tensor, cos_v: torch.Tensor, cos_l: torch.Tensor) -> torch.Tensor:
    """Height-correlated Smith masking-shadowing G2."""

    def lam(c):
        c2 = (c * c).clamp(min=1e-8)
        return 0.5 * (-1.0 + torch.sqrt(1.0 + alpha_sqr * (1.0 - c2) / c2))

    return 1.0 / (1.0 + lam(cos_v) + lam(cos_l))


def fresnel_schlick(f0: torch.Tensor, cos_d: torch.Tensor, f90: float = 1.0) -> torch.Tensor:
    c = cos_d.clamp(0.0, 1.0)
    return f0 + (f90 - f0) * (1.0 - c) ** 5


def pbr_bsdf(kd, ks, n, wo, wi, min_roughness: float = 0.08) -> torch.Tensor:
    """Diffuse + GGX specular times cosine for one light direction (point lights,
    reference renders). ks = (occlusion, roughness, metallic)."""
    rough = ks[..., 1:2].clamp(min=min_roughness)
    metal = ks[..., 2:3]
    alpha_sqr = (rough * rough) ** 2
    h = safe_normalize(wo + wi)
    nv = (n * wo).sum(-1, keepdim=True).clamp(min=1e-4)
    nl = (n * wi).sum(-1, keepdim=True).clamp(min=0.0)
    f0 = 0.04 * (1 - metal) + kd[..., :3] * metal
    f = fresnel_schlick(f0, (wo * h).sum(-1, keepdim=True))
    spec = (
        ggx_ndf(alpha_sqr, (n * h).sum(-1, keepdim=True))
        * smith_g2(alpha_sqr, nv, nl)
        * f
        / (4 * nv)
    )
    diff = kd[..., :3] * (1 - metal) / math.pi * nl
    return diff + spec * (nl > 0)
