"""Relighting and turntables of a finished run (nvdrec render, nvdrec.render.turntable),
and the {"relight": HDR} preview tile."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from _helpers import TINY, run_nvdrec
from test_trainer import tiny_run  # noqa: F401  (the module's finished tiny run)

import nvdrec
from nvdrec.errors import MissingFileError, NvdrecError
from nvdrec.io import read_image, write_image
from nvdrec.render import load_run, turntable, write_frames
from nvdrec.train.trainer import Trainer


def _envmap(path, rgb):
    """A lat-long HDR map: ``rgb`` radiance from above, a tenth of it below."""
    img = np.ones((32, 64, 3), np.float32) * np.array(rgb, np.float32)
    img[16:] *= 0.1
    write_image(path, img)
    return path


def test_turntable_turns_and_relights(tiny_run, tmp_path):  # noqa: F811
    out, _ = tiny_run
    mesh, light = load_run(out)
    frames = turntable(mesh, light, frames=4, res=64)
    assert frames.shape == (4, 64, 64, 3) and frames.dtype == np.uint8
    obj = (frames != 255).any(-1)  # white background
    assert obj[0].mean() > 0.05  # the object is in frame
    assert np.abs(frames[0].astype(int) - frames[2].astype(int)).mean() > 1  # it turned
    red = _envmap(tmp_path / "red.hdr", (3.0, 0.2, 0.2))
    relit = turntable(*load_run(out, envmap=red), frames=4, res=64)
    m = obj[0]
    r, g = relit[0][m][:, 0].astype(float).mean(), relit[0][m][:, 1].astype(float).mean()
    assert r > g + 20  # the red light shows on the surface


def test_render_command_writes_gif_and_png(tiny_run, tmp_path):  # noqa: F811
    import imageio.v3 as iio

    out, _ = tiny_run
    gif = tmp_path / "t.gif"
    cmd = [sys.executable, "-m", "nvdrec", "render", str(out), "--frames", "3", "--res", "48"]
    r = subprocess.run(cmd + ["--output", str(gif)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "3/3 frames" in r.stdout and iio.imread(gif).shape == (3, 48, 48, 3)
    r = subprocess.run(cmd + ["--format", "png", "--output", str(tmp_path / "png")], text=True)
    assert r.returncode == 0
    assert read_image(tmp_path / "png" / "frame_0002.png").shape == (48, 48, 3)
    r = subprocess.run(cmd[:4] + [str(tmp_path / "none")], capture_output=True, text=True)
    assert r.returncode != 0 and "finished 'nvdrec train'" in r.stderr


def test_mp4_without_ffmpeg_plugin_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)  # as if not installed
    with pytest.raises(NvdrecError, match="pip install imageio-ffmpeg"):
        write_frames(np.zeros((2, 8, 8, 3), np.uint8), tmp_path / "a.mp4")
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_relight_display_entry(tmp_path):
    """{"relight": HDR} adds a preview tile of the current surface under that map."""
    red = _envmap(tmp_path / "red.hdr", (3.0, 0.1, 0.1))
    blue = _envmap(tmp_path / "blue.hdr", (0.1, 0.1, 3.0))
    extras = [{"relight": str(red)}, {"relight": str(blue)}]
    cfg = nvdrec.load_config(
        {**TINY, "iter": 2, "validate": False, "display": extras, "out_dir": str(tmp_path / "r")}
    )
    Trainer(cfg).fit()
    img = read_image(tmp_path / "r" / "img_dmtet_pass1_000000.png")
    h, w = TINY["train_res"]
    assert img.shape[:2] == (h, 4 * w)
    a, b = img[:, 2 * w : 3 * w], img[:, 3 * w :]
    assert a[..., 0].mean() > a[..., 2].mean() + 0.05  # red light: red surface
    assert b[..., 2].mean() > b[..., 0].mean() + 0.05
    bad = {**TINY, "display": [{"relight": str(tmp_path / "missing.hdr")}]}
    with pytest.raises(MissingFileError, match="display\\[0\\].relight"):
        Trainer(nvdrec.load_config({**bad, "out_dir": str(tmp_path / "x")}))


@pytest.mark.cuda
def test_turntable_on_the_gpu_matches_the_cpu(tiny_run):  # noqa: F811
    out, _ = tiny_run
    cpu = turntable(*load_run(out, light_res=64), frames=3, res=64)
    gpu = turntable(*load_run(out, light_res=64, device="cuda"), frames=3, res=64)
    diff = np.abs(cpu.astype(int) - gpu.astype(int))
    assert diff.mean() < 1.0 and (diff > 8).mean() < 0.01, (diff.mean(), (diff > 8).mean())


def test_render_names_outputs_after_the_light_and_help_shows_defaults(tiny_run, tmp_path):  # noqa: F811
    """A relit turntable does not replace the learned-light one; --help gives defaults."""
    import shutil

    from nvdrec.cli import main

    out, _ = tiny_run
    run = tmp_path / "run"
    shutil.copytree(out, run)
    red = _envmap(tmp_path / "red.hdr", (3.0, 0.2, 0.2))
    args = ["render", str(run), "--frames", "2", "--res", "16", "--device", "cpu"]
    assert main(args) == 0
    assert main([*args, "--envmap", str(red)]) == 0
    import imageio.v3 as iio

    learned = iio.imread(run / "render" / "turntable.gif").astype(float)  # [F, H, W, C]
    relit = iio.imread(run / "render" / "turntable_red.gif").astype(float)
    assert learned.shape[:3] == relit.shape[:3] == (2, 16, 16)
    assert np.abs(learned - relit).mean() > 1
    r = run_nvdrec("render", "--help")
    text = " ".join(r.stdout.split())  # help lines wrap
    assert "(default: 60 on a GPU, 36 on the CPU)" in text and "(default: 30)" in text


def test_render_writes_frames_as_made_and_keeps_them_on_ctrl_c(tiny_run, tmp_path, monkeypatch):  # noqa: F811
    """Frames reach the disk batch by batch; Ctrl-C keeps those made (exit 130, says
    where); a finished GIF leaves no frame folder behind."""
    from nvdrec.cli import main

    tt = sys.modules["nvdrec.render.turntable"]  # (nvdrec.render.turntable is the function)
    out, _ = tiny_run
    args = ["render", str(out), "--frames", "12", "--res", "16", "--device", "cpu"]
    assert main([*args, "--output", str(tmp_path / "ok.gif")]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ok.gif"]
    real, calls = tt.render_mesh, []

    def interrupted(*a, **k):
        calls.append(1)
        if len(calls) == 2:  # during the second batch of 8
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(tt, "render_mesh", interrupted)
    assert main([*args, "--output", str(tmp_path / "t.gif")]) == 130
    kept = tmp_path / "t_frames_partial"
    assert sorted(p.name for p in kept.iterdir()) == [f"frame_{i:04d}.png" for i in range(8)]
    assert not (tmp_path / "t.gif").exists() and not (tmp_path / ".t.gif.frames").exists()


def test_cpu_light_filtering_is_cached_per_map(tiny_run, tmp_path, monkeypatch):  # noqa: F811
    """The second render of a map on the CPU reads its filtered levels from the cache
    (no filtering) and they equal the first's; another scale is another entry."""
    from nvdrec.render import EnvironmentLight

    out, _ = tiny_run
    monkeypatch.setenv("NVDREC_CACHE_DIR", str(tmp_path / "cache"))
    calls = []
    real = EnvironmentLight.build_mips

    def counting(self):
        calls.append(1)
        return real(self)

    monkeypatch.setattr(EnvironmentLight, "build_mips", counting)
    _, first = load_run(out, light_res=32)
    assert len(calls) == 1 and len(list((tmp_path / "cache" / "lights").glob("*.pt"))) == 1
    mesh, again = load_run(out, light_res=32)
    assert len(calls) == 1  # from the cache
    for a, b in zip(first.specular + [first.diffuse], again.specular + [again.diffuse]):
        assert torch.equal(a, b)
    frames = turntable(mesh, again, frames=2, res=16)
    assert len(calls) == 1 and frames.shape == (2, 16, 16, 3)
    load_run(out, env_scale=2.0, envmap=out / "mesh" / "probe.hdr", light_res=32)
    assert len(calls) == 2 and len(list((tmp_path / "cache" / "lights").glob("*.pt"))) == 2
    monkeypatch.setenv("NVDREC_LIGHT_CACHE", "off")  # filtered when the turntable starts
    turntable(*load_run(out, light_res=32), frames=1, res=16)
    assert len(calls) == 3


def test_contact_sheet_rows_columns_and_labels(tiny_run, tmp_path):  # noqa: F811
    """--sheet: one PNG with a row per light (shaded) and per channel, four views, labels
    on the left; the relit row shows the map's colour; a bad --output is refused."""
    import shutil

    from nvdrec.cli import main
    from nvdrec.render.turntable import SHEET_CHANNELS

    out, _ = tiny_run
    run = tmp_path / "run"
    shutil.copytree(out, run)
    red = _envmap(tmp_path / "red.hdr", (3.0, 0.2, 0.2))
    res = 32
    assert main(["render", str(run), "--sheet", "--res", str(res), "--envmap", str(red)]) == 0
    sheet = read_image(run / "render" / "sheet_red.png")  # [H, W, 3] in [0, 1]
    rows = 2 + len(SHEET_CHANNELS)  # learned light, red map, then the channels
    h, w = sheet.shape[:2]
    grid = sheet[h - rows * res :, w - 4 * res :]  # the cells: bottom right
    cells = grid.reshape(rows, res, 4, res, 3).transpose(0, 2, 1, 3, 4)  # [R, V, res, res, 3]
    labels = sheet[h - rows * res :, : w - 4 * res]
    assert (labels < 0.5).any(axis=-1).mean() > 0.005  # text in the label column
    assert labels[:, :, 0].std() > 0.05
    learned, relit = cells[0], cells[1]
    obj = (learned < 0.99).any(-1)  # the object on white
    assert obj.mean() > 0.02
    assert (relit[..., 0][obj] - relit[..., 1][obj]).mean() > 0.1  # red light on the surface
    assert np.abs(cells[0, 0] - cells[0, 2]).mean() > 0.005  # the views differ
    names = [label for label, _, _ in SHEET_CHANNELS]
    for r, name in enumerate(names, start=2):  # channel rows on mid grey, same silhouette
        assert np.allclose(cells[r, 0, 0, 0], 0.5, atol=0.01), name
        assert np.allclose(cells[r][~obj], 0.5, atol=0.01), name
    for name in ("roughness", "metallic"):  # one value per pixel: grey levels
        c = cells[2 + names.index(name)]
        assert np.abs(c - c[..., :1]).max() < 0.01, name
    colour, normals = (cells[2 + names.index(n)] for n in ("base colour", "normals (object space)"))
    assert np.abs(normals[obj] - 0.5).mean() > 0.05  # the normals show on the object
    assert np.abs(colour[obj] - normals[obj]).mean() > 0.05
    rc = main(["render", str(run), "--sheet", "--res", "16", "--output", str(tmp_path / "s.gif")])
    assert rc != 0


def test_results_pictures_relit_rows(tiny_run, tmp_path):  # noqa: F811
    """bench/results_pictures.py (docs/results.md's relit picture): a row of three views
    per light, the learned one first; a red map turns the second row red."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    from results_pictures import relit_rows

    out, _ = tiny_run
    red = _envmap(tmp_path / "red.hdr", (3.0, 0.2, 0.2))
    rows = relit_rows(out, [red], views=3, res=24)
    assert rows.shape == (2 * 24, 3 * 24, 3) and rows.dtype == np.uint8
    learned, relit = rows[:24].astype(float), rows[24:].astype(float)
    obj = (learned < 250).any(-1)  # the object on white
    assert obj.mean() > 0.02
    assert (relit[..., 0][obj] - relit[..., 1][obj]).mean() > 20  # red light on the surface
    assert np.abs(learned[:, :24] - learned[:, 48:]).mean() > 0.5  # the views differ
