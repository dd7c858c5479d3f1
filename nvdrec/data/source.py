"""The data a config names: :func:`open_dataset` picks the source of ``ref_mesh``."""

from __future__ import annotations

from pathlib import Path

import torch

from ..errors import ConfigError, DataError, MissingFileError
from ..geometry.unwrap import unwrap_uv
from ..io.obj import load_mesh
from ..render import EnvironmentLight
from ..render.bake import bake_textures
from ..structures.mesh import Mesh
from .base import Dataset
from .synthetic import SyntheticDataset

__all__ = ["check_input_mesh", "open_dataset", "MAX_COORDINATE"]


MAX_COORDINATE = 1e6  # beyond it a mesh's projections overflow float32 arithmetic


def check_input_mesh(mesh: Mesh, key: str, path) -> None:
    """Refuse an input mesh nothing can be rendered from: no triangles, every triangle
    degenerate, coordinates far outside any sensible scene."""
    v = mesh.v_pos.double()
    if mesh.t_pos_idx.shape[0] == 0:
        raise DataError(f"config key '{key}': '{path}' has no triangles")
    peak = float(v.abs().max())
    if peak > MAX_COORDINATE:
        raise DataError(
            f"config key '{key}': '{path}' has coordinates up to {peak:.3g}; the object "
            f"must lie within {MAX_COORDINATE:.0e} of the origin (rescale the mesh)"
        )
    t = mesh.t_pos_idx.long()
    area = torch.linalg.cross(v[t[:, 1]] - v[t[:, 0]], v[t[:, 2]] - v[t[:, 0]], dim=-1).norm(dim=-1)
    extent = float((v.max(0).values - v.min(0).values).max())
    if not extent > 0 or float(area.sum()) <= 1e-12 * extent**2:
        raise DataError(
            f"config key '{key}': '{path}' has zero area (every triangle is degenerate)"
        )


def open_dataset(cfg, device) -> tuple[Dataset, Dataset]:
    """(training dataset, validation dataset) for ``cfg.ref_mesh`` (``cfg``: a
    :class:`nvdrec.train.config.Config`): the built-in demo
    scene (none), a reference mesh rendered under ``envmap`` (a mesh file), or the images
    of a NeRF-synthetic, LLFF or COLMAP folder (NeRF: its test split validates; the
    others validate every view)."""

    if cfg.ref_mesh is None:
        from .demo import demo_light, demo_material, demo_mesh

        mesh = unwrap_uv(demo_mesh(cfg.demo_grid))
        mat, _ = bake_textures(mesh, demo_material, (512, 512), backend="torch")
        mat.name = "demo"
        mesh.material = mat
        light = demo_light(64)
    else:
        path = Path(cfg.ref_mesh)
        if not path.exists():
            raise MissingFileError(f"config key 'ref_mesh': '{path}' does not exist")
        if path.is_dir():
            from .cache import image_cache_from_setting
            from .llff import LLFFDataset, is_llff_folder
            from .nerf import NeRFDataset, is_nerf_folder

            kw = {
                "resolution": cfg.train_res,
                "near_far": tuple(cfg.cam_near_far),
                "device": device,
                "cache": image_cache_from_setting(cfg.image_cache),
            }
            if is_llff_folder(path):
                ds = LLFFDataset(path, **kw)
                return ds, ds
            from .colmap import ColmapDataset, is_colmap_folder

            if is_colmap_folder(path) and not is_nerf_folder(path):
                ds = ColmapDataset(path, **kw)
                return ds, ds
            if not is_nerf_folder(path):
                raise ConfigError(
                    f"config key 'ref_mesh': folder '{path}' has no transforms_train.json "
                    "(NeRF-synthetic), poses_bounds.npy (LLFF) or sparse/0 (COLMAP)"
                )
            return NeRFDataset(path, "train", **kw), NeRFDataset(path, "test", **kw)
        mesh = load_mesh(path, mtl_override=cfg.mtl_override)
        check_input_mesh(mesh, "ref_mesh", path)
        if cfg.envmap is None:
            raise ConfigError(
                "config key 'envmap': a reference mesh needs an HDR environment map "
                "(lat-long .hdr) to render it"
            )
        if not Path(cfg.envmap).exists():
            raise MissingFileError(f"config key 'envmap': '{cfg.envmap}' does not exist")
        light = EnvironmentLight.load(
            cfg.envmap, scale=cfg.env_scale, res=min(cfg.light_res, 512), trainable=False
        )
    ds = SyntheticDataset(
        mesh,
        light,
        cfg.train_res,
        spp=cfg.spp,
        layers=cfg.layers,
        near_far=tuple(cfg.cam_near_far),
        device=device,
        backend=cfg.backend,
    )
    return ds, ds
