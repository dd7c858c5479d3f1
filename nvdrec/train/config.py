"""Run configuration: nvdiffrec's JSON keys, their defaults, and nvdrec's additions.

An nvdiffrec config file loads unchanged. Every key is validated when the config is
built; a bad key or value raises :class:`~nvdrec.errors.ConfigError` naming the key,
the value it got, what is allowed and (for unknown keys) the closest valid key.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..geometry.smooth_param import SOLVERS as _SOLVERS
from .config_checks import (
    _BACKENDS,
    _BACKGROUNDS,
    _ISOSURFACES,
    _LAPLACE,
    _LOSSES,
    _PROGRESS,
    _bool,
    _cache_setting,
    _choice,
    _device,
    _display,
    _exports,
    _fail,
    _float,
    _int,
    _is_number,
    _mesh_scale,
    _meta,
    _opt,
    _opt_str,
    _vec,
)

__all__ = ["Config", "config_keys", "load_config"]


def _learning_rate(key, v):
    """The ``learning_rate`` value, checked (:meth:`Config.learning_rates` reads it).
    nvdiffrec's forms: a number (both passes, geometry and material alike), or one entry
    per pass [pass1, pass2] where an entry is a number or a pair [geometry, material]."""

    def positive(x):
        return _is_number(x) and x > 0

    def entry(p):
        if positive(p):
            return float(p)
        if isinstance(p, (list, tuple)) and 1 <= len(p) <= 2 and all(positive(x) for x in p):
            return [float(x) for x in p]
        return None

    if positive(v):
        return float(v)
    if isinstance(v, (list, tuple)) and 1 <= len(v) <= 2:
        out = [entry(p) for p in v]
        if all(e is not None for e in out):
            return out
    raise _fail(
        key,
        v,
        "a positive number, or one entry per pass [pass1, pass2] where an entry is a "
        "positive number or a pair [geometry, material]",
    )


# Keys that name input files; relative values resolve against the config file's folder
# when the file exists there, else against the working directory (as nvdiffrec does).
PATH_KEYS = ("ref_mesh", "base_mesh", "envmap", "mtl_override")


@dataclass
class Config:
    """All settings of a reconstruction run.

    Field names, meanings and defaults are those of nvdiffrec's configs, so its JSON
    files load unchanged; fields after ``device`` are nvdrec's additions.
    """

    # ---- nvdiffrec keys (same names and defaults)
    iter: int = field(default=5000, metadata=_meta(_int(0), "iterations per pass"))
    batch: int = field(default=1, metadata=_meta(_int(1), "views per iteration"))
    spp: int = field(default=1, metadata=_meta(_int(1), "supersampling factor per axis"))
    layers: int = field(default=1, metadata=_meta(_int(1), "depth-peeling layers"))
    train_res: list = field(
        default_factory=lambda: [512, 512], metadata=_meta(_vec(2, "int", 1), "[H, W]")
    )
    display_res: list | None = field(
        default=None, metadata=_meta(_opt(_vec(2, "int", 1)), "[H, W] of previews")
    )
    texture_res: list = field(
        default_factory=lambda: [1024, 1024], metadata=_meta(_vec(2, "int", 1), "[H, W]")
    )
    display_interval: int = field(default=0, metadata=_meta(_int(0), "0 = off"))
    save_interval: int = field(default=1000, metadata=_meta(_int(0), "preview every N iters"))
    learning_rate: Any = field(default=0.01, metadata=_meta(_learning_rate, "see docs"))
    min_roughness: float = field(default=0.08, metadata=_meta(_float(0.0), "roughness floor"))
    custom_mip: bool = field(default=False, metadata=_meta(_bool, "trainable mip levels"))
    random_textures: bool = field(default=False, metadata=_meta(_bool, "random init"))
    background: str = field(
        default="checker",
        metadata=_meta(
            _choice(_BACKGROUNDS),
            "validation background: white, else black (training uses random noise)",
        ),
    )
    loss: str = field(default="logl1", metadata=_meta(_choice(_LOSSES), "image loss"))
    out_dir: str | None = field(default=None, metadata=_meta(_opt_str, "under out/"))
    ref_mesh: str | None = field(default=None, metadata=_meta(_opt_str, "data"))
    base_mesh: str | None = field(default=None, metadata=_meta(_opt_str, "skip pass 1"))
    validate: bool = field(default=True, metadata=_meta(_bool, "validation metrics"))
    isosurface: str = field(
        default="dmtet",
        metadata=_meta(_choice(_ISOSURFACES), "pass-1 surface: dmtet or flexicubes"),
    )
    mtl_override: str | None = field(default=None, metadata=_meta(_opt_str, "MTL path"))
    dmtet_grid: int = field(default=64, metadata=_meta(_int(2), "tet grid resolution"))
    mesh_scale: Any = field(default=2.1, metadata=_meta(_mesh_scale, "grid box size"))
    env_scale: float = field(default=1.0, metadata=_meta(_float(0.0), "envmap multiplier"))
    envmap: str | None = field(default=None, metadata=_meta(_opt_str, "lat-long HDR"))
    display: list | None = field(default=None, metadata=_meta(_display, "preview extras"))
    camera_space_light: bool = field(
        default=False, metadata=_meta(_bool, "the light turns with the camera")
    )
    lock_light: bool = field(default=False, metadata=_meta(_bool, "keep the light fixed"))
    lock_pos: bool = field(default=False, metadata=_meta(_bool, "pass 2: keep vertices fixed"))
    sdf_regularizer: float = field(
        default=0.2, metadata=_meta(_float(0.0), "SDF sign-change weight (pass 1)")
    )
    laplace: str = field(
        default="relative",
        metadata=_meta(_choice(_LAPLACE), "pass-2 Laplacian of the offsets or of the positions"),
    )
    laplace_scale: float = field(
        default=10000.0, metadata=_meta(_float(0.0), "pass-2 Laplacian weight")
    )
    pre_load: bool = field(
        default=True, metadata=_meta(_bool, "accepted; images always load up front")
    )
    kd_min: list = field(
        default_factory=lambda: [0.0, 0.0, 0.0, 0.0],
        metadata=_meta(_vec((3, 4)), "base colour lower bound"),
    )
    kd_max: list = field(
        default_factory=lambda: [1.0, 1.0, 1.0, 1.0],
        metadata=_meta(_vec((3, 4)), "base colour upper bound"),
    )
    ks_min: list = field(
        default_factory=lambda: [0.0, 0.08, 0.0],
        metadata=_meta(_vec(3), "occlusion/roughness/metallic lower bound"),
    )
    ks_max: list = field(
        default_factory=lambda: [1.0, 1.0, 1.0],
        metadata=_meta(_vec(3), "occlusion/roughness/metallic upper bound"),
    )
    nrm_min: list = field(
        default_factory=lambda: [-1.0, -1.0, 0.0],
        metadata=_meta(_vec(3), "tangent-space normal lower bound"),
    )
    nrm_max: list = field(
        default_factory=lambda: [1.0, 1.0, 1.0],
        metadata=_meta(_vec(3), "tangent-space normal upper bound"),
    )
    cam_near_far: list = field(
        default_factory=lambda: [0.1, 1000.0], metadata=_meta(_vec(2, lo=0.0), "[near, far]")
    )
    learn_light: bool = field(
        default=True, metadata=_meta(_bool, "learn the light (false: envmap is known)")
    )
    local_rank: int = field(default=0, metadata=_meta(_int(0), "set by launchers"))
    multi_gpu: bool = field(default=False, metadata=_meta(_bool, "set by launchers"))

    # ---- nvdrec additions
    device: str = field(default="auto", metadata=_meta(_device, "auto, cpu, cuda, cuda:N"))
    seed: int = field(default=0, metadata=_meta(_int(0), "random seed"))
    backend: str = field(default="auto", metadata=_meta(_choice(_BACKENDS), "raster ops"))
    checkpoint_interval: int = field(default=500, metadata=_meta(_int(0), "0 = off"))
    export_formats: list = field(
        default_factory=lambda: ["obj", "glb"], metadata=_meta(_exports, "mesh/ outputs")
    )
    validate_views: int = field(default=50, metadata=_meta(_int(1), "orbit views"))
    progress: str = field(
        default="auto", metadata=_meta(_choice(_PROGRESS), "auto, bar, log or none")
    )
    log_interval: int = field(default=50, metadata=_meta(_int(1), "log line every N iters"))
    light_res: int = field(default=512, metadata=_meta(_int(16), "cube size of the learned light"))
    hash_log2_size: int = field(default=19, metadata=_meta(_int(8), "log2 hash table entries"))
    demo_grid: int = field(default=96, metadata=_meta(_int(16), "tet grid of the demo shape"))
    unwrap_timeout: float = field(
        default=60.0, metadata=_meta(_float(0.0), "seconds for xatlas, then our atlas")
    )
    pos_smoothing: float = field(
        default=19.0,
        metadata=_meta(_float(0.0), "pass-2 vertex steps smoothed (Large Steps lambda, 0 = off)"),
    )
    pos_solver: str = field(
        default="auto",
        metadata=_meta(_choice(_SOLVERS), "pass-2 solves: auto, dense, cg or cholesky"),
    )
    fill_cavities: bool = field(
        default=True, metadata=_meta(_bool, "fill enclosed empty space before extraction")
    )
    cleanup_min_component: float = field(
        default=0.01, metadata=_meta(_float(0.0), "drop smaller components (0 = keep all)")
    )
    cleanup_unseen: bool = field(
        default=False, metadata=_meta(_bool, "drop faces no training view sees")
    )
    decimate_triangles: int = field(
        default=0, metadata=_meta(_int(0), "triangle budget after pass 1 (0 = off)")
    )
    image_cache: str = field(
        default="auto", metadata=_meta(_cache_setting, "reduced photos: auto, off, or a folder")
    )

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            setattr(self, f.name, f.metadata["check"](f.name, getattr(self, f.name)))
        near, far = self.cam_near_far
        if not 0 < near < far:
            raise ConfigError(
                f"config key 'cam_near_far': got {self.cam_near_far!r}; "
                "allowed: [near, far] with 0 < near < far"
            )
        for lo_key, hi_key in (("kd_min", "kd_max"), ("ks_min", "ks_max"), ("nrm_min", "nrm_max")):
            lo, hi = getattr(self, lo_key), getattr(self, hi_key)
            if any(a > b for a, b in zip(lo, hi)):
                raise ConfigError(
                    f"config keys '{lo_key}'/'{hi_key}': got {lo!r} > {hi!r} in some channel; "
                    f"each '{lo_key}' entry must be <= the matching '{hi_key}' entry"
                )
        if self.display_res is None:
            self.display_res = list(self.train_res)

    # ------------------------------------------------------------------ helpers
    def learning_rates(self, pass_idx: int) -> tuple[float, float]:
        """(geometry lr, material/light lr) of pass ``pass_idx`` (0: DMTet pass, 1: mesh
        pass) from ``learning_rate``, with nvdiffrec's meaning: a number for every
        parameter of both passes; ``[a, b]``: pass 1 trains everything at ``a``, pass 2 at
        ``b``; an entry may be a pair ``[geometry, material]`` (``[[0.03, 0.01], 0.003]``);
        a one-entry list applies to both passes. The schedule over the iterations is
        :func:`nvdrec.train.loop.lr_factor`'s."""
        lr = self.learning_rate
        if not isinstance(lr, (list, tuple)):
            return float(lr), float(lr)
        p = lr[min(pass_idx, len(lr) - 1)]
        if isinstance(p, (list, tuple)):
            return float(p[0]), float(p[-1])
        return float(p), float(p)

    def to_dict(self) -> dict:
        """Plain-JSON dictionary of every key (what ``OUT/config.json`` holds)."""
        return {f.name: _jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)}

    def save(self, path: str | os.PathLike) -> None:
        """Write the resolved config as JSON (atomically)."""
        from ..io.files import atomic_write_text

        atomic_write_text(path, json.dumps(self.to_dict(), indent=2) + "\n")

    def replace(self, **changes: Any) -> Config:
        """A validated copy with some keys changed."""
        return load_config({**self.to_dict(), **changes})


def _jsonable(v: Any) -> Any:
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    return v


def config_keys() -> list[str]:
    """Every valid config key, in declaration order."""
    return [f.name for f in dataclasses.fields(Config)]


def _unknown_key(key: str) -> ConfigError:
    hint = difflib.get_close_matches(key, config_keys(), n=1, cutoff=0.5)
    extra = f"; did you mean '{hint[0]}'?" if hint else "; run 'nvdrec train --help' for the list"
    return ConfigError(f"unknown config key '{key}'{extra}")


def parse_override(key: str, text: str) -> Any:
    """Turn a command-line override string into a value (JSON if it parses, else text)."""
    key = key.replace("-", "_")
    if key not in config_keys():
        raise _unknown_key(key)
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        if text.lower() in ("true", "false"):
            return text.lower() == "true"
        return text


def _read_json(path: Path) -> dict:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file '{path}' does not exist") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"config file '{path}' cannot be read: {e}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError(
            f"config file '{path}' is not valid JSON: {e.msg} at line {e.lineno}, column {e.colno}"
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(
            f"config file '{path}' must hold a JSON object, got {type(data).__name__}"
        )
    return data


def _resolve_path(value: str, base_dir: Path | None) -> str:
    p = Path(value).expanduser()
    if p.is_absolute():
        return str(p)
    if base_dir is not None and (base_dir / p).exists():
        return str((base_dir / p).resolve())
    return str(p.resolve())


def load_config(
    path_or_dict: str | os.PathLike | Mapping[str, Any] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Config:
    """Build a validated :class:`Config` from a JSON file or a dict, plus overrides.

    Args:
        path_or_dict: path of a JSON config (nvdiffrec format), a mapping of keys, or
            None for all defaults.
        overrides: keys that replace those of the file (e.g. ``{"iter": 200}``).

    Returns:
        The config with input paths made absolute (relative ones are looked up next to
        the config file first, then in the working directory) and ``out_dir`` resolved:
        a relative ``out_dir`` lives under ``out/`` of the working directory, as in
        nvdiffrec (one that leads outside it, like ``../x``, is refused); an absolute one
        is used as is; none gives ``out/<config name>``.

    Raises:
        ConfigError: unknown key, bad value, unreadable or malformed file.
    """
    base_dir: Path | None = None
    stem = "run"
    if path_or_dict is None:
        data: dict = {}
    elif isinstance(path_or_dict, Mapping):
        data = dict(path_or_dict)
    else:
        path = Path(path_or_dict)
        data = _read_json(path)
        base_dir = path.resolve().parent
        stem = path.stem
    for k, v in (overrides or {}).items():
        data[k.replace("-", "_")] = v
    data.pop("config", None)  # nvdiffrec's own dumps carry the config path
    for k in data:
        if k not in config_keys():
            raise _unknown_key(k)
    cfg = Config(**data)
    for k in PATH_KEYS:
        v = getattr(cfg, k)
        if v:
            setattr(cfg, k, _resolve_path(v, base_dir))
    out = Path(cfg.out_dir) if cfg.out_dir else Path(stem)
    if not out.is_absolute():
        root = Path("out").resolve()
        if root not in (root / out).resolve().parents:
            raise ConfigError(
                f"config key 'out_dir': {cfg.out_dir!r} is not a folder under out/ (where a "
                "relative out_dir lives); give a name like 'bob', or an absolute "
                "path to write elsewhere"
            )
        out = Path("out") / out
    cfg.out_dir = str(out.resolve())
    for item in cfg.display or []:  # {"relight": "env.hdr"} names an input file too
        if item.get("relight"):
            item["relight"] = _resolve_path(item["relight"], base_dir)
    return cfg
