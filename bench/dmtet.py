"""Marching tetrahedra benchmark (issue #5): forward + backward on the 64 and 128 grids.

python bench/dmtet.py [--device cpu|cuda]
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nvdrec.geometry import marching_tets, tet_grid  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args()
    dev = args.device
    name = (
        torch.cuda.get_device_name()
        if dev == "cuda"
        else f"CPU ({torch.get_num_threads()} threads)"
    )
    print(f"device: {name}, torch {torch.__version__}, median ms")
    print("| grid | verts | tets | faces | fwd | fwd+bwd |")
    print("|---|---|---|---|---|---|")
    for res in (64, 128):
        v, t = tet_grid(res)
        v, t = (v * 2.1).to(dev), t.to(dev)
        sdf = (v.norm(dim=-1) - 0.8 + 0.05 * torch.sin(8 * v[:, 0])).requires_grad_()
        vv = v.clone().requires_grad_()

        def fwd():
            with torch.no_grad():
                return marching_tets(vv, sdf, t)

        def fwdbwd():
            r = marching_tets(vv, sdf, t)
            r.verts.sum().backward()
            return r

        res_t = []
        for fn in (fwd, fwdbwd):
            times = []
            for i in range(12):
                if dev == "cuda":
                    torch.cuda.synchronize()
                t0 = time.perf_counter()
                r = fn()
                if dev == "cuda":
                    torch.cuda.synchronize()
                if i >= 2:
                    times.append((time.perf_counter() - t0) * 1000)
            res_t.append(statistics.median(times))
        print(
            f"| {res} | {len(v)} | {len(t)} | {len(r.faces)} | {res_t[0]:.2f} | {res_t[1]:.2f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
