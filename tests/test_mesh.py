import math

import torch

from nvdrec.structures import Mesh, auto_normals, compute_tangents


def _tetra():
    v = torch.tensor([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], dtype=torch.float32)
    f = torch.tensor([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]])
    return Mesh(v, f)


def test_auto_normals_area_weighted():
    m = auto_normals(_tetra())
    # vertex 0 touches three unit right triangles facing -x, -y, -z (equal areas)
    torch.testing.assert_close(m.v_nrm[0], -torch.ones(3) / math.sqrt(3))
    # vertex 1: faces -z (area .5), -y (area .5), slanted (area sqrt(3)/2, normal (1,1,1)/sqrt3)
    expect = torch.tensor([0.0, -0.5, -0.5]) + torch.tensor([0.5, 0.5, 0.5])
    torch.testing.assert_close(m.v_nrm[1], torch.nn.functional.normalize(expect, dim=0))
    assert torch.equal(m.t_nrm_idx, m.t_pos_idx)


def test_auto_normals_isolated_vertex_is_finite():
    m = _tetra()
    m = m.with_(v_pos=torch.cat([m.v_pos, torch.zeros(1, 3)]))
    n = auto_normals(m).v_nrm
    assert torch.isfinite(n).all() and n[4].tolist() == [0.0, 1.0, 0.0]


def test_tangents_follow_u_direction():
    # a plane in XZ facing +Y, u along +X (rotated 30 degrees in UV to test generality)
    v = torch.tensor([[0, 0, 0], [1, 0, 0], [1, 0, -1], [0, 0, -1]], dtype=torch.float32)
    f = torch.tensor([[0, 1, 2], [0, 2, 3]])
    m = Mesh(v, f, v_tex=v[:, [0, 2]] * torch.tensor([1.0, -1.0]), t_tex_idx=f.clone())
    m = compute_tangents(auto_normals(m))
    torch.testing.assert_close(m.v_nrm, torch.tensor([[0.0, 1.0, 0.0]]).expand(4, 3))
    torch.testing.assert_close(m.v_tng, torch.tensor([[1.0, 0.0, 0.0]]).expand(4, 3))


def test_aabb_and_to():
    m = _tetra()
    lo, hi = m.aabb()
    assert lo.tolist() == [0, 0, 0] and hi.tolist() == [1, 1, 1]
    assert m.to("cpu").v_pos.device.type == "cpu"
