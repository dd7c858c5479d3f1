"""The fused split-sum shading kernel (CUDA) against the torch path on the CPU: values and
gradients to every input (G-buffers, kd, ks, the light through build_mips), with a
camera-space light rotation, diffuse-only shading and background pixels."""

import pytest
import torch
from _helpers import assert_close

from nvdrec.ops import shading
from nvdrec.render import EnvironmentLight
from nvdrec.structures import camera as cam

pytestmark = pytest.mark.cuda

VALUE_ATOL = 2e-5
GRAD_REL = 1e-3  # smooth inputs: float32 atomics sum in any order
KINK_REL = 1e-2  # directions: bilinear weights have kinks at texel centres


def _rel_err(a, b):
    a, b = a.detach().double().cpu(), b.detach().double().cpu()
    return float((a - b).norm() / b.norm().clamp(min=1e-12))


def _inputs(seed=0, b=2, h=24, w=20, res=32):
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(6, res, res, 3, generator=g) * 2
    pos = torch.randn(b, h, w, 3, generator=g) * 0.3
    n = torch.nn.functional.normalize(torch.randn(b, h, w, 3, generator=g), dim=-1)
    kd = torch.rand(b, h, w, 4, generator=g)  # shaded with kd[..., :3] (a strided view)
    rough = torch.rand(b, h, w, 1, generator=g) * 1.05  # below 0.08, 0.08..0.5, 0.5..1, > 1
    ks = torch.cat(
        [torch.rand(b, h, w, 1, generator=g) * 0.5, rough, torch.rand(b, h, w, 1, generator=g)], -1
    )
    view = torch.tensor([[0.0, 0.2, 3.0]]) + torch.randn(b, 3, generator=g) * 0.5
    go = torch.randn(b, h, w, 3, generator=g)
    return base, pos, n, kd, ks, view, go


def _fused(lgt, pos, n, kd, ks, view) -> bool:
    """Whether ``lgt.shade`` takes the fused kernel for these inputs (what ops.shade
    decides with the light's backend)."""
    rot = None if lgt.mtx is None else lgt.mtx[:, :3, :3]
    args = (pos, n, kd, ks, view, rot, lgt.diffuse, lgt.specular)
    return lgt._filter_backend() == "cuda" and shading._fusable(*args)


def _run(device, base, pos, n, kd, ks, view, go, specular=True, mtx=None, light_grad=True):
    lgt = EnvironmentLight(base.to(device), backend="auto" if device == "cuda" else "torch")
    lgt.base.requires_grad_(light_grad)
    leaves = [t.to(device).clone().requires_grad_() for t in (pos, n, kd, ks)]
    lgt.build_mips()
    if mtx is not None:
        lgt.xfm(mtx.to(device))
    p_, n_, kd_, ks_ = leaves
    fused = _fused(lgt, p_, n_, kd_[..., :3], ks_, view.to(device))
    out = lgt.shade(p_, n_, kd_[..., :3], ks_, view.to(device), specular=specular)
    (out * go.to(device)).sum().backward()
    grads = [t.grad for t in leaves] + [lgt.base.grad if light_grad else None]
    return out, grads, fused


def _compare(ref, got, tag):
    (o1, g1, _), (o2, g2, fused) = ref, got
    assert fused, f"{tag}: the fused kernel was not used"
    assert_close(o2, o1, atol=VALUE_ATOL, rtol=1e-5, name=f"{tag} radiance")
    names = ("pos", "normal", "kd", "ks", "light")
    for name, a, b in zip(names, g2, g1):
        if b is None:  # no gradient on the torch path: none or zeros here
            assert a is None or not a.any(), f"{tag}: grad {name} should be zero"
            continue
        bound = KINK_REL if name in ("pos", "normal") else GRAD_REL
        err = _rel_err(a, b)
        assert err < bound, f"{tag}: grad {name} relative error {err:.2e}"


@pytest.mark.parametrize("specular", [True, False])
def test_fused_shading_matches_torch(specular):
    args = _inputs(seed=1)
    ref = _run("cpu", *args, specular=specular)
    got = _run("cuda", *args, specular=specular)
    _compare(ref, got, f"specular={specular}")
    # the kd alpha channel gets no gradient
    assert (got[1][2][..., 3] == 0).all()


def test_fused_shading_camera_space_light_and_frozen_light():
    args = _inputs(seed=2, b=3)
    mtx = torch.stack([cam.look_at((1.0, 0.5, 2.0)), cam.look_at((-2.0, 1.0, 0.5)), torch.eye(4)])
    ref = _run("cpu", *args, mtx=mtx, light_grad=False)
    got = _run("cuda", *args, mtx=mtx, light_grad=False)
    _compare(ref, got, "camera-space light")


def test_fused_shading_background_and_one_camera():
    base, pos, n, kd, ks, view, go = _inputs(seed=3)
    # background pixels: zero G-buffers and no upstream gradient
    n[:, :5] = 0.0
    pos[:, :5] = 0.0
    go[:, :5] = 0.0
    view = view[:1]  # one camera for the whole batch
    ref = _run("cpu", base, pos, n, kd, ks, view, go)
    got = _run("cuda", base, pos, n, kd, ks, view, go)
    _compare(ref, got, "background")
    for g in got[1][:4]:
        assert (g[:, :5] == 0).all()


def test_fused_shading_full_res_light_matches_torch_on_gpu():
    """R = 512 light (six specular levels), G-buffers of a realistic size: the fused
    kernel against the unfused torch ops on the same GPU (same filtered light)."""
    base, pos, n, kd, ks, view, go = _inputs(seed=4, b=2, h=128, w=96, res=512)
    lgt = EnvironmentLight(base.cuda())
    lgt.build_mips()
    # the specular levels are views of one buffer, which the kernel reads without a copy
    from nvdrec.ops.shading import _joined_levels

    buf = _joined_levels(lgt.specular)
    assert buf.data_ptr() == lgt.specular[0].data_ptr() and buf.grad_fn is not None
    assert buf.shape == (sum(s.numel() for s in lgt.specular) // 3, 3)
    res = {}
    for mode in ("auto", "torch"):
        lgt.backend = mode  # "torch": the texture-op path (CUDA texture kernels)
        leaves = [t.cuda().clone().requires_grad_() for t in (pos, n, kd, ks)]
        lgt.base.grad = None
        out = lgt.shade(leaves[0], leaves[1], leaves[2][..., :3], leaves[3], view.cuda())
        (out * go.cuda()).sum().backward()
        res[mode] = (out, [t.grad for t in leaves] + [lgt.base.grad], True)
        lgt.build_mips()
    _compare(res["torch"], res["auto"], "R=512")


def test_fused_shading_falls_back_for_camera_gradients():
    base, pos, n, kd, ks, view, go = _inputs(seed=5, b=1, h=8, w=8)
    lgt = EnvironmentLight(base.cuda())
    lgt.build_mips()
    v = view.cuda().requires_grad_()
    args = (pos.cuda(), n.cuda(), kd[..., :3].cuda(), ks.cuda())
    assert not _fused(lgt, *args, v)
    out = lgt.shade(*args, v)
    out.sum().backward()
    assert v.grad is not None and torch.isfinite(v.grad).all()
    assert _fused(lgt, *args, v.detach())
    assert_close(lgt.shade(*args, v.detach()), out, atol=VALUE_ATOL)
