"""Image losses with the meanings of nvdiffrec's ``loss`` key."""

from __future__ import annotations

import torch

from ..native.build import load
from ._common import pick_backend

__all__ = ["tonemap_srgb", "image_loss", "LOSSES"]

LOSSES = ("l1", "mse", "logl1", "logl2", "smape", "relmse")


def tonemap_srgb(x: torch.Tensor) -> torch.Tensor:
    """log(x + 1) followed by the sRGB transfer curve: compresses HDR values so that a
    loss weighs dark and bright regions more evenly (nvdiffrec's log losses)."""
    f = torch.log(x.clamp(0.0, 65535.0) + 1.0)
    return torch.where(
        f > 0.0031308, torch.pow(f.clamp(min=0.0031308), 1.0 / 2.4) * 1.055 - 0.055, 12.92 * f
    )


def image_loss(
    img: torch.Tensor, ref: torch.Tensor, loss: str = "logl1", backend: str = "auto"
) -> torch.Tensor:
    """Scalar loss between images [..., C] (linear radiance).

    l1 / mse: mean absolute / squared error; logl1 / logl2: the same after
    :func:`tonemap_srgb`; smape: mean |x - y| / (|x| + |y| + 0.01); relmse: mean
    (x - y)^2 / (y^2 + 0.01). On CUDA float32 images (``backend`` "auto" or "cuda") one
    fused kernel computes the loss and one its gradient with respect to ``img``; the
    torch code below is the CPU path and the reference (also used when ``ref`` needs a
    gradient).
    """
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
    if img.shape != ref.shape:
        raise ValueError(f"image_loss: img {tuple(img.shape)} and ref {tuple(ref.shape)} differ")
    if (
        backend != "torch"
        and img.dtype == torch.float32
        and ref.dtype == torch.float32
        and not ref.requires_grad
        and pick_backend("cuda" if backend == "nvdiffrast" else backend, img, ref) == "cuda"
    ):
        return image_loss_cuda(img, ref, LOSSES.index(loss))
    if loss == "l1":
        return (img - ref).abs().mean()
    if loss == "mse":
        return ((img - ref) ** 2).mean()
    if loss == "logl1":
        return (tonemap_srgb(img) - tonemap_srgb(ref)).abs().mean()
    if loss == "logl2":
        return ((tonemap_srgb(img) - tonemap_srgb(ref)) ** 2).mean()
    if loss == "smape":
        return ((img - ref).abs() / (img.abs() + ref.abs() + 0.01)).mean()
    if loss == "relmse":
        return ((img - ref) ** 2 / (ref * ref + 0.01)).mean()
    raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")


# ------------------------------------------------------------------ CUDA
class _ImageLossFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, img, ref, kind):
        ctx.save_for_backward(img, ref)
        ctx.kind = kind
        return load().image_loss_fwd(img=img, ref=ref, type=kind)

    @staticmethod
    def backward(ctx, g):
        img, ref = ctx.saved_tensors
        grad = load().image_loss_bwd(
            img=img, ref=ref, type=ctx.kind, grad_out=g.reshape(1).float().contiguous()
        )
        return grad, None, None


def image_loss_cuda(img, ref, kind: int):
    """Fused image loss (kind: index into nvdrec.ops.loss.LOSSES), a 0-d tensor."""
    return _ImageLossFn.apply(img.contiguous(), ref.detach().contiguous(), kind)
