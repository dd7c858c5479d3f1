"""The data of a run: :func:`open_dataset` picks the source that ``ref_mesh`` names."""

from __future__ import annotations

from pathlib import Path

import torch

from ..errors import ConfigError, DataError, MissingFileError
from ..io.obj import load_mesh
from ..render import EnvironmentLight
from ..structures.mesh import Mesh
from .bake import unwrap_uv
from .config import Config

__all__ = ["check_input_mesh", "load_data", "open_dataset"]


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


def open_dataset(cfg: Config, device) -> tuple:
    """(training dataset, validation dataset) for ``cfg.ref_mesh``: the built-in demo
    scene (none), a reference mesh rendered under ``envmap`` (a mesh file), or the images
    of a NeRF-synthetic, LLFF or COLMAP folder (NeRF: its test split validates; the
    others validate every view)."""
    from ..data.synthetic import SyntheticDataset

    if cfg.ref_mesh is None:
        from ..data.demo import demo_light, demo_material, demo_mesh
        from .bake import bake_textures as bake

        mesh = unwrap_uv(demo_mesh(cfg.demo_grid))
        mat, _ = bake(mesh, demo_material, (512, 512), backend="torch")
        mat.name = "demo"
        mesh.material = mat
        light = demo_light(64)
    else:
        path = Path(cfg.ref_mesh)
        if not path.exists():
            raise MissingFileError(f"config key 'ref_mesh': '{path}' does not exist")
        if path.is_dir():
            from ..data.cache import image_cache_from_setting
            from ..data.llff import LLFFDataset, is_llff_folder
            from ..data.nerf import NeRFDataset, is_nerf_folder

            kw = {
                "resolution": cfg.train_res,
                "near_far": tuple(cfg.cam_near_far),
                "device": device,
                "cache": image_cache_from_setting(cfg.image_cache),
            }
            if is_llff_folder(path):
                ds = LLFFDataset(path, **kw)
                return ds, ds
            from ..data.colmap import ColmapDataset, is_colmap_folder

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


def load_data(tr) -> None:
    """The trainer's data: ``tr.dataset`` and ``tr.val_dataset`` opened (with a line for
    image folders, which take a while, and the image cache's work), checked, and framed
    when ``mesh_scale`` is "auto" (``tr.shift``, ``tr.cfg.mesh_scale``)."""
    ref = Path(str(tr.cfg.ref_mesh)) if tr.cfg.ref_mesh else None
    if ref is not None and ref.is_dir():  # photos can take a while: say so first
        h, w = tr.cfg.train_res
        tr._note(f"loading the images of {ref} at {w}x{h} ...")
        with tr._stage("images loaded"):
            tr.dataset, tr.val_dataset = open_dataset(tr.cfg, tr.device)
        cache = getattr(tr.dataset, "cache", None)
        if cache is not None and (cache.hits or cache.written or cache.failed):
            tr._note(
                cache.failed
                or f"image cache {cache.root}: {cache.hits} reduced images read, "
                f"{cache.written} written"
            )
    else:
        tr.dataset, tr.val_dataset = open_dataset(tr.cfg, tr.device)
    _check_images(tr, ref)
    if hasattr(tr.dataset, "at_resolution"):  # rendered references: at display_res
        tr.val_dataset = tr.dataset.at_resolution(tr.cfg.display_res)
    tr.shift = torch.zeros(3)
    if tr.cfg.mesh_scale == "auto":
        _auto_frame(tr)


def _check_images(tr, ref: Path | None) -> None:
    """Refuse training images without any object pixel; say when files came from
    outside the dataset folder."""
    for ds in {id(d): d for d in (tr.dataset, tr.val_dataset)}.values():
        note = ds.outside_note(ref) if hasattr(ds, "outside_note") else None
        if note:
            tr._warn(note)
    imgs = getattr(tr.dataset, "images", None)
    if imgs is not None and not bool((imgs[..., 3] > 0).any()):
        raise DataError(
            f"every training image of {ref} is fully transparent (alpha or mask 0 "
            "everywhere): there is no object to reconstruct. Check the masks/alpha "
            "channel (nvdrec check DATASET)"
        )


def _auto_frame(tr) -> None:
    from ..data.framing import auto_frame
    from ..structures import camera as cam

    if not hasattr(tr.dataset, "proj"):
        raise ConfigError(
            "config key 'mesh_scale': 'auto' needs an image dataset folder as ref_mesh"
        )
    scale, tr.shift = auto_frame(tr.dataset)
    if tr.val_dataset is not tr.dataset:
        tr.val_dataset.mv = tr.val_dataset.mv @ cam.translate(*tr.shift.tolist()).to(tr.device)
    tr.cfg = tr.cfg.replace(mesh_scale=scale, out_dir=tr.cfg.out_dir)
    centre = [round(x, 4) for x in tr.shift.tolist()]
    if tr.dist.is_main:
        print(f"nvdrec: automatic framing: centre {centre}, mesh_scale {scale:.4f}", flush=True)
