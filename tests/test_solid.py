"""Clean solids: enclosed empty space filled before the final extraction, small parts
kept when the masks confirm them, and the hidden-face metric."""

import pytest
import torch
from _helpers import sphere

from nvdrec.geometry import (
    DMTetGeometry,
    FlexiCubesGeometry,
    clean_mesh,
    enclosed_outside,
    fill_cavities,
    hidden_faces,
)
from nvdrec.geometry.cavities import box_boundary
from nvdrec.structures import Mesh


def _shell(geo, inner=0.3, outer=0.8):
    """A solid ball of radius ``outer`` with an empty ball of radius ``inner`` inside."""
    with torch.no_grad():
        r = geo.verts.norm(dim=-1)
        geo.sdf.copy_(torch.maximum(r - outer, inner - r))
    return geo


def _training_mesh(geo):
    return geo.get_mesh() if isinstance(geo, DMTetGeometry) else geo.get_mesh(training=False)


@pytest.mark.parametrize("iso", [DMTetGeometry, FlexiCubesGeometry])
def test_cavity_filled_outer_surface_unchanged(iso):
    geo = _shell(iso(16, 2.0))
    raw = _training_mesh(geo)
    assert float(raw.v_pos.detach().norm(dim=-1).min()) < 0.4  # the inner bubble is there
    filled = geo.final_mesh()
    assert geo.filled_vertices > 0
    assert float(filled.v_pos.detach().norm(dim=-1).min()) > 0.7  # only the outer surface is left
    # the same mesh as a solid ball's: the outer surface did not move
    ball = iso(16, 2.0)
    with torch.no_grad():
        ball.sdf.copy_(ball.verts.norm(dim=-1) - 0.8)
    ref = _training_mesh(ball)
    assert filled.num_triangles == ref.num_triangles
    a = torch.sort(filled.v_pos.detach().reshape(-1)).values
    b = torch.sort(ref.v_pos.detach().reshape(-1)).values
    torch.testing.assert_close(a, b)
    # fill=False gives the training surface back
    assert geo.final_mesh(fill=False).num_triangles == raw.num_triangles


def test_enclosed_outside_on_a_chain():
    # 0 - 1 - 2 - 3 - 4 in a line, boundary at both ends; 2 is outside between insides
    sdf = torch.tensor([1.0, -1.0, 1.0, -1.0, 1.0])
    edges = torch.tensor([[0, 1], [1, 2], [2, 3], [3, 4]])
    boundary = torch.tensor([True, False, False, False, True])
    assert enclosed_outside(sdf, edges, boundary).tolist() == [False, False, True, False, False]
    out, n = fill_cavities(sdf, edges, boundary)
    assert n == 1 and out.tolist() == [1.0, -1.0, -1.0, -1.0, 1.0]
    # a path of outside vertices to the boundary: nothing is enclosed
    sdf2 = torch.tensor([1.0, 1.0, 1.0, -1.0, 1.0])
    assert not enclosed_outside(sdf2, edges, boundary).any()
    # no outside vertex on the boundary: no exterior, nothing filled
    sdf3 = torch.tensor([-1.0, -1.0, 1.0, -1.0, -1.0])
    assert fill_cavities(sdf3, edges, boundary)[1] == 0


def test_box_boundary_of_a_tet_grid():
    geo = DMTetGeometry(8, 2.0)
    b = box_boundary(geo.verts)
    on_face = (geo.verts.abs() >= geo.verts.abs().max() - 1e-6).any(-1)
    assert torch.equal(b, on_face) and 0 < int(b.sum()) < len(b)


def _two_balls():
    v1, f1 = sphere(8, 16, radius=0.5)
    v2, f2 = sphere(4, 8, radius=0.05)
    v2 = v2 + torch.tensor([0.9, 0.0, 0.0])
    return Mesh(torch.cat([v1, v2]), torch.cat([f1, f2 + len(v1)]).long())


def test_small_components_kept_when_confirmed():
    mesh = _two_balls()
    out, rep = clean_mesh(mesh, min_component=0.05)  # by size alone: the small ball goes
    assert rep.dropped_components == 1 and rep.confirmed_components == 0
    out, rep = clean_mesh(mesh, min_component=0.05, confirm=lambda p: p[:, 0] > 0.8)
    assert rep.dropped_components == 0 and rep.confirmed_components == 1
    assert out.num_triangles == mesh.num_triangles
    # the confirmation is for small components only: the large one never needs it
    out, rep = clean_mesh(mesh, min_component=0.05, confirm=lambda p: p[:, 0] < -5)
    assert rep.dropped_components == 1 and out.num_triangles > 0


def test_hidden_faces_find_an_inner_shell():
    v1, f1 = sphere(10, 20, radius=0.8)
    v2, f2 = sphere(6, 12, radius=0.3)
    nested = Mesh(torch.cat([v1, v2]), torch.cat([f1, f2 + len(v1)]).long())
    hidden, interior = hidden_faces(nested, views=32, resolution=128)
    assert interior == 1
    assert torch.equal(hidden, torch.arange(nested.num_triangles) >= len(f1))
    hidden, interior = hidden_faces(Mesh(v1, f1.long()), views=32, resolution=128)
    assert interior == 0 and not hidden.any()


def test_pocket_behind_a_narrow_passage():
    """A cavity joined to the outside by a tunnel one grid step wide: open for the plain
    flood fill, enclosed with passage 1; a convex solid loses nothing either way."""
    geo = DMTetGeometry(48, 2.0)
    v = geo.verts
    r = v.norm(dim=-1)
    tunnel = (v[:, 0] > 0) & (v[:, 1:].norm(dim=-1) < 0.4 * geo.spacing)
    sdf = torch.maximum(r - 0.8, 0.4 - r)
    sdf = torch.where(tunnel, sdf.abs(), sdf)
    b = box_boundary(v)
    assert int(enclosed_outside(sdf, geo.edges, b, passage=0).sum()) == 0
    pocket = enclosed_outside(sdf, geo.edges, b, passage=1)
    assert bool(pocket[(r < 0.4 - geo.spacing)].all())  # the whole inner cavity
    assert not pocket[r > 0.8 + geo.spacing].any()  # nothing outside the ball
    ball = r - 0.8
    for k in (1, 2):
        assert int(enclosed_outside(ball, geo.edges, b, passage=k).sum()) == 0
