"""Split-sum shading benchmark (issue #4): EnvironmentLight.build_mips forward+backward
at R=512 and shading of 4 x 512 x 512 pixels, median ms (CUDA events).

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
    lgt = EnvironmentLight.random(512).cuda()

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


if __name__ == "__main__":
    main()
