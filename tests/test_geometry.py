import itertools
import math

import pytest
import torch
from conftest import devices

from nvdrec.geometry import DMTetGeometry, bcc_grid, marching_tets, sdf_reg_weight, tet_grid
from nvdrec.geometry.marching_tets import TET_EDGES

REF_TET = torch.tensor([[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]])


def _volumes(v, t):
    p0, p1, p2, p3 = (v[t[:, k]].double() for k in range(4))
    return torch.linalg.det(torch.stack([p1 - p0, p2 - p0, p3 - p0], -1)) / 6


@pytest.mark.parametrize("n", [1, 2, 5])
def test_grid_fills_box_with_positive_conforming_tets(n):
    v, t = bcc_grid(n)
    assert v.min() == -0.5 and v.max() == 0.5
    vol = _volumes(v, t)
    assert vol.min() > 0, "inverted or degenerate tetrahedron"
    assert abs(vol.sum().item() - 1.0) < 1e-9
    # conforming: every triangle is shared by two tets, or lies on the box surface
    f = (
        torch.cat([t[:, [0, 1, 2]], t[:, [0, 1, 3]], t[:, [0, 2, 3]], t[:, [1, 2, 3]]])
        .sort(1)
        .values
    )
    uniq, count = torch.unique(f, dim=0, return_counts=True)
    assert set(count.tolist()) <= {1, 2}
    boundary = v[uniq[count == 1]]  # [Fb, 3 corners, 3]
    on_one_side = ((boundary.abs() - 0.5).abs() < 1e-7).all(1).any(-1)
    assert on_one_side.all()
    # the boundary faces cover the box surface: total area 6
    b = boundary.double()
    area = 0.5 * torch.linalg.cross(b[:, 1] - b[:, 0], b[:, 2] - b[:, 0]).norm(dim=-1).sum()
    assert abs(area.item() - 6.0) < 1e-9
    # well shaped: BCC tets have edge ratio 2/sqrt(3); the boundary pyramid halves
    # (face diagonal vs centre-corner edge) have sqrt(2)/(sqrt(3)/2) = 1.633
    edges = torch.stack([(v[t[:, a]] - v[t[:, b]]).norm(dim=-1) for a, b in TET_EDGES], -1)
    ratio = edges.max(-1).values / edges.min(-1).values
    assert ratio.max() < 1.64
    assert (ratio < 1.16).float().mean() >= {1: 0.0, 2: 0.5, 5: 0.8}[n]


def test_grid_sizes_and_speed():
    import time

    t0 = time.perf_counter()
    v, t = tet_grid(128)
    assert time.perf_counter() - t0 < 5.0
    v64, t64 = tet_grid(64)
    assert len(v64) == 37259 and len(t64) == 210912  # documented in docs/geometry.md
    assert tet_grid(64)[0] is v64  # cached


def test_marching_tets_empty_and_full():
    v, t = bcc_grid(3)
    for sdf in (torch.ones(len(v)), -torch.ones(len(v))):
        r = marching_tets(v, sdf, t)
        assert r.faces.shape == (0, 3) and r.verts.shape == (0, 3)


@pytest.mark.parametrize("signs", list(itertools.product((-1.0, 1.0), repeat=4)))
def test_single_tet_every_sign_pattern(signs):
    tet = torch.tensor([[0, 1, 2, 3]])
    sdf = torch.tensor(signs) * torch.tensor([0.3, 0.5, 0.7, 0.9])
    r = marching_tets(REF_TET, sdf, tet)
    n_in = sum(s < 0 for s in signs)
    expect = {0: 0, 4: 0, 1: 1, 3: 1, 2: 2}[n_in]
    assert len(r.faces) == expect
    if expect == 0:
        return
    # every vertex lies on the zero crossing of a sign-changing edge
    assert len(r.verts) == (3 if expect == 1 else 4)
    # faces point from inside to outside
    inside_c = REF_TET[torch.tensor(signs) < 0].mean(0)
    for f in r.faces:
        a, b, c = r.verts[f]
        n = torch.linalg.cross(b - a, c - a)
        assert torch.dot(n, (a + b + c) / 3 - inside_c) > 0
    # a linear SDF vanishes at the crossings
    lin = sdf  # values at the corners of the reference tet define a linear function
    grad = lin[1:] - lin[0]
    vals = lin[0] + r.verts @ grad
    assert vals.abs().max() < 1e-5


@pytest.mark.parametrize("device", devices())
def test_sphere_is_closed_manifold_with_right_area_and_volume(device):
    v, t = tet_grid(64)
    v, t = (v * 2.1).to(device), t.to(device)
    radius = 0.8
    sdf = v.norm(dim=-1) - radius
    r = marching_tets(v, sdf, t)
    p = r.verts[r.faces].double()
    area = 0.5 * torch.linalg.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0]).norm(dim=-1).sum()
    vol = torch.linalg.det(p).sum() / 6
    assert abs(area.item() / (4 * math.pi * radius**2) - 1) < 0.03
    assert abs(vol.item() / (4 / 3 * math.pi * radius**3) - 1) < 0.03
    e = torch.cat([r.faces[:, [0, 1]], r.faces[:, [1, 2]], r.faces[:, [2, 0]]])
    _, und = torch.unique(e.sort(1).values, dim=0, return_counts=True)
    assert (und == 2).all(), "not watertight / not manifold"
    _, directed = torch.unique(e, dim=0, return_counts=True)
    assert (directed == 1).all(), "inconsistent orientation"


def test_gradients_reach_sdf_and_offsets():
    geo = DMTetGeometry(grid_res=16, scale=2.0)
    with torch.no_grad():
        geo.sdf.copy_(geo.verts.norm(dim=-1) - 0.6)
    mesh = geo.get_mesh()
    assert mesh.v_nrm is not None and mesh.v_tng is not None
    mesh.v_pos.square().sum().backward()
    assert geo.sdf.grad.abs().sum() > 0 and geo.deform.grad.abs().sum() > 0
    # offsets are bounded by nvdiffrec's 1 / grid_res (world units), and never more than
    # half a lattice spacing
    with torch.no_grad():
        geo.deform.fill_(100.0)
    shift = (geo.deformed_verts() - geo.verts).abs().max()
    assert abs(float(shift.detach()) - 1 / 16) < 1e-6
    assert 1 / 16 <= 0.5 * geo.spacing
    small = DMTetGeometry(grid_res=16, scale=0.5)  # a small box: the spacing bound wins
    with torch.no_grad():
        small.deform.fill_(100.0)
    shift = (small.deformed_verts() - small.verts).abs().max()
    assert abs(float(shift.detach()) - 0.5 * small.spacing) < 1e-6


def test_face_ids_stable_and_uvs_inside_unit_square():
    geo = DMTetGeometry(grid_res=12, scale=2.0)
    with torch.no_grad():
        geo.sdf.copy_(geo.verts.norm(dim=-1) - 0.6)
    r1 = geo.extract()
    with torch.no_grad():
        geo.deform.add_(0.01)  # positions move, topology does not
    r2 = geo.extract()
    assert torch.equal(r1.face_ids, r2.face_ids) and torch.equal(r1.faces, r2.faces)
    assert r1.uvs.min() >= 0 and r1.uvs.max() <= 1
    assert len(torch.unique(r1.face_ids)) == len(r1.face_ids)


def test_sdf_regularizer_and_schedule():
    geo = DMTetGeometry(grid_res=8, scale=2.0)
    loss = geo.reg_loss(0, 100, 0.2)
    assert loss > 0
    loss.backward()
    assert geo.sdf.grad.abs().sum() > 0
    assert sdf_reg_weight(0.2, 0, 100) == 0.2
    assert abs(sdf_reg_weight(0.2, 25, 100) - 0.01) < 1e-12
    assert abs(sdf_reg_weight(0.2, 12.5, 100) - 0.105) < 1e-12
    assert sdf_reg_weight(0.2, 90, 100) == pytest.approx(0.01)


@pytest.mark.parametrize("device", devices())
def test_unique_rows_match_the_row_wise_unique(device):
    from nvdrec.geometry.tetgrid import tet_edges
    from nvdrec.ops import unique_rows

    g = torch.Generator().manual_seed(0)
    cases = [
        torch.randint(0, 50, (2000, 2), generator=g),  # one int64 key a row
        torch.randint(0, 2**40, (300, 3), generator=g).repeat(3, 1),  # too wide for a key
        torch.randint(-5, 5, (500, 4), generator=g, dtype=torch.int32),  # negative values
        torch.randint(0, 4, (800, 3), generator=g).float() / 2,  # floats
        torch.tensor([[0.0, 1.0], [-0.0, 1.0], [0.0, 1.0]]),  # -0 and 0 are one row
    ]
    for x in cases:
        x = x.to(device)
        u, inv = unique_rows(x, return_inverse=True)
        ref_u, ref_inv = torch.unique(x, dim=0, return_inverse=True)
        assert torch.equal(u, ref_u) and u.dtype == x.dtype
        assert torch.equal(inv, ref_inv)
        assert torch.equal(unique_rows(x), ref_u)
    empty = torch.zeros(0, 2, dtype=torch.long, device=device)
    u, inv = unique_rows(empty, return_inverse=True)
    assert u.shape == (0, 2) and inv.shape == (0,)
    _, tets = tet_grid(12)
    tets = tets.to(device)
    pairs = torch.tensor([[0, 1], [0, 2], [0, 3], [1, 2], [1, 3], [2, 3]], device=device)
    rows = torch.sort(tets[:, pairs].reshape(-1, 2), dim=1).values
    assert torch.equal(tet_edges(tets), torch.unique(rows, dim=0))
