"""Readers of a COLMAP model folder (``sparse/0/{cameras,images,points3D}.{bin,txt}``),
as documented by COLMAP ("Output Format"): cameras (id, model, width, height, params),
images (id, world-to-camera quaternion qw qx qy qz and translation, camera id, file name)
and the sparse points (position, colour, error, track). Used by the COLMAP dataset
(:mod:`nvdrec.data.colmap`), the masks from photos and the poses from photos."""

from __future__ import annotations

import math
import struct
from pathlib import Path
from typing import NamedTuple

import torch

from ..errors import DataError, MissingFileError

__all__ = [
    "is_colmap_folder",
    "pinhole_intrinsics",
    "quat_to_rot",
    "read_cameras",
    "read_images",
    "read_points3d",
    "read_views",
    "sparse_folder",
    "View",
]

# model id -> (name, number of params)
_MODELS = {
    0: ("SIMPLE_PINHOLE", 3),
    1: ("PINHOLE", 4),
    2: ("SIMPLE_RADIAL", 4),
    3: ("RADIAL", 5),
    4: ("OPENCV", 8),
    5: ("OPENCV_FISHEYE", 8),
    6: ("FULL_OPENCV", 12),
    7: ("FOV", 5),
    8: ("SIMPLE_RADIAL_FISHEYE", 4),
    9: ("RADIAL_FISHEYE", 5),
    10: ("THIN_PRISM_FISHEYE", 12),
}


def sparse_folder(folder: Path) -> Path:
    for cand in (folder / "sparse" / "0", folder / "sparse"):
        if (cand / "cameras.bin").is_file() or (cand / "cameras.txt").is_file():
            return cand
    raise MissingFileError(
        f"'{folder}' has no sparse/0/cameras.bin or cameras.txt (a COLMAP model)"
    )


def is_colmap_folder(path: Path) -> bool:
    try:
        sparse_folder(Path(path))
        return True
    except MissingFileError:
        return False


class _Reader:
    def __init__(self, path: Path) -> None:
        self.data, self.pos, self.path = path.read_bytes(), 0, path

    def take(self, fmt: str):
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.data):
            raise DataError(f"'{self.path}' is truncated")
        out = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += size
        return out

    def cstring(self) -> str:
        end = self.data.find(b"\0", self.pos)
        if end < 0:
            raise DataError(f"'{self.path}' is truncated")
        s = self.data[self.pos : end].decode("utf-8", "replace")
        self.pos = end + 1
        return s


def read_cameras(sparse: Path) -> dict:
    """{camera id: (model name, width, height, params)}."""
    out = {}
    if (sparse / "cameras.bin").is_file():
        r = _Reader(sparse / "cameras.bin")
        (n,) = r.take("<Q")
        for _ in range(n):
            cid, model, w, h = r.take("<iiQQ")
            if model not in _MODELS:
                raise DataError(f"'{r.path}': unknown camera model id {model}")
            name, k = _MODELS[model]
            out[cid] = (name, w, h, r.take(f"<{k}d"))
        return out
    path = sparse / "cameras.txt"
    for lineno, line in enumerate(
        path.read_text(encoding="utf-8", errors="replace").splitlines(), 1
    ):
        if not line.strip() or line.startswith("#"):
            continue
        t = line.split()
        try:
            out[int(t[0])] = (t[1], int(t[2]), int(t[3]), tuple(float(x) for x in t[4:]))
        except (IndexError, ValueError):
            raise DataError(f"{path}:{lineno}: malformed camera line") from None
    return out


def read_images(sparse: Path) -> list:
    """[(name, qvec (w, x, y, z), tvec, camera id)] in file order."""
    out = []
    if (sparse / "images.bin").is_file():
        r = _Reader(sparse / "images.bin")
        (n,) = r.take("<Q")
        for _ in range(n):
            _, qw, qx, qy, qz, tx, ty, tz, cid = r.take("<idddddddi")
            name = r.cstring()
            (npts,) = r.take("<Q")
            r.pos += npts * struct.calcsize("<ddq")
            out.append((name, (qw, qx, qy, qz), (tx, ty, tz), cid))
        return out
    path = sparse / "images.txt"
    if not path.is_file():
        raise MissingFileError(f"'{sparse}' has no images.bin or images.txt")
    lines = [
        ln
        for ln in path.read_text(encoding="utf-8", errors="replace").splitlines()
        if not ln.startswith("#")
    ]
    for i in range(0, len(lines), 2):
        t = lines[i].split()
        if not t:
            continue
        try:
            out.append(
                (" ".join(t[9:]), tuple(map(float, t[1:5])), tuple(map(float, t[5:8])), int(t[8]))
            )
        except (IndexError, ValueError):
            raise DataError(f"{path}: malformed image line {lines[i][:60]!r}") from None
    return out


def pinhole_intrinsics(model: str, params: tuple, cid) -> tuple:
    """(fx, fy, cx, cy) of a PINHOLE or SIMPLE_PINHOLE camera; other models are refused
    (the images must be undistorted first)."""
    if model == "PINHOLE":
        return tuple(params[:4])
    if model == "SIMPLE_PINHOLE":
        return params[0], params[0], params[1], params[2]
    raise DataError(
        f"camera {cid} uses the {model} model; undistort the images first "
        "(colmap image_undistorter, or nvdrec poses, writes PINHOLE cameras)"
    )


def read_points3d(sparse: Path) -> tuple:
    """The sparse points of a COLMAP model: (xyz [P, 3] float64, track length [P] int64,
    the number of images that observe each point). Empty arrays when the model has no
    points3D file."""
    import numpy as np

    xyz, track = [], []
    if (sparse / "points3D.bin").is_file():
        r = _Reader(sparse / "points3D.bin")
        (n,) = r.take("<Q")
        for _ in range(n):
            _, x, y, z, _, _, _, _, length = r.take("<QdddBBBdQ")
            r.pos += length * struct.calcsize("<ii")
            if r.pos > len(r.data):
                raise DataError(f"'{r.path}' is truncated")
            xyz.append((x, y, z))
            track.append(length)
    elif (sparse / "points3D.txt").is_file():
        path = sparse / "points3D.txt"
        for lineno, line in enumerate(
            path.read_text(encoding="utf-8", errors="replace").splitlines(), 1
        ):
            t = line.split()
            if not t or line.startswith("#"):
                continue
            try:
                xyz.append(tuple(float(v) for v in t[1:4]))
                track.append((len(t) - 8) // 2)
            except (IndexError, ValueError):
                raise DataError(f"{path}:{lineno}: malformed point line") from None
    return np.asarray(xyz, np.float64).reshape(-1, 3), np.asarray(track, np.int64)


def quat_to_rot(q, where: str = "COLMAP image") -> torch.Tensor:
    w, x, y, z = (float(v) for v in q)
    n = (w * w + x * x + y * y + z * z) ** 0.5
    if not n > 1e-12 or not math.isfinite(n):
        raise DataError(f"{where}: the quaternion {tuple(q)} is zero or not finite")
    w, x, y, z = w / n, x / n, y / n, z / n
    return torch.tensor(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ],
        dtype=torch.float64,
    )


class View(NamedTuple):
    """One registered image of a COLMAP model: its file name (a path inside ``images/``),
    the world-to-camera rotation R [3, 3] (float64) and translation t (x_c = R x + t,
    OpenCV axes), the camera's image size and its pinhole intrinsics."""

    name: str
    rot: torch.Tensor
    t: tuple
    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float
    camera: int


def read_views(folder: Path) -> tuple:
    """(the model folder, [View] in file-name order) of a COLMAP folder, each image
    checked: a name inside ``images/`` listed once, a finite pose, a defined pinhole
    camera. Raises DataError naming the image otherwise."""
    sparse = sparse_folder(folder)
    cams = read_cameras(sparse)
    views, seen = [], set()
    for name, q, t, cid in sorted(read_images(sparse), key=lambda e: e[0]):
        where = f"'{sparse}' image '{name}'"
        if not name or Path(name).is_absolute() or ".." in Path(name).parts:
            raise DataError(
                f"{where}: image names are paths inside '{folder / 'images'}'; this one "
                "leads outside it"
            )
        if name in seen:
            raise DataError(f"{where} is listed twice; each photo may appear once")
        seen.add(name)
        if not all(math.isfinite(v) for v in (*q, *t)):
            raise DataError(f"{where}: the pose (quaternion, translation) is not finite")
        if cid not in cams:
            raise DataError(f"image '{name}' uses camera {cid}, which '{sparse}' does not define")
        model, w, h, params = cams[cid]
        fx, fy, cx, cy = pinhole_intrinsics(model, params, cid)
        views.append(View(name, quat_to_rot(q, where), tuple(t), w, h, fx, fy, cx, cy, cid))
    return sparse, views
