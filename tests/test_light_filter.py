"""The light filter as a sparse operator (CPU: against the texture-op reference; CUDA:
our gather kernel against the torch path) and the fused image loss kernel."""

import pytest
import torch
from _helpers import assert_close

from nvdrec.ops import build_mips, cubemap
from nvdrec.ops.loss import LOSSES, image_loss
from nvdrec.render import EnvironmentLight


def _reference(base, lgt):
    """build_mips through the torch reference path (texture op + dense irradiance)."""
    ref = EnvironmentLight(base, samples=lgt.samples, backend="torch")
    ref.build_mips()
    return ref


def _operator_for(lgt):
    rough, counts = lgt.filter_plan()
    op = cubemap.cube_filter_operator(lgt.base.shape[1], rough, counts, str(lgt.base.device))
    return op, len(rough)


@pytest.mark.parametrize("res", [16, 32, 64])
def test_operator_equals_reference_forward_and_backward(res):
    base = torch.rand(6, res, res, 3, generator=torch.Generator().manual_seed(res)) * 3
    lgt = EnvironmentLight(base.clone())
    op, n = _operator_for(lgt)
    assert op.shape[1] == sum(6 * (res >> k) ** 2 for k in range(n))
    # forward: same values as the texture-op reference
    ref = _reference(base.clone(), lgt)
    x = base.clone().requires_grad_()
    chain = [c[0] for c in build_mips(x[None], max_mip_level=n - 1, cube=True)]
    out = cubemap.apply_cube_filter(op, chain)
    for a, b in zip(out, ref.specular + [ref.diffuse]):
        assert_close(a, b, atol=2e-6, name="filtered level")
    # backward: the stored transpose gives the reference's gradient
    weights = [torch.randn_like(o) for o in out]
    sum((o * w).sum() for o, w in zip(out, weights)).backward()
    sum((o * w).sum() for o, w in zip(ref.specular + [ref.diffuse], weights)).backward()
    assert_close(x.grad, ref.base.grad, atol=1e-5, name="grad base")


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
        cubemap.apply_cube_filter(op, [torch.zeros(6, 16, 16, 3)])


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
    assert cubemap._stackable(op.in_sizes) == (res != 70)
    cu.build_mips()
    ref = _reference(base.clone(), cu)  # CPU torch reference
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
    seg_ptr, seg_out, multi_ptr, multi_rows, slots = cubemap._split_rows(row_ptr, 256)
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
    assert_close(y, cubemap._spmm(row_ptr, cols, vals, x), atol=1e-4, name="segmented product")


@pytest.mark.cuda
@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_csr_gather_kernel_matches_torch(channels):
    row_ptr, cols, vals, x = _random_csr(channels, channels=channels, long_rows=LONG_ROWS)
    ref = cubemap._spmm(row_ptr, cols, vals, x)
    plain = cubemap._spmm(row_ptr.cuda(), cols.cuda(), vals.cuda(), x.cuda())
    seg = cubemap._split_rows(row_ptr.cuda())
    split = cubemap._spmm(row_ptr.cuda(), cols.cuda(), vals.cuda(), x.cuda(), seg)
    for got, tag in ((plain, "csr gather"), (split, "segmented csr gather")):
        assert_close(got.cpu(), ref, atol=1e-4, rtol=1e-5, name=tag)
        assert (got[5] == 0).all()
    # both orders of summation are fixed: repeated calls agree bit for bit
    again = cubemap._spmm(row_ptr.cuda(), cols.cuda(), vals.cuda(), x.cuda(), seg)
    assert torch.equal(again, split)


@pytest.mark.cuda
def test_csr_gather_rejects_bad_input():
    from nvdrec._ext.build import load

    z = torch.zeros(1, dtype=torch.int32, device="cuda")
    with pytest.raises(RuntimeError, match="1 <= C <= 4"):
        load().csr_gather(z, z[:0], z[:0].float(), torch.zeros(3, 5, device="cuda"), None, 0, 0, 0)
    with pytest.raises(RuntimeError, match="rows requested"):
        load().csr_gather(z, z[:0], z[:0].float(), torch.zeros(3, 2, device="cuda"), None, 4, 0, 0)


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
