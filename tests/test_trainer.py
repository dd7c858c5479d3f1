"""End-to-end smoke tests of the reconstruction on a tiny built-in scene (CPU)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from _helpers import TINY, run_nvdrec

import nvdrec
from nvdrec.geometry import decimate, unwrap_uv, weld_vertices
from nvdrec.io import load_mesh, read_image
from nvdrec.render import bake_textures, dilate
from nvdrec.structures import Mesh
from nvdrec.train.passes import VISIBILITY_VIEWS, training_mvps
from nvdrec.train.trainer import Trainer


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "tiny"
    cfg = nvdrec.load_config({**TINY, "out_dir": str(out)})
    result = Trainer(cfg).fit()
    return out, result


def test_outputs_are_readable_as_the_umask_says(tiny_run):
    """Every output file has the mode of a plain new file (0o644 under umask 022), not
    the 0o600 of the temporary files it was written through."""
    import stat

    from nvdrec.io.files import file_mode

    out, _ = tiny_run
    files = [p for p in out.rglob("*") if p.is_file()]
    assert len(files) > 20
    modes = {str(p.relative_to(out)): oct(stat.S_IMODE(p.stat().st_mode)) for p in files}
    assert {m for m in modes.values()} == {oct(file_mode())}, modes


def test_outputs_follow_nvdiffrec_layout(tiny_run):
    out, result = tiny_run
    for rel in [
        "config.json",
        "img_dmtet_pass1_000000.png",
        "img_dmtet_pass1_000003.png",
        "img_mesh_pass_000005.png",
        "dmtet_mesh/mesh.obj",
        "dmtet_mesh/mesh.mtl",
        "dmtet_mesh/texture_kd.png",
        "dmtet_mesh/texture_ks.png",
        "dmtet_mesh/texture_n.png",
        "dmtet_mesh/probe.hdr",
        "dmtet_validate/metrics.txt",
        "dmtet_validate/metrics.json",
        "mesh/mesh.obj",
        "mesh/mesh.mtl",
        "mesh/texture_kd.png",
        "mesh/texture_ks.png",
        "mesh/texture_n.png",
        "mesh/probe.hdr",
        "mesh/mesh.glb",
        "validate/metrics.txt",
        "validate/metrics.json",
        "validate/val_000000_opt.png",
        "validate/val_000000_ref.png",
    ]:
        assert (out / rel).is_file(), rel
    assert not list(out.rglob("*.tmp")), "temporary files left behind"
    mesh = load_mesh(out / "mesh" / "mesh.obj")
    assert mesh.num_triangles > 0 and mesh.v_tex is not None
    assert read_image(out / "mesh" / "texture_kd.png").shape == (64, 64, 3)
    assert read_image(out / "mesh" / "probe.hdr").shape == (16, 32, 3)
    lines = (out / "validate" / "metrics.txt").read_text().splitlines()
    assert (
        lines[0] == "ID, MSE, PSNR, SSIM" and lines[-1].startswith("AVERAGES:") and len(lines) == 4
    )
    m = json.loads((out / "validate" / "metrics.json").read_text())
    assert m["views"] == 2 and 5 < m["psnr"] < 60 and result["metrics"] == m
    m1 = json.loads((out / "dmtet_validate" / "metrics.json").read_text())
    assert m1["views"] == 2 and 5 < m1["psnr"] < 60 and result["metrics_pass1"] == m1
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["iter"] == 6 and cfg["out_dir"] == str(out)


def test_glb_structure(tiny_run):
    import pygltflib

    out, _ = tiny_run
    g = pygltflib.GLTF2().load(str(out / "mesh" / "mesh.glb"))
    prim = g.meshes[0].primitives[0]
    for attr in ("POSITION", "NORMAL", "TANGENT", "TEXCOORD_0"):
        assert getattr(prim.attributes, attr) is not None, attr
    n = g.accessors[prim.attributes.POSITION].count
    assert g.accessors[prim.attributes.TEXCOORD_0].count == n
    assert g.accessors[prim.attributes.TANGENT].type == "VEC4"
    assert g.accessors[prim.indices].count % 3 == 0
    mat = g.materials[0]
    assert mat.pbrMetallicRoughness.baseColorTexture is not None
    assert mat.pbrMetallicRoughness.metallicRoughnessTexture is not None
    assert mat.occlusionTexture is not None and mat.normalTexture is not None
    assert len(g.images) == 3 and all(im.mimeType == "image/png" for im in g.images)


def test_metallic_roughness_channel_order(tmp_path):
    """glTF wants R = 1 - occlusion, G = roughness, B = metallic."""
    import pygltflib

    from nvdrec.io.gltf import save_glb
    from nvdrec.structures import Material, Mesh, Texture2D

    v = torch.tensor([[0.0, 0, 0], [1, 0, 0], [0, 1, 0]])
    f = torch.tensor([[0, 1, 2]])
    mesh = Mesh(v, f, v_tex=torch.tensor([[0.0, 0], [1, 0], [0, 1]]), t_tex_idx=f.clone())
    ks = torch.tensor([0.2, 0.6, 0.9]).expand(4, 4, 3).clone()
    mesh.material = Material("m", kd=Texture2D(torch.full((4, 4, 3), 0.5)), ks=Texture2D(ks))
    path = save_glb(mesh, tmp_path / "m.glb")
    g = pygltflib.GLTF2().load(str(path))
    blob = g.binary_blob()
    tex = g.textures[g.materials[0].pbrMetallicRoughness.metallicRoughnessTexture.index]
    view = g.bufferViews[g.images[tex.source].bufferView]
    png = blob[view.byteOffset : view.byteOffset + view.byteLength]
    p = tmp_path / "orm.png"
    p.write_bytes(png)
    orm = read_image(p)[0, 0]
    assert np.allclose(orm, [0.8, 0.6, 0.9], atol=1 / 255)


def test_bake_constant_material_and_dilation():
    from nvdrec.data.demo import demo_mesh

    mesh = unwrap_uv(demo_mesh(24))

    def const(p):
        n = len(p)
        return (
            torch.tensor([0.2, 0.4, 0.6]).expand(n, 3),
            torch.tensor([0.0, 0.5, 1.0]).expand(n, 3),
            torch.tensor([0.0, 0.0, 1.0]).expand(n, 3),
        )

    mat, mask = bake_textures(mesh, const, (64, 64), backend="torch")
    assert 0.05 < mask.float().mean() < 1.0
    kd = mat.kd.image()
    assert torch.allclose(
        kd, torch.tensor([0.2, 0.4, 0.6]).expand(64, 64, 3), atol=1e-6
    )  # every texel filled
    img = torch.zeros(8, 8, 1)
    m = torch.zeros(8, 8, dtype=torch.bool)
    img[2, 2], m[2, 2] = 5.0, True
    out = dilate(img, m, iterations=2)
    assert out[2, 4, 0] == 5.0 and out[0, 0, 0] == 5.0  # neighbours, then the global mean


def test_empty_mesh_is_reported_before_unwrapping():
    from nvdrec.errors import DataError
    from nvdrec.structures import Mesh

    with pytest.raises(DataError, match="pass 1 collapsed"):
        unwrap_uv(Mesh(torch.zeros(0, 3), torch.zeros(0, 3, dtype=torch.long)))


def test_api_and_cli_produce_the_same_outputs(tmp_path, tiny_run):
    out_api, _ = tiny_run
    cfg_file = tmp_path / "tiny.json"
    cfg_file.write_text(json.dumps(TINY))
    out_cli = tmp_path / "cli"
    # CPU float sums depend on the thread count: the subprocess gets this process's
    threads = str(torch.get_num_threads())
    r = subprocess.run(
        [sys.executable, "-m", "nvdrec", "train", str(cfg_file), "--out-dir", str(out_cli)],
        capture_output=True,
        text=True,
        env=dict(os.environ, OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads),
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Results in" in r.stdout
    assert (out_cli / "mesh" / "mesh.obj").read_text() == (
        out_api / "mesh" / "mesh.obj"
    ).read_text()
    a = json.loads((out_cli / "validate" / "metrics.json").read_text())
    b = json.loads((out_api / "validate" / "metrics.json").read_text())
    assert a == pytest.approx(b)


def test_cli_errors_are_clean(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"iter": 10, "learnig_rate": 0.1}')
    r = run_nvdrec("train", str(bad))
    assert (
        r.returncode == 2
        and "did you mean 'learning_rate'" in r.stderr
        and "Traceback" not in r.stderr
    )
    r = run_nvdrec("train", str(tmp_path / "nope.json"))
    assert r.returncode == 2 and "does not exist" in r.stderr
    missing = tmp_path / "m.json"
    missing.write_text(
        json.dumps({"ref_mesh": "no_such.obj", "envmap": "x.hdr", "out_dir": str(tmp_path / "o")})
    )
    r = run_nvdrec("train", str(missing))
    assert r.returncode == 2 and "ref_mesh" in r.stderr
    assert not (tmp_path / "o" / "mesh").exists()
    r = run_nvdrec("export", str(tmp_path))
    assert r.returncode == 2 and "mesh.obj" in r.stderr


def test_export_command(tmp_path, tiny_run):
    out, _ = tiny_run
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "nvdrec",
            "export",
            str(out),
            "--format",
            "glb",
            "--output",
            str(tmp_path / "x.glb"),
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "x.glb").stat().st_size > 1000


@pytest.mark.extras
def test_export_usd(tmp_path, tiny_run):
    """`nvdrec export RUN --format usd` packages the baked textures into a .usdz."""
    pytest.importorskip("pxr")
    import zipfile

    from pxr import Usd, UsdGeom

    from nvdrec.cli import main

    out, _ = tiny_run
    assert main(["export", str(out), "--format", "usd", "--output", str(tmp_path)]) == 0
    path = tmp_path / "mesh.usdz"
    names = zipfile.ZipFile(path).namelist()
    assert {"texture_kd.png", "texture_orm.png", "texture_n.png"} <= set(names)
    stage = Usd.Stage.Open(str(path))
    geo = UsdGeom.Mesh(stage.GetPrimAtPath("/Root/Mesh"))
    ours = load_mesh(out / "mesh" / "mesh.obj")
    assert len(geo.GetPointsAttr().Get()) == len(ours.v_pos)


def test_flexicubes_trains_end_to_end(tmp_path):
    """isosurface "flexicubes": pass 1 on the cube grid (dmtet_grid cubes per axis), the
    final two-triangles-per-quad surface baked and refined, outputs as for DMTet."""
    out = tmp_path / "fc"
    cfg = nvdrec.load_config(
        {**TINY, "isosurface": "flexicubes", "dmtet_grid": 16, "out_dir": str(out)}
    )
    tr = Trainer(cfg)
    result = tr.fit()
    assert result["metrics"]["psnr"] > 10
    mesh = load_mesh(out / "mesh" / "mesh.obj")
    assert mesh.num_triangles > 100 and (out / "mesh" / "mesh.glb").is_file()
    assert (out / "dmtet_mesh" / "mesh.obj").is_file()


def test_bob_flexi_config_runs(tmp_path, shared_data):
    """nvdiffrec's bob_flexi.json, unchanged but for size overrides, a few iterations."""
    import shutil

    cfg_path = shared_data / "nvdiffrec-configs" / "bob_flexi.json"
    data = json.loads(cfg_path.read_text())
    assert data["isosurface"] == "flexicubes" and data["dmtet_grid"] == 48
    bob = tmp_path / "data" / "bob"
    shutil.copytree(shared_data / "meshes" / "bob", bob)
    envmap = tmp_path / "data" / "irrmaps" / "aerodynamics_workshop_2k.hdr"
    envmap.parent.mkdir(parents=True)
    shutil.copy(shared_data / "envmaps" / "royal_esplanade_1k.hdr", envmap)
    (tmp_path / "bob_flexi.json").write_text(json.dumps(data))
    r = subprocess.run(
        [sys.executable, "-m", "nvdrec", "train", "bob_flexi.json", "--iter", "3"]
        + ["--train-res", "64", "--texture-res", "64", "--batch", "1", "--light-res", "32"]
        + ["--progress", "none"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert list(tmp_path.rglob("bob_flexi/mesh/mesh.obj")), r.stdout[-2000:]


def test_demo_config_is_packaged():
    from importlib import resources

    data = json.loads(resources.files("nvdrec").joinpath("configs/demo.json").read_text())
    cfg = nvdrec.load_config(data)
    assert cfg.iter > 0 and Path(cfg.out_dir).name == "demo"


def _gltf_validator():
    """Command prefix that runs tests/gltf_validate.js, or None if node/gltf-validator lack."""
    import shutil

    node = shutil.which("node")
    if node is None:
        return None
    probe = subprocess.run([node, "-e", "require.resolve('gltf-validator')"], capture_output=True)
    return (
        [node, str(Path(__file__).parent / "gltf_validate.js")] if probe.returncode == 0 else None
    )


@pytest.mark.extras
def test_glb_passes_khronos_validator(tiny_run):
    cmd = _gltf_validator()
    if cmd is None:
        pytest.skip(
            "node with the gltf-validator package (npm install gltf-validator) is not available"
        )
    out, _ = tiny_run
    r = subprocess.run([*cmd, str(out / "mesh" / "mesh.glb")], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert json.loads(r.stdout)["errors"] == 0


def test_lpips_reported_when_package_present(tmp_path, monkeypatch):
    """With an ``lpips`` package importable, metrics.json gains its mean over the views
    (here a stand-in module whose network returns the mean absolute difference)."""
    import types

    class FakeLPIPS(torch.nn.Module):
        def __init__(self, net, verbose):
            super().__init__()
            assert net == "alex"

        def forward(self, a, b):
            assert a.shape[1] == 3 and a.min() >= -1 and a.max() <= 1
            return (a - b).abs().mean().reshape(1, 1, 1, 1)

    monkeypatch.setitem(sys.modules, "lpips", types.SimpleNamespace(LPIPS=FakeLPIPS))
    cfg = nvdrec.load_config({**TINY, "iter": 2, "out_dir": str(tmp_path / "run")})
    metrics = Trainer(cfg).fit()["metrics"]
    on_disk = json.loads((tmp_path / "run" / "validate" / "metrics.json").read_text())
    assert 0 < metrics["lpips"] < 2 and on_disk["lpips"] == metrics["lpips"]


def test_preview_shows_display_extras(tmp_path):
    """`display` adds tiles to the preview row: kd, ks, normal views and the light."""
    extras = [{"bsdf": "kd"}, {"bsdf": "ks"}, {"bsdf": "normal"}, {"latlong": True}]
    cfg = nvdrec.load_config(
        {**TINY, "iter": 2, "validate": False, "display": extras, "out_dir": str(tmp_path / "r")}
    )
    Trainer(cfg).fit()
    for name in ("img_dmtet_pass1_000000.png", "img_mesh_pass_000001.png"):
        img = read_image(tmp_path / "r" / name)
        h, w = TINY["train_res"]
        assert img.shape[:2] == (h, w * (2 + len(extras))), (name, img.shape)
        tiles = [img[:, i * w : (i + 1) * w] for i in range(2 + len(extras))]
        assert all(float(t.std()) > 0 for t in tiles[2:]), name  # each extra shows something
        assert not np.allclose(tiles[2], tiles[4])  # kd and normal views differ


def test_nan_loss_stops_before_the_optimizer_step(tmp_path, monkeypatch):
    """A non-finite loss stops the run with a NumericalError naming the pass and the
    iteration, before the optimizer applies that iteration's gradients; the pass writes no
    mesh."""
    from nvdrec.errors import NumericalError
    from nvdrec.train import loop

    orig_losses = loop.losses

    def losses(cfg, buffers, target, bg, it):
        img, reg = orig_losses(cfg, buffers, target, bg, it)
        return (img * float("nan") if it >= 2 else img), reg

    steps = []
    orig_step = torch.optim.Adam.step

    def step(self, *a, **k):
        steps.append(1)
        return orig_step(self, *a, **k)

    monkeypatch.setattr(loop, "losses", losses)
    monkeypatch.setattr(torch.optim.Adam, "step", step)
    cfg = nvdrec.load_config({**TINY, "validate": False, "out_dir": str(tmp_path / "r")})
    with pytest.raises(NumericalError, match="dmtet_pass1: the loss became nan at iteration 2"):
        Trainer(cfg).fit()
    assert len(steps) == 2  # iterations 0 and 1 only
    assert not (tmp_path / "r" / "dmtet_mesh").exists()


@pytest.mark.parametrize("camera_space", [False, True])
def test_camera_space_light_rotates_lookups_with_the_views(tmp_path, monkeypatch, camera_space):
    """`camera_space_light: true` sets the views' world-to-camera matrices on the light
    for every training and validation render; by default the light stays in world space."""
    from nvdrec.train import report as R

    seen = []
    orig = R.render_mesh

    def spy(ctx, mesh, mvp, campos, lgt, *a, **k):
        seen.append((None if lgt.mtx is None else lgt.mtx.clone(), mvp.shape[0]))
        return orig(ctx, mesh, mvp, campos, lgt, *a, **k)

    monkeypatch.setattr(R, "render_mesh", spy)  # training, preview and validation renders
    cfg = nvdrec.load_config(
        {
            **TINY,
            "iter": 2,
            "batch": 2,
            "camera_space_light": camera_space,
            "out_dir": str(tmp_path / "r"),
        }
    )
    Trainer(cfg).fit()
    assert len(seen) >= 4 + 1  # 2 passes x 2 iterations, plus validation
    for mtx, b in seen:
        if not camera_space:
            assert mtx is None
            continue
        assert mtx is not None and mtx.shape == (b, 4, 4)
        rot = mtx[:, :3, :3]
        assert_close = torch.testing.assert_close
        assert_close(rot @ rot.transpose(1, 2), torch.eye(3).expand(b, 3, 3), atol=1e-5, rtol=0)


def test_display_res_sets_the_validation_resolution(tmp_path, capsys):
    """display_res: rendered (synthetic) validation views use it; with an image dataset,
    where it has no effect, a note says so instead of ignoring it silently."""
    from nvdrec.train.trainer import unimplemented_settings

    assert unimplemented_settings(nvdrec.load_config(dict(TINY))) == []
    assert unimplemented_settings(nvdrec.load_config({**TINY, "custom_mip": True})) == []
    folder = nvdrec.load_config({**TINY, "ref_mesh": str(tmp_path), "display_res": [16, 16]})
    lines = unimplemented_settings(folder)
    assert len(lines) == 1 and "'display_res': [16, 16]" in lines[0]
    cfg = {**TINY, "iter": 1, "validate_views": 1, "display_res": [32, 40]}
    Trainer(nvdrec.load_config({**cfg, "out_dir": str(tmp_path / "r")})).fit()
    assert "note:" not in capsys.readouterr().out
    img = read_image(tmp_path / "r" / "validate" / "val_000000_opt.png")
    assert img.shape[:2] == (32, 40)
    h, w = TINY["train_res"]
    assert read_image(tmp_path / "r" / "img_mesh_pass_000000.png").shape[:2] == (h, 2 * w)


def test_cleanup_unseen_and_decimation_after_pass_1(tmp_path):
    """cleanup_unseen: the pass-1 surface is rasterised from the training cameras before
    the clean-up; decimate_triangles: then simplified to the budget. Both are reported in
    run.json, the final mesh has the budget's triangles, and the run ends."""
    out = tmp_path / "unseen"
    over = {"iter": 3, "cleanup_unseen": True, "decimate_triangles": 300}
    cfg = nvdrec.load_config({**TINY, **over, "out_dir": str(out)})
    tr = Trainer(cfg)
    assert training_mvps(tr).shape == (VISIBILITY_VIEWS, 4, 4)
    tr.fit()
    run = json.loads((out / "run.json").read_text())
    assert run["cleanup"]["unseen_faces"] >= 0
    # the time outside the iterations, stage by stage, within the run's seconds
    stages = run["stages"]
    for key in ("data loaded", "surface extraction", "visibility from the training views"):
        assert key in stages, sorted(stages)
    for key in ("mesh clean-up", "unwrap", "export"):
        assert key in stages, sorted(stages)
    assert any(k.startswith("bake ") for k in stages)
    assert all(v >= 0 for v in stages.values())
    fit = sum(v for k, v in stages.items() if k != "data loaded")  # loading: before fit()
    assert fit < run["seconds"]
    n = run["cleanup"]["decimated_faces"]
    assert run["cleanup"]["faces_out"] > 300 and 298 <= n  # a collapse removes 2
    faces = [ln for ln in (out / "mesh" / "mesh.obj").read_text().splitlines() if ln[:2] == "f "]
    assert len(faces) == n
    if n > 300:  # allowed only where no valid collapse is left (decimate's contract)
        m = load_mesh(out / "mesh" / "mesh.obj")
        v, f, _ = weld_vertices(m.v_pos, m.t_pos_idx)  # the OBJ splits vertices at UV seams
        assert decimate(Mesh(v, f), 300)[0].num_triangles == n


def test_out_dir_that_cannot_be_a_folder_is_a_config_error(tmp_path):
    """Checked before any data loads, with the folder named (not a traceback at the end)."""
    from nvdrec.errors import ConfigError

    f = tmp_path / "afile"
    f.write_text("x")
    for out, msg in ((f, "is a file"), (f / "sub", "cannot create")):
        cfg = nvdrec.load_config({**TINY, "out_dir": str(out)})
        with pytest.raises(ConfigError, match=f"out_dir.*{msg}"):
            Trainer(cfg)
