"""Geometry: tetrahedral grids, marching tetrahedra, DMTet, FlexiCubes, mesh clean-up,
decimation, smoothness-preconditioned vertex positions."""

from .cavities import enclosed_outside, fill_cavities
from .cleanup import (
    CleanupReport,
    clean_mesh,
    connected_components,
    hidden_faces,
    seen_faces,
    weld_vertices,
)
from .decimate import decimate
from .dmtet import DMTetGeometry, sdf_reg_weight, sdf_regularizer
from .flexicubes import FlexiCubesGeometry, FlexiCubesResult, cube_grid, flexicubes, patch_table
from .marching_tets import MarchingTetsResult, marching_tets
from .mesh_geometry import MeshGeometry, laplacian_loss
from .smooth_param import SmoothPositions, UniformAdam, solve_smooth
from .tetgrid import bcc_grid, cubes_per_axis, tet_edges, tet_grid
from .unwrap import unwrap_uv

__all__ = [
    "tet_grid",
    "bcc_grid",
    "cubes_per_axis",
    "tet_edges",
    "marching_tets",
    "MarchingTetsResult",
    "DMTetGeometry",
    "FlexiCubesGeometry",
    "FlexiCubesResult",
    "flexicubes",
    "cube_grid",
    "patch_table",
    "sdf_regularizer",
    "sdf_reg_weight",
    "clean_mesh",
    "seen_faces",
    "hidden_faces",
    "CleanupReport",
    "connected_components",
    "weld_vertices",
    "decimate",
    "SmoothPositions",
    "UniformAdam",
    "enclosed_outside",
    "fill_cavities",
    "solve_smooth",
    "unwrap_uv",
    "MeshGeometry",
    "laplacian_loss",
]
