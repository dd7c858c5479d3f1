"""CUDA kernels against the torch reference (run on a GPU machine with ``pytest -m cuda``)."""

import pytest
import torch
from _helpers import assert_close, clip_positions, sphere

from nvdrec import ops

pytestmark = pytest.mark.cuda

VALUE_ATOL = 1e-5  # barycentrics / depth / colours are O(1)
GRAD_REL = 1e-3  # relative norm error of gradients (float32 atomics sum in any order)


def _scenes(shared_data_dir=None):
    v, tri = sphere(24, 48)
    yield "sphere", clip_positions(v, eye=(0.3, 0.8, 2.6)), tri
    g = torch.Generator().manual_seed(0)
    verts = torch.rand(300, 3, generator=g) * 2 - 1
    tris = torch.randint(0, 300, (400, 3), generator=g, dtype=torch.int32)
    yield "random", clip_positions(verts, eye=(0.0, 0.0, 3.5)), tris


def _bob(shared):
    from nvdrec.io import load_mesh

    m = load_mesh(shared / "meshes/bob/bob_tri.obj")
    return clip_positions(m.v_pos, eye=(0.5, 1.0, 2.5)), m.t_pos_idx.int(), m


def _all_scenes(shared):
    scenes = list(_scenes())
    if shared is not None:
        p, t, _ = _bob(shared)
        scenes.append(("bob", p, t))
    return scenes


@pytest.fixture
def shared_or_none(request):
    try:
        return request.getfixturevalue("shared_data")
    except pytest.skip.Exception:
        return None


def _rel_err(a, b):
    return float((a - b).norm() / b.norm().clamp(min=1e-12))


def _stable_mask(ids):
    """Pixels whose 3x3 neighbourhood shows one triangle: away from edges."""
    pad = torch.nn.functional.pad(ids[:, None].float(), (1, 1, 1, 1), mode="replicate")[:, 0]
    same = torch.ones_like(ids, dtype=torch.bool)
    h, w = ids.shape[1:]
    for dy in range(3):
        for dx in range(3):
            same &= pad[:, dy : dy + h, dx : dx + w] == ids
    return same


def test_kernels_build_and_format_errors():
    from nvdrec.native.build import load

    ext = load()
    with pytest.raises(RuntimeError, match="value 1.5 is not negative"):
        ext.check_error_formatting(1.5)


@pytest.mark.parametrize("res", [(64, 96), (256, 256)])
def test_rasterize_matches_reference(shared_or_none, res):
    for name, pos, tri in _all_scenes(shared_or_none):
        pos = pos.expand(2, -1, -1).contiguous().cuda()
        pos[1, :, 0] += 0.1  # two different images
        tri = tri.cuda()
        r_t, db_t = ops.rasterize(pos, tri, res, backend="torch")
        r_c, db_c = ops.rasterize(pos, tri, res, backend="cuda")
        ids_t, ids_c = r_t[..., 3], r_c[..., 3]
        stable = _stable_mask(ids_t)
        assert torch.equal(ids_t[stable], ids_c[stable]), name
        mismatch = float((ids_t != ids_c).float().mean())
        assert mismatch < 2e-3, f"{name}: {mismatch:.4%} of pixels differ in triangle id"
        same = (ids_t == ids_c) & (ids_t > 0)
        # both float32 backends against the float64 reference: the CUDA kernel may not be
        # less accurate than the float32 torch reference (a few 1e-5 on O(1) values)
        r_64, db_64 = ops.rasterize(pos.double(), tri, res, backend="torch")
        same &= r_64[..., 3] == ids_t
        e_t = (r_t[..., :3] - r_64[..., :3])[same].abs().flatten()
        e_c = (r_c[..., :3] - r_64[..., :3])[same].abs().flatten()
        q_t, q_c = torch.quantile(e_t, 0.999), torch.quantile(e_c, 0.999)
        msg = (
            f"{name}: cuda err max {e_c.max():.2e} p99.9 {q_c:.2e}; "
            f"torch max {e_t.max():.2e} p99.9 {q_t:.2e}"
        )
        # ill-conditioned (grazing) triangles lose a few 1e-5 in float32 either way
        assert q_c <= max(2 * q_t, VALUE_ATOL) and e_c.max() <= 1e-4, msg
        scale = db_64.abs().max()
        errd_t = (db_t - db_64)[same].abs().max() / scale
        errd_c = (db_c - db_64)[same].abs().max() / scale
        assert errd_c <= max(2 * errd_t, 1e-5), (
            f"{name}: rast_db cuda {errd_c:.2e} torch {errd_t:.2e}"
        )
        # backward with a random cotangent on pixels both agree on
        p1 = pos.clone().requires_grad_()
        p2 = pos.clone().requires_grad_()
        gr = torch.randn_like(r_t) * same[..., None]
        gd = torch.randn_like(db_t) * same[..., None]
        r1, d1 = ops.rasterize(p1, tri, res, backend="torch")
        ((r1 * gr).sum() + (d1 * gd).sum()).backward()
        r2, d2 = ops.rasterize(p2, tri, res, backend="cuda")
        ((r2 * gr).sum() + (d2 * gd).sum()).backward()
        assert _rel_err(p2.grad, p1.grad) < GRAD_REL, name


def test_rasterize_range_mode_and_peeling_match():
    v, tri = sphere(12, 24)
    pos = clip_positions(v)[0].cuda()
    tri = tri.cuda()
    half = tri.shape[0] // 2
    ranges = torch.tensor([[0, half], [half, tri.shape[0] - half]], dtype=torch.int32)
    a, _ = ops.rasterize(pos, tri, (64, 64), ranges=ranges, backend="torch")
    b, _ = ops.rasterize(pos, tri, (64, 64), ranges=ranges, backend="cuda")
    assert float((a[..., 3] != b[..., 3]).float().mean()) < 2e-3
    layers = {}
    for backend in ("torch", "cuda"):
        with ops.DepthPeeler(pos[None], tri, (64, 64), backend=backend) as peeler:
            layers[backend] = [peeler.rasterize_next_layer()[0] for _ in range(3)]
    for lt, lc in zip(layers["torch"], layers["cuda"]):
        assert float((lt[..., 3] != lc[..., 3]).float().mean()) < 2e-3


def test_interpolate_matches_reference(shared_or_none):
    for name, pos, tri in _all_scenes(shared_or_none):
        pos, tri = pos.cuda(), tri.cuda()
        rast, db = ops.rasterize(pos, tri, (128, 128), backend="torch")
        attr = torch.randn(pos.shape[1], 5, device="cuda")
        for diff in (None, "all", [1, 3]):
            a1 = attr.clone().requires_grad_()
            r1, d1 = rast.clone().requires_grad_(), db.clone().requires_grad_()
            a2 = attr.clone().requires_grad_()
            r2, d2 = rast.clone().requires_grad_(), db.clone().requires_grad_()
            o1, da1 = ops.interpolate(a1, r1, tri, rast_db=d1, diff_attrs=diff, backend="torch")
            o2, da2 = ops.interpolate(a2, r2, tri, rast_db=d2, diff_attrs=diff, backend="cuda")
            assert_close(o2, o1, atol=VALUE_ATOL, name=f"{name} interpolate")
            go = torch.randn_like(o1)
            loss1, loss2 = (o1 * go).sum(), (o2 * go).sum()
            if diff is not None:
                # pixel derivatives reach O(100) on grazing triangles: float32 rounding is relative
                assert_close(da2, da1, atol=VALUE_ATOL, rtol=1e-6, name=f"{name} out_da")
                gda = torch.randn_like(da1)
                loss1, loss2 = loss1 + (da1 * gda).sum(), loss2 + (da2 * gda).sum()
            loss1.backward()
            loss2.backward()
            assert _rel_err(a2.grad, a1.grad) < GRAD_REL
            assert _rel_err(r2.grad[..., :2], r1.grad[..., :2]) < GRAD_REL
            if diff is not None:
                assert _rel_err(d2.grad, d1.grad) < GRAD_REL


@pytest.mark.parametrize(
    "mode", ["nearest", "linear", "linear-mipmap-nearest", "linear-mipmap-linear"]
)
@pytest.mark.parametrize("boundary", ["wrap", "clamp", "zero", "cube"])
def test_texture_matches_reference(mode, boundary):
    g = torch.Generator().manual_seed(3)
    cube = boundary == "cube"
    tex = (
        torch.rand(6 if cube else 2, 32, 32, 3, generator=g)
        if cube
        else torch.rand(2, 32, 48, 3, generator=g)
    )
    if cube:
        tex = tex[None].expand(2, -1, -1, -1, -1).contiguous()
        uv = torch.nn.functional.normalize(torch.randn(2, 24, 24, 3, generator=g), dim=-1)
        da = torch.randn(2, 24, 24, 6, generator=g) * 0.05
    else:
        uv = torch.rand(2, 24, 24, 2, generator=g) * 1.4 - 0.2
        da = torch.randn(2, 24, 24, 4, generator=g) * 0.05
    bias = torch.rand(2, 24, 24, generator=g) * 2 - 0.5
    args = [t.cuda() for t in (tex, uv, da, bias)]
    for use_da, use_bias in ((False, False), (True, False), (False, True), (True, True)):
        res = {}
        for backend in ("torch", "cuda"):
            t_, u_, d_, b_ = (a.clone().requires_grad_() for a in args)
            out = ops.texture(
                t_,
                u_,
                uv_da=d_ if use_da else None,
                mip_level_bias=b_ if use_bias else None,
                filter_mode=mode,
                boundary_mode=boundary,
                backend=backend,
            )
            go = torch.ones_like(out) * torch.linspace(0.5, 1.5, out.shape[-1], device="cuda")
            (out * go).sum().backward()
            res[backend] = (out, t_.grad, u_.grad, d_.grad, b_.grad)
        (o1, gt1, gu1, gd1, gb1), (o2, gt2, gu2, gd2, gb2) = res["torch"], res["cuda"]
        tag = f"{mode} {boundary} da={use_da} bias={use_bias}"
        assert_close(o2, o1, atol=VALUE_ATOL, name=tag)
        assert _rel_err(gt2, gt1) < GRAD_REL, tag
        if mode != "nearest":
            # exclude pixels sitting exactly on a texel-centre kink (measure zero)
            assert _rel_err(gu2, gu1) < 1e-2, tag
        if use_da and mode == "linear-mipmap-linear":
            assert _rel_err(gd2, gd1) < 1e-2, tag
        if use_bias and mode == "linear-mipmap-linear":
            assert _rel_err(gb2, gb1) < 1e-2, tag


def test_antialias_matches_reference(shared_or_none):
    for name, pos, tri in _all_scenes(shared_or_none):
        pos, tri = pos.cuda(), tri.cuda()
        rast, _ = ops.rasterize(pos, tri, (128, 128), backend="torch")
        color = torch.rand(1, 128, 128, 3, device="cuda") * (rast[..., 3:] > 0)
        topo = ops.antialias_construct_topology_hash(tri)
        res = {}
        for backend in ("torch", "cuda"):
            c_ = color.clone().requires_grad_()
            p_ = pos.clone().requires_grad_()
            out = ops.antialias(c_, rast, p_, tri, topology_hash=topo, backend=backend)
            go = torch.randn(out.shape, generator=torch.Generator().manual_seed(1)).cuda()
            (out * go).sum().backward()
            res[backend] = (out, c_.grad, p_.grad)
        (o1, gc1, gp1), (o2, gc2, gp2) = res["torch"], res["cuda"]
        assert_close(o2, o1, atol=1e-4, name=f"{name} antialias")
        assert _rel_err(gc2, gc1) < GRAD_REL, name
        assert _rel_err(gp2, gp1) < 1e-2, name


def test_antialias_area_gradient_on_cuda():
    from test_ops_antialias import _analytic_area, _coverage

    p = torch.tensor([[-0.6, -0.5], [0.7, -0.4], [0.1, 0.7]], device="cuda", requires_grad=True)
    (g1,) = torch.autograd.grad(_coverage(p, "cuda"), p)
    (g2,) = torch.autograd.grad(_analytic_area(p), p)
    cos = torch.nn.functional.cosine_similarity(g1.flatten(), g2.flatten(), dim=0)
    assert cos > 0.95 and 0.7 < float(g1.norm() / g2.norm()) < 1.3


def test_auto_backend_uses_cuda_for_cuda_tensors():
    from nvdrec.ops import pick_backend

    assert pick_backend("auto", torch.zeros(1, device="cuda")) == "cuda"
    assert pick_backend("auto", torch.zeros(1)) == "torch"


@pytest.mark.parametrize("size", [(37, 20), (64, 64), (1, 9)])
def test_texture_mip_chain_kernel_matches_reference(size):
    """Our mip-building kernels (odd sizes use area windows) against the torch chain."""
    g = torch.Generator().manual_seed(5)
    tex = torch.rand(2, *size, 3, generator=g).cuda()
    uv = torch.rand(2, 16, 16, 2, generator=g).cuda()
    bias = (torch.rand(2, 16, 16, generator=g) * 6).cuda()
    res = {}
    for backend in ("torch", "cuda"):
        t_ = tex.clone().requires_grad_()
        out = ops.texture(
            t_, uv, mip_level_bias=bias, filter_mode="linear-mipmap-linear", backend=backend
        )
        (out * torch.linspace(0.5, 1.5, 3, device="cuda")).sum().backward()
        res[backend] = (out, t_.grad)
    assert_close(res["cuda"][0], res["torch"][0], atol=VALUE_ATOL, name=f"mip chain {size}")
    assert _rel_err(res["cuda"][1], res["torch"][1]) < GRAD_REL
