"""Split-sum shading benchmark (issue #4): EnvironmentLight.build_mips forward+backward
at R=512 (our sparse-gather kernel, and the torch/texture-op path for comparison),
shading of 4 x 512 x 512 pixels, and the image loss on 4 x 512 x 512 x 3 (fused kernel vs
torch), median ms (CUDA events).

    python bench/shading.py
"""

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _timing import median_ms  # noqa: E402

from nvdrec.render import EnvironmentLight  # noqa: E402

_GRADS = {}


def light_backward(lgt):
    """Backward with upstream gradients as the fused shading kernel delivers them: one
    tensor for the buffer that holds all specular levels (where they share one) and one
    for the irradiance map."""
    base = lgt.specular[0]._base
    outs = [base, lgt.diffuse] if base is not None else [*lgt.specular, lgt.diffuse]
    grads = []
    for o in outs:
        if o.shape not in _GRADS:
            _GRADS[o.shape] = torch.rand(o.shape, device=o.device)
        grads.append(_GRADS[o.shape])
    torch.autograd.backward(outs, grads)


def main():
    print(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}, median ms")
    import time

    lgt = EnvironmentLight.random(512).cuda()
    torch.cuda.synchronize()
    t0 = time.time()
    with torch.no_grad():
        lgt.build_mips()  # first call builds the sparse filter operator (cached)
    torch.cuda.synchronize()
    print(f"filter operator build (once per run): {time.time() - t0:.2f} s")

    def mips_f():
        with torch.no_grad():
            lgt.build_mips()

    def mips_fb():
        lgt.build_mips()
        light_backward(lgt)

    from nvdrec.ops.cubefilter import _spmm, cube_filter_operator

    op = cube_filter_operator(512, *lgt.filter_plan(), "cuda")
    x = torch.rand(op.shape[1], 3, device="cuda")
    y = torch.rand(op.shape[0], 3, device="cuda")
    t_len = (op.t_row_ptr[1:] - op.t_row_ptr[:-1]).float()
    print(
        f"operator {op.shape[0]} x {op.shape[1]}, {op.nnz / 1e6:.1f} M entries; transpose rows: "
        f"mean {t_len.mean():.1f}, max {int(t_len.max())}, rows > 256: {int((t_len > 256).sum())}"
    )
    print("\n| build_mips R=512 | fwd | fwd+bwd | gather A x | gather A^T y |")
    print("|---|---|---|---|---|")
    row = [median_ms(mips_f, 3, 15), median_ms(mips_fb, 3, 15)]
    row += [median_ms(lambda: _spmm(op.row_ptr, op.col, op.val, x, op.seg), 3, 20)]
    row += [median_ms(lambda: _spmm(op.t_row_ptr, op.t_col, op.t_val, y, op.t_seg), 3, 20)]
    print("| sparse gather kernel | " + " | ".join(f"{t:.3f}" for t in row) + " |")
    plain = [median_ms(lambda: _spmm(op.row_ptr, op.col, op.val, x), 3, 20)]
    plain += [median_ms(lambda: _spmm(op.t_row_ptr, op.t_col, op.t_val, y), 3, 20)]
    print(f"| (gathers without row splitting) | | | {plain[0]:.3f} | {plain[1]:.3f} |")

    def gbuffers(kind):
        """G-buffers of 4 x 512 x 512 pixels: "smooth" (a sphere-like normal field, smooth
        materials: neighbouring pixels read neighbouring texels as in a render) or
        "random" (every pixel independent: the worst case for the light-gradient atomics)."""
        g = torch.Generator(device="cuda").manual_seed(0)
        if kind == "random":
            n = torch.randn(4, 512, 512, 3, device="cuda", generator=g)
            ks = torch.rand(4, 512, 512, 3, device="cuda", generator=g)
        else:
            t = torch.linspace(-1, 1, 512, device="cuda")
            v, u = torch.meshgrid(t, t, indexing="ij")
            z = torch.sqrt((1 - u * u - v * v).clamp(min=0)) + 0.2
            rot = torch.linalg.qr(torch.randn(4, 3, 3, device="cuda", generator=g))[0]
            n = torch.stack([u, -v, z], -1)[None] @ rot.transpose(1, 2)[:, None]
            coarse = torch.rand(4, 3, 16, 16, device="cuda", generator=g)
            ks = torch.nn.functional.interpolate(coarse, 512, mode="bilinear").permute(0, 2, 3, 1)
        n = torch.nn.functional.normalize(n, dim=-1).contiguous().requires_grad_()
        pos = (torch.randn(4, 512, 512, 3, device="cuda", generator=g) * 0.01).requires_grad_()
        kd = torch.rand(4, 512, 512, 3, device="cuda", generator=g).requires_grad_()
        return pos, n, kd, ks.contiguous().requires_grad_()

    view = torch.tensor([[0.0, 0.0, 3.0]], device="cuda").expand(4, 3)
    go = torch.rand(4, 512, 512, 3, device="cuda")

    def timings(bufs, light_grad):
        with torch.no_grad():
            lgt.build_mips()
        sizes = [s.shape[1] for s in lgt.specular]
        flat = torch.cat([s.reshape(-1, 3) for s in lgt.specular]).requires_grad_(light_grad)
        lgt.specular = list(flat.split([6 * k * k for k in sizes]))
        lgt.specular = [s.view(6, k, k, 3) for s, k in zip(lgt.specular, sizes)]
        lgt.diffuse.requires_grad_(light_grad)

        def f():
            with torch.no_grad():
                lgt.shade(*bufs[:3], bufs[3], view)

        def fb():
            torch.autograd.backward(lgt.shade(*bufs[:3], bufs[3], view), go)

        return median_ms(f, 3, 20), median_ms(fb, 3, 20)

    print("\n| shade 4x512x512 | G-buffers | fwd | fwd+bwd | fwd+bwd with light grads |")
    print("|---|---|---|---|---|")
    for kind in ("smooth", "random"):
        bufs = gbuffers(kind)
        for label, mode in (("fused kernel", "auto"), ("torch ops", "torch")):
            lgt.backend = mode
            t_f, t_fb = timings(bufs, False)
            _, t_fbl = timings(bufs, True)
            print(f"| {label} | {kind} | {t_f:.3f} | {t_fb:.3f} | {t_fbl:.3f} |")
    lgt.backend = "auto"

    ref = EnvironmentLight.random(512, backend="torch").cuda()

    def ref_f():
        with torch.no_grad():
            ref.build_mips()

    def ref_fb():
        ref.build_mips()
        light_backward(ref)

    print("\n| build_mips R=512, torch/texture-op path | fwd | fwd+bwd |")
    print("|---|---|---|")
    print(f"| | {median_ms(ref_f, 2, 5):.3f} | {median_ms(ref_fb, 2, 5):.3f} |")

    from nvdrec.ops.loss import image_loss

    img = torch.rand(4, 512, 512, 3, device="cuda", requires_grad=True)
    tgt = torch.rand(4, 512, 512, 3, device="cuda")
    print("\n| image loss 4x512x512x3 | fused fwd | fused fwd+bwd | torch fwd | torch fwd+bwd |")
    print("|---|---|---|---|---|")
    for kind in ("logl1", "mse", "relmse"):
        t = []
        for backend in ("cuda", "torch"):

            def lf():
                with torch.no_grad():
                    image_loss(img, tgt, kind, backend=backend)

            def lfb():
                image_loss(img, tgt, kind, backend=backend).backward()

            t += [median_ms(lf, 5, 30), median_ms(lfb, 5, 30)]
        print(f"| {kind} | " + " | ".join(f"{x:.3f}" for x in t) + " |")


if __name__ == "__main__":
    main()
