"""The ``nvdrec`` command line."""

from __future__ import annotations

import argparse
import os
import platform
import sys

from . import __version__, cli_photos, cli_show
from .cli_common import flag
from .cli_common import writable as _writable
from .errors import ConfigError, NvdrecError

__all__ = ["main"]


def _info(_args: argparse.Namespace, _extra=()) -> int:
    import numpy
    import torch

    from .native import backend_report

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


def _build(args: argparse.Namespace, extra: list[str]) -> int:
    from .native.build import build_dir, load

    load(verbose=args.verbose)
    print(f"nvdrec: CUDA kernels ready in {build_dir()}")
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
    s.add_argument("--out-dir", help="output folder (relative: under out/)")
    s.add_argument("--device", help="auto, cpu, cuda or cuda:N")
    s.add_argument("--resume", action="store_true", help="continue from the newest checkpoint")
    flag(
        s,
        "--overwrite",
        "replace an earlier run's results in the output folder (otherwise refused)",
    )
    s.add_argument(
        "--gpus",
        type=int,
        help="train with N processes under torchrun (one per GPU; with --device cpu: N CPU "
        "processes over gloo); 'batch' is per process",
    )
    s.set_defaults(func=_train)
    s = sub.add_parser("demo", help="reconstruct the built-in demo scene (no files needed)")
    s.add_argument("--out-dir", help="output folder (default out/demo)")
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
    s.add_argument("--mesh-scale", type=float, default=2.1, help="grid box size")
    s.add_argument("--picture", help="write a top-view picture of the cameras to this PNG")
    s.add_argument(
        "--image-cache",
        default="auto",
        help="reduced-image cache: auto (default folder), off, or a folder",
    )
    s.set_defaults(func=_check)
    cli_photos.add_parsers(sub)
    s = sub.add_parser("build", help="compile the CUDA kernels now (otherwise done on first use)")
    s.add_argument("--verbose", action="store_true", help="show the compiler output")
    s.set_defaults(func=_build)
    cli_show.add_parsers(sub)
    return p


def use_expandable_segments() -> None:
    """Ask PyTorch's CUDA caching allocator for expandable segments unless the user set
    ``PYTORCH_CUDA_ALLOC_CONF`` or ``PYTORCH_ALLOC_CONF``: the same speed, 270-460 MiB
    less peak GPU memory on the side-by-side configs (docs/benchmarks.md). Linux only
    (elsewhere PyTorch warns that it lacks them); read when CUDA first allocates, so it
    must run before that."""
    own = {"PYTORCH_CUDA_ALLOC_CONF", "PYTORCH_ALLOC_CONF"} & set(os.environ)
    if sys.platform == "linux" and not own:
        os.environ["PYTORCH_CUDA_ALLOC_CONF"] = "expandable_segments:True"


def main(argv: list[str] | None = None) -> int:
    use_expandable_segments()
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
