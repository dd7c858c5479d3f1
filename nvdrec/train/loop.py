"""The optimisation loop of one pass: optimisers and the learning-rate schedule, the
forward/backward step (DDP when distributed), the NaN check, parameter clamping,
callbacks, previews, checkpoints, timing and the coverage record.

:func:`run_pass` runs a :class:`PassSpec` for a :class:`~nvdrec.train.trainer.Trainer`,
which owns the data, the renderer and the outputs.
"""

from __future__ import annotations

import dataclasses
import math
import time

import numpy as np
import torch
from torch.profiler import record_function

from ..errors import NumericalError
from ..geometry import UniformAdam
from ..ops.loss import image_loss
from ..render.mlptexture import adam_groups
from ..structures.material import Material
from . import distributed
from .helpers import PASS_SEED_STRIDE, Optimizers, Progress, Step, slot_noise

__all__ = ["PassSpec", "losses", "lr_factor", "run_pass", "train_batch"]

PASS2_WARMUP = 100  # iterations of linear learning-rate warm-up at the start of pass 2


def lr_factor(it: int, warmup: int) -> float:
    """Learning-rate multiplier at iteration ``it``: a linear warm-up ``it / warmup``
    (pass 2 uses 100 iterations, pass 1 none), then ``10^(-0.0002 (it - warmup))``
    (pass 1: 0.03 -> 0.019 over 1000 iterations, as nvdiffrec's log shows: it prints the
    rate of the next iteration, 0.02877 at 90 and 0.00033 at pass-2 iteration 10)."""
    if warmup > 0 and it < warmup:
        return it / warmup
    return 10 ** (-0.0002 * (it - warmup))


@dataclasses.dataclass
class PassSpec:
    """What one pass trains.

    Attributes:
        pass_idx: 0 (pass 1) or 1 (pass 2): picks the learning rates, the warm-up and the
            random streams.
        name: "dmtet_pass1" or "mesh_pass" (progress, checkpoints, timing).
        geometry: DMTet, FlexiCubes (pass 1) or the mesh (pass 2,
            :class:`~nvdrec.geometry.MeshGeometry`): ``get_mesh()`` gives this iteration's
            mesh (differentiable in the geometry), ``reg_loss(it, total, weight)`` its own
            regulariser (SDF, Laplacian).
        material: the neural material or the textured ``Material``.
        light: the environment light.
        params_pos: geometry parameters; params_mat: material (and light) parameters.
        reg_weight: the weight given to ``geometry.reg_loss`` (``sdf_regularizer``,
            ``laplace_scale``).
        named: every parameter by name (checkpoints).
        extra: tensors a checkpoint carries besides the parameters (pass 2's mesh).
        uniform_pos: train ``params_pos`` with Large Steps' uniform Adam.
    """

    pass_idx: int
    name: str
    geometry: object
    material: object
    light: object
    params_pos: list
    params_mat: list
    reg_weight: float
    named: dict
    extra: dict | None = None
    uniform_pos: bool = False


def run_pass(tr, spec: PassSpec) -> None:
    """Train ``spec`` for the trainer ``tr`` (from its checkpoint when resuming); records
    losses, coverage and timing on ``tr``."""
    pass_idx, name, mesh_fn = spec.pass_idx, spec.name, spec.geometry.get_mesh
    material, lgt = spec.material, spec.light
    params_pos, params_mat = spec.params_pos, spec.params_mat
    named, extra, uniform_pos = spec.named, spec.extra, spec.uniform_pos
    cfg = tr.cfg
    lr_pos, lr_mat = cfg.learning_rates(pass_idx)
    groups = []
    pos_opt = None
    if params_pos and uniform_pos:  # Large Steps: its own optimiser for u
        pos_opt = UniformAdam([{"params": params_pos, "lr": lr_pos, "base": lr_pos}])
    elif params_pos:
        groups += [{**g, "lr": lr_pos, "base": lr_pos} for g in adam_groups(params_pos)]
    if params_mat:
        groups += [{**g, "lr": lr_mat, "base": lr_mat} for g in adam_groups(params_mat)]
    # fused: one kernel over all parameters, on the CPU too (16.8M hash-table
    # parameters: 15 ms a step against 86 ms for the default on 2 cores). Not under
    # DDP: there (2 CPU processes, gloo) the fused step drifted from the one-process
    # doubled-batch run (0.3% loss after 4 iterations; unexplained) where the default
    # step matches it, which tests/test_distributed.py checks.
    fused = not tr.dist.enabled
    opts = [torch.optim.Adam(groups, lr=lr_mat, eps=1e-8, fused=fused)] if groups else []
    opts += [pos_opt] if pos_opt is not None else []
    opt = Optimizers(opts) if opts else None
    prog = Progress(cfg.iter, name, cfg.progress if tr.dist.is_main else "none", cfg.log_interval)
    trainable = [p for g in opt.param_groups for p in g["params"]] if opt else []
    step = Step(trainable)
    if tr.dist.enabled and trainable:
        from torch.nn.parallel import DistributedDataParallel

        # broadcasts rank 0's parameters; backward then averages the gradients
        step = DistributedDataParallel(
            step,
            device_ids=[tr.device.index] if tr.device.type == "cuda" else None,
        )  # _Step holds no buffers: nothing to synchronise besides the gradients
    warmup = PASS2_WARMUP if pass_idx == 1 else 0
    if tr.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(tr.device)
    start = tr._restore(name, named, opt)
    if pass_idx == 1 and start == 0 and cfg.checkpoint_interval and tr.dist.is_main:
        # pass 1's result, kept before pass 2 changes it: a crash or a failed write
        # later costs pass 2's iterations only
        tr._save_ckpt(name, 0, named, opt, extra)
    # the end state, written only when the final export fails (--resume then exports)
    tr._save_end = lambda: tr._save_ckpt(name, cfg.iter, named, opt, extra)
    t_start = time.time()
    t_prev, iter_ms = t_start, []
    # after a callback's stop in pass 1, pass 2 runs no iteration (its start is the bake)
    end = start if tr.stopped_early else cfg.iter
    for it in range(start, end):
        with record_function("nvdrec:batch (a reference mesh's views are rendered)"):
            batch, bg, jitter = train_batch(tr, it, pass_idx)
        h, w = batch["resolution"]

        def forward():
            # the "nvdrec:" ranges name the parts of an iteration in a profile
            # (bench/profile_train.py); outside a profiler they cost about a microsecond
            with record_function("nvdrec:light filter"):
                if lgt.base.requires_grad or lgt.diffuse is None:
                    lgt.build_mips()
            with record_function("nvdrec:geometry"):
                mesh = mesh_fn()
            with record_function("nvdrec:render"):
                buffers = tr.report.render(mesh, batch, lgt, bg, material, jitter)
            with record_function("nvdrec:losses"):
                img_loss, reg = losses(cfg, buffers, batch["img"], bg, it)
                reg = reg + spec.geometry.reg_loss(it, cfg.iter, spec.reg_weight)
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
            with record_function("nvdrec:backward"):
                loss.backward()
        # with the losses (one device sync): the rendered and the reference coverage
        with record_function("nvdrec:loss read (waits for the GPU)"):
            img_v, reg_v, a_opt, a_ref = torch.stack(
                [
                    img_loss.detach(),
                    reg.detach(),
                    buffers["shaded"][..., 3].detach().sum().to(img_loss.dtype),
                    batch["img"][..., 3].sum().to(img_loss.device, img_loss.dtype),
                ]
            ).tolist()
        if it >= cfg.iter - max(cfg.iter // 10, 1):  # the pass's last 10%
            cov = tr.coverage.setdefault(name, [0.0, 0.0])
            cov[0], cov[1] = cov[0] + a_opt, cov[1] + a_ref
        finite = math.isfinite(img_v + reg_v)
        shown = {"img": img_v, "reg": reg_v}
        if tr.dist.enabled:  # mean losses; every rank stops if any has a NaN or a signal
            t = distributed.all_sum(
                [
                    shown["img"],
                    shown["reg"],
                    float(not finite),
                    float(tr._stop or tr._stop_asked),
                ],
                tr.device,
            )
            shown = {"img": t[0] / tr.dist.world, "reg": t[1] / tr.dist.world}
            finite, tr._stop = t[2] == 0, t[3] > 0
        if not finite:  # before the step: the parameters stay as they were
            raise NumericalError(
                f"{name}: the loss became {img_v + reg_v} at iteration {it}; the run stopped "
                "(outputs of earlier stages are kept). Try a lower learning_rate or a "
                "different seed"
            )
        with record_function("nvdrec:optimizer"), torch.no_grad():
            if opt is not None:
                opt.step()
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
        tr.losses.setdefault(name, []).append(round(shown["img"] + shown["reg"], 7))
        main = tr.dist.is_main
        if main and tr.callbacks:
            event = {"pass": name, "it": it, "total": cfg.iter, "ms": iter_ms[-1]}
            event.update(img_loss=shown["img"], reg_loss=shown["reg"])
            for cb in tr.callbacks:
                if cb(event) is True:
                    tr._stop_asked = True
        if tr._stop_asked and not tr.dist.enabled:  # the run ends with a result
            tr.stopped_early = {"pass": name, "iterations": it + 1}
        if main and cfg.save_interval and (it % cfg.save_interval == 0 or it == cfg.iter - 1):
            tr.report.save_preview(
                f"img_{name}_{it:06d}.png",
                buffers,
                batch["img"],
                bg,
                lambda: tr.report.display_extras(mesh_fn(), material, lgt, batch, h, w),
            )
        interval = cfg.checkpoint_interval
        saved = True
        if tr._stop or (interval and (it + 1) % interval == 0 and it + 1 < cfg.iter):
            if main:
                saved = tr._save_ckpt(name, it + 1, named, opt, extra)
        if tr.stopped_early:
            break
        if tr._stop:
            raise KeyboardInterrupt(
                f"checkpoint saved in {tr.out / 'checkpoints'}; continue with --resume"
                if saved
                else "the checkpoint could not be written (see the warning above); "
                "--resume continues from the previous one"
            )
    if tr.device.type == "cuda":
        torch.cuda.synchronize(tr.device)
    ms = (time.time() - t_start) * 1000 / max(len(iter_ms), 1)
    tr.timing[name] = {
        "ms_per_iter": ms,
        "ms_per_iter_median": float(np.median(iter_ms)) if iter_ms else None,
        "images_per_s": cfg.batch * tr.dist.world * 1000 / ms,
        "peak_memory_gb": torch.cuda.max_memory_allocated(tr.device) / 2**30
        if tr.device.type == "cuda"
        else None,
    }
    if tr.dist.enabled:  # parameters must be identical on every rank
        tr.timing[name]["max_param_diff_across_ranks"] = distributed.param_spread(trainable)


def train_batch(tr, it: int, pass_idx: int = 0):
    """This process's images of iteration ``it`` of a pass, their random backgrounds
    (per-pixel uniform noise [B, H, W, 3], as nvdiffrec uses, so the object's colour
    can never be explained by a background colour) and the kd-smoothness jitter
    noise. All drawn from per-image seeds (see nvdrec.train.distributed), so N
    processes draw what one process with the N-fold batch draws and a resumed run
    what the uninterrupted run drew; the two passes draw different views."""
    cfg = tr.cfg
    slots = distributed.global_slots(tr.dist, cfg.batch)
    key = it + pass_idx * PASS_SEED_STRIDE
    gens = distributed.slot_generators(cfg.seed, key, slots)
    if tr.dataset.photos:
        idx = distributed.file_indices(len(tr.dataset), tr.dist, cfg.batch, it, cfg.seed + pass_idx)
        batch = tr.dataset.batch_of(idx)
    else:
        batch = tr.dataset.train_batch(cfg.batch, gens)
    h, w = batch["resolution"]
    bg, jitter = slot_noise(gens, (h, w), cfg.spp, tr.device)
    return batch, bg, jitter


def losses(cfg, buffers, target, bg, it: int):
    """(image loss, regularisers) of one iteration.

    The colour term compares render and reference inside the reference's silhouette
    (both multiplied by the reference alpha, the reference composited over the same
    background): pixels outside the object give colour no gradient; the coverage is
    trained by the alpha MSE. kd smoothness (0.03) and occlusion (0.001) are ramped in
    over the first 500 iterations of each pass."""
    ref_a = target[..., 3:4]
    ref_rgb = target[..., :3] + bg * (1 - ref_a)
    opt = buffers["shaded"]
    img = image_loss(opt[..., :3] * ref_a, ref_rgb * ref_a, cfg.loss, backend=cfg.backend)
    alpha = torch.mean((opt[..., 3:4] - ref_a) ** 2)
    ramp = min(1.0, it / 500)
    reg = buffers["kd_grad"].mean() * 0.03 * ramp + buffers["occlusion"].mean() * 0.001 * ramp
    return img + alpha, reg
