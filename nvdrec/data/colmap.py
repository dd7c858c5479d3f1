"""COLMAP datasets: ``sparse/0/{cameras,images}.{bin,txt}`` + ``images/`` (+ ``masks/``).

Formats as documented by COLMAP ("Output Format"): cameras (id, model, width, height,
params) and images (id, world-to-camera quaternion qw qx qy qz and translation, camera id,
file name). Poses are OpenCV cameras (x right, y down, z forward) and become OpenGL
cameras; the scene is recentred on the point closest to all optical axes, as for LLFF.
PINHOLE and SIMPLE_PINHOLE are supported; distorted models (SIMPLE_RADIAL, RADIAL, OPENCV,
...) must be undistorted first (``colmap image_undistorter`` writes PINHOLE cameras).
Alpha comes from ``masks/`` (``NAME`` or ``NAME.png``), else ``masks_auto/``, else RGBA
images; without any, object masks are made from the photos, cameras and sparse points
into ``masks_auto/`` (:mod:`nvdrec.data.automask`, needs OpenCV).
"""

from __future__ import annotations

import math
import struct
from pathlib import Path

import torch

from ..errors import DataError, MissingFileError
from ..structures import camera as cam
from .llff import axes_focus_point
from .nerf import NeRFDataset, check_camera

__all__ = [
    "ColmapDataset",
    "is_colmap_folder",
    "pinhole_intrinsics",
    "read_cameras",
    "read_images",
    "read_points3d",
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


def _sparse(folder: Path) -> Path:
    for cand in (folder / "sparse" / "0", folder / "sparse"):
        if (cand / "cameras.bin").is_file() or (cand / "cameras.txt").is_file():
            return cand
    raise MissingFileError(
        f"'{folder}' has no sparse/0/cameras.bin or cameras.txt (a COLMAP model)"
    )


def is_colmap_folder(path: Path) -> bool:
    try:
        _sparse(Path(path))
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


def _quat_to_rot(q, where: str = "COLMAP image") -> torch.Tensor:
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


def _mask_folder(folder: Path, first_image: Path, auto: bool) -> Path | None:
    """The masks of a COLMAP folder: ``masks/`` when present, else ``masks_auto/``; when
    neither exists and the images have no alpha, ``auto`` makes ``masks_auto/`` from the
    photos (:func:`nvdrec.data.automask.auto_masks`). None: alpha comes from the images."""
    if (folder / "masks").is_dir():
        return folder / "masks"
    made = folder / "masks_auto"
    if made.is_dir():
        return made
    sparse = _sparse(folder)
    has_points = any((sparse / f"points3D.{e}").is_file() for e in ("bin", "txt"))
    if not auto or not has_points or not first_image.is_file():
        return None  # alpha from the images, or the loader's "needs object masks" error
    from ..io.image import read_image

    if read_image(first_image).shape[-1] == 4:
        return None
    from .automask import auto_masks

    def say(line):
        print(f"nvdrec: masks: {line}", flush=True)

    say(f"'{folder}' has no masks/; making object masks from the photos into '{made}'")
    try:
        auto_masks(folder, made, progress=say)
    except DataError as e:
        raise DataError(
            f"'{folder}' has no masks/ and its images no alpha, and automatic masks failed: "
            f"{e}. The method needs object masks: put one mask image per photo in masks/"
        ) from None
    say(f"done: check '{made / 'overview.png'}'; masks of your own in masks/ take precedence")
    return made


class ColmapDataset(NeRFDataset):
    """Cameras and masked images of a COLMAP reconstruction (all views train and
    all are validated, as nvdiffrec does for LLFF captures). Alpha comes from
    ``masks/``, else ``masks_auto/``, else RGBA images; without any, masks are made from
    the photos into ``masks_auto/`` (needs OpenCV; ``auto_masks=False`` refuses)."""

    def __init__(
        self,
        folder,
        split="train",
        resolution=None,
        near_far=(0.1, 1000.0),
        device="cpu",
        max_side=None,
        cache=None,
        auto_masks: bool = True,
    ) -> None:
        folder = Path(folder)
        sparse = _sparse(folder)
        cams = read_cameras(sparse)
        entries = sorted(read_images(sparse), key=lambda e: e[0])
        if not entries:
            raise DataError(f"'{sparse}' lists no images")
        c2ws, items = [], []
        seen = set()
        for name, q, t, cid in entries:
            where = f"'{sparse}' image '{name}'"
            parts = Path(name).parts
            if not name or Path(name).is_absolute() or ".." in parts:
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
                raise DataError(
                    f"image '{name}' uses camera {cid}, which '{sparse}' does not define"
                )
            model, w0, h0, params = cams[cid]
            fx, fy, cx, cy = pinhole_intrinsics(model, params, cid)
            rot = _quat_to_rot(q, where)
            c2w_cv = torch.eye(4, dtype=torch.float64)
            c2w_cv[:3, :3] = rot.T
            c2w_cv[:3, 3] = -rot.T @ torch.tensor(t, dtype=torch.float64)
            check_camera(f"{where} (camera {cid})", c2w_cv, fx, fy, cx, cy, w0, h0)
            c2ws.append(cam.opencv_to_opengl(c2w_cv))
            items.append((name, w0, h0, fx, fy, cx, cy))
        c2w = torch.stack(c2ws)
        self.centre = (
            axes_focus_point(c2w[:, :3, 3], -c2w[:, :3, 2]) if len(c2w) > 1 else c2w[0, :3, 3] * 0
        )
        c2w[:, :3, 3] -= self.centre
        self.root = folder.resolve()
        self._start_loading(len(items), device, max_side, cache)
        projs = []
        mask_dir = _mask_folder(folder, folder / "images" / items[0][0], auto_masks)
        has_masks = mask_dir is not None
        for name, w0, h0, fx, fy, cx, cy in items:
            ip = folder / "images" / name
            if not ip.is_file():
                raise MissingFileError(f"image '{ip}' listed by the COLMAP model does not exist")
            if has_masks:
                mp = next(
                    (p for p in (mask_dir / name, mask_dir / (name + ".png")) if p.is_file()),
                    None,
                )
                if mp is None:
                    raise MissingFileError(
                        f"no mask for '{name}' in '{mask_dir}' (expected '{name}' or '{name}.png')"
                    )
            else:
                mp = None
            t, resolution, full = self._load_view(
                ip,
                resolution,
                mp,
                no_alpha=f"'{ip}' has no alpha channel and '{folder / 'masks'}' does not exist: "
                "the method needs object masks. Put one mask image per photo in masks/ (same "
                "names), or use RGBA images, or let nvdrec make them from the photos (a model "
                "with sparse points, as 'nvdrec poses' writes; then 'nvdrec masks FOLDER')",
            )
            h, w = resolution
            self._store(t)
            sx, sy = w / w0, h / h0
            projs.append(
                cam.perspective_from_intrinsics(fx * sx, fy * sy, cx * sx, cy * sy, w, h, *near_far)
            )
        self.images = self._stored_images().to(device)
        self.mv = torch.linalg.inv(c2w).float().to(device)
        self.proj = torch.stack(projs).to(device)
        self.resolution = tuple(self.images.shape[1:3])
