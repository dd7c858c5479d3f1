"""Smoothness-preconditioned vertex positions (Large Steps): the solves against a dense
solve, the gradient, and what the parametrisation does to a step."""

import copy

import pytest
import torch
from _helpers import assert_close, sphere

from nvdrec.geometry import SmoothPositions, UniformAdam, smooth_param, solve_smooth
from nvdrec.geometry.smooth_param import laplacian_apply, mesh_edges
from nvdrec.train.helpers import Optimizers

SOLVE_TOL = 1e-6  # absolute, float64, positions of size ~1


def _dense(v, f, lam):
    n = len(v)
    e, deg = mesh_edges(f, n)
    lap = torch.zeros(n, n, dtype=torch.float64)
    lap[e[:, 0], e[:, 1]] = -1.0
    lap += torch.diag(deg.double())
    return torch.eye(n, dtype=torch.float64) + lam * lap


@pytest.mark.parametrize("solver", ["dense", "cg", "cholesky"])
def test_positions_and_gradient_match_a_dense_solve(solver):
    if solver == "cholesky":
        pytest.importorskip("cholespy", reason="cholespy is not installed (pip install cholespy)")
    v, f = sphere(8, 16)
    v = v.double()
    m = _dense(v, f, 19.0)
    sp = SmoothPositions(v, f, 19.0, solver=solver)
    assert_close(sp(), v, atol=SOLVE_TOL, name="initial positions")  # u = M x0
    g = torch.Generator().manual_seed(0)
    u = sp.u.detach() + 0.05 * torch.randn(v.shape, generator=g, dtype=torch.float64)
    with torch.no_grad():
        sp.u.copy_(u)
    x = sp()
    assert_close(x, torch.linalg.solve(m, u), atol=SOLVE_TOL, name="x")
    w = torch.randn(v.shape, generator=g, dtype=torch.float64)
    (x * w).sum().backward()
    assert_close(sp.u.grad, torch.linalg.solve(m, w), atol=SOLVE_TOL, name="grad_u")


def _assert_same_solves(a, b, w):
    """One step ``0.1 w`` of ``u`` and a backward of ``(x * w).sum()`` through two
    SmoothPositions of one mesh: the same positions and gradients."""
    for sp in (a, b):
        with torch.no_grad():
            sp.u.add_(0.1 * w)
        (sp() * w).sum().backward()
    assert_close(a(), b(), atol=1e-5, name="positions")
    assert_close(a.u.grad, b.u.grad, atol=1e-5, name="gradient")


def test_auto_solver_is_dense_up_to_the_size_limit(monkeypatch):
    """Up to DENSE_MAX vertices the solves go through the inverse (built once per device),
    above it through conjugate gradients; both give the same positions and gradient."""
    v, f = sphere(8, 16)
    monkeypatch.setattr(smooth_param, "cholesky_factor", lambda *a: None)  # no cholespy
    monkeypatch.setitem(smooth_param.DENSE_MAX, "cpu", len(v))
    dense = SmoothPositions(v, f, 19.0)
    inv = dense.inverse()
    assert inv is not None and inv.shape == (len(v), len(v)) and inv.dtype == torch.float64
    assert dense.inverse() is inv  # built once
    assert_close(inv @ _dense(v, f, 19.0), torch.eye(len(v), dtype=torch.float64), atol=1e-9)
    monkeypatch.setitem(smooth_param.DENSE_MAX, "cpu", len(v) - 1)
    cg = SmoothPositions(v, f, 19.0)
    assert cg.inverse() is None
    _assert_same_solves(dense, cg, torch.randn(v.shape, generator=torch.Generator().manual_seed(1)))
    with pytest.raises(
        ValueError, match="solver must be one of auto, dense, cg, cholesky, got 'lu'"
    ):
        SmoothPositions(v, f, 19.0, solver="lu")


def test_auto_solver_falls_back_to_cg_when_the_inverse_does_not_fit(monkeypatch):
    v, f = sphere(8, 16)
    monkeypatch.setattr(smooth_param, "cholesky_factor", lambda *a: None)  # no cholespy

    def no_memory(*args):
        raise torch.OutOfMemoryError("out of memory")

    monkeypatch.setattr(smooth_param, "dense_inverse", no_memory)
    sp = SmoothPositions(v, f, 19.0)
    assert sp.inverse() is None  # conjugate gradients instead
    with torch.no_grad():
        sp.u.add_(0.1)
    assert_close(sp(), v + 0.1, atol=1e-5, name="positions by CG")
    with pytest.raises(torch.OutOfMemoryError):  # asked for by hand: the error stands
        SmoothPositions(v, f, 19.0, solver="dense").inverse()


def test_auto_solver_on_the_cpu_uses_the_cholesky_factor_where_cholespy_is_installed(
    monkeypatch,
):
    pytest.importorskip("cholespy", reason="cholespy is not installed (pip install cholespy)")
    v, f = sphere(10, 20)
    auto = SmoothPositions(v, f, 19.0)
    fac = auto.factor()
    assert fac is not None and auto.factor() is fac  # built once
    cg = SmoothPositions(v, f, 19.0, solver="cg")
    assert cg.factor() is None and cg.inverse() is None
    _assert_same_solves(auto, cg, torch.randn(v.shape, generator=torch.Generator().manual_seed(3)))
    assert auto.u.grad.dtype == torch.float32
    # without cholespy: auto goes on with the dense inverse or conjugate gradients, and
    # asking for the Cholesky solver by hand says what to install
    monkeypatch.setitem(__import__("sys").modules, "cholespy", None)
    assert SmoothPositions(v, f, 19.0).factor() is None
    with pytest.raises(ImportError, match="needs cholespy: pip install cholespy"):
        SmoothPositions(v, f, 19.0, solver="cholesky").factor()


def test_the_factor_lives_on_cuda_0_or_the_cpu():
    """cholespy's GPU solver binds the driver's device 0: a mesh on another GPU keeps its
    factor on the CPU."""
    fd = smooth_param.factor_device
    assert fd(torch.device("cpu")) == torch.device("cpu")
    assert fd(torch.device("cuda", 0)) == torch.device("cuda", 0)
    assert fd(torch.device("cuda")) == torch.device("cuda", 0)
    assert fd(torch.device("cuda", 1)) == torch.device("cpu")


def test_smooth_motion_passes_and_rough_motion_is_damped():
    v, f = sphere(12, 24)
    sp = SmoothPositions(v, f, 19.0)
    with torch.no_grad():  # a translation of u moves the surface by the same amount
        sp.u.add_(torch.tensor([0.1, -0.2, 0.3]))
    assert_close(sp() - v, torch.tensor([0.1, -0.2, 0.3]).expand_as(v), atol=1e-5, name="shift")
    # one vertex pushed alone: the step spreads to its neighbours and shrinks
    sp = SmoothPositions(v, f, 19.0)
    with torch.no_grad():
        sp.u[40, 0] += 1.0
    d = (sp().detach() - v)[:, 0]
    assert 0 < float(d[40]) < 0.1
    e, _ = mesh_edges(f, len(v))
    nb = e[e[:, 0] == 40, 1]
    assert bool((d[nb] > 0).all())


def test_lambda_zero_is_the_plain_positions_and_set_positions():
    v, f = sphere(6, 12)
    sp = SmoothPositions(v, f, 0.0)
    assert sp() is sp.u
    sp = SmoothPositions(v, f, 5.0)
    target = v * 1.5
    sp.set_positions(target)
    assert_close(sp(), target, atol=1e-5, name="set_positions")
    with pytest.raises(ValueError, match="lam"):
        SmoothPositions(v, f, -1.0)


def test_solver_warm_start_and_columns_independent():
    v, f = sphere(8, 16)
    e, deg = mesh_edges(f, len(v))
    b = torch.randn(len(v), 3, dtype=torch.float64)
    x = solve_smooth(b, e, deg, 10.0)
    r = x + 10.0 * laplacian_apply(x, e, deg) - b
    assert float(r.norm(dim=0).max()) <= 1e-6 * float(b.norm(dim=0).max()) * 1.01
    x2 = solve_smooth(b, e, deg, 10.0, x0=x)  # already solved: the same answer
    assert_close(x2, x, atol=1e-9, name="warm start")
    x1 = solve_smooth(b[:, 1:2].contiguous(), e, deg, 10.0)
    assert_close(x1[:, 0], x[:, 1], atol=1e-6, name="column 1 alone")


def test_uniform_adam_steps_share_one_scale():
    """The first step is lr * g / max|g| (Adam's bias corrections cancel): the largest
    coordinate moves by lr, the others in proportion (per-coordinate Adam would move
    every coordinate by lr)."""
    p = torch.nn.Parameter(torch.zeros(3))
    opt = UniformAdam([p], lr=0.1, eps=0.0)
    p.grad = torch.tensor([2.0, -0.5, 0.2])
    opt.step()
    assert_close(p.detach(), -0.1 * torch.tensor([1.0, -0.25, 0.1]), atol=1e-7, name="step")
    # restores into a new optimiser (a copy, as a checkpoint file gives) and continues alike
    state = copy.deepcopy(opt.state_dict())
    q = torch.nn.Parameter(p.detach().clone())
    opt2 = UniformAdam([q], lr=0.1, eps=0.0)
    opt2.load_state_dict(state)
    for o, t in ((opt, p), (opt2, q)):
        t.grad = torch.tensor([1.0, 1.0, -1.0])
        o.step()
    assert torch.equal(p.detach(), q.detach())


def test_optimizers_step_and_state_together():
    a = torch.nn.Parameter(torch.ones(2))
    b = torch.nn.Parameter(torch.ones(2))
    both = Optimizers([torch.optim.Adam([a], lr=0.1), UniformAdam([b], lr=0.1)])
    assert len(both.param_groups) == 2
    a.grad, b.grad = torch.ones(2), torch.ones(2)
    both.step()
    assert float(a.detach()[0]) < 1 and float(b.detach()[0]) < 1
    both.zero_grad()
    assert a.grad is None and b.grad is None
    st = both.state_dict()
    other = Optimizers([torch.optim.Adam([a], lr=0.1), UniformAdam([b], lr=0.1)])
    other.load_state_dict(st)
    with pytest.raises(ValueError, match="does not match"):
        Optimizers([torch.optim.Adam([a], lr=0.1)]).load_state_dict(st)


@pytest.mark.cuda
@pytest.mark.parametrize("solver", ["dense", "cholesky"])
def test_solves_on_the_gpu_match_the_cpu(solver):
    if solver == "cholesky":
        pytest.importorskip("cholespy", reason="cholespy is not installed (pip install cholespy)")
    v, f = sphere(12, 24)
    w = torch.randn(v.shape, generator=torch.Generator().manual_seed(2))
    out = {}
    for dev in ("cpu", "cuda"):
        sp = SmoothPositions(v.to(dev), f.to(dev), 19.0, solver=solver)
        with torch.no_grad():
            sp.u.add_(0.1 * w.to(dev))
        x = sp()
        (x * w.to(dev)).sum().backward()
        out[dev] = (x.detach().cpu(), sp.u.grad.cpu())
    assert_close(out["cuda"][0], out["cpu"][0], atol=1e-5, name="positions")
    assert_close(out["cuda"][1], out["cpu"][1], atol=1e-5, name="gradient")


@pytest.mark.cuda
def test_auto_on_the_gpu_uses_the_factor_above_the_dense_limit(monkeypatch):
    pytest.importorskip("cholespy", reason="cholespy is not installed (pip install cholespy)")
    v, f = sphere(12, 24)
    v, f = v.cuda(), f.cuda()
    small = SmoothPositions(v, f, 19.0)
    assert small.factor() is None and small.inverse() is not None  # dense below the limit
    monkeypatch.setitem(smooth_param.DENSE_MAX, "cuda", len(v) - 1)
    auto = SmoothPositions(v, f, 19.0)
    assert auto.factor() is not None and auto.inverse() is None
    cg = SmoothPositions(v, f, 19.0, solver="cg")
    w = torch.randn(v.shape, generator=torch.Generator().manual_seed(4))
    _assert_same_solves(auto, cg, w.cuda())
    assert auto.u.grad.device == v.device


@pytest.mark.cuda
def test_a_factor_on_the_cpu_solves_a_mesh_on_the_gpu(monkeypatch):
    """The path of a mesh on a GPU other than cuda:0: the factor on the CPU, each
    right-hand side copied there and back."""
    pytest.importorskip("cholespy", reason="cholespy is not installed (pip install cholespy)")
    monkeypatch.setattr(smooth_param, "factor_device", lambda dev: torch.device("cpu"))
    v, f = sphere(12, 24)
    gpu = SmoothPositions(v.cuda(), f.cuda(), 19.0, solver="cholesky")
    cpu = SmoothPositions(v, f, 19.0, solver="cholesky")
    w = torch.randn(v.shape, generator=torch.Generator().manual_seed(5))
    for sp, dev in ((gpu, "cuda"), (cpu, "cpu")):
        with torch.no_grad():
            sp.u.add_(0.1 * w.to(dev))
        (sp() * w.to(dev)).sum().backward()
    assert gpu().device.type == "cuda" and gpu.u.grad.device.type == "cuda"
    assert_close(gpu().cpu(), cpu(), atol=1e-6, name="positions")
    assert_close(gpu.u.grad.cpu(), cpu.u.grad, atol=1e-6, name="gradient")
