"""Kernel-build safety with real processes, using a tiny C++ extension built through the
same locked path as the CUDA kernels (works without a GPU)."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

HELPER = Path(__file__).parent / "_build_tiny.py"
pytestmark = pytest.mark.skipif(
    subprocess.run(["which", "c++"], capture_output=True).returncode != 0, reason="no C++ compiler"
)


def _start(root):
    return subprocess.Popen(
        [sys.executable, str(HELPER), str(root)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_two_concurrent_builds_both_succeed_and_a_killed_build_does_not_block(tmp_path):
    # 1. kill -9 a build half way: it leaves a folder without its BUILT stamp
    p = _start(tmp_path)
    deadline = time.time() + 60
    while time.time() < deadline and not (tmp_path / "tiny").exists():
        time.sleep(0.05)
    time.sleep(1.0)  # the compiler is running now
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    assert not (tmp_path / "tiny" / "BUILT").exists()
    # 2. two processes at once: one builds (wiping the half-built folder), the other waits
    a, b = _start(tmp_path), _start(tmp_path)
    out_a, err_a = a.communicate(timeout=600)
    out_b, err_b = b.communicate(timeout=600)
    assert a.returncode == 0 and b.returncode == 0, err_a + err_b
    assert "OK" in out_a and "OK" in out_b
    assert "waiting for" in err_a + err_b  # the second one said it waits for the lock
    assert (tmp_path / "tiny" / "BUILT").exists()
    # 3. a later run loads the cached build without compiling again
    c = subprocess.run(
        [sys.executable, str(HELPER), str(tmp_path)], capture_output=True, text=True, timeout=300
    )
    assert c.returncode == 0 and "compiling" not in c.stderr


def test_failed_build_falls_back_with_one_warning(tmp_path, monkeypatch):
    import nvdrec.native.build as build

    monkeypatch.setattr(build, "_module", None)
    monkeypatch.setattr(build, "_failure", None)
    monkeypatch.setattr(build, "_warned", False)

    def broken(verbose=False):
        raise build.BuildError("nvcc exploded (test)")

    monkeypatch.setattr(build, "load", broken)
    with pytest.warns(RuntimeWarning, match="using the torch path.*nvcc exploded.*nvdrec build"):
        assert build.try_load() is None
    assert build.try_load() is None  # remembered, no second warning
