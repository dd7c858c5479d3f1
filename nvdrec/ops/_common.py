"""Argument checks and backend selection shared by the ops."""

from __future__ import annotations

import torch

BACKENDS = ("auto", "torch", "cuda", "nvdiffrast")


def check_tensor(name: str, t, ndims: tuple[int, ...], last: int | None = None, dtype=None):
    """Raise a ValueError naming ``name`` and showing the shape it got."""
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if t.ndim not in ndims or (last is not None and t.shape[-1] != last):
        want = " or ".join(f"{n}-D" for n in ndims)
        tail = f" with last dimension {last}" if last is not None else ""
        raise ValueError(f"{name} must be {want}{tail}, got shape {tuple(t.shape)}")
    if dtype is not None and t.dtype not in (dtype if isinstance(dtype, tuple) else (dtype,)):
        raise ValueError(f"{name} must have dtype {dtype}, got {t.dtype}")


def pick_backend(backend: str, *tensors: torch.Tensor) -> str:
    """Resolve ``backend="auto"``: our CUDA kernels for CUDA tensors when they can be
    built and loaded, else the torch reference."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend != "auto":
        if backend in ("cuda", "nvdiffrast") and not all(t.is_cuda for t in tensors):
            raise ValueError(
                f"backend='{backend}' needs CUDA tensors; use backend='torch' on the CPU"
            )
        return backend
    if all(t.is_cuda for t in tensors):
        from ..native import kernels_available

        if kernels_available():
            return "cuda"
    return "torch"


def gather_rows(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """``x[idx]`` for integer ``idx`` of any shape, through ``index_select``: its backward is
    an ``index_add`` (atomic adds on CUDA), where ``x[idx]``'s backward goes through
    ``index_put_(accumulate=True)``, whose sort-based CUDA kernel took about 20 ms per call
    in a bob training iteration on an H100."""
    out = x.index_select(0, idx.reshape(-1).long())
    return out.reshape(*idx.shape, *x.shape[1:])


def unique_rows(x: torch.Tensor, return_inverse: bool = False):
    """The distinct rows of ``x`` [N, C], in the order ``torch.unique(x, dim=0)`` gives
    them (lexicographic), and with ``return_inverse`` also each row's index among them
    [N]. The same result as ``torch.unique(x, dim=0, ...)``, without its row-wise sort,
    which took 12.5 s for a grid-128 tet grid's 10M edges on a 2-core CPU: non-negative
    integers whose rows fit one int64 key go through a 1-D unique of the keys, other rows
    through stable sorts one column at a time."""
    n, c = x.shape
    if n == 0 or c == 0:
        u = x[: min(n, 1)]
        return (u, torch.zeros(n, dtype=torch.long, device=x.device)) if return_inverse else u
    if not x.is_floating_point() and not x.is_complex():
        lo, hi = (int(v) for v in torch.aminmax(x))
        base = hi + 1
        if lo >= 0 and base**c < 2**63:
            k = x[:, 0].long()
            for j in range(1, c):
                k = k * base + x[:, j]
            if return_inverse:
                k, inverse = torch.unique(k, return_inverse=True)
            else:
                k = torch.unique(k)
            cols = []
            for _ in range(c):
                cols.append(k % base)
                k = k // base
            u = torch.stack(cols[::-1], dim=1).to(x.dtype)
            return (u, inverse) if return_inverse else u
    order = torch.arange(n, device=x.device)
    for j in reversed(range(c)):  # stable sorts, last column first: lexicographic order
        order = order[torch.sort(x[order, j], stable=True).indices]
    xs = x[order]
    new = torch.ones(n, dtype=torch.bool, device=x.device)
    new[1:] = (xs[1:] != xs[:-1]).any(dim=1)
    u = xs[new]
    if not return_inverse:
        return u
    inverse = torch.empty(n, dtype=torch.long, device=x.device)
    inverse[order] = torch.cumsum(new, 0) - 1
    return u, inverse


def boost_gradient(x: torch.Tensor, factor: float) -> torch.Tensor:
    """Identity in the forward pass; multiplies the gradient by ``factor``."""
    if factor == 1.0:
        return x
    return x * factor - x.detach() * (factor - 1.0)


def zeros_if_none(g, like: torch.Tensor) -> torch.Tensor:
    """A backward's incoming gradient, contiguous; zeros shaped like ``like`` when None."""
    return torch.zeros_like(like) if g is None else g.contiguous()
