"""Shared test helpers: comparisons that say where they failed, small scenes, the tiny
training config and the command line in a subprocess."""

import json
import math
import subprocess
import sys
from pathlib import Path

import torch

from nvdrec.structures import camera as cam

# a data folder's end-to-end check: a few iterations at 24 px through every stage
TINY_FOLDER = {
    "iter": 3,
    "batch": 1,
    "train_res": [24, 24],
    "texture_res": [32, 32],
    "dmtet_grid": 16,
    "light_res": 16,
    "hash_log2_size": 10,
    "save_interval": 0,
    "validate_views": 2,
    "progress": "none",
}

# the smallest run that still trains every stage (both passes, bake, export, validation)
# on the built-in demo; tests that need other settings spread it: {**TINY, "iter": 2}
TINY = {
    **TINY_FOLDER,
    "iter": 6,
    "train_res": [48, 48],
    "texture_res": [64, 64],
    "dmtet_grid": 20,
    "save_interval": 3,
    "demo_grid": 32,
    "learning_rate": [0.03, 0.01],
    "seed": 3,
}


def run_nvdrec(*args, **kw) -> subprocess.CompletedProcess:
    """``python -m nvdrec ARGS`` in a new process, its text output captured (``kw``:
    ``env``, ``timeout``, ``cwd`` of subprocess.run)."""
    cmd = [sys.executable, "-m", "nvdrec", *(str(a) for a in args)]
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def train_cli(cfg: dict, folder) -> subprocess.CompletedProcess:
    """``nvdrec train`` in a new process on ``cfg``, written to ``folder/config.json``."""
    f = Path(folder) / "config.json"
    f.write_text(json.dumps(cfg))
    return run_nvdrec("train", f)


def assert_close(actual, expected, atol, rtol=0.0, name="value"):
    """Like torch.testing.assert_close but reports max abs/rel error and its index."""
    actual, expected = actual.detach().double().cpu(), expected.detach().double().cpu()
    assert actual.shape == expected.shape, f"{name}: shape {actual.shape} != {expected.shape}"
    err = (actual - expected).abs()
    bound = atol + rtol * expected.abs()
    bad = err > bound
    if bad.any():
        idx = torch.nonzero(bad)[0].tolist()
        flat = int(torch.argmax(err))
        rel = (err / expected.abs().clamp(min=1e-30)).flatten()[flat]
        raise AssertionError(
            f"{name}: {int(bad.sum())} of {err.numel()} elements differ; first at {idx}; "
            f"max abs err {float(err.max()):.3e} (rel {float(rel):.3e}) at flat index {flat}"
        )


def sphere(n_lat=16, n_lon=32, radius=1.0):
    """UV sphere (positions [V, 3] float32, triangles [T, 3] int32), outward CCW."""
    verts = [[0.0, radius, 0.0]]
    for i in range(1, n_lat):
        th = math.pi * i / n_lat
        for j in range(n_lon):
            ph = 2 * math.pi * j / n_lon
            verts.append(
                [
                    radius * math.sin(th) * math.sin(ph),
                    radius * math.cos(th),
                    radius * math.sin(th) * math.cos(ph),
                ]
            )
    verts.append([0.0, -radius, 0.0])
    tris = []
    for j in range(n_lon):
        tris.append([0, 1 + j, 1 + (j + 1) % n_lon])
    for i in range(n_lat - 2):
        for j in range(n_lon):
            a = 1 + i * n_lon + j
            b = 1 + i * n_lon + (j + 1) % n_lon
            c, d = a + n_lon, b + n_lon
            tris += [[a, c, d], [a, d, b]]
    last = len(verts) - 1
    base = 1 + (n_lat - 2) * n_lon
    for j in range(n_lon):
        tris.append([last, base + (j + 1) % n_lon, base + j])
    return torch.tensor(verts), torch.tensor(tris, dtype=torch.int32)


def clip_positions(v, eye=(0.0, 0.5, 3.0), fovy_deg=45.0, aspect=1.0):
    """[V, 3] world positions -> [1, V, 4] clip positions for a look-at camera."""
    mvp = cam.perspective(math.radians(fovy_deg), aspect, 0.1, 100.0) @ cam.look_at(eye)
    p = torch.nn.functional.pad(v, (0, 1), value=1.0) @ mvp.T
    return p[None].contiguous()


def noisy_surface(grid: int, inside: float, seed: int = 0):
    """Marching tets of a random SDF (uniform in [-inside, 1 - inside)) on a tet grid: a
    surface of many small components, as an untrained or noisy isosurface gives."""
    import torch

    from nvdrec.geometry import DMTetGeometry

    g = torch.Generator().manual_seed(seed)
    geo = DMTetGeometry(grid_res=grid, scale=2.0)
    with torch.no_grad():
        geo.sdf.copy_(torch.rand(len(geo.sdf), generator=g) - inside)
    return geo.get_mesh().detach()


def write_photo_folder(folder, n, h, w, focal=1200.0, orientations=None):
    """An LLFF folder of ``n`` smooth JPEG photos of h x w (sines, as JPEG is made for),
    8-bit PNG masks (a centred box) and cameras on a circle of radius 3 looking at the
    origin. ``orientations``: the EXIF orientation tag of each photo (default none)."""
    import numpy as np
    from PIL import Image

    (folder / "images").mkdir(parents=True)
    (folder / "masks").mkdir()
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([0.5 + 0.4 * np.sin(xx / (60 + 10 * c) + yy / 90) for c in range(3)], -1)
    base = (base * 255 + 0.5).astype(np.uint8)
    del yy, xx
    mask = np.zeros((h, w), np.uint8)
    mask[h // 5 : h * 4 // 5, w // 4 : w * 4 // 5] = 255
    poses = []
    for i in range(n):
        im = Image.fromarray(np.roll(base, 37 * i, axis=1))
        kw = {"quality": 90}
        if orientations is not None:
            exif = Image.Exif()
            exif[0x0112] = orientations[i]
            kw["exif"] = exif.tobytes()
        im.save(folder / "images" / f"{i:03d}.jpg", **kw)
        Image.fromarray(mask).save(folder / "masks" / f"{i:03d}.png")
        ang = 2 * np.pi * i / n
        c2w = np.array(
            [
                [np.cos(ang), 0, np.sin(ang), 3 * np.sin(ang)],
                [0, 1, 0, 0],
                [-np.sin(ang), 0, np.cos(ang), 3 * np.cos(ang)],
            ]
        )
        # LLFF rows are (down, right, back) camera axes: from (right, up, back)
        llff = np.stack([-c2w[:, 1], c2w[:, 0], c2w[:, 2], c2w[:, 3]], 1)
        poses.append(
            np.concatenate([np.concatenate([llff, [[h], [w], [focal]]], 1).ravel(), [1, 10]])
        )
    np.save(folder / "poses_bounds.npy", np.array(poses))


def rot_to_quat(r):
    """COLMAP's (w, x, y, z) quaternion of a rotation matrix [3, 3] (indexable)."""
    w = math.sqrt(max(0.0, 1 + r[0, 0] + r[1, 1] + r[2, 2])) / 2
    x = math.copysign(math.sqrt(max(0.0, 1 + r[0, 0] - r[1, 1] - r[2, 2])) / 2, r[2, 1] - r[1, 2])
    y = math.copysign(math.sqrt(max(0.0, 1 - r[0, 0] + r[1, 1] - r[2, 2])) / 2, r[0, 2] - r[2, 0])
    z = math.copysign(math.sqrt(max(0.0, 1 - r[0, 0] - r[1, 1] + r[2, 2])) / 2, r[1, 0] - r[0, 1])
    return w, x, y, z
