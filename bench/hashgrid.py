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
        print(f"| {n} random | " + " | ".join(f"{t:.3f}" for t in row) + " |", flush=True)
    # as in training: 4 images of 512 x 512 pixels, rows of neighbouring surface points and
    # about 60% background pixels at one point with zero upstream gradient
    x, mask = render_like_points(4, 512)
    table = init_hashgrid_params(cfg).cuda().requires_grad_()
    mat = MLPTexture3D(([0.0] * 3, [1.0] * 3), config=cfg).cuda()
    go_enc = mask[:, None] * torch.rand(len(x), cfg.output_dim, device="cuda")
    go_mlp = mask[:, None] * torch.rand(len(x), 9, device="cuda")

    def enc_f():
        with torch.no_grad():
            hashgrid_encode(x, table, cfg)

    def enc_fb():
        torch.autograd.backward(hashgrid_encode(x, table, cfg), go_enc)

    def mlp_f():
        with torch.no_grad():
            mat.sample(x)

    def mlp_fb():
        torch.autograd.backward(mat.sample(x), go_mlp)

    row = [median_ms(f) for f in (enc_f, enc_fb, mlp_f, mlp_fb)]
    print(f"| {len(x)} render-like | " + " | ".join(f"{t:.3f}" for t in row) + " |")


def render_like_points(batch, res):
    """Points [batch * res^2, 3] of a bumpy disc seen head-on (40% of the pixels) and the
    background (the other pixels, all at one point), and the coverage mask."""
    t = torch.linspace(-1, 1, res, device="cuda")
    v, u = torch.meshgrid(t, t, indexing="ij")
    inside = (u * u + v * v) < 0.5
    pts = []
    for b in range(batch):
        z = 0.5 + 0.1 * torch.sin(5 * u + b) * torch.cos(4 * v)
        p = torch.stack([u * 0.4 + 0.5, v * 0.4 + 0.5, z], -1)
        pts.append(torch.where(inside[..., None], p, torch.full_like(p, 0.5)))
    x = torch.stack(pts).reshape(-1, 3).contiguous()
    return x, inside.expand(batch, res, res).reshape(-1).float()


if __name__ == "__main__":
    main()
