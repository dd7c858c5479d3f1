"""File formats: OBJ/MTL meshes, PNG/JPEG/HDR/EXR images."""

from .image import linear_to_srgb, read_image, srgb_to_linear, write_image
from .obj import load_mesh, load_mtl, save_mesh

__all__ = [
    "linear_to_srgb",
    "load_mesh",
    "load_mtl",
    "read_image",
    "save_mesh",
    "srgb_to_linear",
    "write_image",
]
