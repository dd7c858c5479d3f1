"""Kernel-level profile of the raster chain (forward + backward) with torch.profiler.

python bench/profile_chain.py --mesh PATH.obj --res 512
"""

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from raster import clip, load_scene  # noqa: E402

from nvdrec import ops  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mesh", default=None)
    ap.add_argument("--res", type=int, default=512)
    a = ap.parse_args()
    v, tri, uv = load_scene(a.mesh, 10688)
    pos = clip(v, 4, "cuda").requires_grad_()
    tri, uv = tri.cuda(), uv.cuda()
    tex = torch.rand(1, 1024, 1024, 3, device="cuda", requires_grad=True)
    topo = ops.antialias_construct_topology_hash(tri)

    def step():
        r, d = ops.rasterize(pos, tri, (a.res, a.res))
        u, ud = ops.interpolate(uv, r, tri, rast_db=d, diff_attrs="all")
        c = ops.texture(tex, u, uv_da=ud, filter_mode="linear-mipmap-linear")
        ops.antialias(c, r, pos, tri, topology_hash=topo).sum().backward()

    for _ in range(5):
        step()
    torch.cuda.synchronize()
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CUDA, ProfilerActivity.CPU]) as prof:
        for _ in range(10):
            step()
        torch.cuda.synchronize()
    print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=25))


if __name__ == "__main__":
    main()
