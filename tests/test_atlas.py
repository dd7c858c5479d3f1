"""UV atlases that always finish (issue 15): the fallback grid atlas, the xatlas deadline
and failure paths, and a noisy surface through clean-up + unwrap + bake."""

import time

import numpy as np
import pytest
import torch
from _helpers import noisy_surface

from nvdrec.geometry import atlas as atlas_mod
from nvdrec.geometry import clean_mesh, unwrap_uv
from nvdrec.geometry.atlas import grid_atlas, make_atlas
from nvdrec.render import bake_textures


def _check_grid_layout(faces, uvs, t):
    """UVs in [0, 1]; every triangle has area and lies in its own half of its cell."""
    tri = uvs[faces]  # [T, 3, 2]
    assert uvs.min() >= 0 and uvs.max() <= 1
    e1, e2 = tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]
    area = 0.5 * np.abs(e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0])
    assert (area > 0).all()
    n = int(np.ceil(np.sqrt(np.ceil(t / 2))))
    s = 1.0 / n
    cell = np.floor(tri.mean(1) / s).astype(np.int64)  # [T, 2]
    lo = cell * s
    rel = (tri - lo[:, None, :]) / s  # corners relative to their cell, in [0, 1]
    assert (rel >= -1e-6).all() and (rel <= 1 + 1e-6).all()
    diag = rel.sum(-1)  # below the cell diagonal: < 1; above: > 1
    lower = (diag <= 1 + 1e-6).all(1)
    upper = (diag >= 1 - 1e-6).all(1)
    assert (lower ^ upper).all()  # each triangle strictly on one side
    key = cell[:, 0] * n * 2 + cell[:, 1] * 2 + upper
    assert len(np.unique(key)) == t  # no two triangles share a half cell


@pytest.mark.parametrize("t", [1, 2, 7, 1000])
def test_grid_atlas_layout(t):
    f = np.random.default_rng(t).integers(0, 50, size=(t, 3))
    vmap, faces, uvs = grid_atlas(f, 256)
    assert faces.shape == (t, 3) and np.array_equal(vmap[faces], f)
    _check_grid_layout(faces, uvs, t)


def _sleepy_worker(conn, *args):
    time.sleep(30)


def _failing_worker(conn, *args):
    conn.send(("error", "RuntimeError: made to fail"))
    conn.close()


def _tetra():
    v = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], dtype=np.float32)
    f = np.array([[0, 2, 1], [0, 1, 3], [1, 2, 3], [0, 3, 2]], dtype=np.int64)
    return v, f


def test_xatlas_deadline_and_failure_fall_back(monkeypatch):
    v, f = _tetra()
    ok = make_atlas(v, f, 64, timeout=60)
    assert ok.method == "xatlas" and ok.faces.shape == (4, 3)
    monkeypatch.setattr(atlas_mod, "_xatlas_worker", _sleepy_worker)
    t0 = time.perf_counter()
    slow = make_atlas(v, f, 64, timeout=1.0)
    assert time.perf_counter() - t0 < 10
    assert slow.method == "grid" and "did not finish within 1 s" in slow.note
    monkeypatch.setattr(atlas_mod, "_xatlas_worker", _failing_worker)
    bad = make_atlas(v, f, 64, timeout=20)
    assert bad.method == "grid" and "made to fail" in bad.note
    assert np.array_equal(bad.vmap[bad.faces], f)


def test_noisy_surface_cleans_unwraps_and_bakes_in_bounded_time():
    """Marching tets of a random SDF on a grid 64 (thousands of small components): clean-up,
    the unwrap (xatlas given 2 s, then the fallback; and the fallback forced) and the bake
    finish, with a valid atlas, every face with UV area, and every texel filled."""
    noisy = noisy_surface(64, 0.85)
    t0 = time.perf_counter()
    mesh, report = clean_mesh(noisy)
    assert report.components > 1000 and report.faces_out > 0
    lines = []
    fast = unwrap_uv(mesh, resolution=256, timeout=2.0, log=lines.append)
    assert "triangles" in lines[0]
    assert fast.v_tex.min() >= 0 and fast.v_tex.max() <= 1
    # the fallback atlas (forced): every face has UV area, charts do not overlap
    mesh = unwrap_uv(mesh, resolution=256, timeout=0.0, log=lines.append)
    assert "by grid" in lines[1]
    _check_grid_layout(mesh.t_tex_idx.numpy(), mesh.v_tex.numpy(), mesh.num_triangles)

    def const(p):
        n = len(p)
        return (
            torch.full((n, 3), 0.5),
            torch.full((n, 3), 0.25),
            torch.tensor([0.0, 0, 1]).expand(n, 3),
        )

    mat, mask = bake_textures(mesh, const, (256, 256), backend="torch")
    assert mask.any() and torch.allclose(mat.kd.image(), torch.tensor(0.5))
    assert time.perf_counter() - t0 < 120


def test_xatlas_in_pieces_maps_every_face_back():
    """A mesh above PIECE_TRIANGLES goes to xatlas as spatial pieces: the pieces partition
    the faces, and the stitched atlas keeps the face order, maps every UV vertex to the
    right input vertex and gives every face UV area inside [0, 1]."""
    from _helpers import sphere

    v, f = sphere(120, 200)
    v, f = v.numpy().astype(np.float32), f.numpy().astype(np.int64)
    pieces = atlas_mod.split_pieces(v, f)
    assert len(pieces) == round(len(f) / atlas_mod.PIECE_TRIANGLES) >= 2
    assert np.array_equal(np.sort(np.concatenate(pieces)), np.arange(len(f)))
    res = make_atlas(v, f, resolution=512, timeout=60.0)
    assert res.method == "xatlas", res.note
    assert np.array_equal(res.vmap[res.faces], f)
    assert res.uvs.min() >= 0 and res.uvs.max() <= 1
    tri = res.uvs[res.faces]
    e1, e2 = tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]
    assert (np.abs(e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]) > 0).all()
