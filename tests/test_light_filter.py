"""The light filter as a sparse operator (CPU: against the texture-op reference; CUDA:
our gather kernel against the torch path) and the fused image loss kernel."""

import pytest
import torch
from _helpers import assert_close

from nvdrec.ops import build_mips, cubefilter, cubemap
from nvdrec.ops.loss import LOSSES, image_loss
from nvdrec.render import EnvironmentLight


def _reference(chain, lgt):
    """The torch reference filter (texture op + dense irradiance) on a box chain: what
    ``EnvironmentLight(backend="torch").build_mips`` computes, in the chain's dtype."""
    rough, counts = lgt.filter_plan()
    spec = [cubemap.specular_prefilter(chain, k, rough[k], counts[k]) for k in range(len(chain))]
    return spec + [cubemap.diffuse_irradiance(chain[-1])]


def _operator_for(lgt):
    rough, counts = lgt.filter_plan()
    op = cubefilter.cube_filter_operator(lgt.base.shape[1], rough, counts, str(lgt.base.device))
    return op, len(rough)


@pytest.mark.parametrize("res", [16, 32, 64])
def test_operator_equals_reference_forward_and_backward(res):
    # float64 on both sides: the float32 weights are the only rounding, so the comparison
    # does not depend on the summation order of the machine's or torch's kernels
    base = torch.rand(6, res, res, 3, generator=torch.Generator().manual_seed(res)) * 3
    lgt = EnvironmentLight(base.clone())
    op, n = _operator_for(lgt)
    assert op.shape[1] == sum(6 * (res >> k) ** 2 for k in range(n))
    x = base.double().requires_grad_()
    x_ref = base.double().requires_grad_()
    chain = [c[0] for c in build_mips(x[None], max_mip_level=n - 1, cube=True)]
    chain_ref = [c[0] for c in build_mips(x_ref[None], max_mip_level=n - 1, cube=True)]
    out = cubefilter.apply_cube_filter(op, chain)
    ref = _reference(chain_ref, lgt)
    assert len(out) == len(ref) == n + 1
    # forward: same values as the texture-op reference
    for a, b in zip(out, ref):
        assert a.dtype == torch.float64
        assert_close(a, b, atol=2e-6, name="filtered level")
    # backward: the stored transpose gives the reference's gradient
    weights = [torch.randn_like(o) for o in out]
    sum((o * w).sum() for o, w in zip(out, weights)).backward()
    sum((o * w).sum() for o, w in zip(ref, weights)).backward()
    assert_close(x.grad, x_ref.grad, atol=1e-5, name="grad base")


def test_operator_float32_path_matches_the_reference_build():
    """The production path (float32, as EnvironmentLight.build_mips runs it on the CPU)
    gives the torch backend's levels to float32 precision."""
    lgt = EnvironmentLight.random(32)
    ref = EnvironmentLight(lgt.base.detach().clone(), samples=lgt.samples, backend="torch")
    ref.build_mips()
    lgt.build_mips()
    for a, b in zip(lgt.specular + [lgt.diffuse], ref.specular + [ref.diffuse]):
        assert a.dtype == b.dtype == torch.float32
        assert_close(a, b, atol=0.0, rtol=1e-5, name="float32 level")


def test_operator_transpose_is_consistent():
    lgt = EnvironmentLight.random(32)
    op, _ = _operator_for(lgt)
    m, k = op.shape
    dense = torch.zeros(m, k)
    rows = torch.repeat_interleave(torch.arange(m), (op.row_ptr[1:] - op.row_ptr[:-1]).long())
    dense[rows, op.col.long()] = op.val
    dense_t = torch.zeros(k, m)
    rows_t = torch.repeat_interleave(torch.arange(k), (op.t_row_ptr[1:] - op.t_row_ptr[:-1]).long())
    dense_t[rows_t, op.t_col.long()] = op.t_val
    assert torch.equal(dense.T, dense_t)
    # every output texel is a weighted average (rows sum to 1): constants stay constant
    assert_close(dense.sum(1), torch.ones(m), atol=1e-5)


def test_operator_rejects_wrong_chain():
    lgt = EnvironmentLight.random(32)
    op, _ = _operator_for(lgt)
    with pytest.raises(ValueError, match="chain sizes"):
        cubefilter.apply_cube_filter(op, [torch.zeros(6, 16, 16, 3)])


def test_image_loss_checks():
    with pytest.raises(ValueError, match="differ"):
        image_loss(torch.zeros(2, 3), torch.zeros(3, 2))


# ------------------------------------------------------------------ CUDA
@pytest.mark.cuda
@pytest.mark.parametrize("res", [32, 70, 128])
def test_light_filter_cuda_matches_torch(res):
    base = torch.rand(6, res, res, 3, generator=torch.Generator().manual_seed(3)) * 4
    cu = EnvironmentLight(base.clone().cuda(), backend="cuda")
    # 32, 128: chain built by our mip kernels on stacked faces; 70 -> 35 -> 17: odd sizes,
    # the torch chain + operator path
    op, _ = _operator_for(cu)
    assert cubefilter._stackable(op.in_sizes) == (res != 70)
    cu.build_mips()
    ref = EnvironmentLight(base.clone(), backend="torch")  # the CPU torch path
    ref.build_mips()
    for a, b in zip(cu.specular + [cu.diffuse], ref.specular + [ref.diffuse]):
        assert_close(a.cpu(), b, atol=1e-5, rtol=1e-5, name="filtered level")
    weights = [
        torch.randn(o.shape, generator=torch.Generator().manual_seed(7)) for o in ref.specular
    ]
    weights.append(torch.randn(ref.diffuse.shape))
    sum((o * w.cuda()).sum() for o, w in zip(cu.specular + [cu.diffuse], weights)).backward()
    sum((o * w).sum() for o, w in zip(ref.specular + [ref.diffuse], weights)).backward()
    assert_close(cu.base.grad.cpu(), ref.base.grad, atol=1e-4, rtol=1e-4, name="grad base")


def _random_csr(seed, m=1000, k=700, channels=3, long_rows=()):
    g = torch.Generator().manual_seed(seed)
    counts = torch.randint(0, 40, (m,), generator=g)
    counts[5] = 0  # empty rows give zeros
    for r, n in long_rows:
        counts[r] = n
    rows = torch.repeat_interleave(torch.arange(m), counts)
    cols = torch.randint(0, k, (len(rows),), generator=g)
    vals = torch.randn(len(rows), generator=g)
    row_ptr = torch.cat([torch.zeros(1, dtype=torch.long), counts.cumsum(0)]).int()
    return row_ptr, cols.int(), vals, torch.randn(k, channels, generator=g)


LONG_ROWS = ((0, 1000), (7, 257), (8, 256), (999, 3000))  # split / boundary / last row


def test_split_rows_tables():
    """The segment tables tile every row exactly: summing segment products per output row
    (as the CUDA kernels do) gives the plain CSR product."""
    row_ptr, cols, vals, x = _random_csr(0, long_rows=LONG_ROWS)
    seg_ptr, seg_out, multi_ptr, multi_rows, slots = cubefilter._split_rows(row_ptr, 256)
    lens = (seg_ptr[1:] - seg_ptr[:-1]).long()
    assert int(lens.max()) <= 256 and int(seg_ptr[-1]) == len(cols)
    assert sorted(multi_rows.tolist()) == [0, 7, 999]
    assert slots == int(multi_ptr[-1]) == 4 + 2 + 12
    contrib = vals[:, None] * x[cols.long()]
    seg_sums = torch.stack(
        [contrib[a:b].sum(0) for a, b in zip(seg_ptr[:-1].tolist(), seg_ptr[1:].tolist())]
    )
    y = torch.full((len(row_ptr) - 1, x.shape[1]), float("nan"))
    direct = seg_out >= 0
    y[seg_out[direct].long()] = seg_sums[direct]
    partial = torch.zeros(slots, x.shape[1])
    partial[(-1 - seg_out[~direct]).long()] = seg_sums[~direct]
    for i, r in enumerate(multi_rows.tolist()):
        y[r] = partial[multi_ptr[i] : multi_ptr[i + 1]].sum(0)
    assert_close(y, cubefilter._spmm(row_ptr, cols, vals, x), atol=1e-4, name="segmented product")


@pytest.mark.cuda
@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_csr_gather_kernel_matches_torch(channels):
    row_ptr, cols, vals, x = _random_csr(channels, channels=channels, long_rows=LONG_ROWS)
    ref = cubefilter._spmm(row_ptr, cols, vals, x)
    plain = cubefilter._spmm(row_ptr.cuda(), cols.cuda(), vals.cuda(), x.cuda())
    seg = cubefilter._split_rows(row_ptr.cuda())
    split = cubefilter._spmm(row_ptr.cuda(), cols.cuda(), vals.cuda(), x.cuda(), seg)
    for got, tag in ((plain, "csr gather"), (split, "segmented csr gather")):
        assert_close(got.cpu(), ref, atol=1e-4, rtol=1e-5, name=tag)
        assert (got[5] == 0).all()
    # both orders of summation are fixed: repeated calls agree bit for bit
    again = cubefilter._spmm(row_ptr.cuda(), cols.cuda(), vals.cuda(), x.cuda(), seg)
    assert torch.equal(again, split)


@pytest.mark.cuda
def test_csr_gather_rejects_bad_input():
    from nvdrec.native.build import load

    z = torch.zeros(1, dtype=torch.int32, device="cuda")
    with pytest.raises(RuntimeError, match="1 <= C <= 4"):
        load().csr_gather(
            row_ptr=z,
            col=z[:0],
            val=z[:0].float(),
            x=torch.zeros(3, 5, device="cuda"),
            split=None,
            rows=0,
            slots=0,
            split_at=0,
        )
    with pytest.raises(RuntimeError, match="rows requested"):
        load().csr_gather(
            row_ptr=z,
            col=z[:0],
            val=z[:0].float(),
            x=torch.zeros(3, 2, device="cuda"),
            split=None,
            rows=4,
            slots=0,
            split_at=0,
        )


@pytest.mark.cuda
@pytest.mark.parametrize("loss", LOSSES)
def test_fused_image_loss_matches_torch(loss):
    g = torch.Generator().manual_seed(11)
    img = torch.randn(4, 64, 48, 3, generator=g) * 3  # negatives: clamped by the tone map
    ref = torch.rand(4, 64, 48, 3, generator=g) * 5
    img[0, 0, 0] = ref[0, 0, 0]  # ties: zero gradient of |x - y|
    img[0, 0, 1] = 70000.0  # beyond the tone map's clamp
    img[0, 0, 2] = 0.0
    x_ref = img.clone().requires_grad_()
    x_cu = img.cuda().requires_grad_()
    l_ref = image_loss(x_ref, ref, loss, backend="torch")
    l_cu = image_loss(x_cu, ref.cuda(), loss, backend="cuda")
    assert_close(l_cu.cpu(), l_ref, rtol=1e-5, atol=1e-6, name=f"{loss} value")
    (l_ref * 2.5).backward()
    (l_cu * 2.5).backward()
    assert_close(x_cu.grad.cpu(), x_ref.grad, rtol=1e-4, atol=1e-9, name=f"{loss} grad")


@pytest.mark.cuda
def test_fused_image_loss_on_strided_input():
    img = torch.rand(2, 32, 32, 4, device="cuda", requires_grad=True)
    ref = torch.rand(2, 32, 32, 3, device="cuda")
    l_cu = image_loss(img[..., :3], ref, "logl1", backend="cuda")
    l_ref = image_loss(img[..., :3], ref, "logl1", backend="torch")
    assert_close(l_cu, l_ref, rtol=1e-5, atol=1e-7)
    (gc,) = torch.autograd.grad(l_cu, img)
    (gr,) = torch.autograd.grad(l_ref, img)
    assert_close(gc, gr, rtol=1e-4, atol=1e-10)
    assert (gc[..., 3] == 0).all()


def _ggx_truth(base, dirs, rough):
    """Brute-force split-sum prefilter (n = v = r) at directions [M, 3]: the GGX- and
    cosine-weighted average radiance over every texel of ``base`` [6, N, N, 3]."""
    n = base.shape[1]
    tex_d = cubemap.cube_texel_dirs(n).reshape(-1, 3).double()
    sa = cubemap.cube_texel_solid_angles(n).reshape(-1).double()
    a2 = (rough * rough) ** 2
    out = []
    for r in dirs.double().split(25):
        nl = (r @ tex_d.T).clamp(min=0)
        nh = ((r @ tex_d.T) + 1).clamp(min=0).div(2).sqrt()  # n.h with h = (r + l) / |r + l|
        w = a2 / (torch.pi * (nh * nh * (a2 - 1) + 1) ** 2) * nl * sa
        out.append((w @ base.reshape(-1, 3).double()) / w.sum(-1, keepdim=True))
    return torch.cat(out).float()


def test_coarse_filtered_levels_are_as_accurate_and_seamless():
    """Levels whose samples read only coarse mips are filtered at twice that resolution
    and upsampled (prefilter_grid_size): against a brute-force GGX integral they are as
    accurate as filtering every texel directly, and they are continuous across cube-face
    seams (the apron texels lie on the neighbouring face)."""
    from nvdrec import ops

    res = 128
    base = torch.rand(6, 8, 8, 3, generator=torch.Generator().manual_seed(0)) * 4
    base = torch.nn.functional.interpolate(
        base.permute(0, 3, 1, 2), size=(res, res), mode="bilinear"
    ).permute(0, 2, 3, 1)
    base[4, 60:68, 60:68] = 40.0  # a small bright source
    lgt = EnvironmentLight(base)
    rough, counts = lgt.filter_plan()
    chain = [c[0] for c in build_mips(base[None], max_mip_level=len(rough) - 1, cube=True)]
    k = 1  # the 64 x 64 level, filtered at 32 x 32 (its samples read levels >= 3)
    n = res >> k
    assert cubemap.prefilter_grid_size(res, k, len(rough), rough[k], counts[k]) == n // 2
    coarse = cubemap.specular_prefilter(chain, k, rough[k], counts[k])
    direct = cubemap.specular_prefilter(chain, k, rough[k], counts[k], size=n)
    assert coarse.shape == direct.shape == (6, n, n, 3)
    g = torch.Generator().manual_seed(1)
    dirs = torch.nn.functional.normalize(torch.randn(400, 3, generator=g), dim=-1)
    truth = _ggx_truth(base, dirs, rough[k])

    def err(level):
        got = ops.texture(level[None], dirs.view(1, 1, -1, 3), boundary_mode="cube")[0, 0]
        return ((got - truth).abs().sum(-1) / truth.abs().sum(-1)).median()

    assert err(coarse) < 1.1 * err(direct) + 0.002, (err(coarse), err(direct))
    # across the seam between +X and +Z: no larger jump than the direct filter's
    d = torch.nn.functional.normalize(torch.tensor([[1.0, 0.2, 0.999], [0.999, 0.2, 1.0]]), dim=-1)

    def jump(level):
        out = ops.texture(level[None], d.view(1, 1, 2, 3), boundary_mode="cube")[0, 0]
        return (out[0] - out[1]).abs().max()

    assert jump(coarse) < jump(direct) + 0.01


def test_light_filter_of_a_512_light_on_the_cpu_is_fast():
    """nvdiffrec's 512^2 light: build_mips forward + backward through the cached operator
    (the filter levels at their grid sizes) well under a second on a CPU."""
    import time

    lgt = EnvironmentLight.random(512)
    lgt.build_mips()  # builds (and caches) the operator
    t0 = time.perf_counter()
    lgt.build_mips()
    loss = sum(s.square().mean() for s in lgt.specular) + lgt.diffuse.mean()
    loss.backward()
    seconds = time.perf_counter() - t0
    assert lgt.base.grad is not None and lgt.base.grad.abs().sum() > 0
    assert seconds < 2.0, seconds  # 0.16 s on a 2-core CI-class machine


@pytest.mark.parametrize("c, n", [(8, 16), (8, 32), (16, 16)])
def test_upsample_filtered_is_exact_bilinear_on_the_apron_grid(c, n):
    """A function linear in the face coordinates, given on the apron grid of size c (texel
    centres of c plus one beyond each edge), comes back exactly at the texel centres of n."""

    def centres(m, pad):
        return (torch.arange(-pad, m + pad, dtype=torch.float64) + 0.5) / m * 2 - 1

    def linear(s, t):  # [6, len(t), len(s), 3]
        tt, ss = torch.meshgrid(t, s, indexing="ij")
        f = torch.arange(6, dtype=torch.float64).view(6, 1, 1, 1)
        return torch.stack([ss + 2 * tt, 3 * ss - tt, ss * 0 + 1], -1)[None] * (1 + f)

    pad = 1 if c < n else 0
    grid = linear(centres(c, pad), centres(c, pad)).float()
    out = cubemap.upsample_filtered(grid, n)
    assert_close(out, linear(centres(n, 0), centres(n, 0)).float(), atol=1e-5, name="upsampled")
