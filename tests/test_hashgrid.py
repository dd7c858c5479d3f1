import math

import pytest
import torch
from _helpers import assert_close

from nvdrec.ops import HashGridConfig, hashgrid_encode
from nvdrec.ops.hashgrid import init_hashgrid_params
from nvdrec.render import MLPTexture3D

SMALL = HashGridConfig(
    n_levels=4, n_features=2, log2_table_size=10, base_resolution=4, finest_resolution=32
)


def test_default_config_matches_nvdiffrec():
    c = HashGridConfig()
    assert (c.n_levels, c.n_features, c.table_size, c.base_resolution) == (16, 2, 2**19, 16)
    assert c.per_level_scale == pytest.approx(math.exp(math.log(4096 / 16) / 15))
    res = c.level_resolutions()
    assert res[0] == 16 and res[-1] == 4096
    assert c.level_dense()[:5] == [True] * 5 and not any(c.level_dense()[5:])


def test_dense_level_reproduces_stored_features_at_grid_vertices():
    cfg = HashGridConfig(
        n_levels=1, n_features=2, log2_table_size=12, base_resolution=8, finest_resolution=8
    )
    assert cfg.level_dense() == [True]
    params = torch.randn(1, cfg.table_size, 2)
    ijk = torch.stack(torch.meshgrid(*[torch.arange(9)] * 3, indexing="ij"), -1).reshape(-1, 3)
    x = ijk.float() / 8
    out = hashgrid_encode(x, params, cfg, backend="torch")
    idx = ijk[:, 0] + ijk[:, 1] * 9 + ijk[:, 2] * 81
    assert_close(out, params[0, idx], atol=1e-6, name="features at vertices")


def test_trilinear_between_vertices():
    cfg = HashGridConfig(
        n_levels=1, n_features=1, log2_table_size=12, base_resolution=2, finest_resolution=2
    )
    params = torch.zeros(1, cfg.table_size, 1)
    params[0, :27, 0] = torch.arange(27.0)  # value = i + 3 j + 9 k: linear in position
    x = torch.rand(50, 3)
    out = hashgrid_encode(x, params, cfg, backend="torch")[:, 0]
    expect = (x * 2) @ torch.tensor([1.0, 3.0, 9.0])
    assert_close(out, expect, atol=1e-5)


def test_gradcheck_reference():
    # two levels: a dense one (3^3 corners fit 64 entries) and a hashed one
    tiny = HashGridConfig(
        n_levels=2, n_features=2, log2_table_size=6, base_resolution=2, finest_resolution=6
    )
    assert tiny.level_dense() == [True, False]
    torch.manual_seed(0)
    params = (torch.randn(2, 64, 2, dtype=torch.float64) * 0.1).requires_grad_()
    x = (torch.rand(6, 3, dtype=torch.float64) * 0.9 + 0.05).requires_grad_()
    assert torch.autograd.gradcheck(
        lambda p, q: hashgrid_encode(q, p, tiny, backend="torch"), (params, x), eps=1e-6, atol=1e-6
    )


def test_bad_params_shape():
    with pytest.raises(ValueError, match="params must have shape"):
        hashgrid_encode(torch.rand(4, 3), torch.zeros(2, 8, 2), SMALL)


def test_neural_material_fits_a_checker_field():
    torch.manual_seed(0)
    cfg = HashGridConfig(
        n_levels=8, n_features=2, log2_table_size=14, base_resolution=4, finest_resolution=64
    )
    mat = MLPTexture3D(([-1.0] * 3, [1.0] * 3), channels=3, config=cfg, backend="torch")
    opt = torch.optim.Adam(mat.parameters(), lr=0.01)

    def field(p):
        cells = torch.floor((p + 1) * 2).long().sum(-1) % 2  # 4x4x4 checker
        return torch.stack(
            [cells.float(), 1 - cells.float(), torch.full_like(cells, 0.5, dtype=torch.float32)], -1
        )

    g = torch.Generator().manual_seed(1)
    test_pts = torch.rand(2000, 3, generator=g) * 2 - 1
    for _ in range(300):
        p = torch.rand(4096, 3, generator=g) * 2 - 1
        loss = torch.nn.functional.mse_loss(mat.sample(p), field(p))
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        err = (mat.sample(test_pts) - field(test_pts)).abs()
    # points right at checker boundaries are ambiguous; most points must be right
    assert err.mean() < 0.08, float(err.mean())
    assert (err.max(-1).values < 0.25).float().mean() > 0.9


def test_output_range_and_split():
    lo = [0.0, 0, 0, 0, 0.08, 0, -1, -1, 0]
    hi = [1.0, 1, 1, 1, 1, 1, 1, 1, 1]
    mat = MLPTexture3D(([-1.0] * 3, [1.0] * 3), min_max=(lo, hi), config=SMALL, backend="torch")
    out = mat.sample(torch.rand(2, 5, 3))
    assert out.shape == (2, 5, 9)
    kd, ks, n = MLPTexture3D.split(out)
    assert (ks[..., 1] >= 0.08).all() and (n[..., 2] >= 0).all() and (kd <= 1).all()


@pytest.mark.cuda
def test_cuda_matches_reference():
    cfg = HashGridConfig()
    g = torch.Generator().manual_seed(0)
    params = init_hashgrid_params(cfg, g).mul_(1e3).cuda()
    x = torch.rand(20000, 3, generator=g).cuda()
    p1, p2 = params.clone().requires_grad_(), params.clone().requires_grad_()
    o1 = hashgrid_encode(x, p1, cfg, backend="torch")
    o2 = hashgrid_encode(x, p2, cfg, backend="cuda")
    assert_close(o2, o1, atol=1e-5, rtol=1e-5, name="hashgrid fwd")
    go = torch.randn_like(o1)
    (o1 * go).sum().backward()
    (o2 * go).sum().backward()
    err = float((p2.grad - p1.grad).norm() / p1.grad.norm())
    assert err < 1e-5, err


@pytest.mark.cuda
@pytest.mark.parametrize("features", [1, 2, 4])
def test_cuda_backward_render_like_points(features):
    """Points as a renderer produces them: image rows of neighbouring surface points
    (warps share cells on the dense levels, where the kernel sums per run of lanes) and
    background pixels, all at one point with zero upstream gradient (skipped). The
    gradient must equal the torch reference's."""
    cfg = HashGridConfig(n_features=features, log2_table_size=15)
    assert any(cfg.level_dense()) and not all(cfg.level_dense())
    g = torch.Generator().manual_seed(features)
    params = init_hashgrid_params(cfg, g).mul_(1e3).cuda()
    h, w = 64, 96
    v, u = torch.meshgrid(torch.linspace(0.2, 0.8, h), torch.linspace(0.1, 0.9, w), indexing="ij")
    x = torch.stack([u, v, 0.5 + 0.2 * torch.sin(6 * u) * v], -1)
    background = torch.rand(h, w, generator=g) < 0.5
    x[background] = 0.5  # every background pixel at the same point
    x = x.reshape(-1, 3).cuda()
    p1, p2 = params.clone().requires_grad_(), params.clone().requires_grad_()
    o1 = hashgrid_encode(x, p1, cfg, backend="torch")
    o2 = hashgrid_encode(x, p2, cfg, backend="cuda")
    go = torch.randn(o1.shape, generator=g).cuda() * (~background).reshape(-1, 1).cuda()
    (o1 * go).sum().backward()
    (o2 * go).sum().backward()
    err = float((p2.grad - p1.grad).norm() / p1.grad.norm())
    assert err < 1e-5, err


@pytest.mark.cuda
def test_fp16_mlp_gradients_match_fp32():
    """The CUDA MLP runs in float16 with loss scaling; gradients must equal fp32's."""
    torch.manual_seed(0)
    mat = MLPTexture3D(([0.0] * 3, [1.0] * 3), config=SMALL).cuda()
    enc = torch.randn(4096, SMALL.output_dim, device="cuda") * 0.1
    e1, e2 = enc.clone().requires_grad_(), enc.clone().requires_grad_()
    go = torch.randn(4096, 9, device="cuda") * 1e-6  # tiny, as per-pixel losses are
    (mat.mlp(e1) * go).sum().backward()
    g_half = [p.grad.clone() for p in mat.net.parameters()]
    mat.zero_grad()
    (mat.net(e2) * go).sum().backward()
    for a, b in zip(g_half, mat.net.parameters()):
        assert float((a - b.grad).norm() / b.grad.norm()) < 2e-2
    assert float((e1.grad - e2.grad).norm() / e2.grad.norm()) < 2e-2


def test_material_gradient_reaches_the_points():
    """The neural material passes gradients to the surface points it is sampled at (so
    the image loss's material term also moves the geometry, as in nvdiffrec); points
    outside the box get none (clamped)."""
    mat = MLPTexture3D(([-1.0] * 3, [1.0] * 3), config=SMALL, backend="torch")
    with torch.no_grad():
        mat.table.normal_(0, 0.1)
    pts = torch.tensor([[0.1, -0.2, 0.3], [0.5, 0.5, -0.5], [3.0, 0.0, 0.0]], requires_grad=True)
    mat.sample(pts).sum().backward()
    assert pts.grad[:2].abs().sum() > 0
    assert (pts.grad[2, 0] == 0).all()


@pytest.mark.cuda
@pytest.mark.parametrize("features", [1, 2, 4])
def test_cuda_point_gradient_matches_reference(features):
    """d features / d points of the CUDA kernel against the torch reference's autograd,
    for points inside the box and some outside (clamped: zero gradient on that axis)."""
    cfg = HashGridConfig(n_features=features, log2_table_size=15)
    g = torch.Generator().manual_seed(10 + features)
    params = (init_hashgrid_params(cfg, g).mul_(1e3)).cuda()
    x = torch.rand(5000, 3, generator=g) * 1.2 - 0.1  # ~25% have an axis outside [0, 1]
    x1, x2 = x.clone().cuda().requires_grad_(), x.clone().cuda().requires_grad_()
    o1 = hashgrid_encode(x1, params, cfg, backend="torch")
    o2 = hashgrid_encode(x2, params, cfg, backend="cuda")
    go = torch.randn(o1.shape, generator=g).cuda()
    (o1 * go).sum().backward()
    (o2 * go).sum().backward()
    err = float((x2.grad - x1.grad).norm() / x1.grad.norm())
    assert err < 1e-5, err
    outside = (x < 0) | (x > 1)
    assert (x2.grad.cpu()[outside] == 0).all()


def test_no_points_gives_empty_features():
    """A batch in which the surface covers no pixel samples no point: [0, 3] -> [0, F]."""
    cfg = HashGridConfig(log2_table_size=10)
    params = init_hashgrid_params(cfg, torch.Generator().manual_seed(0))
    x = torch.zeros(0, 3, requires_grad=True)
    out = hashgrid_encode(x, params, cfg)
    assert out.shape == (0, cfg.n_levels * cfg.n_features)
    mat = MLPTexture3D(([-1.0] * 3, [1.0] * 3), channels=9, config=cfg, backend="torch")
    assert mat.sample(torch.zeros(0, 3)).shape == (0, 9)
