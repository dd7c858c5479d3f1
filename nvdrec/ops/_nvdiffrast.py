"""Thin adapter to nvdiffrast, used only when a caller asks for ``backend="nvdiffrast"``.

nvdiffrast is optional (not on PyPI, non-commercial licence); nvdrec never needs it.
"""

from __future__ import annotations

import functools

__all__ = ["module", "context"]


def module():
    """``nvdiffrast.torch``, or a clear error saying how to get it or what to use instead."""
    try:
        import nvdiffrast.torch as dr
    except ImportError:
        raise ImportError(
            "backend='nvdiffrast' needs the optional nvdiffrast package, which is not installed; "
            "use backend='auto' (nvdrec's own kernels) or install nvdiffrast from its repository"
        ) from None
    return dr


@functools.lru_cache(maxsize=8)
def context(device_index: int):
    """One cached nvdiffrast CUDA raster context per device."""
    return module().RasterizeCudaContext(device=f"cuda:{device_index}")


def ctx_for(t):
    return context(t.device.index if t.device.index is not None else 0)
