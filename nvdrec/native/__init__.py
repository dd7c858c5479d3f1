"""Native kernels: where their sources are, whether they can be built, and loading.

Importing this package never compiles or loads anything; :func:`backend_report`
only looks at what is installed.
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

from .sources import csrc_dir

__all__ = ["backend_report", "csrc_dir"]


def backend_report() -> dict[str, str]:
    """One line of status per backend: torch, cuda (our kernels), nvdiffrast, tinycudann."""
    import torch

    out = {"torch": f"available (torch {torch.__version__})"}
    src = csrc_dir()
    if not torch.cuda.is_available():
        out["cuda"] = "unavailable: no CUDA device visible to torch"
    elif src is None:
        out["cuda"] = "unavailable: this nvdrec has no CUDA kernel sources"
    elif shutil.which("nvcc") is None and not _cuda_home_nvcc():
        out["cuda"] = "unavailable: nvcc not found (install the CUDA toolkit or set CUDA_HOME)"
    else:
        out["cuda"] = "available (built on first use; 'nvdrec build' compiles now)"
    for mod in ("nvdiffrast", "tinycudann"):
        found = importlib.util.find_spec(mod) is not None
        out[mod] = "importable (optional)" if found else "not installed (optional)"
    return out


def _cuda_home_nvcc() -> bool:
    import os

    home = os.environ.get("CUDA_HOME") or os.environ.get("CUDA_PATH")
    return bool(home) and (Path(home) / "bin" / "nvcc").exists()


def kernels_available() -> bool:
    """True when our CUDA kernels are loaded or can be built and loaded now."""
    from . import build

    return build.try_load() is not None
