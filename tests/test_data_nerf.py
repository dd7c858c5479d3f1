"""NeRF-synthetic loading: a dataset written in that format from our own renders loads
back to the same cameras and images, and trains end to end."""

import json
import math

import numpy as np
import pytest
import torch
from _helpers import TINY_FOLDER, sphere, train_cli

from nvdrec.data.nerf import NeRFDataset
from nvdrec.errors import DataError, MissingFileError
from nvdrec.io import linear_to_srgb, write_image
from nvdrec.render import EnvironmentLight, RasterContext, render_mesh
from nvdrec.structures import Material, Mesh, Texture2D, auto_normals
from nvdrec.structures import camera as cam

H = W = 32
FOV = math.radians(40)


def _scene():
    v, tri = sphere(12, 24, radius=0.7)
    mesh = auto_normals(Mesh(v, tri.long()))
    mesh.v_tex, mesh.t_tex_idx = torch.zeros(len(v), 2), tri.long()
    mesh.material = Material("m", kd=Texture2D([0.7, 0.3, 0.2]), ks=Texture2D([0.0, 0.5, 0.0]))
    light = EnvironmentLight(torch.ones(6, 16, 16, 3))
    light.build_mips()
    return mesh, light


def write_nerf(folder, n=6, split="train", per_frame_focal=False):
    """Render views and write them as a NeRF-synthetic split (Blender world, Z up)."""
    mesh, light = _scene()
    views = cam.orbit_views(n, radius=3.0, fovy=FOV, resolution=(H, W))
    out = render_mesh(RasterContext(), mesh, views.mvp, views.campos, light, (H, W))["shaded"]
    to_blender = torch.linalg.inv(cam.blender_to_opengl_world())
    frames = []
    (folder / split).mkdir(parents=True, exist_ok=True)
    for i in range(n):
        c2w = to_blender @ torch.linalg.inv(views.mv[i])
        rgba = out[i].detach()
        straight = rgba[..., :3] / rgba[..., 3:4].clamp(min=1e-6)
        img = torch.cat([linear_to_srgb(straight.clamp(0, 1)), rgba[..., 3:4]], -1)
        write_image(folder / split / f"r_{i}.png", img, bit_depth=16)
        fr = {"file_path": f"./{split}/r_{i}", "transform_matrix": c2w.tolist()}
        if per_frame_focal:
            f = 0.5 * H / math.tan(FOV / 2)
            fr.update({"fl_x": f, "fl_y": f, "cx": W / 2, "cy": H / 2})
        frames.append(fr)
    data = {"frames": frames}
    if not per_frame_focal:
        data["camera_angle_x"] = 2 * math.atan(math.tan(FOV / 2) * W / H)
    (folder / f"transforms_{split}.json").write_text(json.dumps(data))
    return views, out


@pytest.mark.parametrize("per_frame", [False, True])
def test_roundtrip_cameras_and_images(tmp_path, per_frame):
    views, imgs = write_nerf(tmp_path, per_frame_focal=per_frame)
    ds = NeRFDataset(tmp_path, "train")
    assert len(ds) == 6 and ds.resolution == (H, W)
    b = ds._batch(torch.arange(6))
    assert torch.allclose(b["mvp"], views.mvp, atol=1e-4)
    assert torch.allclose(b["campos"], views.campos, atol=1e-4)
    # 16-bit sRGB files: differences are quantisation (and division by small alpha)
    err = (b["img"] - imgs.detach()).abs()
    assert err[..., 3].max() < 1e-4 and err[..., :3].max() < 2e-3


def test_world_point_projects_to_expected_pixel(tmp_path):
    write_nerf(tmp_path)
    ds = NeRFDataset(tmp_path, "train")
    b = ds._batch(torch.arange(1))
    # the origin (sphere centre) is looked at: it projects to the image centre
    c = b["mvp"][0] @ torch.tensor([0.0, 0.0, 0.0, 1.0])
    assert abs(c[0] / c[3]) < 1e-4 and abs(c[1] / c[3]) < 1e-4
    # Blender +Z (up) is our +Y: a point above the centre lands in an upper row (row < H/2)
    p = b["mvp"][0] @ torch.tensor([0.0, 0.5, 0.0, 1.0])
    row = (p[1] / p[3] + 1) / 2 * H
    assert row < H / 2


def test_resize_to_train_res(tmp_path):
    write_nerf(tmp_path)
    ds = NeRFDataset(tmp_path, "train", resolution=(16, 16))
    assert ds.resolution == (16, 16) and ds.images.shape == (6, 16, 16, 4)
    full = NeRFDataset(tmp_path, "train")
    # area downscale: means are preserved
    assert torch.allclose(ds.images.mean((1, 2)), full.images.mean((1, 2)), atol=1e-4)
    # intrinsics follow: the projection matrix does not depend on the image size here
    assert torch.allclose(ds.proj, full.proj, atol=1e-5)


def test_bad_inputs_name_the_file(tmp_path):
    write_nerf(tmp_path, n=2)
    (tmp_path / "train" / "r_1.png").unlink()
    with pytest.raises(MissingFileError, match=r"transforms_train.json frame 1.*r_1"):
        NeRFDataset(tmp_path, "train")
    write_image(tmp_path / "train" / "r_1.png", np.zeros((H, W, 3), np.float32))
    with pytest.raises(DataError, match="no alpha"):
        NeRFDataset(tmp_path, "train")
    (tmp_path / "transforms_train.json").write_text('{"frames": []}')
    with pytest.raises(DataError, match="no frames"):
        NeRFDataset(tmp_path, "train")
    with pytest.raises(MissingFileError, match="transforms_train.json"):
        NeRFDataset(tmp_path / "nothing", "train")


def test_nerf_folder_trains_end_to_end(tmp_path):
    data = tmp_path / "scene"
    write_nerf(data, n=6)
    write_nerf(data, n=3, split="test")
    cfg = {**TINY_FOLDER, "iter": 4, "train_res": [32, 32], "ref_mesh": str(data)}
    r = train_cli({**cfg, "out_dir": str(tmp_path / "out")}, tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (tmp_path / "out" / "mesh" / "mesh.glb").is_file()
    # nvdiffrec's protocol: every test frame, after each pass (validate_views counts only
    # orbit views of a reference mesh)
    for folder in ("dmtet_validate", "validate"):
        m = json.loads((tmp_path / "out" / folder / "metrics.json").read_text())
        assert m["views"] == 3, folder
        rows = (tmp_path / "out" / folder / "metrics.txt").read_text().splitlines()
        assert len(rows) == 3 + 2, rows  # header, one row per view, averages


def test_memory_estimate_stops_an_impossible_load(tmp_path, monkeypatch):
    """At the first image the loader knows count x size: when that cannot fit it stops
    with the numbers and the key to change, instead of being killed by the OOM killer."""
    from nvdrec.data import memory as memory_mod

    write_nerf(tmp_path, n=6)
    monkeypatch.setattr(memory_mod, "available_memory", lambda device: 1 << 30)
    with pytest.raises(DataError, match=r"6 images at 4096x4096.*lower 'train_res'"):
        NeRFDataset(tmp_path, "train", resolution=(4096, 4096))
    assert len(NeRFDataset(tmp_path, "train", resolution=(64, 64))) == 6  # 0.1 MB: fine
    monkeypatch.undo()
    free = memory_mod.available_memory("cpu")
    assert free is None or free > 0
