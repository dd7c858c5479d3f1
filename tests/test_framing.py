"""Automatic framing: the visual hull finds an off-centre object and its size."""

import json
import math

import torch
from _helpers import TINY_FOLDER, train_cli
from test_data_nerf import FOV, H, W, _scene

from nvdrec.data.framing import auto_frame
from nvdrec.data.nerf import NeRFDataset
from nvdrec.io import linear_to_srgb, write_image
from nvdrec.render import RasterContext, render_mesh
from nvdrec.structures import camera as cam

OFFSET = torch.tensor([0.3, -0.2, 0.1])


def _write_offset_scene(folder, n=8):
    mesh, light = _scene()  # sphere of radius 0.7
    mesh = mesh.with_(v_pos=mesh.v_pos + OFFSET)
    views = cam.orbit_views(n, radius=3.0, fovy=FOV, resolution=(H, W))  # aimed at the origin
    out = render_mesh(RasterContext(), mesh, views.mvp, views.campos, light, (H, W))[
        "shaded"
    ].detach()
    to_blender = torch.linalg.inv(cam.blender_to_opengl_world())
    (folder / "train").mkdir(parents=True)
    frames = []
    for i in range(n):
        a = out[i, ..., 3:4]
        img = torch.cat([linear_to_srgb((out[i, ..., :3] / a.clamp(min=1e-6)).clamp(0, 1)), a], -1)
        write_image(folder / "train" / f"r_{i}.png", img, bit_depth=16)
        c2w = to_blender @ torch.linalg.inv(views.mv[i])
        frames.append({"file_path": f"./train/r_{i}", "transform_matrix": c2w.tolist()})
    angle = 2 * math.atan(math.tan(FOV / 2) * W / H)
    (folder / "transforms_train.json").write_text(
        json.dumps({"camera_angle_x": angle, "frames": frames})
    )


def test_visual_hull_finds_centre_and_size(tmp_path):
    _write_offset_scene(tmp_path)
    ds = NeRFDataset(tmp_path, "train")
    before = (ds.proj[0] @ ds.mv[0]) @ torch.cat([OFFSET, torch.ones(1)])
    scale, shift = auto_frame(ds, margin=1.0)
    assert (shift - OFFSET).abs().max() < 0.1, shift
    assert 1.35 < scale < 1.75, scale  # diameter 1.4; a hull of 8 views is a bit larger
    # the cameras moved with the world: the new origin is where the object centre was
    after = (ds.proj[0] @ ds.mv[0]) @ torch.tensor([0.0, 0.0, 0.0, 1.0])
    ndc_b, ndc_a = before[:2] / before[3], after[:2] / after[3]
    assert (ndc_a - ndc_b).abs().max() < 0.05


def test_auto_framing_end_to_end(tmp_path):
    _write_offset_scene(tmp_path / "scene", n=6)
    cfg = {**TINY_FOLDER, "ref_mesh": str(tmp_path / "scene"), "mesh_scale": "auto"}
    r = train_cli({**cfg, "validate": False, "out_dir": str(tmp_path / "out")}, tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "automatic framing" in r.stdout
    saved = json.loads((tmp_path / "out" / "config.json").read_text())
    assert isinstance(saved["mesh_scale"], float) and saved["mesh_scale"] > 1.0
    assert (tmp_path / "out" / "mesh" / "mesh.obj").is_file()
