"""Rendering: environment light (split-sum), neural material, mesh renderer, turntables."""

from .bake import bake_textures, dilate
from .light import EnvironmentLight, split_sum_lut
from .mlptexture import MLPTexture3D
from .renderer import RasterContext, render_mesh
from .turntable import load_run, turntable, write_frames

__all__ = [
    "EnvironmentLight",
    "split_sum_lut",
    "MLPTexture3D",
    "RasterContext",
    "render_mesh",
    "turntable",
    "load_run",
    "write_frames",
    "bake_textures",
    "dilate",
]
