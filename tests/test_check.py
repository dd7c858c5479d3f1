"""nvdrec check: the preflight report of dataset folders."""

import subprocess
import sys

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
    r = subprocess.run(
        [sys.executable, "-m", "nvdrec", "check", str(tmp_path / "c"), "--mesh-scale", "5"],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    assert "colmap" in r.stdout and "warning: a camera is inside the grid box" in r.stdout
    r = subprocess.run(
        [sys.executable, "-m", "nvdrec", "check", str(tmp_path)], capture_output=True, text=True
    )
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
