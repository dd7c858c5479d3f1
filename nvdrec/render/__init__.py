"""Rendering: neural material (and, later, lights and the mesh renderer)."""

from .mlptexture import MLPTexture3D

__all__ = ["MLPTexture3D"]
