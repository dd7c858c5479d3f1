"""Benchmark of the raster primitives (the table of issue #3).

    python bench/raster.py --mesh ../shared/data/meshes/bob/bob_tri.obj [--backend cuda]

Prints median milliseconds (CUDA events, after warm-up) for batch 4 at 512 and 2048:
rasterize, interpolate (3 channels), texture bilinear / trilinear (mip chain built per
call), antialias and the chain rasterize + interpolate + texture + antialias, each as
forward / forward+backward. ``--cpu-chain`` times the torch backend's forward chain on
the CPU instead (bob at 256x256, batch 1).
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _timing import median_ms  # noqa: E402

from nvdrec import ops  # noqa: E402
from nvdrec.structures import camera as cam  # noqa: E402


def uv_sphere(n_tris: int):
    """UV sphere with about n_tris triangles; returns positions [V,3], tris [T,3], uvs [V,2]."""
    n_lat = max(4, int(math.sqrt(n_tris / 4)))
    n_lon = 2 * n_lat
    th = torch.linspace(0, math.pi, n_lat + 1)
    ph = torch.linspace(0, 2 * math.pi, n_lon + 1)
    t, p = torch.meshgrid(th, ph, indexing="ij")
    v = torch.stack([t.sin() * p.sin(), t.cos(), t.sin() * p.cos()], -1).reshape(-1, 3)
    uv = torch.stack([p / (2 * math.pi), t / math.pi], -1).reshape(-1, 2)
    i, j = torch.meshgrid(torch.arange(n_lat), torch.arange(n_lon), indexing="ij")
    a = (i * (n_lon + 1) + j).reshape(-1)
    b, c, d = a + 1, a + n_lon + 1, a + n_lon + 2
    tri = torch.cat([torch.stack([a, c, d], -1), torch.stack([a, d, b], -1)]).int()
    return v, tri, uv


def load_scene(mesh: str | None, n_tris: int):
    if mesh:
        from nvdrec.io import load_mesh

        m = load_mesh(mesh)
        uv = torch.zeros(m.num_vertices, 2)
        if m.v_tex is not None:  # per-position UVs from the first corner that uses each vertex
            uv[m.t_pos_idx.reshape(-1)] = m.v_tex[m.t_tex_idx.reshape(-1)]
        return m.v_pos, m.t_pos_idx.int(), uv
    return uv_sphere(n_tris)


def clip(v: torch.Tensor, batch: int, device) -> torch.Tensor:
    out = []
    for k in range(batch):
        ang = 2 * math.pi * k / batch
        eye = (2.5 * math.sin(ang), 0.8, 2.5 * math.cos(ang))
        mvp = cam.perspective(math.radians(45), 1.0, 0.1, 100) @ cam.look_at(eye)
        out.append(torch.nn.functional.pad(v, (0, 1), value=1.0) @ mvp.T)
    return torch.stack(out).to(device).contiguous()


def bench_size(v, tri, uv, res, backend, batch=4):
    dev = "cuda"
    pos = clip(v, batch, dev)
    tri = tri.to(dev)
    uv_attr = uv.to(dev)
    col = torch.rand(v.shape[0], 3, device=dev)
    tex = torch.rand(1, 1024, 1024, 3, device=dev)
    kw = {"backend": backend}
    posg = pos.clone().requires_grad_()
    colg = col.clone().requires_grad_()
    texg = tex.clone().requires_grad_()
    rast, db = ops.rasterize(pos, tri, (res, res), **kw)
    topo = ops.antialias_construct_topology_hash(tri)
    uvi, uvda = ops.interpolate(uv_attr, rast, tri, rast_db=db, diff_attrs="all", **kw)
    shaded = torch.rand(batch, res, res, 3, device=dev)
    rows = {}

    def fb(fwd):
        def run():
            out = fwd()
            (out[0] if isinstance(out, tuple) else out).sum().backward()

        return run

    rows["rasterize"] = (
        median_ms(lambda: ops.rasterize(pos, tri, (res, res), **kw)),
        median_ms(fb(lambda: ops.rasterize(posg, tri, (res, res), **kw))),
    )
    rows["interpolate 3ch"] = (
        median_ms(lambda: ops.interpolate(col, rast, tri, **kw)),
        median_ms(fb(lambda: ops.interpolate(colg, rast, tri, **kw))),
    )
    rows["texture bilinear"] = (
        median_ms(lambda: ops.texture(tex, uvi, filter_mode="linear", **kw)),
        median_ms(fb(lambda: ops.texture(texg, uvi, filter_mode="linear", **kw))),
    )
    rows["texture trilinear"] = (
        median_ms(
            lambda: ops.texture(tex, uvi, uv_da=uvda, filter_mode="linear-mipmap-linear", **kw)
        ),
        median_ms(
            fb(lambda: ops.texture(texg, uvi, uv_da=uvda, filter_mode="linear-mipmap-linear", **kw))
        ),
    )
    shg = shaded.clone().requires_grad_()
    rows["antialias"] = (
        median_ms(lambda: ops.antialias(shaded, rast, pos, tri, topology_hash=topo, **kw)),
        median_ms(fb(lambda: ops.antialias(shg, rast, posg, tri, topology_hash=topo, **kw))),
    )

    def chain(p, t):
        r, d = ops.rasterize(p, tri, (res, res), **kw)
        u, ud = ops.interpolate(uv_attr, r, tri, rast_db=d, diff_attrs="all", **kw)
        c = ops.texture(t, u, uv_da=ud, filter_mode="linear-mipmap-linear", **kw)
        return ops.antialias(c, r, p, tri, topology_hash=topo, **kw)

    rows["chain"] = (median_ms(lambda: chain(pos, tex)), median_ms(fb(lambda: chain(posg, texg))))
    return rows


def cpu_chain(v, tri, uv, res=256, iters=5) -> float:
    pos = clip(v, 1, "cpu")
    tex = torch.rand(1, 1024, 1024, 3)
    topo = ops.antialias_construct_topology_hash(tri)
    times = []
    for _ in range(iters + 1):
        t0 = time.perf_counter()
        with torch.no_grad():
            r, d = ops.rasterize(pos, tri, (res, res), backend="torch")
            u, ud = ops.interpolate(uv, r, tri, rast_db=d, diff_attrs="all", backend="torch")
            c = ops.texture(tex, u, uv_da=ud, filter_mode="linear-mipmap-linear", backend="torch")
            ops.antialias(c, r, pos, tri, topology_hash=topo, backend="torch")
        times.append(time.perf_counter() - t0)
    return statistics.median(times[1:]) * 1000


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mesh", default=None, help="OBJ for the first row (default: bob if found)")
    ap.add_argument("--backend", default="cuda")
    ap.add_argument("--sizes", default="512,2048")
    ap.add_argument("--sphere-tris", type=int, default=1_000_000)
    ap.add_argument("--cpu-chain", action="store_true")
    args = ap.parse_args()
    mesh = args.mesh
    if mesh is None:
        cand = Path(__file__).resolve().parents[2] / "shared/data/meshes/bob/bob_tri.obj"
        mesh = str(cand) if cand.exists() else None
    if args.cpu_chain:
        torch.set_num_threads(2)
        v, tri, uv = load_scene(mesh, 0)
        print(
            f"torch backend, CPU ({torch.get_num_threads()} threads), "
            f"{tri.shape[0]} tris, 256x256, batch 1:"
        )
        print(f"forward chain median {cpu_chain(v, tri, uv):.1f} ms")
        return
    name = torch.cuda.get_device_name()
    print(f"device: {name}, torch {torch.__version__}, backend {args.backend}, batch 4, median ms")
    scenes = [(Path(mesh).stem if mesh else "sphere-10k", load_scene(mesh, 10_688))]
    scenes.append((f"sphere {args.sphere_tris // 1000}k", uv_sphere(args.sphere_tris)))
    header = (
        "| mesh | tris | res | "
        + " | ".join(
            [
                "rasterize",
                "interpolate 3ch",
                "texture bilinear",
                "texture trilinear",
                "antialias",
                "chain",
            ]
        )
        + " |"
    )
    print(header)
    print("|" + "---|" * 9)
    for label, (v, tri, uv) in scenes:
        for res in (int(s) for s in args.sizes.split(",")):
            rows = bench_size(v, tri, uv, res, args.backend)
            cells = " | ".join(f"{a:.3f} / {b:.3f}" for a, b in rows.values())
            print(f"| {label} | {tri.shape[0]} | {res} | {cells} |", flush=True)


if __name__ == "__main__":
    main()
