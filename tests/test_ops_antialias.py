import pytest
import torch
from _helpers import clip_positions, sphere
from conftest import devices

from nvdrec import ops

H = W = 32


def _coverage(p2d, device="cpu"):
    pos = torch.cat([p2d, torch.zeros(3, 1, device=device), torch.ones(3, 1, device=device)], -1)[
        None
    ]
    tri = torch.tensor([[0, 1, 2]], dtype=torch.int32, device=device)
    rast, _ = ops.rasterize(pos, tri, (H, W))
    col = (rast[..., 3:4] > 0).float()
    return ops.antialias(col, rast, pos, tri).sum()


def _analytic_area(p2d):
    q = (p2d + 1) * 0.5 * torch.tensor([W, H], dtype=p2d.dtype, device=p2d.device)
    e1, e2 = q[1] - q[0], q[2] - q[0]
    return 0.5 * (e1[0] * e2[1] - e1[1] * e2[0]).abs()


@pytest.mark.parametrize("device", devices())
def test_coverage_gradient_matches_analytic_area(device):
    g = torch.Generator().manual_seed(0)
    tried = 0
    while tried < 8:
        p = (torch.rand(3, 2, generator=g) * 1.6 - 0.8).to(device)
        if _analytic_area(p) < 30:  # tiny triangles are not resolved by 32x32 pixels
            continue
        tried += 1
        p1 = p.clone().requires_grad_()
        cov = _coverage(p1, device)
        (g1,) = torch.autograd.grad(cov, p1)
        p2 = p.clone().requires_grad_()
        (g2,) = torch.autograd.grad(_analytic_area(p2), p2)
        cos = torch.nn.functional.cosine_similarity(g1.flatten(), g2.flatten(), dim=0)
        ratio = g1.norm() / g2.norm()
        assert cos > 0.95 and 0.7 < ratio < 1.3, (p.tolist(), float(cos), float(ratio))
        # the antialiased coverage itself approximates the area
        assert abs(float(cov) - float(_analytic_area(p))) < 0.1 * float(_analytic_area(p)) + 2


def test_interior_edges_are_not_blended():
    # a closed sphere: colour by triangle id; only the outline may change
    v, tri = sphere(8, 16)
    pos = clip_positions(v)
    rast, _ = ops.rasterize(pos, tri, (48, 48))
    color = torch.rand(tri.shape[0] + 1, 3)[rast[..., 3].long()]
    out = ops.antialias(color, rast, pos, tri)
    changed = (out - color).abs().sum(-1) > 0
    m = rast[0, ..., 3] > 0
    interior = m.clone()
    interior[1:-1, 1:-1] = m[1:-1, 1:-1] & m[:-2, 1:-1] & m[2:, 1:-1] & m[1:-1, :-2] & m[1:-1, 2:]
    interior[0] = interior[-1] = False
    interior[:, 0] = interior[:, -1] = False
    assert changed[0].any()
    assert not (changed[0] & interior).any()


def test_topology_hash():
    tri = torch.tensor([[0, 1, 2], [2, 1, 3], [4, 5, 6]], dtype=torch.int32)
    topo = ops.antialias_construct_topology_hash(tri)
    assert topo.neighbor.tolist() == [[-1, 1, -1], [0, -1, -1], [-1, -1, -1]]
    tri3 = torch.tensor([[0, 1, 2], [1, 0, 3], [0, 1, 4]], dtype=torch.int32)
    assert (ops.antialias_construct_topology_hash(tri3).neighbor[:, 0] == -2).all()


def test_gradient_boost_scales_pos_gradient():
    p = torch.tensor([[-0.6, -0.5], [0.7, -0.4], [0.1, 0.7]])
    pos = torch.cat([p, torch.zeros(3, 1), torch.ones(3, 1)], -1)[None].requires_grad_()
    tri = torch.tensor([[0, 1, 2]], dtype=torch.int32)
    rast, _ = ops.rasterize(pos.detach(), tri, (H, W))
    col = (rast[..., 3:4] > 0).float()
    (g1,) = torch.autograd.grad(ops.antialias(col, rast, pos, tri).sum(), pos)
    (g3,) = torch.autograd.grad(
        ops.antialias(col, rast, pos, tri, pos_gradient_boost=3.0).sum(), pos
    )
    assert torch.allclose(g3, 3 * g1) and g1.abs().sum() > 0


def test_gradcheck_reference():
    p = torch.tensor(
        [[-0.61, -0.52, 0.1, 1.0], [0.73, -0.41, 0.2, 1.0], [0.12, 0.69, 0.3, 1.0]],
        dtype=torch.float64,
    )
    tri = torch.tensor([[0, 1, 2]], dtype=torch.int32)
    rast, _ = ops.rasterize(p[None], tri, (8, 8), backend="torch")
    color = torch.rand(1, 8, 8, 2, dtype=torch.float64, requires_grad=True)
    pos = p[None].clone().requires_grad_()

    def f(c, q):
        return ops.antialias(c, rast.detach(), q, tri, backend="torch")

    assert torch.autograd.gradcheck(f, (color, pos), eps=1e-7, atol=1e-5)
