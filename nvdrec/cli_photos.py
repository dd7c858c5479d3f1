"""``nvdrec poses`` and ``nvdrec masks``: cameras and object masks from photos."""

from __future__ import annotations

import argparse
import sys

from .cli_common import flag
from .cli_common import writable as _writable
from .errors import ConfigError, DataError, MissingFileError

__all__ = ["add_parsers"]


def _poses(args: argparse.Namespace, extra: list[str]) -> int:
    import time
    from pathlib import Path

    from .data.sfm import estimate_poses

    src = Path(args.photos)
    out = Path(args.out) if args.out else src.parent / f"{src.resolve().name}_colmap"
    if args.max_side < 64:
        raise ConfigError(f"--max-side must be at least 64, got {args.max_side}")
    _writable(out, "--out", "folder")
    t0 = time.time()

    def progress(line):
        print(f"nvdrec poses: {line} ({time.time() - t0:.0f} s)", file=sys.stderr, flush=True)

    report = estimate_poses(
        src,
        out,
        max_side=args.max_side,
        matcher=args.matcher,
        progress=progress,
        verbose=args.verbose,
        use_masks=not args.ignore_masks,
        auto_masks=not args.no_auto_masks,
    )
    print("\n".join(report.lines()))
    print(f'next: nvdrec check {out}   then train with "ref_mesh": "{out}"')
    return 0


def _masks(args: argparse.Namespace, extra: list[str]) -> int:
    import time
    from pathlib import Path

    from .data.automask import auto_masks
    from .data.colmap import is_colmap_folder

    folder = Path(args.folder)
    if not folder.is_dir():
        raise MissingFileError(f"folder '{folder}' does not exist")
    if not is_colmap_folder(folder):
        raise DataError(
            f"'{folder}' has no sparse/0 (a COLMAP model): masks need the cameras and sparse "
            f"points; run 'nvdrec poses {folder}' first and give its output folder"
        )
    if args.max_side < 64:
        raise ConfigError(f"--max-side must be at least 64, got {args.max_side}")
    out = Path(args.out) if args.out else folder / "masks_auto"
    _writable(out, "--out", "folder")
    t0 = time.time()

    def progress(line):
        print(f"nvdrec masks: {line} ({time.time() - t0:.0f} s)", file=sys.stderr, flush=True)

    report = auto_masks(folder, out, max_side=args.max_side, progress=progress)
    print("\n".join(report.lines()))
    if out == folder / "masks_auto":
        print("training on this folder uses them while it has no masks/ of its own")
    return 0


def _max_side(parser, default: int, what: str) -> None:
    parser.add_argument(
        "--max-side", type=int, default=default, help=f"pixels on the long side: {what}"
    )


def add_parsers(sub) -> None:
    """Add this module's commands to the ``nvdrec`` sub-command parser ``sub``."""
    s = sub.add_parser(
        "poses",
        help="camera poses from the photos alone (structure from motion; needs pycolmap)",
        description="Writes a COLMAP folder (images/, sparse/0, masks/) that 'ref_mesh' "
        "reads. Photos without masks/ get object masks made from the photos (needs "
        "opencv). Runs on the CPU.",
    )
    s.add_argument("photos", help="folder of photos (or with images/ and masks/)")
    s.add_argument("--out", help="folder to write (default: PHOTOS_colmap next to PHOTOS)")
    _max_side(s, 1024, "reduce the photos to this size as they load")
    s.add_argument(
        "--matcher",
        choices=("auto", "exhaustive", "sequential"),
        default="auto",
        help="pairs to match: every pair (exhaustive), neighbours in name order "
        "(sequential, for video frames), or auto (exhaustive up to 120 photos)",
    )
    flag(
        s,
        "--ignore-masks",
        "do not use PHOTOS/masks (by default features come from the masked object "
        "only, and the masks are written with the result)",
    )
    flag(
        s,
        "--no-auto-masks",
        "photos without masks/: keep the cameras from the whole photos and make no "
        "masks (by default object masks are made from the photos, needs opencv, and the "
        "cameras placed again from the object only)",
    )
    s.add_argument("--verbose", action="store_true", help="show COLMAP's log")
    s.set_defaults(func=_poses)
    s = sub.add_parser(
        "masks",
        help="object masks from the photos of a COLMAP folder (needs opencv)",
        description="Writes one object mask per photo (and overview.png to inspect them) "
        "from the photos, cameras and sparse points of a COLMAP folder, as 'nvdrec poses' "
        "writes it. Training on a folder without masks/ uses FOLDER/masks_auto (and makes "
        "it when missing). Runs on the CPU.",
    )
    s.add_argument("folder", help="COLMAP folder (images/, sparse/0 with points3D)")
    s.add_argument("--out", help="folder to write (default: FOLDER/masks_auto)")
    _max_side(s, 512, "segment the photos at this size; the masks are written at the photos' size")
    s.set_defaults(func=_masks)
