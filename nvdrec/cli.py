"""The ``nvdrec`` command line."""

from __future__ import annotations

import argparse
import platform
import sys

from . import __version__
from .errors import NvdrecError

__all__ = ["main"]


def _info(_args: argparse.Namespace) -> int:
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


def _demo(args: argparse.Namespace) -> int:
    print("The reconstruction trainer is not in this version yet; environment report:\n")
    return _info(args)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="nvdrec",
        description="Reconstruct a textured mesh, PBR materials and an HDR light from images.",
    )
    p.add_argument("--version", action="version", version=f"nvdrec {__version__}")
    p.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    s = sub.add_parser("info", help="versions, GPU and which backends are available")
    s.set_defaults(func=_info)
    s = sub.add_parser("demo", help="reconstruct the built-in demo scene")
    s.set_defaults(func=_demo)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except NvdrecError as e:
        if args.debug:
            raise
        print(f"nvdrec: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("nvdrec: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
