"""nvdrec check: the preflight report of dataset folders."""

from _helpers import run_nvdrec, write_photo_folder
from test_data_colmap import write_colmap
from test_data_nerf import write_nerf

from nvdrec.data.check import preflight
from nvdrec.io import read_image


def test_report_and_picture(tmp_path):
    write_nerf(tmp_path / "scene", n=6)
    lines, warns = preflight(tmp_path / "scene", mesh_scale=2.0, picture=tmp_path / "cams.png")
    text = "\n".join(lines)
    assert "6 at 32x32" in text and "nerf-synthetic" in text
    assert "distance to the origin 3.000 .. 3.000" in text
    assert "median 0.0 deg" in text
    assert warns == []
    img = read_image(tmp_path / "cams.png")
    assert img.shape == (384, 384, 3) and (img < 0.5).any()


def test_warnings_and_cli(tmp_path):
    write_colmap(tmp_path / "c")
    r = run_nvdrec("check", str(tmp_path / "c"), "--mesh-scale", "5")
    assert r.returncode == 0, r.stderr
    assert "colmap" in r.stdout and "warning: a camera is inside the grid box" in r.stdout
    r = run_nvdrec("check", str(tmp_path))
    assert r.returncode == 1 and "not a dataset folder" in r.stderr


def test_inconsistent_image_sizes_are_reported(tmp_path):
    import numpy as np

    from nvdrec.io import read_image, write_image

    write_nerf(tmp_path / "s", n=4)
    img = read_image(tmp_path / "s" / "train" / "r_2.png")
    big = np.repeat(np.repeat(img, 2, axis=0), 2, axis=1)
    write_image(tmp_path / "s" / "train" / "r_2.png", big, bit_depth=16)
    lines, warns = preflight(tmp_path / "s")
    assert any("1 image(s) differ in size" in w for w in warns)


def test_large_photos_are_reduced_as_they_load(tmp_path, monkeypatch):
    """check fits the images within CHECK_MAX_SIDE while loading (memory bounded by the
    image count, not the photo size): a folder of 2048x1536 photos is held at 512x384,
    with the intrinsics scaled (the cameras' focal length in pixels follows)."""
    import torch

    from nvdrec.data import check as check_mod
    from nvdrec.data.llff import LLFFDataset

    folder = tmp_path / "photos"
    n, h, w = 3, 1536, 2048
    write_photo_folder(folder, n, h, w)
    full = LLFFDataset(folder)
    assert full.resolution == (h, w)
    lines, warns = preflight(folder)
    assert f"{n} at 512x384" in "\n".join(lines)
    assert not any("differ in size" in w for w in warns), warns  # all files are one size
    from nvdrec.data import nerf as nerf_mod

    seen = []
    real = nerf_mod.read_image
    monkeypatch.setattr(
        nerf_mod, "read_image", lambda p, reduce=1: seen.append(reduce) or real(p, reduce)
    )
    _, ds = check_mod.load_dataset_folder(folder, max_side=check_mod.CHECK_MAX_SIDE)
    assert seen == [4] * (2 * n)  # photos and masks were decoded at a quarter size
    assert ds.images.shape == (n, 384, 512, 4)
    # the JPEGs were decoded at a quarter of their size (2048 / 4 = 512): close to the full
    # images box-filtered afterwards (the decoder scales in the DCT domain)
    ref = torch.nn.functional.interpolate(
        full.images.permute(0, 3, 1, 2), size=(384, 512), mode="area"
    ).permute(0, 2, 3, 1)
    diff = (ds.images - ref).abs()
    assert diff.mean() < 0.003 and diff.max() < 0.05, (diff.mean(), diff.max())
    # focal length in pixels scales with the image: proj[0, 0] = 2 f / w is unchanged
    assert torch.allclose(ds.proj[:, 0, 0], full.proj[:, 0, 0], rtol=1e-4)


def test_exif_orientation_is_reported_not_applied(tmp_path):
    """Photos with an EXIF orientation tag are used as stored (poses and masks refer to
    the stored pixels); check says so, and says when a folder mixes orientations."""

    from nvdrec.io.image import exif_orientation

    folder = tmp_path / "photos"
    n, h, w = 3, 60, 80
    write_photo_folder(folder, n, h, w, focal=70.0, orientations=[1, 6, 1])
    assert exif_orientation(folder / "images" / "001.jpg") == 6
    assert exif_orientation(folder / "images" / "000.jpg") == 1
    lines, warns = preflight(folder)
    assert f"{n} at {w}x{h}" in "\n".join(lines)  # stored size, not rotated to 60x80
    msg = [m for m in warns if "EXIF orientation" in m]
    assert len(msg) == 1 and "1 photo(s)" in msg[0] and "mixes orientations" in msg[0]
