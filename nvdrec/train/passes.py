"""The two passes of a run, for a :class:`~nvdrec.train.trainer.Trainer`.

- :func:`pass1`: DMTet (or FlexiCubes) + neural material + light trained from scratch;
  then, on rank 0, the surface is extracted (enclosed cavities filled), validated,
  cleaned, decimated, unwrapped and baked into textures, exported to ``dmtet_mesh/`` and
  handed to every rank.
- :func:`pass2`: that mesh's vertices (Large Steps' parametrisation) with its textures
  and the light; the Laplacian regulariser keeps the surface smooth.
"""

from __future__ import annotations

import dataclasses
import os
import time

import torch

from ..data.source import check_input_mesh
from ..errors import ConfigError, MissingFileError
from ..geometry import (
    DMTetGeometry,
    FlexiCubesGeometry,
    MeshGeometry,
    clean_mesh,
    decimate,
    seen_faces,
    unwrap_uv,
)
from ..io.obj import load_mesh
from ..ops.hashgrid import HashGridConfig
from ..render import EnvironmentLight, MLPTexture3D, bake_textures
from ..structures.material import Material, Texture2D
from ..structures.mesh import Mesh, auto_normals, compute_tangents
from . import distributed
from .helpers import LIGHT_GRAD_SCALE, random_material
from .loop import PassSpec

__all__ = [
    "check_coverage",
    "from_base_mesh",
    "make_light",
    "make_material",
    "mesh_from_state",
    "pass1",
    "pass2",
    "training_mvps",
]

VISIBILITY_VIEWS = 64  # random training views for a reference mesh's visibility


def pass1(tr):
    cfg = tr.cfg
    iso = FlexiCubesGeometry if cfg.isosurface == "flexicubes" else DMTetGeometry
    geo = iso(cfg.dmtet_grid, float(cfg.mesh_scale), seed=cfg.seed).to(tr.device)
    mat = make_material(tr)
    lgt = make_light(tr)
    light_params = [lgt.base] if (cfg.learn_light and not cfg.lock_light) else []
    if not light_params:
        lgt.base.requires_grad_(False)
    named = {f"geo.{k}": v for k, v in geo.named_parameters()}
    named.update({f"mat.{k}": v for k, v in mat.named_parameters()})
    named["light.base"] = lgt.base
    tr._run(
        PassSpec(
            0,
            "dmtet_pass1",
            geo,
            mat,
            lgt,
            list(geo.parameters()),
            list(mat.parameters()) + light_params,
            cfg.sdf_regularizer,
            named,
        ),
    )
    check_coverage(tr, "dmtet_pass1")
    payload = None
    if tr.dist.is_main:  # extract, unwrap and bake once; the other ranks receive it
        with torch.no_grad(), tr._stage("surface extraction", say=False):
            mesh = geo.final_mesh(fill=cfg.fill_cavities).detach()  # cavities filled
        if tr.keep_pass1_state:  # for tools that compare extractions (bench/)
            tr.pass1_state = (geo, mat, lgt)
        filled = geo.filled_vertices
        if cfg.validate:  # the pass-1 result itself: isosurface + neural material
            with tr._stage("validation after pass 1"):
                tr.metrics_pass1 = tr.report.validate(mesh, lgt, mat, "dmtet_validate")
        keep = None
        if cfg.cleanup_unseen:
            with tr._stage("visibility from the training views"):
                keep = seen_faces(mesh, training_mvps(tr), cfg.train_res, backend=cfg.backend)
        confirm = None
        if tr.dataset.photos:
            from ..data.framing import in_visual_hull

            # small parts inside every mask are real (a strap, a knob), not floaters
            def confirm(p):
                return in_visual_hull(tr.dataset, p)

        with tr._stage("mesh clean-up", say=False):
            mesh, report = clean_mesh(
                mesh, min_component=cfg.cleanup_min_component, keep_faces=keep, confirm=confirm
            )
        tr.cleanup = dataclasses.asdict(report)
        tr.cleanup["filled_cavity_vertices"] = filled
        if filled:
            tr._note(f"enclosed empty space filled: {filled} grid vertices")
        tr._note(f"mesh clean-up: {report.summary()}")
        if 0 < cfg.decimate_triangles < mesh.num_triangles:
            n_in = mesh.num_triangles
            t0 = time.time()
            mesh, _ = decimate(mesh, cfg.decimate_triangles)
            tr.cleanup["decimated_faces"] = mesh.num_triangles
            tr._note(
                f"decimate: {n_in} -> {mesh.num_triangles} triangles in {time.time() - t0:.1f} s"
            )
        with tr._stage("unwrap", say=False):  # unwrap_uv says how it went
            mesh = unwrap_uv(mesh, cfg.texture_res[0], cfg.unwrap_timeout, tr._note)

        def sample(p):
            return MLPTexture3D.split(mat.sample(p))

        with tr._stage(f"bake {cfg.texture_res[0]}x{cfg.texture_res[1]} textures"):
            baked, _ = bake_textures(mesh, sample, cfg.texture_res, backend=cfg.backend)
        bounds = (
            (cfg.kd_min[:3], cfg.kd_max[:3]),
            (cfg.ks_min, cfg.ks_max),
            (cfg.nrm_min, cfg.nrm_max),
        )
        kd, ks, nrm = (
            Texture2D(t.image().detach(), b).to(tr.device)
            for t, b in zip((baked.kd, baked.ks, baked.normal), bounds)
        )
        mesh.material = Material("pbr_material", kd=kd, ks=ks, normal=nrm)
        try:
            tr.report.export(mesh, lgt, tr.out / "dmtet_mesh", glb=False)
        except OSError as e:  # pass 1 lives on in memory: pass 2 starts from it
            tr._warn(
                f"the pass-1 mesh was not written to {tr.out / 'dmtet_mesh'} "
                f"({e.strerror or e}); pass 2 goes on from it"
            )
        payload = {
            "extra": {
                "v_init": mesh.v_pos.cpu(),
                "t_pos_idx": mesh.t_pos_idx.cpu(),
                "v_tex": mesh.v_tex.cpu(),
                "t_tex_idx": mesh.t_tex_idx.cpu(),
            },
            "params": {
                f"tex.{k}": t.data.detach().cpu()
                for k, t in zip(("kd", "ks", "normal"), (kd, ks, nrm))
            },
        }
    if tr.dist.enabled:
        payload = distributed.broadcast_object(payload, tr.device)
    # every rank (also a single process) starts pass 2 from the same reconstruction,
    # which is also what a resumed pass 2 starts from
    return mesh_from_state(tr, payload["extra"], payload["params"]), lgt


def check_coverage(tr, name: str) -> None:
    """Warn when the surface covers almost none of the object's pixels (the object
    does not fit the grid box, or the masks are wrong): the run goes on, but its
    result will not be the object."""
    opt, ref = tr.coverage.get(name, (0.0, 0.0))
    if ref > 0 and opt < 0.05 * ref:
        tr._warn(
            f"{name}: the surface covers {100 * opt / ref:.1f}% of the object's pixels "
            f"in the training views (over the pass's last iterations). The object does "
            f"not fit the grid box (mesh_scale {tr.cfg.mesh_scale}) or the masks are "
            'wrong: try mesh_scale "auto" or a larger mesh_scale, and check the masks '
            "(nvdrec check DATASET)"
        )


def pass2(tr, mesh: Mesh, lgt: EnvironmentLight) -> Mesh:
    cfg = tr.cfg
    # the positions are x = (I + lambda L)^-1 u, u trained (Large Steps; lambda 0: x = u)
    geo = MeshGeometry(
        mesh, cfg.pos_smoothing, cfg.laplace, locked=cfg.lock_pos, solver=cfg.pos_solver
    )
    pos = geo.pos
    mat = mesh.material
    if cfg.custom_mip:  # trainable mip levels (a resumed run restores them by name)
        for t in (mat.kd, mat.ks, mat.normal):
            if t is not None and t.mips is None and not t.is_constant:
                t.enable_custom_mips()

    learn_light = cfg.learn_light and not cfg.lock_light
    lgt.base.requires_grad_(learn_light)
    params_pos = [pos.u] if not cfg.lock_pos else []
    params_mat = list(mat.parameters()) + ([lgt.base] if learn_light else [])
    named = {"v_u": pos.u, "v_u.x_prev": pos.x_prev}
    named["light.base"] = lgt.base
    for k, t in (("kd", mat.kd), ("ks", mat.ks), ("normal", mat.normal)):
        if t is not None:
            named[f"tex.{k}"] = t.data
            for i, lv in enumerate(t.mip_levels() or [], start=1):
                named[f"tex.{k}.mip{i}"] = lv
    extra = {
        "v_init": geo.v_init,
        "t_pos_idx": mesh.t_pos_idx,
        "v_tex": mesh.v_tex,
        "t_tex_idx": mesh.t_tex_idx,
    }
    tr._run(  # Large Steps trains u with its uniform Adam
        PassSpec(
            1,
            "mesh_pass",
            geo,
            mat,
            lgt,
            params_pos,
            params_mat,
            cfg.laplace_scale,
            named,
            extra,
            uniform_pos=cfg.pos_smoothing > 0,
        ),
    )
    return geo.final_mesh()


def make_light(tr) -> EnvironmentLight:
    cfg = tr.cfg
    if cfg.learn_light:
        # nvdiffrec's start: a constant grey light; its gradient is scaled before Adam
        # (see LIGHT_GRAD_SCALE)
        base = torch.full((6, cfg.light_res, cfg.light_res, 3), 0.5)
        lgt = EnvironmentLight(base, backend=cfg.backend).to(tr.device)
        lgt.base.register_hook(lambda g: g * LIGHT_GRAD_SCALE)
        return lgt
    if tr.dataset.reference_light is not None:
        base = tr.dataset.reference_light.base.detach().clone()
    elif cfg.envmap:
        base = EnvironmentLight.load(
            cfg.envmap, scale=cfg.env_scale, res=cfg.light_res
        ).base.detach()
    else:
        raise ConfigError("config key 'learn_light': false needs 'envmap' (the known lighting)")
    return EnvironmentLight(base, trainable=False, backend=cfg.backend).to(tr.device)


def make_material(tr) -> MLPTexture3D:
    cfg = tr.cfg
    s = float(cfg.mesh_scale) / 2
    lo = cfg.kd_min[:3] + cfg.ks_min + cfg.nrm_min
    hi = cfg.kd_max[:3] + cfg.ks_max + cfg.nrm_max
    return MLPTexture3D(
        ([-s] * 3, [s] * 3),
        channels=9,
        min_max=(lo, hi),
        config=HashGridConfig(log2_table_size=cfg.hash_log2_size),
        seed=cfg.seed,
        backend="auto",  # the hash grid picks its kernels itself (cfg.backend: raster ops)
    ).to(tr.device)


def training_mvps(tr) -> torch.Tensor:
    """The cameras [N, 4, 4] (mvp) the object was trained from: every image of a file
    dataset; for a reference mesh VISIBILITY_VIEWS draws of its random views."""
    return tr.dataset.seen_from(VISIBILITY_VIEWS, torch.Generator().manual_seed(tr.cfg.seed))


def mesh_from_state(tr, ex: dict, params: dict) -> Mesh:
    """The pass-2 starting mesh from its tensors (bake broadcast or checkpoint)."""
    cfg = tr.cfg
    dev = tr.device
    mesh = Mesh(
        v_pos=ex["v_init"].to(dev),
        t_pos_idx=ex["t_pos_idx"].to(dev),
        v_tex=ex["v_tex"].to(dev),
        t_tex_idx=ex["t_tex_idx"].to(dev),
    )
    mesh = compute_tangents(auto_normals(mesh))
    bounds = {
        "kd": (cfg.kd_min[:3], cfg.kd_max[:3]),
        "ks": (cfg.ks_min, cfg.ks_max),
        "normal": (cfg.nrm_min, cfg.nrm_max),
    }
    tex = {
        k: Texture2D(params[f"tex.{k}"][0], bounds[k]).to(dev)
        for k in bounds
        if f"tex.{k}" in params
    }
    mesh.material = Material(
        "pbr_material", kd=tex.get("kd"), ks=tex.get("ks"), normal=tex.get("normal")
    )
    return mesh


def from_base_mesh(tr) -> tuple:
    """(mesh, light) to start pass 2 from ``base_mesh`` instead of pass 1: the mesh
    (unwrapped when it has no UVs), its material (random textures when asked for or when
    it has none) and a new light."""
    cfg = tr.cfg
    if not os.path.exists(cfg.base_mesh):
        raise MissingFileError(f"config key 'base_mesh': '{cfg.base_mesh}' does not exist")
    mesh = load_mesh(cfg.base_mesh)
    check_input_mesh(mesh, "base_mesh", cfg.base_mesh)
    if mesh.v_tex is None:
        mesh = unwrap_uv(mesh, cfg.texture_res[0], cfg.unwrap_timeout, tr._note)
    mesh = compute_tangents(auto_normals(mesh) if mesh.v_nrm is None else mesh).to(tr.device)
    mesh.material = (
        random_material(cfg, tr.device, tr.gen)
        if cfg.random_textures or mesh.material is None
        else mesh.material
    )
    return mesh, make_light(tr)
