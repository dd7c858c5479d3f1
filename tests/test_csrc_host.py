"""Host-side checks of the CUDA math headers (compiled with nvcc for the CPU; no GPU)."""

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc not installed")
def test_rasterize_backward_matches_dual_numbers(tmp_path):
    exe = tmp_path / "check"
    src = ROOT / "tests" / "csrc" / "check_raster_grad.cu"
    build = subprocess.run(
        ["nvcc", "-std=c++17", "-O2", "-I", str(ROOT / "csrc"), str(src), "-o", str(exe)],
        capture_output=True,
        text=True,
    )
    assert build.returncode == 0, build.stderr[-2000:]
    run = subprocess.run([str(exe)], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
