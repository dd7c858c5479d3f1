"""Backend selection: the nvdiffrast adapter dispatches to nvdiffrast's functions."""

import importlib
import sys
import types

import pytest
import torch

from nvdrec import ops

# the package re-exports functions under the submodules' names: fetch the modules
_rast, _interp, _tex, _aa = (
    importlib.import_module(f"nvdrec.ops.{m}")
    for m in ("rasterize", "interpolate", "texture", "antialias")
)


def _pretend_gpu(monkeypatch):
    """Let the adapter be chosen for CPU tensors (nvdiffrast itself is faked)."""
    for mod in (_rast, _interp, _tex, _aa):
        monkeypatch.setattr(mod, "pick_backend", lambda backend, *t: backend)


class _FakeDr(types.ModuleType):
    def __init__(self):
        super().__init__("nvdiffrast.torch")
        self.calls = []

    def RasterizeCudaContext(self, device=None):  # noqa: N802 - nvdiffrast's name
        self.calls.append(("ctx", device))
        return "CTX"

    def rasterize(self, ctx, pos, tri, resolution, ranges=None, grad_db=True):
        self.calls.append(("rasterize", ctx, tuple(resolution), tri.dtype))
        return "RAST", "DB"

    def interpolate(self, attr, rast, tri, rast_db=None, diff_attrs=None):
        self.calls.append(("interpolate", diff_attrs))
        return "OUT", None

    def texture(self, tex, uv, **kw):
        self.calls.append(("texture", kw["filter_mode"], kw["boundary_mode"]))
        return "TEX"

    def antialias(self, color, rast, pos, tri, pos_gradient_boost=1.0):
        self.calls.append(("antialias", pos_gradient_boost))
        return "AA"


@pytest.fixture
def fake_nvdiffrast(monkeypatch):
    fake = _FakeDr()
    pkg = types.ModuleType("nvdiffrast")
    pkg.torch = fake
    monkeypatch.setitem(sys.modules, "nvdiffrast", pkg)
    monkeypatch.setitem(sys.modules, "nvdiffrast.torch", fake)
    _pretend_gpu(monkeypatch)
    from nvdrec.ops import _nvdiffrast

    _nvdiffrast.context.cache_clear()
    return fake


def test_adapter_dispatches_every_op(fake_nvdiffrast):
    pos = torch.zeros(1, 3, 4)
    tri = torch.tensor([[0, 1, 2]], dtype=torch.int64)
    assert ops.rasterize(pos, tri, (4, 4), backend="nvdiffrast") == ("RAST", "DB")
    rast = torch.zeros(1, 4, 4, 4)
    assert ops.interpolate(torch.zeros(3, 2), rast, tri, backend="nvdiffrast")[0] == "OUT"
    uv = torch.zeros(1, 4, 4, 2)
    assert ops.texture(torch.zeros(1, 8, 8, 3), uv, backend="nvdiffrast") == "TEX"
    assert (
        ops.antialias(
            torch.zeros(1, 4, 4, 3), rast, pos, tri, pos_gradient_boost=2.0, backend="nvdiffrast"
        )
        == "AA"
    )
    names = [c[0] for c in fake_nvdiffrast.calls]
    assert names == ["ctx", "rasterize", "interpolate", "texture", "antialias"]
    assert fake_nvdiffrast.calls[1][3] == torch.int32  # indices converted for nvdiffrast
    assert fake_nvdiffrast.calls[3][1:] == ("linear", "wrap")


def test_missing_nvdiffrast_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "nvdiffrast", None)
    _pretend_gpu(monkeypatch)
    with pytest.raises(ImportError, match="optional nvdiffrast package"):
        ops.interpolate(
            torch.zeros(3, 2),
            torch.zeros(1, 2, 2, 4),
            torch.zeros(1, 3, dtype=torch.int32),
            backend="nvdiffrast",
        )


def test_cpu_tensors_refuse_gpu_backends():
    with pytest.raises(ValueError, match="needs CUDA tensors"):
        ops.rasterize(
            torch.zeros(1, 3, 4), torch.zeros(1, 3, dtype=torch.int32), (4, 4), backend="cuda"
        )
    with pytest.raises(ValueError, match="backend must be one of"):
        ops.rasterize(
            torch.zeros(1, 3, 4), torch.zeros(1, 3, dtype=torch.int32), (4, 4), backend="vulkan"
        )
