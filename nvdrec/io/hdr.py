"""Radiance RGBE (``.hdr``) reader and writer, flat and run-length encoded.

Format facts from Greg Ward's description of the Radiance picture format: a text
header starting with ``#?RADIANCE`` (or ``#?RGBE``), a blank line, a resolution line
(``-Y H +X W`` = top row first), then scanlines of 4-byte RGBE pixels, either flat or
"new" run-length encoded (each scanline starts with 2, 2, W>>8, W&255 and stores the
four byte planes separately as runs and literals).
"""

from __future__ import annotations

import os
import re

import numpy as np

from ..errors import ImageFormatError

__all__ = ["decode_hdr", "encode_hdr", "read_hdr", "write_hdr"]

_RES = re.compile(rb"^([-+])Y\s+(\d+)\s+([-+])X\s+(\d+)\s*$")


def _rgbe_to_float(rgbe: np.ndarray) -> np.ndarray:
    e = rgbe[..., 3].astype(np.int32)
    scale = np.where(e > 0, np.ldexp(1.0, e - 136), 0.0).astype(np.float32)
    return (rgbe[..., :3].astype(np.float32) + 0.5) * scale[..., None] * (e[..., None] > 0)


def _float_to_rgbe(img: np.ndarray) -> np.ndarray:
    img = np.nan_to_num(np.asarray(img, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    img = np.maximum(img, 0.0)
    v = img.max(axis=-1)
    mant, exp = np.frexp(v)
    tiny = v < 1e-32
    scale = np.where(tiny, 0.0, mant * 256.0 / np.where(tiny, 1.0, v))
    rgb = np.clip(np.floor(img * scale[..., None]), 0, 255)
    e = np.where(tiny, 0, np.clip(exp + 128, 0, 255))
    out = np.concatenate([rgb, e[..., None]], axis=-1).astype(np.uint8)
    out[tiny] = 0
    return out


def decode_hdr(data: bytes, name: str = "<bytes>") -> np.ndarray:
    """Decode Radiance ``.hdr`` bytes to a float32 array [H, W, 3] of linear radiance."""
    if not data.startswith(b"#?"):
        raise ImageFormatError(f"{name}: not a Radiance HDR file (missing '#?RADIANCE' header)")
    pos = 0
    header_end = data.find(b"\n\n")
    if header_end < 0:
        raise ImageFormatError(f"{name}: truncated HDR header (no blank line after the header)")
    header = data[:header_end].decode("latin-1", "replace")
    fmt = re.search(r"FORMAT=(\S+)", header)
    if fmt and fmt.group(1) != "32-bit_rle_rgbe":
        raise ImageFormatError(
            f"{name}: unsupported HDR pixel format '{fmt.group(1)}' (only 32-bit_rle_rgbe)"
        )
    pos = header_end + 2
    eol = data.find(b"\n", pos)
    if eol < 0:
        raise ImageFormatError(f"{name}: truncated HDR file (no resolution line)")
    m = _RES.match(data[pos:eol])
    if not m:
        raise ImageFormatError(
            f"{name}: unsupported HDR resolution line {data[pos:eol][:40]!r} "
            "(expected '-Y H +X W' or '+Y H +X W')"
        )
    ysign, h, xsign, w = m.group(1), int(m.group(2)), m.group(3), int(m.group(4))
    if xsign != b"+" or h <= 0 or w <= 0 or h * w > 1 << 28:
        raise ImageFormatError(f"{name}: unsupported HDR size or orientation {m.group(0)!r}")
    pos = eol + 1
    buf = np.frombuffer(data, dtype=np.uint8)
    out = np.empty((h, w, 4), dtype=np.uint8)
    for y in range(h):
        pos = _decode_scanline(buf, pos, out[y], w, name, y)
    if ysign == b"+":
        out = out[::-1]
    return _rgbe_to_float(out)


def _decode_scanline(buf: np.ndarray, pos: int, row: np.ndarray, w: int, name: str, y: int) -> int:
    n = len(buf)
    if pos + 4 > n:
        raise ImageFormatError(f"{name}: truncated HDR pixel data at scanline {y}")
    if 8 <= w < 32768 and buf[pos] == 2 and buf[pos + 1] == 2 and not (buf[pos + 2] & 0x80):
        if (int(buf[pos + 2]) << 8 | int(buf[pos + 3])) != w:
            raise ImageFormatError(f"{name}: corrupt HDR scanline {y} (length mismatch)")
        pos += 4
        for c in range(4):
            x = 0
            chan = row[:, c]
            while x < w:
                if pos >= n:
                    raise ImageFormatError(f"{name}: truncated HDR pixel data at scanline {y}")
                count = int(buf[pos])
                pos += 1
                if count > 128:
                    count -= 128
                    if x + count > w or pos >= n:
                        raise ImageFormatError(f"{name}: corrupt HDR run at scanline {y}")
                    chan[x : x + count] = buf[pos]
                    pos += 1
                else:
                    if count == 0 or x + count > w or pos + count > n:
                        raise ImageFormatError(f"{name}: corrupt HDR run at scanline {y}")
                    chan[x : x + count] = buf[pos : pos + count]
                    pos += count
                x += count
        return pos
    # flat pixels, possibly with old-style runs (1,1,1,n repeats the previous pixel)
    x, shift = 0, 0
    while x < w:
        if pos + 4 > n:
            raise ImageFormatError(f"{name}: truncated HDR pixel data at scanline {y}")
        px = buf[pos : pos + 4]
        pos += 4
        if px[0] == 1 and px[1] == 1 and px[2] == 1:
            count = int(px[3]) << shift
            if x == 0 or x + count > w:
                raise ImageFormatError(f"{name}: corrupt old-style HDR run at scanline {y}")
            row[x : x + count] = row[x - 1]
            x += count
            shift += 8
        else:
            row[x] = px
            x += 1
            shift = 0
    return pos


def _encode_channel(chan: np.ndarray) -> bytes:
    """Run-length encode one byte plane of a scanline (runs of >= 4 become run packets)."""
    w = len(chan)
    change = np.flatnonzero(np.diff(chan.astype(np.int16))) + 1
    starts = np.concatenate([[0], change])
    lengths = np.diff(np.concatenate([starts, [w]]))
    out = bytearray()
    lit_start = None
    for s, ln in zip(starts.tolist(), lengths.tolist()):
        if ln >= 4:
            if lit_start is not None:
                _emit_literal(out, chan[lit_start:s])
                lit_start = None
            while ln > 0:
                k = min(ln, 127)
                out += bytes((128 + k, int(chan[s])))
                ln -= k
        elif lit_start is None:
            lit_start = s
    if lit_start is not None:
        _emit_literal(out, chan[lit_start:])
    return bytes(out)


def _emit_literal(out: bytearray, seg: np.ndarray) -> None:
    for i in range(0, len(seg), 128):
        part = seg[i : i + 128]
        out.append(len(part))
        out += part.tobytes()


def encode_hdr(img: np.ndarray, rle: bool = True) -> bytes:
    """Encode a float array [H, W, 3] (linear radiance) as Radiance ``.hdr`` bytes."""
    img = np.asarray(img)
    if img.ndim != 3 or img.shape[2] < 3:
        raise ValueError(f"encode_hdr: expected an image [H, W, 3], got shape {img.shape}")
    h, w = img.shape[:2]
    rgbe = _float_to_rgbe(img[..., :3])
    parts = [
        b"#?RADIANCE\n# written by nvdrec\nFORMAT=32-bit_rle_rgbe\n\n",
        b"-Y %d +X %d\n" % (h, w),
    ]
    if rle and 8 <= w < 32768:
        head = bytes((2, 2, w >> 8, w & 255))
        for y in range(h):
            parts.append(head)
            parts.extend(_encode_channel(rgbe[y, :, c]) for c in range(4))
    else:
        parts.append(rgbe.tobytes())
    return b"".join(parts)


def read_hdr(path: str | os.PathLike) -> np.ndarray:
    """Read a Radiance ``.hdr`` file to float32 [H, W, 3] linear radiance."""
    with open(path, "rb") as f:
        data = f.read()
    return decode_hdr(data, str(path))


def write_hdr(path: str | os.PathLike, img: np.ndarray, rle: bool = True) -> None:
    """Write float [H, W, 3] linear radiance as a Radiance ``.hdr`` file (atomically)."""
    from .files import atomic_write_bytes

    atomic_write_bytes(path, encode_hdr(img, rle=rle))
