"""Rendering: environment light (split-sum), neural material, mesh renderer."""

from .light import EnvironmentLight, split_sum_lut
from .mlptexture import MLPTexture3D
from .renderer import RasterContext, render_mesh

__all__ = ["EnvironmentLight", "split_sum_lut", "MLPTexture3D", "RasterContext", "render_mesh"]
