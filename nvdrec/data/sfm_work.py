"""The working folder of ``nvdrec poses``: photos reduced as they load, COLMAP's
feature masks, reduced copies for the first placement, and masks carried from the
undistorted images back onto the photos."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import MissingFileError

__all__ = ["feature_masks", "is_registered", "masks_to_photos", "reduce_photos", "small_copies"]


def reduce_photos(photos: list[Path], dest: Path, max_side: int, masks: Path | None) -> tuple:
    """Write each photo (and its mask) at most ``max_side`` pixels on its long side into
    ``dest/images`` (``dest/masks``), EXIF orientation applied. Returns (names, mask
    names or None)."""
    from ..io.image import read_image, write_image

    (dest / "images").mkdir(parents=True)
    if masks is not None:
        (dest / "masks").mkdir()
    names, mask_names = [], []
    by_stem = {}  # masks named like the photo, any extension or case (IMG_1.JPG: img_1.png)
    for q in sorted(masks.iterdir()) if masks is not None else ():
        by_stem.setdefault(q.name.lower(), q)
        by_stem.setdefault(q.stem.lower(), q)
    for p in photos:
        img = read_image(p)[..., :3]  # float [H, W, 3] in [0, 1], oriented
        img = _fit(img, max_side)
        name = p.stem + ".png"  # lossless: SIFT sees the photo, not compression noise
        write_image(dest / "images" / name, img)
        names.append(name)
        if masks is not None:
            m = by_stem.get(p.name.lower()) or by_stem.get(p.stem.lower())
            if m is None:
                raise MissingFileError(f"no mask for '{p.name}' in '{masks}'")
            mk = read_image(m)
            mk = _fit(mk[..., :1] if mk.ndim == 3 else mk[..., None], max_side, img.shape[:2])
            write_image(dest / "masks" / (Path(name).stem + ".png"), mk)
            mask_names.append(Path(name).stem + ".png")
    return names, (mask_names if masks is not None else None)


def feature_masks(work: Path, names: list, mask_names: list) -> Path:
    """COLMAP's feature masks (``NAME.png`` per image ``NAME``, 0 = no features): the
    object masks grown by 2% of the image size, so the silhouette's edge keeps its
    features."""
    import imageio.v3 as iio
    import torch

    from ..io.image import read_image

    folder = work / "feature_masks"
    folder.mkdir()
    for n, m in zip(names, mask_names):
        a = torch.from_numpy(np.ascontiguousarray(read_image(work / "masks" / m)[..., 0]))
        r = max(1, round(0.02 * max(a.shape)))
        grown = torch.nn.functional.max_pool2d((a > 0.5).float()[None, None], 2 * r + 1, 1, r)
        img = (grown[0, 0].numpy() * 255).astype(np.uint8)
        iio.imwrite(folder / f"{n}.png", img)
    return folder


def _fit(img: np.ndarray, max_side: int, shape: tuple | None = None) -> np.ndarray:
    import torch

    h, w = img.shape[:2]
    if shape is None:
        s = min(1.0, max_side / max(h, w))
        shape = (max(1, round(h * s)), max(1, round(w * s)))
    if tuple(shape) == (h, w):
        return img
    t = torch.from_numpy(np.ascontiguousarray(img, dtype=np.float32)).permute(2, 0, 1)[None]
    t = torch.nn.functional.interpolate(t, size=tuple(shape), mode="area")
    return t[0].permute(1, 2, 0).numpy()


def small_copies(work: Path, names, side: int) -> Path:
    """The photos of ``work/images`` at most ``side`` pixels on the long side (the same
    files when they are that small already)."""
    import imageio.v3 as iio

    from ..io.image import read_image, write_image

    first = iio.improps(work / "images" / names[0]).shape[:2]
    if max(first) <= side:
        return work / "images"
    folder = work / "small"
    folder.mkdir()
    for n in names:
        write_image(folder / n, _fit(read_image(work / "images" / n), side))
    return folder


def masks_to_photos(rec, undistorted: Path, masks: Path, work: Path, names) -> list:
    """Masks made on the undistorted images (``masks/NAME``) carried back onto the
    photos of the first placement through the distortion of ``rec``'s camera, then
    scaled to the photos in ``work/images`` and written as ``work/masks/NAME``. A photo
    the model did not place gets an all-object mask."""
    import cv2
    import imageio.v3 as iio

    from ..io.image import read_image
    from .automask import mask_name
    from .colmap_model import pinhole_intrinsics, read_cameras, read_images, sparse_folder

    sparse = sparse_folder(undistorted)
    pin = read_cameras(sparse)
    by_name = {e[0]: pin[e[3]] for e in read_images(sparse)}
    (work / "masks").mkdir(exist_ok=True)
    for img in rec.images.values():
        if not is_registered(img) or img.name not in by_name:
            continue
        cam = rec.cameras[img.camera_id]
        model, w, h, params = by_name[img.name]
        fx, fy, cx, cy = pinhole_intrinsics(model, params, img.camera_id)
        ys, xs = np.mgrid[: cam.height, : cam.width].astype(np.float64) + 0.5
        xy = cam.cam_from_img(np.stack([xs.ravel(), ys.ravel()], 1))
        map_x = (fx * xy[:, 0] + cx - 0.5).reshape(cam.height, cam.width).astype(np.float32)
        map_y = (fy * xy[:, 1] + cy - 0.5).reshape(cam.height, cam.width).astype(np.float32)
        m = (read_image(masks / mask_name(img.name))[..., 0] > 0.5).astype(np.uint8) * 255
        back = cv2.remap(m, map_x, map_y, cv2.INTER_NEAREST, borderValue=0)
        size = iio.improps(work / "images" / img.name).shape[:2]
        back = cv2.resize(back, (size[1], size[0]), interpolation=cv2.INTER_NEAREST)
        iio.imwrite(work / "masks" / img.name, back)
    for n in names:  # not placed: features everywhere
        if not (work / "masks" / n).is_file():
            size = iio.improps(work / "images" / n).shape[:2]
            iio.imwrite(work / "masks" / n, np.full(size, 255, np.uint8))
    return list(names)


def is_registered(img) -> bool:
    reg = getattr(img, "has_pose", None)
    if reg is None:
        reg = getattr(img, "registered", True)
    return bool(reg() if callable(reg) else reg)
