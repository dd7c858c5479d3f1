"""The value checks of the config keys: each takes (key, value) and returns the
normalised value or raises :class:`~nvdrec.errors.ConfigError` naming the key, the
value and what is allowed."""

from __future__ import annotations

import difflib
import math
from typing import Any, Callable

from ..errors import ConfigError

_LOSSES = ("logl1", "logl2", "mse", "smape", "relmse", "l1")
_BACKGROUNDS = ("black", "white", "checker", "reference")
_ISOSURFACES = ("dmtet", "flexicubes")
_LAPLACE = ("relative", "absolute")
_BACKENDS = ("auto", "torch", "cuda", "nvdiffrast")
_EXPORTS = ("obj", "glb", "usd")
_PROGRESS = ("auto", "bar", "log", "none")
_DISPLAY_KEYS = ("bsdf", "latlong", "relight")
_DISPLAY_BSDFS = ("pbr", "diffuse", "white", "kd", "ks", "normal", "tangent")


def _meta(check: Callable[[str, Any], Any], doc: str) -> dict:
    return {"check": check, "doc": doc}


# --------------------------------------------------------------------------- checks
# Each check takes (key, value) and returns the normalised value or raises ConfigError.


def _fail(key: str, value: Any, allowed: str) -> ConfigError:
    return ConfigError(f"config key '{key}': got {value!r}; allowed: {allowed}")


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _int(lo: int | None = None):
    def check(key, v):
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        if not isinstance(v, int) or isinstance(v, bool) or (lo is not None and v < lo):
            raise _fail(key, v, f"an integer >= {lo}" if lo is not None else "an integer")
        return v

    return check


def _float(lo: float | None = None, strict: bool = False):
    def check(key, v):
        bad = not _is_number(v) or (lo is not None and (v <= lo if strict else v < lo))
        if bad:
            rel = ">" if strict else ">="
            raise _fail(key, v, f"a finite number {rel} {lo}" if lo is not None else "a number")
        return float(v)

    return check


def _bool(key, v):
    if not isinstance(v, bool):
        raise _fail(key, v, "true or false")
    return v


def _choice(options: tuple[str, ...]):
    def check(key, v):
        if v not in options:
            hint = difflib.get_close_matches(str(v), options, n=1)
            extra = f" (did you mean '{hint[0]}'?)" if hint else ""
            raise _fail(key, v, ", ".join(repr(o) for o in options) + extra)
        return v

    return check


def _opt_str(key, v):
    if v is not None and not isinstance(v, str):
        raise _fail(key, v, "a string (a path) or null")
    return v


def _cache_setting(key, v):
    if v is True:
        return "auto"
    if v is False or v is None:
        return "off"
    if not isinstance(v, str) or not v:
        raise _fail(key, v, '"auto" (the default folder), "off", or a folder path')
    return v


def _vec(n: int | tuple[int, ...], kind: str = "float", lo: float | None = None):
    lengths = (n,) if isinstance(n, int) else n

    def check(key, v):
        if kind == "int" and _is_number(v) and 2 in lengths:
            v = [v, v]  # train_res: 512 means [512, 512]
        ok = isinstance(v, (list, tuple)) and len(v) in lengths and all(_is_number(x) for x in v)
        if ok and kind == "int":
            ok = all(float(x).is_integer() for x in v)
        if ok and lo is not None:
            ok = all(x >= lo for x in v)
        if not ok:
            what = "integers" if kind == "int" else "numbers"
            bound = f" >= {lo}" if lo is not None else ""
            size = " or ".join(str(x) for x in lengths)
            raise _fail(key, v, f"a list of {size} {what}{bound}")
        return [int(x) for x in v] if kind == "int" else [float(x) for x in v]

    return check


def _opt(check):
    def wrapped(key, v):
        return None if v is None else check(key, v)

    return wrapped


def _display(key, v):
    if v is None:
        return None
    if not isinstance(v, list):
        raise _fail(key, v, 'a list of objects such as {"bsdf": "kd"} or {"latlong": true}')
    out = []
    for i, item in enumerate(v):
        if not isinstance(item, dict):
            raise _fail(f"{key}[{i}]", item, 'an object such as {"bsdf": "kd"}')
        for k in item:
            if k not in _DISPLAY_KEYS:
                raise _fail(f"{key}[{i}]", item, "keys " + ", ".join(_DISPLAY_KEYS))
        if "bsdf" in item:
            _choice(_DISPLAY_BSDFS)(f"{key}[{i}].bsdf", item["bsdf"])
        if "latlong" in item:
            _bool(f"{key}[{i}].latlong", item["latlong"])
        if "relight" in item and not isinstance(item["relight"], str):
            raise _fail(f"{key}[{i}].relight", item["relight"], "a path to a lat-long HDR map")
        out.append(dict(item))
    return out


def _exports(key, v):
    if isinstance(v, str):
        v = [v]
    if not isinstance(v, list) or not v:
        raise _fail(key, v, "a non-empty list of " + ", ".join(_EXPORTS))
    for x in v:
        _choice(_EXPORTS)(key, x)
    return list(dict.fromkeys(v))


def _device(key, v):
    ok = isinstance(v, str) and (
        v in ("auto", "cpu", "cuda") or (v.startswith("cuda:") and v[5:].isdigit())
    )
    if not ok:
        raise _fail(key, v, "'auto', 'cpu', 'cuda' or 'cuda:N'")
    return v


def _mesh_scale(key, v):
    if v == "auto":
        return v
    return _float(0.0, strict=True)(key, v)


# --------------------------------------------------------------------------- config
