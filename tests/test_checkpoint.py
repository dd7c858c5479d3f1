"""Checkpoints: an interrupted and resumed run ends like an uninterrupted one (CPU)."""

import json
import signal
import subprocess
import sys
import time

import pytest
import torch
from _helpers import TINY_FOLDER

import nvdrec
from nvdrec.train.trainer import Trainer

CFG = {
    **TINY_FOLDER,
    "iter": 8,
    "train_res": [40, 40],
    "demo_grid": 28,
    "learning_rate": [0.03, 0.01],
    "progress": "none",
    "seed": 5,
    "checkpoint_interval": 3,
}


def _run(out, resume=False, **over):
    cfg = nvdrec.load_config({**CFG, **over, "out_dir": str(out)})
    return Trainer(cfg, resume=resume).fit()


def _outputs(out):
    return (out / "mesh" / "mesh.obj").read_text(), json.loads(
        (out / "validate" / "metrics.json").read_text()
    )


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "run"
    _run(out, checkpoint_interval=0)
    return _outputs(out)


@pytest.mark.parametrize("stop_pass", ["dmtet_pass1", "mesh_pass"])
def test_resume_after_interrupt_matches_uninterrupted(tmp_path, reference, stop_pass, monkeypatch):
    out = tmp_path / "run"
    cfg = nvdrec.load_config({**CFG, "out_dir": str(out)})
    trainer = Trainer(cfg)
    original = trainer._save_ckpt

    def interrupting_save(name, it, named, opt, extra):
        original(name, it, named, opt, extra)
        if name == stop_pass:
            trainer._stop = True  # as if SIGINT arrived: the next iteration saves and stops

    monkeypatch.setattr(trainer, "_save_ckpt", interrupting_save)
    with pytest.raises(KeyboardInterrupt, match="--resume"):
        trainer.fit()
    assert list((out / "checkpoints").glob(f"{stop_pass}_*.pt"))
    assert not (out / "mesh" / "mesh.obj").exists()
    _run(out, resume=True)
    mesh, metrics = _outputs(out)
    ref_mesh, ref_metrics = reference
    assert mesh == ref_mesh
    assert metrics == pytest.approx(ref_metrics, rel=1e-6)


def test_checkpoint_from_other_config_is_refused(tmp_path):
    out = tmp_path / "run"
    _run(out, iter=4)
    with pytest.raises(nvdrec.ConfigError, match="different config.*'iter'"):
        _run(out, resume=True, iter=5)


def test_sigint_checkpoints_and_resume_via_cli(tmp_path, reference):
    out = tmp_path / "cli"
    cfg_file = tmp_path / "c.json"
    cfg_file.write_text(json.dumps({**CFG, "iter": 40, "checkpoint_interval": 2}))
    cmd = [sys.executable, "-m", "nvdrec", "train", str(cfg_file), "--out-dir", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not list((out / "checkpoints").glob("*.pt")):
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "--resume" in err and "Traceback" not in err
    r = subprocess.run([*cmd, "--resume"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "resumed from pass" in r.stdout
    assert (out / "mesh" / "mesh.glb").is_file()


def test_custom_mip_levels_train_and_resume(tmp_path, monkeypatch):
    """`custom_mip: true`: the pass-2 textures get trainable mip levels, which change in
    training, are checkpointed by name and restored on resume (the resumed run ends like
    the uninterrupted one)."""
    from nvdrec.structures.material import Texture2D

    ref = tmp_path / "ref"
    seen = {}
    orig_clamp = Texture2D.clamp_

    def spy(self):
        orig_clamp(self)
        if self.mips is not None:
            seen.setdefault(id(self), [lv.detach().clone() for lv in self.mips])
            seen[id(self), "last"] = [lv.detach().clone() for lv in self.mips]

    monkeypatch.setattr(Texture2D, "clamp_", spy)
    _run(ref, custom_mip=True, checkpoint_interval=0)
    firsts = [v for k, v in seen.items() if not isinstance(k, tuple)]
    lasts = [v for k, v in seen.items() if isinstance(k, tuple)]
    assert len(firsts) == 3 and len(lasts) == 3  # kd, ks, normal
    assert sum(len(f) for f in firsts) == 3 * 5  # 32x32 base: levels 16, 8, 4, 2, 1
    assert any(not torch.equal(a, b) for f, l in zip(firsts, lasts) for a, b in zip(f, l))
    monkeypatch.setattr(Texture2D, "clamp_", orig_clamp)

    out = tmp_path / "run"
    cfg = nvdrec.load_config({**CFG, "custom_mip": True, "out_dir": str(out)})
    trainer = Trainer(cfg)
    original = trainer._save_ckpt

    def interrupting_save(name, it, named, opt, extra):
        original(name, it, named, opt, extra)
        if name == "mesh_pass":
            trainer._stop = True

    monkeypatch.setattr(trainer, "_save_ckpt", interrupting_save)
    with pytest.raises(KeyboardInterrupt):
        trainer.fit()
    ckpt = sorted((out / "checkpoints").glob("mesh_pass_*.pt"))[-1]
    keys = torch.load(ckpt, weights_only=False)["params"].keys()
    assert {"tex.kd.mip1", "tex.ks.mip5", "tex.normal.mip3"} <= set(keys)
    _run(out, resume=True, custom_mip=True)
    assert _outputs(out)[0] == (ref / "mesh" / "mesh.obj").read_text()


def test_flexicubes_resume_matches_uninterrupted(tmp_path, monkeypatch):
    """The FlexiCubes parameters (sdf, deform, weight) checkpoint and resume by name."""
    over = {"isosurface": "flexicubes", "dmtet_grid": 12}
    _run(tmp_path / "ref", checkpoint_interval=0, **over)
    out = tmp_path / "run"
    trainer = Trainer(nvdrec.load_config({**CFG, **over, "out_dir": str(out)}))
    original = trainer._save_ckpt

    def interrupting_save(name, it, named, opt, extra):
        original(name, it, named, opt, extra)
        trainer._stop = True

    monkeypatch.setattr(trainer, "_save_ckpt", interrupting_save)
    with pytest.raises(KeyboardInterrupt, match="--resume"):
        trainer.fit()
    ckpt = next((out / "checkpoints").glob("dmtet_pass1_*.pt"))
    assert "geo.weight" in torch.load(ckpt, weights_only=False)["params"]
    _run(out, resume=True, **over)
    mesh, metrics = _outputs(out)
    ref_mesh, ref_metrics = _outputs(tmp_path / "ref")
    assert mesh == ref_mesh
    assert metrics == pytest.approx(ref_metrics, rel=1e-6)
