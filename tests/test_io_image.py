import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from nvdrec.errors import ImageFormatError, MissingFileError
from nvdrec.io import linear_to_srgb, read_image, srgb_to_linear, write_image
from nvdrec.io.hdr import decode_hdr, encode_hdr

# RGBE keeps 8 mantissa bits per channel relative to the largest channel
HDR_REL_TOL = 2.0**-8


def _hdr_image(rng, h, w):
    img = rng.random((h, w, 3)).astype(np.float32) * 10 ** rng.uniform(-3, 3, (h, w, 1))
    img[0, :4] = 0.0  # zeros and runs
    img[1, :] = img[1, :1]  # a long run
    return img.astype(np.float32)


@pytest.mark.parametrize("rle", [True, False])
@pytest.mark.parametrize("shape", [(7, 13), (16, 300), (3, 5)])
def test_hdr_roundtrip_within_rgbe_precision(tmp_path, rle, shape):
    rng = np.random.default_rng(0)
    img = _hdr_image(rng, *shape)
    data = encode_hdr(img, rle=rle)
    back = decode_hdr(data)
    assert back.shape == img.shape and back.dtype == np.float32
    ref = img.max(axis=-1, keepdims=True)
    err = np.abs(back - img) / np.maximum(ref, 1e-30)
    assert err.max() <= HDR_REL_TOL, (
        f"max rel err {err.max()} at {np.unravel_index(err.argmax(), err.shape)}"
    )
    # decoding then encoding again is exact (values already on the RGBE grid)
    assert encode_hdr(back, rle=rle) == data
    write_image(tmp_path / "x.hdr", img)
    np.testing.assert_array_equal(read_image(tmp_path / "x.hdr"), decode_hdr(encode_hdr(img)))


def test_hdr_rle_is_smaller_on_flat_images():
    img = np.ones((32, 64, 3), np.float32)
    assert len(encode_hdr(img, rle=True)) < len(encode_hdr(img, rle=False)) / 4


def test_hdr_plus_y_orientation_is_flipped():
    img = np.arange(2 * 3 * 3, dtype=np.float32).reshape(2, 3, 3) + 1
    data = encode_hdr(img, rle=False).replace(b"-Y 2 +X 3", b"+Y 2 +X 3")
    np.testing.assert_allclose(decode_hdr(data), decode_hdr(encode_hdr(img, rle=False))[::-1])


@pytest.mark.parametrize("cut", [0.3, 0.7, 0.99])
def test_truncated_hdr_raises_clear_error(tmp_path, cut):
    data = encode_hdr(_hdr_image(np.random.default_rng(1), 16, 40))
    p = tmp_path / "t.hdr"
    p.write_bytes(data[: int(len(data) * cut)])
    with pytest.raises(ImageFormatError, match="t.hdr"):
        read_image(p)


def test_bad_hdr_headers():
    with pytest.raises(ImageFormatError, match="header"):
        decode_hdr(b"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n")
    with pytest.raises(ImageFormatError, match="resolution"):
        decode_hdr(b"#?RADIANCE\n\nbogus\n")
    with pytest.raises(ImageFormatError, match="xyze"):
        decode_hdr(b"#?RADIANCE\nFORMAT=32-bit_rle_xyze\n\n-Y 1 +X 1\n\0\0\0\0")


@settings(max_examples=30, deadline=None)
@given(h=st.integers(1, 6), w=st.integers(1, 40), seed=st.integers(0, 2**31), rle=st.booleans())
def test_hdr_roundtrip_property(h, w, seed, rle):
    img = np.random.default_rng(seed).random((h, w, 3)).astype(np.float32) * 100
    back = decode_hdr(encode_hdr(img, rle=rle))
    ref = np.maximum(img.max(axis=-1, keepdims=True), 1e-30)
    assert (np.abs(back - img) / ref).max() <= HDR_REL_TOL


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
@pytest.mark.parametrize("bits", [8, 16])
def test_png_roundtrip(tmp_path, channels, bits):
    img = np.random.default_rng(channels).random((9, 11, channels)).astype(np.float32)
    p = tmp_path / f"x{bits}.png"
    write_image(p, img, bit_depth=bits)
    back = read_image(p)
    top = 2**bits - 1
    assert back.shape == img.shape
    np.testing.assert_array_equal(
        np.rint(back.astype(np.float64) * top), np.rint(img.astype(np.float64) * top)
    )


def test_png16_reads_all_filter_types(tmp_path):
    # Pillow writes 8-bit files with adaptive filters; our 16-bit decoder must undo
    # every filter type, so build a file that uses each of them.
    import struct
    import zlib

    from nvdrec.io.png import SIGNATURE, _chunk, decode_png16, png_info

    rng = np.random.default_rng(3)
    h, w, c = 5, 7, 3
    img = rng.integers(0, 65536, (h, w, c), dtype=np.uint16)
    raw = img.astype(">u2").view(np.uint8).reshape(h, -1).astype(np.int32)
    bpp = c * 2
    lines = []
    prev = np.zeros(raw.shape[1], np.int32)
    for y in range(h):
        ft = y % 5
        cur = raw[y]
        left = np.concatenate([np.zeros(bpp, np.int32), cur[:-bpp]])
        upleft = np.concatenate([np.zeros(bpp, np.int32), prev[:-bpp]])
        if ft == 0:
            f = cur
        elif ft == 1:
            f = cur - left
        elif ft == 2:
            f = cur - prev
        elif ft == 3:
            f = cur - ((left + prev) >> 1)
        else:
            p = left + prev - upleft
            pa, pb, pc = abs(p - left), abs(p - prev), abs(p - upleft)
            pred = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, prev, upleft))
            f = cur - pred
        lines.append(bytes([ft]) + bytes((f & 255).astype(np.uint8)))
        prev = cur
    ihdr = struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)
    data = SIGNATURE + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(b"".join(lines)))
    data += _chunk(b"IEND", b"")
    assert png_info(data)[:3] == (w, h, 16)
    np.testing.assert_array_equal(decode_png16(data), img)


def test_jpeg_roundtrip_is_close(tmp_path):
    img = np.full((16, 16, 3), 0.5, np.float32)
    write_image(tmp_path / "x.jpg", img)
    assert np.abs(read_image(tmp_path / "x.jpg") - 0.5).max() < 0.02


def test_write_accepts_torch_batch(tmp_path):
    t = torch.rand(1, 4, 5, 3)
    write_image(tmp_path / "t.png", t)
    assert read_image(tmp_path / "t.png").shape == (4, 5, 3)


def test_srgb_helpers_are_inverse():
    x = np.linspace(0, 1, 1001, dtype=np.float64)
    np.testing.assert_allclose(srgb_to_linear(linear_to_srgb(x)), x, atol=1e-12)
    t = torch.linspace(0, 1, 101, dtype=torch.float64)
    torch.testing.assert_close(linear_to_srgb(srgb_to_linear(t)), t)
    assert abs(float(srgb_to_linear(np.array(0.5))) - 0.21404114) < 1e-6


def test_missing_and_corrupt_images(tmp_path):
    with pytest.raises(MissingFileError, match="nope.png"):
        read_image(tmp_path / "nope.png")
    p = tmp_path / "bad.png"
    p.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    with pytest.raises(ImageFormatError, match="bad.png"):
        read_image(p)


def test_shared_envmaps_decode(shared_data):
    for f in sorted((shared_data / "envmaps").glob("*.hdr")):
        img = read_image(f)
        assert img.shape == (512, 1024, 3) and np.isfinite(img).all() and img.max() > 1.0


def test_jpeg_reduced_decoding_and_header_size(tmp_path):
    """read_image(reduce=k) decodes a JPEG at 1/k of its size (close to a box filter of
    the full decode), an 8-bit PNG box-filtered; image_size reads the size from the
    header."""
    import numpy as np

    from nvdrec.io.image import image_size

    yy, xx = np.mgrid[0:480, 0:640].astype(np.float32)
    img = np.stack([0.5 + 0.4 * np.sin(xx / 40 + yy / (30 + 5 * c)) for c in range(3)], -1)
    write_image(tmp_path / "a.jpg", img)
    write_image(tmp_path / "a.png", img)
    assert image_size(tmp_path / "a.jpg") == (480, 640) == image_size(tmp_path / "a.png")
    full = read_image(tmp_path / "a.jpg")
    for k in (2, 4, 8):
        small = read_image(tmp_path / "a.jpg", reduce=k)
        assert small.shape == (480 // k, 640 // k, 3) and small.dtype == np.float32
        box = full.reshape(480 // k, k, 640 // k, k, 3).mean((1, 3))
        assert np.abs(small - box).mean() < 0.01
    png = read_image(tmp_path / "a.png", reduce=4)  # 8-bit PNG: box filter of the values
    box = read_image(tmp_path / "a.png").reshape(120, 4, 160, 4, 3).mean((1, 3))
    assert png.shape == (120, 160, 3) and np.abs(png - box).max() <= 0.5 / 255 + 1e-6


def test_pngs_encoded_at_once_keep_order_and_errors():
    """in_parallel (the texture set of an export) gives the results in input order, the
    same bytes as one at a time, and raises a worker's error."""
    from nvdrec.io.png import encode_png, in_parallel

    g = np.random.default_rng(0)
    imgs = [g.integers(0, 256, (s, s + 3, 3), dtype=np.uint8) for s in (64, 8, 33, 120)]
    assert in_parallel(encode_png, imgs) == [encode_png(i) for i in imgs]
    with pytest.raises(ValueError, match="encode_png"):
        in_parallel(encode_png, [imgs[0], np.zeros((4, 4, 5), np.uint8)])
