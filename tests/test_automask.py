"""Automatic object masks (optional OpenCV): a ray-traced scene with known cameras - a
striped ball standing on a chequered floor under a sky, photographed from an orbit - is
written as a COLMAP folder with sparse points on the ball and the floor; the masks made
from it are compared with the true silhouettes (IoU asserted), through the API, the CLI
and a dataset that has no masks/."""

import math

import numpy as np
import pytest
from _helpers import rot_to_quat, run_nvdrec

from nvdrec.data.automask import _load_cameras, mask_name, object_region
from nvdrec.data.colmap_model import read_points3d, sparse_folder
from nvdrec.errors import DataError
from nvdrec.io import read_image, write_image

RES = 96
FOV = math.radians(45)
CENTRE = np.array([0.0, 0.5, 0.0])  # the ball: radius 0.5, resting on the floor y = 0
RADIUS = 0.5


def _look_at(eye, target):
    """World-to-camera (R, t) of an OpenCV camera (x right, y down, z forward)."""
    z = target - eye
    z /= np.linalg.norm(z)
    x = np.cross(z, [0.0, 1.0, 0.0])
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    r = np.stack([x, y, z])
    return r, -r @ eye


def _trace(eye, dirs):
    """(colour [N, 3], ball hit [N]) along rays from ``eye``."""
    oc = eye - CENTRE
    b = dirs @ oc
    disc = b * b - (oc @ oc - RADIUS**2)
    t_ball = np.where(disc > 0, -b - np.sqrt(np.maximum(disc, 0)), np.inf)
    t_ball = np.where(t_ball > 0, t_ball, np.inf)
    t_floor = np.where(
        dirs[:, 1] < -1e-9, -eye[1] / np.where(dirs[:, 1] < -1e-9, dirs[:, 1], -1), np.inf
    )
    p_floor = eye + np.where(np.isfinite(t_floor), t_floor, 0)[:, None] * dirs
    floor = np.isfinite(t_floor) & (np.abs(p_floor[:, [0, 2]]).max(1) < 4) & (t_floor < t_ball)
    ball = np.isfinite(t_ball)
    sky = np.stack([0.55 + 0.3 * dirs[:, 1], 0.7 + 0.2 * dirs[:, 1], np.full(len(dirs), 0.95)], 1)
    p = eye + np.where(ball, t_ball, 0)[:, None] * dirs
    n = (p - CENTRE) / RADIUS
    stripes = 0.5 + 0.5 * np.sin(14 * np.arctan2(n[:, 0], n[:, 2]) + 9 * n[:, 1])
    shade = 0.55 + 0.45 * np.clip(n @ np.array([0.3, 0.9, 0.3]), 0, 1)
    ball_rgb = shade[:, None] * np.stack(
        [0.85 + 0 * stripes, 0.25 + 0.35 * stripes, 0.1 + 0 * stripes], 1
    )
    chk = (np.floor(p_floor[:, 0] * 3) + np.floor(p_floor[:, 2] * 3)) % 2
    floor_rgb = np.stack([0.3 + 0.3 * chk, 0.45 + 0.3 * chk, 0.4 + 0.3 * chk], 1)
    rgb = np.where(ball[:, None], ball_rgb, np.where(floor[:, None], floor_rgb, sky))
    return rgb, ball


def write_scene(folder, n=16, res=RES):
    """A COLMAP folder (PINHOLE cameras, images, points3D) of the ball on the floor; returns
    the true masks [n, res, res] bool in image-name order."""
    sp = folder / "sparse" / "0"
    sp.mkdir(parents=True)
    (folder / "images").mkdir()
    f = 0.5 * res / math.tan(FOV / 2)
    k = np.array([[f, 0, res / 2], [0, f, res / 2], [0, 0, 1]])
    ys, xs = np.mgrid[:res, :res] + 0.5
    pix = np.stack([xs.ravel(), ys.ravel(), np.ones(res * res)], 1) @ np.linalg.inv(k).T
    lines, truth, cams = ["# images"], [], []
    for i in range(n):
        a = 2 * math.pi * i / n
        eye = np.array([3.2 * math.sin(a), 1.6, 3.2 * math.cos(a)])
        r, t = _look_at(eye, CENTRE.copy())
        dirs = pix @ r  # camera rays to world (R^T d)
        dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
        rgb, ball = _trace(eye, dirs)
        name = f"view{i:02d}.png"
        write_image(folder / "images" / name, rgb.reshape(res, res, 3).astype(np.float32))
        truth.append(ball.reshape(res, res))
        q = rot_to_quat(r)
        lines += [f"{i + 1} {' '.join(map(str, q))} {' '.join(map(str, t))} 1 {name}", ""]
        cams.append(eye)
    (sp / "cameras.txt").write_text(f"1 PINHOLE {res} {res} {f} {f} {res / 2} {res / 2}\n")
    (sp / "images.txt").write_text("\n".join(lines) + "\n")
    # sparse points as SfM finds them: on the ball and on the floor around it
    rng = np.random.default_rng(0)
    d = rng.normal(size=(400, 3))
    on_ball = CENTRE + RADIUS * d / np.linalg.norm(d, axis=1, keepdims=True)
    xz = rng.uniform(-2.5, 2.5, size=(500, 2))
    xz = xz[np.linalg.norm(xz, axis=1) > RADIUS * 0.6]
    on_floor = np.stack([xz[:, 0], np.zeros(len(xz)), xz[:, 1]], 1)
    pts = np.concatenate([on_ball, on_floor])
    rows = [f"{j + 1} {p[0]} {p[1]} {p[2]} 128 128 128 0.5 1 0 2 0 3 0" for j, p in enumerate(pts)]
    (sp / "points3D.txt").write_text("# points\n" + "\n".join(rows) + "\n")
    return np.stack(truth)


def _ious(folder, out, truth):
    names = sorted(p.name for p in (folder / "images").iterdir())
    got = [read_image(out / mask_name(n))[..., 0] > 0.5 for n in names]
    return np.array([(g & t).sum() / (g | t).sum() for g, t in zip(got, truth)])


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    folder = tmp_path_factory.mktemp("scene") / "colmap"
    return folder, write_scene(folder)


def test_object_region_is_the_ball(scene):
    """The region's centre is where the cameras look; its seeds lie on the object."""
    folder, _ = scene
    cams = _load_cameras(folder)[1:]
    xyz, track = read_points3d(sparse_folder(folder))
    assert len(xyz) > 800 and (track == 3).all()
    reg = object_region(xyz, track, *cams)
    assert np.linalg.norm(reg.centre - CENTRE) < 0.02
    on_ball = np.abs(np.linalg.norm(reg.core - CENTRE, axis=1) - RADIUS) < 1e-6
    assert len(reg.core) >= 20 and on_ball.mean() > 0.9


@pytest.mark.extras
def test_masks_match_the_silhouettes(scene, tmp_path):
    pytest.importorskip(
        "cv2", reason="OpenCV is not installed (pip install opencv-python-headless)"
    )
    from nvdrec.data.automask import auto_masks

    folder, truth = scene
    lines = []
    rep = auto_masks(folder, tmp_path / "m", progress=lines.append)
    iou = _ious(folder, tmp_path / "m", truth)
    assert np.median(iou) >= 0.9 and iou.min() >= 0.75, iou.round(3)
    assert rep.views == 16 and (tmp_path / "m" / "overview.png").is_file() and lines
    again = tmp_path / "m2"
    auto_masks(folder, again, progress=lambda s: None)  # the same masks every run
    for p in sorted((tmp_path / "m").glob("view*.png")):
        assert (read_image(p) == read_image(again / p.name)).all(), p.name


@pytest.mark.extras
def test_cli_and_training_data_without_masks(scene, tmp_path):
    """`nvdrec masks` writes FOLDER/masks_auto; a dataset without masks/ makes and uses
    them; a folder that is not a COLMAP model is refused with the command to run."""
    pytest.importorskip(
        "cv2", reason="OpenCV is not installed (pip install opencv-python-headless)"
    )
    import shutil

    from nvdrec.data.colmap import ColmapDataset

    folder, truth = scene
    mine = tmp_path / "colmap"
    shutil.copytree(folder, mine)
    r = run_nvdrec("masks", str(mine))
    assert r.returncode == 0, r.stderr
    assert "masks_auto" in r.stdout and "segmenting" in r.stderr
    assert np.median(_ious(mine, mine / "masks_auto", truth)) >= 0.9
    r = run_nvdrec("masks", str(tmp_path))
    assert r.returncode == 1 and "nvdrec poses" in r.stderr and "Traceback" not in r.stderr

    fresh = tmp_path / "fresh"
    shutil.copytree(folder, fresh)
    ds = ColmapDataset(fresh)
    assert (fresh / "masks_auto" / "overview.png").is_file()
    alpha = ds.images[..., 3].numpy() > 0.5
    iou = [(a & t).sum() / (a | t).sum() for a, t in zip(alpha, truth)]
    assert np.median(iou) >= 0.9


def test_too_few_points_is_a_clear_error(tmp_path):
    folder = tmp_path / "colmap"
    write_scene(folder, n=4, res=32)
    (folder / "sparse" / "0" / "points3D.txt").write_text("1 0 0.5 0 1 1 1 0.1 1 0 2 0 3 0\n")
    cams = _load_cameras(folder)[1:]
    with pytest.raises(DataError, match="sparse points"):
        object_region(*read_points3d(sparse_folder(folder)), *cams)


@pytest.mark.parametrize(
    "error, want",
    [
        (ModuleNotFoundError("No module named 'cv2'", name="cv2"), "pip install opencv-python"),
        (  # an OpenCV built for NumPy 1 under NumPy 2
            ImportError("numpy.core.multiarray failed to import"),
            r"installed but does not load \(numpy.core.multiarray failed to import\).*-U",
        ),
        (ModuleNotFoundError("No module named 'numpy.core'", name="numpy.core"), "does not load"),
    ],
)
def test_opencv_absent_or_not_loading_says_which(monkeypatch, error, want):
    import builtins

    from nvdrec.data.automask import require_opencv
    from nvdrec.errors import MissingDependencyError

    real = builtins.__import__

    def broken(name, *a, **k):
        if name == "cv2":
            raise error
        return real(name, *a, **k)

    monkeypatch.delitem(__import__("sys").modules, "cv2", raising=False)
    monkeypatch.setattr(builtins, "__import__", broken)
    with pytest.raises(MissingDependencyError, match=want):
        require_opencv()
