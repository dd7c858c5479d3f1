"""Every script in examples/ runs in its tiny mode on the CPU."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_trainer import tiny_run  # noqa: F401  (a finished tiny run)

EX = Path(__file__).resolve().parents[1] / "examples"


def _run(args, cwd):
    r = subprocess.run(
        [sys.executable, *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=600
    )
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    return r.stdout


def test_every_example_has_a_test():
    scripts = {p.name for p in EX.glob("*.py") if not p.name.startswith("_")}
    tested = {
        "reconstruct_mesh.py",
        "nerf_folder.py",
        "own_photos.py",
        "python_api.py",
        "relight_turntable.py",
        "export_formats.py",
        "load_and_inspect.py",
    }
    assert scripts == tested
    for p in EX.glob("*.py"):  # each says what it shows and how to run it
        assert p.read_text().startswith('"""'), p.name


def test_reconstruct_mesh(tmp_path):
    from nvdrec.data.demo import demo_mesh
    from nvdrec.io import save_mesh, write_image

    mesh = save_mesh(demo_mesh(32), tmp_path / "m")
    env = np.ones((16, 32, 3), np.float32)
    env[8:] = 0.2
    write_image(tmp_path / "env.hdr", env)
    args = [EX / "reconstruct_mesh.py", mesh, tmp_path / "env.hdr", "--tiny", "--out", "r"]
    out = _run(args, tmp_path)
    assert "PSNR" in out and (tmp_path / "r" / "mesh" / "mesh.obj").is_file()
    # again into the same folder: refused in one line (the result stays), or replaced
    r = subprocess.run(
        [sys.executable, *map(str, args)], cwd=tmp_path, capture_output=True, text=True
    )
    assert r.returncode == 1 and "Traceback" not in r.stderr and "--overwrite" in r.stderr
    assert "PSNR" in _run([*args, "--overwrite"], tmp_path)


def test_nerf_folder(tmp_path):
    out = _run([EX / "nerf_folder.py", "scene", "--make-demo", "--tiny", "--out", "r"], tmp_path)
    assert (tmp_path / "scene" / "transforms_train.json").is_file()
    assert "test views: PSNR" in out and (tmp_path / "r" / "mesh" / "mesh.glb").is_file()


def test_own_photos(tmp_path):
    """A COLMAP folder (sparse/0 + images + masks), check first, then training."""
    from test_data_colmap import write_colmap

    write_colmap(tmp_path / "photos", n=6)
    out = _run([EX / "own_photos.py", "photos", "--tiny", "--out", "r"], tmp_path)
    assert "colmap" in out and "PSNR" in out and (tmp_path / "r" / "mesh" / "mesh.obj").is_file()


@pytest.mark.extras
def test_own_photos_from_photos_alone(tmp_path):
    """Photos + masks without poses: the example places the cameras, then trains."""
    pytest.importorskip("pycolmap", reason="pycolmap is not installed (pip install pycolmap)")
    from test_sfm import write_photos

    write_photos(tmp_path / "photos")
    out = _run([EX / "own_photos.py", "photos", "--tiny", "--out", "r"], tmp_path)
    assert "registered   24 of 24 photos" in out and "PSNR" in out
    assert (tmp_path / "r_colmap" / "sparse" / "0").is_dir()
    assert (tmp_path / "r" / "mesh" / "mesh.obj").is_file()


def test_python_api(tmp_path):
    out = _run([EX / "python_api.py", "--tiny", "--out", "r"], tmp_path)
    assert "dmtet_pass1" in out and "mesh_pass" in out and "final:" in out


def test_python_api_callback_stops_the_run(tmp_path):
    """A callback's stop ends the run with a result: in pass 1 the surface is still
    unwrapped, baked, exported and validated (pass 2 runs no iteration); in pass 2 the
    current mesh is exported; the result and run.json say where it stopped."""
    import json

    import nvdrec
    from nvdrec.train.trainer import Trainer

    sys.path.insert(0, str(EX))
    from _common import TINY

    seen = []
    cfg = nvdrec.load_config({**TINY, "out_dir": str(tmp_path / "r"), "progress": "none"})
    result = Trainer(cfg, callbacks=[lambda ev: seen.append(ev) or ev["it"] == 1]).fit()
    assert [e["it"] for e in seen] == [0, 1] and seen[0]["pass"] == "dmtet_pass1"
    assert {"img_loss", "reg_loss", "ms", "total"} <= set(seen[0])
    assert result["stopped_early"] == {"pass": "dmtet_pass1", "iterations": 2}
    run = tmp_path / "r"
    assert (run / "mesh" / "mesh.glb").is_file() and (run / "mesh" / "probe.hdr").is_file()
    assert result["metrics"]["views"] > 0 and (run / "validate" / "metrics.json").is_file()
    saved = json.loads((run / "run.json").read_text())
    assert saved["stopped_early"] == result["stopped_early"]
    assert len(saved["losses"]["dmtet_pass1"]) == 2 and not saved["losses"].get("mesh_pass")

    def late(ev):
        return ev["pass"] == "mesh_pass" and ev["it"] == 2

    cfg = cfg.replace(out_dir=str(tmp_path / "r2"))
    result = Trainer(cfg, callbacks=[late]).fit()
    assert result["stopped_early"] == {"pass": "mesh_pass", "iterations": 3}
    saved = json.loads((tmp_path / "r2" / "run.json").read_text())
    losses = saved["losses"]
    assert len(losses["dmtet_pass1"]) == cfg.iter and len(losses["mesh_pass"]) == 3
    assert (tmp_path / "r2" / "mesh" / "mesh.glb").is_file()


def test_relight_turntable_and_export(tiny_run, tmp_path):  # noqa: F811
    run, _ = tiny_run
    env = np.ones((16, 32, 3), np.float32) * np.array([2.0, 0.3, 0.3], np.float32)
    from nvdrec.io import write_image

    write_image(tmp_path / "red.hdr", env)
    out = _run(
        [EX / "relight_turntable.py", run, "--envmap", tmp_path / "red.hdr"]
        + ["--frames", "3", "--res", "48"],
        tmp_path,
    )
    assert (run / "render" / "turntable_learned.gif").is_file()
    assert (run / "render" / "turntable_red.gif").is_file() and "wrote" in out
    out = _run([EX / "export_formats.py", run, "--to", tmp_path / "x"], tmp_path)
    assert (tmp_path / "x" / "mesh.glb").is_file() and (
        tmp_path / "x" / "obj" / "mesh.obj"
    ).is_file()
    assert "USD" in out


def test_load_and_inspect(tmp_path, tiny_run):  # noqa: F811
    run, _ = tiny_run
    out = _run(
        [EX / "load_and_inspect.py", run / "mesh" / "mesh.obj", run / "mesh" / "probe.hdr"],
        tmp_path,
    )
    assert "triangles" in out and "max radiance" in out


@pytest.mark.parametrize(
    "args",
    [
        ["load_and_inspect.py"],
        ["load_and_inspect.py", "missing.obj", "missing.hdr"],
        ["reconstruct_mesh.py", "missing.obj", "missing.hdr"],
        ["relight_turntable.py"],
        ["export_formats.py"],
        ["nerf_folder.py"],
        ["own_photos.py"],
    ],
)
def test_examples_without_their_inputs_say_so(tmp_path, args):
    """Missing arguments or files: a usage line or one message, exit 2, no traceback."""
    r = subprocess.run(
        [sys.executable, str(EX / args[0]), *args[1:]],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert r.stderr.strip(), "says what is missing"
