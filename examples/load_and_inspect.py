"""Load a mesh and an HDR map and print what nvdrec sees.

    python examples/load_and_inspect.py ../shared/data/meshes/bob/bob_tri.obj \
        ../shared/data/envmaps/royal_esplanade_1k.hdr
"""

import argparse

from nvdrec.errors import NvdrecError
from nvdrec.io import load_mesh, read_image


def main(mesh_path: str, hdr_path: str) -> None:
    mesh = load_mesh(mesh_path)
    lo, hi = mesh.aabb()
    print(f"{mesh_path}: {mesh.num_vertices} vertices, {mesh.num_triangles} triangles")
    print(f"  bounding box {lo.tolist()} .. {hi.tolist()}")
    for m in mesh.materials:
        has_n = m.normal is not None
        print(f"  material {m.name}: kd {m.kd.shape}, ks {m.ks.shape}, normal map {has_n}")
    env = read_image(hdr_path)
    print(f"{hdr_path}: {env.shape}, max radiance {env.max():.1f}, mean {env.mean():.3f}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description="print what nvdrec reads from a mesh and a map")
    ap.add_argument("mesh", help="OBJ file")
    ap.add_argument("hdr", help="lat-long HDR map")
    a = ap.parse_args()
    try:
        main(a.mesh, a.hdr)
    except NvdrecError as e:  # a missing or malformed file: one line, not a traceback
        ap.exit(2, f"load_and_inspect: {e}\n")
