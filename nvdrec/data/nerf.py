"""NeRF-synthetic datasets: ``transforms_{train,test,val}.json`` + RGBA images.

Frames give camera-to-world matrices in Blender's world (Z up) with OpenGL camera axes
(x right, y up, looking down -z); they are rotated into our Y-up world. Intrinsics come
from ``camera_angle_x`` or from ``fl_x``/``fl_y``/``cx``/``cy`` (per frame or at the top
level, as written by common NeRF tools). Images are sRGB (8/16-bit) or linear (float
formats) with straight alpha; they are resized to ``train_res`` with an area filter when
their size differs (intrinsics follow) and stored premultiplied over black, like the
synthetic dataset's renders.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import DataError, MissingFileError
from ..io.image import exif_orientation, image_size, read_image, srgb_to_linear
from ..structures import camera as cam
from .base import Dataset
from .memory import TRIM_EVERY, _release_freed_memory, available_memory, check_dataset_memory

__all__ = [
    "check_camera",
    "NeRFDataset",
    "is_nerf_folder",
    "check_dataset_memory",
    "available_memory",
]

_EXTS = ("", ".png", ".PNG", ".jpg", ".jpeg", ".exr", ".hdr")


def is_nerf_folder(path: Path) -> bool:
    return (Path(path) / "transforms_train.json").is_file()


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MissingFileError(f"'{path}' does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataError(f"'{path}' is not a readable JSON file: {e}") from None
    if not isinstance(data, dict) or not isinstance(data.get("frames"), list) or not data["frames"]:
        raise DataError(f"'{path}' has no frames (expected a non-empty 'frames' list)")
    return data


def _image_path(folder: Path, file_path: str, where: str) -> Path:
    base = folder / file_path
    for ext in _EXTS:
        p = base.with_name(base.name + ext) if ext else base
        if p.is_file():
            return p
    tried = ", ".join(e or "as is" for e in _EXTS)
    raise MissingFileError(f"{where}: image '{file_path}' not found next to it (tried {tried})")


class NeRFDataset(Dataset):
    """Cameras and images of one split of a NeRF-synthetic folder.

    Args:
        folder: the folder with ``transforms_train.json``.
        split: "train", or "test" (falls back to "val", then "train") for validation.
        resolution: (H, W) to resize to, or None to keep the files' size.
        max_side: with ``resolution`` None, reduce the images as they load to fit within
            this many pixels (the first image's aspect; intrinsics follow).
        cache: an ``ImageCache`` (nvdrec.data.cache) keeping images that had to be reduced
            at their working size, so the next load of the same files is fast; None: off.
    """

    photos = True

    def __init__(
        self,
        folder,
        split="train",
        resolution=None,
        near_far=(0.1, 1000.0),
        device="cpu",
        max_side=None,
        cache=None,
    ) -> None:
        folder = Path(folder)
        self.root = folder.resolve()
        self.device = device
        self.max_side = max_side  # with resolution None: fit the images within this size
        self.cache = cache
        self.size_mismatches = 0
        self._count = 1  # images to load: each reader sets it before its first image
        self.outside: list[str] = []  # files read from outside the dataset folder
        mv, projs = self._read(folder, split, resolution, near_far)
        self.images = self._stored_images().to(device)
        self.mv = mv.float().to(device)
        self.proj = torch.stack(projs).to(device)
        self.resolution = tuple(self.images.shape[1:3])

    def _read(self, folder: Path, split: str, resolution, near_far) -> tuple:
        """Read the folder's cameras and store its images (``self._store``): returns
        (world-to-camera matrices [N, 4, 4], projection matrices, one [4, 4] per view).
        Each folder kind (NeRF, LLFF, COLMAP) has its own."""
        names = [split] if split == "train" else [split, "val", "train"]
        tf = next(
            (
                folder / f"transforms_{n}.json"
                for n in names
                if (folder / f"transforms_{n}.json").is_file()
            ),
            None,
        )
        if tf is None:
            raise MissingFileError(f"'{folder}' has no transforms_{split}.json")
        data = _read_json(tf)
        self._count = len(data["frames"])
        mvs, projs = [], []
        to_y_up = cam.blender_to_opengl_world().double()
        for i, fr in enumerate(data["frames"]):
            where = f"{tf} frame {i}"
            if not isinstance(fr, dict) or not isinstance(fr.get("file_path"), str):
                raise DataError(f"{where}: needs 'file_path' (a string) and 'transform_matrix'")
            c2w_raw = _matrix(fr.get("transform_matrix"), where)
            t, resolution, (h0, w0) = self._load_view(
                _image_path(tf.parent, fr["file_path"], where),
                resolution,
                no_alpha=f"{where}: image has no alpha channel; NeRF-synthetic images must be "
                "RGBA (the alpha channel is the object mask)",
            )
            h, w = resolution
            self._store(t)
            sx, sy = w / w0, h / h0

            def num(key, default=None):
                v = fr.get(key, data.get(key, default))
                if v is not None and (
                    isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)
                ):
                    raise DataError(f"{where}: '{key}' must be a finite number, got {v!r}")
                return v

            fx = num("fl_x")
            fy = num("fl_y", fx)
            if fx is None or fy is None:
                angle = num("camera_angle_x")
                if angle is None or not 0 < angle < math.pi:
                    raise DataError(
                        f"{where}: no valid intrinsics ('camera_angle_x' in (0, pi) or 'fl_x')"
                    )
                fx = fy = 0.5 * w0 / math.tan(0.5 * float(angle))
            if fx <= 0 or fy <= 0:
                raise DataError(f"{where}: focal lengths must be positive, got {fx!r}, {fy!r}")
            cx = num("cx", w0 / 2)
            cy = num("cy", h0 / 2)
            projs.append(
                cam.perspective_from_intrinsics(
                    float(fx) * sx, float(fy) * sy, float(cx) * sx, float(cy) * sy, w, h, *near_far
                )
            )
            c2w = to_y_up @ c2w_raw
            if abs(float(torch.linalg.det(c2w[:3, :3]))) < 1e-9:
                raise DataError(f"{where}: 'transform_matrix' is singular")
            mvs.append(torch.linalg.inv(c2w).float())
        return torch.stack(mvs), projs

    def outside_note(self, folder) -> str | None:
        """A warning when images or masks were read from outside ``folder`` (a
        ``file_path`` with ``..``, an absolute one, or a symlink), else None."""
        if not self.outside:
            return None
        return (
            f"{len(self.outside)} image/mask file(s) were read from outside the dataset "
            f"folder {folder} (through a path or a symlink), e.g. {self.outside[0]}"
        )

    def _target(self, size, resolution) -> tuple:
        """The working size for an image of ``size`` (H, W): ``resolution`` when given,
        else the size itself, fitted within ``self.max_side`` when that is set."""
        if resolution is not None:
            return tuple(resolution)
        cap = getattr(self, "max_side", None)
        if cap and max(size) > cap:  # keep the aspect
            s = cap / max(size)
            return (max(1, round(size[0] * s)), max(1, round(size[1] * s)))
        return tuple(size)

    def _load_view(self, path, resolution, mask_path=None, no_alpha=None):
        """One view as the dataset stores it: (image [h, w, 4] float32, linear RGB
        premultiplied by alpha, at the working size; the working size (H, W); the file's
        size (H, W)). Alpha comes from ``mask_path`` (its first channel) or else from the
        image's alpha channel (``no_alpha``: the DataError message when it has none).
        sRGB files are linearised, HDR/EXR taken as linear. Served from ``self.cache``
        when the view was reduced before (same files, same working size)."""
        size = image_size(path)
        self.orientations = getattr(self, "orientations", {})
        o = exif_orientation(path)
        self.orientations[o] = self.orientations.get(o, 0) + 1
        target = self._target(size, resolution)
        cache = getattr(self, "cache", None) if target != size else None
        files = [path] if mask_path is None else [path, mask_path]
        root = getattr(self, "root", None)
        for f in files if root is not None else ():
            if root not in Path(f).resolve().parents:
                self.outside.append(str(f))
        key = cache.key(files, target, "mask" if mask_path else "alpha") if cache else None
        t = cache.get(key, target) if cache else None
        hit = t is not None
        if not hit:
            img, alpha = self._read_photo(path, size, target, mask_path)
            if alpha is None and img.shape[-1] == 4:
                alpha = img[..., 3:4]
            elif alpha is None:
                raise DataError(no_alpha or f"'{path}' has no alpha channel and no mask")
            rgb = img[..., :3]
            if Path(path).suffix.lower() not in (".exr", ".hdr"):
                rgb = srgb_to_linear(rgb)
            t = torch.from_numpy(np.concatenate([rgb * alpha, alpha], -1).astype(np.float32))
        t, resolution = self._fit_size(t, resolution, size)
        if cache is not None and not hit:
            cache.put(key, t)
        self._decoded = getattr(self, "_decoded", 0) + (not hit)
        if not hit and self._decoded % TRIM_EVERY == 0:
            _release_freed_memory()
        return t, resolution, size

    def _read_photo(self, path, size, target, mask_path=None):
        """(image [h, w, C], mask [h, w, 1] or None) of a photo of ``size`` and its mask,
        decoded at 1/2, 1/4 or 1/8 of their size when that stays at least ``target``
        (8-bit JPEG/PNG, see read_image), so a 12-megapixel photo and its mask never exist
        in memory at full size as floats. Without a mask the image is read at full size:
        its alpha must filter premultiplied colour, which reducing the file cannot do."""
        h, w = target
        reduce = 1
        while (
            mask_path is not None
            and reduce < 8
            and size[0] // (2 * reduce) >= h
            and size[1] // (2 * reduce) >= w
        ):
            reduce *= 2
        img = read_image(path, reduce=reduce)
        if mask_path is None:
            return img, None
        if image_size(mask_path) != size:
            m = image_size(mask_path)
            raise DataError(
                f"mask '{mask_path}' is {m[1]}x{m[0]} but image '{path}' is {size[1]}x{size[0]}"
            )
        mask = read_image(mask_path, reduce=reduce)[..., :1]
        if mask.shape[:2] != img.shape[:2]:  # e.g. a 16-bit mask was read at full size
            t = torch.from_numpy(np.ascontiguousarray(mask)).permute(2, 0, 1)[None]
            t = F.interpolate(t, size=tuple(img.shape[:2]), mode="area")
            mask = t[0].permute(1, 2, 0).numpy()
        return img, mask

    def _store(self, t: torch.Tensor) -> None:
        """Put the next image [h, w, 4] into the dataset's buffer (allocated at the first
        image for all ``self._count``: no list of images plus a stacked copy at the end)."""
        if getattr(self, "_n_stored", 0) == 0:
            self._buf = torch.empty(self._count, *t.shape, dtype=t.dtype)
            self._n_stored = 0
        self._buf[self._n_stored] = t
        self._n_stored += 1

    def _stored_images(self) -> torch.Tensor:
        buf, n = self._buf, self._n_stored
        del self._buf
        cache = getattr(self, "cache", None)
        if cache is not None and cache.written:
            cache.trim()
        return buf[:n]

    def _fit_size(self, t: torch.Tensor, resolution, file_size=None):
        """Resize a premultiplied image [h, w, 4] to ``resolution`` (None: the first
        image's size, reduced to fit within ``self.max_side`` when that is set, which later
        images then follow); counts files whose size (``file_size``, default the image's)
        differs from the first file's."""
        size = tuple(t.shape[:2])
        file_size = tuple(file_size) if file_size is not None else size
        resolution = self._target(file_size, resolution)
        if not getattr(self, "_memory_checked", False):  # first image: the size is known
            self._memory_checked = True
            self._first_file_size = file_size
            check_dataset_memory(self._count, resolution, self.device)
        self.size_mismatches += int(file_size != self._first_file_size)
        if size != resolution:  # area filter on premultiplied colour
            t = F.interpolate(t.permute(2, 0, 1)[None], size=resolution, mode="area")[0].permute(
                1, 2, 0
            )
        return t, resolution

    def __len__(self) -> int:
        return len(self.images)

    def _batch(self, idx) -> dict:
        mv = self.mv[idx]
        return {
            "mv": mv,
            "mvp": self.proj[idx] @ mv,
            "campos": torch.linalg.inv(mv)[:, :3, 3],
            "resolution": self.resolution,
            "spp": 1,
            "img": self.images[idx],
        }

    def train_batch(self, batch: int, generator: torch.Generator) -> dict:
        idx = torch.randint(0, len(self), (batch,), generator=generator).to(self.device)
        return self._batch(idx)

    def batch_of(self, indices: list[int]) -> dict:
        """The batch of the given image indices (the trainer's sampler picks them)."""
        return self._batch(torch.tensor(indices, dtype=torch.long, device=self.device))

    def validation_batches(self, count: int | None = None, batch: int = 4):
        """Every view of this split, ``batch`` at a time: nvdiffrec's protocol for image
        datasets (all test frames of a NeRF folder, every image of an LLFF/COLMAP
        capture), also the one behind published numbers. ``count`` (the config's
        ``validate_views``, which counts orbit views of a reference mesh) is not used:
        validating a subset would make numbers incomparable across tools."""
        n = len(self)
        for i in range(0, n, batch):
            yield self._batch(torch.arange(i, min(i + batch, n), device=self.device))


def check_camera(where: str, c2w: torch.Tensor, fx, fy, cx, cy, width, height) -> None:
    """Refuse a camera that cannot be rendered: non-finite pose or intrinsics, focal
    lengths or image sizes that are not positive, a singular rotation. ``where`` names
    the file and entry in the message."""
    vals = {"fx": fx, "fy": fy, "cx": cx, "cy": cy, "width": width, "height": height}
    bad = [k for k, v in vals.items() if not math.isfinite(float(v))]
    if bad or not torch.isfinite(c2w).all():
        what = f"intrinsics {', '.join(bad)}" if bad else "pose"
        raise DataError(f"{where}: the camera's {what} is not finite (NaN or inf)")
    if not (width > 0 and height > 0):
        raise DataError(f"{where}: image size must be positive, got {width}x{height}")
    if not (fx > 0 and fy > 0):
        raise DataError(f"{where}: focal lengths must be positive, got {fx!r}, {fy!r}")
    if abs(float(torch.linalg.det(c2w[:3, :3]))) < 1e-9:
        raise DataError(f"{where}: the camera's rotation is singular")


def _matrix(value, where: str) -> torch.Tensor:
    try:
        m = torch.tensor(value, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError):
        raise DataError(f"{where}: 'transform_matrix' must be a 4x4 list of numbers") from None
    if m.numel() not in (12, 16) or not torch.isfinite(m).all():
        raise DataError(
            f"{where}: 'transform_matrix' must be a 4x4 (or 3x4) list of finite numbers"
        )
    m = m.reshape(-1, 4)
    if m.shape[0] == 3:
        m = torch.cat([m, torch.tensor([[0.0, 0.0, 0.0, 1.0]], dtype=torch.float64)])
    return m
