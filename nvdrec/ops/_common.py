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


def boost_gradient(x: torch.Tensor, factor: float) -> torch.Tensor:
    """Identity in the forward pass; multiplies the gradient by ``factor``."""
    if factor == 1.0:
        return x
    return x * factor - x.detach() * (factor - 1.0)


def zeros_if_none(g, like: torch.Tensor) -> torch.Tensor:
    """A backward's incoming gradient, contiguous; zeros shaped like ``like`` when None."""
    return torch.zeros_like(like) if g is None else g.contiguous()
