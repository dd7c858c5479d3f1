"""Mesh renderer: rasterize, interpolate, sample materials, shade, antialias."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch.profiler import record_function

from .. import ops
from ..ops import gather_rows
from ..ops.shading import safe_normalize, shading_normal, xfm_points
from ..structures.material import Material
from .light import EnvironmentLight
from .mlptexture import MLPTexture3D

__all__ = ["RasterContext", "render_mesh", "DEBUG_BSDFS"]

DEBUG_BSDFS = ("kd", "ks", "normal", "tangent")


@dataclass
class RasterContext:
    """Render settings shared across calls: the op backend and the antialiasing
    topology of the last face list."""

    backend: str = "auto"
    _topo: tuple | None = field(default=None, repr=False)

    def topology(self, faces: torch.Tensor, tri: torch.Tensor | None = None):
        """Edge topology of ``faces`` [T, 3] for :func:`~nvdrec.ops.antialias`, reused
        while the same face tensor (the same object, not modified in place) comes back,
        as in pass 2 where the topology is fixed. The cache holds the tensor itself: a key
        made of its address alone would match a new face list that the allocator placed
        in the freed memory of the old one (pass 1 makes a new list every iteration).
        ``tri``: the same faces as contiguous int32, if already made."""
        hit = self._topo
        if hit is not None and hit[0] is faces and hit[1] == faces._version:
            return hit[2]
        topo = ops.antialias_construct_topology_hash(
            tri if tri is not None else faces.int().contiguous()
        )
        self._topo = (faces, faces._version, topo)
        return topo


KD_JITTER = 0.01  # world-space jitter of the neural material's kd smoothness term
KD_UV_JITTER = 0.005  # UV jitter of the same term on trainable 2D textures (pass 2)
COMPACT_NEURAL_MATERIAL = True  # evaluate a neural material on covered pixels only (CPU)


def _sample_material(material, mesh, rast, rast_db, gb_pos, backend, noise=None):
    """(kd [.., 3 or 4], ks [.., 3], perturbed normal [.., 3] or None, kd_grad [.., 1]).
    ``noise``: standard normal [B, H, W, 3] for the kd smoothness jitter (None: drawn
    from the global generator)."""
    if isinstance(material, MLPTexture3D):
        # On the CPU only the covered pixels are evaluated (background pixels never reach
        # the image: compositing weights them by zero); on a GPU the compaction would cost
        # a host-device sync in the middle of the forward pass, so all pixels are.
        covered = rast[..., 3] > 0 if (COMPACT_NEURAL_MATERIAL and not gb_pos.is_cuda) else None
        pts = gb_pos if covered is None else gb_pos[covered]
        if noise is None:
            noise = torch.randn_like(gb_pos)
        jitter = pts + (noise if covered is None else noise[covered]) * KD_JITTER
        # the points and their jittered copies in one evaluation: one hash-table gradient
        # (on the CPU each call's backward fills a table-sized buffer: 67 MB at 2^19)
        vals, vals_jit = material.sample(torch.cat([pts, jitter])).chunk(2)
        kd = MLPTexture3D.split(vals)[0]
        kd_jit = MLPTexture3D.split(vals_jit)[0]
        kd_grad = (kd_jit - kd).abs().sum(-1, keepdim=True) / 3
        if covered is not None:  # back to [B, H, W, C], zeros on the background
            both = torch.cat([vals, kd_grad], -1)
            full = both.new_zeros(*gb_pos.shape[:-1], both.shape[-1])
            full = full.index_put((covered,), both)
            vals, kd_grad = full[..., :-1], full[..., -1:]
        kd, ks, nrm = MLPTexture3D.split(vals)
        return kd, ks, nrm, kd_grad
    if not isinstance(material, Material):
        raise TypeError(
            f"material must be a Material or MLPTexture3D, got {type(material).__name__}"
        )
    maps = [t for t in (material.kd, material.ks, material.normal) if t is not None]
    if mesh.v_tex is None and all(t.is_constant for t in maps):  # no UVs needed

        def const(t):
            return None if t is None else t.data.expand(*gb_pos.shape[:-1], t.data.shape[-1])

        kd = const(material.kd)
        return kd, const(material.ks), const(material.normal), torch.zeros_like(kd[..., :1])
    if mesh.v_tex is None:
        raise ValueError("a textured Material needs texture coordinates (mesh.v_tex)")
    texc, texc_db = ops.interpolate(
        mesh.v_tex[None],
        rast,
        mesh.t_tex_idx.int(),
        rast_db=rast_db,
        diff_attrs="all",
        backend=backend,
    )

    def tex(t):
        if t is None:
            return None
        if t.is_constant:
            return t.data.expand(*texc.shape[:-1], t.data.shape[-1])
        return ops.texture(
            t.data,
            texc,
            uv_da=texc_db,
            mip=t.mip_levels(),
            filter_mode="linear-mipmap-linear",
            backend=backend,
        )

    kd, ks, nrm = tex(material.kd), tex(material.ks), tex(material.normal)
    kd_grad = torch.zeros_like(kd[..., :1])
    trained = material.kd is not None and not material.kd.is_constant
    if trained and material.kd.data.requires_grad and torch.is_grad_enabled():
        # kd smoothness while the texture trains (pass 2): the change of kd under a UV
        # jitter of std KD_UV_JITTER, as the neural material's under a position jitter
        nz = torch.randn_like(texc) if noise is None else noise[..., :2]
        jit = texc + nz * KD_UV_JITTER
        kd_jit = ops.texture(
            material.kd.data,
            jit,
            uv_da=texc_db,
            mip=material.kd.mip_levels(),
            filter_mode="linear-mipmap-linear",
            backend=backend,
        )
        kd_grad = (kd_jit[..., :3] - kd[..., :3]).abs().sum(-1, keepdim=True) / 3
    return kd, ks, nrm, kd_grad


def _face_normals(mesh) -> torch.Tensor:
    v = gather_rows(mesh.v_pos, mesh.t_pos_idx)
    return safe_normalize(torch.linalg.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0], dim=-1))


def _shade_layer(ctx, mesh, material, rast, rast_db, view_pos, lgt, bsdf, min_roughness, noise):
    backend = ctx.backend
    tri = mesh.t_pos_idx.int()
    gb_pos, _ = ops.interpolate(mesh.v_pos[None], rast, tri, backend=backend)
    tid = (rast[..., 3].long() - 1).clamp(min=0)
    geom_n = gather_rows(_face_normals(mesh), tid)
    smooth_n, _ = ops.interpolate(mesh.v_nrm[None], rast, mesh.t_nrm_idx.int(), backend=backend)
    tng = None
    if mesh.v_tng is not None:
        tng, _ = ops.interpolate(mesh.v_tng[None], rast, mesh.t_tng_idx.int(), backend=backend)
    with record_function("nvdrec:material"):
        kd, ks, pert, kd_grad = _sample_material(
            material, mesh, rast, rast_db, gb_pos, backend, noise
        )
    ks = torch.cat([ks[..., 0:1], ks[..., 1:2].clamp(min=min_roughness), ks[..., 2:3]], -1)
    vp = view_pos.view(-1, 1, 1, 3)
    n = shading_normal(gb_pos, vp, pert, smooth_n, tng, geom_n, two_sided=True)
    if bsdf == "kd":
        color = kd[..., :3]
    elif bsdf == "ks":
        color = ks
    elif bsdf == "normal":
        color = (n + 1) * 0.5
    elif bsdf == "tangent":
        color = (safe_normalize(tng) + 1) * 0.5 if tng is not None else torch.zeros_like(n)
    else:
        if not isinstance(lgt, EnvironmentLight):
            raise TypeError("shading needs an EnvironmentLight (or a debug bsdf)")
        if bsdf == "white":
            kd = torch.full_like(kd[..., :3], 0.8)
        with record_function("nvdrec:shade"):
            color = lgt.shade(gb_pos, n, kd[..., :3], ks, view_pos, specular=bsdf != "diffuse")
    alpha = kd[..., 3:4] if kd.shape[-1] > 3 else torch.ones_like(kd[..., :1])
    return color, alpha, kd_grad, ks[..., 0:1]


def render_mesh(
    ctx: RasterContext,
    mesh,
    mtx_in: torch.Tensor,
    view_pos: torch.Tensor,
    lgt: EnvironmentLight | None,
    resolution,
    spp: int = 1,
    num_layers: int = 1,
    msaa: bool = False,
    background: torch.Tensor | None = None,
    bsdf: str | None = None,
    material=None,
    min_roughness: float = 0.08,
    kd_jitter: torch.Tensor | None = None,
) -> dict:
    """Render a mesh.

    Args:
        ctx: :class:`RasterContext`.
        mesh: :class:`~nvdrec.structures.Mesh` with normals (and tangents/UVs as needed).
        mtx_in: model-view-projection [B, 4, 4].
        view_pos: camera positions [B, 3].
        lgt: environment light (already :meth:`~EnvironmentLight.build_mips`-ed).
        resolution: (H, W) of the output.
        spp: supersampling per axis (renders at H*spp and box-filters down).
        num_layers: depth-peeled layers, composited back to front by kd alpha.
        msaa: with spp > 1, rely on supersampling alone (skip analytic antialiasing).
        background: [B, H, W, 3] linear colours behind the object (default black).
        bsdf: None/"pbr", "diffuse", "white", or a debug view: "kd", "ks", "normal",
            "tangent".
        material: overrides ``mesh.material`` (a Material or an MLPTexture3D).
        kd_jitter: standard normal noise [B, H*spp, W*spp, 3] for the kd smoothness buffer
            (positions jittered by KD_JITTER times it for a neural material, UVs by
            KD_UV_JITTER times its first two channels for a trained texture); None draws it
            from torch's global generator.

    Returns:
        dict with "shaded" [B, H, W, 4] (rgb over the background, coverage alpha),
        "kd_grad" [B, H, W, 1] (kd smoothness regulariser buffer of a neural material),
        "occlusion" [B, H, W, 1].
    """
    material = material if material is not None else mesh.material
    if mesh.v_nrm is None:
        from ..structures.mesh import auto_normals

        mesh = auto_normals(mesh)
    h, w = int(resolution[0]), int(resolution[1])
    fh, fw = h * spp, w * spp
    b = mtx_in.shape[0]
    pos_clip = xfm_points(mesh.v_pos, mtx_in).contiguous()
    tri = mesh.t_pos_idx.int().contiguous()
    if background is None:
        background = torch.zeros(b, h, w, 3, device=mesh.v_pos.device)
    bg = background
    if spp > 1:
        bg = F.interpolate(bg.permute(0, 3, 1, 2), size=(fh, fw), mode="nearest").permute(
            0, 2, 3, 1
        )
    layers = []
    with (
        record_function("nvdrec:rasterize"),
        ops.DepthPeeler(pos_clip, tri, (fh, fw), backend=ctx.backend) as peeler,
    ):
        for _ in range(num_layers):
            rast, rast_db = peeler.rasterize_next_layer()
            layers.append((rast, rast_db))
    topo = ctx.topology(mesh.t_pos_idx, tri)
    accum = bg
    alpha_acc = torch.zeros_like(bg[..., :1])
    extra = {"kd_grad": torch.zeros_like(alpha_acc), "occlusion": torch.zeros_like(alpha_acc)}
    antialias = not (msaa and spp > 1)
    for rast, rast_db in reversed(layers):
        color, alpha, kd_grad, occ = _shade_layer(
            ctx, mesh, material, rast, rast_db, view_pos, lgt, bsdf, min_roughness, kd_jitter
        )
        cover = (rast[..., 3:4] > 0).float() * alpha
        accum = torch.lerp(accum, color, cover)
        alpha_acc = torch.lerp(alpha_acc, torch.ones_like(alpha_acc), cover)
        if antialias:
            merged = ops.antialias(
                torch.cat([accum, alpha_acc], -1).contiguous(),
                rast,
                pos_clip,
                tri,
                topology_hash=topo,
                backend=ctx.backend,
            )
            accum, alpha_acc = merged[..., :3], merged[..., 3:4]
        extra["kd_grad"] = torch.lerp(extra["kd_grad"], kd_grad, cover)
        extra["occlusion"] = torch.lerp(extra["occlusion"], occ, cover)
    out = {"shaded": torch.cat([accum, alpha_acc], -1), **extra}
    if spp > 1:
        out = {
            k: F.avg_pool2d(v.permute(0, 3, 1, 2), spp).permute(0, 2, 3, 1).contiguous()
            for k, v in out.items()
        }
    return out
