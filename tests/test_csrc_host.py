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


def test_native_calls_name_every_argument():
    """Every call of a kernel function from Python passes all its arguments by name, and
    the names are the ones the bindings declare (py::arg in csrc/binding.cpp and each
    family's csrc/<family>/<family>_bind.cpp): an argument in the wrong
    place is then a TypeError, never a silently wrong result. The counts of py::arg match
    the declarations (pybind11 checks that at compile time too)."""
    import ast
    import re

    csrc = ROOT / "csrc"
    binding = "\n".join(p.read_text() for p in [csrc / "binding.cpp", *csrc.glob("*/*_bind.cpp")])
    declared = {
        m.group(1): re.findall(r'py::arg\("(\w+)"\)', m.group(2))
        for m in re.finditer(r'm\.def\("(\w+)", &nvdrec::\w+(.*?)\);', binding, re.S)
    }
    assert declared and all(declared.values()), "every m.def names its arguments"
    calls = 0
    for path in [*(ROOT / "nvdrec").rglob("*.py"), *(ROOT / "tests").rglob("*.py")]:
        tree = ast.parse(path.read_text())
        # module functions that return a dict literal: `**f(...)` passes its keys by name
        returns = {
            f.name: [k.value for k in r.value.keys]
            for f in tree.body
            if isinstance(f, ast.FunctionDef)
            for r in ast.walk(f)
            if isinstance(r, ast.Return) and isinstance(r.value, ast.Dict)
        }
        for node in ast.walk(tree):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Call)
                and getattr(node.func.value.func, "id", None) == "load"
            ):
                continue
            name, where = node.func.attr, f"{path.relative_to(ROOT)}:{node.lineno}"
            assert name in declared, f"{where}: load().{name} is not bound in binding.cpp"
            assert not node.args, f"{where}: load().{name} takes positional arguments"
            names = []
            for k in node.keywords:
                if k.arg is None:  # **helper(...): the keys of the dict it returns
                    assert isinstance(k.value, ast.Call), f"{where}: ** of a helper call only"
                    names += returns[k.value.func.id]
                else:
                    names.append(k.arg)
            assert sorted(names) == sorted(declared[name]), where
            assert len(set(names)) == len(names), where
            calls += 1
    assert calls >= len(declared) - 1  # every kernel function is called (the check aside)


def test_every_native_source_is_built():
    """Each .cpp/.cu file under csrc/ (the kernels, their glue, each family's bindings) is
    in the build's SOURCES, and binding.cpp calls every family's bind_ function."""
    from nvdrec.native.build import SOURCES

    csrc = ROOT / "csrc"
    files = {str(p.relative_to(csrc)) for p in [*csrc.glob("*.cpp"), *csrc.glob("*/*.c*")]}
    assert files == set(SOURCES)
    binding = (csrc / "binding.cpp").read_text()
    for bind in csrc.glob("*/*_bind.cpp"):
        family = bind.parent.name
        assert f"void bind_{family}(pybind11::module_& m) {{" in bind.read_text()
        assert f"nvdrec::bind_{family}(m);" in binding, family
