import math

import numpy as np
import pytest
import torch

from nvdrec.structures import camera as cam


def _project(mvp, p, h, w):
    """World point -> (row, col) in pixel units (continuous, centres at +0.5)."""
    c = mvp @ torch.tensor([*map(float, p), 1.0], dtype=torch.float32)
    ndc = c[:3] / c[3]
    col = (ndc[0].item() + 1) / 2 * w
    row = (ndc[1].item() + 1) / 2 * h
    return row, col


def test_look_at_moves_eye_to_origin_and_looks_down_minus_z():
    mv = cam.look_at((0, 0, 3))
    assert torch.allclose(mv @ torch.tensor([0.0, 0, 3, 1]), torch.tensor([0.0, 0, 0, 1]))
    assert (mv @ torch.tensor([0.0, 0, 0, 1]))[2] < 0  # target is in front (-Z)
    mv = cam.look_at((2, 5, -1), at=(0.5, 0.2, 0.1))
    target = mv @ torch.tensor([0.5, 0.2, 0.1, 1.0])
    assert abs(target[0]) < 1e-5 and abs(target[1]) < 1e-5 and target[2] < 0


def test_up_in_world_is_top_row_of_image():
    h, w = 64, 96
    proj = cam.perspective(math.radians(45), w / h, 0.1, 100)
    mvp = proj @ cam.look_at((0, 0, 3))
    row_up, _ = _project(mvp, (0, 0.5, 0), h, w)
    row_c, col_c = _project(mvp, (0, 0, 0), h, w)
    _, col_right = _project(mvp, (0.5, 0, 0), h, w)
    assert abs(row_c - h / 2) < 1e-4 and abs(col_c - w / 2) < 1e-4
    assert row_up < row_c  # +Y world is towards row 0 (top of the picture)
    assert col_right > col_c  # +X world is to the right
    # exact pixel for a known point: tan(22.5deg) * 3 maps to the top edge
    edge = math.tan(math.radians(22.5)) * 3
    assert abs(_project(mvp, (0, edge, 0), h, w)[0]) < 1e-3


def test_intrinsics_matrix_matches_pinhole_projection():
    w, h, fx, fy, cx, cy = 80, 60, 70.0, 72.0, 41.0, 28.5
    proj = cam.perspective_from_intrinsics(fx, fy, cx, cy, w, h)
    # OpenCV camera at the origin looking down +Z; our camera = same with y,z negated
    X = np.array([0.3, -0.2, 2.0])
    u = fx * X[0] / X[2] + cx
    v = fy * X[1] / X[2] + cy
    row, col = _project(proj, (X[0], -X[1], -X[2]), h, w)
    assert abs(col - u) < 1e-3 and abs(row - v) < 1e-3
    # with centred principal point it equals perspective()
    fovy = 2 * math.atan(h / 2 / fy)
    p2 = cam.perspective_from_intrinsics(fy, fy, w / 2, h / 2, w, h)
    torch.testing.assert_close(p2, cam.perspective(fovy, w / h), atol=1e-5, rtol=1e-5)


def test_camera_batches_and_views():
    g = torch.Generator().manual_seed(0)
    views = cam.random_views(8, g, radius=3.0, resolution=(32, 32))
    assert views.mv.shape == (8, 4, 4) and views.mvp.shape == (8, 4, 4)
    d = views.campos.norm(dim=-1)
    assert ((d > 3 - 0.25 * math.sqrt(3) - 1e-4) & (d < 3 + 0.25 * math.sqrt(3) + 1e-4)).all()
    orbit = cam.orbit_views(6, radius=2.5)
    torch.testing.assert_close(orbit.campos.norm(dim=-1), torch.full((6,), 2.5))
    # every orbit camera looks at the origin
    o = orbit.mv @ torch.tensor([0.0, 0, 0, 1])
    assert torch.allclose(o[:, :2], torch.zeros(6, 2), atol=1e-5) and (o[:, 2] < 0).all()
    # same seed, same views
    again = cam.random_views(8, torch.Generator().manual_seed(0), resolution=(32, 32))
    assert torch.equal(again.mv, views.mv)


def test_convention_conversions():
    p = cam.blender_to_opengl_world() @ torch.tensor([0.0, 0.0, 1.0, 1.0])
    torch.testing.assert_close(p, torch.tensor([0.0, 1.0, 0.0, 1.0]), atol=1e-6, rtol=0)
    p = cam.blender_to_opengl_world() @ torch.tensor([0.0, 1.0, 0.0, 1.0])
    torch.testing.assert_close(p, torch.tensor([0.0, 0.0, -1.0, 1.0]), atol=1e-6, rtol=0)
    # an OpenCV camera at the origin looking down +Z: forward must become -Z of OpenGL
    c2w = cam.opencv_to_opengl(torch.eye(4))
    assert torch.equal(c2w[:3, 2], torch.tensor([0.0, 0.0, -1.0]))
    # LLFF columns (down, right, back) -> (right, up, back)
    llff = torch.tensor([[0.0, 1, 0, 5], [-1, 0, 0, 6], [0, 0, 1, 7]])
    gl = cam.llff_to_opengl(llff)
    torch.testing.assert_close(gl[:3, :3], torch.eye(3))
    assert gl[:3, 3].tolist() == [5, 6, 7] and gl[3].tolist() == [0, 0, 0, 1]


@pytest.mark.parametrize("n", [1, 4])
def test_from_mv_campos(n):
    mv = torch.stack([cam.look_at((i + 1.0, 2.0, 3.0)) for i in range(n)])
    c = cam.Cameras.from_mv(mv, cam.perspective(), (16, 16))
    torch.testing.assert_close(c.campos[:, 1:], torch.tensor([[2.0, 3.0]]).expand(n, 2))
