import subprocess
import sys

import pytest
from _helpers import run_nvdrec


def _run(*args):
    return run_nvdrec(*args)


def test_info_reports_backends():
    r = _run("info")
    assert r.returncode == 0, r.stderr
    for word in ("nvdrec", "torch", "backends:", "cuda", "nvdiffrast", "tinycudann"):
        assert word in r.stdout


def test_help_and_no_command():
    r = _run("--help")
    assert r.returncode == 0 and "info" in r.stdout
    assert _run().returncode == 2


def test_import_loads_no_native_code():
    code = (
        "import sys, nvdrec, nvdrec.io, nvdrec.structures, nvdrec.ops;"
        "bad=[m for m in sys.modules if 'cpp_extension' in m or m.startswith('nvdrec._C')];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_build_without_gpu_is_a_clear_error():
    import torch

    if torch.cuda.is_available():
        return  # the device machine builds for real; covered by tests/test_ops_cuda.py
    r = _run("build")
    assert r.returncode == 1 and "no CUDA device" in r.stderr and "Traceback" not in r.stderr


def test_public_api_names():
    import nvdrec
    from nvdrec.train.trainer import Trainer

    assert nvdrec.Trainer is Trainer and nvdrec.train.Trainer is Trainer
    assert callable(nvdrec.load_config) and nvdrec.Config().iter == 5000


def test_the_cli_asks_for_expandable_segments_unless_the_user_chose(monkeypatch, capsys):
    """The allocator setting reaches the process before CUDA's first allocation (main()
    sets it first); a user's own PYTORCH_CUDA_ALLOC_CONF is kept."""
    from nvdrec import cli

    key = "PYTORCH_CUDA_ALLOC_CONF"
    monkeypatch.setattr(cli.sys, "platform", "linux")
    monkeypatch.delenv(key, raising=False)
    monkeypatch.delenv("PYTORCH_ALLOC_CONF", raising=False)
    assert cli.main([]) == 2  # no command: help, and the setting was made first
    assert cli.os.environ[key] == "expandable_segments:True"
    monkeypatch.setenv(key, "max_split_size_mb:128")
    cli.use_expandable_segments()
    assert cli.os.environ[key] == "max_split_size_mb:128"
    monkeypatch.delenv(key)
    monkeypatch.setenv("PYTORCH_ALLOC_CONF", "max_split_size_mb:64")  # the newer name
    cli.use_expandable_segments()
    assert key not in cli.os.environ
    monkeypatch.delenv("PYTORCH_ALLOC_CONF")
    monkeypatch.setattr(cli.sys, "platform", "win32")  # PyTorch has none there
    cli.use_expandable_segments()
    assert key not in cli.os.environ


def test_the_allocator_reads_the_setting_made_by_the_cli():
    """Importing nvdrec does not make PyTorch read its allocator settings, so the CLI's
    setting is the one CUDA's first allocation uses."""
    code = (
        "import os, sys, torch; os.environ.pop('PYTORCH_CUDA_ALLOC_CONF', None);"
        "os.environ.pop('PYTORCH_ALLOC_CONF', None);"
        "get = getattr(torch._C, '_accelerator_getAllocatorSettings', None);"
        "sys.exit(3) if get is None else None;"
        "import nvdrec.cli; nvdrec.cli.use_expandable_segments(); print(get())"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if r.returncode == 3:
        pytest.skip("this PyTorch has no reader of its allocator settings")
    assert r.returncode == 0, r.stderr
    if sys.platform == "linux":
        assert "expandable_segments:True" in r.stdout
