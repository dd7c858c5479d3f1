"""Relight and turn a finished run: the exported mesh and textures under the learned
light and under another HDR map, as GIFs (what `nvdrec render` does).

    python examples/relight_turntable.py RUN_DIR [--envmap HDR] [--frames 60] [--res 512]

Time: 60 frames of 512x512 take a few seconds on a GPU and about a minute on a 2-core
CPU (--frames 8 --res 96: ~5 s).
"""

import argparse
from pathlib import Path

from nvdrec.render import load_run, turntable, write_frames

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("run_dir")
    ap.add_argument("--envmap", default=str(SHARED / "envmaps" / "venice_sunset_1k.hdr"))
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--res", type=int, default=512)
    a = ap.parse_args()
    out = Path(a.run_dir) / "render"
    light_sets = [("learned", None)]
    if Path(a.envmap).is_file():
        light_sets.append((Path(a.envmap).stem, a.envmap))
    else:
        print(f"{a.envmap} not found: only the learned light")
    for name, env in light_sets:
        mesh, light = load_run(a.run_dir, envmap=env)
        frames = turntable(mesh, light, frames=a.frames, res=a.res)
        print("wrote", write_frames(frames, out / f"turntable_{name}.gif"))


if __name__ == "__main__":
    main()
