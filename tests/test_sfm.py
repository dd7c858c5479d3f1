"""Camera poses from photos alone (optional pycolmap): a rendered textured object with
known cameras is reconstructed; rotation and centre errors after a similarity alignment
are asserted. Without pycolmap: a clear error, and the tests skip."""

import math

import numpy as np
import pytest
import torch

from nvdrec.data.sfm import compare_poses, similarity_align
from nvdrec.errors import MissingDependencyError
from nvdrec.io import linear_to_srgb, write_image
from nvdrec.render import EnvironmentLight, RasterContext, render_mesh
from nvdrec.structures import Material, Mesh, Texture2D, auto_normals
from nvdrec.structures import camera as cam

RES = 320
FOV = math.radians(40)


def _textured_scene():
    """A sphere with a high-contrast noise texture (SIFT needs texture) in a continuous
    spherical UV map (the seam column duplicated), under white light."""
    n_lat, n_lon = 48, 96
    th = torch.linspace(0, math.pi, n_lat + 1)
    ph = torch.linspace(0, 2 * math.pi, n_lon + 1)
    tt, pp = torch.meshgrid(th, ph, indexing="ij")
    v = 0.8 * torch.stack([tt.sin() * pp.sin(), tt.cos(), tt.sin() * pp.cos()], -1)
    uv = torch.stack([pp / (2 * math.pi), tt / math.pi], -1)
    idx = torch.arange((n_lat + 1) * (n_lon + 1)).reshape(n_lat + 1, n_lon + 1)
    a, b, c, d = idx[:-1, :-1], idx[:-1, 1:], idx[1:, :-1], idx[1:, 1:]
    tri = torch.cat([torch.stack([a, c, b], -1), torch.stack([b, c, d], -1)]).reshape(-1, 3)
    mesh = Mesh(v.reshape(-1, 3), tri, v_tex=uv.reshape(-1, 2), t_tex_idx=tri.clone())
    mesh = auto_normals(mesh)
    g = torch.Generator().manual_seed(0)
    noise = torch.zeros(1, 3, 512, 1024)
    for cells in (6, 16, 48):
        n = torch.rand(1, 3, cells, 2 * cells, generator=g)
        noise += torch.nn.functional.interpolate(n, size=(512, 1024), mode="bicubic")
    kd = (0.5 + 0.45 * torch.sin(9 * noise))[0].permute(1, 2, 0)  # bands: sharp edges
    mesh.material = Material("m", kd=Texture2D(kd), ks=Texture2D([0.0, 0.9, 0.0]))
    light = EnvironmentLight(torch.ones(6, 16, 16, 3))
    light.build_mips()
    return mesh, light


def write_photos(folder, n=24):
    """``n`` photos around the object (RGB on grey, masks/ from the coverage); returns the
    cameras' camera-to-world matrices [n, 4, 4] (OpenGL)."""
    mesh, light = _textured_scene()
    views = cam.orbit_views(n, radius=3.0, elevation_deg=35.0, fovy=FOV, resolution=(RES, RES))
    out = render_mesh(RasterContext(), mesh, views.mvp, views.campos, light, (RES, RES))
    shaded = out["shaded"].detach()
    (folder / "images").mkdir(parents=True)
    (folder / "masks").mkdir()
    for i in range(n):
        a = shaded[i, ..., 3:4]
        rgb = linear_to_srgb(shaded[i, ..., :3].clamp(0, 1)) + 0.5 * (1 - a)
        write_image(folder / "images" / f"p{i:03d}.png", rgb.clamp(0, 1))
        write_image(folder / "masks" / f"p{i:03d}.png", a)
    return torch.linalg.inv(views.mv.double()).numpy()


def test_similarity_alignment_recovers_a_known_transform():
    rng = np.random.default_rng(0)
    pts = rng.normal(size=(20, 3))
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    q *= np.sign(np.linalg.det(q))
    s, r, t = similarity_align(pts, 2.5 * pts @ q.T + [1, 2, 3])
    assert abs(s - 2.5) < 1e-9 and np.allclose(r, q) and np.allclose(t, [1, 2, 3])
    c2w = np.tile(np.eye(4), (20, 1, 1))
    c2w[:, :3, 3] = pts
    moved = c2w.copy()
    moved[:, :3, :3] = q @ c2w[:, :3, :3]
    moved[:, :3, 3] = 2.5 * pts @ q.T + [1, 2, 3]
    err = compare_poses(moved, c2w, target=np.zeros(3))
    assert err["rotation_max_deg"] < 1e-6 and err["centre_max_rel"] < 1e-9


def test_poses_without_pycolmap_say_what_to_install(tmp_path, monkeypatch):
    import builtins

    from nvdrec.data.sfm import estimate_poses

    real = builtins.__import__

    def no_pycolmap(name, *a, **k):
        if name == "pycolmap" or name.startswith("pycolmap."):
            raise ImportError("no pycolmap")
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_pycolmap)
    with pytest.raises(MissingDependencyError, match="pip install pycolmap"):
        estimate_poses(tmp_path, tmp_path / "out")


def test_poses_with_an_old_pycolmap_say_what_to_upgrade(tmp_path, monkeypatch):
    """pycolmap before 3.13 has another options API (no FeatureMatchingOptions)."""
    import sys
    from types import SimpleNamespace

    from nvdrec.data.sfm import estimate_poses

    monkeypatch.setitem(sys.modules, "pycolmap", SimpleNamespace(__version__="3.12.6"))
    with pytest.raises(MissingDependencyError, match=r"3\.13 or newer; this is pycolmap 3\.12\.6"):
        estimate_poses(tmp_path, tmp_path / "out")


@pytest.mark.extras
def test_poses_of_a_rendered_scene_match_the_known_cameras(tmp_path, capsys):
    """`nvdrec poses` on 24 rendered photos (+ masks) places every camera where it was."""
    pytest.importorskip("pycolmap", reason="pycolmap is not installed (pip install pycolmap)")
    from nvdrec.cli import main
    from nvdrec.data.colmap import ColmapDataset
    from nvdrec.data.colmap_model import read_images, sparse_folder

    truth = write_photos(tmp_path / "photos")
    out = tmp_path / "out"
    assert main(["poses", str(tmp_path / "photos"), "--out", str(out), "--max-side", "320"]) == 0
    std = capsys.readouterr()
    stages = [ln.split(": ")[1].split(" ")[0] for ln in std.err.splitlines() if "poses: " in ln]
    assert stages == ["reducing", "features", "matching", "placing", "undistorting"], std.err
    assert "registered   24 of 24 photos" in std.out and "not placed" not in std.out
    ds = ColmapDataset(out, resolution=(64, 64))  # the folder training reads
    names = sorted(e[0] for e in read_images(sparse_folder(out)))
    order = [int(n[1:4]) for n in names]
    est = torch.linalg.inv(ds.mv.double()).numpy()
    err = compare_poses(est, truth[order], target=np.zeros(3))
    assert err["rotation_median_deg"] < 1.0 and err["centre_median_rel"] < 0.01, err
    assert err["rotation_max_deg"] < 2.0 and err["centre_max_rel"] < 0.02, err
    # the masks went through the same undistortion: they still cover the object
    assert (out / "masks").is_dir()
    cover = (ds.images[..., 3] > 0.5).float().mean((1, 2))
    assert 0.1 < float(cover.min()) and float(cover.max()) < 0.6
    # a second run into the same folder is refused, nothing is touched
    assert main(["poses", str(tmp_path / "photos"), "--out", str(out)]) == 1
    assert "is not empty" in capsys.readouterr().err


@pytest.mark.extras
def test_photos_alone_get_cameras_and_masks(tmp_path, capsys):
    """Photos without masks: placed on the whole photos, object masks made (OpenCV),
    placed again on the object, masks made again on the final cameras: the cameras match
    the known ones and the masks the true silhouettes."""
    pytest.importorskip("pycolmap", reason="pycolmap is not installed (pip install pycolmap)")
    pytest.importorskip(
        "cv2", reason="OpenCV is not installed (pip install opencv-python-headless)"
    )
    import shutil

    from nvdrec.cli import main
    from nvdrec.data.colmap import ColmapDataset
    from nvdrec.data.colmap_model import read_images, sparse_folder
    from nvdrec.io import read_image

    truth = write_photos(tmp_path / "photos")
    shutil.move(tmp_path / "photos" / "masks", tmp_path / "true_masks")
    out = tmp_path / "out"
    assert main(["poses", str(tmp_path / "photos"), "--out", str(out), "--max-side", "320"]) == 0
    std = capsys.readouterr()
    assert "1/2 features" in std.err and "2/2 placing" in std.err and "masks from the" in std.err
    assert "made from the photos" in std.out and (out / "masks" / "overview.png").is_file()
    ds = ColmapDataset(out, resolution=(64, 64))
    names = sorted(e[0] for e in read_images(sparse_folder(out)))
    order = [int(n[1:4]) for n in names]
    err = compare_poses(torch.linalg.inv(ds.mv.double()).numpy(), truth[order], np.zeros(3))
    assert err["rotation_median_deg"] < 1.0 and err["centre_median_rel"] < 0.01, err
    ious = []
    for n in names:
        a = torch.from_numpy(read_image(out / "masks" / n)[..., 0] > 0.5)
        b = torch.from_numpy(read_image(tmp_path / "true_masks" / n)[..., 0] > 0.5)
        a = torch.nn.functional.interpolate(a[None, None].float(), size=(128, 128))[0, 0] > 0.5
        b = torch.nn.functional.interpolate(b[None, None].float(), size=(128, 128))[0, 0] > 0.5
        ious.append(float((a & b).sum() / (a | b).sum()))
    assert np.median(ious) >= 0.9, np.round(ious, 3)


@pytest.mark.extras
def test_photos_alone_without_an_object_keep_one_placement(tmp_path, capsys, monkeypatch):
    """When no object masks can be made, `nvdrec poses` says so and keeps the placement
    from the whole photos (no masks/ written) instead of failing."""
    pytest.importorskip("pycolmap", reason="pycolmap is not installed (pip install pycolmap)")
    pytest.importorskip(
        "cv2", reason="OpenCV is not installed (pip install opencv-python-headless)"
    )
    import shutil

    from nvdrec.cli import main
    from nvdrec.data import automask
    from nvdrec.errors import DataError

    def fail(*a, **k):
        raise DataError("no sparse point is seen by most of the photos")

    monkeypatch.setattr(automask, "auto_masks", fail)
    write_photos(tmp_path / "photos")
    shutil.rmtree(tmp_path / "photos" / "masks")
    out = tmp_path / "out"
    assert main(["poses", str(tmp_path / "photos"), "--out", str(out), "--max-side", "320"]) == 0
    std = capsys.readouterr()
    assert "note: no object masks" in std.err and "2/2" not in std.err
    assert std.err.count("features (SIFT)") == 1  # the first placement is the result
    assert "registered   24 of 24" in std.out and not (out / "masks").exists()


class _FakeColmap:
    """Just what _place_cameras calls, without pycolmap: incremental mapping places
    ``placed[seed]`` photos for each seed; a database is a text file listing what was
    done to it."""

    def __init__(self, placed):
        from types import SimpleNamespace as NS

        self.placed, self.seeds, self.maps_on = placed, [], []
        self.ImageReaderOptions = lambda: NS()
        self.FeatureExtractionOptions = lambda: NS(sift=NS())
        self.FeatureMatchingOptions = lambda: NS()
        self.IncrementalPipelineOptions = lambda: NS()
        self.CameraMode = NS(SINGLE=0)
        self.Device = NS(cpu=0)

    def extract_features(self, db, *a, **k):
        db.write_text("features")

    def match_exhaustive(self, db, *a, **k):
        db.write_text(db.read_text() + " matches")

    def incremental_mapping(self, db, images, sparse, mapping):
        self.seeds.append(mapping.random_seed)
        self.maps_on.append((db.name, db.read_text()))
        n = self.placed[mapping.random_seed]

        class Rec:
            def num_reg_images(self):
                return n

            def write(self, folder):
                (folder / "cameras.txt").write_text(f"{n}\n")

        return {0: Rec()} if n else {}


@pytest.mark.parametrize(
    "placed, seeds, result",
    [
        ([24], [0], 24),  # placed at once: one mapping
        ([6, 0, 24], [0, 1, 2], 24),  # a poor start, nothing, then all: mapped again
        ([6, 5, 7], [0, 1, 2], None),  # too few with every seed: the error names the count
        ([0, 0, 0], [0, 1, 2], None),
    ],
)
def test_mapping_is_tried_again_while_too_few_photos_are_placed(tmp_path, placed, seeds, result):
    from nvdrec.data.sfm import MAPPING_TRIES, _place_cameras
    from nvdrec.errors import DataError

    assert MAPPING_TRIES == 3
    fake, said = _FakeColmap(placed), []
    opts = {"max_side": 320, "num_threads": 1, "max_features": 100, "matcher": "exhaustive"}
    opts["src"] = "photos"
    names = [f"{i}.png" for i in range(24)]
    args = (fake, tmp_path, tmp_path, "whole", names, None, opts, said.append)
    if result is None:
        want = "only 7 of 24 photos" if max(placed) else "no camera could be placed"
        with pytest.raises(DataError, match=want):
            _place_cameras(*args)
    else:
        rec, model_dir, seconds = _place_cameras(*args)
        assert rec.num_reg_images() == result and (model_dir / "cameras.txt").is_file()
        assert set(seconds) == {"features", "matching", "mapping"}
    assert fake.seeds == seeds
    # the first two tries map the same matches, the third fresh matches of the features
    same, fresh = (
        ("database_whole.db", "features matches"),
        ("database_whole_2.db", "features matches"),
    )
    assert fake.maps_on == ([same] * 2 + [fresh])[: len(seeds)]
    again = [s for s in said if "again" in s]
    assert len(again) == len(seeds) - 1
    if len(seeds) > 1:
        assert again[0] == f"{placed[0]} of 24 photos placed; mapping again (seed 1) ..."
        best = max(placed[:2])  # the most placed so far
        assert again[1] == f"{best} of 24 photos placed; matching and mapping again (seed 2) ..."
