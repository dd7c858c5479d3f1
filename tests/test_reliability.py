"""Hardening: files as the umask says, clear errors instead of tracebacks, no lost runs."""

import errno
import json
import os
import stat
import subprocess
import sys

import numpy as np
import pytest
from _helpers import TINY as TRAINER_TINY
from _helpers import run_nvdrec

import nvdrec
from nvdrec.errors import ConfigError, OutputError
from nvdrec.io.files import atomic_write_bytes, file_mode
from nvdrec.train.runfolder import RunFolder, earlier_run
from nvdrec.train.trainer import Trainer


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_atomic_writes_honour_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        assert file_mode() == 0o666 & ~umask
        atomic_write_bytes(tmp_path / "a.bin", b"x")
        plain = tmp_path / "plain.bin"
        plain.write_bytes(b"x")
    finally:
        os.umask(old)
    got = stat.S_IMODE((tmp_path / "a.bin").stat().st_mode)
    assert got == stat.S_IMODE(plain.stat().st_mode) == 0o666 & ~umask


# ------------------------------------------------------------------ one run per folder

# test_trainer's tiny scene, smaller still, with checkpoints every 2 iterations
TINY = {
    **TRAINER_TINY,
    "iter": 4,
    "train_res": [32, 32],
    "texture_res": [32, 32],
    "dmtet_grid": 16,
    "save_interval": 0,
    "validate_views": 1,
    "checkpoint_interval": 2,
}


def test_a_live_run_locks_its_folder(tmp_path):
    a = RunFolder(tmp_path / "run")
    a.claim()
    with pytest.raises(ConfigError, match="another nvdrec run is writing into"):
        RunFolder(tmp_path / "run").claim()
    with pytest.raises(ConfigError, match="another nvdrec run"):  # also through Trainer
        Trainer(nvdrec.load_config({**TINY, "out_dir": str(tmp_path / "run")}))
    a.release()
    b = RunFolder(tmp_path / "run")
    b.claim()
    b.release()


def test_a_killed_run_leaves_no_stale_lock(tmp_path):
    code = (
        "import os, signal, sys; from nvdrec.train.runfolder import RunFolder; "
        f"RunFolder({str(tmp_path / 'run')!r}).claim(); print('held', flush=True); "
        "os.kill(os.getpid(), signal.SIGKILL)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "held" in r.stdout and r.returncode == -9
    assert (tmp_path / "run" / ".nvdrec.lock").exists()
    f = RunFolder(tmp_path / "run")
    f.claim()  # the OS dropped the dead process's lock
    f.release()


def _fake_run(folder, finished=True):
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"ref_mesh": "bob.obj", "demo_grid": 96}))
    (folder / "img_dmtet_pass1_000099.png").write_bytes(b"old")
    (folder / "checkpoints").mkdir()
    (folder / "checkpoints" / "mesh_pass_000400.pt").write_bytes(b"old")
    if finished:
        (folder / "mesh").mkdir()
        (folder / "mesh" / "mesh.obj").write_text("v 0 0 0\n")
        (folder / "run.json").write_text("{}")
    (folder / "notes.txt").write_text("the user's own file")


def test_a_folder_with_another_runs_results_is_refused_or_replaced(tmp_path):
    done, stopped = tmp_path / "done", tmp_path / "stopped"
    _fake_run(done)
    _fake_run(stopped, finished=False)
    assert "finished" in earlier_run(done) and "interrupted" in earlier_run(stopped)
    assert earlier_run(tmp_path / "nothing") is None
    with pytest.raises(ConfigError, match=r"holds the results of a finished run.*--overwrite"):
        Trainer(nvdrec.load_config({**TINY, "out_dir": str(done)}))
    with pytest.raises(ConfigError, match=r"interrupted run \(checkpoint mesh_pass.*--resume"):
        RunFolder(stopped).claim()
    before = sorted(p.name for p in done.rglob("*"))
    assert "run.json" in before  # a refusal deletes nothing
    # a run that stopped before any result or checkpoint: its config and previews go
    early = tmp_path / "early"
    early.mkdir()
    (early / "config.json").write_text("{}")
    (early / "img_dmtet_pass1_000000.png").write_bytes(b"x")
    assert earlier_run(early) is None
    f = RunFolder(early)
    f.claim()
    f.release()
    assert f.replaced and sorted(p.name for p in early.iterdir()) == [".nvdrec.lock"]
    f = RunFolder(done, overwrite=True)
    f.claim()
    f.release()
    assert f.replaced and sorted(p.name for p in done.iterdir()) == [".nvdrec.lock", "notes.txt"]
    # the demo replaces an earlier demo run only
    _fake_run(tmp_path / "d1")
    with pytest.raises(ConfigError, match="--overwrite"):
        RunFolder(tmp_path / "d1", overwrite="demo").claim()
    _fake_run(tmp_path / "d2")
    (tmp_path / "d2" / "config.json").write_text(json.dumps({"ref_mesh": None, "demo_grid": 80}))
    f = RunFolder(tmp_path / "d2", overwrite="demo")
    f.claim()
    f.release()
    assert not (tmp_path / "d2" / "run.json").exists()


def test_cli_refuses_a_finished_folder_and_overwrite_replaces_it(tmp_path):
    from nvdrec.cli import main

    _fake_run(tmp_path / "done")
    cfg = tmp_path / "tiny.json"
    cfg.write_text(json.dumps({**TINY, "iter": 2}))
    args = ["train", str(cfg), "--out-dir", str(tmp_path / "done"), "--device", "cpu"]
    assert main(args) == ConfigError.exit_code
    assert (tmp_path / "done" / "img_dmtet_pass1_000099.png").exists()
    assert main([*args, "--overwrite"]) == 0
    assert not (tmp_path / "done" / "img_dmtet_pass1_000099.png").exists()
    assert (tmp_path / "done" / "mesh" / "mesh.glb").is_file()
    assert (tmp_path / "done" / "notes.txt").is_file()


# ------------------------------------------------------------------ failed writes
def _enospc(*_a, **_k):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_failed_checkpoint_and_pass1_writes_do_not_end_the_run(tmp_path, monkeypatch, capsys):
    import nvdrec.train.checkpoint as ckpt
    from nvdrec.train.report import Reporter

    real_export = Reporter.export

    def export(self, mesh, lgt, folder, glb):
        if folder.name == "dmtet_mesh":
            _enospc()
        return real_export(self, mesh, lgt, folder, glb)

    monkeypatch.setattr(ckpt.torch, "save", _enospc)
    monkeypatch.setattr(Reporter, "export", export)
    out = tmp_path / "run"
    result = Trainer(nvdrec.load_config({**TINY, "out_dir": str(out)})).fit()
    err = capsys.readouterr().err
    assert "checkpoint dmtet_pass1 iteration 2 not written" in err
    assert "pass-1 mesh was not written" in err and "No space left" in err
    assert (out / "mesh" / "mesh.obj").is_file() and result["metrics"]["psnr"] > 5
    assert not list(out.rglob("*.pt")) and not list(out.rglob("*.tmp"))  # nothing half-written


def test_failed_final_export_checkpoints_and_resume_only_exports(tmp_path, monkeypatch, capsys):
    from nvdrec.train.report import Reporter

    real_export = Reporter.export
    out = tmp_path / "run"
    cfg = nvdrec.load_config({**TINY, "out_dir": str(out)})

    def export(self, mesh, lgt, folder, glb):
        if folder.name == "mesh":
            _enospc()
        return real_export(self, mesh, lgt, folder, glb)

    with monkeypatch.context() as m:
        m.setattr(Reporter, "export", export)
        with pytest.raises(OutputError, match=r"No space left.*run again with --resume"):
            Trainer(cfg).fit()
    assert (out / "checkpoints" / f"mesh_pass_{cfg.iter:06d}.pt").is_file()
    assert not (out / "mesh").exists()
    capsys.readouterr()
    trainer = Trainer(cfg, resume=True)
    assert f"resumed from pass 2 iteration {cfg.iter}" in capsys.readouterr().out
    trainer.fit()
    assert (out / "mesh" / "mesh.glb").is_file()
    assert trainer.losses.get("mesh_pass", []) == []  # no iteration ran again


# ------------------------------------------------------------------ datasets
def _colmap_txt(folder):
    from test_data_colmap import write_colmap

    write_colmap(folder, n=3)
    return folder / "sparse" / "0"


def _field(images_txt, name, k, value):
    """images.txt with field(s) ``k`` of ``name``'s line (1-4: quaternion, 5-7: t) set."""
    lines = images_txt.splitlines()
    for j, ln in enumerate(lines):
        t = ln.split()
        if t and t[-1] == name:
            t[k] = value
            lines[j] = " ".join(t)
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda c, i: (c.replace("1 PINHOLE 32", "1 PINHOLE 0"), i), "image size must be"),
        (lambda c, i: (c.replace("PINHOLE 32 32 ", "PINHOLE 32 32 0.0 "), i), "focal"),
        (lambda c, i: (c.replace("PINHOLE 32 32 ", "PINHOLE 32 32 nan "), i), "not finite"),
        (lambda c, i: (c, _field(i, "im1.png", 1, "nan")), "quaternion.*not finite"),
        (lambda c, i: (c, _field(i, "im2.png", 6, "inf")), "not finite"),
        (lambda c, i: (c, _field(i, "im0.png", slice(1, 5), ["0"] * 4)), "is zero"),
        (lambda c, i: (c, i.replace("im1.png", "im0.png")), "listed twice"),
        (lambda c, i: (c, i.replace("im1.png", "../im1.png")), "leads outside"),
    ],
)
def test_colmap_cameras_that_cannot_render_are_refused(tmp_path, change, message):
    from nvdrec.data.colmap import ColmapDataset
    from nvdrec.errors import DataError

    sp = _colmap_txt(tmp_path)
    cams, imgs = (sp / "cameras.txt").read_text(), (sp / "images.txt").read_text()
    assert "\n1 PINHOLE 32 32 " in cams  # the writer's layout, which the edits rely on
    cams2, imgs2 = change(cams, imgs)
    assert (cams2, imgs2) != (cams, imgs)
    (sp / "cameras.txt").write_text(cams2)
    (sp / "images.txt").write_text(imgs2)
    with pytest.raises(DataError, match=message):
        ColmapDataset(tmp_path)


@pytest.mark.parametrize(
    "row, col, value, message",
    [(1, 3, np.nan, "not finite"), (0, 14, 0.0, "focal"), (2, 9, 0.0, "image size")],
)
def test_llff_cameras_that_cannot_render_are_refused(tmp_path, row, col, value, message):
    from test_data_llff import write_llff

    from nvdrec.data.llff import LLFFDataset
    from nvdrec.errors import DataError

    write_llff(tmp_path, n=3)
    pb = np.load(tmp_path / "poses_bounds.npy")
    pb[row, col] = value
    np.save(tmp_path / "poses_bounds.npy", pb)
    with pytest.raises(DataError, match=message):
        LLFFDataset(tmp_path)


def test_images_from_outside_the_dataset_are_reported(tmp_path):
    from test_data_nerf import write_nerf

    from nvdrec.data.check import preflight
    from nvdrec.data.nerf import NeRFDataset

    ds_dir = tmp_path / "ds"
    write_nerf(ds_dir, n=2)
    assert NeRFDataset(ds_dir).outside_note(ds_dir) is None
    # an image reached through a symlink, another through a ../ file_path
    (tmp_path / "elsewhere").mkdir()
    (ds_dir / "train" / "r_0.png").rename(tmp_path / "elsewhere" / "r_0.png")
    (ds_dir / "train" / "r_0.png").symlink_to(tmp_path / "elsewhere" / "r_0.png")
    tf = ds_dir / "transforms_train.json"
    data = json.loads(tf.read_text())
    (ds_dir / "train" / "r_1.png").rename(tmp_path / "r_1.png")
    data["frames"][1]["file_path"] = "../r_1"
    tf.write_text(json.dumps(data))
    ds = NeRFDataset(ds_dir)
    note = ds.outside_note(ds_dir)
    assert note.startswith("2 image/mask file(s) were read from outside the dataset folder")
    _, warns = preflight(ds_dir, cache="off")
    assert any("outside the dataset folder" in w for w in warns)


def test_fully_transparent_images_are_refused_before_training(tmp_path):
    from test_data_nerf import write_nerf

    from nvdrec.errors import DataError
    from nvdrec.io import read_image, write_image

    write_nerf(tmp_path / "ds", n=2)
    write_nerf(tmp_path / "ds", n=2, split="test")
    for p in (tmp_path / "ds" / "train").glob("*.png"):
        img = read_image(p)
        img[..., 3] = 0
        write_image(p, img)
    cfg = nvdrec.load_config(
        {**TINY, "ref_mesh": str(tmp_path / "ds"), "out_dir": str(tmp_path / "o")}
    )
    with pytest.raises(DataError, match="fully transparent"):
        Trainer(cfg)


def test_atlas_of_a_tiny_mesh_has_finite_uvs():
    """xatlas returns NaN UVs for a mesh a few thousandths across; unwrapped at unit size."""
    from nvdrec.data.demo import demo_mesh
    from nvdrec.geometry.atlas import make_atlas

    mesh = demo_mesh(16)
    v = (mesh.v_pos * 2.5e-4).numpy()
    atlas = make_atlas(v, mesh.t_pos_idx.numpy().astype(np.uint32), 64, 30.0)
    assert atlas.method == "xatlas" and np.isfinite(atlas.uvs).all()
    assert atlas.uvs.min() >= 0 and atlas.uvs.max() <= 1


def test_a_surface_that_covers_no_pixel_is_reported(tmp_path, capsys):
    """A grid box far too small for the object: the run ends (no traceback), says why its
    result is not the object and records the coverage."""
    out = tmp_path / "run"
    Trainer(nvdrec.load_config({**TINY, "mesh_scale": 0.001, "out_dir": str(out)})).fit()
    err = capsys.readouterr().err
    assert "dmtet_pass1: the surface covers 0.0% of the object's pixels" in err
    assert "mesh_scale 0.001" in err
    cov = json.loads((out / "run.json").read_text())["coverage"]
    assert cov["dmtet_pass1"] < 0.05
    # a normal run covers the object and says nothing
    Trainer(nvdrec.load_config({**TINY, "out_dir": str(tmp_path / "ok")})).fit()
    assert "covers" not in capsys.readouterr().err
    cov = json.loads((tmp_path / "ok" / "run.json").read_text())["coverage"]
    assert 0.2 < cov["dmtet_pass1"] < 2 and 0.2 < cov["mesh_pass"] < 2  # 4 iterations only


# ------------------------------------------------------------------ damaged checkpoints
@pytest.fixture(scope="module")
def finished_with_checkpoints(tmp_path_factory):
    out = tmp_path_factory.mktemp("ckpt") / "run"
    cfg = nvdrec.load_config({**TINY, "out_dir": str(out)})
    Trainer(cfg).fit()
    return cfg, out / "checkpoints" / "mesh_pass_000002.pt"


def _set(state, path, value):
    keys = path.split("/")
    d = state
    for k in keys[:-1]:
        d = d[k]
    if value is KeyError:
        del d[keys[-1]]
    else:
        d[keys[-1]] = value(d[keys[-1]]) if callable(value) else value


@pytest.mark.parametrize(
    "where, value, message",
    [
        ("iteration", 10**12, "iteration 1000000000000 is outside 0..4"),
        ("rng", KeyError, "missing rng"),
        ("pass", "pass_3", "unknown pass"),
        ("params/v_u", lambda t: t * float("nan"), "'v_u' holds NaN"),
        ("params/light.base", lambda t: t[:, :4], "'light.base' has shape"),
        ("params/tex.kd", KeyError, "'tex.kd' is missing"),
        ("params/tex.ks", lambda t: t[0], "'tex.ks' is missing or malformed"),
        ("extra/t_pos_idx", lambda t: t + 10**6, "indexes outside"),
        ("extra/v_tex", KeyError, "'v_tex' is missing or malformed"),
        ("optimizer/optimizers", lambda opts: opts[:1], "optimizer state"),
        ("optimizer/optimizers", lambda opts: [{"state": {}, "param_groups": []}] * 2, "optim"),
        ("rng/gen", lambda t: t[:3], "random-number state"),
    ],
)
def test_damaged_checkpoints_are_named_not_tracebacks(
    finished_with_checkpoints, tmp_path, where, value, message
):
    import shutil

    import torch

    from nvdrec.errors import DataError

    cfg, newest = finished_with_checkpoints
    run = tmp_path / "run"
    shutil.copytree(newest.parents[1], run)
    path = run / "checkpoints" / newest.name
    state = torch.load(path, weights_only=True)
    _set(state, where, value)
    torch.save(state, path)
    with pytest.raises(DataError, match=f"checkpoint {path} is damaged: .*{message}"):
        Trainer(cfg.replace(out_dir=str(run)), resume=True).fit()


# ------------------------------------------------------------------ command-line outputs
@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "run"
    Trainer(nvdrec.load_config({**TINY, "out_dir": str(out)})).fit()
    return out


@pytest.mark.parametrize(
    "args, message",
    [
        (["render", "{run}", "--elevation", "nan"], "--elevation must be a finite number"),
        (["render", "{run}", "--fps", "0"], "--fps must be in"),
        (["render", "{run}", "--frames", "0"], "--frames must be in"),
        (["render", "{run}", "--env-scale", "inf"], "--env-scale must be a finite"),
        (["render", "{run}", "--format", "png", "--output", "{tmp}/x.gif"], "does not fit"),
        (["render", "{run}", "--output", "{tmp}/afile/t.gif"], "is a file, not a folder"),
        (["render", "{run}", "--format", "png", "--output", "{tmp}/afile"], "is a file; give"),
        (["export", "{run}", "--format", "obj", "--output", "{tmp}/model.glb"], "does not fit"),
        (["export", "{run}", "--format", "usd", "--output", "{tmp}/m.glb"], "does not fit"),
        (["export", "{run}", "--output", "{tmp}/afile/m.glb"], "is a file, not a folder"),
        (["export", "{run}", "--output", "{tmp}/adir.glb"], "is a folder; give a file"),
        (["view", "{run}", "--output", "{tmp}/afile/v.html"], "is a file, not a folder"),
        (["view", "{run}", "--serve", "--port", "0"], "--port must be in"),
    ],
)
def test_cli_outputs_and_numbers_are_checked_before_the_work(finished, tmp_path, args, message):
    """Refused up front with the flag named, exit 2, and nothing written."""
    from nvdrec.cli import main

    (tmp_path / "afile").write_text("x")
    (tmp_path / "adir.glb").mkdir()
    before = sorted(p.name for p in tmp_path.iterdir())
    render_before = (finished / "render").exists()
    argv = [a.format(run=finished, tmp=tmp_path) for a in args]
    r = run_nvdrec(*argv, timeout=120)
    assert r.returncode == 2, r.stderr
    assert message in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert (finished / "render").exists() == render_before
    del main


def test_export_and_render_outputs_take_the_format_from_the_name(finished, tmp_path):
    from nvdrec.cli import main

    assert main(["export", str(finished), "--output", str(tmp_path / "m.glb")]) == 0
    assert (tmp_path / "m.glb").is_file()
    assert main(["export", str(finished), "--format", "obj", "--output", str(tmp_path / "o")]) == 0
    assert (tmp_path / "o" / "mesh.obj").is_file()
    args = ["render", str(finished), "--frames", "2", "--res", "16", "--device", "cpu"]
    assert main([*args, "--output", str(tmp_path / "t.gif")]) == 0
    assert (tmp_path / "t.gif").read_bytes()[:3] == b"GIF"


def test_view_refuses_a_damaged_glb_or_light(finished, tmp_path):
    import shutil

    from nvdrec.errors import ImageFormatError, MeshFormatError
    from nvdrec.viewer import write_viewer

    run = tmp_path / "run"
    shutil.copytree(finished, run)
    glb = run / "mesh" / "mesh.glb"
    data = glb.read_bytes()
    for damaged, why in ((data[: len(data) // 2], "truncated"), (b"x" * 40, "header")):
        glb.write_bytes(damaged)
        with pytest.raises(MeshFormatError, match=f"'{glb}' is not a valid GLB file: .*{why}"):
            write_viewer(run)
    glb.write_bytes(data[:20] + b"X" + data[21:])  # JSON chunk damaged, sizes intact
    with pytest.raises(MeshFormatError, match="JSON chunk does not parse"):
        write_viewer(run)
    glb.write_bytes(data)
    (run / "mesh" / "probe.hdr").write_bytes(b"#?RADIANCE\nbroken")
    with pytest.raises(ImageFormatError):
        write_viewer(run)
    assert not (run / "viewer.html").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere: no read-only folder")
def test_read_only_output_folder_is_refused(finished, tmp_path):
    from nvdrec.cli import main

    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        assert main(["export", str(finished), "--output", str(ro / "m.glb")]) == 2
        assert main(["view", str(finished), "--output", str(ro / "v.html")]) == 2
    finally:
        ro.chmod(0o755)


def test_input_meshes_and_lights_that_cannot_render_are_refused(tmp_path):
    from nvdrec.errors import DataError, MeshFormatError
    from nvdrec.io import load_mesh, write_image
    from nvdrec.render import EnvironmentLight

    flat = tmp_path / "flat.obj"
    flat.write_text("v 0 0 0\nv 1 0 0\nv 2 0 0\nf 1 2 3\n")
    far = tmp_path / "far.obj"
    far.write_text("v 0 0 0\nv 1e9 0 0\nv 0 1 0\nf 1 2 3\n")
    huge = tmp_path / "huge.obj"
    huge.write_text("v 0 0 0\nv 1e308 0 0\nv 0 1 0\nf 1 2 3\n")
    with pytest.raises(MeshFormatError, match="float32 range"):
        load_mesh(huge)
    env = tmp_path / "env.hdr"
    write_image(env, np.full((8, 16, 3), 0.5, np.float32))
    for mesh, message in ((flat, "zero area"), (far, "coordinates up to 1e\\+09")):
        for key in ("ref_mesh", "base_mesh"):
            over = {key: str(mesh), "envmap": str(env), "out_dir": str(tmp_path / key)}
            with pytest.raises(DataError, match=f"'{key}': .*{message}"):
                Trainer(nvdrec.load_config({**TINY, **over})).fit()
    bright = tmp_path / "bright.hdr"
    write_image(bright, np.full((8, 16, 3), 1e30, np.float32))
    with pytest.raises(DataError, match="bright.hdr.: radiance up to (9.9.e\\+29|1e\\+30)"):
        EnvironmentLight.load(bright, res=8)


# ------------------------------------------------------------------ memory bounds
@pytest.mark.parametrize(
    "over, key",
    [
        ({"batch": 10**9}, "batch, train_res"),
        ({"train_res": [100000, 100000]}, "batch, train_res"),
        ({"hash_log2_size": 40}, "hash_log2_size"),
        ({"dmtet_grid": 1024}, "dmtet_grid"),
        ({"light_res": 100000}, "light_res"),
        ({"texture_res": [10**6, 10**6]}, "texture_res"),
    ],
)
def test_configs_that_cannot_fit_stop_before_allocating(tmp_path, over, key):
    """Refused at once with the costliest key named (not an allocation until the OOM
    killer comes); nothing is created."""
    import time

    out = tmp_path / "run"
    cfg = nvdrec.load_config({**TINY, **over, "out_dir": str(out)})
    t0 = time.time()
    with pytest.raises(ConfigError, match=f"needs at least .* lower config key\\(s\\) {key}"):
        Trainer(cfg)
    assert time.time() - t0 < 5 and not out.exists()


def test_memory_bound_is_a_lower_bound_that_fits_real_configs():
    from nvdrec.train.budget import check_memory, memory_lower_bound

    # nvdiffrec's heaviest example settings fit in a few GB (they run on 24 GB cards)
    heavy = nvdrec.load_config(
        {"batch": 8, "train_res": [800, 800], "dmtet_grid": 128, "texture_res": [2048, 2048]}
    )
    assert sum(memory_lower_bound(heavy).values()) < 4 * 2**30
    check_memory(heavy, 24 * 2**30, "cuda")  # no error
    check_memory(heavy, None, "cpu")  # unknown: no check
    with pytest.raises(ConfigError, match="are available"):
        check_memory(heavy, 2**30, "cuda")


# ------------------------------------------------------------------ property tests
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_any_float = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -1.0, 1e-30, 1e30, float("nan"), float("inf")]),
)


@settings(max_examples=200, deadline=None)
@given(
    fx=_any_float,
    fy=_any_float,
    cx=_any_float,
    cy=_any_float,
    w=_any_float,
    h=_any_float,
    t=st.lists(_any_float, min_size=3, max_size=3),
    scale=st.floats(-1e3, 1e3),
)
def test_camera_check_accepts_exactly_the_renderable(fx, fy, cx, cy, w, h, t, scale):
    """Any numbers: a DataError naming the camera, or accepted exactly when every value is
    finite, sizes and focal lengths are positive and the rotation is not singular."""
    import math

    import torch

    from nvdrec.data.nerf import check_camera
    from nvdrec.errors import DataError

    c2w = torch.eye(4, dtype=torch.float64)
    c2w[:3, :3] *= scale  # det = scale^3
    c2w[:3, 3] = torch.tensor(t, dtype=torch.float64)
    ok = (
        all(math.isfinite(v) for v in (fx, fy, cx, cy, w, h, *t))
        and w > 0
        and h > 0
        and fx > 0
        and fy > 0
        and abs(float(torch.linalg.det(c2w[:3, :3]))) >= 1e-9  # scale^3
    )
    try:
        check_camera("cam", c2w, fx, fy, cx, cy, w, h)
        accepted = True
    except DataError as e:
        assert str(e).startswith("cam: ")
        accepted = False
    assert accepted == ok


@settings(max_examples=100, deadline=None)
@given(
    batch=st.integers(1, 10**12),
    res=st.integers(1, 10**6),
    log2=st.integers(8, 64),
    grid=st.integers(2, 10**4),
    avail=st.integers(0, 2**50),
)
def test_memory_check_only_refuses_with_a_named_key(batch, res, log2, grid, avail):
    from nvdrec.train.budget import check_memory, memory_lower_bound

    cfg = nvdrec.load_config(
        {"batch": batch, "train_res": [res, res], "hash_log2_size": log2, "dmtet_grid": grid}
    )
    need = sum(memory_lower_bound(cfg).values())
    try:
        check_memory(cfg, avail, "cpu")
        assert need <= avail
    except ConfigError as e:
        assert need > avail and "lower config key(s)" in str(e)
    bigger = nvdrec.load_config({**cfg.to_dict(), "batch": batch + 1})
    assert sum(memory_lower_bound(bigger).values()) > need


def test_one_texel_textures_bake_and_export(tmp_path):
    out = tmp_path / "run"
    Trainer(nvdrec.load_config({**TINY, "texture_res": [1, 1], "out_dir": str(out)})).fit()
    mtl = (out / "mesh" / "mesh.mtl").read_text()
    assert "\nKd " in mtl and "map_Kd" not in mtl  # one texel: written as a constant
    assert (out / "mesh" / "mesh.glb").is_file()


def test_progress_rate_leaves_out_the_warm_up_and_follows_recent_iterations(monkeypatch, capsys):
    """A 70 s first iteration (kernel compile) then 150 ms iterations: the line says so,
    and the rate and ETA are the recent ones (they used to be a mean since the start)."""
    import nvdrec.train.helpers as helpers

    clock = [1000.0]
    monkeypatch.setattr(helpers.time, "time", lambda: clock[0])
    prog = helpers.Progress(500, "dmtet_pass1", "log", interval=50)
    for it in range(100):
        clock[0] += 70.0 if it == 0 else (0.15 if it < 60 else 0.3)  # slower from 60 on
        prog.update(it, {"img": 0.1})
    lines = capsys.readouterr().out.splitlines()
    assert "first iteration 70.0 s (warm-up, not in the rate)" in lines[0]
    assert "[dmtet_pass1] 50/500" in lines[1] and " 150 ms/it eta 68s" in lines[1]
    # iterations 51-100: the last 50 (40 of them at 300 ms) set the rate
    assert "[dmtet_pass1] 100/500" in lines[2] and " 270 ms/it eta 108s" in lines[2]
