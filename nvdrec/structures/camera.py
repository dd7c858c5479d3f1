"""Cameras: OpenGL projection, look-at, orbit and random views, convention conversions.

Conventions (docs/conventions.md): world right-handed, +Y up; camera looks down -Z;
4x4 matrices act on column vectors; ``mv`` maps world to camera, ``mvp = proj @ mv``.
:func:`perspective` negates the y row (as nvdiffrec's projection does) so that row 0
of a rasterized image (NDC y = -1) is the *top* of the picture and images can be
written to files without flipping.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

__all__ = [
    "Cameras",
    "blender_to_opengl_world",
    "llff_to_opengl",
    "look_at",
    "opencv_to_opengl",
    "orbit_views",
    "validation_views",
    "perspective",
    "perspective_from_intrinsics",
    "random_views",
    "rotate_x",
    "rotate_y",
    "scale",
    "translate",
]


def _t(rows, device=None) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float32, device=device)


def perspective(
    fovy: float = math.radians(45.0),
    aspect: float = 1.0,
    near: float = 0.1,
    far: float = 1000.0,
    device=None,
) -> torch.Tensor:
    """OpenGL perspective projection [4, 4] with the y row negated (row 0 = top).

    Args:
        fovy: vertical field of view in radians.
        aspect: width / height.
    """
    y = math.tan(fovy / 2.0)
    return _t(
        [
            [1.0 / (y * aspect), 0.0, 0.0, 0.0],
            [0.0, -1.0 / y, 0.0, 0.0],
            [0.0, 0.0, -(far + near) / (far - near), -(2.0 * far * near) / (far - near)],
            [0.0, 0.0, -1.0, 0.0],
        ],
        device,
    )


def perspective_from_intrinsics(
    fx: float,
    fy: float,
    cx: float,
    cy: float,
    width: int,
    height: int,
    near: float = 0.1,
    far: float = 1000.0,
    device=None,
) -> torch.Tensor:
    """Projection [4, 4] for pinhole intrinsics in pixels (OpenCV-style, origin at the
    top-left corner of the top-left pixel, cx/cy measured rightwards/downwards), for an
    OpenGL camera (looking down -Z, +Y up) and our row-0-is-top image order."""
    return _t(
        [
            [2.0 * fx / width, 0.0, 1.0 - 2.0 * cx / width, 0.0],
            [0.0, -2.0 * fy / height, 1.0 - 2.0 * cy / height, 0.0],
            [0.0, 0.0, -(far + near) / (far - near), -(2.0 * far * near) / (far - near)],
            [0.0, 0.0, -1.0, 0.0],
        ],
        device,
    )


def translate(x: float, y: float, z: float, device=None) -> torch.Tensor:
    """Translation matrix [4, 4]."""
    return _t([[1, 0, 0, x], [0, 1, 0, y], [0, 0, 1, z], [0, 0, 0, 1]], device)


def scale(s: float, device=None) -> torch.Tensor:
    """Uniform scale matrix [4, 4]."""
    return _t([[s, 0, 0, 0], [0, s, 0, 0], [0, 0, s, 0], [0, 0, 0, 1]], device)


def rotate_x(a: float, device=None) -> torch.Tensor:
    """Rotation by ``a`` radians about +X (right-handed) [4, 4]."""
    c, s = math.cos(a), math.sin(a)
    return _t([[1, 0, 0, 0], [0, c, -s, 0], [0, s, c, 0], [0, 0, 0, 1]], device)


def rotate_y(a: float, device=None) -> torch.Tensor:
    """Rotation by ``a`` radians about +Y (right-handed) [4, 4]."""
    c, s = math.cos(a), math.sin(a)
    return _t([[c, 0, s, 0], [0, 1, 0, 0], [-s, 0, c, 0], [0, 0, 0, 1]], device)


def look_at(eye, at=(0.0, 0.0, 0.0), up=(0.0, 1.0, 0.0), device=None) -> torch.Tensor:
    """World-to-camera matrix [4, 4] of a camera at ``eye`` looking at ``at`` (-Z forward)."""
    eye, at, up = (np.asarray(v, dtype=np.float64) for v in (eye, at, up))
    back = eye - at
    back /= np.linalg.norm(back)
    right = np.cross(up, back)
    if np.linalg.norm(right) < 1e-9:  # looking along up: pick another up
        right = np.cross(np.array([0.0, 0.0, 1.0]), back)
    right /= np.linalg.norm(right)
    true_up = np.cross(back, right)
    r = np.stack([right, true_up, back])
    m = np.eye(4)
    m[:3, :3] = r
    m[:3, 3] = -r @ eye
    return torch.tensor(m, dtype=torch.float32, device=device)


@dataclass(frozen=True)
class Cameras:
    """A batch of views.

    Attributes:
        mv: world-to-camera [B, 4, 4].
        mvp: projection @ mv [B, 4, 4].
        campos: camera centres in world space [B, 3].
        resolution: (H, W) of the images.
    """

    mv: torch.Tensor
    mvp: torch.Tensor
    campos: torch.Tensor
    resolution: tuple[int, int]

    def __len__(self) -> int:
        return int(self.mv.shape[0])

    def to(self, device) -> Cameras:
        return Cameras(
            self.mv.to(device), self.mvp.to(device), self.campos.to(device), self.resolution
        )

    @staticmethod
    def from_mv(mv: torch.Tensor, proj: torch.Tensor, resolution) -> Cameras:
        """Build from world-to-camera matrices [B, 4, 4] and projection(s) [4, 4] or [B, 4, 4]."""
        mv = mv.reshape(-1, 4, 4).float()
        campos = torch.linalg.inv(mv)[:, :3, 3]
        return Cameras(mv, proj.float() @ mv, campos, (int(resolution[0]), int(resolution[1])))


def orbit_views(
    n: int,
    radius: float = 3.0,
    elevation_deg: float = 30.0,
    fovy: float = math.radians(45.0),
    resolution=(512, 512),
    near_far=(0.1, 1000.0),
    device=None,
) -> Cameras:
    """``n`` views on a circle around +Y, alternating elevation +-``elevation_deg``."""
    proj = perspective(fovy, resolution[1] / resolution[0], *near_far, device=device)
    mvs = []
    for i in range(n):
        az = 2.0 * math.pi * i / max(n, 1)
        el = (
            math.radians(elevation_deg) * (1 if i % 2 == 0 else -1) * (0.5 + 0.5 * math.cos(az * 3))
        )
        mvs.append(translate(0, 0, -radius) @ rotate_x(el) @ rotate_y(az))
    return Cameras.from_mv(torch.stack(mvs).to(device), proj, resolution)


def validation_views(
    n: int = 50,
    radius: float = 3.0,
    elevation: float = 0.4,
    fovy: float = math.radians(45.0),
    resolution=(512, 512),
    near_far=(0.1, 1000.0),
    device=None,
) -> Cameras:
    """nvdiffrec's validation orbit for a reference mesh: view ``i`` of ``n`` has
    ``mv = translate(0, 0, -radius) @ rotate_x(elevation) @ rotate_y(2 pi i / n)``, i.e.
    the camera circles the +Y axis looking down at the object from ``elevation`` radians
    (0.4, about 23 degrees) above the horizon. Using the same views makes the validation
    PSNR comparable with published nvdiffrec numbers."""
    proj = perspective(fovy, resolution[1] / resolution[0], *near_far, device=device)
    mvs = [
        translate(0, 0, -radius) @ rotate_x(elevation) @ rotate_y(2.0 * math.pi * i / max(n, 1))
        for i in range(n)
    ]
    return Cameras.from_mv(torch.stack(mvs).to(device), proj, resolution)


def _random_rotation(gen: torch.Generator) -> torch.Tensor:
    # uniform random rotation from a normalised Gaussian quaternion
    q = torch.randn(4, generator=gen, dtype=torch.float64)
    w, x, y, z = (q / q.norm()).tolist()
    r = np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )
    m = np.eye(4)
    m[:3, :3] = r
    return torch.tensor(m, dtype=torch.float32)


def random_views(
    n: int,
    generator: torch.Generator | list[torch.Generator],
    radius: float = 3.0,
    fovy: float = math.radians(45.0),
    resolution=(512, 512),
    jitter: float = 0.25,
    near_far=(0.1, 1000.0),
    device=None,
) -> Cameras:
    """``n`` views with uniformly random rotations about the origin at distance
    ``radius``, each shifted by a uniform translation in [-jitter, jitter]^3 (the
    sampling nvdiffrec uses for synthetic training data). ``generator``: one generator for
    all views, or a list with one generator per view."""
    proj = perspective(fovy, resolution[1] / resolution[0], *near_far)
    gens = generator if isinstance(generator, (list, tuple)) else [generator] * n
    if len(gens) != n:
        raise ValueError(f"random_views: {len(gens)} generators for {n} views")
    mvs = []
    for g in gens:
        t = (torch.rand(3, generator=g, dtype=torch.float64) * 2 - 1) * jitter
        mvs.append(translate(*t.tolist()) @ translate(0, 0, -radius) @ _random_rotation(g))
    return Cameras.from_mv(torch.stack(mvs), proj, resolution).to(device)


# --------------------------------------------------------------- conventions


def blender_to_opengl_world() -> torch.Tensor:
    """[4, 4] taking Blender/NeRF world coordinates (+Z up) to ours (+Y up).

    A rotation of -90 degrees about X: (x, y, z) -> (x, z, -y).
    """
    return rotate_x(-math.pi / 2.0)


def opencv_to_opengl(c2w: torch.Tensor) -> torch.Tensor:
    """Camera-to-world [..., 4, 4] of an OpenCV camera (x right, y down, z forward)
    to the same camera in OpenGL axes (x right, y up, looking down -z)."""
    flip = torch.diag(torch.tensor([1.0, -1.0, -1.0, 1.0], dtype=c2w.dtype, device=c2w.device))
    return c2w @ flip


def llff_to_opengl(poses: torch.Tensor) -> torch.Tensor:
    """LLFF ``poses_bounds`` camera-to-world [..., 3, 4+] with columns (down, right,
    back, centre) to OpenGL camera-to-world [..., 4, 4] (right, up, back, centre)."""
    p = poses[..., :3, :4]
    c2w = torch.cat([p[..., 1:2], -p[..., 0:1], p[..., 2:3], p[..., 3:4]], dim=-1)
    bottom = torch.zeros(*c2w.shape[:-2], 1, 4, dtype=c2w.dtype, device=c2w.device)
    bottom[..., 0, 3] = 1.0
    return torch.cat([c2w, bottom], dim=-2)
