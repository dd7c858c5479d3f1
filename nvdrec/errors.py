"""Error types raised for problems a user can cause.

Every error that a bad input (config, file, dataset) can trigger derives from
:class:`NvdrecError`, so callers (and the CLI) can tell user errors from bugs.
Messages name the offending thing (file, key, value) and say how to fix it.
"""

from __future__ import annotations

__all__ = [
    "BuildError",
    "ConfigError",
    "DataError",
    "FileFormatError",
    "ImageFormatError",
    "MeshFormatError",
    "MissingDependencyError",
    "MissingFileError",
    "NvdrecError",
    "OutputError",
]


class NvdrecError(Exception):
    """Base class of all errors caused by user input."""

    #: exit status the command line uses for this error type
    exit_code = 1


class ConfigError(NvdrecError, ValueError):
    """A configuration key or value is invalid (unknown key, bad type, out of range)."""

    exit_code = 2


class FileFormatError(NvdrecError, ValueError):
    """A file exists but its content cannot be parsed."""


class MeshFormatError(FileFormatError):
    """An OBJ/MTL file is malformed or references something that does not exist."""


class ImageFormatError(FileFormatError):
    """An image file (PNG, JPEG, HDR, EXR) is malformed, truncated or unsupported."""


class MissingFileError(NvdrecError, FileNotFoundError):
    """A file or folder that the input refers to does not exist."""

    exit_code = 2


class DataError(NvdrecError, ValueError):
    """A dataset is inconsistent (counts, sizes, missing masks, degenerate geometry)."""


class BuildError(NvdrecError, RuntimeError):
    """The native kernels could not be compiled or loaded."""


class NumericalError(NvdrecError, FloatingPointError):
    """A loss or parameter became NaN/Inf during optimisation; the run stops."""


class MissingDependencyError(NvdrecError, ImportError):
    """An optional package (usd-core, pycolmap, ...) that the request needs is not
    installed. Also an ImportError, so ``except ImportError`` fallbacks keep working."""


class OutputError(NvdrecError, OSError):
    """An output could not be written (disk full, folder removed or read-only)."""
