"""COLMAP loading (text and binary models) from data written from our own renders."""

import math
import struct

import pytest
import torch
from _helpers import TINY_FOLDER, rot_to_quat, train_cli
from test_data_nerf import FOV, H, W, _scene

from nvdrec.data.colmap import ColmapDataset
from nvdrec.errors import DataError, MissingFileError
from nvdrec.io import linear_to_srgb, write_image
from nvdrec.render import RasterContext, render_mesh
from nvdrec.structures import camera as cam


def write_colmap(folder, n=5, binary=False, masks=True, model="PINHOLE"):
    mesh, light = _scene()
    views = cam.orbit_views(n, radius=3.0, fovy=FOV, resolution=(H, W))
    out = render_mesh(RasterContext(), mesh, views.mvp, views.campos, light, (H, W))[
        "shaded"
    ].detach()
    sp = folder / "sparse" / "0"
    sp.mkdir(parents=True)
    (folder / "images").mkdir()
    if masks:
        (folder / "masks").mkdir()
    f = 0.5 * H / math.tan(FOV / 2)
    flip = torch.diag(torch.tensor([1.0, -1.0, -1.0, 1.0], dtype=torch.float64))
    imgs = []
    for i in range(n):
        a = out[i, ..., 3:4]
        rgb = linear_to_srgb((out[i, ..., :3] / a.clamp(min=1e-6)).clamp(0, 1))
        name = f"im{i}.png"
        if masks:
            write_image(folder / "images" / name, rgb, bit_depth=16)
            write_image(folder / "masks" / name, a, bit_depth=16)
        else:
            write_image(folder / "images" / name, torch.cat([rgb, a], -1), bit_depth=16)
        w2c_cv = flip @ views.mv[i].double()  # OpenGL camera -> OpenCV camera axes
        imgs.append((i + 1, rot_to_quat(w2c_cv[:3, :3].numpy()), w2c_cv[:3, 3].tolist(), name))
    params = [f, f, W / 2, H / 2] if model == "PINHOLE" else [f, W / 2, H / 2, 0.01]
    model_id = {"PINHOLE": 1, "SIMPLE_RADIAL": 2}[model]
    if binary:
        with open(sp / "cameras.bin", "wb") as fh:
            fh.write(struct.pack("<Q", 1) + struct.pack("<iiQQ", 1, model_id, W, H))
            fh.write(struct.pack(f"<{len(params)}d", *params))
        with open(sp / "images.bin", "wb") as fh:
            fh.write(struct.pack("<Q", n))
            for iid, q, t, name in imgs:
                fh.write(
                    struct.pack("<idddddddi", iid, *q, *t, 1)
                    + name.encode()
                    + b"\0"
                    + struct.pack("<Q", 0)
                )
    else:
        (sp / "cameras.txt").write_text(
            f"# cameras\n1 {model} {W} {H} " + " ".join(map(str, params)) + "\n"
        )
        lines = ["# images"]
        for iid, q, t, name in imgs:
            lines += [f"{iid} {' '.join(map(str, q))} {' '.join(map(str, t))} 1 {name}", ""]
        (sp / "images.txt").write_text("\n".join(lines) + "\n")
    return views, out


@pytest.mark.parametrize("binary", [False, True])
def test_colmap_cameras_and_images(tmp_path, binary):
    views, out = write_colmap(tmp_path, binary=binary)
    ds = ColmapDataset(tmp_path)
    assert len(ds) == 5 and ds.resolution == (H, W)
    assert ds.centre.abs().max() < 1e-4  # cameras look at the origin already
    b = ds._batch(torch.arange(5))
    assert torch.allclose(b["mvp"], views.mvp, atol=1e-4)
    assert (b["img"][..., 3] - out[..., 3]).abs().max() < 1e-4


def test_colmap_rgba_without_masks_and_errors(tmp_path):
    write_colmap(tmp_path / "rgba", masks=False)
    assert len(ColmapDataset(tmp_path / "rgba")) == 5
    write_colmap(tmp_path / "radial", model="SIMPLE_RADIAL")
    with pytest.raises(DataError, match="SIMPLE_RADIAL.*image_undistorter"):
        ColmapDataset(tmp_path / "radial")
    write_colmap(tmp_path / "nomask", masks=True)
    for p in (tmp_path / "nomask" / "masks").iterdir():
        p.unlink()
    (tmp_path / "nomask" / "masks").rmdir()
    with pytest.raises(DataError, match="needs object masks"):
        ColmapDataset(tmp_path / "nomask")
    (tmp_path / "rgba" / "images" / "im2.png").unlink()
    with pytest.raises(MissingFileError, match="im2.png"):
        ColmapDataset(tmp_path / "rgba")


def test_colmap_trains_end_to_end(tmp_path):
    write_colmap(tmp_path / "scene", binary=True)
    cfg = {**TINY_FOLDER, "ref_mesh": str(tmp_path / "scene"), "out_dir": str(tmp_path / "out")}
    r = train_cli(cfg, tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (tmp_path / "out" / "mesh" / "mesh.obj").is_file()


def test_data_errors_through_the_cli(tmp_path):
    """A dataset without masks: one clear message, exit 1, no traceback, nothing in mesh/."""
    write_colmap(tmp_path / "scene", masks=True)
    for p in (tmp_path / "scene" / "masks").iterdir():
        p.unlink()
    (tmp_path / "scene" / "masks").rmdir()
    cfg = {"ref_mesh": str(tmp_path / "scene"), "iter": 2, "out_dir": str(tmp_path / "out")}
    r = train_cli(cfg, tmp_path)
    assert r.returncode == 1 and "needs object masks" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "out" / "mesh").exists()
