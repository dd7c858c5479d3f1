"""Pieces of the trainer that need no trainer state: learning-rate schedule, progress
line, the pass-2 Laplacian's adjacency, the random initial material, the DDP step module
and the report of nvdiffrec keys nvdrec does not act on."""

from __future__ import annotations

import collections
import sys
import time
from pathlib import Path

import torch

from ..geometry.smooth_param import mesh_edges  # noqa: F401  (re-exported)
from ..structures.material import Material, Texture2D
from .config import Config

__all__ = [
    "LIGHT_GRAD_SCALE",
    "Optimizers",
    "PASS_SEED_STRIDE",
    "Progress",
    "Step",
    "mesh_edges",
    "slot_noise",
    "random_material",
    "unimplemented_settings",
]


# The learned light's gradient is multiplied by this before Adam (as nvdiffrec does): a
# texel of a 512^2 cube map gets gradients of ~1e-9..1e-8, the size of Adam's epsilon
# (1e-8), which would otherwise damp its steps; the factor lifts them clear of it.
LIGHT_GRAD_SCALE = 64.0

# Random draws of pass 2 are keyed by iteration + this, so the two passes see different
# views and backgrounds.
PASS_SEED_STRIDE = 1 << 40


def slot_noise(gens: list, size, spp: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Random images of one iteration, one per image slot generator: backgrounds
    [B, H, W, 3] of per-pixel uniform noise and the kd-smoothness jitter [B, H*spp,
    W*spp, 3] (standard normal, see :func:`~nvdrec.render.render_mesh`). Each generator
    gives the seed of a generator on ``device``, so nothing is copied from the host and
    the same seeds give the same images on every run and every rank layout."""
    device = torch.device(device)
    h, w = int(size[0]), int(size[1])
    bgs, jits = [], []
    for g in gens:
        seed = int(torch.randint(0, 2**62, (1,), generator=g))
        dg = torch.Generator(device=device).manual_seed(seed)
        bgs.append(torch.rand(1, h, w, 3, generator=dg, device=device))
        jits.append(torch.randn(1, h * spp, w * spp, 3, generator=dg, device=device))
    return torch.cat(bgs), torch.cat(jits)


class Progress:
    """One line per iteration (a live bar on a terminal) or every ``interval`` iterations:
    losses, ms per iteration and time remaining. The rate is that of the last ``window``
    iterations; the first iteration of a run (kernel compilation, caches: it can take a
    minute) is shown on its own and left out of the rate."""

    def __init__(self, total: int, name: str, mode: str, interval: int, window: int = 50):
        self.total, self.name, self.interval = total, name, interval
        self.tty = sys.stdout.isatty()
        self.mode = ("bar" if self.tty else "log") if mode == "auto" else mode
        self.start = time.time()
        self.first: int | None = None
        self.recent: collections.deque = collections.deque(maxlen=window + 1)

    def update(self, it: int, losses: dict) -> None:
        if self.mode == "none":
            return
        now = time.time()
        if self.first is None:  # first iteration of this run (later than 0 when resumed)
            self.first = it
        done = it + 1
        self.recent.append((now, done))
        text = " ".join(f"{k}={v:.4f}" for k, v in losses.items())
        if len(self.recent) < 2:  # the warm-up iteration: no rate yet
            speed = f"first iteration {now - self.start:.1f} s (warm-up, not in the rate)"
        else:
            (t0, d0), (t1, d1) = self.recent[0], self.recent[-1]
            per_it = (t1 - t0) / (d1 - d0)
            speed = f"{per_it * 1000:.0f} ms/it eta {(self.total - done) * per_it:.0f}s"
        line = f"[{self.name}] {done}/{self.total} {text} {speed}"
        if self.mode == "bar":
            print("\r" + line[:150].ljust(150), end="", flush=True)
            if done == self.total:
                print()
        elif done % self.interval == 0 or done == self.total or done == 1:
            print(line, flush=True)


def unimplemented_settings(cfg: Config) -> list[str]:
    """nvdiffrec keys this config sets that nvdrec accepts but does not act on (one line
    each, printed when training starts, so that nothing is ignored silently)."""
    out = []
    image_data = cfg.ref_mesh is not None and Path(cfg.ref_mesh).is_dir()
    if image_data and cfg.display_res is not None and list(cfg.display_res) != list(cfg.train_res):
        out.append(
            f"config key 'display_res': {list(cfg.display_res)} is not used with an image "
            f"dataset: validation uses its test images at train_res {list(cfg.train_res)}"
        )
    return out


def random_material(cfg: Config, device, gen) -> Material:
    h, w = cfg.texture_res
    lo = torch.tensor(cfg.kd_min[:3]), torch.tensor(cfg.ks_min)
    hi = torch.tensor(cfg.kd_max[:3]), torch.tensor(cfg.ks_max)
    kd = torch.rand(h, w, 3, generator=gen) * (hi[0] - lo[0]) + lo[0]
    ks = torch.rand(h, w, 3, generator=gen) * (hi[1] - lo[1]) + lo[1]
    nrm = torch.zeros(h, w, 3)
    nrm[..., 2] = 1
    mat = Material(
        "random",
        kd=Texture2D(kd, (lo[0], hi[0])),
        ks=Texture2D(ks, (lo[1], hi[1])),
        normal=Texture2D(nrm, (cfg.nrm_min, cfg.nrm_max)),
    )
    for t in (mat.kd, mat.ks, mat.normal):
        t.to(device)
    return mat


class Step(torch.nn.Module):
    """One training step's forward as a module, so that DistributedDataParallel can wrap
    it: it owns (shares) the trainable parameters and calls the closure it is given."""

    def __init__(self, params: list) -> None:
        super().__init__()
        self.params = torch.nn.ParameterList(params)

    def forward(self, fn):
        return fn()


class Optimizers:
    """Several optimisers stepped as one (Adam for the material and light, the
    positions' own optimiser in pass 2): ``param_groups`` lists all their groups, the
    state dict holds each one's."""

    def __init__(self, opts: list) -> None:
        self.opts = list(opts)

    @property
    def param_groups(self) -> list:
        return [g for o in self.opts for g in o.param_groups]

    def zero_grad(self, set_to_none: bool = True) -> None:
        for o in self.opts:
            o.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        for o in self.opts:
            o.step()

    def state_dict(self) -> dict:
        return {"optimizers": [o.state_dict() for o in self.opts]}

    def load_state_dict(self, state: dict) -> None:
        states = state.get("optimizers")
        if not isinstance(states, list) or len(states) != len(self.opts):
            raise ValueError("the checkpoint's optimiser state does not match this run's")
        for o, st in zip(self.opts, states):
            o.load_state_dict(st)
