"""Smoothness-preconditioned vertex positions for mesh optimisation (Nicolet, Jacobson
and Jakob, "Large Steps in Inverse Rendering of Geometry", SIGGRAPH Asia 2021).

Plain gradient steps on vertex positions move every vertex on its own: with Adam, which
normalises each coordinate's step to about the learning rate, noisy per-vertex gradients
(real photos, sub-texel triangles) crumple the surface by up to a learning rate per step
whatever the gradient's size. The paper's remedy: optimise ``u = (I + lambda L) x``
instead of the positions ``x``, where ``L`` is the mesh's (combinatorial) graph
Laplacian. A step ``du`` moves the surface by ``dx = (I + lambda L)^-1 du``: a motion that
is smooth over the surface (a translation, a bulge many edges wide) passes unchanged,
while its high-frequency part (one vertex against its neighbours) is damped by
``1 / (1 + lambda mu)`` for a Laplacian eigenvalue ``mu``. The learning rate keeps its
meaning (world units per step for smooth motion) and ``lambda`` is dimensionless: it
sets the damping width in edges, the same on every mesh and grid resolution.

The matrix is fixed for a mesh (the topology does not change in pass 2), so a mesh of up
to :data:`DENSE_MAX` vertices is solved through its inverse, computed once in float64 by
Cholesky: every solve is then one exact matrix product (on a GPU one launch, where
conjugate gradients take dozens of small launches and host reads per solve). Larger
meshes use conjugate gradients with a Jacobi preconditioner in float64 (float32
residuals stall near 1e-5); the forward solve starts from the previous solution
(successive steps change ``u`` little), the backward pass solves the same symmetric
system for the gradient from scratch (the gradient changes too much between iterations
for a warm start to pay).

Where cholespy (the paper authors' sparse Cholesky solver) is installed, larger meshes
(and on the CPU every mesh) go through a sparse Cholesky factor of the matrix, computed
once: a 20k-vertex iteration's solves take about 3 ms on a 2-core CPU and 5 ms on an H100,
against 50 and 27 ms by conjugate gradients. cholespy runs its GPU solves on CUDA device 0
only (it binds the driver's device 0), so a mesh on another GPU keeps its factor on the
CPU and copies each right-hand side there and back.
"""

from __future__ import annotations

import warnings

import torch

from ..ops import unique_rows

__all__ = [
    "SmoothPositions",
    "UniformAdam",
    "laplacian_apply",
    "mesh_edges",
    "dense_inverse",
    "cholesky_factor",
    "factor_device",
    "solve_smooth",
    "system_matrix",
]

# Relative residual at which the conjugate-gradient solves stop, and their iteration cap.
CG_TOL = 1e-5
CG_MAX_ITER = 500
CHECK_EVERY = 4

# Largest mesh (vertices) solved through a dense inverse, per device type. The inverse
# takes V^2 x 8 bytes (537 MB at 8192 vertices) and about three times that while it is
# built; on the CPU a product with it outgrows conjugate gradients above a few thousand
# vertices (docs/training.md, "The solves"; bench/smooth_solve.py).
DENSE_MAX = {"cuda": 8192, "cpu": 3072}
SOLVERS = ("auto", "dense", "cg", "cholesky")


def mesh_edges(tri: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Directed vertex adjacency [E, 2] (each mesh edge in both directions) and vertex
    degrees [n] (float, at least 1) of a triangle list: the uniform Laplacian's graph."""
    t = tri.long()
    e = torch.cat([t[:, [0, 1]], t[:, [1, 2]], t[:, [2, 0]]])
    e = unique_rows(torch.cat([e, e.flip(1)]))
    deg = torch.bincount(e[:, 0], minlength=n).clamp(min=1).float()
    return e, deg


def laplacian_apply(x: torch.Tensor, edges: torch.Tensor, deg: torch.Tensor) -> torch.Tensor:
    """``L x`` for the combinatorial Laplacian ``L = D - A`` of the graph ``edges``
    ([2E, 2], both directions) with degrees ``deg`` [V]; x: [V, C]."""
    nb = torch.zeros_like(x).index_add_(0, edges[:, 0], x.index_select(0, edges[:, 1]))
    return deg[:, None].to(x.dtype) * x - nb


def solve_smooth(
    b: torch.Tensor,
    edges: torch.Tensor,
    deg: torch.Tensor,
    lam: float,
    x0: torch.Tensor | None = None,
    tol: float = CG_TOL,
    max_iter: int = CG_MAX_ITER,
    matrix: torch.Tensor | None = None,
) -> torch.Tensor:
    """Solve ``(I + lam L) x = b`` for x [V, C] by Jacobi-preconditioned conjugate
    gradients, each column independently, starting from ``x0`` (or ``b``). Stops when
    every column's residual is below ``tol`` times its right-hand side's norm.
    ``matrix``: ``I + lam L`` as a sparse float64 CSR matrix (:func:`system_matrix`), the
    same product in one kernel."""
    out_dtype = b.dtype
    b = b.double()  # float32 residuals stall near 1e-5 of the right-hand side
    deg = deg.double()
    diag = (1.0 + lam * deg)[:, None]
    if matrix is not None:  # I + lam L as one sparse matrix: one kernel per product

        def apply(v):
            return matrix @ v

    else:

        def apply(v):
            return v + lam * laplacian_apply(v, edges, deg)

    # in-place, fused updates: about ten kernels per iteration on a GPU
    inv_diag = 1.0 / diag
    x = (b if x0 is None else x0.double()).clone()
    r = b - apply(x)
    bnorm = b.norm(dim=0).clamp(min=1e-30)
    z = r * inv_diag
    p = z.clone()
    rz = torch.linalg.vecdot(r, z, dim=0)
    for i in range(max_iter):
        # the convergence test reads the device: every few iterations only
        if i % CHECK_EVERY == 0 and bool((r.norm(dim=0) <= tol * bnorm).all()):
            break
        ap = apply(p)
        alpha = rz / torch.linalg.vecdot(p, ap, dim=0).clamp(min=1e-300)
        x.addcmul_(alpha, p)
        r.addcmul_(alpha, ap, value=-1.0)
        torch.mul(r, inv_diag, out=z)
        rz_new = torch.linalg.vecdot(r, z, dim=0)
        p = torch.addcmul(z, rz_new / rz.clamp(min=1e-300), p)
        rz = rz_new
    return x.to(out_dtype)


def dense_inverse(edges: torch.Tensor, deg: torch.Tensor, lam: float) -> torch.Tensor:
    """``(I + lam L)^-1`` [V, V] float64, by Cholesky (the matrix is symmetric positive
    definite: its eigenvalues are ``1 + lam mu`` with Laplacian eigenvalues ``mu >= 0``)."""
    a = system_matrix(edges, deg, lam).to_dense()
    chol = torch.linalg.cholesky(a)
    del a
    return torch.cholesky_inverse(chol)


def factor_device(dev: torch.device) -> torch.device:
    """Where a Cholesky factor for a mesh on ``dev`` lives: ``dev`` itself on the CPU and
    on CUDA device 0, else the CPU (cholespy's GPU solver binds the driver's device 0,
    which is torch's ``cuda:0`` under any ``CUDA_VISIBLE_DEVICES``)."""
    if dev.type == "cuda" and (dev.index if dev.index is not None else 0) == 0:
        return torch.device("cuda", 0)
    return torch.device("cpu")


def cholesky_factor(edges: torch.Tensor, deg: torch.Tensor, lam: float):
    """A sparse Cholesky factorisation of ``I + lam L`` by cholespy (the Large Steps
    authors' solver; ``pip install cholespy``), float64, on :func:`factor_device` of
    ``deg``'s device; None when cholespy is not installed. Its ``solve(b, x)`` writes
    ``x`` [V, C] for ``b`` [V, C], both on that device."""
    try:
        from cholespy import CholeskySolverD, MatrixType
    except ImportError:
        return None
    where = factor_device(deg.device)
    a = system_matrix(edges.to(where), deg.to(where), lam)
    rows = a.crow_indices().int().contiguous()
    cols = a.col_indices().int().contiguous()
    return CholeskySolverD(len(deg), rows, cols, a.values().contiguous(), MatrixType.CSR)


def _factor_solve(factor, b: torch.Tensor) -> torch.Tensor:
    """``(I + lam L)^-1 b`` [V, C] through a :func:`cholesky_factor`, in ``b``'s dtype and
    on its device."""
    where = factor_device(b.device)
    b64 = b.detach().to(device=where, dtype=torch.float64).contiguous()
    x = torch.empty_like(b64)
    factor.solve(b64, x)
    return x.to(device=b.device, dtype=b.dtype)


def system_matrix(edges: torch.Tensor, deg: torch.Tensor, lam: float) -> torch.Tensor:
    """``I + lam L`` [V, V] as a sparse CSR float64 matrix."""
    n = len(deg)
    idx = torch.arange(n, device=deg.device)
    rows = torch.cat([idx, edges[:, 0]])
    cols = torch.cat([idx, edges[:, 1]])
    vals = torch.cat(
        [
            1.0 + lam * deg.double(),
            torch.full((len(edges),), -lam, dtype=torch.float64, device=deg.device),
        ]
    )
    with warnings.catch_warnings():  # "sparse CSR support is in beta": it is used plainly
        warnings.simplefilter("ignore", UserWarning)
        coo = torch.sparse_coo_tensor(
            torch.stack([rows, cols]), vals, (n, n), check_invariants=False
        ).coalesce()
        return coo.to_sparse_csr()


class _Solve(torch.autograd.Function):
    """x = (I + lam L)^-1 u with the backward ``grad_u = (I + lam L)^-1 grad_x`` (the
    matrix is symmetric). ``owner`` keeps the warm start of the forward solve."""

    @staticmethod
    def forward(ctx, u, owner):
        fac = owner.factor()
        if fac is not None:
            x = _factor_solve(fac, u)
        elif (inv := owner.inverse()) is not None:
            x = (inv @ u.detach().double()).to(u.dtype)
        else:
            x = solve_smooth(
                u.detach(), owner.edges, owner.deg, owner.lam, owner.x_prev, matrix=owner.matrix()
            )
        owner.x_prev.copy_(x)
        ctx.owner = owner
        return x

    @staticmethod
    def backward(ctx, grad_x):
        o = ctx.owner
        fac = o.factor()
        if fac is not None:  # the matrix is symmetric: the same factor
            return _factor_solve(fac, grad_x), None
        inv = o.inverse()
        if inv is not None:  # the inverse is symmetric too
            return (inv @ grad_x.double()).to(grad_x.dtype), None
        # no warm start here: the gradient is noisy from one iteration to the next (a
        # previous solution saves few iterations), and under DDP each process's own
        # gradient would make its warm start, and so a resumed run, differ
        g = solve_smooth(grad_x.contiguous(), o.edges, o.deg, o.lam, None, matrix=o.matrix())
        return g, None


class SmoothPositions(torch.nn.Module):
    """Vertex positions of a fixed-topology mesh, parametrised as ``u = (I + lam L) x``.

    Args:
        v_pos: initial positions [V, 3] float32.
        faces: triangles [T, 3] (int32/int64) that define the graph Laplacian.
        lam: smoothing strength ``lambda`` (dimensionless; the paper's experiments use
            about 10-100). 0 makes ``u`` the positions themselves.
        solver: ``"dense"`` (solves through the inverse of ``I + lam L``, [V, V] float64,
            built once per device), ``"cg"`` (conjugate gradients), ``"cholesky"`` (a
            sparse Cholesky factor built once per device, :func:`cholesky_factor`; needs
            cholespy), or ``"auto"``: on the CPU the Cholesky factor where cholespy is
            installed, else dense up to :data:`DENSE_MAX` vertices, else conjugate
            gradients; on a GPU dense up to :data:`DENSE_MAX` vertices (where the inverse
            fits), else the Cholesky factor where cholespy is installed (on
            :func:`factor_device`), else conjugate gradients.

    ``u`` is the trainable parameter; :meth:`forward` returns the positions [V, 3].
    """

    def __init__(
        self, v_pos: torch.Tensor, faces: torch.Tensor, lam: float, solver: str = "auto"
    ) -> None:
        super().__init__()
        if lam < 0:
            raise ValueError(f"lam must be >= 0, got {lam}")
        if solver not in SOLVERS:
            raise ValueError(f"solver must be one of {', '.join(SOLVERS)}, got {solver!r}")
        self.lam = float(lam)
        self.solver = solver
        edges, deg = mesh_edges(faces, len(v_pos))
        self.register_buffer("edges", edges.to(v_pos.device), persistent=False)
        self.register_buffer("deg", deg.to(v_pos.device), persistent=False)
        x = v_pos.detach().clone()
        u = x + self.lam * laplacian_apply(x, self.edges, self.deg) if self.lam else x
        self.u = torch.nn.Parameter(u)
        # warm start of the position solve, updated in place: a checkpoint that stores it
        # resumes to the same solutions (CG stops at a tolerance, so its answer depends a
        # little on where it starts)
        self.register_buffer("x_prev", x.clone())

    def _once_per_device(self, name: str, build):
        """``build()``'s result, kept until the module moves to another device (an error
        keeps nothing: the next call builds again)."""
        key = str(self.deg.device)
        cache = self.__dict__.setdefault("_built", {})
        if name not in cache or cache[name][0] != key:
            cache[name] = (key, build())
        return cache[name][1]

    def matrix(self) -> torch.Tensor:
        """``I + lam L`` (sparse CSR, float64), built once per device."""
        return self._once_per_device(
            "matrix", lambda: system_matrix(self.edges, self.deg, self.lam)
        )

    def factor(self):
        """The sparse Cholesky factor (:func:`cholesky_factor`) where this mesh is solved
        through it (see ``solver``), built once per device; None otherwise."""

        def build():
            if not (self.solver == "cholesky" or (self.solver == "auto" and self._auto_factor())):
                return None
            fac = cholesky_factor(self.edges, self.deg, self.lam)
            if fac is None and self.solver == "cholesky":
                raise ImportError(
                    "solver 'cholesky' (config key pos_solver) needs cholespy: "
                    "pip install cholespy, or choose auto, dense or cg"
                )
            return fac

        return self._once_per_device("factor", build)

    def inverse(self) -> torch.Tensor | None:
        """``(I + lam L)^-1`` (dense, float64) where this mesh is solved through it (see
        ``solver``), built once per device; None where conjugate gradients solve it."""

        def build():
            dev = self.deg.device
            if not (self.solver == "dense" or (self.solver == "auto" and self._dense_fits(dev))):
                return None
            try:
                return dense_inverse(self.edges, self.deg, self.lam)
            except torch.OutOfMemoryError:
                if self.solver == "dense":
                    raise
                return None  # auto: conjugate gradients need no more than the mesh itself

        return self._once_per_device("inverse", build)

    def _auto_factor(self) -> bool:
        """Auto's choice of the Cholesky factor (where cholespy is installed): on the CPU
        always, on a GPU for meshes the dense inverse does not take (on a GPU other than
        ``cuda:0`` the factor lives on the CPU: still faster than conjugate gradients, and
        every process of a multi-GPU run solves the same way)."""
        dev = self.deg.device
        return dev.type == "cpu" or not self._dense_fits(dev)

    def _dense_fits(self, dev: torch.device) -> bool:
        """Auto's choice: at most DENSE_MAX vertices, and on a GPU the inverse's build
        (three V x V float64 matrices) within a quarter of the free memory. Decided once
        per device, so the factor and the inverse read the same answer."""

        def decide():
            n = len(self.deg)
            if n > DENSE_MAX.get(dev.type, 0):
                return False
            if dev.type == "cuda":
                free, _total = torch.cuda.mem_get_info(dev)
                return 3 * 8 * n * n <= free // 4
            return True

        return self._once_per_device("dense_fits", decide)

    def forward(self) -> torch.Tensor:
        if self.lam == 0:
            return self.u
        return _Solve.apply(self.u, self)

    @torch.no_grad()
    def set_positions(self, x: torch.Tensor) -> None:
        """Set ``u`` so that the positions are ``x`` [V, 3]."""
        self.u.copy_(x + self.lam * laplacian_apply(x, self.edges, self.deg))
        self.x_prev.copy_(x)


class UniformAdam(torch.optim.Optimizer):
    """Adam with one second-moment scale per parameter tensor: the step is
    ``lr * m_hat / (sqrt(max(v_hat)) + eps)`` (the paper's optimiser for ``u``).

    Per-coordinate Adam divides each coordinate's step by its own gradient size, which
    undoes the smoothing: a vertex with a tiny, noisy gradient steps as far as one with
    a large, consistent one. With the largest second moment as the common scale, the
    steps keep the smoothed gradient's shape and only its largest part moves by ``lr``.
    """

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8):
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps})

    @torch.no_grad()
    def step(self, closure=None):
        loss = None if closure is None else closure()
        for group in self.param_groups:
            b1, b2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                st = self.state[p]
                if not st:
                    st["step"] = torch.zeros((), dtype=torch.float64)
                    st["exp_avg"] = torch.zeros_like(p)
                    st["exp_avg_sq"] = torch.zeros_like(p)
                st["step"] += 1
                t = float(st["step"])
                st["exp_avg"].lerp_(p.grad, 1 - b1)
                st["exp_avg_sq"].mul_(b2).addcmul_(p.grad, p.grad, value=1 - b2)
                denom = (st["exp_avg_sq"].max() / (1 - b2**t)).sqrt() + group["eps"]
                p.sub_(st["exp_avg"] / denom, alpha=group["lr"] / (1 - b1**t))
        return loss
