"""Camera poses from the photos themselves (structure from motion through pycolmap).

``estimate_poses(PHOTOS, OUT)`` turns a folder of photos into a COLMAP folder that
``ref_mesh`` reads (``OUT/images``, ``OUT/sparse`` with PINHOLE cameras, and ``OUT/masks``
when the photos came with masks): the photos are reduced to ``max_side`` as they load,
SIFT features are extracted and matched (every pair for small sets, neighbours in name
order plus the quadratic overlap for large ones), the incremental mapper registers the
cameras (one shared camera, focal length and radial distortion refined), and the images
are undistorted to the pinhole model the loaders expect.

Needs the optional ``pycolmap`` package (``pip install 'nvdrec[photos]'``), which ships
COLMAP's feature extraction, matching and mapping as wheels; it runs on the CPU.
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from ..errors import DataError, MissingDependencyError, MissingFileError

__all__ = ["PosesReport", "compare_poses", "estimate_poses", "list_photos", "similarity_align"]

PHOTO_EXTS = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp")
EXHAUSTIVE_MAX = 120  # up to this many photos every pair is matched (N^2 / 2 pairs)
FIRST_PASS_SIDE = 512  # photos without masks: the first placement (for the masks) size


def _pycolmap():
    try:
        import pycolmap
    except ImportError:
        raise MissingDependencyError(
            "camera poses from photos need the optional pycolmap package: pip install "
            "pycolmap (or pip install 'nvdrec[photos]'); or bring poses (COLMAP, LLFF, "
            "NeRF transforms)"
        ) from None
    return pycolmap


def list_photos(folder: Path) -> tuple[Path, list[Path]]:
    """(the folder holding the photos, the photos sorted by name): ``folder/images`` when
    it exists, else ``folder`` itself."""
    folder = Path(folder)
    if not folder.is_dir():
        raise MissingFileError(f"photo folder '{folder}' does not exist")
    src = folder / "images" if (folder / "images").is_dir() else folder
    photos = sorted(p for p in src.iterdir() if p.suffix.lower() in PHOTO_EXTS and p.is_file())
    if not photos:
        raise DataError(f"'{src}' holds no photos ({', '.join(PHOTO_EXTS)})")
    return src, photos


@dataclasses.dataclass
class PosesReport:
    """What :func:`estimate_poses` did: counts, errors and seconds per stage."""

    photos: int
    registered: int
    points: int
    reprojection_error: float  # mean, pixels at the working size
    size: tuple  # (H, W) of the images written
    seconds: dict
    unregistered: list
    out: Path
    masks: str = "given"  # "given", "made from the photos" or "none"

    def lines(self) -> list[str]:
        t = ", ".join(f"{k} {v:.1f} s" for k, v in self.seconds.items())
        out = [
            f"registered   {self.registered} of {self.photos} photos",
            f"points       {self.points} "
            f"(mean reprojection error {self.reprojection_error:.2f} px)",
            f"images       {self.size[1]}x{self.size[0]} (undistorted, PINHOLE) in {self.out}",
            f"time         {t}",
        ]
        if self.masks == "made from the photos":
            pic = self.out / "masks" / "overview.png"
            out.append(f"masks        made from the photos: check {pic}")
        if self.unregistered:
            more = f" and {len(self.unregistered) - 5} more" if len(self.unregistered) > 5 else ""
            out.append(f"not placed   {', '.join(self.unregistered[:5])}{more}")
        return out


def _reduce(photos: list[Path], dest: Path, max_side: int, masks: Path | None) -> tuple:
    """Write each photo (and its mask) at most ``max_side`` pixels on its long side into
    ``dest/images`` (``dest/masks``), EXIF orientation applied. Returns (names, mask
    names or None)."""
    from ..io.image import read_image, write_image

    (dest / "images").mkdir(parents=True)
    if masks is not None:
        (dest / "masks").mkdir()
    names, mask_names = [], []
    by_stem = {}  # masks named like the photo, any extension or case (IMG_1.JPG: img_1.png)
    for q in sorted(masks.iterdir()) if masks is not None else ():
        by_stem.setdefault(q.name.lower(), q)
        by_stem.setdefault(q.stem.lower(), q)
    for p in photos:
        img = read_image(p)[..., :3]  # float [H, W, 3] in [0, 1], oriented
        img = _fit(img, max_side)
        name = p.stem + ".png"  # lossless: SIFT sees the photo, not compression noise
        write_image(dest / "images" / name, img)
        names.append(name)
        if masks is not None:
            m = by_stem.get(p.name.lower()) or by_stem.get(p.stem.lower())
            if m is None:
                raise MissingFileError(f"no mask for '{p.name}' in '{masks}'")
            mk = read_image(m)
            mk = _fit(mk[..., :1] if mk.ndim == 3 else mk[..., None], max_side, img.shape[:2])
            write_image(dest / "masks" / (Path(name).stem + ".png"), mk)
            mask_names.append(Path(name).stem + ".png")
    return names, (mask_names if masks is not None else None)


def _feature_masks(work: Path, names: list, mask_names: list) -> Path:
    """COLMAP's feature masks (``NAME.png`` per image ``NAME``, 0 = no features): the
    object masks grown by 2% of the image size, so the silhouette's edge keeps its
    features."""
    import imageio.v3 as iio
    import torch

    from ..io.image import read_image

    folder = work / "feature_masks"
    folder.mkdir()
    for n, m in zip(names, mask_names):
        a = torch.from_numpy(np.ascontiguousarray(read_image(work / "masks" / m)[..., 0]))
        r = max(1, round(0.02 * max(a.shape)))
        grown = torch.nn.functional.max_pool2d((a > 0.5).float()[None, None], 2 * r + 1, 1, r)
        img = (grown[0, 0].numpy() * 255).astype(np.uint8)
        iio.imwrite(folder / f"{n}.png", img)
    return folder


def _fit(img: np.ndarray, max_side: int, shape: tuple | None = None) -> np.ndarray:
    import torch

    h, w = img.shape[:2]
    if shape is None:
        s = min(1.0, max_side / max(h, w))
        shape = (max(1, round(h * s)), max(1, round(w * s)))
    if tuple(shape) == (h, w):
        return img
    t = torch.from_numpy(np.ascontiguousarray(img, dtype=np.float32)).permute(2, 0, 1)[None]
    t = torch.nn.functional.interpolate(t, size=tuple(shape), mode="area")
    return t[0].permute(1, 2, 0).numpy()


def _place_cameras(pycolmap, work: Path, images: Path, tag, names, feature_masks, opts, progress):
    """Features, matching and incremental mapping of the photos in ``images`` (features
    only inside ``feature_masks`` when given). Returns (the reconstruction with the most
    cameras, the model folder it was written to, seconds per stage)."""
    seconds = {}
    db = work / f"database_{tag}.db"
    t0 = time.time()
    progress("features (SIFT) ...")
    reader = pycolmap.ImageReaderOptions()
    reader.camera_model = "SIMPLE_RADIAL"
    if feature_masks is not None:
        reader.mask_path = str(feature_masks)
    extraction = pycolmap.FeatureExtractionOptions()
    extraction.max_image_size = opts["max_side"] if tag != "whole" else FIRST_PASS_SIDE
    extraction.num_threads = opts["num_threads"]
    extraction.sift.max_num_features = opts["max_features"]
    pycolmap.extract_features(
        db,
        images,
        image_names=names,
        camera_mode=pycolmap.CameraMode.SINGLE,
        reader_options=reader,
        extraction_options=extraction,
        device=pycolmap.Device.cpu,
    )
    seconds["features"] = time.time() - t0

    t0 = time.time()
    kind = opts["matcher"]
    progress(f"matching ({kind}) ...")
    matching = pycolmap.FeatureMatchingOptions()
    matching.num_threads = opts["num_threads"]
    if kind == "exhaustive":
        pycolmap.match_exhaustive(db, matching_options=matching, device=pycolmap.Device.cpu)
    else:
        pairing = pycolmap.SequentialPairingOptions()
        pairing.overlap = 15
        pairing.quadratic_overlap = True
        pycolmap.match_sequential(
            db, matching_options=matching, pairing_options=pairing, device=pycolmap.Device.cpu
        )
    seconds["matching"] = time.time() - t0

    t0 = time.time()
    progress("placing the cameras (incremental mapping) ...")
    mapping = pycolmap.IncrementalPipelineOptions()
    mapping.num_threads = opts["num_threads"]
    mapping.multiple_models = False
    mapping.random_seed = 0
    sparse = work / f"sparse_{tag}"
    sparse.mkdir()
    models = pycolmap.incremental_mapping(db, images, sparse, mapping)
    seconds["mapping"] = time.time() - t0
    src = opts["src"]
    if not models:
        raise DataError(
            f"no camera could be placed from the {len(names)} photos of '{src}': they "
            "share too few features. Take photos with more overlap (each part of the "
            "object in 3+ photos, 10-20 degrees apart), in focus, of a textured object"
        )
    rec = max(models.values(), key=lambda r: r.num_reg_images())
    if rec.num_reg_images() < max(3, len(names) // 2):
        raise DataError(
            f"only {rec.num_reg_images()} of {len(names)} photos of '{src}' could be placed; "
            "take photos with more overlap (10-20 degrees apart) or try --matcher exhaustive"
        )
    model_dir = work / f"model_{tag}"
    model_dir.mkdir()
    rec.write(model_dir)
    return rec, model_dir, seconds


def _small_copies(work: Path, names, side: int) -> Path:
    """The photos of ``work/images`` at most ``side`` pixels on the long side (the same
    files when they are that small already)."""
    import imageio.v3 as iio

    from ..io.image import read_image, write_image

    first = iio.improps(work / "images" / names[0]).shape[:2]
    if max(first) <= side:
        return work / "images"
    folder = work / "small"
    folder.mkdir()
    for n in names:
        write_image(folder / n, _fit(read_image(work / "images" / n), side))
    return folder


def _masks_to_photos(rec, undistorted: Path, masks: Path, work: Path, names) -> list:
    """Masks made on the undistorted images (``masks/NAME``) carried back onto the
    photos of the first placement through the distortion of ``rec``'s camera, then
    scaled to the photos in ``work/images`` and written as ``work/masks/NAME``. A photo
    the model did not place gets an all-object mask."""
    import cv2
    import imageio.v3 as iio

    from ..io.image import read_image
    from .automask import mask_name
    from .colmap import _sparse, pinhole_intrinsics, read_cameras, read_images

    sparse = _sparse(undistorted)
    pin = read_cameras(sparse)
    by_name = {e[0]: pin[e[3]] for e in read_images(sparse)}
    (work / "masks").mkdir(exist_ok=True)
    for img in rec.images.values():
        if not _is_registered(img) or img.name not in by_name:
            continue
        cam = rec.cameras[img.camera_id]
        model, w, h, params = by_name[img.name]
        fx, fy, cx, cy = pinhole_intrinsics(model, params, img.camera_id)
        ys, xs = np.mgrid[: cam.height, : cam.width].astype(np.float64) + 0.5
        xy = cam.cam_from_img(np.stack([xs.ravel(), ys.ravel()], 1))
        map_x = (fx * xy[:, 0] + cx - 0.5).reshape(cam.height, cam.width).astype(np.float32)
        map_y = (fy * xy[:, 1] + cy - 0.5).reshape(cam.height, cam.width).astype(np.float32)
        m = (read_image(masks / mask_name(img.name))[..., 0] > 0.5).astype(np.uint8) * 255
        back = cv2.remap(m, map_x, map_y, cv2.INTER_NEAREST, borderValue=0)
        size = iio.improps(work / "images" / img.name).shape[:2]
        back = cv2.resize(back, (size[1], size[0]), interpolation=cv2.INTER_NEAREST)
        iio.imwrite(work / "masks" / img.name, back)
    for n in names:  # not placed: features everywhere
        if not (work / "masks" / n).is_file():
            size = iio.improps(work / "images" / n).shape[:2]
            iio.imwrite(work / "masks" / n, np.full(size, 255, np.uint8))
    return list(names)


def estimate_poses(
    photos_dir,
    out,
    max_side: int = 1024,
    matcher: str = "auto",
    max_features: int = 8192,
    num_threads: int = -1,
    progress=print,
    verbose: bool = False,
    use_masks: bool = True,
    mask_features: bool = True,
    auto_masks: bool = True,
) -> PosesReport:
    """Camera poses of a folder of photos, written as a COLMAP folder ``out``.

    Args:
        photos_dir: a folder of photos (or with ``images/``, and optionally ``masks/``).
        out: the folder to write (``images/``, ``sparse/``, ``masks/``); must not exist
            or be empty.
        max_side: the photos are reduced to at most this many pixels on the long side.
        matcher: "exhaustive" (every pair), "sequential" (neighbours in name order, for
            video frames or walks around the object), or "auto" (exhaustive up to
            120 photos).
        max_features: SIFT features per photo.
        progress: called with one line per stage.
        verbose: show COLMAP's own log.
        use_masks: with ``masks/`` beside the photos, extract features on the object
            only and write the masks (undistorted) with the result; False ignores them.
        mask_features: False extracts features on the whole photo even with masks (the
            masks are still undistorted and written), e.g. to compare automatic masks
            with given ones on the same cameras.
        auto_masks: photos without masks are placed twice: once on the whole photos,
            then object masks are made (:func:`nvdrec.data.automask.auto_masks`, needs
            OpenCV) and the cameras placed again from features on the object only (a
            static background, as on a turntable, pulls the cameras towards "no
            motion"); the masks are made again on the final cameras and written to
            ``out/masks``. Without OpenCV the first placement is kept and no masks are
            written (a note says so).

    Returns:
        A :class:`PosesReport`.

    Raises:
        MissingDependencyError: pycolmap is not installed.
        DataError: too few photos, or too few of them could be placed.
    """
    pycolmap = _pycolmap()
    if not verbose:  # COLMAP's own log (thousands of lines) only when asked for
        pycolmap.logging.minloglevel = 2  # errors only
    src, photos = list_photos(Path(photos_dir))
    if len(photos) < 3:
        raise DataError(f"'{src}' holds {len(photos)} photo(s); poses need at least 3")
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise DataError(f"--out '{out}' is not empty; choose a new folder")
    if matcher not in ("auto", "exhaustive", "sequential"):
        raise DataError(f"matcher must be auto, exhaustive or sequential, got {matcher!r}")
    masks = Path(photos_dir) / "masks"
    masks = masks if masks.is_dir() and use_masks else None
    if masks is None and auto_masks:
        try:
            import cv2  # noqa: F401
        except ImportError:
            auto_masks = False
            progress(
                "note: no masks/ and no OpenCV: cameras from the whole photos, no masks "
                "(pip install opencv-python-headless for automatic masks)"
            )
    seconds: dict = {}
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".nvdrec-poses-", dir=out.parent))
    try:
        t0 = time.time()
        progress(f"reducing {len(photos)} photos to at most {max_side} px ...")
        names, mask_names = _reduce(photos, work, max_side, masks)
        seconds["load"] = time.time() - t0
        kind = (
            matcher
            if matcher != "auto"
            else ("exhaustive" if len(names) <= EXHAUSTIVE_MAX else "sequential")
        )
        opts = dict(
            max_side=max_side,
            num_threads=num_threads,
            max_features=max_features,
            matcher=kind,
            src=src,
        )
        made_masks = masks is None and auto_masks
        if made_masks:  # place once on the whole photos, mask, place again
            small = _small_copies(work, names, FIRST_PASS_SIDE)
            rec, model_dir, sec = _place_cameras(
                pycolmap, work, small, "whole", names, None, opts, lambda s: progress(f"1/2 {s}")
            )
            t0 = time.time()
            progress("1/2 object masks from the first cameras ...")
            first = work / "first"
            pycolmap.undistort_images(first, model_dir, small, output_type="COLMAP")
            from .automask import auto_masks as make_masks

            make_masks(first, first / "masks", progress=lambda s: None)
            mask_names = _masks_to_photos(rec, first, first / "masks", work, names)
            seconds["first cameras"] = sum(sec.values())
            seconds["first masks"] = time.time() - t0
            say = lambda s: progress(f"2/2 {s}")  # noqa: E731
        else:
            say = progress
        rec, model_dir, sec = _place_cameras(
            pycolmap,
            work,
            work / "images",
            "object",
            names,
            _feature_masks(work, names, mask_names)
            if mask_names is not None and mask_features
            else None,
            opts,
            say,
        )
        seconds.update(sec)
        registered = rec.num_reg_images()
        placed = {img.name for img in rec.images.values() if _is_registered(img)}

        t0 = time.time()
        progress("undistorting to pinhole cameras ...")
        undist = work / "undistorted"
        pycolmap.undistort_images(undist, model_dir, work / "images", output_type="COLMAP")
        if mask_names is not None and not made_masks:  # the masks go the same way
            mask_out = work / "undistorted_masks"
            renamed = work / "mask_images"
            renamed.mkdir()
            for n, m in zip(names, mask_names):
                shutil.copy(work / "masks" / m, renamed / n)
            pycolmap.undistort_images(mask_out, model_dir, renamed, output_type="COLMAP")
        seconds["undistort"] = time.time() - t0

        if made_masks:  # masks again, on the final cameras
            t0 = time.time()
            progress("object masks from the final cameras ...")
            from .automask import auto_masks as make_masks

            make_masks(undist, undist / "masks_made", progress=lambda s: None)
            seconds["masks"] = time.time() - t0

        out.mkdir(parents=True, exist_ok=True)
        shutil.move(str(undist / "images"), str(out / "images"))
        (out / "sparse").mkdir()
        shutil.move(str(undist / "sparse"), str(out / "sparse" / "0"))
        if made_masks:
            shutil.move(str(undist / "masks_made"), str(out / "masks"))
        elif mask_names is not None:
            shutil.move(str(mask_out / "images"), str(out / "masks"))
        final = pycolmap.Reconstruction(out / "sparse" / "0")
        cam = next(iter(final.cameras.values()))
        report = PosesReport(
            photos=len(names),
            registered=registered,
            points=rec.num_points3D(),
            reprojection_error=float(rec.compute_mean_reprojection_error()),
            size=(cam.height, cam.width),
            seconds=seconds,
            unregistered=sorted(set(names) - placed),
            out=out,
            masks="made from the photos" if made_masks else ("given" if masks else "none"),
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return report


def _is_registered(img) -> bool:
    reg = getattr(img, "has_pose", None)
    if reg is None:
        reg = getattr(img, "registered", True)
    return bool(reg() if callable(reg) else reg)


def similarity_align(src: np.ndarray, dst: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """(s, R, t) minimising sum |s R src_i + t - dst_i|^2 over points [N, 3] (Umeyama's
    least-squares similarity, no reflection)."""
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    a, b = src - mu_s, dst - mu_d
    cov = b.T @ a / len(src)
    u, d, vt = np.linalg.svd(cov)
    e = np.eye(3)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        e[2, 2] = -1
    r = u @ e @ vt
    var = (a**2).sum() / len(src)
    s = float(np.trace(np.diag(d) @ e) / var) if var > 0 else 1.0
    return s, r, mu_d - s * r @ mu_s


def compare_poses(c2w_est: np.ndarray, c2w_ref: np.ndarray, target=None) -> dict:
    """Camera poses [N, 4, 4] (camera-to-world, same cameras in the same order) after a
    similarity alignment of the estimated centres to the reference ones: median and max
    rotation error (degrees) and centre error relative to the median distance from the
    cameras to ``target`` (default: the point closest to all optical axes)."""
    import torch

    from .llff import axes_focus_point

    c_est, c_ref = c2w_est[:, :3, 3], c2w_ref[:, :3, 3]
    s, r, t = similarity_align(c_est, c_ref)
    aligned = (s * (r @ c_est.T)).T + t
    if target is None:
        ref = torch.from_numpy(np.ascontiguousarray(c2w_ref, dtype=np.float64))
        target = axes_focus_point(ref[:, :3, 3], -ref[:, :3, 2]).numpy()
    dist = np.median(np.linalg.norm(c_ref - target, axis=-1))
    centre_err = np.linalg.norm(aligned - c_ref, axis=-1) / dist
    rel = np.einsum("nji,njk->nik", c2w_ref[:, :3, :3], r @ c2w_est[:, :3, :3])  # R_ref^T R
    cos = np.clip((np.trace(rel, axis1=1, axis2=2) - 1) / 2, -1, 1)
    rot_err = np.degrees(np.arccos(cos))
    return {
        "rotation_median_deg": float(np.median(rot_err)),
        "rotation_max_deg": float(rot_err.max()),
        "centre_median_rel": float(np.median(centre_err)),
        "centre_max_rel": float(centre_err.max()),
        "scale": s,
    }
