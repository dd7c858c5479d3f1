"""A small PNG codec for what Pillow cannot do: 16-bit RGB/RGBA read and write.

Facts from the PNG specification (ISO/IEC 15948): 8-byte signature, chunks of
(length, type, data, CRC), IHDR with bit depth and colour type, zlib-compressed IDAT
data where each scanline starts with a filter byte (None, Sub, Up, Average, Paeth),
16-bit samples big-endian.
"""

from __future__ import annotations

import os
import struct
import zlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..errors import ImageFormatError

__all__ = ["decode_png16", "encode_png", "png_info"]

SIGNATURE = b"\x89PNG\r\n\x1a\n"
_CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}  # colour type -> samples per pixel (palette excluded)


def png_info(data: bytes) -> tuple[int, int, int, int, int] | None:
    """(width, height, bit depth, colour type, interlace) of PNG bytes, or None if not a PNG."""
    if len(data) < 33 or not data.startswith(SIGNATURE) or data[12:16] != b"IHDR":
        return None
    w, h, depth, ctype, _comp, _filt, interlace = struct.unpack(">IIBBBBB", data[16:29])
    return w, h, depth, ctype, interlace


def _chunks(data: bytes, name: str):
    pos = 8
    while pos + 8 <= len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        ctype = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        if len(body) != length or pos + 12 + length > len(data):
            raise ImageFormatError(f"{name}: truncated PNG chunk {ctype!r}")
        yield ctype, body
        pos += 12 + length
        if ctype == b"IEND":
            return
    raise ImageFormatError(f"{name}: truncated PNG (no IEND chunk)")


def _paeth(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    p = a + b - c
    pa, pb, pc = np.abs(p - a), np.abs(p - b), np.abs(p - c)
    return np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))


def decode_png16(data: bytes, name: str = "<bytes>") -> np.ndarray:
    """Decode a non-interlaced 16-bit PNG to uint16 [H, W, C]."""
    info = png_info(data)
    if info is None:
        raise ImageFormatError(f"{name}: not a PNG file")
    w, h, depth, ctype, interlace = info
    if depth != 16 or ctype not in _CHANNELS or interlace:
        raise ImageFormatError(f"{name}: decode_png16 handles non-interlaced 16-bit PNGs only")
    idat = b"".join(body for t, body in _chunks(data, name) if t == b"IDAT")
    try:
        raw = zlib.decompress(idat)
    except zlib.error as e:
        raise ImageFormatError(f"{name}: corrupt PNG image data ({e})") from None
    bpp = _CHANNELS[ctype] * 2
    stride = w * bpp
    if len(raw) < h * (stride + 1):
        raise ImageFormatError(f"{name}: truncated PNG image data")
    rows = np.frombuffer(raw, dtype=np.uint8)[: h * (stride + 1)].reshape(h, stride + 1)
    out = np.zeros((h, stride), dtype=np.uint8)
    prev = np.zeros(stride, dtype=np.int32)
    for y in range(h):
        ftype, line = rows[y, 0], rows[y, 1:].astype(np.int32)
        if ftype == 0:
            cur = line
        elif ftype == 1:  # Sub: running sum per byte lane
            cur = np.cumsum(line.reshape(w, bpp), axis=0).reshape(-1) & 255
        elif ftype == 2:
            cur = (line + prev) & 255
        elif ftype in (3, 4):  # Average / Paeth depend on the reconstructed left pixel
            cur = np.zeros(stride, dtype=np.int32)
            left = np.zeros(bpp, dtype=np.int32)
            upleft = np.zeros(bpp, dtype=np.int32)
            for x in range(w):
                s = slice(x * bpp, (x + 1) * bpp)
                up = prev[s]
                pred = (left + up) >> 1 if ftype == 3 else _paeth(left, up, upleft)
                left = (line[s] + pred) & 255
                cur[s] = left
                upleft = up
        else:
            raise ImageFormatError(f"{name}: bad PNG filter type {ftype} in row {y}")
        out[y] = cur
        prev = cur
    return out.view(">u2").reshape(h, w, bpp // 2).astype(np.uint16)


def _chunk(ctype: bytes, body: bytes) -> bytes:
    crc = zlib.crc32(ctype + body) & 0xFFFFFFFF
    return struct.pack(">I", len(body)) + ctype + body + struct.pack(">I", crc)


def encode_png(img: np.ndarray) -> bytes:
    """Encode uint8 or uint16 [H, W, C] (C in 1..4) as PNG bytes (Up filter, zlib level 6)."""
    img = np.ascontiguousarray(img)
    if img.ndim == 2:
        img = img[..., None]
    h, w, c = img.shape
    depth = {np.dtype(np.uint8): 8, np.dtype(np.uint16): 16}.get(img.dtype)
    if depth is None or c not in (1, 2, 3, 4):
        raise ValueError(f"encode_png: need uint8/uint16 [H, W, 1..4], got {img.dtype} {img.shape}")
    ctype = {1: 0, 2: 4, 3: 2, 4: 6}[c]
    rows = (img.astype(">u2") if depth == 16 else img).view(np.uint8).reshape(h, -1)
    up = rows.astype(np.int16)
    up[1:] -= rows[:-1]
    filtered = np.concatenate([np.full((h, 1), 2, np.uint8), (up & 255).astype(np.uint8)], axis=1)
    ihdr = struct.pack(">IIBBBBB", w, h, depth, ctype, 0, 0, 0)
    return b"".join(
        [
            SIGNATURE,
            _chunk(b"IHDR", ihdr),
            _chunk(b"IDAT", zlib.compress(filtered.tobytes(), 6)),
            _chunk(b"IEND", b""),
        ]
    )


def in_parallel(fn, items: list) -> list:
    """``[fn(x) for x in items]``, several at once on threads: PNG encoding spends its
    time in zlib, which runs outside Python's lock, so a mesh's texture set encodes in
    about the time of its largest texture when the machine has the cores. The first
    exception is raised."""
    workers = min(len(items), os.cpu_count() or 1)
    if workers < 2:
        return [fn(x) for x in items]
    with ThreadPoolExecutor(workers) as ex:
        return list(ex.map(fn, items))
