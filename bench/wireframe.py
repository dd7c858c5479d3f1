"""Side-by-side wireframe pictures of meshes (e.g. DMTet against FlexiCubes results).

    python bench/wireframe.py OUT.png MESH.obj [MESH.obj ...] [--labels A B] [--res 768]
        [--zoom 1.0] [--yaw 0.6] [--pitch 0.35] [--device cpu]

Each mesh is drawn from the same camera (fitted to the first mesh's bounding sphere),
flat grey shading by the face normal with the triangle edges in black (a pixel is on an
edge when its smallest barycentric coordinate, in pixels, is below 0.9), one panel
per mesh in the order given; ``--at`` and ``--zoom`` frame a detail.
"""

import argparse
import math
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nvdrec import ops  # noqa: E402
from nvdrec.io import load_mesh, write_image  # noqa: E402
from nvdrec.structures import camera as cam  # noqa: E402


def draw(mesh, mvp, res, device):
    v = mesh.v_pos.to(device)
    f = mesh.t_pos_idx.to(device).int()
    clip = torch.cat([v, torch.ones_like(v[:, :1])], -1) @ mvp.to(device).T
    rast, _ = ops.rasterize(clip[None], f, (res, res))
    rast = rast[0]
    tid = rast[..., 3].long() - 1
    hit = tid >= 0
    a, b, c = (v[f[:, k].long()] for k in range(3))
    n = torch.nn.functional.normalize(torch.linalg.cross(b - a, c - a), dim=-1)
    light = torch.nn.functional.normalize(torch.tensor([0.4, 0.7, 0.6], device=device), dim=0)
    shade = 0.25 + 0.7 * (n @ light).clamp(min=0)
    img = torch.ones(res, res, device=device)
    img[hit] = shade[tid[hit]]
    # barycentrics -> distance to the nearest edge in pixels (screen-space gradients)
    u, w = rast[..., 0], rast[..., 1]
    bary = torch.stack([u, w, 1 - u - w], -1)
    gy, gx = torch.gradient(bary, dim=(0, 1))
    px = bary / (gx.abs() + gy.abs()).clamp(min=1e-8)
    edge = hit & (px.min(-1).values < 0.9)
    img[edge] = 0.05
    return img.cpu().numpy()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("meshes", nargs="+")
    ap.add_argument("--labels", nargs="*")
    ap.add_argument("--res", type=int, default=768)
    ap.add_argument("--zoom", type=float, default=1.0)
    ap.add_argument("--yaw", type=float, default=0.6)
    ap.add_argument("--pitch", type=float, default=0.35)
    ap.add_argument("--at", type=float, nargs=3, help="look at this point (default: centre)")
    ap.add_argument("--device", default="cpu")
    a = ap.parse_args()
    meshes = [load_mesh(m) for m in a.meshes]
    v0 = meshes[0].v_pos
    centre = (v0.max(0).values + v0.min(0).values) / 2
    radius = float((v0 - centre).norm(dim=-1).max())
    if a.at:
        centre = torch.tensor(a.at)
    fov = 0.6
    dist = radius / math.sin(fov / 2) / a.zoom
    eye = centre + dist * torch.tensor(
        [
            math.cos(a.pitch) * math.sin(a.yaw),
            math.sin(a.pitch),
            math.cos(a.pitch) * math.cos(a.yaw),
        ]
    )
    mv = cam.look_at(eye.tolist(), centre.tolist())
    mvp = cam.perspective(fov, 1.0, 0.01 * dist, 10 * dist) @ mv
    panels = [draw(m, mvp, a.res, a.device) for m in meshes]
    img = np.concatenate([np.pad(p, ((0, 0), (4, 4)), constant_values=1.0) for p in panels], 1)
    write_image(a.out, np.repeat(img[..., None], 3, -1))
    for m, path, lab in zip(meshes, a.meshes, a.labels or a.meshes):
        print(f"{lab}: {m.num_triangles} triangles ({path})")
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
