"""Render a reference mesh into a NeRF-synthetic folder (image-folder data for benchmarks).

    python bench/make_nerf_folder.py MESH.obj ENVMAP.hdr OUT_FOLDER [--res 400] [--train 100]
        [--test 20] [--device cuda]

Cameras as the Blender scenes of the NeRF paper (upper hemisphere at distance 4, fov_x
0.691); images are RGBA PNGs (sRGB, straight alpha). See
nvdrec.data.synthetic.write_nerf_folder.
"""

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nvdrec.data.synthetic import SyntheticDataset, write_nerf_folder  # noqa: E402
from nvdrec.io.obj import load_mesh  # noqa: E402
from nvdrec.render import EnvironmentLight  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mesh")
    ap.add_argument("envmap")
    ap.add_argument("out")
    ap.add_argument("--res", type=int, default=400)
    ap.add_argument("--train", type=int, default=100)
    ap.add_argument("--test", type=int, default=20)
    ap.add_argument("--device", default="cpu")
    a = ap.parse_args()
    t0 = time.time()
    light = EnvironmentLight.load(a.envmap, res=256, trainable=False)
    ds = SyntheticDataset(load_mesh(a.mesh), light, (a.res, a.res), device=a.device)
    write_nerf_folder(ds, a.out, n_train=a.train, n_test=a.test)
    print(f"{a.train} + {a.test} views of {a.res}x{a.res} in {a.out} ({time.time() - t0:.1f} s)")


if __name__ == "__main__":
    main()
