"""One run per output folder: a lock while a run is live, no silent mixing with an
earlier run's results.

A run claims its ``out_dir`` before any data loads:

- the folder is created (or refused with the reason: a file in its place, not writable);
- an OS lock (``flock`` through :mod:`filelock`, released by the OS when the process
  ends, so a crash never leaves a stale lock) is taken on ``OUT/.nvdrec.lock``; a second
  run into the same folder stops with a message instead of interleaving its files;
- a folder that holds another run's results (finished or interrupted) is refused unless
  the run resumes it (``resume``) or replaces it (``overwrite``: the earlier run's outputs,
  and only those, are deleted first).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from ..errors import ConfigError

__all__ = ["RUN_OUTPUTS", "RunFolder", "earlier_run"]

LOCK_NAME = ".nvdrec.lock"
#: what a run (and ``nvdrec render`` / ``view`` on it) writes into its folder
RUN_OUTPUTS = (
    "config.json",
    "run.json",
    "checkpoints",
    "dmtet_mesh",
    "dmtet_validate",
    "mesh",
    "validate",
    "render",
    "viewer.html",
)
RUN_OUTPUT_GLOBS = ("img_*.png",)


def _check_writable_folder(out: Path) -> None:
    """Create ``out`` or stop with a ConfigError that names it: a file in its place, a
    folder that cannot be created or written."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"config key 'out_dir': '{out}' is a file, not a folder; choose a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(
            f"config key 'out_dir': cannot create '{out}' ({e.strerror or e}); choose a "
            "folder you can write to"
        ) from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise ConfigError(
            f"config key 'out_dir': '{out}' is not writable; choose a folder you can write to"
        )


# what makes an earlier run worth keeping: results or checkpoints (a run that stopped
# before any of them left only its config and previews, which a new run replaces)
RESULTS = ("run.json", "mesh", "dmtet_mesh", "validate", "dmtet_validate")


def earlier_run(out: Path) -> str | None:
    """What an earlier run left in ``out`` that a new run must not silently replace
    ("the results of a finished run", "an interrupted run (checkpoint ...)", "the
    results of an earlier run"), or None (no run outputs, or only the config and
    previews of a run that ended before any result or checkpoint)."""
    if not out.is_dir():
        return None
    if (out / "run.json").is_file() or (out / "mesh" / "mesh.obj").is_file():
        return "the results of a finished run"
    ckpts = sorted((out / "checkpoints").glob("*.pt")) if (out / "checkpoints").is_dir() else []
    if ckpts:
        return f"an interrupted run (checkpoint {ckpts[-1].name})"
    if any((out / name).exists() for name in RESULTS):
        return "the results of an earlier run"
    return None


def _has_leftovers(out: Path) -> bool:
    return any((out / name).exists() for name in RUN_OUTPUTS) or any(
        next(out.glob(g), None) is not None for g in RUN_OUTPUT_GLOBS
    )


def _is_demo_run(out: Path) -> bool:
    """Whether the folder's run reconstructed the built-in demo scene (no ``ref_mesh``;
    every saved config has a ``demo_grid`` value, so that key does not tell)."""
    try:
        cfg = json.loads((out / "config.json").read_text())
        return isinstance(cfg, dict) and "ref_mesh" in cfg and cfg["ref_mesh"] is None
    except (OSError, ValueError):
        return False


class RunFolder:
    """The claim of one run on its output folder (see the module docstring).

    Args:
        out: the run folder (``cfg.out_dir``).
        resume: the run continues the folder's checkpoints: an earlier run is expected.
        overwrite: delete an earlier run's outputs instead of refusing the folder; with
            ``"demo"``, only when that earlier run was also the built-in demo.
    """

    def __init__(self, out: Path, resume: bool = False, overwrite: bool | str = False) -> None:
        self.out = Path(out)
        self.resume = resume
        self.overwrite = overwrite
        self.replaced: str | None = None  # what was deleted, for the log
        self._lock = None

    @property
    def held(self) -> bool:
        return self._lock is not None and self._lock.is_locked

    def claim(self) -> None:
        """Create and lock the folder, then refuse or clear an earlier run. Raises
        ConfigError with the folder, the reason and what to do."""
        from filelock import FileLock, Timeout

        if self.held:
            return
        _check_writable_folder(self.out)
        lock = FileLock(str(self.out / LOCK_NAME), timeout=0)
        try:
            lock.acquire()
        except Timeout:
            raise ConfigError(
                f"config key 'out_dir': another nvdrec run is writing into '{self.out}' right "
                "now; wait for it to finish or choose another out_dir"
            ) from None
        except OSError as e:
            raise ConfigError(
                f"config key 'out_dir': cannot lock '{self.out}' ({e.strerror or e}); "
                "choose a folder on a local disk you can write to"
            ) from None
        self._lock = lock
        try:
            self._check_earlier()
        except BaseException:
            self.release()
            raise

    def _check_earlier(self) -> None:
        if self.resume:
            return
        what = earlier_run(self.out)
        if what is None:
            if _has_leftovers(self.out):  # a run that ended before any result
                self._clear()
                self.replaced = "the files of a run that ended before any result"
            return
        replace = self.overwrite is True or (self.overwrite == "demo" and _is_demo_run(self.out))
        if not replace:
            hint = (
                "continue it with --resume, replace it with --overwrite"
                if "interrupted" in what
                else "replace it with --overwrite"
            )
            raise ConfigError(
                f"config key 'out_dir': '{self.out}' holds {what}; {hint} (Python: "
                "Trainer(cfg, resume=True / overwrite=True)), or choose another out_dir"
            )
        self._clear()
        self.replaced = what

    def _clear(self) -> None:
        """Delete the run outputs (and only those) from the folder."""
        for name in RUN_OUTPUTS:
            p = self.out / name
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            elif p.exists() or p.is_symlink():
                p.unlink()
        for g in RUN_OUTPUT_GLOBS:
            for p in self.out.glob(g):
                p.unlink()

    def release(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None
