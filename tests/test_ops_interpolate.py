import pytest
import torch
from _helpers import assert_close, clip_positions, sphere
from conftest import devices

from nvdrec import ops


@pytest.mark.parametrize("device", devices())
def test_interpolating_clip_position_gives_pixel_centres(device):
    v, tri = sphere(8, 16)
    pos = clip_positions(v).to(device)
    tri = tri.to(device)
    rast, rast_db = ops.rasterize(pos, tri, (24, 32))
    out, _ = ops.interpolate(pos[0], rast, tri)
    m = rast[..., 3] > 0
    ndc_x = out[..., 0] / out[..., 3]
    cols = (torch.arange(32, device=device) + 0.5) / 32 * 2 - 1
    assert_close(ndc_x[m], cols.expand(1, 24, 32)[m], atol=1e-4, name="ndc x")
    assert (out[~m] == 0).all()


@pytest.mark.parametrize("device", devices())
def test_attribute_derivatives_match_finite_differences(device):
    v = torch.tensor(
        [[[-0.8, -0.7, 0.1, 1.0], [1.2, -0.9, 0.3, 1.5], [0.1, 1.6, 0.2, 2.0]]], device=device
    )
    tri = torch.tensor([[0, 1, 2]], dtype=torch.int32, device=device)
    attr = torch.tensor([[0.0, 1.0], [2.0, -1.0], [0.5, 3.0]], device=device)
    rast, db = ops.rasterize(v, tri, (32, 32))
    out, da = ops.interpolate(attr, rast, tri, rast_db=db, diff_attrs="all")
    assert da.shape == (1, 32, 32, 4)
    m = rast[0, ..., 3] > 0
    inner = m[1:-1, 1:-1] & m[1:-1, 2:] & m[1:-1, :-2] & m[2:, 1:-1] & m[:-2, 1:-1]
    fd_x = (out[0, 1:-1, 2:, 1] - out[0, 1:-1, :-2, 1]) / 2
    fd_y = (out[0, 2:, 1:-1, 0] - out[0, :-2, 1:-1, 0]) / 2
    assert_close(da[0, 1:-1, 1:-1, 2][inner], fd_x[inner], atol=1e-3, name="dA1/dX")
    assert_close(da[0, 1:-1, 1:-1, 1][inner], fd_y[inner], atol=1e-3, name="dA0/dY")
    _, da1 = ops.interpolate(attr, rast, tri, rast_db=db, diff_attrs=[1])
    assert_close(da1, da[..., 2:4], atol=0)


def test_batched_attributes_and_errors():
    v, tri = sphere(6, 12)
    pos = clip_positions(v).expand(2, -1, -1).contiguous()
    rast, _ = ops.rasterize(pos, tri, (16, 16))
    attr = torch.stack([torch.ones(len(v), 1), 2 * torch.ones(len(v), 1)])
    out, _ = ops.interpolate(attr, rast, tri)
    m = rast[..., 3] > 0
    assert torch.allclose(out[0][m[0]], torch.ones(1)) and torch.allclose(
        out[1][m[1]], torch.full((1,), 2.0)
    )
    with pytest.raises(ValueError, match="batch 3"):
        ops.interpolate(torch.ones(3, len(v), 1), rast, tri)
    with pytest.raises(ValueError, match="rast_db"):
        ops.interpolate(attr, rast, tri, diff_attrs="all")


def test_gradcheck_reference():
    v = torch.tensor(
        [[[-0.7, -0.6, 0.2, 1.0], [0.8, -0.4, 0.1, 1.2], [0.0, 0.9, 0.3, 0.9]]], dtype=torch.float64
    )
    tri = torch.tensor([[0, 1, 2]], dtype=torch.int32)
    rast, db = ops.rasterize(v, tri, (5, 5), backend="torch")
    attr = torch.randn(3, 2, dtype=torch.float64, requires_grad=True)
    ids = rast[..., 3:].clone()
    rast = rast.clone().requires_grad_()
    db = db.clone().requires_grad_()

    def f(a, r, d):
        # keep the triangle ids fixed: only (u, v) are differentiable
        r = torch.cat([r[..., :3], ids], -1)
        return ops.interpolate(a, r, tri, rast_db=d, diff_attrs="all", backend="torch")

    assert torch.autograd.gradcheck(f, (attr, rast, db), eps=1e-6, atol=1e-6)
