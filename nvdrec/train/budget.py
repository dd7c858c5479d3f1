"""Memory a configuration needs at least, checked before anything large is allocated.

A config with ``batch`` 1e9, ``train_res`` 100000^2, ``hash_log2_size`` 40 or
``dmtet_grid`` 1024 would otherwise allocate until the system's OOM killer ends the
process (which ignores Ctrl-C meanwhile). The estimates below are *lower bounds*: what
the named buffers alone hold (parameters with their gradient and two Adam moments, the
per-pixel render buffers with their gradients), so a config that fits is never refused;
one that cannot fit stops at once with the key that costs most.
"""

from __future__ import annotations

from ..errors import ConfigError
from .config import Config

__all__ = ["memory_lower_bound", "check_memory"]

# bytes, lower bounds (float32 values; trained tensors x4: value, grad, Adam m and v)
PER_TRAINED_VALUE = 16
PER_SAMPLE = 256  # per rendered sample: raster, derivatives, attributes, material, shade + grads
PER_TET_CELL = 256  # per grid cell: 6 tets x 4 int64 indices + a vertex's trained sdf/deform
LIGHT_CHANNELS = 3
TEXTURE_CHANNELS = 10  # kd 4 + ks 3 + normal 3


def memory_lower_bound(cfg: Config) -> dict:
    """{config key(s): bytes} of the largest buffers of a run, each a lower bound."""
    from ..ops.hashgrid import HashGridConfig

    h, w = cfg.train_res
    samples = cfg.batch * (h * cfg.spp) * (w * cfg.spp) * cfg.layers
    out = {
        "batch, train_res, spp, layers": samples * PER_SAMPLE,
        "light_res": 6 * cfg.light_res**2 * LIGHT_CHANNELS * PER_TRAINED_VALUE,
    }
    if not cfg.base_mesh:  # pass 1: the tet grid and the neural material
        out["dmtet_grid"] = cfg.dmtet_grid**3 * PER_TET_CELL
        hg = HashGridConfig(log2_table_size=cfg.hash_log2_size)
        out["hash_log2_size"] = hg.n_levels * hg.table_size * hg.n_features * PER_TRAINED_VALUE
    th, tw = cfg.texture_res
    out["texture_res"] = th * tw * TEXTURE_CHANNELS * PER_TRAINED_VALUE
    return out


def check_memory(cfg: Config, available: int | None, device: str) -> None:
    """Raise ConfigError when the run's lower bound exceeds ``available`` bytes (None:
    unknown, no check). The message names the costliest keys."""
    if available is None:
        return
    parts = memory_lower_bound(cfg)
    total = sum(parts.values())
    if total <= available:
        return
    worst = sorted(parts.items(), key=lambda kv: -kv[1])
    top = "; ".join(f"{k}: {v / 2**30:.3g} GB" for k, v in worst[:2])
    raise ConfigError(
        f"this config needs at least {total / 2**30:.3g} GB on {device} ({top}), but "
        f"{available / 2**30:.3g} GB are available: lower config key(s) {worst[0][0]}"
    )
