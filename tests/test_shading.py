import math

import numpy as np
import pytest
import torch
from _helpers import assert_close, sphere
from conftest import devices

from nvdrec.ops import cubemap
from nvdrec.ops.loss import image_loss, tonemap_srgb
from nvdrec.ops.shading import reflect, shading_normal, xfm_points, xfm_vectors
from nvdrec.render import EnvironmentLight, RasterContext, render_mesh
from nvdrec.render.light import split_sum_lut
from nvdrec.structures import Material, Mesh, Texture2D, auto_normals
from nvdrec.structures import camera as cam


def ggx_albedo_reference(nov, rough, n=600):
    """Directional albedo of a white GGX metal (F = 1), by a plain hemisphere quadrature
    (independent of the importance-sampled table)."""
    a = rough**2
    th = (torch.arange(n, dtype=torch.float64) + 0.5) / n * math.pi / 2
    ph = (torch.arange(2 * n, dtype=torch.float64) + 0.5) / (2 * n) * 2 * math.pi
    t, p = torch.meshgrid(th, ph, indexing="ij")
    l_dir = torch.stack([t.sin() * p.cos(), t.sin() * p.sin(), t.cos()], -1)
    v = torch.tensor([math.sqrt(1 - nov * nov), 0, nov], dtype=torch.float64)
    h = torch.nn.functional.normalize(l_dir + v, dim=-1)
    noh, nol = h[..., 2], l_dir[..., 2]
    d = a * a / (math.pi * ((noh * noh) * (a * a - 1) + 1) ** 2)

    def lam(c):
        c = torch.as_tensor(c, dtype=torch.float64).clamp(min=1e-9)
        return 0.5 * (-1 + torch.sqrt(1 + a * a * (1 - c * c) / (c * c)))

    g = 1 / (1 + lam(nov) + lam(nol))
    dw = t.sin() * (math.pi / 2 / n) * (2 * math.pi / (2 * n))
    return float((d * g / (4 * nov) * dw).sum())


def _gbuffer(n_dirs, view_dir):
    b = 1
    n = torch.nn.functional.normalize(n_dirs, dim=-1).view(b, 1, -1, 3)
    pos = torch.zeros_like(n)
    view = view_dir.view(1, 3) * 5.0
    return pos, n, view


@pytest.mark.parametrize("device", devices())
def test_white_furnace_lambertian_is_exactly_one(device):
    lgt = EnvironmentLight(torch.ones(6, 32, 32, 3, device=device))
    lgt.build_mips()
    n = torch.nn.functional.normalize(torch.randn(64, 3), dim=-1).to(device)
    pos, nn_, view = _gbuffer(n, torch.tensor([0.3, 0.5, 1.0], device=device))
    kd = torch.ones_like(nn_)
    ks = torch.tensor([0.0, 0.5, 0.0], device=device).expand_as(nn_)
    out = lgt.shade(pos, nn_, kd, ks, view, specular=False)
    assert_close(out, torch.ones_like(out), atol=1e-5, name="furnace diffuse")
    # occlusion scales the result
    ks_occ = torch.tensor([0.25, 0.5, 0.0], device=device).expand_as(nn_)
    out = lgt.shade(pos, nn_, kd, ks_occ, view, specular=False)
    assert_close(out, torch.full_like(out, 0.75), atol=1e-5)


@pytest.mark.parametrize("device", devices())
def test_white_furnace_metal_matches_ggx_albedo(device):
    lgt = EnvironmentLight(torch.ones(6, 32, 32, 3, device=device))
    lgt.build_mips()
    for rough in (0.15, 0.4, 0.8):
        for nov in (0.2, 0.6, 0.95):
            v = torch.tensor([math.sqrt(1 - nov * nov), 0.0, nov], device=device)
            pos, n, view = _gbuffer(torch.tensor([[0.0, 0.0, 1.0]], device=device), v)
            kd = torch.ones_like(n)
            ks = torch.tensor([0.0, rough, 1.0], device=device).expand_as(n)
            got = float(lgt.shade(pos, n, kd, ks, view)[0, 0, 0, 0])
            ref = ggx_albedo_reference(nov, rough)
            assert abs(got - ref) < 0.02, (rough, nov, got, ref)


def test_split_sum_table_range():
    lut = split_sum_lut()
    assert lut.shape == (1, 256, 256, 2)
    a, b = lut[0, ..., 0], lut[0, ..., 1]
    assert (a >= 0).all() and (b >= 0).all() and (a + b <= 1.02).all()
    assert a[0, -1] > 0.99 and b[0, -1] < 1e-3  # smooth, head-on: all energy, no Fresnel boost


def test_prefiltered_constant_is_constant_and_lobe_grows():
    lgt = EnvironmentLight(torch.full((6, 32, 32, 3), 2.5))
    lgt.build_mips()
    for s in lgt.specular:
        assert_close(s, torch.full_like(s, 2.5), atol=1e-4)
    # a single bright texel: the filtered lobe widens with roughness
    base = torch.zeros(6, 32, 32, 1)
    base[4, 16, 16] = 1000.0
    chain = [
        c[0] for c in __import__("nvdrec").ops.build_mips(base[None], max_mip_level=1, cube=True)
    ]
    widths = []
    for rough in (0.1, 0.3, 0.6):
        f = cubemap.specular_prefilter(chain, 0, rough, samples=64)[..., 0]
        total = f.sum()
        d = cubemap.cube_texel_dirs(32).reshape(-1, 3)
        centre = torch.tensor([0.0, 0.0, 1.0])
        ang = torch.acos((d @ centre).clamp(-1, 1))
        widths.append(float((f.reshape(-1) * ang).sum() / total))
    assert widths[0] < widths[1] < widths[2], widths


def test_irradiance_continuous_across_face_seams():
    lgt = EnvironmentLight.random(32, seed=1)
    lgt.build_mips()
    d1 = torch.nn.functional.normalize(torch.tensor([[1.0, 0.3, 0.999], [1.0, 0.3, 1.001]]), dim=-1)
    from nvdrec import ops

    out = ops.texture(lgt.diffuse[None], d1.view(1, 1, 2, 3), boundary_mode="cube")
    assert (out[0, 0, 0] - out[0, 0, 1]).abs().max() < 1e-2


def test_latlong_cube_roundtrip_and_probe(tmp_path):
    h, w = 32, 64
    d = cubemap.latlong_dirs(h, w)
    img = torch.stack([d[..., 0] * 0.5 + 0.5, d[..., 1] * 0.5 + 0.5, torch.ones(h, w) * 0.3], -1)
    cube = cubemap.latlong_to_cubemap(img, 32)
    back = cubemap.cubemap_to_latlong(cube, h, w)
    # away from the poles (where lat-long texels are tiny) the round trip is close
    assert (back[4:-4] - img[4:-4]).abs().max() < 0.03
    lgt = EnvironmentLight(cube)
    lgt.save(tmp_path / "probe.hdr")
    lgt2 = EnvironmentLight.load(tmp_path / "probe.hdr", res=32)
    assert (lgt2.base - lgt.base).abs().max() < 0.05
    sa = cubemap.cube_texel_solid_angles(16)
    assert abs(float(sa.sum()) - 4 * math.pi) < 1e-4


def test_shading_normal_perturbation_and_two_sided():
    pos = torch.zeros(1, 1, 1, 3)
    view = torch.tensor([0.0, 0.0, 5.0]).view(1, 1, 1, 3)
    nrm = torch.tensor([0.0, 0.0, 1.0]).view(1, 1, 1, 3)
    tng = torch.tensor([1.0, 0.0, 0.0]).view(1, 1, 1, 3)
    flat = shading_normal(pos, view, torch.tensor([0.0, 0.0, 1.0]).view(1, 1, 1, 3), nrm, tng, nrm)
    assert_close(flat, nrm, atol=1e-6)
    # +Y in the map tilts towards the bitangent N x T = +Y
    tilt = shading_normal(
        pos, view, torch.tensor([0.0, 0.5, 0.866]).view(1, 1, 1, 3), nrm, tng, nrm
    )
    assert tilt[..., 1] > 0.4
    # a back face is flipped towards the viewer
    back = shading_normal(pos, view, None, -nrm, tng, -nrm)
    assert_close(back, nrm, atol=1e-6)
    # grazing: the shading normal blends to the geometric one
    bent = torch.nn.functional.normalize(torch.tensor([0.0, 0.99, -0.2]), dim=0).view(1, 1, 1, 3)
    graze = shading_normal(pos, view, None, bent, tng, nrm)
    assert_close(graze, nrm, atol=1e-6)


def test_transforms_and_reflect():
    m = cam.translate(1, 2, 3)[None] @ cam.rotate_y(math.pi / 2)[None]
    p = xfm_points(torch.tensor([[1.0, 0, 0]]), m)
    assert_close(p[0, 0], torch.tensor([1.0, 2.0, 2.0, 1.0]), atol=1e-6)
    v = xfm_vectors(torch.tensor([[1.0, 0, 0]]), m)
    assert_close(v[0, 0], torch.tensor([0.0, 0.0, -1.0]), atol=1e-6)
    r = reflect(torch.tensor([1.0, 1.0, 0.0]), torch.tensor([0.0, 1.0, 0.0]))
    assert_close(r, torch.tensor([-1.0, 1.0, 0.0]), atol=0)


@pytest.mark.parametrize("loss", ["l1", "mse", "logl1", "logl2", "smape", "relmse"])
def test_losses(loss):
    a = torch.rand(2, 4, 4, 3) * 4
    assert image_loss(a, a, loss) == 0
    b = a + 0.5
    assert image_loss(a, b, loss) > 0
    with pytest.raises(ValueError, match="loss must be one of"):
        image_loss(a, b, "l3")


def test_tonemap_and_loss_values():
    x = torch.tensor([0.0, 1.0, 10.0])
    t = tonemap_srgb(x)
    assert t[0] == 0 and 0 < t[1] < t[2]
    assert abs(float(image_loss(torch.ones(3), torch.zeros(3), "l1")) - 1.0) < 1e-6
    assert abs(float(image_loss(torch.full((3,), 2.0), torch.zeros(3), "mse")) - 4.0) < 1e-6


def test_gradcheck_shading_reference():
    lgt = EnvironmentLight(torch.rand(6, 16, 16, 3, dtype=torch.float64) + 0.5, samples=8)
    lgt.base.data = lgt.base.data.double()
    n = torch.nn.functional.normalize(torch.randn(1, 1, 3, 3, dtype=torch.float64), dim=-1)
    pos = torch.zeros_like(n)
    view = torch.tensor([[0.2, 0.3, 4.0]], dtype=torch.float64)
    kd = torch.rand(1, 1, 3, 3, dtype=torch.float64, requires_grad=True)
    ks = (
        torch.tensor([0.1, 0.5, 0.3], dtype=torch.float64)
        .expand(1, 1, 3, 3)
        .clone()
        .requires_grad_()
    )

    def f(kd_, ks_):
        lgt.build_mips()
        return lgt.shade(pos, n, kd_, ks_, view)

    assert torch.autograd.gradcheck(f, (kd, ks), eps=1e-6, atol=1e-5)


def test_render_sphere_under_constant_light_matches_closed_form():
    """A white Lambertian sphere under unit light renders 1 where covered (furnace), and
    its coverage matches the projected disc area."""
    v, tri = sphere(32, 64, radius=0.8)
    mesh = auto_normals(Mesh(v, tri.long()))
    mesh.material = Material("white", kd=Texture2D([1.0, 1.0, 1.0]), ks=Texture2D([0.0, 1.0, 0.0]))
    mesh.v_tex, mesh.t_tex_idx = torch.zeros(len(v), 2), tri.long()
    lgt = EnvironmentLight(torch.ones(6, 16, 16, 3))
    lgt.build_mips()
    dist = 3.0
    mv = cam.look_at((0.0, 0.0, dist))
    fovy = math.radians(45)
    mvp = (cam.perspective(fovy, 1.0, 0.1, 100) @ mv)[None]
    out = render_mesh(
        RasterContext(), mesh, mvp, torch.tensor([[0.0, 0.0, dist]]), lgt, (96, 96), bsdf="diffuse"
    )["shaded"][0]
    alpha = out[..., 3]
    inner = alpha > 0.999
    assert_close(
        out[..., :3][inner], torch.ones_like(out[..., :3][inner]), atol=2e-3, name="furnace render"
    )
    # projected disc: angular radius asin(r / d) -> NDC radius tan(asin(r/d)) / tan(fovy/2)
    r_ndc = math.tan(math.asin(0.8 / dist)) / math.tan(fovy / 2)
    disc = math.pi * (r_ndc * 48) ** 2
    assert abs(float(alpha.sum()) / disc - 1) < 0.02


def test_render_layers_and_debug_modes():
    v, tri = sphere(8, 16, radius=0.6)
    mesh = auto_normals(Mesh(v, tri.long()))
    mesh.v_tex, mesh.t_tex_idx = torch.zeros(len(v), 2), tri.long()
    mesh.material = Material(
        "half", kd=Texture2D([0.5, 0.5, 0.5, 0.5]), ks=Texture2D([0.0, 0.5, 0.0])
    )
    mvp = (cam.perspective() @ cam.look_at((0, 0, 3.0)))[None]
    ctx = RasterContext()
    one = render_mesh(ctx, mesh, mvp, torch.tensor([[0, 0, 3.0]]), None, (32, 32), bsdf="kd")[
        "shaded"
    ]
    two = render_mesh(
        ctx, mesh, mvp, torch.tensor([[0, 0, 3.0]]), None, (32, 32), bsdf="kd", num_layers=2
    )
    a1, a2 = one[0, 16, 16, 3], two["shaded"][0, 16, 16, 3]
    assert (
        abs(float(a1) - 0.5) < 1e-5 and abs(float(a2) - 0.75) < 1e-5
    )  # two half-transparent layers
    ss = render_mesh(
        ctx, mesh, mvp, torch.tensor([[0, 0, 3.0]]), None, (32, 32), bsdf="normal", spp=2
    )
    assert ss["shaded"].shape == (1, 32, 32, 4)
    assert np.isfinite(ss["shaded"].detach().numpy()).all()


def test_neural_material_compaction_on_cpu_changes_nothing_visible(monkeypatch):
    """On the CPU a neural material is evaluated on covered pixels only: the rendered image
    and the gradients of the material's parameters equal those of evaluating every pixel;
    the kd smoothness buffer is zero on the background either way (compositing)."""
    from nvdrec.ops import HashGridConfig
    from nvdrec.render import MLPTexture3D
    from nvdrec.render import renderer as R

    v, tri = sphere(12, 24, radius=0.7)
    mesh = auto_normals(Mesh(v, tri.long()))
    cfg = HashGridConfig(n_levels=4, log2_table_size=10, finest_resolution=64)
    torch.manual_seed(0)
    mat = MLPTexture3D(([-1.0] * 3, [1.0] * 3), config=cfg, backend="torch")
    lgt = EnvironmentLight.random(16, backend="torch", trainable=False)
    lgt.build_mips()
    mvp = torch.stack([cam.perspective() @ cam.look_at(e) for e in [(0, 0, 3.0), (2.0, 1, 2)]])
    campos = torch.tensor([[0, 0, 3.0], [2.0, 1, 2]])
    results = []
    for compact in (False, True):
        monkeypatch.setattr(R, "COMPACT_NEURAL_MATERIAL", compact)
        mat.zero_grad()
        out = render_mesh(RasterContext(), mesh, mvp, campos, lgt, (40, 40), material=mat)
        (out["shaded"] * torch.linspace(0, 1, 4)).sum().backward()
        grads = [p.grad.clone() for p in mat.parameters() if p.grad is not None]
        results.append((out["shaded"].detach(), grads, out["kd_grad"].detach()))
    (s0, g0, k0), (s1, g1, k1) = results
    alpha = s0[..., 3]
    assert 0.1 < float((alpha > 0).float().mean()) < 0.9  # both covered and background pixels
    assert_close(s1, s0, atol=1e-6, name="shaded")
    assert len(g0) == len(g1) > 0
    for a, b in zip(g1, g0):
        assert_close(a, b, atol=1e-7, rtol=1e-4, name="material gradient")
    assert (k1[alpha == 0] == 0).all() and (k0[alpha == 0] == 0).all()


def test_light_must_be_rgb_and_grey_maps_load_as_rgb(tmp_path):
    with pytest.raises(ValueError, match=r"\[6, R, R, 3\] of RGB radiance"):
        EnvironmentLight(torch.rand(6, 16, 16, 4))
    from nvdrec.io.image import write_image

    grey = torch.linspace(0, 1, 16 * 32).reshape(16, 32, 1)
    write_image(tmp_path / "grey.png", grey)
    lgt = EnvironmentLight.load(tmp_path / "grey.png", res=16)
    assert lgt.base.shape == (6, 16, 16, 3)
    assert torch.equal(lgt.base[..., 0], lgt.base[..., 1])
    assert torch.equal(lgt.base[..., 0], lgt.base[..., 2])


def test_custom_mip_levels_sample_like_box_filtering_and_get_gradients():
    """Texture2D.enable_custom_mips: at creation the trainable levels equal the box-filtered
    chain, so a render is unchanged; gradients then reach the levels a minified view
    samples."""
    v, tri = sphere(8, 16, radius=0.6)
    mesh = auto_normals(Mesh(v, tri.long()))
    uv = torch.stack([torch.atan2(v[:, 0], v[:, 2]) / (2 * math.pi) + 0.5, v[:, 1] * 0.5 + 0.5], -1)
    mesh.v_tex, mesh.t_tex_idx = uv, tri.long()
    g = torch.Generator().manual_seed(0)
    kd = Texture2D(torch.rand(64, 64, 3, generator=g))
    mesh.material = Material("m", kd=kd, ks=Texture2D([0.0, 0.5, 0.0]))
    mvp = (cam.perspective() @ cam.look_at((0, 0, 6.0)))[None]  # small on screen: minified
    args = (RasterContext(), mesh, mvp, torch.tensor([[0, 0, 6.0]]), None, (24, 24))
    plain = render_mesh(*args, bsdf="kd")["shaded"]
    kd.enable_custom_mips()
    assert [tuple(m.shape) for m in kd.mips] == [(1, 64 >> k, 64 >> k, 3) for k in range(1, 7)]
    custom = render_mesh(*args, bsdf="kd")["shaded"]
    assert_close(custom, plain, atol=1e-6, name="custom mips at init")
    custom[..., :3].sum().backward()
    assert any(m.grad is not None and m.grad.abs().sum() > 0 for m in kd.mips)
    assert {id(p) for p in mesh.material.parameters()} >= {id(m) for m in kd.mips}
    with torch.no_grad():
        kd.mips[0].fill_(5.0)
    kd.lo, kd.hi = torch.zeros(3), torch.ones(3)
    kd.clamp_()
    assert float(kd.mips[0].detach().max()) == 1.0
