"""Data structures: meshes, materials, textures, cameras."""

from . import camera
from .camera import Cameras
from .material import Material, Texture2D
from .mesh import Mesh, auto_normals, compute_tangents

__all__ = ["Cameras", "Material", "Mesh", "Texture2D", "auto_normals", "camera", "compute_tangents"]
