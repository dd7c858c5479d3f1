"""The reconstruction: pass 1 (DMTet + neural material + light), bake, pass 2, export.

Loss weights and schedules follow nvdiffrec (Munkberg et al. 2022): image loss on
background-randomised targets plus alpha MSE; SDF regulariser (pass 1, decaying to 0.01
over the first quarter); kd smoothness 0.03 and occlusion 0.001 (both ramped in over 500
iterations); light white balance 0.005; Laplacian on vertex positions in pass 2
(``laplace_scale``, decaying linearly to 0). Learning rates decay as 10^(-0.0002 it).
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from pathlib import Path

import torch

from ..errors import MissingFileError, OutputError
from ..render import EnvironmentLight, RasterContext
from ..structures.mesh import Mesh
from . import distributed
from .config import Config
from .datasets import load_data
from .helpers import (
    unimplemented_settings,
)
from .loop import PassSpec, run_pass
from .passes import from_base_mesh, make_light, mesh_from_state, pass1, pass2
from .report import Reporter
from .runfolder import RunFolder

__all__ = ["Trainer"]


class Trainer:
    """Runs the whole reconstruction described by a :class:`~nvdrec.Config`.

    Args:
        cfg: the configuration.
        resume: continue from the newest checkpoint in ``out_dir``.
        overwrite: replace an earlier run's results in ``out_dir`` (deleted when the run
            starts) instead of refusing the folder; ``"demo"``: only an earlier demo run's.
            The folder is locked while the run lives: a second run into it is refused.
        callbacks: functions called after every optimisation step (on rank 0) with one
            dict: ``pass`` ("dmtet_pass1" or "mesh_pass"), ``it`` (0-based), ``total``,
            ``img_loss``, ``reg_loss``, ``ms`` (this iteration's wall time). A callback
            that returns True ends the run after that step with a result: the pass
            ends there (in pass 1 the surface is then extracted, unwrapped and baked,
            and pass 2 runs no iteration), the mesh is exported and validated as usual,
            and the result (and ``run.json``) says ``stopped_early``: pass and
            iterations done. Under ``torchrun`` it stops as Ctrl-C does (a checkpoint
            is written; ``fit`` raises KeyboardInterrupt).
    """

    def __init__(
        self, cfg: Config, resume: bool = False, callbacks=(), overwrite: bool | str = False
    ) -> None:
        self.cfg = cfg
        self.callbacks = list(callbacks)
        self._stop_asked = False  # a callback asked to stop
        self.stopped_early: dict | None = None  # {"pass", "iterations"} after such a stop
        self._resume: dict | None = None
        self._stop = False
        for i, item in enumerate(cfg.display or []):
            if item.get("relight") and not Path(item["relight"]).is_file():
                raise MissingFileError(
                    f"config key 'display[{i}].relight': '{item['relight']}' does not exist "
                    "(a lat-long .hdr map to show the surface under)"
                )
        self.dist = distributed.setup(cfg.device)
        self.device = distributed.pick_device(cfg.device, self.dist)
        self.out = Path(cfg.out_dir)
        # before anything large is allocated: a config that cannot fit stops at once
        from ..data.memory import available_memory
        from .budget import check_memory

        check_memory(cfg, available_memory(self.device), str(self.device))
        # before any data loads: a bad, busy or taken folder fails at once
        self.folder = RunFolder(self.out, resume=resume, overwrite=overwrite)
        if self.dist.is_main:
            self.folder.claim()
            if self.folder.replaced:
                self._note(f"replacing {self.folder.replaced} in {self.out}")
        self.ctx = RasterContext(cfg.backend)
        torch.manual_seed(cfg.seed)
        self.gen = torch.Generator().manual_seed(cfg.seed)
        self.stages: dict = {}  # seconds of the work outside the iterations
        load_data(self)
        self.report = Reporter(
            self.cfg, self.out, self.device, self.ctx, self.val_dataset, self.shift, self._warn
        )
        self.timing: dict = {}
        self.metrics_pass1: dict = {}  # validation after pass 1 (dmtet_validate/)
        self.cleanup: dict = {}  # what the clean-up after pass 1 removed
        self.losses: dict = {}  # total loss per iteration of each pass (mean over ranks)
        # per pass: [rendered, reference] alpha summed over its last iterations
        self.coverage: dict = {}
        if resume:
            self._load_resume()

    # ------------------------------------------------------------------ checkpoints
    def _load_resume(self) -> None:
        from .checkpoint import check_compatible, check_state, latest_checkpoint

        found = latest_checkpoint(self.out / "checkpoints")
        say = print if self.dist.is_main else (lambda *a, **k: None)
        if found is None:
            say(f"nvdrec: no checkpoint in {self.out / 'checkpoints'}; starting from the beginning")
            return
        state, path = found
        check_state(state, path, self.cfg.iter)
        check_compatible(state, self.cfg.to_dict(), path)
        self._resume = state
        self._resume_path = path
        say(
            f"nvdrec: resumed from pass {1 if state['pass'] == 'dmtet_pass1' else 2} "
            f"iteration {state['iteration']} ({path})",
            flush=True,
        )

    def _rng_state(self) -> dict:
        out = {"gen": self.gen.get_state(), "torch": torch.get_rng_state()}
        if self.device.type == "cuda":
            out["cuda"] = torch.cuda.get_rng_state(self.device)
        return out

    def _save_ckpt(self, name, it, named, opt, extra) -> bool:
        """Write a checkpoint (rank 0); False, with a warning, where the write failed."""
        from .checkpoint import save_checkpoint

        state = {
            "pass": name,
            "iteration": it,
            "params": {k: v.detach().cpu() for k, v in named.items()},
            "optimizer": opt.state_dict() if opt is not None else {},
            "rng": self._rng_state(),
            "config": json.dumps(self.cfg.to_dict(), sort_keys=True),
            "extra": {k: v.detach().cpu() for k, v in (extra or {}).items()},
        }
        try:
            save_checkpoint(self.out / "checkpoints", state)
        except OSError as e:  # disk full, folder gone: the run goes on, earlier ones stay
            self._warn(
                f"checkpoint {name} iteration {it} not written to {self.out / 'checkpoints'} "
                f"({e.strerror or e}); training goes on, the earlier checkpoints are kept"
            )
            return False
        return True

    def _restore(self, name, named, opt) -> int:
        """The iteration pass ``name`` resumes at: its checkpoint's parameters, optimiser
        and random state restored (0 when the checkpoint is of another pass)."""
        from .checkpoint import restore_state

        r = self._resume
        if r is None or r["pass"] != name:
            return 0
        restore_state(r, self._resume_path, named, opt, self.gen, self.device)
        self._resume = None
        return int(r["iteration"])

    # ------------------------------------------------------------------ helpers
    # keep pass 1's geometry, neural material and light as ``pass1_state`` (off: they
    # are freed before pass 2)
    keep_pass1_state = False

    def _warn(self, text: str) -> None:
        """A problem the run survives (rank 0, always shown, on stderr)."""
        if self.dist.is_main:
            print(f"nvdrec: warning: {text}", file=sys.stderr, flush=True)

    def _note(self, text: str) -> None:
        """One line about a stage (rank 0, unless ``progress`` is "none")."""
        if self.dist.is_main and self.cfg.progress != "none":
            print(f"nvdrec: {text}", flush=True)

    @contextlib.contextmanager
    def _stage(self, what: str, say: bool = True):
        """Time a stage outside the iterations: kept in ``stages`` (run.json) under
        ``what``, and (``say``) one line with its duration when done."""
        t0 = time.time()
        yield
        if self.device.type == "cuda":  # the GPU work of the stage, not only its launches
            torch.cuda.synchronize(self.device)
        seconds = time.time() - t0
        self.stages[what] = round(seconds, 3)
        if say:
            self._note(f"{what}: {seconds:.1f} s")

    def _run(self, spec: PassSpec) -> None:
        """One pass's loop (a method, so tools can wrap it: bench/profile_train.py)."""
        run_pass(self, spec)

    # ------------------------------------------------------------------ outputs
    def fit(self) -> dict:
        """Run both passes, export and validate. Returns paths and metrics."""
        try:
            if self.dist.is_main:
                self.folder.claim()  # taken in __init__; again for a second fit
                try:
                    self.cfg.save(self.out / "config.json")
                except OSError as e:
                    raise OutputError(
                        f"cannot write {self.out / 'config.json'} ({e.strerror or e}); free "
                        "space or choose another out_dir"
                    ) from e
                for line in unimplemented_settings(self.cfg):
                    print(f"nvdrec: note: {line}", flush=True)
            return self._fit_with_signals()
        finally:
            self.folder.release()

    def _fit_with_signals(self) -> dict:
        t0 = time.time()
        import signal

        def on_signal(signum, frame):
            self._stop = True  # finish the iteration, checkpoint, stop

        handlers = {}
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                handlers[sig] = signal.signal(sig, on_signal)
            except ValueError:  # not the main thread: no signal handling
                pass
        try:
            return self._fit(t0)
        finally:
            for sig, h in handlers.items():
                signal.signal(sig, h)

    def _mesh_from_resume(self) -> tuple[Mesh, EnvironmentLight]:
        from .checkpoint import check_pass2_state

        r = self._resume
        check_pass2_state(r, self._resume_path)
        return mesh_from_state(self, r["extra"], r["params"]), make_light(self)

    def _fit(self, t0: float) -> dict:
        cfg = self.cfg
        if self._resume is not None and self._resume["pass"] == "mesh_pass":
            mesh, lgt = self._mesh_from_resume()
        elif cfg.base_mesh:
            mesh, lgt = from_base_mesh(self)
        else:
            mesh, lgt = pass1(self)
        final = pass2(self, mesh, lgt)
        paths, metrics = {}, {}
        if self.dist.is_main:  # only rank 0 exports and validates
            try:
                with self._stage("export"):
                    paths = self.report.export(final, lgt, self.out / "mesh", glb=True)
            except OSError as e:
                kept = self._save_end()
                raise OutputError(
                    f"writing the result to {self.out / 'mesh'} failed ({e.strerror or e}); "
                    + (
                        "the trained state is checkpointed: free space (or fix the folder) "
                        "and run again with --resume, which only exports"
                        if kept
                        else "the checkpoint could not be written either; free space and "
                        "run again with --resume (it continues from the last checkpoint)"
                    )
                ) from e
            if cfg.validate:
                with self._stage("validation"):
                    metrics = self.report.validate(final, lgt)
        result = {
            "out_dir": str(self.out),
            "paths": paths,
            "metrics": metrics,
            "metrics_pass1": self.metrics_pass1,
            "timing": self.timing,
            "stages": self.stages,
            "seconds": time.time() - t0,
            "world_size": self.dist.world,
            "rank": self.dist.rank,
            "stopped_early": self.stopped_early,
        }
        if self.dist.is_main:
            self.report.write_run_json(result, self.losses, self.cleanup, self.coverage)
        if self.dist.enabled:
            torch.distributed.barrier()
        return result
