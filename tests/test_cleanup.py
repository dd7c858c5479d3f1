"""Mesh clean-up after pass 1: welding, degenerate triangles, floaters (issue 15)."""

import pytest
import torch
from _helpers import noisy_surface
from conftest import devices

from nvdrec.geometry import DMTetGeometry, clean_mesh, connected_components, weld_vertices
from nvdrec.structures import Mesh


def _sphere_surface(grid=24, radius=0.6, centre=(0.0, 0.0, 0.0)):
    geo = DMTetGeometry(grid_res=grid, scale=2.0)
    with torch.no_grad():
        geo.sdf.copy_((geo.verts - torch.tensor(centre)).norm(dim=-1) - radius)
    return geo.get_mesh().detach()


def _join(*meshes):
    vs, fs, off = [], [], 0
    for m in meshes:
        vs.append(m.v_pos)
        fs.append(m.t_pos_idx.long() + off)
        off += len(m.v_pos)
    return Mesh(v_pos=torch.cat(vs), t_pos_idx=torch.cat(fs))


def test_components_of_two_spheres():
    a = _sphere_surface(centre=(-0.3, 0, 0), radius=0.25)
    b = _sphere_surface(centre=(0.4, 0, 0), radius=0.2)
    both = _join(a, b)
    comp = connected_components(both.t_pos_idx, len(both.v_pos))
    assert int(comp.max()) + 1 == 2
    assert (comp[: len(a.t_pos_idx)] == comp[0]).all()
    assert (comp[len(a.t_pos_idx) :] != comp[0]).all()


def test_floaters_are_dropped_and_reported():
    body = _sphere_surface(radius=0.6)
    floater = _sphere_surface(grid=48, centre=(0.7, 0.7, 0.7), radius=0.12)
    assert len(floater.t_pos_idx) > 0
    body_clean, rb = clean_mesh(body)
    assert rb.components == 1
    # the floater has ~4% of the body's area: dropped at a 10% threshold, kept at 1%
    mesh, report = clean_mesh(_join(body, floater), min_component=0.1)
    assert report.components == 2 and report.dropped_components == 1
    assert report.faces_out == len(body_clean.t_pos_idx) == len(mesh.t_pos_idx)
    assert len(mesh.v_pos) == len(body_clean.v_pos)  # unreferenced vertices removed
    assert "1 of 2 components dropped" in report.summary()
    kept, r1 = clean_mesh(_join(body, floater), min_component=0.01)
    assert r1.dropped_components == 0 and r1.faces_out > report.faces_out
    # the kept mesh has the body's extent: the floater's vertices are gone
    assert float(mesh.v_pos.max()) < 0.65 < float(kept.v_pos.max())


def test_weld_and_degenerate_triangles():
    # two triangles of a quad written with duplicated corner vertices, plus a sliver
    v = torch.tensor(
        [[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 0, 0], [1, 1, 0], [0, 1, 0], [2, 0, 0]],
        dtype=torch.float32,
    )
    f = torch.tensor([[0, 1, 2], [3, 4, 5], [1, 6, 1]])
    vw, fw, merged = weld_vertices(v, f)
    assert merged == 2 and len(vw) == 5
    assert torch.equal(vw[fw], v[f])  # same triangles, shared corners
    mesh, report = clean_mesh(Mesh(v_pos=v, t_pos_idx=f))
    assert report.welded_vertices == 2 and report.degenerate_faces == 1
    assert report.components == 1 and len(mesh.t_pos_idx) == 2 and len(mesh.v_pos) == 4


def test_noisy_surface_components_are_found_fast():
    """Marching tets of a random SDF: thousands of small components, found in bounded
    time; the largest is kept."""
    import time

    noisy = noisy_surface(48, 0.9)
    t0 = time.perf_counter()
    mesh, report = clean_mesh(noisy)
    assert time.perf_counter() - t0 < 20
    assert report.components > 500
    assert 0 < report.faces_out < report.faces_in


@pytest.mark.parametrize("device", devices())
def test_faces_inside_are_unseen_and_dropped(device):
    """An inner shell (as an isosurface leaves inside an object) is seen by no view from
    outside: seen_faces marks exactly it, and clean_mesh(keep_faces=...) drops it even
    though it is far above the small-component threshold. (On the GPU this found cracks
    between triangles: fused multiply-adds made a shared edge's two edge functions differ
    in rounding, so some pixel centres on an edge were outside both triangles.)"""
    from nvdrec.geometry import seen_faces
    from nvdrec.structures import camera as cam

    outer = _sphere_surface(radius=0.6)
    inner = _sphere_surface(radius=0.4)
    both = _join(outer, inner)
    views = cam.orbit_views(12, radius=3.0, resolution=(96, 96))
    seen = seen_faces(both.to(device), views.mvp.to(device), (96, 96)).cpu()
    both = both.to("cpu")
    n_out = len(outer.t_pos_idx)
    assert seen[:n_out].all() and not seen[n_out:].any()
    cleaned, report = clean_mesh(both, keep_faces=seen)
    assert report.unseen_faces == len(inner.t_pos_idx)
    alone, _ = clean_mesh(outer)  # the outer shell cleaned by itself (degenerate faces)
    assert cleaned.num_triangles == alone.num_triangles and report.components == 1
    assert "unseen" in report.summary()
    # without the mask the inner shell is a big component and stays
    kept, report = clean_mesh(both)
    assert report.components == 2 and report.dropped_components == 0
