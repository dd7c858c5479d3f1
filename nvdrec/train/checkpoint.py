"""Checkpoints: atomic, weights-only files that hold everything needed to continue a run.

Files live in ``OUT/checkpoints/`` as ``<pass>_<iteration>.pt`` (iteration = the next one
to run). They are written to a temporary file, fsynced and renamed, so a crash never
leaves a half-written checkpoint under the final name; loading uses
``torch.load(weights_only=True)``, which does not execute pickled code.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import torch

from ..errors import ConfigError, DataError
from ..io.files import atomic_path

__all__ = [
    "check_pass2_state",
    "restore_state",
    "save_checkpoint",
    "latest_checkpoint",
    "check_compatible",
    "check_state",
    "IGNORED_KEYS",
]

VERSION = 1
PASS_ORDER = {"dmtet_pass1": 0, "mesh_pass": 1}
# keys that may change between the interrupted run and the resumed one
IGNORED_KEYS = (
    "progress",
    "log_interval",
    "checkpoint_interval",
    "device",
    "save_interval",
    "display_interval",
    "out_dir",  # a run folder that was moved or copied resumes where it is
)


def save_checkpoint(folder: Path, state: dict, keep: int = 2) -> Path:
    """Write ``state`` atomically and keep only the newest ``keep`` checkpoints."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{state['pass']}_{state['iteration']:06d}.pt"
    with atomic_path(path) as tmp:
        torch.save({**state, "version": VERSION}, tmp)
    old = sorted(folder.glob("*.pt"), key=_order)[:-keep]
    for p in old:
        p.unlink(missing_ok=True)
    return path


def _order(p: Path):
    name, _, it = p.stem.rpartition("_")
    return (PASS_ORDER.get(name, -1), int(it) if it.isdigit() else -1)


def latest_checkpoint(folder: Path) -> tuple[dict, Path] | None:
    """Newest checkpoint that loads, or None; unreadable files are skipped with a warning."""
    for p in sorted(folder.glob("*.pt"), key=_order, reverse=True):
        try:
            state = torch.load(p, map_location="cpu", weights_only=True)
        except Exception as e:  # a damaged file: fall back to the previous checkpoint
            warnings.warn(
                f"nvdrec: skipping unreadable checkpoint {p}: {e}", RuntimeWarning, stacklevel=2
            )
            continue
        if isinstance(state, dict) and state.get("version") == VERSION:
            return state, p
    return None


def _damaged(path: Path, why: str) -> DataError:
    return DataError(
        f"checkpoint {path} is damaged: {why}. Delete it to resume from the one before, "
        "or start a new out_dir"
    )


def check_state(state: dict, path: Path, n_iter: int) -> None:
    """Refuse a checkpoint whose structure is not what :func:`save_checkpoint` writes:
    missing entries, an unknown pass, an iteration outside [0, ``n_iter``], tensors that
    are not finite. (Shapes are checked against the run's parameters on restore.)"""
    need = ("pass", "iteration", "params", "optimizer", "rng", "config", "extra")
    missing = [k for k in need if k not in state]
    if missing:
        raise _damaged(path, f"missing {', '.join(missing)}")
    if state["pass"] not in PASS_ORDER:
        raise _damaged(path, f"unknown pass {state['pass']!r}")
    it = state["iteration"]
    if isinstance(it, bool) or not isinstance(it, int) or not 0 <= it <= n_iter:
        raise _damaged(path, f"iteration {it!r} is outside 0..{n_iter} (config key 'iter')")
    for group in ("params", "extra"):
        if not isinstance(state[group], dict):
            raise _damaged(path, f"'{group}' is not a mapping")
        for k, t in state[group].items():
            if not isinstance(t, torch.Tensor):
                raise _damaged(path, f"{group} '{k}' is not a tensor")
            if t.is_floating_point() and not bool(torch.isfinite(t).all()):
                raise _damaged(path, f"{group} '{k}' holds NaN or inf")
    if not isinstance(state["config"], str):
        raise _damaged(path, "'config' is not the config text")
    try:
        json.loads(state["config"])
    except ValueError:
        raise _damaged(path, "its config does not parse") from None


def check_params(state: dict, path: Path, named: dict) -> None:
    """Every tensor the run restores is in the checkpoint with the run's shape."""
    for k, t in named.items():
        if k not in state["params"]:
            raise _damaged(path, f"parameter '{k}' is missing")
        if tuple(state["params"][k].shape) != tuple(t.shape):
            raise _damaged(
                path,
                f"parameter '{k}' has shape {tuple(state['params'][k].shape)}, the run's is "
                f"{tuple(t.shape)}",
            )


def check_compatible(state: dict, cfg_dict: dict, path: Path) -> None:
    """Refuse a checkpoint written for a different configuration."""
    old = json.loads(state["config"])
    diff = [
        k
        for k in sorted(set(old) | set(cfg_dict))
        if k not in IGNORED_KEYS and old.get(k) != cfg_dict.get(k)
    ]
    if diff:
        k = diff[0]
        more = f" and {len(diff) - 1} more" if len(diff) > 1 else ""
        raise ConfigError(
            f"checkpoint {path} was made with a different config (key '{k}' was "
            f"{old.get(k)!r}, now {cfg_dict.get(k)!r}{more}); resume with the same config, "
            "or start a new out_dir"
        )


def restore_state(state: dict, path: Path, named: dict, opt, gen, device) -> None:
    """Copy a checkpoint's parameters into ``named`` and restore the optimiser ``opt``
    (when given) and the random streams (``gen``, torch's, the device's); a state that
    does not fit is a :class:`DataError` naming the file."""
    import torch

    check_params(state, path, named)
    with torch.no_grad():
        for k, t in named.items():
            t.copy_(state["params"][k].to(t.device))
    if opt is not None and state["optimizer"]:
        try:
            opt.load_state_dict(state["optimizer"])
        except (ValueError, KeyError, TypeError, RuntimeError, IndexError) as e:
            raise DataError(
                f"checkpoint {path} is damaged: its optimizer state does not "
                f"fit the run ({e}). Delete it to resume from the one before, or start a "
                "new out_dir"
            ) from None
    try:
        gen.set_state(state["rng"]["gen"])
        torch.set_rng_state(state["rng"]["torch"])
        if "cuda" in state["rng"] and device.type == "cuda":
            torch.cuda.set_rng_state(state["rng"]["cuda"], device)
    except (KeyError, TypeError, RuntimeError) as e:
        raise DataError(
            f"checkpoint {path} is damaged: its random-number state cannot be "
            f"restored ({e}). Delete it to resume from the one before, or start a new out_dir"
        ) from None


def check_pass2_state(state: dict, path: Path) -> None:
    """A pass-2 checkpoint carries its mesh (``extra``: v_init, t_pos_idx, v_tex,
    t_tex_idx) and textures well-formed, else :class:`DataError`."""
    ex = state["extra"]
    shapes = {"v_init": 3, "t_pos_idx": 3, "v_tex": 2, "t_tex_idx": 3}
    for k, n in shapes.items():
        t = ex.get(k)
        if t is None or t.ndim != 2 or t.shape[1] != n or t.shape[0] == 0:
            raise DataError(
                f"checkpoint {path} is damaged: the pass-2 mesh entry '{k}' is missing or "
                "malformed. Delete it to resume from the one before, or start a new out_dir"
            )
    for k in ("tex.kd", "tex.ks", "tex.normal"):  # those the material has (kd: all)
        t = state["params"].get(k)
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
