"""Pass 2's Large Steps solves: the dense inverse against conjugate gradients, per mesh size.

    python bench/smooth_solve.py [--device cpu|cuda] [--sizes 1000 2000 ...] [--lam 19]

For UV spheres of about the given vertex counts: the time to build the inverse of
``I + lam L`` once, and the median time of one training iteration's solves (the forward
solve of the positions and the backward solve of the gradient) with each solver, after
warm-up (CUDA events on a GPU). Where cholespy is installed, also the sparse Cholesky
factor: its build time and its solves. The step between iterations is a small random change of
``u``, as in training.
"""

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _timing import median_ms  # noqa: E402  (bench/_timing.py, this folder)

from nvdrec.geometry import SmoothPositions  # noqa: E402


def uv_sphere(vertices: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """A closed UV sphere with about ``vertices`` vertices (rings x 2 rings around)."""
    rings = max(3, round(math.sqrt(vertices / 2)))
    lon = 2 * rings
    th = torch.arange(1, rings, dtype=torch.float64) * math.pi / rings
    ph = torch.arange(lon, dtype=torch.float64) * 2 * math.pi / lon
    th, ph = torch.meshgrid(th, ph, indexing="ij")
    ring = torch.stack([th.sin() * ph.sin(), th.cos(), th.sin() * ph.cos()], -1).reshape(-1, 3)
    v = torch.cat([torch.tensor([[0.0, 1.0, 0.0]]), ring, torch.tensor([[0.0, -1.0, 0.0]])])
    idx = torch.arange(len(ring)).reshape(rings - 1, lon) + 1
    nxt = idx.roll(-1, 1)
    tris = [torch.stack([torch.zeros(lon, dtype=torch.long), idx[0], nxt[0]], 1)]
    tris.append(torch.stack([idx[:-1], idx[1:], nxt[1:]], -1).reshape(-1, 3))
    tris.append(torch.stack([idx[:-1], nxt[1:], nxt[:-1]], -1).reshape(-1, 3))
    last = torch.full((lon,), len(v) - 1, dtype=torch.long)
    tris.append(torch.stack([last, nxt[-1], idx[-1]], 1))
    return v.float().to(device), torch.cat(tris).int().to(device)


def iteration(sp: SmoothPositions, w: torch.Tensor, gen: torch.Generator):
    def run():
        with torch.no_grad():
            sp.u.add_(1e-3 * torch.randn(w.shape, generator=gen, device="cpu").to(w.device))
        (sp() * w).sum().backward()
        sp.u.grad = None

    return run


def median_cpu_ms(fn, warmup: int = 2, iters: int = 9) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(iters):
        t = time.perf_counter()
        fn()
        times.append(1e3 * (time.perf_counter() - t))
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 2000, 3000, 4500, 6000, 8000])
    ap.add_argument("--lam", type=float, default=19.0)
    args = ap.parse_args()
    dev = torch.device(args.device)
    cuda = dev.type == "cuda"
    name = torch.cuda.get_device_name(dev) if cuda else f"CPU ({torch.get_num_threads()} threads)"
    print(f"device: {name}, torch {torch.__version__}, lambda {args.lam}, median ms")
    try:
        import cholespy  # noqa: F401

        solvers = ("dense", "cg", "cholesky")
    except ImportError:
        solvers = ("dense", "cg")
        print("(cholespy is not installed: no Cholesky columns)")
    head = ["vertices", "inverse built once", "dense solves", "conjugate gradients"]
    if "cholesky" in solvers:
        head += ["Cholesky factor built once", "Cholesky solves"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for n in args.sizes:
        v, f = uv_sphere(n, dev)
        gen = torch.Generator().manual_seed(0)
        w = torch.randn(v.shape, generator=gen).to(dev)
        row = [f"{len(v):,}"]
        for solver in solvers:
            sp = SmoothPositions(v, f, args.lam, solver=solver)
            if solver in ("dense", "cholesky"):
                t = time.perf_counter()
                sp.inverse() if solver == "dense" else sp.factor()
                if cuda:
                    torch.cuda.synchronize(dev)
                row.append(f"{time.perf_counter() - t:.2f} s")
            fn = iteration(sp, w, gen)
            ms = median_ms(fn) if cuda else median_cpu_ms(fn)
            row.append(f"{ms:.2f}")
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
