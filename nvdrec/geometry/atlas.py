"""UV atlases that always finish: xatlas in a worker process with a deadline, and our own
fallback atlas (one square cell per pair of triangles) that takes linear time.

xatlas gives good charts but its run time grows badly on dense or noisy meshes (minutes
for a few hundred thousand triangles of a noisy isosurface, with no progress output), and
a native call cannot be interrupted from Python. So it runs in a child process: when the
deadline passes the child is killed and the fallback atlas is used. Both return the same
layout as ``xatlas.parametrize``: (per-UV-vertex index into the input vertices [U],
faces into the UV vertices [T, 3], UVs [U, 2] in [0, 1]).
"""

from __future__ import annotations

import math
import multiprocessing as mp
import sys
import time
from dataclasses import dataclass

import numpy as np

__all__ = ["AtlasResult", "grid_atlas", "xatlas_atlas", "make_atlas", "split_pieces"]


@dataclass(frozen=True)
class AtlasResult:
    """An atlas and how it was made."""

    vmap: np.ndarray  # [U] int64, input vertex of each UV vertex
    faces: np.ndarray  # [T, 3] int64, UV vertex indices (same face order as the input)
    uvs: np.ndarray  # [U, 2] float32 in [0, 1]
    method: str  # "xatlas" or "grid"
    seconds: float
    note: str = ""  # why the fallback was used


def grid_atlas(faces: np.ndarray, resolution: int = 1024, padding_texels: float = 1.0):
    """Fallback atlas: triangles in pairs, each pair in one square cell of an n x n grid
    (n = ceil(sqrt(ceil(T / 2)))), the two triangles on either side of the cell's
    diagonal with a gap between them and a border of ``padding_texels`` texels of a
    ``resolution``-texel texture (less when the cells are smaller than a few texels).
    Every triangle gets its own three UV vertices; charts never overlap; linear time.

    Returns (vmap [3T], faces [T, 3], uvs [3T, 2]).
    """
    f = np.asarray(faces, dtype=np.int64).reshape(-1, 3)
    t = len(f)
    cells = max(1, math.ceil(t / 2))
    n = math.ceil(math.sqrt(cells))
    s = 1.0 / n
    p = min(padding_texels / max(resolution, 1), 0.15 * s)  # border inside the cell
    g = p  # half-gap along the diagonal
    k = np.arange(t)
    cell = k // 2
    x0 = (cell % n) * s
    y0 = (cell // n) * s
    x1, y1 = x0 + s, y0 + s
    lower = (k % 2) == 0
    # lower-left triangle: (x0, y0), (x1, y0), (x0, y1) shrunk; upper-right mirrored
    d = g * math.sqrt(2)  # move the diagonal edge inwards by the gap
    a = np.where(lower[:, None], np.stack([x0 + p, y0 + p], -1), np.stack([x1 - p, y1 - p], -1))
    b = np.where(
        lower[:, None], np.stack([x1 - p - d, y0 + p], -1), np.stack([x0 + p + d, y1 - p], -1)
    )
    c = np.where(
        lower[:, None], np.stack([x0 + p, y1 - p - d], -1), np.stack([x1 - p, y0 + p + d], -1)
    )
    uvs = np.stack([a, b, c], 1).reshape(-1, 2).astype(np.float32)
    return f.reshape(-1), np.arange(3 * t, dtype=np.int64).reshape(t, 3), uvs


MAX_CHARTS_AREA_DIVISOR = 500.0  # a chart covers at most 1/500 of the surface ...
MAX_CHART_TRIANGLES = 150  # ... and about 150 triangles on average on dense meshes
PIECE_TRIANGLES = 20000  # xatlas gets the mesh in spatial pieces of about this size


def split_pieces(v: np.ndarray, f: np.ndarray, target: int = PIECE_TRIANGLES) -> list:
    """Face index arrays of spatially coherent pieces of about ``target`` triangles
    (recursive median splits of the face centroids along the longest extent; at most 64
    pieces). One piece for small meshes."""
    k = int(min(64, max(1, round(len(f) / max(target, 1)))))
    c = v[f].mean(1)
    parts = [np.arange(len(f))]
    while len(parts) < k:
        parts.sort(key=len)
        p = parts.pop()
        ax = int(np.argmax(c[p].max(0) - c[p].min(0)))
        o = np.argsort(c[p, ax], kind="stable")
        h = len(p) // 2
        parts += [p[o[:h]], p[o[h:]]]
    return sorted(parts, key=lambda p: int(p[0]) if len(p) else 0)


def _xatlas_worker(conn, v, f, resolution, padding) -> None:
    try:
        import xatlas

        atlas = xatlas.Atlas()
        # The mesh goes in as spatial pieces: xatlas charts the meshes of an atlas in
        # parallel and its charting time grows faster than linearly, so pieces of ~20k
        # triangles are much faster (a 100k-triangle blob: 10 s as one mesh, 2 s as 8
        # pieces, same chart count and packing efficiency). Charts end at piece borders.
        pieces = split_pieces(v, f)
        subs = []
        for p in pieces:
            used, local = np.unique(f[p], return_inverse=True)
            atlas.add_mesh(v[used], local.reshape(-1, 3).astype(np.uint32))
            subs.append(used)
        chart = xatlas.ChartOptions()
        chart.max_iterations = 1  # one chart-growing pass: the costly refinement is skipped
        # bounded chart size: growing very large charts over a smooth surface is what
        # makes xatlas slow (a 31k-triangle blob: 7.8 s unbounded, 0.5 s with 1/500)
        e1, e2 = v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]]
        area = 0.5 * float(np.linalg.norm(np.cross(e1, e2), axis=-1).sum())
        chart.max_chart_area = area / max(MAX_CHARTS_AREA_DIVISOR, len(f) / MAX_CHART_TRIANGLES)
        pack = xatlas.PackOptions()
        pack.resolution = int(resolution)  # pack for the texture size actually baked
        pack.padding = int(padding)  # texels between charts
        pack.bilinear = True
        pack.blockAlign = True  # faster packing, charts aligned to 4x4 blocks
        atlas.generate(chart, pack)
        vmaps, faces, uvs = [], np.zeros((len(f), 3), np.int64), []
        n_uv = 0
        for i, (p, used) in enumerate(zip(pieces, subs)):
            vm, idx, uv = atlas.get_mesh(i)
            if len(idx) != len(p):
                raise ValueError(f"piece {i}: {len(idx)} of {len(p)} faces came back")
            vmaps.append(used[vm.astype(np.int64)])
            faces[p] = idx.astype(np.int64).reshape(-1, 3) + n_uv
            uvs.append(uv)
            n_uv += len(vm)
        conn.send(("ok", (np.concatenate(vmaps), faces, np.concatenate(uvs))))
    except BaseException as e:  # report any failure to the parent instead of hanging
        conn.send(("error", f"{type(e).__name__}: {e}"))
    finally:
        conn.close()


def xatlas_atlas(v: np.ndarray, f: np.ndarray, resolution: int, timeout: float, padding: int = 2):
    """xatlas in a child process. Returns ((vmap, faces, uvs), None) or (None, reason)
    when it failed or did not finish within ``timeout`` seconds (the child is killed)."""
    try:
        import xatlas  # noqa: F401
    except ImportError:
        return None, "xatlas is not installed"
    ctx = mp.get_context("fork" if sys.platform.startswith("linux") else "spawn")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(
        target=_xatlas_worker,
        args=(child, v.astype(np.float32), f.astype(np.uint32), resolution, padding),
        daemon=True,
    )
    proc.start()
    child.close()
    try:
        if not parent.poll(timeout):
            return None, f"xatlas did not finish within {timeout:.0f} s"
        status, payload = parent.recv()
    except (EOFError, OSError):
        return None, f"the xatlas worker died (exit code {proc.exitcode})"
    finally:
        if proc.is_alive():
            proc.kill()
        proc.join(5)
        parent.close()
    if status != "ok":
        return None, f"xatlas failed ({payload})"
    vmap, idx, uvs = payload
    return (vmap.astype(np.int64), idx.astype(np.int64), uvs.astype(np.float32)), None


def make_atlas(
    v: np.ndarray, f: np.ndarray, resolution: int = 1024, timeout: float = 60.0
) -> AtlasResult:
    """An atlas for the mesh (vertices [V, 3], faces [T, 3]): xatlas within ``timeout``
    seconds (0 skips it), else :func:`grid_atlas`. Faces keep their order either way.
    A mesh far from unit size (under 1e-2 or over 1e3 across) is unwrapped at unit size:
    xatlas gives NaN UVs for meshes a few thousandths of a unit across."""
    t0 = time.perf_counter()
    note = "xatlas skipped (unwrap_timeout 0)"
    if timeout > 0:
        v = np.asarray(v, dtype=np.float32)
        lo = v.min(0) if len(v) else np.zeros(3, np.float32)
        extent = float((v.max(0) - lo).max()) if len(v) else 0.0
        if extent > 0 and not 1e-2 <= extent <= 1e3:
            v = ((v.astype(np.float64) - lo) / extent).astype(np.float32)
        out, note = xatlas_atlas(v, f, resolution, timeout)
        if out is not None and not np.isfinite(out[2]).all():
            out, note = None, "xatlas returned non-finite UVs"
        if out is not None and len(out[1]) == len(f):
            return AtlasResult(*out, "xatlas", time.perf_counter() - t0)
        if out is not None:
            note = f"xatlas returned {len(out[1])} of {len(f)} faces"
    vmap, faces, uvs = grid_atlas(f, resolution)
    return AtlasResult(vmap, faces, uvs, "grid", time.perf_counter() - t0, note)
