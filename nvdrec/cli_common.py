"""Checks of command-line outputs and numbers shared by the ``nvdrec`` commands."""

from __future__ import annotations

from .errors import ConfigError

__all__ = ["finite", "flag", "writable"]


def flag(parser, name: str, help: str) -> None:
    """Add an on/off option ``name`` (``--some-thing``, False unless given) to ``parser``."""
    parser.add_argument(name, action="store_true", help=help)


def writable(path, flag: str, want: str):
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


def finite(value: float, flag: str, lo: float | None = None, hi: float | None = None):
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
