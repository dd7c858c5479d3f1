"""Object masks from the photos alone, for a COLMAP folder without ``masks/``.

The object is what every camera looks at and what stands on the support. From the
cameras and sparse points of a COLMAP model (``nvdrec poses`` writes one):

1. **Object points.** Points that fall inside (nearly) every camera's frame lie in the
   region all cameras look at. Among them, RANSAC finds the support planes under the
   object (a table, a cushion on it: planes that every camera looks down on and that
   have points above them); what lies above the highest support is the object.
2. **First masks.** Per photo, the projected object points seed a graph-cut segmentation
   (OpenCV's GrabCut, colour models of object and background): the points themselves are
   object, their convex hull probably object, a margin around it probably background,
   the rest background.
3. **Consistency.** A voxel visual hull is carved from the first masks (a voxel stays
   when nearly every camera sees it inside the object, so one poor mask does not cut
   it), projected into every photo and used as the prior of a second segmentation.

Needs OpenCV (``pip install opencv-python-headless``, or ``nvdrec[photos]``); nothing is
downloaded. Limits: the object must have texture (sparse points) on most sides and stand
out from its surroundings in colour; objects held in a hand or photographed against a
background of their own colours segment poorly. ``nvdrec masks FOLDER`` writes the masks
and an overview picture for inspection.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np

from ..errors import DataError, MissingDependencyError
from .colmap_model import read_points3d, read_views, sparse_folder

__all__ = ["MasksReport", "ObjectRegion", "auto_masks", "mask_name", "object_region"]

GC_BGD, GC_FGD, GC_PR_BGD, GC_PR_FGD = 0, 1, 2, 3  # OpenCV's GrabCut labels


def require_opencv():
    """The ``cv2`` module; MissingDependencyError says whether OpenCV is absent or installed
    but not loading (an OpenCV before 4.10 does not load under NumPy 2)."""
    try:
        import cv2
    except ModuleNotFoundError as e:
        if e.name != "cv2":
            raise _not_loading(e) from None
        raise MissingDependencyError(
            "automatic object masks need the optional OpenCV package: pip install "
            "opencv-python-headless (or pip install 'nvdrec[photos]'); or put one mask "
            "per photo in masks/"
        ) from None
    except ImportError as e:
        raise _not_loading(e) from None
    return cv2


def _not_loading(e: ImportError) -> MissingDependencyError:
    return MissingDependencyError(
        f"automatic object masks need OpenCV, which is installed but does not load ({e}); "
        "OpenCV 4.10 or newer loads under NumPy 1 and 2: pip install -U opencv-python-headless"
    )


def mask_name(image_name: str) -> str:
    """The mask file for an image as the COLMAP loader looks it up (``NAME`` for PNGs,
    else ``NAME.png``)."""
    return image_name if image_name.lower().endswith(".png") else image_name + ".png"


@dataclasses.dataclass
class MasksReport:
    """What :func:`auto_masks` did."""

    views: int
    object_points: int  # sparse points in the object's region
    radius: float  # of the object's region, in the model's units
    coverage: list  # fraction of each mask that is object, in image order
    seconds: dict
    out: Path

    def lines(self) -> list[str]:
        c = np.asarray(self.coverage)
        t = ", ".join(f"{k} {v:.1f} s" for k, v in self.seconds.items())
        return [
            f"masks        {self.views} written to {self.out}",
            f"object       {self.object_points} sparse points within {self.radius:.3g} of the "
            "point the cameras look at",
            f"coverage     {c.min():.0%} to {c.max():.0%} of each photo (median "
            f"{np.median(c):.0%})",
            f"time         {t}",
            f"inspect      {self.out / 'overview.png'}",
        ]


# --- cameras --------------------------------------------------------------------------


def _load_cameras(folder: Path):
    """(names, K [N, 3, 3], R [N, 3, 3], t [N, 3], sizes [(w, h)]): OpenCV cameras
    (world to camera x_c = R x + t) of a COLMAP folder, images in name order."""
    sparse, views = read_views(folder)
    if len(views) < 3:
        raise DataError(f"'{sparse}' lists {len(views)} image(s); masks need at least 3")
    names = [v.name for v in views]
    ks = [[[v.fx, 0, v.cx], [0, v.fy, v.cy], [0, 0, 1]] for v in views]
    rs = [v.rot.numpy() for v in views]
    ts = [v.t for v in views]
    sizes = [(v.width, v.height) for v in views]
    return names, np.asarray(ks, np.float64), np.stack(rs), np.asarray(ts, np.float64), sizes


def _project(pts: np.ndarray, k: np.ndarray, r: np.ndarray, t: np.ndarray):
    """Pixel positions [P, 2] and depths [P] of world points in one camera."""
    c = pts @ r.T + t
    z = c[:, 2]
    uv = (c @ k.T)[:, :2] / np.where(np.abs(z) > 1e-12, z, 1e-12)[:, None]
    return uv, z


def _inside(uv, z, size) -> np.ndarray:
    w, h = size
    return (z > 0) & (uv[:, 0] >= 0) & (uv[:, 0] < w) & (uv[:, 1] >= 0) & (uv[:, 1] < h)


# --- 1. object points -----------------------------------------------------------------


@dataclasses.dataclass
class ObjectRegion:
    """Where the object is: the point all optical axes pass closest to (``centre`` [3]),
    the radius around it that holds the object (``radius``), and the sparse points in
    that ball (``points`` [M, 3]; the inner ones, ``core`` [K, 3], seed the object)."""

    centre: np.ndarray
    radius: float
    points: np.ndarray
    core: np.ndarray


def object_region(xyz, track, ks, rs, ts, sizes) -> ObjectRegion:
    """The object's region from the cameras and sparse points.

    Points that fall inside (nearly) every camera's frame lie in the region all cameras
    look at; the object is the bulk of them around the point the optical axes meet: the
    ball holding half of them. The points in its inner 60% seed the segmentation (the
    nearest 5% when that holds fewer than 10, as for a ball around its centre).

    Args:
        xyz: sparse points [P, 3]; track: images observing each [P].
        ks, rs, ts, sizes: the cameras (see :func:`_load_cameras`).
    """
    import torch

    from .llff import axes_focus_point

    centres = -np.einsum("nji,nj->ni", rs, ts)  # camera centres -R^T t
    good = track >= 3 if len(track) == len(xyz) else np.ones(len(xyz), bool)
    pts = xyz[good]
    if len(pts) < 20:
        raise DataError(
            f"the model has {len(pts)} sparse points seen by 3+ photos; automatic masks need "
            "the object's points (photos with more overlap, of a textured object)"
        )
    seen = np.zeros(len(pts))
    for k, r, t, s in zip(ks, rs, ts, sizes):
        seen += _inside(*_project(pts, k, r, t), s)
    frac = seen / len(ks)
    for need in (0.9, 0.75, 0.6):  # relaxed when few points are seen by all
        central = pts[frac >= need]
        if len(central) >= 30:
            break
    if len(central) < 10:
        raise DataError(
            "no sparse point is seen by most of the photos: the cameras do not look at one "
            "object (automatic masks need photos taken around the object)"
        )
    centre = axes_focus_point(torch.from_numpy(centres), torch.from_numpy(rs[:, 2, :])).numpy()
    dist = np.linalg.norm(central - centre, axis=1)
    radius = float(np.median(dist))
    near = np.argsort(dist, kind="stable")
    n_core = int((dist <= 0.6 * radius).sum())
    if n_core < 10:  # a hollow shell around the centre (a ball): its nearest points
        n_core = min(len(near), max(10, len(near) // 20))
    return ObjectRegion(centre, radius, central[dist <= radius], central[near[:n_core]])


# --- 2./3. segmentation -----------------------------------------------------------------


def _grabcut(cv2, img8: np.ndarray, init: np.ndarray, iters: int = 5) -> np.ndarray:
    """GrabCut from an initial label image; returns a bool mask."""
    labels = init.copy()
    if not (labels == GC_BGD).any() or not np.isin(labels, (GC_FGD, GC_PR_FGD)).any():
        return np.isin(labels, (GC_FGD, GC_PR_FGD))
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(0)  # the colour models start from k-means: the same masks every run
    cv2.grabCut(img8, labels, None, bgd, fgd, iters, cv2.GC_INIT_WITH_MASK)
    return np.isin(labels, (GC_FGD, GC_PR_FGD))


def _disc(cv2, r: int):
    r = max(1, int(r))
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))


def _largest_parts(cv2, m: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """The connected parts of ``m`` that hold a seed pixel (all of ``m`` without seeds),
    holes filled."""
    _, lab = cv2.connectedComponents(m.astype(np.uint8), connectivity=8)
    hit = np.unique(lab[seeds & m])
    hit = hit[hit > 0]
    out = np.isin(lab, hit) if len(hit) else m
    # fill holes: background parts that do not touch the border
    _, bl = cv2.connectedComponents((~out).astype(np.uint8), connectivity=4)
    border = np.unique(np.concatenate([bl[0], bl[-1], bl[:, 0], bl[:, -1]]))
    return out | ~np.isin(bl, border)


def _first_labels(shape, centre_px, radius_px) -> np.ndarray:
    """Round-one labels: the object's ball, projected, probably object; a margin of 60%
    around it probably background; the rest background."""
    h, w = shape
    yy, xx = np.mgrid[:h, :w]
    dist = np.hypot(xx - centre_px[0], yy - centre_px[1])
    labels = np.full((h, w), GC_BGD, np.uint8)
    labels[dist < 1.6 * radius_px] = GC_PR_BGD
    labels[dist < radius_px] = GC_PR_FGD
    return labels


def _seed(labels: np.ndarray, uv_in: np.ndarray) -> np.ndarray:
    """Object points as certain object pixels (3x3 each)."""
    h, w = labels.shape
    seeds = np.zeros((h, w), bool)
    ij = np.round(uv_in).astype(np.int64)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            y = np.clip(ij[:, 1] + dy, 0, h - 1)
            x = np.clip(ij[:, 0] + dx, 0, w - 1)
            seeds[y, x] = True
    labels[seeds] = GC_FGD
    return seeds


def _carve(masks, ks, rs, ts, sizes, lo, hi, res: int = 96):
    """Voxel centres [V, 3] of the visual hull in the box lo..hi: a voxel stays when at
    most ~15% of the cameras that see it see it outside the object."""
    axes = [np.linspace(lo[i], hi[i], res) for i in range(3)]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
    outside = np.zeros(len(grid), np.int32)
    seen = np.zeros(len(grid), np.int32)
    for m, k, r, t, s in zip(masks, ks, rs, ts, sizes):
        uv, z = _project(grid, k, r, t)
        ins = _inside(uv, z, s)
        sy, sx = m.shape[0] / s[1], m.shape[1] / s[0]
        y = np.clip((uv[ins, 1] * sy).astype(np.int64), 0, m.shape[0] - 1)
        x = np.clip((uv[ins, 0] * sx).astype(np.int64), 0, m.shape[1] - 1)
        seen[ins] += 1
        outside[np.flatnonzero(ins)[~m[y, x]]] += 1
    allowed = np.maximum(1, np.round(0.15 * seen)).astype(np.int32)
    keep = (seen >= 0.5 * len(masks)) & (outside <= allowed)
    return grid[keep], float(np.max((hi - lo) / (res - 1)))


def _hull_mask(cv2, vox, voxel, k, r, t, shape, size) -> np.ndarray:
    h, w = shape
    out = np.zeros((h, w), np.uint8)
    if not len(vox):
        return out.astype(bool)
    uv, z = _project(vox, k, r, t)
    sy, sx = h / size[1], w / size[0]
    ok = z > 0
    x = np.clip((uv[ok, 0] * sx).astype(np.int64), 0, w - 1)
    y = np.clip((uv[ok, 1] * sy).astype(np.int64), 0, h - 1)
    out[y, x] = 1
    foot = voxel * k[0, 0] * sx / np.median(z[ok])  # a voxel's size in pixels
    rad = int(np.ceil(0.75 * foot)) + 1
    out = cv2.morphologyEx(cv2.dilate(out, _disc(cv2, rad)), cv2.MORPH_CLOSE, _disc(cv2, rad))
    return out > 0


def _overview(images, masks, path: Path, cols: int = 6, n: int = 12) -> None:
    from ..io.image import write_image

    idx = np.linspace(0, len(images) - 1, min(n, len(images))).round().astype(int)
    tiles = []
    for i in idx:
        im = images[i].astype(np.float32) / 255.0
        m = masks[i][..., None]
        tint = np.array([0.1, 0.1, 0.35], np.float32)
        tiles.append(np.where(m, im, 0.35 * im + tint))
    h = min(t.shape[0] for t in tiles)
    w = min(t.shape[1] for t in tiles)
    tiles = [t[:h, :w] for t in tiles]
    while len(tiles) % cols:
        tiles.append(np.zeros_like(tiles[0]))
    rows = [np.concatenate(tiles[i : i + cols], 1) for i in range(0, len(tiles), cols)]
    write_image(path, np.concatenate(rows, 0))


def auto_masks(folder, out=None, max_side: int = 512, progress=print) -> MasksReport:
    """Object masks for every image of a COLMAP folder, from its photos, cameras and
    sparse points alone.

    Args:
        folder: a COLMAP folder (``images/``, ``sparse/0`` with points3D; ``nvdrec poses``
            writes one).
        out: the folder for the masks (one PNG per image, named as the COLMAP loader
            looks them up, plus ``overview.png``); default ``folder/masks_auto``.
        max_side: the photos are segmented at most this many pixels on the long side;
            the masks are written at the photos' size.
        progress: called with one line per stage.

    Returns:
        A :class:`MasksReport`.

    Raises:
        MissingDependencyError: OpenCV is not installed.
        DataError: the model has too few points, or no object could be found.
    """
    from ..io.files import atomic_dir
    from ..io.image import read_image, write_image

    cv2 = require_opencv()
    folder = Path(folder)
    out = Path(out) if out is not None else folder / "masks_auto"
    seconds = {}
    t0 = time.time()
    names, ks, rs, ts, sizes = _load_cameras(folder)
    xyz, track = read_points3d(sparse_folder(folder))
    region = object_region(xyz, track, ks, rs, ts, sizes)
    progress(
        f"{len(region.points)} sparse points on the object (within {region.radius:.3g} of "
        "the point the cameras look at)"
    )
    seconds["points"] = time.time() - t0

    t0 = time.time()
    progress(f"segmenting {len(names)} photos ...")
    images, first, seeds_all, full = [], [], [], []
    for name, k, r, t, size in zip(names, ks, rs, ts, sizes):
        path = folder / "images" / name
        if not path.is_file():
            raise DataError(f"image '{path}' listed by the COLMAP model does not exist")
        img = read_image(path)[..., :3]
        full.append(img.shape[:2])
        s = min(1.0, max_side / max(img.shape[:2]))
        hw = (max(1, round(img.shape[0] * s)), max(1, round(img.shape[1] * s)))
        img8 = (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)
        img8 = cv2.resize(img8, (hw[1], hw[0]), interpolation=cv2.INTER_AREA)
        scale = np.array([hw[1] / size[0], hw[0] / size[1]])
        c_uv, c_z = _project(region.centre[None], k, r, t)
        radius_px = k[0, 0] * scale[0] * region.radius / max(float(c_z[0]), 1e-9)
        labels = _first_labels(hw, c_uv[0] * scale, radius_px)
        uv, z = _project(region.core, k, r, t)
        seeds = _seed(labels, uv[_inside(uv, z, size)] * scale)
        m = _grabcut(cv2, np.ascontiguousarray(img8[..., ::-1]), labels)
        first.append(_largest_parts(cv2, m, seeds))
        images.append(img8)
        seeds_all.append(seeds)
    seconds["first masks"] = time.time() - t0

    t0 = time.time()
    progress("carving the visual hull and segmenting again ...")
    reach = 1.6 * region.radius
    vox, voxel = _carve(first, ks, rs, ts, sizes, region.centre - reach, region.centre + reach)
    if len(vox) < 10:
        raise DataError(
            "the first masks disagree between the photos (no visual hull is left): the "
            "object could not be separated from its surroundings; make masks by hand"
        )
    finals, coverage = [], []
    for i, (k, r, t, size) in enumerate(zip(ks, rs, ts, sizes)):
        hw = images[i].shape[:2]
        hull = _hull_mask(cv2, vox, voxel, k, r, t, hw, size)
        area = max(int(hull.sum()), 1)
        labels = np.full(hw, GC_BGD, np.uint8)
        ring = cv2.dilate(hull.astype(np.uint8), _disc(cv2, int(0.08 * np.sqrt(area)) + 3))
        labels[ring > 0] = GC_PR_BGD
        labels[hull & first[i]] = GC_PR_FGD
        inner = cv2.erode((hull & first[i]).astype(np.uint8), _disc(cv2, 0.06 * np.sqrt(area)))
        labels[(inner > 0) | seeds_all[i]] = GC_FGD
        m = _grabcut(cv2, np.ascontiguousarray(images[i][..., ::-1]), labels)
        m = _largest_parts(cv2, m & (ring > 0), seeds_all[i])
        finals.append(m)
        coverage.append(float(m.mean()))
    seconds["consistent masks"] = time.time() - t0

    with atomic_dir(out) as tmp:
        for name, m, shape in zip(names, finals, full):
            soft = cv2.resize(m.astype(np.float32), (shape[1], shape[0]), cv2.INTER_LINEAR)
            dest = Path(tmp) / mask_name(name)
            dest.parent.mkdir(parents=True, exist_ok=True)
            write_image(dest, (soft >= 0.5).astype(np.float32)[..., None])
        _overview(images, finals, Path(tmp) / "overview.png")
    return MasksReport(len(names), len(region.points), region.radius, coverage, seconds, out)
