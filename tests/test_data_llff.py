"""LLFF loading: a dataset written in LLFF's layout from our own renders loads back to
the same cameras (recentred on the axes' focus point) and trains end to end."""

import json
import math

import numpy as np
import pytest
import torch
from _helpers import TINY_FOLDER, train_cli
from test_data_nerf import FOV, H, W, _scene

from nvdrec.data.llff import LLFFDataset, axes_focus_point
from nvdrec.errors import DataError
from nvdrec.io import linear_to_srgb, write_image
from nvdrec.render import RasterContext, render_mesh
from nvdrec.structures import camera as cam


def write_llff(folder, n=6, offset=(0.3, -0.2, 0.1)):
    """Views of a sphere centred at ``offset``, written as images/, masks/, poses_bounds.npy."""
    mesh, light = _scene()
    mesh = mesh.with_(v_pos=mesh.v_pos + torch.tensor(offset))
    views = cam.orbit_views(n, radius=3.0, fovy=FOV, resolution=(H, W))
    # aim the cameras at the offset centre
    shift = cam.translate(*(-torch.tensor(offset)).tolist())
    mv = views.mv @ shift
    views = cam.Cameras.from_mv(mv, cam.perspective(FOV, 1.0), (H, W))
    out = render_mesh(RasterContext(), mesh, views.mvp, views.campos, light, (H, W))[
        "shaded"
    ].detach()
    (folder / "images").mkdir(parents=True)
    (folder / "masks").mkdir()
    rows = []
    focal = 0.5 * H / math.tan(FOV / 2)
    for i in range(n):
        a = out[i, ..., 3:4]
        write_image(
            folder / "images" / f"img_{i:03d}.png",
            linear_to_srgb((out[i, ..., :3] / a.clamp(min=1e-6)).clamp(0, 1)),
            bit_depth=16,
        )
        write_image(folder / "masks" / f"img_{i:03d}.png", a, bit_depth=16)
        c2w = torch.linalg.inv(mv[i]).double()
        # OpenGL (right, up, back) -> LLFF (down, right, back)
        llff = torch.stack([-c2w[:3, 1], c2w[:3, 0], c2w[:3, 2], c2w[:3, 3]], -1)
        p = torch.cat([llff, torch.tensor([[H], [W], [focal]], dtype=torch.float64)], -1)
        rows.append(np.concatenate([p.numpy().reshape(-1), [0.5, 10.0]]))
    np.save(folder / "poses_bounds.npy", np.stack(rows))
    return views, out


def test_llff_cameras_recentred_and_images(tmp_path):
    views, out = write_llff(tmp_path)
    ds = LLFFDataset(tmp_path)
    # every camera looked at the offset point: recentring moves it to the origin
    assert torch.allclose(ds.centre.float(), torch.tensor([0.3, -0.2, 0.1]), atol=1e-4)
    b = ds._batch(torch.arange(len(ds)))
    c = b["mvp"] @ torch.tensor([0.0, 0.0, 0.0, 1.0])
    assert (c[:, :2] / c[:, 3:]).abs().max() < 1e-4  # the origin is at every image centre
    # same cameras as the renders, up to the recentring translation
    shifted = views.mvp @ cam.translate(0.3, -0.2, 0.1)
    assert torch.allclose(b["mvp"], shifted, atol=1e-4)
    assert (b["img"][..., 3] - out[..., 3]).abs().max() < 1e-4


def test_focus_point_least_squares():
    o = torch.tensor([[1.0, 0, 0], [0, 1, 0], [0, 0, 1]])
    p = axes_focus_point(o, -o)
    assert torch.allclose(p, torch.zeros(3, dtype=torch.float64), atol=1e-12)
    # one camera (or parallel axes): the point of the axis nearest the world origin
    p = axes_focus_point(torch.tensor([[1.0, 2.0, 3.0]]), torch.tensor([[0.0, 0.0, -1.0]]))
    assert torch.allclose(p, torch.tensor([1.0, 2.0, 0.0], dtype=torch.float64), atol=1e-9)
    par = axes_focus_point(
        torch.tensor([[1.0, 0, 5], [-1.0, 0, 5]]), torch.tensor([[0, 0, -1.0]] * 2)
    )
    assert torch.allclose(par, torch.zeros(3, dtype=torch.float64), atol=1e-9)


def test_llff_bad_inputs(tmp_path):
    write_llff(tmp_path, n=3)
    (tmp_path / "masks" / "img_002.png").unlink()
    with pytest.raises(DataError, match="2 masks for 3 images"):
        LLFFDataset(tmp_path)
    np.save(tmp_path / "poses_bounds.npy", np.zeros((2, 17)))
    with pytest.raises(DataError, match="3 images but poses_bounds.npy has 2"):
        LLFFDataset(tmp_path)


def test_llff_trains_end_to_end(tmp_path):
    write_llff(tmp_path / "scene", n=6)
    cfg = {**TINY_FOLDER, "ref_mesh": str(tmp_path / "scene"), "out_dir": str(tmp_path / "out")}
    r = train_cli(cfg, tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (tmp_path / "out" / "mesh" / "mesh.glb").is_file()
    for folder in ("dmtet_validate", "validate"):  # every photo is validated
        m = json.loads((tmp_path / "out" / folder / "metrics.json").read_text())
        assert m["views"] == 6, folder
