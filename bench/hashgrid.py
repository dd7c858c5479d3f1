"""Hash-grid encoding + MLP benchmark (issue #5).

    python bench/hashgrid.py            # on the GPU machine

Prints median ms (CUDA events) of nvdrec's hash encoding alone and encoding + the
32-32-32-9 MLP, forward and backward, for 2^20 points and for 4 x 512 x 512 points,
nvdiffrec's material configuration (16 levels x 2 features, 2^19 table, 16..4096).
"""

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _timing import median_ms  # noqa: E402

from nvdrec.ops import HashGridConfig, hashgrid_encode  # noqa: E402
from nvdrec.ops.hashgrid import init_hashgrid_params  # noqa: E402
from nvdrec.render import MLPTexture3D  # noqa: E402


def main():
    cfg = HashGridConfig()
    print(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}, median ms")
    print("| points | encode fwd | encode fwd+bwd | encode+MLP fwd | encode+MLP fwd+bwd |")
    print("|---|---|---|---|---|")
    for n in (1 << 20, 4 * 512 * 512):
        x = torch.rand(n, 3, device="cuda")
        table = init_hashgrid_params(cfg).cuda().requires_grad_()
        mat = MLPTexture3D(([0.0] * 3, [1.0] * 3), config=cfg).cuda()

        def enc_f():
            with torch.no_grad():
                hashgrid_encode(x, table, cfg)

        def enc_fb():
            hashgrid_encode(x, table, cfg).sum().backward()

        def mlp_f():
            with torch.no_grad():
                mat.sample(x)

        def mlp_fb():
            mat.sample(x).sum().backward()

        row = [median_ms(f) for f in (enc_f, enc_fb, mlp_f, mlp_fb)]
        print(f"| {n} | " + " | ".join(f"{t:.3f}" for t in row) + " |", flush=True)


if __name__ == "__main__":
    main()
