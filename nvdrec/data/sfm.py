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

from ..errors import DataError, MissingDependencyError, MissingFileError
from . import automask
from .pose_compare import compare_poses, similarity_align
from .sfm_work import (
    feature_masks,
    is_registered,
    masks_to_photos,
    reduce_photos,
    small_copies,
)

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
    if not hasattr(pycolmap, "FeatureMatchingOptions"):  # the options API of pycolmap 3.13
        raise MissingDependencyError(
            f"camera poses from photos need pycolmap 3.13 or newer; this is pycolmap "
            f"{getattr(pycolmap, '__version__', '(unknown version)')}: pip install -U pycolmap"
        )
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


# incremental mappings tried while fewer than half the photos are placed: seeds 0, 1, ...
# on the same matches, the last one on fresh matches
MAPPING_TRIES = 3


def _match(pycolmap, db: Path, opts):
    """Match the features of ``db`` and verify the pairs geometrically (RANSAC, randomly
    seeded: each matching of the same features verifies the pairs afresh)."""
    matching = pycolmap.FeatureMatchingOptions()
    matching.num_threads = opts["num_threads"]
    if opts["matcher"] == "exhaustive":
        pycolmap.match_exhaustive(db, matching_options=matching, device=pycolmap.Device.cpu)
    else:
        pairing = pycolmap.SequentialPairingOptions()
        pairing.overlap = 15
        pairing.quadratic_overlap = True
        pycolmap.match_sequential(
            db,
            matching_options=matching,
            pairing_options=pairing,
            device=pycolmap.Device.cpu,
        )


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
    extraction.max_image_size = opts["max_side"]
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
    features = work / f"features_{tag}.db"  # the features alone, for fresh matches
    shutil.copy(db, features)
    seconds["features"] = time.time() - t0

    t0 = time.time()
    progress(f"matching ({opts['matcher']}) ...")
    _match(pycolmap, db, opts)
    seconds["matching"] = time.time() - t0

    t0 = time.time()
    progress("placing the cameras (incremental mapping) ...")
    mapping = pycolmap.IncrementalPipelineOptions()
    mapping.num_threads = opts["num_threads"]
    mapping.multiple_models = False
    need = max(3, len(names) // 2)
    rec = None
    for attempt in range(MAPPING_TRIES):
        # the mapping runs on threads and can stall after a poor start (a few photos
        # placed): another seed usually places them all; when every seed stalled on the
        # same matches, the last try matches and verifies the pairs again
        if attempt and attempt + 1 == MAPPING_TRIES:
            db = work / f"database_{tag}_{attempt}.db"
            shutil.copy(features, db)
            _match(pycolmap, db, opts)
        mapping.random_seed = attempt
        sparse = work / f"sparse_{tag}_{attempt}"
        sparse.mkdir()
        models = pycolmap.incremental_mapping(db, images, sparse, mapping)
        for r in models.values():
            if rec is None or r.num_reg_images() > rec.num_reg_images():
                rec = r
        if (rec is not None and rec.num_reg_images() >= need) or attempt + 1 == MAPPING_TRIES:
            break
        placed = 0 if rec is None else rec.num_reg_images()
        again = "matching and mapping" if attempt + 2 == MAPPING_TRIES else "mapping"
        progress(f"{placed} of {len(names)} photos placed; {again} again (seed {attempt + 1}) ...")
    seconds["mapping"] = time.time() - t0
    src = opts["src"]
    if rec is None:
        raise DataError(
            f"no camera could be placed from the {len(names)} photos of '{src}': they "
            "share too few features. Take photos with more overlap (each part of the "
            "object in 3+ photos, 10-20 degrees apart), in focus, of a textured object"
        )
    if rec.num_reg_images() < need:
        raise DataError(
            f"only {rec.num_reg_images()} of {len(names)} photos of '{src}' could be placed; "
            "take photos with more overlap (10-20 degrees apart) or try --matcher exhaustive"
        )
    model_dir = work / f"model_{tag}"
    model_dir.mkdir()
    rec.write(model_dir)
    return rec, model_dir, seconds


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
            ``out/masks``. Without OpenCV the photos are placed once, on the whole
            photos, and no masks are written (a note says so). When no object is found,
            the first placement is the result (placed again at full size when it used
            smaller copies), and no masks are written.

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
            automask.require_opencv()
        except MissingDependencyError as e:
            auto_masks = False
            progress(f"note: no masks/, and {e}. Cameras from the whole photos, no masks")
    seconds: dict = {}
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".nvdrec-poses-", dir=out.parent))
    try:
        t0 = time.time()
        progress(f"reducing {len(photos)} photos to at most {max_side} px ...")
        names, mask_names = reduce_photos(photos, work, max_side, masks)
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
        placement = None  # (reconstruction, model folder, seconds) of the final placement
        if made_masks:  # place once on the whole photos, mask, place again
            small = small_copies(work, names, FIRST_PASS_SIDE)
            rec, model_dir, sec = _place_cameras(
                pycolmap, work, small, "whole", names, None, opts, lambda s: progress(f"1/2 {s}")
            )
            t0 = time.time()
            progress("1/2 object masks from the first cameras ...")
            first = work / "first"
            pycolmap.undistort_images(first, model_dir, small, output_type="COLMAP")
            seconds["first cameras"] = sum(sec.values())
            try:
                automask.auto_masks(first, first / "masks", progress=lambda s: None)
                mask_names = masks_to_photos(rec, first, first / "masks", work, names)
            except DataError as e:  # no object found: one placement on the whole photos
                made_masks = False
                progress(f"note: no object masks ({e}); cameras from the whole photos")
                if small == work / "images":  # made on these very photos: it is the result
                    placement = rec, model_dir, sec
                    del seconds["first cameras"]
            seconds["first masks"] = time.time() - t0
        if placement is None:
            say = (lambda s: progress(f"2/2 {s}")) if made_masks else progress
            placement = _place_cameras(
                pycolmap,
                work,
                work / "images",
                "object",
                names,
                feature_masks(work, names, mask_names)
                if mask_names is not None and mask_features
                else None,
                opts,
                say,
            )
        rec, model_dir, sec = placement
        seconds.update(sec)
        registered = rec.num_reg_images()
        placed = {img.name for img in rec.images.values() if is_registered(img)}

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
            try:
                automask.auto_masks(undist, undist / "masks_made", progress=lambda s: None)
            except DataError as e:
                made_masks = False
                progress(f"note: no object masks on the final cameras ({e}); none written")
            seconds["masks"] = time.time() - t0

        out.mkdir(parents=True, exist_ok=True)
        shutil.move(str(undist / "images"), str(out / "images"))
        (out / "sparse").mkdir()
        shutil.move(str(undist / "sparse"), str(out / "sparse" / "0"))
        if made_masks:
            shutil.move(str(undist / "masks_made"), str(out / "masks"))
        elif masks is not None:  # the given masks, undistorted
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
