"""Differentiable rendering primitives (torch reference + CUDA kernels).

Semantics follow nvdiffrast's documentation so that code written for it ports by
changing the import; see docs/ops.md.
"""

from ._common import gather_rows, pick_backend, unique_rows
from .antialias import TopologyHash, antialias, antialias_construct_topology_hash
from .hashgrid import HashGridConfig, hashgrid_encode
from .interpolate import interpolate
from .rasterize import DepthPeeler, rasterize
from .shading import shade
from .texture import build_mips, texture

__all__ = [
    "rasterize",
    "DepthPeeler",
    "interpolate",
    "texture",
    "build_mips",
    "antialias",
    "antialias_construct_topology_hash",
    "TopologyHash",
    "hashgrid_encode",
    "HashGridConfig",
    "shade",
    "gather_rows",
    "unique_rows",
    "pick_backend",
]
