"""The reconstruction: pass 1 (DMTet + neural material + light), bake, pass 2, export.

Loss weights and schedules follow nvdiffrec (Munkberg et al. 2022): image loss on
background-randomised targets plus alpha MSE; SDF regulariser (pass 1, decaying to 0.01
over the first quarter); kd smoothness 0.03 and occlusion 0.001 (both ramped in over 500
iterations); light white balance 0.005; Laplacian on vertex positions in pass 2
(``laplace_scale``, decaying linearly to 0). Learning rates decay as 10^(-0.0002 it).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

from ..errors import ConfigError, DataError, MissingFileError, NumericalError, OutputError
from ..geometry import (
    DMTetGeometry,
    FlexiCubesGeometry,
    SmoothPositions,
    UniformAdam,
    clean_mesh,
    decimate,
    seen_faces,
)
from ..io.obj import load_mesh
from ..ops.hashgrid import HashGridConfig
from ..ops.loss import image_loss
from ..render import EnvironmentLight, MLPTexture3D, RasterContext
from ..render.mlptexture import adam_groups
from ..structures.material import Material, Texture2D
from ..structures.mesh import Mesh, auto_normals, compute_tangents
from . import distributed
from .bake import bake_textures, unwrap_uv
from .config import Config
from .helpers import (
    LIGHT_GRAD_SCALE,
    PASS_SEED_STRIDE,
    Optimizers,
    Progress,
    Step,
    laplacian_loss,
    lr_factor,
    pass_lrs,
    random_material,
    slot_noise,
    unimplemented_settings,
)
from .report import ReportMixin
from .runfolder import RunFolder

__all__ = ["Trainer"]


MAX_COORDINATE = 1e6  # beyond it a mesh's projections overflow float32 arithmetic


def _check_input_mesh(mesh: Mesh, key: str, path) -> None:
    """Refuse an input mesh nothing can be rendered from: no triangles, every triangle
    degenerate, coordinates far outside any sensible scene."""
    v = mesh.v_pos.double()
    if mesh.t_pos_idx.shape[0] == 0:
        raise DataError(f"config key '{key}': '{path}' has no triangles")
    peak = float(v.abs().max())
    if peak > MAX_COORDINATE:
        raise DataError(
            f"config key '{key}': '{path}' has coordinates up to {peak:.3g}; the object "
            f"must lie within {MAX_COORDINATE:.0e} of the origin (rescale the mesh)"
        )
    t = mesh.t_pos_idx.long()
    area = torch.linalg.cross(v[t[:, 1]] - v[t[:, 0]], v[t[:, 2]] - v[t[:, 0]], dim=-1).norm(dim=-1)
    extent = float((v.max(0).values - v.min(0).values).max())
    if not extent > 0 or float(area.sum()) <= 1e-12 * extent**2:
        raise DataError(
            f"config key '{key}': '{path}' has zero area (every triangle is degenerate)"
        )


class Trainer(ReportMixin):
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
        if self.dist.enabled and cfg.device != "cpu" and torch.cuda.is_available():
            self.device = torch.device("cuda", self.dist.local_rank)
        elif self.dist.enabled and cfg.device == "auto":
            self.device = torch.device("cpu")
        elif cfg.device == "auto":
            self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        else:
            if cfg.device.startswith("cuda") and not torch.cuda.is_available():
                raise ConfigError(
                    f"config key 'device': got {cfg.device!r} but no CUDA device is visible"
                )
            self.device = torch.device(cfg.device)
        self.out = Path(cfg.out_dir)
        # before anything large is allocated: a config that cannot fit stops at once
        from ..data.nerf import available_memory
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
        self.val_dataset = None
        ref = Path(str(cfg.ref_mesh)) if cfg.ref_mesh else None
        if ref is not None and ref.is_dir():  # photos can take a while: say so first
            h, w = cfg.train_res
            self._note(f"loading the images of {ref} at {w}x{h} ...")
            with self._stage("images loaded"):
                self.dataset = self._make_dataset()
            cache = getattr(self.dataset, "cache", None)
            if cache is not None and (cache.hits or cache.written or cache.failed):
                self._note(
                    cache.failed
                    or f"image cache {cache.root}: {cache.hits} reduced images read, "
                    f"{cache.written} written"
                )
        else:
            self.dataset = self._make_dataset()
        self.val_dataset = self.val_dataset or self.dataset
        self._check_images(ref)
        if hasattr(self.dataset, "at_resolution"):  # rendered references: at display_res
            self.val_dataset = self.dataset.at_resolution(self.cfg.display_res)
        self.shift = torch.zeros(3)
        if cfg.mesh_scale == "auto":
            self._auto_frame()
        self.timing: dict = {}
        self.metrics_pass1: dict = {}  # validation after pass 1 (dmtet_validate/)
        self.cleanup: dict = {}  # what the clean-up after pass 1 removed
        self.losses: dict = {}  # total loss per iteration of each pass (mean over ranks)
        # per pass: [rendered, reference] alpha summed over its last iterations
        self.coverage: dict = {}
        if resume:
            self._load_resume()

    def _check_images(self, ref: Path | None) -> None:
        """Refuse training images without any object pixel; say when files came from
        outside the dataset folder."""
        for ds in {id(d): d for d in (self.dataset, self.val_dataset)}.values():
            note = ds.outside_note(ref) if hasattr(ds, "outside_note") else None
            if note:
                self._warn(note)
        imgs = getattr(self.dataset, "images", None)
        if imgs is not None and not bool((imgs[..., 3] > 0).any()):
            raise DataError(
                f"every training image of {ref} is fully transparent (alpha or mask 0 "
                "everywhere): there is no object to reconstruct. Check the masks/alpha "
                "channel (nvdrec check DATASET)"
            )

    def _auto_frame(self) -> None:
        from ..data.framing import auto_frame
        from ..structures import camera as cam

        if not hasattr(self.dataset, "proj"):
            raise ConfigError(
                "config key 'mesh_scale': 'auto' needs an image dataset folder as ref_mesh"
            )
        scale, self.shift = auto_frame(self.dataset)
        if self.val_dataset is not self.dataset:
            self.val_dataset.mv = self.val_dataset.mv @ cam.translate(*self.shift.tolist()).to(
                self.device
            )
        self.cfg = self.cfg.replace(mesh_scale=scale, out_dir=self.cfg.out_dir)
        centre = [round(x, 4) for x in self.shift.tolist()]
        if self.dist.is_main:
            print(f"nvdrec: automatic framing: centre {centre}, mesh_scale {scale:.4f}", flush=True)

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
        from .checkpoint import check_params

        r = self._resume
        if r is None or r["pass"] != name:
            return 0
        check_params(r, self._resume_path, named)
        with torch.no_grad():
            for k, t in named.items():
                t.copy_(r["params"][k].to(t.device))
        if opt is not None and r["optimizer"]:
            try:
                opt.load_state_dict(r["optimizer"])
            except (ValueError, KeyError, TypeError, RuntimeError, IndexError) as e:
                raise DataError(
                    f"checkpoint {self._resume_path} is damaged: its optimizer state does not "
                    f"fit the run ({e}). Delete it to resume from the one before, or start a "
                    "new out_dir"
                ) from None
        try:
            self.gen.set_state(r["rng"]["gen"])
            torch.set_rng_state(r["rng"]["torch"])
            if "cuda" in r["rng"] and self.device.type == "cuda":
                torch.cuda.set_rng_state(r["rng"]["cuda"], self.device)
        except (KeyError, TypeError, RuntimeError) as e:
            raise DataError(
                f"checkpoint {self._resume_path} is damaged: its random-number state cannot be "
                f"restored ({e}). Delete it to resume from the one before, or start a new out_dir"
            ) from None
        self._resume = None
        return int(r["iteration"])

    # ------------------------------------------------------------------ data
    def _make_dataset(self):
        from ..data.synthetic import SyntheticDataset

        cfg = self.cfg
        if cfg.ref_mesh is None:
            from ..data.demo import demo_light, demo_material, demo_mesh
            from .bake import bake_textures as bake

            mesh = unwrap_uv(demo_mesh(cfg.demo_grid))
            mat, _ = bake(mesh, demo_material, (512, 512), backend="torch")
            mat.name = "demo"
            mesh.material = mat
            light = demo_light(64)
        else:
            path = Path(cfg.ref_mesh)
            if not path.exists():
                raise MissingFileError(f"config key 'ref_mesh': '{path}' does not exist")
            if path.is_dir():
                from ..data.cache import image_cache_from_setting
                from ..data.llff import LLFFDataset, is_llff_folder
                from ..data.nerf import NeRFDataset, is_nerf_folder

                kw = {
                    "resolution": cfg.train_res,
                    "near_far": tuple(cfg.cam_near_far),
                    "device": self.device,
                    "cache": image_cache_from_setting(cfg.image_cache),
                }
                if is_llff_folder(path):
                    ds = LLFFDataset(path, **kw)
                    self.val_dataset = ds
                    return ds
                from ..data.colmap import ColmapDataset, is_colmap_folder

                if is_colmap_folder(path) and not is_nerf_folder(path):
                    ds = ColmapDataset(path, **kw)
                    self.val_dataset = ds
                    return ds
                if not is_nerf_folder(path):
                    raise ConfigError(
                        f"config key 'ref_mesh': folder '{path}' has no transforms_train.json "
                        "(NeRF-synthetic), poses_bounds.npy (LLFF) or sparse/0 (COLMAP)"
                    )
                self.val_dataset = NeRFDataset(path, "test", **kw)
                return NeRFDataset(path, "train", **kw)
            mesh = load_mesh(path, mtl_override=cfg.mtl_override)
            _check_input_mesh(mesh, "ref_mesh", path)
            if cfg.envmap is None:
                raise ConfigError(
                    "config key 'envmap': a reference mesh needs an HDR environment map "
                    "(lat-long .hdr) to render it"
                )
            if not Path(cfg.envmap).exists():
                raise MissingFileError(f"config key 'envmap': '{cfg.envmap}' does not exist")
            light = EnvironmentLight.load(
                cfg.envmap, scale=cfg.env_scale, res=min(cfg.light_res, 512), trainable=False
            )
        return SyntheticDataset(
            mesh,
            light,
            cfg.train_res,
            spp=cfg.spp,
            layers=cfg.layers,
            near_far=tuple(cfg.cam_near_far),
            device=self.device,
            backend=cfg.backend,
        )

    # ------------------------------------------------------------------ helpers
    def _train_batch(self, it: int, pass_idx: int = 0):
        """This process's images of iteration ``it`` of a pass, their random backgrounds
        (per-pixel uniform noise [B, H, W, 3], as nvdiffrec uses, so the object's colour
        can never be explained by a background colour) and the kd-smoothness jitter
        noise. All drawn from per-image seeds (see nvdrec.train.distributed), so N
        processes draw what one process with the N-fold batch draws and a resumed run
        what the uninterrupted run drew; the two passes draw different views."""
        cfg = self.cfg
        slots = distributed.global_slots(self.dist, cfg.batch)
        key = it + pass_idx * PASS_SEED_STRIDE
        gens = distributed.slot_generators(cfg.seed, key, slots)
        if hasattr(self.dataset, "batch_of"):
            idx = distributed.file_indices(
                len(self.dataset), self.dist, cfg.batch, it, cfg.seed + pass_idx
            )
            batch = self.dataset.batch_of(idx)
        else:
            batch = self.dataset.train_batch(cfg.batch, gens)
        h, w = batch["resolution"]
        bg, jitter = slot_noise(gens, (h, w), cfg.spp, self.device)
        return batch, bg, jitter

    # keep pass 1's geometry, neural material and light as ``pass1_state`` (off: they
    # are freed before pass 2)
    keep_pass1_state = False

    VISIBILITY_VIEWS = 64  # random training views for a reference mesh's visibility

    def _training_mvps(self) -> torch.Tensor:
        """The cameras [N, 4, 4] (mvp) the object was trained from: every image of a file
        dataset; for a reference mesh VISIBILITY_VIEWS draws of its random views."""
        ds = self.dataset
        if hasattr(ds, "mv") and hasattr(ds, "proj"):
            return ds.proj @ ds.mv
        from ..structures import camera as cam

        gen = torch.Generator().manual_seed(self.cfg.seed)
        views = cam.random_views(
            self.VISIBILITY_VIEWS,
            gen,
            radius=getattr(ds, "radius", 3.0),
            resolution=self.cfg.train_res,
            near_far=tuple(self.cfg.cam_near_far),
        )
        return views.mvp

    def _warn(self, text: str) -> None:
        """A problem the run survives (rank 0, always shown, on stderr)."""
        if self.dist.is_main:
            print(f"nvdrec: warning: {text}", file=sys.stderr, flush=True)

    def _note(self, text: str) -> None:
        """One line about a stage (rank 0, unless ``progress`` is "none")."""
        if self.dist.is_main and self.cfg.progress != "none":
            print(f"nvdrec: {text}", flush=True)

    @contextlib.contextmanager
    def _stage(self, what: str):
        """Report a stage that may take a while: one line with its duration when done."""
        t0 = time.time()
        yield
        if self.device.type == "cuda":  # the GPU work of the stage, not only its launches
            torch.cuda.synchronize(self.device)
        self._note(f"{what}: {time.time() - t0:.1f} s")

    def _orient_light(self, lgt: EnvironmentLight, batch: dict, count: int | None = None) -> None:
        """``camera_space_light``: the light turns with the camera (a light fixed to the
        capture rig), so its lookups are rotated by the views' world-to-camera matrices
        (the first ``count`` views); otherwise it stays in world space."""
        if self.cfg.camera_space_light:
            lgt.xfm(batch["mv"][:count].to(self.device))
        else:
            lgt.xfm(None)

    def _losses(self, buffers, target, bg, it, total, pass_idx):
        """(image loss, regularisers) of one iteration.

        The colour term compares render and reference inside the reference's silhouette
        (both multiplied by the reference alpha, the reference composited over the same
        background): pixels outside the object give colour no gradient; the coverage is
        trained by the alpha MSE. kd smoothness (0.03) and occlusion (0.001) are ramped in
        over the first 500 iterations of each pass."""
        cfg = self.cfg
        ref_a = target[..., 3:4]
        ref_rgb = target[..., :3] + bg * (1 - ref_a)
        opt = buffers["shaded"]
        img = image_loss(opt[..., :3] * ref_a, ref_rgb * ref_a, cfg.loss, backend=cfg.backend)
        alpha = torch.mean((opt[..., 3:4] - ref_a) ** 2)
        ramp = min(1.0, it / 500)
        reg = buffers["kd_grad"].mean() * 0.03 * ramp + buffers["occlusion"].mean() * 0.001 * ramp
        return img + alpha, reg

    def _light(self) -> EnvironmentLight:
        cfg = self.cfg
        if cfg.learn_light:
            # nvdiffrec's start: a constant grey light; its gradient is scaled before Adam
            # (see LIGHT_GRAD_SCALE)
            base = torch.full((6, cfg.light_res, cfg.light_res, 3), 0.5)
            lgt = EnvironmentLight(base, backend=cfg.backend).to(self.device)
            lgt.base.register_hook(lambda g: g * LIGHT_GRAD_SCALE)
            return lgt
        if hasattr(self.dataset, "light"):
            base = self.dataset.light.base.detach().clone()
        elif cfg.envmap:
            base = EnvironmentLight.load(
                cfg.envmap, scale=cfg.env_scale, res=cfg.light_res
            ).base.detach()
        else:
            raise ConfigError("config key 'learn_light': false needs 'envmap' (the known lighting)")
        return EnvironmentLight(base, trainable=False, backend=cfg.backend).to(self.device)

    def _material(self) -> MLPTexture3D:
        cfg = self.cfg
        s = float(cfg.mesh_scale) / 2
        lo = cfg.kd_min[:3] + cfg.ks_min + cfg.nrm_min
        hi = cfg.kd_max[:3] + cfg.ks_max + cfg.nrm_max
        return MLPTexture3D(
            ([-s] * 3, [s] * 3),
            channels=9,
            min_max=(lo, hi),
            config=HashGridConfig(log2_table_size=cfg.hash_log2_size),
            seed=cfg.seed,
            backend="auto",  # the hash grid picks its kernels itself (cfg.backend: raster ops)
        ).to(self.device)

    def _run(
        self,
        pass_idx,
        name,
        mesh_fn,
        material,
        lgt,
        params_pos,
        params_mat,
        extra_reg,
        named,
        extra=None,
        uniform_pos=False,
    ):
        cfg = self.cfg
        lr_pos, lr_mat = pass_lrs(cfg, pass_idx)
        groups = []
        pos_opt = None
        if params_pos and uniform_pos:  # Large Steps: its own optimiser for u
            pos_opt = UniformAdam([{"params": params_pos, "lr": lr_pos, "base": lr_pos}])
        elif params_pos:
            groups += adam_groups(params_pos, lr_pos, base=lr_pos)
        if params_mat:
            groups += adam_groups(params_mat, lr_mat, base=lr_mat)
        # fused: one kernel over all parameters, on the CPU too (16.8M hash-table
        # parameters: 15 ms a step against 86 ms for the default on 2 cores). Not under
        # DDP: there (2 CPU processes, gloo) the fused step drifted from the one-process
        # doubled-batch run (0.3% loss after 4 iterations; unexplained) where the default
        # step matches it, which tests/test_distributed.py checks.
        fused = not self.dist.enabled
        opts = [torch.optim.Adam(groups, lr=lr_mat, eps=1e-8, fused=fused)] if groups else []
        opts += [pos_opt] if pos_opt is not None else []
        opt = Optimizers(opts) if opts else None
        prog = Progress(
            cfg.iter, name, cfg.progress if self.dist.is_main else "none", cfg.log_interval
        )
        trainable = [p for g in opt.param_groups for p in g["params"]] if opt else []
        step = Step(trainable)
        if self.dist.enabled and trainable:
            from torch.nn.parallel import DistributedDataParallel

            # broadcasts rank 0's parameters; backward then averages the gradients
            step = DistributedDataParallel(
                step,
                device_ids=[self.device.index] if self.device.type == "cuda" else None,
            )  # _Step holds no buffers: nothing to synchronise besides the gradients
        warmup = 100 if pass_idx == 1 else 0
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        start = self._restore(name, named, opt)
        if pass_idx == 1 and start == 0 and cfg.checkpoint_interval and self.dist.is_main:
            # pass 1's result, kept before pass 2 changes it: a crash or a failed write
            # later costs pass 2's iterations only
            self._save_ckpt(name, 0, named, opt, extra)
        # the end state, written only when the final export fails (--resume then exports)
        self._save_end = lambda: self._save_ckpt(name, cfg.iter, named, opt, extra)
        t_start = time.time()
        t_prev, iter_ms = t_start, []
        # after a callback's stop in pass 1, pass 2 runs no iteration (its start is the bake)
        end = start if self.stopped_early else cfg.iter
        for it in range(start, end):
            batch, bg, jitter = self._train_batch(it, pass_idx)
            h, w = batch["resolution"]

            def forward():
                if lgt.base.requires_grad or lgt.diffuse is None:
                    lgt.build_mips()
                buffers = self._render(mesh_fn(), batch, lgt, bg, material, jitter)
                img_loss, reg = self._losses(buffers, batch["img"], bg, it, cfg.iter, pass_idx)
                reg = reg + extra_reg(it)
                if lgt.base.requires_grad:
                    reg = reg + lgt.regularizer() * 0.005
                return img_loss, reg, buffers

            img_loss, reg, buffers = step(forward)
            loss = img_loss + reg
            if opt is not None:
                for g in opt.param_groups:
                    g["lr"] = g["base"] * lr_factor(it, warmup)
                opt.zero_grad(set_to_none=True)
                # queue the backward before reading the losses: the one host-device sync of
                # the iteration then waits for the GPU to finish the backward, while the CPU
                # has been issuing backward kernels during the forward's GPU time
                loss.backward()
            # with the losses (one device sync): the rendered and the reference coverage
            img_v, reg_v, a_opt, a_ref = torch.stack(
                [
                    img_loss.detach(),
                    reg.detach(),
                    buffers["shaded"][..., 3].detach().sum().to(img_loss.dtype),
                    batch["img"][..., 3].sum().to(img_loss.device, img_loss.dtype),
                ]
            ).tolist()
            if it >= cfg.iter - max(cfg.iter // 10, 1):  # the pass's last 10%
                cov = self.coverage.setdefault(name, [0.0, 0.0])
                cov[0], cov[1] = cov[0] + a_opt, cov[1] + a_ref
            finite = math.isfinite(img_v + reg_v)
            shown = {"img": img_v, "reg": reg_v}
            if self.dist.enabled:  # mean losses; every rank stops if any has a NaN or a signal
                t = distributed.all_sum(
                    [
                        shown["img"],
                        shown["reg"],
                        float(not finite),
                        float(self._stop or self._stop_asked),
                    ],
                    self.device,
                )
                shown = {"img": t[0] / self.dist.world, "reg": t[1] / self.dist.world}
                finite, self._stop = t[2] == 0, t[3] > 0
            if not finite:  # before the step: the parameters stay as they were
                raise NumericalError(
                    f"{name}: the loss became {img_v + reg_v} at iteration {it}; the run stopped "
                    "(outputs of earlier stages are kept). Try a lower learning_rate or a "
                    "different seed"
                )
            if opt is not None:
                opt.step()
            with torch.no_grad():
                if lgt.base.requires_grad:
                    lgt.clamp_(0.0)
                if isinstance(material, Material):
                    for t in (material.kd, material.ks, material.normal):
                        if t is not None:
                            t.clamp_()
            prog.update(it, shown)
            t_now = time.time()  # the loss read above synchronised with the device
            iter_ms.append((t_now - t_prev) * 1000)
            t_prev = t_now
            self.losses.setdefault(name, []).append(round(shown["img"] + shown["reg"], 7))
            main = self.dist.is_main
            if main and self.callbacks:
                event = {"pass": name, "it": it, "total": cfg.iter, "ms": iter_ms[-1]}
                event.update(img_loss=shown["img"], reg_loss=shown["reg"])
                for cb in self.callbacks:
                    if cb(event) is True:
                        self._stop_asked = True
            if self._stop_asked and not self.dist.enabled:  # the run ends with a result
                self.stopped_early = {"pass": name, "iterations": it + 1}
            if main and cfg.save_interval and (it % cfg.save_interval == 0 or it == cfg.iter - 1):
                self._save_preview(
                    f"img_{name}_{it:06d}.png",
                    buffers,
                    batch["img"],
                    bg,
                    lambda: self._display_extras(mesh_fn(), material, lgt, batch, h, w),
                )
            interval = cfg.checkpoint_interval
            saved = True
            if self._stop or (interval and (it + 1) % interval == 0 and it + 1 < cfg.iter):
                if main:
                    saved = self._save_ckpt(name, it + 1, named, opt, extra)
            if self.stopped_early:
                break
            if self._stop:
                raise KeyboardInterrupt(
                    f"checkpoint saved in {self.out / 'checkpoints'}; continue with --resume"
                    if saved
                    else "the checkpoint could not be written (see the warning above); "
                    "--resume continues from the previous one"
                )
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        ms = (time.time() - t_start) * 1000 / max(len(iter_ms), 1)
        self.timing[name] = {
            "ms_per_iter": ms,
            "ms_per_iter_median": float(np.median(iter_ms)) if iter_ms else None,
            "images_per_s": cfg.batch * self.dist.world * 1000 / ms,
            "peak_memory_gb": torch.cuda.max_memory_allocated(self.device) / 2**30
            if self.device.type == "cuda"
            else None,
        }
        if self.dist.enabled:  # parameters must be identical on every rank
            self.timing[name]["max_param_diff_across_ranks"] = distributed.param_spread(trainable)

    def _pass1(self):
        cfg = self.cfg
        iso = FlexiCubesGeometry if cfg.isosurface == "flexicubes" else DMTetGeometry
        geo = iso(cfg.dmtet_grid, float(cfg.mesh_scale), seed=cfg.seed).to(self.device)
        mat = self._material()
        lgt = self._light()
        light_params = [lgt.base] if (cfg.learn_light and not cfg.lock_light) else []
        if not light_params:
            lgt.base.requires_grad_(False)
        named = {f"geo.{k}": v for k, v in geo.named_parameters()}
        named.update({f"mat.{k}": v for k, v in mat.named_parameters()})
        named["light.base"] = lgt.base
        self._run(
            0,
            "dmtet_pass1",
            geo.get_mesh,
            mat,
            lgt,
            list(geo.parameters()),
            list(mat.parameters()) + light_params,
            lambda it: geo.reg_loss(it, cfg.iter, cfg.sdf_regularizer),
            named,
        )
        self._check_coverage("dmtet_pass1")
        payload = None
        if self.dist.is_main:  # extract, unwrap and bake once; the other ranks receive it
            with torch.no_grad():  # enclosed empty space filled: no surfaces inside
                mesh = geo.final_mesh(fill=cfg.fill_cavities).detach()
            if self.keep_pass1_state:  # for tools that compare extractions (bench/)
                self.pass1_state = (geo, mat, lgt)
            filled = geo.filled_vertices
            if cfg.validate:  # the pass-1 result itself: isosurface + neural material
                with self._stage("validation after pass 1"):
                    self.metrics_pass1 = self._validate(mesh, lgt, mat, "dmtet_validate")
            keep = None
            if cfg.cleanup_unseen:
                with self._stage("visibility from the training views"):
                    keep = seen_faces(
                        mesh, self._training_mvps(), cfg.train_res, backend=cfg.backend
                    )
            confirm = None
            if hasattr(self.dataset, "proj") and hasattr(self.dataset, "images"):
                from ..data.framing import in_visual_hull

                # small parts inside every mask are real (a strap, a knob), not floaters
                def confirm(p):
                    return in_visual_hull(self.dataset, p)

            mesh, report = clean_mesh(
                mesh, min_component=cfg.cleanup_min_component, keep_faces=keep, confirm=confirm
            )
            self.cleanup = dataclasses.asdict(report)
            self.cleanup["filled_cavity_vertices"] = filled
            if filled:
                self._note(f"enclosed empty space filled: {filled} grid vertices")
            self._note(f"mesh clean-up: {report.summary()}")
            if 0 < cfg.decimate_triangles < mesh.num_triangles:
                n_in = mesh.num_triangles
                t0 = time.time()
                mesh, _ = decimate(mesh, cfg.decimate_triangles)
                self.cleanup["decimated_faces"] = mesh.num_triangles
                self._note(
                    f"decimate: {n_in} -> {mesh.num_triangles} triangles in "
                    f"{time.time() - t0:.1f} s"
                )
            mesh = unwrap_uv(mesh, cfg.texture_res[0], cfg.unwrap_timeout, self._note)

            def sample(p):
                return MLPTexture3D.split(mat.sample(p))

            with self._stage(f"bake {cfg.texture_res[0]}x{cfg.texture_res[1]} textures"):
                baked, _ = bake_textures(mesh, sample, cfg.texture_res, backend=cfg.backend)
            bounds = (
                (cfg.kd_min[:3], cfg.kd_max[:3]),
                (cfg.ks_min, cfg.ks_max),
                (cfg.nrm_min, cfg.nrm_max),
            )
            kd, ks, nrm = (
                Texture2D(t.image().detach(), b).to(self.device)
                for t, b in zip((baked.kd, baked.ks, baked.normal), bounds)
            )
            mesh.material = Material("pbr_material", kd=kd, ks=ks, normal=nrm)
            try:
                self._export(mesh, lgt, self.out / "dmtet_mesh", glb=False)
            except OSError as e:  # pass 1 lives on in memory: pass 2 starts from it
                self._warn(
                    f"the pass-1 mesh was not written to {self.out / 'dmtet_mesh'} "
                    f"({e.strerror or e}); pass 2 goes on from it"
                )
            payload = {
                "extra": {
                    "v_init": mesh.v_pos.cpu(),
                    "t_pos_idx": mesh.t_pos_idx.cpu(),
                    "v_tex": mesh.v_tex.cpu(),
                    "t_tex_idx": mesh.t_tex_idx.cpu(),
                },
                "params": {
                    f"tex.{k}": t.data.detach().cpu()
                    for k, t in zip(("kd", "ks", "normal"), (kd, ks, nrm))
                },
            }
        if self.dist.enabled:
            payload = distributed.broadcast_object(payload, self.device)
        # every rank (also a single process) starts pass 2 from the same reconstruction,
        # which is also what a resumed pass 2 starts from
        return self._mesh_from_state(payload["extra"], payload["params"]), lgt

    def _check_coverage(self, name: str) -> None:
        """Warn when the surface covers almost none of the object's pixels (the object
        does not fit the grid box, or the masks are wrong): the run goes on, but its
        result will not be the object."""
        opt, ref = self.coverage.get(name, (0.0, 0.0))
        if ref > 0 and opt < 0.05 * ref:
            self._warn(
                f"{name}: the surface covers {100 * opt / ref:.1f}% of the object's pixels "
                f"in the training views (over the pass's last iterations). The object does "
                f"not fit the grid box (mesh_scale {self.cfg.mesh_scale}) or the masks are "
                'wrong: try mesh_scale "auto" or a larger mesh_scale, and check the masks '
                "(nvdrec check DATASET)"
            )

    def _pass2(self, mesh: Mesh, lgt: EnvironmentLight):
        cfg = self.cfg
        v_init = mesh.v_pos.detach().clone()
        # the positions are x = (I + lambda L)^-1 u, u trained (Large Steps; lambda 0: x = u)
        pos = SmoothPositions(v_init, mesh.t_pos_idx, cfg.pos_smoothing).to(self.device)
        pos.u.requires_grad_(not cfg.lock_pos)
        mat = mesh.material
        if cfg.custom_mip:  # trainable mip levels (a resumed run restores them by name)
            for t in (mat.kd, mat.ks, mat.normal):
                if t is not None and t.mips is None and not t.is_constant:
                    t.enable_custom_mips()
        edges, deg = pos.edges, pos.deg  # the mesh's adjacency, also the Laplacian's

        current = {}  # the positions of this iteration's forward, for the regulariser

        def mesh_fn():
            if cfg.lock_pos:
                return mesh
            current["v"] = pos()
            return compute_tangents(auto_normals(mesh.with_(v_pos=current["v"])))

        def lap(it):
            if cfg.lock_pos:
                return torch.zeros((), device=self.device)
            v_pos = current["v"]
            d = v_pos - v_init if cfg.laplace == "relative" else v_pos
            mean = (
                torch.zeros_like(d).index_add_(0, edges[:, 0], d.index_select(0, edges[:, 1]))
                / deg[:, None]
            )
            lp = d - mean
            return laplacian_loss(lp) * cfg.laplace_scale * (1 - it / max(cfg.iter, 1))

        learn_light = cfg.learn_light and not cfg.lock_light
        lgt.base.requires_grad_(learn_light)
        params_pos = [pos.u] if not cfg.lock_pos else []
        params_mat = list(mat.parameters()) + ([lgt.base] if learn_light else [])
        named = {"v_u": pos.u, "v_u.x_prev": pos.x_prev}
        named["light.base"] = lgt.base
        for k, t in (("kd", mat.kd), ("ks", mat.ks), ("normal", mat.normal)):
            if t is not None:
                named[f"tex.{k}"] = t.data
                for i, lv in enumerate(t.mip_levels() or [], start=1):
                    named[f"tex.{k}.mip{i}"] = lv
        extra = {
            "v_init": v_init,
            "t_pos_idx": mesh.t_pos_idx,
            "v_tex": mesh.v_tex,
            "t_tex_idx": mesh.t_tex_idx,
        }
        self._run(  # Large Steps trains u with its uniform Adam
            1,
            "mesh_pass",
            mesh_fn,
            mat,
            lgt,
            params_pos,
            params_mat,
            lap,
            named,
            extra,
            uniform_pos=cfg.pos_smoothing > 0,
        )
        with torch.no_grad():
            final = mesh_fn().detach()
        final.material = mat
        return final

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
        r = self._resume
        ex, path = r["extra"], self._resume_path
        shapes = {"v_init": 3, "t_pos_idx": 3, "v_tex": 2, "t_tex_idx": 3}
        for k, n in shapes.items():
            t = ex.get(k)
            if t is None or t.ndim != 2 or t.shape[1] != n or t.shape[0] == 0:
                raise DataError(
                    f"checkpoint {path} is damaged: the pass-2 mesh entry '{k}' is missing or "
                    "malformed. Delete it to resume from the one before, or start a new out_dir"
                )
        for k in ("tex.kd", "tex.ks", "tex.normal"):  # those the material has (kd: all)
            t = r["params"].get(k)
            if (t is None and k == "tex.kd") or (
                t is not None and (t.ndim != 4 or t.shape[0] != 1 or min(t.shape) == 0)
            ):
                raise DataError(
                    f"checkpoint {path} is damaged: the texture '{k}' is missing or malformed. "
                    "Delete it to resume from the one before, or start a new out_dir"
                )
        for idx, v in (("t_pos_idx", "v_init"), ("t_tex_idx", "v_tex")):
            if ex[idx].is_floating_point() or not (
                0 <= int(ex[idx].min()) and int(ex[idx].max()) < ex[v].shape[0]
            ):
                raise DataError(
                    f"checkpoint {path} is damaged: '{idx}' indexes outside '{v}'. Delete it "
                    "to resume from the one before, or start a new out_dir"
                )
        return self._mesh_from_state(r["extra"], r["params"]), self._light()

    def _mesh_from_state(self, ex: dict, params: dict) -> Mesh:
        """The pass-2 starting mesh from its tensors (bake broadcast or checkpoint)."""
        cfg = self.cfg
        dev = self.device
        mesh = Mesh(
            v_pos=ex["v_init"].to(dev),
            t_pos_idx=ex["t_pos_idx"].to(dev),
            v_tex=ex["v_tex"].to(dev),
            t_tex_idx=ex["t_tex_idx"].to(dev),
        )
        mesh = compute_tangents(auto_normals(mesh))
        bounds = {
            "kd": (cfg.kd_min[:3], cfg.kd_max[:3]),
            "ks": (cfg.ks_min, cfg.ks_max),
            "normal": (cfg.nrm_min, cfg.nrm_max),
        }
        tex = {
            k: Texture2D(params[f"tex.{k}"][0], bounds[k]).to(dev)
            for k in bounds
            if f"tex.{k}" in params
        }
        mesh.material = Material(
            "pbr_material", kd=tex.get("kd"), ks=tex.get("ks"), normal=tex.get("normal")
        )
        return mesh

    def _fit(self, t0: float) -> dict:
        cfg = self.cfg
        if self._resume is not None and self._resume["pass"] == "mesh_pass":
            mesh, lgt = self._mesh_from_resume()
        elif cfg.base_mesh:
            if not os.path.exists(cfg.base_mesh):
                raise MissingFileError(f"config key 'base_mesh': '{cfg.base_mesh}' does not exist")
            mesh = load_mesh(cfg.base_mesh)
            _check_input_mesh(mesh, "base_mesh", cfg.base_mesh)
            if mesh.v_tex is None:
                mesh = unwrap_uv(mesh, cfg.texture_res[0], cfg.unwrap_timeout, self._note)
            mesh = compute_tangents(auto_normals(mesh) if mesh.v_nrm is None else mesh).to(
                self.device
            )
            mesh.material = (
                random_material(cfg, self.device, self.gen)
                if cfg.random_textures or mesh.material is None
                else mesh.material
            )
            lgt = self._light()
        else:
            mesh, lgt = self._pass1()
        final = self._pass2(mesh, lgt)
        paths, metrics = {}, {}
        if self.dist.is_main:  # only rank 0 exports and validates
            try:
                with self._stage("export"):
                    paths = self._export(final, lgt, self.out / "mesh", glb=True)
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
                    metrics = self._validate(final, lgt)
        result = {
            "out_dir": str(self.out),
            "paths": paths,
            "metrics": metrics,
            "metrics_pass1": self.metrics_pass1,
            "timing": self.timing,
            "seconds": time.time() - t0,
            "world_size": self.dist.world,
            "rank": self.dist.rank,
            "stopped_early": self.stopped_early,
        }
        if self.dist.is_main:
            from ..io.files import atomic_write_text

            run = {k: result[k] for k in ("timing", "seconds", "world_size")}
            run["batch_per_process"] = cfg.batch
            if self.stopped_early:
                run["stopped_early"] = self.stopped_early
            run["losses"] = self.losses
            run["cleanup"] = self.cleanup
            # rendered / reference coverage over each pass's last iterations
            run["coverage"] = {k: (o / r if r > 0 else None) for k, (o, r) in self.coverage.items()}
            text = json.dumps(run, indent=2) + "\n"
            self._try_write(
                f"{self.out / 'run.json'}", atomic_write_text, self.out / "run.json", text
            )
        if self.dist.enabled:
            torch.distributed.barrier()
        return result
