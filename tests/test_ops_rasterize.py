import pytest
import torch
from _helpers import assert_close, clip_positions, sphere
from conftest import devices

from nvdrec import ops

TRI = torch.tensor([[0, 1, 2]], dtype=torch.int32)
GRAD_TOL = 1e-6


def _ndc_centres(h, w):
    ys = (torch.arange(h) + 0.5) / h * 2 - 1
    xs = (torch.arange(w) + 0.5) / w * 2 - 1
    return ys[:, None].expand(h, w), xs[None, :].expand(h, w)


@pytest.mark.parametrize("device", devices())
def test_single_triangle_covers_known_pixel_centres(device):
    h, w = 12, 16
    v = torch.tensor([[-0.6, -0.7, 0.2, 1.0], [0.7, -0.5, 0.2, 1.0], [0.1, 0.8, 0.2, 1.0]])
    rast, _ = ops.rasterize(v[None].to(device), TRI.to(device), (h, w))
    py, px = _ndc_centres(h, w)

    # point-in-triangle by edge functions, computed independently
    def edge(a, b):
        return (b[0] - a[0]) * (py - a[1]) - (b[1] - a[1]) * (px - a[0])

    inside = (edge(v[0], v[1]) >= 0) & (edge(v[1], v[2]) >= 0) & (edge(v[2], v[0]) >= 0)
    got = rast[0, ..., 3].cpu() == 1
    assert torch.equal(got, inside), f"coverage differs at {torch.nonzero(got != inside).tolist()}"
    # barycentrics reproduce the pixel centres and depth is the constant z/w
    u, vv = rast[0, ..., 0].cpu(), rast[0, ..., 1].cpu()
    x = u * v[0, 0] + vv * v[1, 0] + (1 - u - vv) * v[2, 0]
    assert_close(x[inside], px[inside], atol=1e-5, name="x from barycentrics")
    assert_close(rast[0, ..., 2].cpu()[inside], torch.full((int(inside.sum()),), 0.2), atol=1e-6)
    assert (rast[0].cpu()[~inside] == 0).all()


@pytest.mark.parametrize("device", devices())
def test_row_order_follows_ndc_y(device):
    # a triangle in the lower half of NDC (y < 0) lands in the first rows
    v = torch.tensor([[[-1.0, -1.0, 0, 1], [1.0, -1.0, 0, 1], [0.0, -0.2, 0, 1]]], device=device)
    rast, _ = ops.rasterize(v, TRI.to(device), (10, 10))
    rows = torch.nonzero(rast[0, ..., 3] > 0)[:, 0]
    assert rows.min() == 0 and rows.max() < 5


@pytest.mark.parametrize("device", devices())
def test_perspective_nearer_triangle_wins(device):
    # two triangles covering the centre; the second is nearer only through w
    v = torch.tensor(
        [
            [-1, -1, 0.5, 1],
            [1, -1, 0.5, 1],
            [0, 1, 0.5, 1],
            [-2, -2, 0.0, 2],
            [2, -2, 0.0, 2],
            [0, 2, 0.0, 2],  # z/w = 0 < 0.5
        ],
        dtype=torch.float32,
        device=device,
    )
    tri = torch.tensor([[0, 1, 2], [3, 4, 5]], dtype=torch.int32, device=device)
    rast, _ = ops.rasterize(v[None], tri, (8, 8))
    assert (rast[0, 4, 4, 3] == 2).item()
    assert abs(rast[0, 4, 4, 2].item()) < 1e-6
    # swapping order does not matter
    rast2, _ = ops.rasterize(v[None], tri.flip(0), (8, 8))
    assert (rast2[0, 4, 4, 3] == 1).item()


@pytest.mark.parametrize("device", devices())
def test_perspective_correct_barycentrics(device):
    # a triangle with different w per vertex: barycentrics must interpolate 1/w correctly
    v = torch.tensor(
        [[[-0.9, -0.9, 0.1, 1.0], [1.8, -1.8, 0.1, 2.0], [0.0, 2.7, 0.1, 3.0]]], device=device
    )
    rast, _ = ops.rasterize(v, TRI.to(device), (16, 16))
    py, px = _ndc_centres(16, 16)
    m = rast[0, ..., 3].cpu() > 0
    u, vv = rast[0, ..., 0].cpu(), rast[0, ..., 1].cpu()
    b = torch.stack([u, vv, 1 - u - vv], -1)
    vc = v[0].cpu()
    clip = b @ vc  # perspective-correct: interpolated clip position projects to the pixel
    assert_close((clip[..., 0] / clip[..., 3])[m], px[m], atol=1e-5, name="x")
    assert_close((clip[..., 1] / clip[..., 3])[m], py[m], atol=1e-5, name="y")


@pytest.mark.parametrize("device", devices())
def test_triangle_partly_behind_camera(device):
    # one vertex behind the camera (w < 0); only the visible part is drawn, finite values
    # the visible part (w > 0) is a wedge above NDC y = -0.5 that widens upwards; the
    # vertex behind the camera projects to y = -4, which must not pull pixels down there
    v = torch.tensor(
        [[[-0.5, -0.5, 0.0, 1.0], [0.5, -0.5, 0.0, 1.0], [0.0, 2.0, 0.0, -0.5]]], device=device
    )
    rast, db = ops.rasterize(v, TRI.to(device), (32, 32))
    assert torch.isfinite(rast).all() and torch.isfinite(db).all()
    m = rast[0, ..., 3] > 0
    assert m.any()
    u, vv = rast[0, ..., 0][m], rast[0, ..., 1][m]
    b = torch.stack([u, vv, 1 - u - vv], -1)
    wp = b @ v[0, :, 3]
    assert (wp > 0).all() and (b >= -1e-5).all()
    py, _ = _ndc_centres(32, 32)
    assert (py[m.cpu()] > -0.5).all()
    assert m[-1].sum() > m[12].sum()  # widening towards the top row of NDC (+y)
    behind = torch.tensor(
        [[[-0.5, -0.5, 0.5, -1.0], [0.5, -0.5, 0.5, -1.0], [0.0, 0.5, 0.5, -1.0]]], device=device
    )
    assert (ops.rasterize(behind, TRI.to(device), (16, 16))[0] == 0).all()


@pytest.mark.parametrize("device", devices())
def test_empty_and_degenerate(device):
    empty = torch.zeros(1, 0, 4, device=device)
    tri0 = torch.zeros(0, 3, dtype=torch.int32, device=device)
    r, db = ops.rasterize(empty, tri0, (4, 5))
    assert r.shape == (1, 4, 5, 4) and (r == 0).all() and (db == 0).all()
    degen = torch.tensor([[[-0.5, -0.5, 0, 1], [0.5, 0.5, 0, 1], [0.0, 0.0, 0, 1]]], device=device)
    r, db = ops.rasterize(degen, TRI.to(device), (16, 16))
    assert torch.isfinite(r).all() and (r[..., 3] == 0).all()


def test_near_far_clipping():
    v = torch.tensor([[[-1, -1, 1.5, 1], [1, -1, 1.5, 1], [0, 1, 1.5, 1]]], dtype=torch.float32)
    assert (ops.rasterize(v, TRI, (8, 8))[0] == 0).all()  # beyond far plane
    v2 = torch.tensor([[[-1, -1, -1.5, 1], [1, -1, 0.5, 1], [0, 1, 0.5, 1]]], dtype=torch.float32)
    r = ops.rasterize(v2, TRI, (16, 16))[0]
    assert (r[..., 2][r[..., 3] > 0] >= -1).all() and (r[..., 3] == 0).any()


def test_range_mode_matches_instanced():
    v, tri = sphere(6, 12)
    pos = clip_positions(v)[0]
    half = tri.shape[0] // 2
    ranges = torch.tensor([[0, half], [half, tri.shape[0] - half]], dtype=torch.int32)
    r_range, _ = ops.rasterize(pos, tri, (24, 24), ranges=ranges)
    r0, _ = ops.rasterize(pos[None], tri[:half], (24, 24))
    assert torch.equal(r_range[0], r0[0])
    ids = r_range[1, ..., 3]
    assert ids[ids > 0].min() > half  # ids are global triangle indices + 1


def test_rast_db_matches_finite_differences():
    v = torch.tensor([[[-0.8, -0.7, 0.1, 1.0], [1.2, -0.9, 0.3, 1.5], [0.1, 1.6, 0.2, 2.0]]])
    r, db = ops.rasterize(v, TRI, (32, 32))
    m = r[0, ..., 3] > 0
    inner = m[1:-1, 1:-1] & m[2:, 1:-1] & m[:-2, 1:-1] & m[1:-1, 2:] & m[1:-1, :-2]
    du_dx = (r[0, 1:-1, 2:, 0] - r[0, 1:-1, :-2, 0]) / 2
    dv_dy = (r[0, 2:, 1:-1, 1] - r[0, :-2, 1:-1, 1]) / 2
    # barycentrics are rational in pixel position; central differences match to O(h^2)
    assert_close(db[0, 1:-1, 1:-1, 0][inner], du_dx[inner], atol=2e-4, name="du/dX")
    assert_close(db[0, 1:-1, 1:-1, 3][inner], dv_dy[inner], atol=2e-4, name="dv/dY")


def test_gradcheck_reference():
    torch.manual_seed(0)
    v = torch.tensor(
        [[[-0.7, -0.6, 0.2, 1.0], [0.8, -0.4, 0.1, 1.2], [0.0, 0.9, 0.3, 0.9]]],
        dtype=torch.float64,
        requires_grad=True,
    )

    def f(p):
        r, db = ops.rasterize(p, TRI, (6, 6), backend="torch")
        return r[..., :3], db

    assert torch.autograd.gradcheck(f, (v,), eps=1e-6, atol=GRAD_TOL)


def test_depth_peeling_layers():
    v, tri = sphere(8, 16)
    pos = clip_positions(v)
    r1, _ = ops.rasterize(pos, tri, (32, 32))
    with ops.DepthPeeler(pos, tri, (32, 32)) as peeler:
        l1, _ = peeler.rasterize_next_layer()
        l2, _ = peeler.rasterize_next_layer()
        l3, _ = peeler.rasterize_next_layer()
    assert torch.equal(l1, r1)
    m1, m2 = l1[..., 3] > 0, l2[..., 3] > 0
    # a closed convex surface: the second layer is the back side, nothing after it
    assert (m2 <= m1).all() and m2.sum() > 0.9 * m1.sum()
    assert (l2[..., 2][m2] > l1[..., 2][m2]).all()
    assert (l3[..., 3] == 0).all()


def test_bad_arguments_name_the_argument():
    with pytest.raises(ValueError, match=r"pos must be .* got shape \(3, 3\)"):
        ops.rasterize(torch.zeros(3, 3), TRI, (4, 4))
    with pytest.raises(ValueError, match="tri must have dtype"):
        ops.rasterize(torch.zeros(1, 3, 4), TRI.float(), (4, 4))
    with pytest.raises(ValueError, match="resolution"):
        ops.rasterize(torch.zeros(1, 3, 4), TRI, (0, 4))


@pytest.mark.parametrize("device", devices())
def test_no_cracks_between_triangles(device):
    """A fine jittered grid mesh under a perspective view, in front of a large triangle:
    no pixel centre inside the grid falls between two of its triangles (the large
    triangle behind would show through the crack)."""
    g = torch.Generator().manual_seed(0)
    n = 120
    u = torch.linspace(-0.8, 0.8, n + 1)
    yy, xx = torch.meshgrid(u, u, indexing="ij")
    jitter = (torch.rand(n + 1, n + 1, 2, generator=g) - 0.5) * (1.6 / n) * 0.6
    jitter[[0, -1]] = 0
    jitter[:, [0, -1]] = 0  # straight border
    xy = torch.stack([xx, yy], -1) + jitter
    pts = torch.cat([xy.reshape(-1, 2), torch.zeros((n + 1) ** 2, 1)], -1)
    idx = torch.arange((n + 1) ** 2).view(n + 1, n + 1)
    a, b, c, d = idx[:-1, :-1], idx[:-1, 1:], idx[1:, 1:], idx[1:, :-1]
    flip = torch.rand(n, n, generator=g) < 0.5  # both diagonals
    t1 = torch.where(flip[..., None], torch.stack([a, b, d], -1), torch.stack([a, b, c], -1))
    t2 = torch.where(flip[..., None], torch.stack([b, c, d], -1), torch.stack([a, c, d], -1))
    tri = torch.cat([t1.reshape(-1, 3), t2.reshape(-1, 3)])
    back = torch.tensor([[-5.0, -5.0, -1.0], [5.0, -5.0, -1.0], [0.0, 5.0, -1.0]])
    v = torch.cat([pts, back])
    tri = torch.cat([tri, torch.tensor([[len(pts), len(pts) + 1, len(pts) + 2]])]).int()
    from nvdrec.structures import camera as cam

    view = cam.translate(0.013, -0.021, -1.9) @ cam.rotate_x(0.35)
    mvp = cam.perspective(0.9, 1.0, 0.1, 10.0) @ view
    clip = torch.cat([v, torch.ones(len(v), 1)], -1) @ mvp.T
    rast, _ = ops.rasterize(clip[None].to(device), tri.to(device), (384, 384))
    tid = rast[0, ..., 3].long().cpu()
    front = (tid > 0) & (tid <= len(tri) - 1)
    assert front.sum() > 40000
    # the grid's image is convex: rows between its first and last front pixel are inside
    leaks = 0
    for row in range(384):
        cols = front[row].nonzero()[:, 0]
        if len(cols) > 1:
            span = tid[row, cols[0] : cols[-1] + 1]
            leaks += int((span == len(tri)).sum())
    assert leaks == 0
