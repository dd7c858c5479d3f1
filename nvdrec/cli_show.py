"""``nvdrec export``, ``render`` and ``view``: a finished (or running) run's outputs."""

from __future__ import annotations

import argparse

from .cli_common import finite as _finite
from .cli_common import flag
from .cli_common import writable as _writable
from .errors import ConfigError, MissingFileError

__all__ = ["add_parsers"]


def _export(args: argparse.Namespace, extra: list[str]) -> int:
    from pathlib import Path

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


def add_parsers(sub) -> None:
    """Add this module's commands to the ``nvdrec`` sub-command parser ``sub``."""
    s = sub.add_parser("export", help="write a finished run's mesh as GLB or OBJ")
    s.add_argument("run_dir", help="out_dir of a finished run")
    s.add_argument("--format", choices=("glb", "obj", "usd"), default="glb")
    s.add_argument("--output", help="output file or folder (default RUN_DIR/mesh)")
    s.set_defaults(func=_export)
    s = sub.add_parser("render", help="turntable / relighting of a finished run's mesh")
    s.add_argument("run_dir", help="out_dir of a finished run")
    s.add_argument("--envmap", help="lat-long HDR to relight with (default: the learned probe)")
    s.add_argument("--env-scale", type=float, default=1.0, help="radiance scale of --envmap")
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
    flag(
        s,
        "--sheet",
        "write a contact sheet instead (RUN_DIR/render/sheet.png, sheet_MAP.png with "
        "--envmap): 4 views of the mesh shaded (learned light, and --envmap) and its base "
        "colour, roughness, metallic and normals, labelled; --res is the cell size",
    )
    s.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    s.set_defaults(func=_render)
    s = sub.add_parser("view", help="write (and serve) an offline HTML viewer of a run")
    s.add_argument("run_dir", help="out_dir of a finished run (or, with --serve, a running one)")
    s.add_argument("--output", help="the page to write (default RUN_DIR/viewer.html)")
    flag(
        s,
        "--serve",
        "serve it on localhost; the page follows the run as it trains (newest "
        "preview image and mesh, checked every 2 s)",
    )
    s.add_argument("--port", type=int, default=8000)
    s.set_defaults(func=_view)
