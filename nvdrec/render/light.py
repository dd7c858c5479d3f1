"""Learnable HDR environment light with split-sum image-based lighting.

Split-sum approximation (Karis, "Real Shading in Unreal Engine 4", 2013): the specular
integral is the product of the GGX-prefiltered radiance in the reflection direction and
a BRDF term ``F0 * A + B`` looked up in a table over (n.v, roughness). Our table is
computed here (GGX with alpha = roughness^2, height-correlated Smith masking, Schlick
Fresnel) and cached in memory.
"""

from __future__ import annotations

import functools
import math
import os

import torch
from torch import nn

from ..errors import DataError
from ..ops import pick_backend
from ..ops.cubefilter import cube_filter_operator, filter_cube_map
from ..ops.cubemap import (
    cubemap_to_latlong,
    diffuse_irradiance,
    latlong_to_cubemap,
    specular_prefilter,
)
from ..ops.shading import roughness_level, shade
from ..ops.texture import build_mips

__all__ = ["EnvironmentLight", "split_sum_lut", "ggx_directional_albedo_terms"]

LUT_SIZE = 256
# brighter than any captured light (the sun is ~1e5 in linear HDR maps): a damaged file
MAX_RADIANCE = 1e9


def _smith_lambda(cos_t: torch.Tensor, alpha: float | torch.Tensor) -> torch.Tensor:
    cos2 = (cos_t * cos_t).clamp(min=1e-12)
    tan2 = (1 - cos2) / cos2
    return 0.5 * (-1 + torch.sqrt(1 + alpha * alpha * tan2))


def ggx_directional_albedo_terms(ndotv: torch.Tensor, roughness: torch.Tensor, samples: int = 256):
    """(A, B) of the split-sum BRDF integral at the given (n.v, roughness) pairs [N].

    Samples the GGX distribution of *visible* normals (Heitz, "Sampling the GGX
    Distribution of Visible Normals", JCGT 2018) at Hammersley points; with that pdf the
    estimator of ``f (n.l) / pdf`` reduces to ``F G2 / G1(v)``, so
    ``A = mean((1 - Fc) G2 / G1(v))`` and ``B = mean(Fc G2 / G1(v))`` with
    ``Fc = (1 - v.h)^5`` and height-correlated Smith ``G2`` (low variance even at
    grazing angles).
    """
    from ..ops.cubemap import radical_inverse

    ndotv = ndotv.double().clamp(1e-4, 1.0)[:, None]
    a = (roughness.double().clamp(1e-3, 1.0) ** 2)[:, None]  # alpha
    u1 = ((torch.arange(samples, dtype=torch.float64) + 0.5) / samples)[None]
    u2 = radical_inverse(torch.arange(samples))[None]
    vx, vz = torch.sqrt((1 - ndotv * ndotv).clamp(min=0)), ndotv
    # view in the hemisphere configuration (stretch by alpha), then a disk sample
    hx, hz = a * vx, vz
    hl = torch.sqrt(hx * hx + hz * hz)
    hx, hz = hx / hl, hz / hl
    # T1 = (0, 1, 0) x ... : for v in the xz-plane, T1 = (0, 1, 0), T2 = Vh x T1
    t2x, t2z = -hz, hx
    r = torch.sqrt(u1)
    phi = 2 * math.pi * u2
    p1, p2 = r * torch.cos(phi), r * torch.sin(phi)
    sh = 0.5 * (1 + hz)
    p2 = (1 - sh) * torch.sqrt((1 - p1 * p1).clamp(min=0)) + sh * p2
    pz = torch.sqrt((1 - p1 * p1 - p2 * p2).clamp(min=0))
    # Nh = p1 T1 + p2 T2 + pz Vh, with T1 = (0, 1, 0)
    nx = p2 * t2x + pz * hx
    ny = p1
    nz = p2 * t2z + pz * hz
    # unstretch
    mx, my, mz = a * nx, a * ny, nz.clamp(min=0)
    ml = torch.sqrt(mx * mx + my * my + mz * mz).clamp(min=1e-12)
    mx, my, mz = mx / ml, my / ml, mz / ml
    vdoth = vx * mx + vz * mz
    lz = 2 * vdoth * mz - vz
    lam_v = _smith_lambda(vz, a)
    lam_l = _smith_lambda(lz.clamp(min=1e-6), a)
    ratio = torch.where(lz > 0, (1 + lam_v) / (1 + lam_v + lam_l), torch.zeros_like(lz))
    fc = (1 - vdoth.clamp(0, 1)) ** 5
    return ((1 - fc) * ratio).mean(-1).float(), (fc * ratio).mean(-1).float()


@functools.lru_cache(maxsize=4)
def _lut_cpu(size: int) -> torch.Tensor:
    c = (torch.arange(size, dtype=torch.float64) + 0.5) / size
    rough, ndotv = torch.meshgrid(c, c, indexing="ij")
    a, b = [], []
    for r_row, v_row in zip(rough.split(16), ndotv.split(16)):  # chunks bound memory
        ai, bi = ggx_directional_albedo_terms(v_row.reshape(-1), r_row.reshape(-1))
        a.append(ai.view(r_row.shape))
        b.append(bi.view(r_row.shape))
    return torch.stack([torch.cat(a), torch.cat(b)], -1)[None].contiguous()  # [1, S, S, 2]


@functools.lru_cache(maxsize=8)
def _lut_on(device: str, size: int) -> torch.Tensor:
    return _lut_cpu(size).to(device)


def split_sum_lut(device=None, size: int = LUT_SIZE) -> torch.Tensor:
    """Split-sum table [1, size, size, 2] = (A, B); rows: roughness, columns: n.v
    (texel centres at (i + 0.5) / size). Generated on first use and cached per device (a
    copy from host memory in every shading call would synchronise the GPU each time);
    treat it as read-only."""
    return _lut_on(str(torch.device(device if device is not None else "cpu")), size)


class EnvironmentLight(nn.Module):
    """HDR environment light: a learnable cube map ``base`` [6, R, R, 3] (linear radiance).

    Call :meth:`build_mips` after every change of ``base`` (each iteration when it is
    trained), then :meth:`shade`.
    """

    MIN_ROUGHNESS = 0.08
    MAX_ROUGHNESS = 0.5
    MIN_RES = 16

    def __init__(
        self, base: torch.Tensor, trainable: bool = True, samples: int = 32, backend: str = "auto"
    ) -> None:
        super().__init__()
        self.backend = backend
        if (
            base.ndim != 4
            or base.shape[0] != 6
            or base.shape[1] != base.shape[2]
            or base.shape[3] != 3
        ):
            raise ValueError(
                f"EnvironmentLight base must be a cube map [6, R, R, 3] of RGB radiance, got "
                f"{tuple(base.shape)}"
            )
        self.base = nn.Parameter(base.float().clone(), requires_grad=trainable)
        self.samples = samples
        self.mtx: torch.Tensor | None = None
        self.specular: list[torch.Tensor] = []
        self.diffuse: torch.Tensor | None = None

    # ---------------------------------------------------------------- creation / io
    @classmethod
    def load(
        cls, path: str | os.PathLike, scale: float = 1.0, res: int = 512, **kw
    ) -> EnvironmentLight:
        """From a lat-long HDR file (``.hdr``/``.exr``), resampled to a res^3 cube map."""
        from ..io.image import read_image

        img = read_image(path)
        if img.shape[-1] < 3:  # grey (or grey + alpha): the same radiance in R, G and B
            img = img[..., :1].repeat(3, axis=-1)
        img = torch.from_numpy(img[..., :3].copy())
        peak = float(img.abs().max()) if img.numel() else 0.0
        if not math.isfinite(peak) or peak > MAX_RADIANCE:
            raise DataError(
                f"environment map '{path}': radiance up to {peak:.3g}, beyond any real light "
                f"(at most {MAX_RADIANCE:.0e}); the file is damaged or not linear radiance"
            )
        if not (math.isfinite(scale) and scale >= 0):
            raise DataError(f"environment map '{path}': scale must be finite and >= 0, got {scale}")
        return cls(latlong_to_cubemap(img, res) * scale, **kw)

    @classmethod
    def random(cls, res: int = 512, seed: int = 0, **kw) -> EnvironmentLight:
        """nvdiffrec's initial learnable light: uniform random radiance in [0.25, 0.75]."""
        g = torch.Generator().manual_seed(seed)
        return cls(torch.rand(6, res, res, 3, generator=g) * 0.5 + 0.25, **kw)

    def latlong(self, height: int | None = None) -> torch.Tensor:
        """The light as a lat-long image [H, 2H, 3] (H defaults to the cube size)."""
        h = height or self.base.shape[1]
        return cubemap_to_latlong(self.base.detach(), h, 2 * h)

    def save(self, path: str | os.PathLike) -> None:
        """Write the light as a lat-long ``probe.hdr``."""
        from ..io.image import write_image

        write_image(path, self.latlong())

    # ---------------------------------------------------------------- filtering
    def roughness_of_level(self, k: int, n_levels: int) -> float:
        if k == n_levels - 1:
            return 1.0
        if n_levels <= 2:
            return self.MIN_ROUGHNESS
        return self.MIN_ROUGHNESS + (self.MAX_ROUGHNESS - self.MIN_ROUGHNESS) * k / (n_levels - 2)

    def filter_plan(self) -> tuple[tuple, tuple]:
        """(roughness, sample count) of every level of the chain from the base size down
        to MIN_RES: the settings of the specular prefilter."""
        res = self.base.shape[1]
        n_levels = 1
        while (res >> n_levels) >= self.MIN_RES:
            n_levels += 1
        rough = tuple(self.roughness_of_level(k, n_levels) for k in range(n_levels))
        # the finest levels have the narrowest lobes: with mip-filtered lookups (filtered
        # importance sampling) fewer samples suffice there, and they dominate the cost
        counts = tuple(max(4, self.samples >> max(0, 2 - k)) for k in range(n_levels))
        return rough, counts

    def build_mips(self) -> None:
        """Box-filtered chain down to 16x16, GGX-prefiltered specular levels (roughness
        0.08..0.5 over the finer levels, 1.0 for the last) and the diffuse irradiance."""
        res = self.base.shape[1]
        rough, counts = self.filter_plan()
        if self._use_operator(res):
            # the same filter as one precomputed sparse matrix (on CUDA: our mip and
            # gather kernels)
            op = cube_filter_operator(res, rough, counts, str(self.base.device))
            *self.specular, self.diffuse = filter_cube_map(op, self.base)
            return
        chain = build_mips(self.base[None], max_mip_level=len(rough) - 1, cube=True)
        chain = [c[0] for c in chain]
        self.diffuse = diffuse_irradiance(chain[-1])
        self.specular = [
            specular_prefilter(chain, k, rough[k], counts[k]) for k in range(len(chain))
        ]

    CPU_OPERATOR_MAX_RES = 512  # at 512: 14.8M entries, built in ~5 s (1.6 GB peak) on 2 cores

    def _use_operator(self, res: int) -> bool:
        if self._filter_backend() == "cuda":
            return True
        return (
            self.backend == "auto"
            and self.base.dtype == torch.float32
            and res <= self.CPU_OPERATOR_MAX_RES
        )

    def _filter_backend(self) -> str:
        backend = "cuda" if self.backend == "nvdiffrast" else self.backend
        if backend == "cuda" and not self.base.is_cuda:
            return "torch"
        return pick_backend(backend, self.base)

    def mip_of_roughness(self, roughness: torch.Tensor) -> torch.Tensor:
        """Continuous specular level for a roughness (inverse of roughness_of_level)."""
        return roughness_level(
            roughness, len(self.specular), self.MIN_ROUGHNESS, self.MAX_ROUGHNESS
        )

    def xfm(self, mtx: torch.Tensor | None) -> None:
        """Rotate lookups by ``mtx`` [B, 4, 4] (camera-space light), or None for world."""
        self.mtx = mtx

    def regularizer(self) -> torch.Tensor:
        """White-balance regulariser: mean |base - mean_rgb(base)|."""
        white = self.base.mean(-1, keepdim=True)
        return (self.base - white).abs().mean()

    @torch.no_grad()
    def clamp_(self, lo: float = 0.0, hi: float | None = None) -> None:
        self.base.clamp_(min=lo, max=hi)

    # ---------------------------------------------------------------- shading
    def shade(
        self,
        gb_pos: torch.Tensor,
        gb_normal: torch.Tensor,
        kd: torch.Tensor,
        ks: torch.Tensor,
        view_pos: torch.Tensor,
        specular: bool = True,
    ) -> torch.Tensor:
        """Outgoing radiance [B, H, W, 3] for G-buffers [B, H, W, 3] and cameras [B, 3].

        ``ks`` = (occlusion, roughness, metallic). Diffuse = irradiance(n) kd (1 - m);
        specular = prefiltered(reflect, level of roughness) (F0 A + B) with
        F0 = 0.04 (1 - m) + kd m; the sum is scaled by (1 - occlusion).

        The op is :func:`nvdrec.ops.shade`: on CUDA one fused kernel (forward and
        backward; gradients to the G-buffers, kd, ks and the filtered light), its torch
        reference on the CPU (and the oracle the kernel is tested against).
        """
        if self.diffuse is None:
            raise RuntimeError("call EnvironmentLight.build_mips() before shade()")
        return shade(
            gb_pos,
            gb_normal,
            kd,
            ks,
            view_pos,
            self.diffuse,
            self.specular,
            split_sum_lut(gb_pos.device),
            rot=None if self.mtx is None else self.mtx[:, :3, :3],
            roughness_range=(self.MIN_ROUGHNESS, self.MAX_ROUGHNESS),
            specular=specular,
            backend=self._filter_backend(),
        )
