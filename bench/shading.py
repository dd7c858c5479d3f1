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
        (sum(s.sum() for s in lgt.specular) + lgt.diffuse.sum()).backward()

    n = torch.nn.functional.normalize(torch.randn(4, 512, 512, 3, device="cuda"), dim=-1)
    pos = torch.zeros_like(n)
    view = torch.tensor([[0.0, 0.0, 3.0]], device="cuda").expand(4, 3)
    kd = torch.rand(4, 512, 512, 3, device="cuda", requires_grad=True)
    ks = torch.rand(4, 512, 512, 3, device="cuda", requires_grad=True)
    with torch.no_grad():
        lgt.build_mips()

    def shade_f():
        with torch.no_grad():
            lgt.shade(pos, n, kd, ks, view)

    def shade_fb():
        lgt.shade(pos, n, kd, ks, view).sum().backward()

    print("| build_mips R=512 fwd | fwd+bwd | shade 4x512x512 fwd | fwd+bwd |")
    print("|---|---|---|---|")
    row = [median_ms(mips_f, 3, 15), median_ms(mips_fb, 3, 15)]
    with torch.no_grad():
        lgt.build_mips()
    lgt.specular = [s.detach() for s in lgt.specular]
    lgt.diffuse = lgt.diffuse.detach()
    row += [median_ms(shade_f, 3, 15), median_ms(shade_fb, 3, 15)]
    print("| " + " | ".join(f"{t:.3f}" for t in row) + " |")

    ref = EnvironmentLight.random(512, backend="torch").cuda()

    def ref_f():
        with torch.no_grad():
            ref.build_mips()

    def ref_fb():
        ref.build_mips()
        (sum(s.sum() for s in ref.specular) + ref.diffuse.sum()).backward()

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
