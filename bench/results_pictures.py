"""The pictures of docs/results.md that no single ``nvdrec`` command makes, from a
finished run: the result under several lights (a row per light, three views each) and
screenshots of its offline viewer (shaded, base colour, roughness, normals; needs
Chromium on PATH).

    python bench/results_pictures.py out/bob --envmap A.hdr --envmap B.hdr --out docs/img

Writes ``OUT/NAME_relit.png`` and ``OUT/viewer_NAME.png`` (NAME: the run folder's name).
"""

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nvdrec.io.image import read_image, write_image  # noqa: E402
from nvdrec.render import turntable  # noqa: E402
from nvdrec.render.turntable import load_run  # noqa: E402

VIEWER_CHANNELS = ("shaded", "basecolor", "roughness", "normals")


def relit_rows(run: Path, envmaps: list, views: int, res: int) -> np.ndarray:
    """A row of ``views`` turntable frames [res, res, 3] per light: the learned one, then
    each map of ``envmaps``; uint8 [rows * res, views * res, 3]."""
    rows = []
    for hdr in [None, *envmaps]:
        mesh, light = load_run(run, envmap=hdr)
        frames = turntable(mesh, light, frames=views, res=res)
        rows.append(np.concatenate(list(frames), axis=1))
    return np.concatenate(rows, axis=0)


def viewer_shots(run: Path, size=(560, 420), budget_ms: int = 60000) -> np.ndarray:
    """Screenshots of the run's viewer page, one per channel of ``VIEWER_CHANNELS``, in a
    2 x 2 grid (float [0, 1])."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("viewer screenshots need chromium on PATH")
    page = run / "viewer.html"
    subprocess.run([sys.executable, "-m", "nvdrec", "view", str(run)], check=True)
    shots = []
    with tempfile.TemporaryDirectory() as tmp:
        for ch in VIEWER_CHANNELS:
            png = Path(tmp) / f"{ch}.png"
            subprocess.run(
                [chromium, "--headless", "--no-sandbox", "--use-angle=swiftshader"]
                + ["--enable-unsafe-swiftshader", f"--window-size={size[0]},{size[1]}"]
                + [f"--virtual-time-budget={budget_ms}", f"--screenshot={png}"]
                + [f"file://{page.resolve()}#channel={ch}&exposure=0"],
                capture_output=True,
                timeout=600,
                check=True,
            )
            shots.append(read_image(png)[..., :3])
    top, bottom = np.concatenate(shots[:2], axis=1), np.concatenate(shots[2:], axis=1)
    return np.concatenate([top, bottom], axis=0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", help="out_dir of a finished run")
    ap.add_argument("--envmap", action="append", default=[], help="a lat-long HDR (repeat)")
    ap.add_argument("--out", default="docs/img", help="folder for the pictures")
    ap.add_argument("--res", type=int, default=256, help="size of a relit view")
    ap.add_argument("--no-viewer", action="store_true", help="skip the viewer screenshots")
    args = ap.parse_args()
    run, out = Path(args.run), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = run.resolve().name
    write_image(out / f"{name}_relit.png", relit_rows(run, args.envmap, 3, args.res) / 255.0)
    print(f"wrote {out / f'{name}_relit.png'}")
    if not args.no_viewer:
        write_image(out / f"viewer_{name}.png", viewer_shots(run))
        print(f"wrote {out / f'viewer_{name}.png'}")


if __name__ == "__main__":
    main()
