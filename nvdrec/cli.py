"""The ``nvdrec`` command line."""

from __future__ import annotations

import argparse
import platform
import sys

from . import __version__
from .errors import ConfigError, DataError, MissingFileError, NvdrecError

__all__ = ["main"]


def _info(_args: argparse.Namespace, _extra=()) -> int:
    import numpy
    import torch

    from ._ext import backend_report

    print(f"nvdrec      {__version__}")
    print(f"python      {platform.python_version()} ({sys.executable})")
    print(f"platform    {platform.platform()}")
    print(f"torch       {torch.__version__} (CUDA {torch.version.cuda or 'none'})")
    print(f"numpy       {numpy.__version__}")
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            p = torch.cuda.get_device_properties(i)
            print(
                f"gpu {i}       {p.name}, {p.total_memory / 2**30:.1f} GiB, sm_{p.major}{p.minor}"
            )
    else:
        print("gpu         none visible to torch (the CPU path is used)")
    print("backends:")
    for name, status in backend_report().items():
        print(f"  {name:<11} {status}")
    return 0


def _overrides(extra: list[str]) -> dict:
    """``--key value`` / ``--key=value`` pairs after the known arguments -> overrides."""
    from .train.config import parse_override

    out, i = {}, 0
    while i < len(extra):
        tok = extra[i]
        if not tok.startswith("--"):
            raise ConfigError(f"unexpected argument {tok!r}; overrides look like --iter 200")
        key, eq, val = tok[2:].partition("=")
        if not eq:
            if i + 1 >= len(extra):
                raise ConfigError(f"override --{key} needs a value")
            val = extra[i + 1]
            i += 1
        key = key.replace("-", "_")
        out[key] = parse_override(key, val)
        i += 1
    return out


def _writable(path, flag: str, want: str):
    """``path`` as an output of kind ``want`` ("file" or "folder"): refused now, with the
    flag and the reason, when it cannot be one (a folder where a file is wanted or the
    reverse, a parent that is a file, no write permission) instead of after the work."""
    import os
    from pathlib import Path

    path = Path(path)
    if want == "file" and path.is_dir():
        raise ConfigError(f"{flag} '{path}' is a folder; give a file name")
    if want == "folder" and path.exists() and not path.is_dir():
        raise ConfigError(f"{flag} '{path}' is a file; give a folder")
    probe = path if want == "folder" else path.parent
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise ConfigError(f"{flag} '{path}': '{probe}' is a file, not a folder")
    if not os.access(probe, os.W_OK | os.X_OK) or (
        want == "file" and path.exists() and not os.access(path, os.W_OK)
    ):
        raise ConfigError(f"{flag} '{path}': no permission to write there; choose another place")
    return path


def _finite(value: float, flag: str, lo: float | None = None, hi: float | None = None):
    import math

    if (
        not math.isfinite(value)
        or (lo is not None and value < lo)
        or (hi is not None and value > hi)
    ):
        where = (
            f" in [{lo}, {hi}]"
            if lo is not None and hi is not None
            else (f" >= {lo}" if lo is not None else "")
        )
        raise ConfigError(f"{flag} must be a finite number{where}, got {value}")
    return value


def _run(cfg_src, args: argparse.Namespace, extra: list[str]) -> int:
    from .train.config import load_config
    from .train.trainer import Trainer

    ov = _overrides(extra)
    if getattr(args, "out_dir", None):
        ov["out_dir"] = args.out_dir
    if getattr(args, "device", None):
        ov["device"] = args.device
    cfg = load_config(cfg_src, overrides=ov)
    trainer = Trainer(
        cfg, resume=getattr(args, "resume", False), overwrite=getattr(args, "overwrite", False)
    )
    try:
        is_main = trainer.dist.is_main
        world = f", {trainer.dist.world} processes" if trainer.dist.enabled else ""
        if is_main:
            print(f"nvdrec: device {trainer.device}{world}, output in {cfg.out_dir}", flush=True)
        result = trainer.fit()
    finally:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
    if not is_main:
        return 0
    m = result["metrics"]
    print(f"\nnvdrec: done in {result['seconds']:.0f} s. Results in {result['out_dir']}:")
    for k, v in result["paths"].items():
        print(f"  {k:<6} {v}")
    if m:
        print(
            f"  validation over {m['views']} views: PSNR {m['psnr']:.2f} dB, SSIM {m['ssim']:.4f}"
        )
    return 0


def _train(args: argparse.Namespace, extra: list[str]) -> int:
    import os

    if args.gpus is not None and args.gpus < 1:
        raise ConfigError(f"--gpus must be at least 1, got {args.gpus}")
    if args.gpus and args.gpus > 1 and int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        import torch

        from .train.distributed import launch

        on_cpu = (args.device or "auto") == "cpu" or not torch.cuda.is_available()
        if (args.device or "auto").startswith("cuda") and not torch.cuda.is_available():
            raise ConfigError(
                "--gpus: no CUDA device is visible; use --device cpu for CPU processes"
            )
        if not on_cpu and args.gpus > torch.cuda.device_count():
            raise ConfigError(
                f"--gpus {args.gpus}: only {torch.cuda.device_count()} CUDA device(s) are visible"
            )

        argv = list(args.raw_argv)
        i = argv.index("--gpus") if "--gpus" in argv else None
        if i is not None:
            del argv[i : i + 2]
        else:
            argv = [a for a in argv if not a.startswith("--gpus=")]
        return launch(args.gpus, argv)
    return _run(args.config, args, extra)


def _demo(args: argparse.Namespace, extra: list[str]) -> int:
    import json
    from importlib import resources

    data = json.loads(resources.files("nvdrec").joinpath("configs/demo.json").read_text())
    print("nvdrec demo: reconstructing the built-in procedural scene (no downloads)", flush=True)
    return _run(data, args, extra)


def _check(args: argparse.Namespace, extra: list[str]) -> int:

    from .data.check import preflight

    picture = _writable(args.picture, "--picture", "file") if args.picture else None
    print(f"nvdrec check: reading {args.dataset} ...", file=sys.stderr, flush=True)
    lines, warns = preflight(
        args.dataset, mesh_scale=args.mesh_scale, picture=picture, cache=args.image_cache
    )
    print("\n".join(lines))
    for w in warns:
        print(f"warning: {w}")
    return 0


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


def _build(args: argparse.Namespace, extra: list[str]) -> int:
    from ._ext.build import build_dir, load

    load(verbose=args.verbose)
    print(f"nvdrec: CUDA kernels ready in {build_dir()}")
    return 0


def _export(args: argparse.Namespace, extra: list[str]) -> int:
    from pathlib import Path

    from .errors import MissingFileError
    from .io.obj import load_mesh, save_mesh

    run = Path(args.run_dir)
    src = run / "mesh" / "mesh.obj"
    if not src.is_file():
        raise MissingFileError(
            f"'{src}' not found: RUN_DIR must be the out_dir of a finished 'nvdrec train'"
        )
    out = Path(args.output) if args.output else run / "mesh"
    files = {"glb": (".glb",), "obj": (), "usd": (".usdz", ".usda", ".usdc")}
    suffix = out.suffix.lower()
    known = {s for v in files.values() for s in v} | {".obj", ".gltf", ".fbx", ".usd"}
    if suffix in known and suffix not in files[args.format]:
        what = (
            "OBJ export writes a folder (mesh.obj, mesh.mtl, textures): give a folder"
            if args.format == "obj"
            else f"--format {args.format} writes {' / '.join(files[args.format])}"
        )
        raise ConfigError(f"--output '{out}' does not fit --format {args.format}: {what}")
    if suffix not in files[args.format]:
        out = out / {"glb": "mesh.glb", "usd": "mesh.usdz", "obj": ""}[args.format]
    _writable(out, "--output", "folder" if args.format == "obj" else "file")
    mesh = load_mesh(src)
    if args.format == "glb":
        from .io.gltf import save_glb

        path = save_glb(mesh, out)
    elif args.format == "obj":
        path = save_mesh(mesh, out)
    else:
        from .io.usd import save_usd

        path = save_usd(mesh, out)
    print(f"nvdrec: wrote {path}")
    return 0


def _render(args: argparse.Namespace, extra: list[str]) -> int:
    import time
    from pathlib import Path

    import torch

    from .errors import ConfigError
    from .render.turntable import check_writer, load_run, turntable, write_frames

    dev = args.device
    if dev == "auto":
        dev = "cuda" if torch.cuda.is_available() else "cpu"
    if dev.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"--device {dev}: no CUDA GPU is visible; use --device cpu")
    run = Path(args.run_dir)
    on_cpu = not dev.startswith("cuda")  # CPU defaults: a turntable in about a minute
    if args.frames is None:
        args.frames = 36 if on_cpu else 60
    if args.res is None:
        args.res = 256 if on_cpu else 512
    if args.frames < 1 or args.frames > 100000:
        raise ConfigError(f"--frames must be in [1, 100000], got {args.frames}")
    if args.res < 8 or args.res > 8192:
        raise ConfigError(f"--res must be in [8, 8192], got {args.res}")
    if args.fps < 1 or args.fps > 240:
        raise ConfigError(f"--fps must be in [1, 240], got {args.fps}")
    _finite(args.elevation, "--elevation", -90.0, 90.0)
    _finite(args.env_scale, "--env-scale", 0.0)
    suffix = Path(args.output).suffix.lower() if args.output else ""
    fmt = args.format
    if fmt is None:  # from the output's extension, else a GIF
        fmt = suffix[1:] if suffix in (".gif", ".mp4") else "gif"
    elif suffix in (".gif", ".mp4", ".png") and suffix != f".{fmt}":
        raise ConfigError(
            f"--output '{args.output}' does not fit --format {fmt}"
            + (" (png writes a folder of frames)" if fmt == "png" else "")
        )
    if args.sheet:
        return _render_sheet(args, run, dev)
    # named after the light: a relit turntable does not replace the learned-light one
    stem = "turntable" + (f"_{Path(args.envmap).stem}" if args.envmap else "")
    out = (
        Path(args.output)
        if args.output
        else run / "render" / (stem if fmt == "png" else f"{stem}.{fmt}")
    )
    if fmt != "png" and out.suffix.lower() != f".{fmt}":
        out = out / f"{stem}.{fmt}"
    _writable(out, "--output", "folder" if fmt == "png" else "file")
    check_writer(fmt)
    t0 = time.time()
    mesh, light = load_run(run, args.envmap, args.env_scale, device=dev)
    what = args.envmap or "the learned probe"
    print(f"nvdrec render: {args.frames} frames of {args.res}x{args.res} under {what} on {dev}")

    t_frames = [None]

    def progress(done):
        now = time.time()
        if t_frames[0] is None:  # the first batch: light filtering and warm-up included
            t_frames[0] = (now, done)
            left = ""
        else:
            t1, d1 = t_frames[0]
            rate = (now - t1) / max(done - d1, 1)
            left = f", about {rate * (args.frames - done):.0f} s left"
        print(f"  {done}/{args.frames} frames ({now - t0:.1f} s{left})", flush=True)

    # frames are written as they are made: PNGs into the output folder, or into a
    # folder beside a GIF/MP4 that is assembled at the end (kept if interrupted)
    frame_dir = out if fmt == "png" else out.parent / f".{out.name}.frames"
    if fmt != "png" and frame_dir.exists():  # left by a crash: not this run's frames
        import shutil

        shutil.rmtree(frame_dir)
    frame_dir.mkdir(parents=True, exist_ok=True)
    written = []

    def on_frames(start, batch):
        import imageio.v3 as iio

        for k, f in enumerate(batch):
            iio.imwrite(frame_dir / f"frame_{start + k:04d}.png", f)
        written.append(len(batch))

    try:
        frames = turntable(
            mesh,
            light,
            args.frames,
            args.res,
            args.elevation,
            progress=progress,
            batch=8,
            on_frames=on_frames,
        )
    except KeyboardInterrupt:
        kept = frame_dir
        if fmt != "png":
            kept = out.parent / f"{out.stem}_frames_partial"
            if kept.exists():
                import shutil

                shutil.rmtree(kept)
            frame_dir.rename(kept)
        raise KeyboardInterrupt(f"{sum(written)} of {args.frames} frames kept in {kept}") from None
    if fmt == "png":
        path = out
    else:
        import shutil

        path = write_frames(frames, out, fps=args.fps)
        shutil.rmtree(frame_dir, ignore_errors=True)
    print(f"nvdrec: wrote {path} ({time.time() - t0:.1f} s)")
    return 0


def _render_sheet(args: argparse.Namespace, run, dev: str) -> int:
    """``nvdrec render RUN --sheet``: the contact sheet PNG (4 views; shaded under the
    learned light, and under --envmap when given; base colour, roughness, metallic,
    normals)."""
    import time
    from pathlib import Path

    from .io import write_image
    from .render.turntable import contact_sheet, load_light, load_run

    stem = "sheet" + (f"_{Path(args.envmap).stem}" if args.envmap else "")
    out = Path(args.output) if args.output else run / "render" / f"{stem}.png"
    if args.output and out.suffix.lower() != ".png":
        if out.suffix:
            raise ConfigError(f"--output '{args.output}': a contact sheet is a .png file")
        out = out / f"{stem}.png"
    _writable(out, "--output", "file")
    t0 = time.time()
    mesh, probe = load_run(run, device=dev)
    lights = [("learned light", probe)]
    if args.envmap:
        lights.append((Path(args.envmap).name, load_light(args.envmap, args.env_scale, device=dev)))
    sheet = contact_sheet(
        mesh,
        lights,
        views=4,
        res=args.res,
        elevation_deg=args.elevation,
        title=f"{run.resolve().name}: {mesh.num_triangles} triangles",
    )
    write_image(out, sheet / 255.0)  # uint8 values: written back exactly
    print(f"nvdrec: wrote {out} ({sheet.shape[1]}x{sheet.shape[0]}, {time.time() - t0:.1f} s)")
    return 0


def _view(args: argparse.Namespace, extra: list[str]) -> int:
    from .viewer import serve, write_viewer

    if args.serve and not 1 <= args.port <= 65535:
        raise ConfigError(f"--port must be in [1, 65535], got {args.port}")
    if args.output:
        from pathlib import Path

        out = Path(args.output)
        if out.suffix.lower() not in (".html", ".htm"):
            out = out / "viewer.html"
        _writable(out, "--output", "file")
    from pathlib import Path

    from .errors import MissingFileError

    run = Path(args.run_dir)
    if args.serve and not (run / "config.json").is_file():
        raise MissingFileError(
            f"'{run / 'config.json'}' not found: RUN_DIR must be the out_dir of a run "
            "(running or finished)"
        )
    # served pages follow the run: they may start before any mesh exists
    page = write_viewer(run, args.output, live=args.serve)
    print(f"nvdrec: wrote {page} ({page.stat().st_size / 2**20:.1f} MB, works offline)")
    if args.serve:
        serve(page, args.port, run=run)
    return 0


class _DefaultsHelp(argparse.ArgumentDefaultsHelpFormatter):
    """Shows "(default: X)" where the help does not already say what the default is."""

    def _get_help_string(self, action):
        text = action.help or ""
        if action.default in (None, False, argparse.SUPPRESS) or "default" in text:
            return text
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="nvdrec",
        description="Reconstruct a textured mesh, PBR materials and an HDR light from images.",
    )
    p.add_argument("--version", action="version", version=f"nvdrec {__version__}")
    p.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub_add = sub.add_parser

    def add_parser(name, **kw):  # every command's --help shows the defaults
        return sub_add(name, formatter_class=_DefaultsHelp, **kw)

    sub.add_parser = add_parser
    s = sub.add_parser("info", help="versions, GPU and which backends are available")
    s.set_defaults(func=_info)
    s = sub.add_parser(
        "train",
        help="reconstruct from a config (nvdiffrec JSON format)",
        description="Any config key can be overridden: --iter 200 --train_res [256,256] ...",
    )
    s.add_argument("config", help="JSON config file")
    s.add_argument("--out-dir", dest="out_dir", help="output folder (relative: under out/)")
    s.add_argument("--device", help="auto, cpu, cuda or cuda:N")
    s.add_argument("--resume", action="store_true", help="continue from the newest checkpoint")
    s.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an earlier run's results in the output folder (otherwise refused)",
    )
    s.add_argument(
        "--gpus",
        type=int,
        help="train with N processes under torchrun (one per GPU; with --device cpu: N CPU "
        "processes over gloo); 'batch' is per process",
    )
    s.set_defaults(func=_train)
    s = sub.add_parser("demo", help="reconstruct the built-in demo scene (no files needed)")
    s.add_argument("--out-dir", dest="out_dir", help="output folder (default out/demo)")
    s.add_argument("--device", help="auto, cpu, cuda or cuda:N")
    s.add_argument(
        "--overwrite",
        action="store_const",
        const=True,
        default="demo",
        help="replace any earlier run in the output folder (an earlier demo run is "
        "replaced without it)",
    )
    s.set_defaults(func=_demo)
    s = sub.add_parser("check", help="preflight report of a dataset folder (NeRF, LLFF, COLMAP)")
    s.add_argument("dataset", help="dataset folder")
    s.add_argument("--mesh-scale", dest="mesh_scale", type=float, default=2.1, help="grid box size")
    s.add_argument("--picture", help="write a top-view picture of the cameras to this PNG")
    s.add_argument(
        "--image-cache",
        dest="image_cache",
        default="auto",
        help="reduced-image cache: auto (default folder), off, or a folder",
    )
    s.set_defaults(func=_check)
    s = sub.add_parser(
        "poses",
        help="camera poses from the photos alone (structure from motion; needs pycolmap)",
        description="Writes a COLMAP folder (images/, sparse/0, masks/) that 'ref_mesh' "
        "reads. Photos without masks/ get object masks made from the photos (needs "
        "opencv). Runs on the CPU.",
    )
    s.add_argument("photos", help="folder of photos (or with images/ and masks/)")
    s.add_argument("--out", help="folder to write (default: PHOTOS_colmap next to PHOTOS)")
    s.add_argument(
        "--max-side",
        dest="max_side",
        type=int,
        default=1024,
        help="reduce the photos to this many pixels on the long side (default 1024)",
    )
    s.add_argument(
        "--matcher",
        choices=("auto", "exhaustive", "sequential"),
        default="auto",
        help="pairs to match: every pair (exhaustive), neighbours in name order "
        "(sequential, for video frames), or auto (exhaustive up to 120 photos)",
    )
    s.add_argument(
        "--ignore-masks",
        dest="ignore_masks",
        action="store_true",
        help="do not use PHOTOS/masks (by default features come from the masked object "
        "only, and the masks are written with the result)",
    )
    s.add_argument(
        "--no-auto-masks",
        dest="no_auto_masks",
        action="store_true",
        help="photos without masks/: keep the cameras from the whole photos and make no "
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
    s.add_argument(
        "--max-side",
        dest="max_side",
        type=int,
        default=512,
        help="segment the photos at this many pixels on the long side (default 512); "
        "the masks are written at the photos' size",
    )
    s.set_defaults(func=_masks)
    s = sub.add_parser("build", help="compile the CUDA kernels now (otherwise done on first use)")
    s.add_argument("--verbose", action="store_true", help="show the compiler output")
    s.set_defaults(func=_build)
    s = sub.add_parser("export", help="write a finished run's mesh as GLB or OBJ")
    s.add_argument("run_dir", help="out_dir of a finished run")
    s.add_argument("--format", choices=("glb", "obj", "usd"), default="glb")
    s.add_argument("--output", help="output file or folder (default RUN_DIR/mesh)")
    s.set_defaults(func=_export)
    s = sub.add_parser("render", help="turntable / relighting of a finished run's mesh")
    s.add_argument("run_dir", help="out_dir of a finished run")
    s.add_argument("--envmap", help="lat-long HDR to relight with (default: the learned probe)")
    s.add_argument(
        "--env-scale", dest="env_scale", type=float, default=1.0, help="radiance scale of --envmap"
    )
    s.add_argument(
        "--frames", type=int, help="frames of one turn (default: 60 on a GPU, 36 on the CPU)"
    )
    s.add_argument(
        "--res", type=int, help="frame size in pixels (default: 512 on a GPU, 256 on the CPU)"
    )
    s.add_argument("--elevation", type=float, default=20.0, help="camera elevation, degrees")
    s.add_argument("--fps", type=int, default=30, help="frames per second (gif, mp4)")
    s.add_argument(
        "--format",
        choices=("png", "gif", "mp4"),
        help="gif (default, or the --output file's extension), mp4, or png (a folder of frames)",
    )
    s.add_argument(
        "--output",
        help="output file (gif/mp4) or folder (png); default RUN_DIR/render/turntable.gif, "
        "or turntable_MAP.gif with --envmap MAP.hdr",
    )
    s.add_argument(
        "--sheet",
        action="store_true",
        help="write a contact sheet instead (RUN_DIR/render/sheet.png, sheet_MAP.png with "
        "--envmap): 4 views of the mesh shaded (learned light, and --envmap) and its base "
        "colour, roughness, metallic and normals, labelled; --res is the cell size",
    )
    s.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    s.set_defaults(func=_render)
    s = sub.add_parser("view", help="write (and serve) an offline HTML viewer of a run")
    s.add_argument("run_dir", help="out_dir of a finished run (or, with --serve, a running one)")
    s.add_argument("--output", help="the page to write (default RUN_DIR/viewer.html)")
    s.add_argument(
        "--serve",
        action="store_true",
        help="serve it on localhost; the page follows the run as it trains (newest "
        "preview image and mesh, checked every 2 s)",
    )
    s.add_argument("--port", type=int, default=8000)
    s.set_defaults(func=_view)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    raw = list(sys.argv[1:] if argv is None else argv)
    args, extra = parser.parse_known_args(raw)
    args.raw_argv = raw
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    if extra and args.func not in (_train, _demo):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return int(args.func(args, extra) or 0)
    except NvdrecError as e:
        if args.debug:
            raise
        print(f"nvdrec: error: {e}", file=sys.stderr)
        return e.exit_code
    except OSError as e:  # disk full, permissions, a path that changed under us
        if args.debug:
            raise
        print(f"nvdrec: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as e:
        print(f"nvdrec: interrupted{': ' + str(e) if str(e) else ''}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
