"""Image files: PNG/JPEG (8 and 16 bit), Radiance HDR, OpenEXR (optional).

``read_image`` returns float32 [H, W, C] numpy arrays: LDR formats scaled to [0, 1]
with *no* colour conversion (use :func:`srgb_to_linear` for colour images), HDR and
EXR as stored (linear radiance). ``write_image`` takes the same layout (numpy or
torch, optionally with a leading batch dimension of 1) and writes atomically.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

from ..errors import ImageFormatError, MissingFileError
from .files import atomic_write_bytes
from .hdr import decode_hdr, encode_hdr
from .png import decode_png16, encode_png, png_info

__all__ = [
    "exif_orientation",
    "image_size",
    "linear_to_srgb",
    "read_image",
    "srgb_to_linear",
    "write_image",
]

_LDR = (".png", ".jpg", ".jpeg")


def srgb_to_linear(x):
    """sRGB transfer function inverse (IEC 61966-2-1), numpy or torch, values in [0, 1]."""
    lib = _lib(x)
    x = lib.clip(x, 0.0, 1.0) if lib is np else x.clamp(0.0, 1.0)
    return lib.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(x):
    """sRGB transfer function (IEC 61966-2-1), numpy or torch; clamps to [0, 1]."""
    lib = _lib(x)
    x = lib.clip(x, 0.0, 1.0) if lib is np else x.clamp(0.0, 1.0)
    return lib.where(x <= 0.0031308, x * 12.92, 1.055 * x ** (1 / 2.4) - 0.055)


def _lib(x):
    if isinstance(x, np.ndarray):
        return np
    import torch

    return torch


def _as_numpy(img) -> np.ndarray:
    if hasattr(img, "detach"):
        img = img.detach().float().cpu().numpy()
    img = np.asarray(img)
    if img.ndim == 4 and img.shape[0] == 1:
        img = img[0]
    if img.ndim == 2:
        img = img[..., None]
    if img.ndim != 3 or not 1 <= img.shape[2] <= 4:
        raise ValueError(
            f"write_image: expected an image [H, W, C] with C in 1..4, got {img.shape}"
        )
    return img


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """(H, W) of an image file, from its header where Pillow reads it (PNG, JPEG), else
    by decoding it."""
    try:
        from PIL import Image

        with Image.open(path) as im:
            w, h = im.size
            return int(h), int(w)
    except Exception:  # not a Pillow format (HDR, EXR), or unreadable: decode for errors
        return tuple(read_image(path).shape[:2])


def exif_orientation(path: str | os.PathLike) -> int:
    """The EXIF orientation tag of an image file (1 = as stored; 2-8 = mirrored and/or
    rotated for display), 1 when the file has none. nvdrec always uses the pixels as
    stored: camera poses and masks must refer to the stored pixels."""
    try:
        from PIL import Image

        with Image.open(path) as im:
            return int(im.getexif().get(0x0112, 1) or 1)
    except Exception:
        return 1


def read_image(path: str | os.PathLike, reduce: int = 1) -> np.ndarray:
    """Read an image file as float32 [H, W, C].

    Args:
        path: ``.png``/``.jpg``/``.jpeg`` (8 or 16 bit, scaled to [0, 1], no colour
            conversion), ``.hdr`` (Radiance RGBE, linear), ``.exr`` (needs the
            ``OpenEXR`` package: ``pip install nvdrec[exr]``).
        reduce: 2, 4 or 8: an 8-bit JPEG or PNG comes at 1/reduce of its size (rounded
            up): JPEGs scaled by the decoder in the DCT domain (a 12-megapixel photo at
            1/8 decodes many times faster), PNGs box-filtered on their 8-bit values; the
            full-size image never exists as floats. Other files ignore it.

    Raises:
        MissingFileError: the file does not exist.
        ImageFormatError: unreadable, truncated or unsupported content.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise MissingFileError(f"image file '{path}' does not exist") from None
    except OSError as e:
        raise ImageFormatError(f"image file '{path}' cannot be read: {e}") from None
    ext = path.suffix.lower()
    if ext == ".hdr" or data.startswith(b"#?"):
        return decode_hdr(data, str(path))
    if ext == ".exr":
        return _read_exr(path)
    info = png_info(data)
    if reduce > 1 and (ext in (".jpg", ".jpeg") or (info is not None and info[2] <= 8)):
        return _decode_reduced(data, reduce, path)
    if info is not None and info[2] == 16 and info[3] in (0, 2, 4, 6) and not info[4]:
        return decode_png16(data, str(path)).astype(np.float32) / 65535.0
    try:
        import imageio.v3 as iio

        arr = np.asarray(iio.imread(io.BytesIO(data), extension=ext if ext in _LDR else None))
    except Exception as e:  # imageio/Pillow raise many types for corrupt files
        raise ImageFormatError(f"image file '{path}' cannot be decoded: {e}") from None
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3:
        raise ImageFormatError(f"image file '{path}': unsupported image shape {arr.shape}")
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / 255.0
    if arr.dtype == np.uint16:
        return arr.astype(np.float32) / 65535.0
    if arr.dtype == bool:
        return arr.astype(np.float32)
    return arr.astype(np.float32)


def _decode_reduced(data: bytes, reduce: int, path: Path) -> np.ndarray:
    """8-bit JPEG or PNG at 1/reduce of its size (rounded up): JPEGs through the
    decoder's DCT scaling, PNGs by a box filter on the 8-bit values (Pillow's reduce), so
    the full-size image never exists as floats."""
    try:
        from PIL import Image

        with Image.open(io.BytesIO(data)) as im:
            w, h = im.size
            mode = im.mode if im.mode in ("RGB", "L", "RGBA", "LA") else "RGBA"
            if im.mode == "1":
                mode = "L"
            elif im.mode == "P" and "transparency" not in im.info:
                mode = "RGB"
            size = (max(1, -(-w // reduce)), max(1, -(-h // reduce)))
            if im.format == "JPEG":
                im.draft("RGB" if mode not in ("L",) else "L", size)
            im = im.convert(mode) if im.mode != mode else im
            if im.size != size:
                im = im.reduce(reduce)
            arr = np.asarray(im)
    except Exception as e:  # Pillow raises many types for corrupt files
        raise ImageFormatError(f"image file '{path}' cannot be decoded: {e}") from None
    if arr.ndim == 2:
        arr = arr[..., None]
    return arr.astype(np.float32) / 255.0


def write_image(path: str | os.PathLike, img, bit_depth: int = 8) -> None:
    """Write float [H, W, C] to ``path`` atomically; the extension picks the format.

    LDR formats clip to [0, 1] and quantise (no colour conversion: pass sRGB values
    for colour textures); ``bit_depth=16`` writes 16-bit PNG. ``.hdr`` writes RGB
    radiance with run-length encoding; ``.exr`` writes float32 (needs OpenEXR).
    """
    path = Path(path)
    arr = _as_numpy(img)
    ext = path.suffix.lower()
    if ext == ".hdr":
        if arr.shape[2] == 1:
            arr = np.repeat(arr, 3, axis=2)
        atomic_write_bytes(path, encode_hdr(arr[..., :3]))
        return
    if ext == ".exr":
        _write_exr(path, arr)
        return
    if ext not in _LDR:
        raise ValueError(f"write_image: unsupported extension '{ext}' for '{path}'")
    if bit_depth not in (8, 16) or (bit_depth == 16 and ext != ".png"):
        raise ValueError(f"write_image: bit_depth {bit_depth} not supported for '{ext}'")
    arr = np.nan_to_num(arr.astype(np.float64), nan=0.0)
    top = 255 if bit_depth == 8 else 65535
    q = np.clip(np.rint(arr * top), 0, top).astype(np.uint8 if bit_depth == 8 else np.uint16)
    if ext == ".png":
        atomic_write_bytes(path, encode_png(q))
        return
    import imageio.v3 as iio

    if q.shape[2] in (2, 4):
        q = q[..., : q.shape[2] - 1]  # JPEG has no alpha
    q = q[..., 0] if q.shape[2] == 1 else q
    atomic_write_bytes(path, iio.imwrite("<bytes>", q, extension=".jpg", quality=95))


def _openexr():
    try:
        import OpenEXR
    except ImportError:
        raise ImageFormatError(
            "reading or writing .exr needs the OpenEXR package: pip install 'nvdrec[exr]'"
        ) from None
    return OpenEXR


def _read_exr(path: Path) -> np.ndarray:
    exr = _openexr()
    try:
        with exr.File(str(path)) as f:
            chans = f.channels()
            for key in ("RGBA", "RGB", "Y"):
                if key in chans:
                    arr = np.asarray(chans[key].pixels, dtype=np.float32)
                    return arr[..., None] if arr.ndim == 2 else arr
            names = sorted(chans)
            arr = np.stack([np.asarray(chans[n].pixels, np.float32) for n in names], axis=-1)
            return arr
    except ImageFormatError:
        raise
    except Exception as e:
        raise ImageFormatError(f"image file '{path}' cannot be decoded as EXR: {e}") from None


def _write_exr(path: Path, arr: np.ndarray) -> None:
    exr = _openexr()
    key = {1: "Y", 3: "RGB", 4: "RGBA"}.get(arr.shape[2])
    if key is None:
        raise ValueError(f"write_image: EXR needs 1, 3 or 4 channels, got {arr.shape[2]}")
    data = np.ascontiguousarray(arr[..., 0] if key == "Y" else arr, dtype=np.float32)
    header = {"compression": exr.ZIP_COMPRESSION, "type": exr.scanlineimage}
    from .files import atomic_path

    with atomic_path(path.with_suffix(".exr")) as tmp:
        tmp_exr = tmp.with_name(tmp.name + ".exr")
        with exr.File(header, {key: data}) as f:
            f.write(str(tmp_exr))
        os.replace(tmp_exr, tmp)
