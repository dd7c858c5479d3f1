"""Where the CUDA/C++ sources of the kernels are."""

from __future__ import annotations

from pathlib import Path

__all__ = ["csrc_dir"]


def csrc_dir() -> Path | None:
    """Folder of the CUDA/C++ sources: ``csrc/`` of a source checkout, or the copy
    installed inside the package (``nvdrec/_csrc``)."""
    here = Path(__file__).resolve().parent
    for cand in (here.parent.parent / "csrc", here.parent / "_csrc"):
        if cand.is_dir() and any(cand.rglob("*.cu")):
            return cand
    return None
