"""Reconstruct from a NeRF-synthetic folder (transforms_train.json / transforms_test.json
+ RGBA images), e.g. nvdiffrec's nerf_lego setting.

    python examples/nerf_folder.py FOLDER [--config configs/nerf_lego.json] [--out DIR]
    python examples/nerf_folder.py --make-demo FOLDER --tiny   # writes a small folder first

--make-demo renders the built-in demo scene into FOLDER (40 + 8 views) so the example
runs without downloads. Time: nerf_lego settings on bob rendered to 100 + 20 views of
400x400 took 332 s end to end on one H200 (docs/benchmarks.md); --tiny on a 2-core CPU:
~20 s with the demo folder.
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, TINY  # noqa: E402

import nvdrec  # noqa: E402


def make_demo_folder(folder: Path, res: int) -> None:
    from nvdrec.data.demo import demo_light, demo_material, demo_mesh
    from nvdrec.data.synthetic import SyntheticDataset, write_nerf_folder
    from nvdrec.geometry import unwrap_uv
    from nvdrec.render import bake_textures

    mesh = unwrap_uv(demo_mesh(48))
    mesh.material, _ = bake_textures(mesh, demo_material, (128, 128), backend="torch")
    ds = SyntheticDataset(mesh, demo_light(32), (res, res))
    write_nerf_folder(ds, folder, n_train=40, n_test=8)
    print(f"wrote a NeRF-synthetic folder of the demo scene to {folder}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("folder")
    ap.add_argument("--config", default=str(ROOT / "configs" / "nerf_lego.json"))
    ap.add_argument("--out", default="out/nerf_folder")
    ap.add_argument("--overwrite", action="store_true", help="replace an earlier result in --out")
    ap.add_argument("--make-demo", action="store_true")
    ap.add_argument("--tiny", action="store_true")
    a = ap.parse_args()
    folder = Path(a.folder)
    if a.make_demo:
        make_demo_folder(folder, 64 if a.tiny else 400)
    over = {"ref_mesh": str(folder.resolve()), "out_dir": str(Path(a.out).resolve())}
    if a.tiny:
        over.update(TINY)
    result = nvdrec.Trainer(nvdrec.load_config(a.config, over), overwrite=a.overwrite).fit()
    m = result["metrics"]
    print(f"test views: PSNR {m['psnr']:.2f} dB, SSIM {m['ssim']:.4f}")
    print(f"result: {result['paths']['obj']}")


if __name__ == "__main__":
    try:
        main()
    except nvdrec.NvdrecError as e:  # e.g. --out holds an earlier result: one line
        sys.exit(f"nerf_folder: {e}")
