"""Memory of the image loaders: what is free on a device, whether a dataset fits before
it loads, and giving decoded photos' freed memory back to the system."""

from __future__ import annotations

import sys

import torch

from ..errors import DataError

__all__ = ["TRIM_EVERY", "available_memory", "check_dataset_memory"]


def _release_freed_memory() -> None:
    """Give the decoded photo's freed memory back to the system (glibc's malloc_trim).
    Without it, glibc's adaptive mmap threshold serves the next photo's buffers from the
    heap, whose freed pieces stay resident: peak memory then grows ~1.5 MB per photo.
    Called every ``TRIM_EVERY`` photos (each call costs the next decodes fresh pages)."""
    global _TRIM
    if _TRIM is None:
        _TRIM = False
        if sys.platform.startswith("linux"):
            try:
                import ctypes

                _TRIM = ctypes.CDLL("libc.so.6").malloc_trim
            except (OSError, AttributeError):
                pass
    if _TRIM:
        _TRIM(0)


_TRIM = None
TRIM_EVERY = 4


def available_memory(device) -> int | None:
    """Bytes free for new tensors on ``device``: CUDA's free memory, or the host's
    MemAvailable (Linux); None where it cannot be read."""
    device = torch.device(device)
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def check_dataset_memory(count: int, resolution, device) -> None:
    """Stop with a clear message, before the images load, when ``count`` RGBA float32
    images of ``resolution`` (H, W) cannot fit: on the host (with room for a copy, as
    moving them or the first batches may take one) and on a CUDA device."""
    h, w = int(resolution[0]), int(resolution[1])
    need = count * h * w * 4 * 4
    checks = [("host", "cpu", 2)]
    if torch.device(device).type == "cuda":
        checks.append(("GPU", device, 1))
    for name, where, factor in checks:
        free = available_memory(where)
        if free is not None and need * factor > 0.9 * free:
            raise DataError(
                f"the dataset needs about {need * factor / 2**30:.1f} GB of {name} memory for "
                f"{count} images at {w}x{h} (RGBA float32) but {free / 2**30:.1f} GB are "
                "available: lower 'train_res' (config key), or use fewer images"
            )
