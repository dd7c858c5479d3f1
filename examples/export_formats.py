"""Export a finished run to the formats engines read: binary glTF (GLB), OBJ + MTL +
PNG textures, and USD (usdz; needs `pip install usd-core`).

    python examples/export_formats.py RUN_DIR [--to FOLDER]

Time: about a second per format on a CPU.
"""

import argparse
from pathlib import Path

from nvdrec.io import load_mesh, save_mesh
from nvdrec.io.gltf import save_glb


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("run_dir")
    ap.add_argument("--to", help="output folder (default RUN_DIR/export)")
    a = ap.parse_args()
    mesh = load_mesh(Path(a.run_dir) / "mesh" / "mesh.obj")
    out = Path(a.to) if a.to else Path(a.run_dir) / "export"
    print("GLB:", save_glb(mesh, out / "mesh.glb"))
    print("OBJ:", save_mesh(mesh, out / "obj"))
    try:
        from nvdrec.io.usd import save_usd

        print("USD:", save_usd(mesh, out / "mesh.usdz"))
    except ImportError as e:
        print(f"USD skipped ({e}); pip install usd-core")


if __name__ == "__main__":
    main()
