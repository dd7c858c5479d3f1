"""Cache of images reduced to the working size, so a second run over the same photos
starts in seconds.

A view (photo + mask) decoded, reduced and converted to premultiplied linear RGBA at the
working size is stored as one ``.npy`` file (float32 [h, w, 4], exactly what the loader
computed) named by a hash of: the files' absolute paths, sizes and modification times,
the working size, and how the pixels were made (``recipe``: loader and colour handling,
plus ``CACHE_VERSION``). Changing a photo, its mask or the resolution therefore misses
the cache; nothing is ever served stale. Files are written under a temporary name and
renamed, so concurrent runs (several GPUs, two trainings) never read half a file. The
folder is trimmed to ``max_bytes`` (oldest use first) after writes.

Location: ``$NVDREC_IMAGE_CACHE``, else ``$NVDREC_CACHE_DIR/images``, else
``~/.cache/nvdrec/images``; the config key ``image_cache`` (and ``nvdrec check
--image-cache``) turns it off (``"off"``) or names another folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import torch

from ..io.files import file_mode

__all__ = ["ImageCache", "default_image_cache", "image_cache_from_setting", "CACHE_VERSION"]

CACHE_VERSION = 1  # bump when the pixels a loader makes change
DEFAULT_MAX_BYTES = 20 * 2**30  # per cache folder; oldest entries go first


def default_image_cache() -> Path | None:
    """``$NVDREC_IMAGE_CACHE`` (a folder, or "off"), else ``$NVDREC_CACHE_DIR/images``,
    else ``~/.cache/nvdrec/images``."""
    own = os.environ.get("NVDREC_IMAGE_CACHE")
    if own:
        return None if own == "off" else Path(own)
    env = os.environ.get("NVDREC_CACHE_DIR")
    return (Path(env) if env else Path.home() / ".cache" / "nvdrec") / "images"


def image_cache_from_setting(value) -> ImageCache | None:
    """The cache of a config's ``image_cache`` value: "auto" (the default folder),
    "off", or a folder path."""
    if value in (None, "off", False):
        return None
    root = default_image_cache() if value in ("auto", True) else Path(value)
    return None if root is None else ImageCache(root)


class ImageCache:
    """Reduced images stored as ``.npy`` files in ``root`` (see the module docstring)."""

    def __init__(self, root, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.root = Path(root)
        self.max_bytes = int(max_bytes)
        self.hits = 0
        self.misses = 0
        self.written = 0
        self.failed = None  # the first write error (the cache is then skipped, not fatal)

    def key(self, files, size, recipe: str) -> str | None:
        """Hash of the input files' identity (path, bytes, mtime), the working ``size``
        (H, W) and ``recipe``; None when a file cannot be stat'ed."""
        ident = []
        for f in files:
            try:
                st = os.stat(f)
            except OSError:
                return None
            ident.append([str(Path(f).resolve()), st.st_size, st.st_mtime_ns])
        text = json.dumps([CACHE_VERSION, recipe, [int(s) for s in size], ident])
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.npy"

    def get(self, key: str | None, size) -> torch.Tensor | None:
        """The cached image [H, W, 4] float32 of ``key``, or None (absent, unreadable or of
        another shape: a damaged entry is a miss, never an error)."""
        if key is None:
            return None
        p = self._path(key)
        try:
            arr = np.load(p, allow_pickle=False)
        except (OSError, ValueError, EOFError):
            self.misses += 1
            return None
        if arr.dtype != np.float32 or arr.shape != (int(size[0]), int(size[1]), 4):
            self.misses += 1
            return None
        try:
            os.utime(p)  # mark as recently used for trimming
        except OSError:
            pass
        self.hits += 1
        return torch.from_numpy(arr)

    def put(self, key: str | None, image: torch.Tensor) -> None:
        """Store ``image`` [H, W, 4] under ``key`` (atomically; errors disable the cache
        for this run, with the reason in ``self.failed``)."""
        if key is None or self.failed is not None:
            return
        p = self._path(key)
        try:
            p.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=".tmp-", suffix=".npy")
            try:
                with os.fdopen(fd, "wb") as fh:
                    np.save(fh, image.detach().cpu().contiguous().numpy().astype(np.float32))
                os.chmod(tmp, file_mode())
                os.replace(tmp, p)
                self.written += 1
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as e:
            self.failed = f"image cache '{self.root}' not written: {e}"

    def trim(self) -> None:
        """Delete the least recently used entries until the folder holds at most
        ``max_bytes``."""
        try:
            entries = [(p.stat(), p) for p in self.root.glob("*/*.npy")]
        except OSError:
            return
        total = sum(st.st_size for st, _ in entries)
        for st, p in sorted(entries, key=lambda e: e[0].st_mtime):
            if total <= self.max_bytes:
                break
            try:
                p.unlink()
                total -= st.st_size
            except OSError:
                pass
