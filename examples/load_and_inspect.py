"""Load a mesh and an HDR map and print what nvdrec sees.

    python examples/load_and_inspect.py ../shared/data/meshes/bob/bob_tri.obj \
        ../shared/data/envmaps/royal_esplanade_1k.hdr
"""

import sys

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
    main(*sys.argv[1:3])
