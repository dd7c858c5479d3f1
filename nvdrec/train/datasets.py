"""The data of a run: opened (:func:`nvdrec.data.open_dataset`), checked and framed."""

from __future__ import annotations

from pathlib import Path

import torch

from ..data.source import open_dataset
from ..errors import ConfigError, DataError

__all__ = ["load_data"]


def load_data(tr) -> None:
    """The trainer's data: ``tr.dataset`` and ``tr.val_dataset`` opened (with a line for
    image folders, which take a while, and the image cache's work), checked, and framed
    when ``mesh_scale`` is "auto" (``tr.shift``, ``tr.cfg.mesh_scale``)."""
    ref = Path(str(tr.cfg.ref_mesh)) if tr.cfg.ref_mesh else None
    folder = ref is not None and ref.is_dir()
    if folder:  # photos can take a while: say so first
        h, w = tr.cfg.train_res
        tr._note(f"loading the images of {ref} at {w}x{h} ...")
    with tr._stage("images loaded" if folder else "data loaded", say=folder):
        tr.dataset, tr.val_dataset = open_dataset(tr.cfg, tr.device)
    cache = tr.dataset.cache
    if folder and cache is not None and (cache.hits or cache.written or cache.failed):
        tr._note(
            cache.failed
            or f"image cache {cache.root}: {cache.hits} reduced images read, "
            f"{cache.written} written"
        )
    _check_images(tr, ref)
    tr.val_dataset = tr.val_dataset.for_validation(tr.cfg.display_res)
    tr.shift = torch.zeros(3)
    if tr.cfg.mesh_scale == "auto":
        _auto_frame(tr)


def _check_images(tr, ref: Path | None) -> None:
    """Refuse training images without any object pixel; say when files came from
    outside the dataset folder."""
    for ds in {id(d): d for d in (tr.dataset, tr.val_dataset)}.values():
        note = ds.outside_note(ref)
        if note:
            tr._warn(note)
    if tr.dataset.photos and not bool((tr.dataset.images[..., 3] > 0).any()):
        raise DataError(
            f"every training image of {ref} is fully transparent (alpha or mask 0 "
            "everywhere): there is no object to reconstruct. Check the masks/alpha "
            "channel (nvdrec check DATASET)"
        )


def _auto_frame(tr) -> None:
    from ..data.framing import auto_frame
    from ..structures import camera as cam

    if not tr.dataset.photos:
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
