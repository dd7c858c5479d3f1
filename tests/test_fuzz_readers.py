"""Property-based fuzzing of the file readers: any bytes either load or raise nvdrec's
documented error types (never another exception, never a hang)."""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nvdrec.errors import NvdrecError
from nvdrec.io import load_mesh, read_image
from nvdrec.io.hdr import decode_hdr, encode_hdr
from nvdrec.train.config import load_config

FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

OBJ_WORDS = st.sampled_from(
    [
        "v",
        "vt",
        "vn",
        "f",
        "usemtl",
        "mtllib",
        "o",
        "g",
        "s",
        "#",
        "",
        "1",
        "-1",
        "0",
        "1/2/3",
        "2//1",
        "-3/-1",
        "nan",
        "1e40",
        "x",
        "0.5",
        "4/4/4/4",
        "/",
        "//",
    ]
)


@FUZZ
@given(st.lists(st.lists(OBJ_WORDS, max_size=6).map(" ".join), max_size=30))
def test_obj_reader_never_crashes(tmp_path, lines):
    p = tmp_path / "f.obj"
    p.write_text("\n".join(lines))
    try:
        load_mesh(p)
    except NvdrecError:
        pass


@FUZZ
@given(st.binary(max_size=400))
def test_obj_reader_binary_garbage(tmp_path, data):
    p = tmp_path / "g.obj"
    p.write_bytes(data)
    try:
        load_mesh(p)
    except NvdrecError:
        pass


@FUZZ
@given(
    st.lists(
        st.sampled_from(
            [
                "newmtl a",
                "Kd 1 2",
                "Kd 1 2 3",
                "Ks x y z",
                "map_Kd",
                "map_Kd ../../etc/passwd",
                "bump -bm",
                "bsdf",
                "Ns 3",
                "",
            ]
        ),
        max_size=10,
    )
)
def test_mtl_reader_never_crashes(tmp_path, lines):
    (tmp_path / "m.obj").write_text("mtllib m.mtl\nv 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n")
    (tmp_path / "m.mtl").write_text("\n".join(lines))
    try:
        load_mesh(tmp_path / "m.obj")
    except NvdrecError:
        pass


@FUZZ
@given(st.binary(max_size=600))
def test_hdr_decoder_never_crashes(data):
    for blob in (data, b"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y 3 +X 9\n" + data):
        try:
            decode_hdr(blob)
        except NvdrecError:
            pass


@FUZZ
@given(st.integers(0, 10_000), st.binary(min_size=1, max_size=8))
def test_hdr_decoder_corrupted_valid_file(pos, junk):
    import numpy as np

    good = bytearray(encode_hdr(np.random.default_rng(0).random((6, 20, 3)).astype(np.float32)))
    pos = pos % len(good)
    good[pos : pos + len(junk)] = junk
    try:
        decode_hdr(bytes(good))
    except NvdrecError:
        pass


@FUZZ
@given(st.binary(max_size=300), st.sampled_from([".png", ".jpg", ".hdr", ".exr"]))
def test_image_reader_never_crashes(tmp_path, data, ext):
    p = tmp_path / f"i{ext}"
    p.write_bytes(data)
    try:
        read_image(p)
    except NvdrecError:
        pass


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-5, 10_000)
    | st.floats(allow_nan=True)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)


@FUZZ
@given(
    st.dictionaries(
        st.sampled_from(
            [
                "iter",
                "batch",
                "train_res",
                "learning_rate",
                "loss",
                "display",
                "kd_min",
                "cam_near_far",
                "mesh_scale",
                "device",
                "ref_mesh",
                "bogus",
            ]
        ),
        JSON_VALUES,
        max_size=4,
    )
)
def test_config_values_never_crash(data):
    try:
        load_config(data)
    except NvdrecError:
        pass


@FUZZ
@given(st.binary(max_size=200))
def test_config_file_bytes_never_crash(tmp_path, data):
    p = tmp_path / "c.json"
    p.write_bytes(data)
    try:
        load_config(p)
    except NvdrecError:
        pass


def test_config_json_nan_is_rejected(tmp_path):
    p = tmp_path / "c.json"
    p.write_text(json.dumps({"env_scale": float("nan")}))
    with pytest.raises(NvdrecError, match="env_scale"):
        load_config(p)


@FUZZ
@given(st.integers(0, 4000), st.binary(min_size=1, max_size=16), st.sampled_from([1, 2, 3, 4]))
def test_png16_corrupted_valid_file(tmp_path, pos, junk, channels):
    import numpy as np

    from nvdrec.io.png import encode_png

    img = np.random.default_rng(channels).integers(0, 65535, (7, 9, channels), dtype=np.uint16)
    good = bytearray(encode_png(img))
    pos = 8 + pos % (len(good) - 8)
    good[pos : pos + len(junk)] = junk
    p = tmp_path / "c.png"
    p.write_bytes(bytes(good))
    try:
        read_image(p)
    except NvdrecError:
        pass


@FUZZ
@given(
    st.lists(
        st.dictionaries(
            st.sampled_from(["file_path", "transform_matrix", "fl_x", "cx", "camera_angle_x"]),
            JSON_VALUES,
            max_size=4,
        )
        | JSON_VALUES,
        max_size=3,
    ),
    st.one_of(st.none(), JSON_VALUES),
)
def test_nerf_transforms_json_never_crashes(tmp_path, frames, angle):
    import numpy as np

    from nvdrec.data.nerf import NeRFDataset
    from nvdrec.io import write_image

    write_image(tmp_path / "a.png", np.ones((4, 4, 4), np.float32))
    good = {"file_path": "a", "transform_matrix": np.eye(4).tolist()}
    data = {"frames": [good, *frames]}
    if angle is not None:
        data["camera_angle_x"] = angle
    (tmp_path / "transforms_train.json").write_text(json.dumps(data))
    try:
        NeRFDataset(tmp_path, "train")
    except NvdrecError:
        pass
