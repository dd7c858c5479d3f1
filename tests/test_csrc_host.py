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


def test_installed_package_carries_every_kernel_source():
    """Every file the kernel build compiles (SOURCES) and every header under csrc/ matches
    the package-data patterns, so a non-editable install (`pip install .`) can build the
    kernels too."""
    import fnmatch

    from nvdrec.native.build import SOURCES

    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11

    root = Path(__file__).resolve().parents[1]
    meta = tomllib.loads((root / "pyproject.toml").read_text())
    patterns = meta["tool"]["setuptools"]["package-data"]["nvdrec._csrc"]
    csrc = root / "csrc"
    files = set(SOURCES) | {str(h.relative_to(csrc)) for h in csrc.rglob("*.h")}
    for rel in sorted(files):
        assert (csrc / rel).is_file(), rel
        # setuptools globs do not cross folders: "*/*.cu" is one level down, like fnmatch
        # on the path with "/" kept literal
        assert any(fnmatch.fnmatch(rel, p) and rel.count("/") == p.count("/") for p in patterns), (
            f"{rel} is not installed by the package-data patterns {patterns}"
        )
