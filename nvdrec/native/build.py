"""Just-in-time build of nvdrec's CUDA kernels: cached, lock-safe, observable.

- The build folder is keyed by a hash of the sources, the compiler flags, the torch and
  CUDA versions and the GPU architectures, so a change of any of them rebuilds and two
  configurations never share binaries.
- An OS-level lock (``fcntl``/``flock`` through :mod:`filelock`) serialises builders; it
  dies with the process that holds it, so a killed build can never block later runs. A
  waiting process says which lock it waits for, held by which pid since when.
- A build counts as done only after a ``BUILT`` stamp is written; a folder without the
  stamp (a build killed half way) is wiped and rebuilt. torch's own ``lock`` baton file
  in the folder is removed while we hold our lock, which is what makes stale locks
  harmless.
- Linking uses ``-Wl,--exclude-libs,ALL`` so a statically linked libstdc++ in the
  toolchain does not clash with the process's (seen as a crash at the first formatted
  error message on some machines).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import threading
import time
import warnings
from pathlib import Path

from ..errors import BuildError
from .sources import csrc_dir

__all__ = ["SOURCES", "load", "try_load", "build_dir", "cache_root", "build_locked"]

SOURCES = (
    "binding.cpp",
    "rasterize/rasterize_kernels.cu",
    "rasterize/rasterize_glue.cu",
    "rasterize/rasterize_bind.cpp",
    "interpolate/interpolate_kernels.cu",
    "interpolate/interpolate_glue.cu",
    "interpolate/interpolate_bind.cpp",
    "texture/texture_kernels.cu",
    "texture/texture_glue.cu",
    "texture/texture_bind.cpp",
    "antialias/antialias_kernels.cu",
    "antialias/antialias_glue.cu",
    "antialias/antialias_bind.cpp",
    "hashgrid/hashgrid_kernels.cu",
    "hashgrid/hashgrid_glue.cu",
    "hashgrid/hashgrid_bind.cpp",
    "light/light_kernels.cu",
    "light/light_glue.cu",
    "light/light_bind.cpp",
    "loss/loss_kernels.cu",
    "loss/loss_glue.cu",
    "loss/loss_bind.cpp",
    "shade/shade_kernels.cu",
    "shade/shade_glue.cu",
    "shade/shade_bind.cpp",
)
CFLAGS = ["-O3", "-std=c++17"]
CUDA_CFLAGS = ["-O3", "-std=c++17", "-lineinfo"]
LDFLAGS = ["-Wl,--exclude-libs,ALL"]

_module = None
_failure: str | None = None
_warned = False
_lock = threading.Lock()


def cache_root() -> Path:
    """``$NVDREC_CACHE_DIR`` or ``~/.cache/nvdrec``."""
    env = os.environ.get("NVDREC_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "nvdrec"


def _arch_list() -> str:
    import torch

    env = os.environ.get("TORCH_CUDA_ARCH_LIST")
    if env:
        return env
    caps = sorted({torch.cuda.get_device_capability(i) for i in range(torch.cuda.device_count())})
    return ";".join(f"{a}.{b}" for a, b in caps)


def _build_key(src: Path) -> tuple[str, dict]:
    import torch

    h = hashlib.sha256()
    for rel in SOURCES:
        h.update(rel.encode())
        h.update((src / rel).read_bytes())
    for hdr in sorted(src.rglob("*.h")):
        h.update(str(hdr.relative_to(src)).encode())
        h.update(hdr.read_bytes())
    record = {
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "arch": _arch_list(),
        "python": sys.version.split()[0],
        "cflags": CFLAGS,
        "cuda_cflags": CUDA_CFLAGS,
        "ldflags": LDFLAGS,
    }
    h.update(json.dumps(record, sort_keys=True).encode())
    return h.hexdigest()[:16], record


def build_dir() -> Path:
    """Folder the kernels of this configuration are (or will be) built in."""
    src = csrc_dir()
    if src is None:
        raise BuildError("nvdrec's CUDA sources are missing from this installation")
    key, _ = _build_key(src)
    return cache_root() / f"kernels_{key}"


class _Progress:
    """Elapsed-time line on stderr while a real compilation runs."""

    def __init__(self, where: Path) -> None:
        self.where = where
        self.start = time.time()
        self.stop = threading.Event()
        self.tty = sys.stderr.isatty()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        print(
            f"nvdrec: compiling CUDA kernels (first use; takes a minute or two) in {self.where}",
            file=sys.stderr,
            flush=True,
        )
        self.thread.start()
        return self

    def _run(self) -> None:
        spin = "|/-\\"
        i = 0
        while not self.stop.wait(0.5 if self.tty else 15.0):
            elapsed = time.time() - self.start
            if self.tty:
                print(f"\r  {spin[i % 4]} {elapsed:5.0f} s", end="", file=sys.stderr, flush=True)
            else:
                print(f"  ... still compiling ({elapsed:.0f} s)", file=sys.stderr, flush=True)
            i += 1

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join()
        end = "\r" if self.tty else ""
        status = "failed" if exc[0] else "done"
        print(
            f"{end}nvdrec: kernel build {status} after {time.time() - self.start:.0f} s",
            file=sys.stderr,
        )


def _acquire(lock_path: Path):
    from filelock import FileLock, Timeout

    lock = FileLock(str(lock_path))
    try:
        lock.acquire(timeout=1.0)
    except Timeout:
        owner = lock_path.with_suffix(".owner")
        who = owner.read_text().strip() if owner.exists() else "another process"
        print(
            f"nvdrec: waiting for {who} to finish building the kernels (lock {lock_path}); "
            "the lock is released automatically if that process dies",
            file=sys.stderr,
            flush=True,
        )
        lock.acquire()
    lock_path.with_suffix(".owner").write_text(
        f"pid {os.getpid()} since {time.strftime('%Y-%m-%d %H:%M:%S')}\n"
    )
    return lock


def build_locked(
    name: str, sources: list, folder: Path, record: dict, verbose: bool = False, **flags
):
    """Compile (if needed) and import a torch extension in ``folder`` under the OS lock.

    The same path builds our kernels and, in tests, a tiny C++ extension: a folder
    without its ``BUILT`` stamp (a build killed half way) is wiped first, torch's own
    baton file is removed while we hold the real lock, and the stamp is written last.
    """
    import torch
    from torch.utils import cpp_extension

    folder.parent.mkdir(parents=True, exist_ok=True)
    lock = _acquire(folder.parent / f"{folder.name}.lock")
    try:
        stamp = folder / "BUILT"
        fresh = not stamp.exists()
        if fresh and folder.exists():
            shutil.rmtree(folder)  # a build that was killed half way
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "lock").unlink(missing_ok=True)  # torch's baton; we hold the real lock

        def build():
            return cpp_extension.load(
                name=name,
                sources=[str(x) for x in sources],
                build_directory=str(folder),
                verbose=verbose,
                **flags,
            )

        try:
            if fresh:
                with _Progress(folder):
                    module = build()
                (folder / "build.json").write_text(json.dumps(record, indent=2))
                stamp.write_text(name + "\n")
            else:
                module = build()
        except Exception as e:  # compiler errors arrive as RuntimeError/OSError/...
            raise BuildError(
                f"building {name} failed in {folder}: {str(e)[-2000:]}\n"
                f"torch {torch.__version__} at {Path(torch.__file__).parent}; check that nvcc "
                "matches torch's CUDA version (nvdrec info), or set CUDA_HOME"
            ) from e
    finally:
        lock.release()
    return module


def load(verbose: bool = False):
    """Build (if needed) and import the kernels; raises BuildError on failure."""
    global _module
    with _lock:
        if _module is not None:
            return _module
        import torch

        if not torch.cuda.is_available():
            raise BuildError("no CUDA device is visible to torch; the CUDA kernels need one")
        src = csrc_dir()
        if src is None:
            raise BuildError("nvdrec's CUDA sources are missing from this installation")
        key, record = _build_key(src)
        os.environ.setdefault("TORCH_CUDA_ARCH_LIST", record["arch"])
        _module = build_locked(
            f"nvdrec_kernels_{key}",
            [src / x for x in SOURCES],
            cache_root() / f"kernels_{key}",
            record,
            verbose=verbose,
            extra_cflags=CFLAGS,
            extra_cuda_cflags=CUDA_CFLAGS,
            extra_ldflags=LDFLAGS,
        )
        return _module


def try_load():
    """The kernel module, or None (with a one-line warning, once) if it cannot be built."""
    global _failure, _warned
    if _module is not None:
        return _module
    if _failure is not None:
        return None
    try:
        return load()
    except BuildError as e:
        _failure = str(e)
        if not _warned:
            _warned = True
            first = _failure.splitlines()[0][:300]
            warnings.warn(
                f"nvdrec: CUDA kernels unavailable, using the torch path ({first}). "
                "Run 'nvdrec build' to see the full log.",
                RuntimeWarning,
                stacklevel=3,
            )
        return None
