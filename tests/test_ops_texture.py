import math

import pytest
import torch
from _helpers import assert_close
from conftest import devices

from nvdrec import ops
from nvdrec.ops.texture import cube_dir_to_face, cube_face_to_dir


def _bilinear_direct(tex, u, v, boundary="wrap"):
    """Independent scalar bilinear lookup, texel centres at (i + 0.5) / size."""
    h, w, _ = tex.shape
    x, y = u * w - 0.5, v * h - 0.5
    j0, i0 = math.floor(x), math.floor(y)
    fx, fy = x - j0, y - i0
    acc = torch.zeros(tex.shape[-1])
    for di, dj, wt in (
        (0, 0, (1 - fx) * (1 - fy)),
        (0, 1, fx * (1 - fy)),
        (1, 0, (1 - fx) * fy),
        (1, 1, fx * fy),
    ):
        i, j = i0 + di, j0 + dj
        if boundary == "wrap":
            i, j = i % h, j % w
        elif boundary == "clamp":
            i, j = min(max(i, 0), h - 1), min(max(j, 0), w - 1)
        elif not (0 <= i < h and 0 <= j < w):
            continue
        acc = acc + wt * tex[i, j]
    return acc


@pytest.mark.parametrize("device", devices())
@pytest.mark.parametrize("boundary", ["wrap", "clamp", "zero"])
def test_bilinear_against_direct(device, boundary):
    torch.manual_seed(0)
    tex = torch.rand(5, 7, 3)
    uv = torch.rand(1, 4, 6, 2) * 1.4 - 0.2
    out = ops.texture(
        tex[None].to(device), uv.to(device), filter_mode="linear", boundary_mode=boundary
    )
    ref = torch.stack(
        [_bilinear_direct(tex, float(a), float(b), boundary) for a, b in uv.view(-1, 2)]
    )
    assert_close(out.cpu().view(-1, 3), ref, atol=1e-5, name=f"bilinear {boundary}")


@pytest.mark.parametrize("device", devices())
def test_nearest_and_texel_centres(device):
    tex = torch.arange(12.0).view(1, 3, 4, 1).to(device)
    centres = torch.tensor([[[(j + 0.5) / 4, (i + 0.5) / 3] for j in range(4)] for i in range(3)])[
        None
    ].to(device)
    for mode in ("nearest", "linear"):
        out = ops.texture(tex, centres, filter_mode=mode)
        assert_close(out, tex, atol=1e-5, name=mode)


@pytest.mark.parametrize("device", devices())
def test_trilinear_against_direct(device):
    torch.manual_seed(1)
    tex = torch.rand(1, 16, 16, 2)
    mips = ops.build_mips(tex)
    assert [m.shape[1] for m in mips] == [16, 8, 4, 2, 1]
    assert_close(mips[1][0, 0, 0], tex[0, :2, :2].mean((0, 1)), atol=1e-6)
    uv = torch.rand(1, 3, 3, 2)
    lod = torch.tensor([0.0, 0.25, 1.5, 2.0, 2.7, 3.3, 4.0, 5.0, -1.0]).view(1, 3, 3)
    out = ops.texture(
        tex.to(device),
        uv.to(device),
        mip_level_bias=lod.to(device),
        filter_mode="linear-mipmap-linear",
    )
    ref = []
    for (u, v), l in zip(uv.view(-1, 2).tolist(), lod.view(-1).tolist()):
        l = min(max(l, 0.0), 4.0)
        l0 = min(int(math.floor(l)), 3)
        f = l - l0
        a = _bilinear_direct(mips[l0][0], u, v)
        b = _bilinear_direct(mips[l0 + 1][0], u, v)
        ref.append(a * (1 - f) + b * f)
    assert_close(out.cpu().view(-1, 2), torch.stack(ref), atol=1e-5, name="trilinear")


def test_lod_from_uv_derivatives():
    tex = torch.rand(1, 64, 64, 1)
    uv = torch.full((1, 1, 1, 2), 0.3)
    # a footprint of 4 texels along X -> level 2
    da = torch.tensor([4 / 64, 0.0, 0.0, 1 / 64]).view(1, 1, 1, 4)
    out = ops.texture(tex, uv, uv_da=da)
    ref = ops.texture(tex, uv, mip_level_bias=torch.full((1, 1, 1), 2.0))
    assert_close(out, ref, atol=1e-6)
    # anisotropic check on a non-square texture: du/dY of 4/16 is 4 texels along W=16
    tall = torch.rand(1, 64, 16, 1)
    da = torch.tensor([0.0, 4 / 16, 0.0, 0.0]).view(1, 1, 1, 4)
    ref = ops.texture(tall, uv, mip_level_bias=torch.full((1, 1, 1), 2.0))
    assert_close(ops.texture(tall, uv, uv_da=da), ref, atol=1e-6)
    custom = [torch.zeros(1, 64 >> k, 64 >> k, 1) for k in range(1, 7)]
    assert (ops.texture(tex, uv, uv_da=da, mip=custom) == 0).all()


def test_cube_face_table_roundtrip():
    d = torch.nn.functional.normalize(torch.randn(2000, 3), dim=-1)
    face, s, t = cube_dir_to_face(d)
    back = cube_face_to_dir(face, s * 2 - 1, t * 2 - 1)
    assert_close(torch.nn.functional.normalize(back, dim=-1), d, atol=1e-5, name="dir")
    # face centres
    axes = torch.tensor([[1.0, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]])
    assert cube_dir_to_face(axes)[0].tolist() == [0, 1, 2, 3, 4, 5]
    # +X face: s grows towards -z, t towards -y (OpenGL table)
    f, s, t = cube_dir_to_face(torch.tensor([[1.0, -0.5, -0.5]]))
    assert f.item() == 0 and s.item() > 0.5 and t.item() > 0.5


@pytest.mark.parametrize("device", devices())
def test_cube_seams_are_continuous(device):
    # a smooth function of direction, baked into a cube map: samples just either side
    # of every face edge must agree (they would jump without cross-face filtering)
    n = 16
    ii, jj = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
    sc, tc = (jj + 0.5) / n * 2 - 1, (ii + 0.5) / n * 2 - 1
    faces = [cube_face_to_dir(torch.full_like(sc, f), sc, tc) for f in range(6)]
    dirs = torch.nn.functional.normalize(torch.stack(faces), dim=-1)
    cube = torch.cat([dirs * 0.5 + 0.5, (dirs[..., :1] * 3).sin()], -1).to(device)
    # pairs of directions straddling the edges between faces
    g = torch.Generator().manual_seed(0)
    base = torch.nn.functional.normalize(torch.randn(500, 3, generator=g), dim=-1)
    a = base.abs()
    top2 = a.topk(2, dim=-1).indices
    edge = base.clone()
    edge.scatter_(1, top2[:, 1:2], a.gather(1, top2[:, :1]) * base.gather(1, top2[:, 1:2]).sign())
    eps = 1e-3
    d1 = edge.clone()
    d1.scatter_add_(1, top2[:, :1], eps * base.gather(1, top2[:, :1]).sign())
    d2 = edge.clone()
    d2.scatter_add_(1, top2[:, 1:2], eps * base.gather(1, top2[:, 1:2]).sign())
    assert (cube_dir_to_face(d1)[0] != cube_dir_to_face(d2)[0]).all()
    s1 = ops.texture(cube, d1.view(1, 1, -1, 3).to(device), boundary_mode="cube")
    s2 = ops.texture(cube, d2.view(1, 1, -1, 3).to(device), boundary_mode="cube")
    # the function changes by at most ~1.5 per radian; the pair is ~1e-3 rad apart, and
    # one texel is 2/16 wide, so a seam jump would be ~0.1
    assert (s1 - s2).abs().max() < 0.02
    # and the cube map reproduces the function it was baked from
    ref = torch.cat([d1 * 0.5 + 0.5, (d1[:, :1] * 3).sin()], -1)
    ref[:, :3] = torch.nn.functional.normalize(d1, dim=-1) * 0.5 + 0.5
    ref[:, 3] = (torch.nn.functional.normalize(d1, dim=-1)[:, 0] * 3).sin()
    assert (s1.cpu().view(-1, 4) - ref).abs().max() < 0.06


def test_cube_mips_and_bias():
    cube = torch.ones(6, 8, 8, 3) * torch.tensor([0.2, 0.5, 0.9])
    d = torch.nn.functional.normalize(torch.randn(1, 4, 5, 3), dim=-1)
    out = ops.texture(cube, d, mip_level_bias=torch.full((1, 4, 5), 1.7), boundary_mode="cube")
    assert_close(out, torch.tensor([0.2, 0.5, 0.9]).expand(1, 4, 5, 3), atol=1e-6)


def test_gradcheck_reference():
    torch.manual_seed(0)
    tex = torch.rand(1, 4, 4, 2, dtype=torch.float64, requires_grad=True)
    uv = (torch.rand(1, 2, 3, 2, dtype=torch.float64) * 0.8 + 0.1).requires_grad_()
    bias = torch.rand(1, 2, 3, dtype=torch.float64).mul(1.5).add(0.2).requires_grad_()

    def f(t, u, b):
        return ops.texture(
            t, u, mip_level_bias=b, filter_mode="linear-mipmap-linear", backend="torch"
        )

    assert torch.autograd.gradcheck(f, (tex, uv, bias), eps=1e-6, atol=1e-6)
    cube = torch.rand(6, 4, 4, 1, dtype=torch.float64, requires_grad=True)
    d = torch.nn.functional.normalize(
        torch.randn(1, 2, 2, 3, dtype=torch.float64), dim=-1
    ).requires_grad_()
    assert torch.autograd.gradcheck(
        lambda c, x: ops.texture(c, x, boundary_mode="cube", backend="torch"),
        (cube, d),
        eps=1e-6,
        atol=1e-6,
    )


def test_argument_errors():
    with pytest.raises(ValueError, match="filter_mode"):
        ops.texture(torch.rand(1, 4, 4, 1), torch.rand(1, 2, 2, 2), filter_mode="cubic")
    with pytest.raises(ValueError, match=r"uv must be 4-D with last dimension 2"):
        ops.texture(torch.rand(1, 4, 4, 1), torch.rand(1, 2, 2, 3))
    with pytest.raises(ValueError, match="cube map"):
        ops.texture(torch.rand(6, 4, 5, 1), torch.rand(1, 2, 2, 3), boundary_mode="cube")
