"""Image quality metrics for validation: MSE, PSNR, SSIM."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["image_metrics", "ssim", "lpips_metric"]


def ssim(a: torch.Tensor, b: torch.Tensor) -> float:
    """SSIM (Wang et al. 2004; Gaussian window 11, sigma 1.5) of images [H, W, C] in [0, 1]."""
    x, y = a.permute(2, 0, 1)[None].float(), b.permute(2, 0, 1)[None].float()
    c = x.shape[1]
    g = torch.exp(-((torch.arange(11, device=x.device) - 5.0) ** 2) / (2 * 1.5**2))
    g = g / g.sum()
    win = (g[:, None] * g[None, :]).expand(c, 1, 11, 11).contiguous()

    def blur(t):
        return F.conv2d(t, win, groups=c)

    mx, my = blur(x), blur(y)
    vx, vy, cov = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return float(s.mean())


def lpips_metric(device):
    """LPIPS (Zhang et al. 2018, AlexNet features) as ``f(opt, ref) -> float`` for images
    [H, W, 3] in [0, 1] when the optional ``lpips`` package and its weights are available;
    otherwise None and a one-line reason on stderr (the run goes on without it)."""
    import sys

    try:
        import lpips  # optional; not a dependency of nvdrec
    except ImportError:
        return None
    try:
        net = lpips.LPIPS(net="alex", verbose=False).to(device).eval()
    except Exception as e:  # e.g. weights not downloadable on an offline machine
        print(f"nvdrec: LPIPS skipped ({type(e).__name__}: {e})", file=sys.stderr)
        return None

    @torch.no_grad()
    def f(opt: torch.Tensor, ref: torch.Tensor) -> float:
        a = opt.permute(2, 0, 1)[None].float() * 2 - 1
        b = ref.permute(2, 0, 1)[None].float() * 2 - 1
        return float(net(a, b).mean())

    return f


def image_metrics(opt: torch.Tensor, ref: torch.Tensor) -> dict:
    """MSE, PSNR (dB, peak 1) and SSIM of two LDR images [H, W, C] in [0, 1]."""
    mse = float(torch.mean((opt - ref) ** 2))
    psnr = 10 * math.log10(1.0 / max(mse, 1e-10))
    return {
        "mse": mse,
        "psnr": psnr,
        "ssim": ssim(opt, ref) if min(opt.shape[:2]) >= 11 else float("nan"),
    }
