"""Clean-up + unwrap + bake of large and noisy pass-1 meshes: every stage's seconds.

    python bench/unwrap.py [--timeout 60] [--res 1024] [--cases dense noisy]

Cases (marching tetrahedra of an SDF on nvdrec's tet grids, as pass 1 produces them):
- dense: a bumpy blob of 300k triangles (a latitude-longitude grid), a clean but large
  surface as a long pass 1 at a fine grid gives;
- noisy: a random SDF on a grid 128 (hundreds of thousands of triangles in thousands of
  components), the worst case of an untrained or diverged pass 1.
The bake evaluates a procedural material (three sines) at every covered texel. Runs on
the CUDA device when there is one (bake), else on the CPU; unwrap is always on the CPU.
"""

import argparse
import math
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nvdrec.geometry import DMTetGeometry, clean_mesh, unwrap_uv  # noqa: E402
from nvdrec.render import bake_textures  # noqa: E402
from nvdrec.structures import Mesh  # noqa: E402


def surface(case: str, device):
    if case == "dense":
        return bumpy_sphere(300, 500).to(device)
    else:
        geo = DMTetGeometry(grid_res=128, scale=2.0)
        g = torch.Generator().manual_seed(0)
        sdf = torch.rand(len(geo.sdf), generator=g) - 0.85
    with torch.no_grad():
        geo.sdf.copy_(sdf)
    geo = geo.to(device)
    with torch.no_grad():
        return geo.get_mesh().detach()


def bumpy_sphere(n_lat: int, n_lon: int) -> Mesh:
    """A closed bumpy blob of 2 n_lon (n_lat - 1) triangles (latitude-longitude grid with
    the poles as single vertices)."""
    lat = torch.linspace(0, math.pi, n_lat + 1)[1:-1]
    lon = torch.linspace(0, 2 * math.pi, n_lon + 1)[:-1]
    la, lo = torch.meshgrid(lat, lon, indexing="ij")
    d = torch.stack([la.sin() * lo.cos(), la.cos(), la.sin() * lo.sin()], -1).reshape(-1, 3)
    d = torch.cat([torch.tensor([[0.0, 1, 0]]), d, torch.tensor([[0.0, -1, 0]])])
    r = 0.7 + 0.06 * torch.sin(9 * d[:, 0]) * torch.sin(7 * d[:, 1]) * torch.sin(8 * d[:, 2])
    v = d * r[:, None]
    rows, cols = n_lat - 1, n_lon
    idx = torch.arange(rows * cols).reshape(rows, cols) + 1
    right = idx.roll(-1, 1)
    quads_a = torch.stack([idx[:-1], idx[1:], right[:-1]], -1).reshape(-1, 3)
    quads_b = torch.stack([right[:-1], idx[1:], right[1:]], -1).reshape(-1, 3)
    top = torch.stack([torch.zeros(cols, dtype=torch.long), idx[0], right[0]], -1)
    last = rows * cols + 1
    bottom = torch.stack([idx[-1], torch.full((cols,), last), right[-1]], -1)
    return Mesh(v_pos=v, t_pos_idx=torch.cat([top, quads_a, quads_b, bottom]))


def material(p):
    kd = 0.5 + 0.5 * torch.sin(torch.stack([5 * p[:, 0], 7 * p[:, 1], 3 * p[:, 2]], -1))
    return kd, torch.full_like(kd, 0.5), torch.tensor([0.0, 0, 1], device=p.device).expand_as(kd)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--timeout", type=float, default=60.0)
    ap.add_argument("--res", type=int, default=1024)
    ap.add_argument("--cases", nargs="+", default=["dense", "noisy"])
    args = ap.parse_args()
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    card = torch.cuda.get_device_name() if dev.type == "cuda" else "cpu"
    print(f"{card}, texture {args.res}^2, unwrap_timeout {args.timeout} s")
    print(
        "case | triangles in | after clean-up | components | clean-up s | unwrap | unwrap s "
        "| bake s | total s"
    )
    for case in args.cases:
        mesh = surface(case, dev)
        t0 = time.perf_counter()
        clean, rep = clean_mesh(mesh)
        t1 = time.perf_counter()
        lines = []
        uv = unwrap_uv(clean, args.res, args.timeout, lines.append)
        t2 = time.perf_counter()
        bake_textures(uv, material, (args.res, args.res))
        if dev.type == "cuda":
            torch.cuda.synchronize()
        t3 = time.perf_counter()
        method = lines[0].split(" by ")[1].split(" ")[0]
        print(
            f"{case} | {rep.faces_in} | {rep.faces_out} | {rep.components} | {t1 - t0:.1f} | "
            f"{method} | {t2 - t1:.1f} | {t3 - t2:.1f} | {t3 - t0:.1f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
