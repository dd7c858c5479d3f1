"""nvdrec.data: datasets, image cache, preflight, framing, poses from photos (see
docs/architecture.md)."""

from .base import Dataset
from .source import open_dataset

__all__ = ["Dataset", "open_dataset"]
