"""The training recipe against its formulas (issue 14): per-pass learning rates, schedules,
loss terms and regularisers, the light's start and gradient scale, the random draws, the
joined pass-2 mesh and the validation views. nvdiffrec's reference log
(``shared/reference/nvdiffrec-bob.log``) prints the rate of the next iteration; the
numbers below are read from it."""

import math
from types import SimpleNamespace

import pytest
import torch
from _helpers import assert_close

import nvdrec
from nvdrec import ops
from nvdrec.geometry import laplacian_loss
from nvdrec.geometry.dmtet import sdf_reg_weight
from nvdrec.render import RasterContext
from nvdrec.structures import camera as cam
from nvdrec.train import loop
from nvdrec.train.helpers import (
    LIGHT_GRAD_SCALE,
    mesh_edges,
    slot_noise,
)
from nvdrec.train.loop import lr_factor
from nvdrec.train.passes import make_light
from nvdrec.train.trainer import Trainer


def lrs(value):
    cfg = nvdrec.load_config({"learning_rate": value})
    return cfg.learning_rates(0), cfg.learning_rates(1)


@pytest.mark.parametrize(
    "value, pass1, pass2",
    [
        (0.01, (0.01, 0.01), (0.01, 0.01)),  # one rate for everything
        ([0.03, 0.003], (0.03, 0.03), (0.003, 0.003)),  # per pass (nvdiffrec's bob)
        ([[0.03, 0.01], 0.003], (0.03, 0.01), (0.003, 0.003)),  # [geometry, material]
        ([[0.03, 0.01], [0.003, 0.001]], (0.03, 0.01), (0.003, 0.001)),
        ([0.02], (0.02, 0.02), (0.02, 0.02)),  # one entry: both passes
    ],
)
def test_learning_rate_forms_map_to_per_pass_rates(value, pass1, pass2):
    assert lrs(value) == (pass1, pass2)


def test_bad_learning_rate_names_the_forms():
    with pytest.raises(nvdrec.ConfigError, match="one entry per pass"):
        nvdrec.load_config({"learning_rate": [0.03, [0.1, -1]]})


def test_schedule_matches_nvdiffrec_log():
    # pass 1 (no warm-up): the log's lr at iteration 90 is the rate of iteration 91
    assert round(0.03 * lr_factor(91, 0), 5) == 0.02877
    assert round(0.03 * lr_factor(1000, 0), 5) == 0.01893
    assert lr_factor(0, 0) == 1.0
    # pass 2: linear warm-up over 100 iterations, then the decay from there
    assert lr_factor(0, 100) == 0.0
    assert round(0.003 * lr_factor(11, 100), 5) == 0.00033
    assert round(0.003 * lr_factor(100, 100), 5) == 0.003
    assert round(0.003 * lr_factor(111, 100), 5) == 0.00298
    assert round(0.003 * lr_factor(981, 100), 5) == 0.002


def test_sdf_regulariser_weight_schedule():
    assert sdf_reg_weight(0.2, 0, 1000) == pytest.approx(0.2)
    assert sdf_reg_weight(0.2, 125, 1000) == pytest.approx(0.2 - 0.19 * 0.5)
    assert sdf_reg_weight(0.2, 250, 1000) == pytest.approx(0.01)
    assert sdf_reg_weight(0.2, 900, 1000) == pytest.approx(0.01)


def test_laplacian_regulariser_by_hand():
    """A tetrahedron (every vertex has the other three as neighbours); one vertex moved by
    (1, 0, 0): its Laplacian is (1, 0, 0), the others' (-1/3, 0, 0), so the mean over 4
    vertices x 3 coordinates of the squares is (1 + 3/9) / 12 = 1/9."""
    tri = torch.tensor([[0, 1, 2], [0, 3, 1], [1, 3, 2], [2, 3, 0]])
    edges, deg = mesh_edges(tri, 4)
    assert deg.tolist() == [3, 3, 3, 3]
    d = torch.zeros(4, 3)
    d[0, 0] = 1.0
    mean = torch.zeros_like(d).index_add_(0, edges[:, 0], d[edges[:, 1]]) / deg[:, None]
    assert laplacian_loss(d - mean).item() == pytest.approx(1 / 9)


def _losses(it, buffers, target, bg, loss="l1"):
    cfg = nvdrec.load_config({"loss": loss, "backend": "torch"})
    return loop.losses(cfg, buffers, target, bg, it)


def _buffers(shaded, kd_grad=0.2, occ=0.5):
    b, h, w, _ = shaded.shape
    return {
        "shaded": shaded,
        "kd_grad": torch.full((b, h, w, 1), kd_grad),
        "occlusion": torch.full((b, h, w, 1), occ),
    }


def test_regularisers_ramp_in_over_500_iterations():
    shaded = torch.rand(1, 4, 4, 4)
    target = torch.rand(1, 4, 4, 4)
    bg = torch.rand(1, 4, 4, 3)
    for it, ramp in ((0, 0.0), (100, 0.2), (500, 1.0), (900, 1.0)):
        _, reg = _losses(it, _buffers(shaded), target, bg)
        assert reg.item() == pytest.approx((0.2 * 0.03 + 0.5 * 0.001) * ramp, abs=1e-9)


def test_colour_loss_only_inside_the_reference_silhouette():
    """Pixels where the reference alpha is 0 give the rendered colour no gradient (the
    coverage there is trained by the alpha term); inside, the loss is the configured
    image loss of render vs reference composited over the background, plus alpha MSE."""
    torch.manual_seed(0)
    shaded = torch.rand(1, 6, 6, 4, requires_grad=True)
    target = torch.rand(1, 6, 6, 4)
    target[..., 3] = 0.0
    target[:, 2:4, 2:4, 3] = 1.0
    bg = torch.rand(1, 6, 6, 3)
    img, _ = _losses(0, _buffers(shaded), target, bg)
    img.backward()
    g = shaded.grad[..., :3].abs().sum(-1)[0]
    assert (g[2:4, 2:4] > 0).all()
    outside = torch.ones(6, 6, dtype=torch.bool)
    outside[2:4, 2:4] = False
    assert (g[outside] == 0).all()
    a = target[..., 3:4]
    ref = target[..., :3] + bg * (1 - a)
    expect = (shaded[..., :3] * a - ref * a).abs().mean() + ((shaded[..., 3:] - a) ** 2).mean()
    assert img.item() == pytest.approx(expect.item(), rel=1e-6)


def test_noise_backgrounds_are_per_pixel_and_reproducible():
    gens = [torch.Generator().manual_seed(s) for s in (1, 2)]
    bg, jit = slot_noise(gens, (8, 10), 2, "cpu")
    assert bg.shape == (2, 8, 10, 3) and jit.shape == (2, 16, 20, 3)
    assert 0 <= bg.min() and bg.max() < 1 and bg[0].std() > 0.2  # noise, not a colour
    assert not torch.equal(bg[0], bg[1])
    again, _ = slot_noise([torch.Generator().manual_seed(s) for s in (1, 2)], (8, 10), 2, "cpu")
    assert torch.equal(bg, again)
    one, _ = slot_noise([torch.Generator().manual_seed(2)], (8, 10), 2, "cpu")
    assert torch.equal(one[0], bg[1])  # a slot's images do not depend on the batch


def test_learned_light_starts_grey_and_its_gradient_is_scaled():
    stub = SimpleNamespace(
        cfg=nvdrec.load_config({"light_res": 16, "backend": "torch"}), device=torch.device("cpu")
    )
    lgt = make_light(stub)
    assert torch.equal(lgt.base.detach(), torch.full((6, 16, 16, 3), 0.5))
    w = torch.rand(6, 16, 16, 3)
    (lgt.base * w).sum().backward()
    assert torch.allclose(lgt.base.grad, w * LIGHT_GRAD_SCALE)


def test_passes_draw_different_views():
    cfg = nvdrec.load_config(
        {"train_res": [16, 16], "batch": 2, "demo_grid": 16, "light_res": 16, "device": "cpu"}
    )
    t = Trainer(cfg)
    b1, bg1, _ = loop.train_batch(t, 7, 0)
    b2, bg2, _ = loop.train_batch(t, 7, 1)
    assert not torch.allclose(b1["mv"], b2["mv"]) and not torch.equal(bg1, bg2)
    b1b, bg1b, _ = loop.train_batch(t, 7, 0)
    assert torch.equal(b1["mv"], b1b["mv"]) and torch.equal(bg1, bg1b)


def test_unwrap_keeps_positions_joined():
    """Pass 2 trains one vertex per position: the unwrap gives the UVs their own index
    list (split at seams) and leaves positions and faces as they were."""
    from nvdrec.data.demo import demo_mesh
    from nvdrec.geometry import unwrap_uv

    mesh = demo_mesh(24)
    out = unwrap_uv(mesh)
    assert torch.equal(out.v_pos, mesh.v_pos)
    assert len(out.v_tex) > len(out.v_pos)  # seams split the UVs only
    same = torch.sort(out.t_pos_idx.long(), 1).values
    before = torch.sort(mesh.t_pos_idx.long(), 1).values
    assert torch.equal(torch.unique(same, dim=0), torch.unique(before, dim=0))
    assert out.t_nrm_idx is out.t_pos_idx  # normals average across seams
    assert ((out.v_tex >= 0) & (out.v_tex <= 1)).all()


def test_topology_cache_follows_the_face_tensor():
    """A new face list of the same length (pass 1 makes one every iteration) must not
    reuse the old list's antialiasing adjacency."""
    ctx = RasterContext("torch")
    f1 = torch.tensor([[0, 1, 2], [0, 2, 3]], dtype=torch.int32)
    t1 = ctx.topology(f1)
    assert ctx.topology(f1) is t1  # same tensor: cached
    f2 = torch.tensor([[0, 1, 2], [4, 5, 6]], dtype=torch.int32)
    t2 = ctx.topology(f2)
    assert torch.equal(t2.neighbor, ops.antialias_construct_topology_hash(f2).neighbor)
    assert not torch.equal(t1.neighbor, t2.neighbor)
    f2[1] = torch.tensor([0, 2, 3], dtype=torch.int32)  # changed in place: rebuilt
    assert torch.equal(ctx.topology(f2).neighbor, t1.neighbor)


def test_validation_views_are_nvdiffrecs():
    v = cam.validation_views(50, resolution=(64, 64))
    for i in (0, 7, 31):
        mv = cam.translate(0, 0, -3) @ cam.rotate_x(0.4) @ cam.rotate_y(2 * math.pi * i / 50)
        assert torch.allclose(v.mv[i], mv, atol=1e-6)
    # every camera at distance 3, above the object, looking down
    assert torch.allclose(v.campos.norm(dim=-1), torch.full((50,), 3.0), atol=1e-5)
    assert (v.campos[:, 1] > 1.1).all()


def test_trained_texture_gets_a_kd_smoothness_term():
    """In pass 2 the kd smoothness buffer is |kd(uv + jitter) - kd(uv)| for a trained
    texture (zero for a fixed one and when no gradient is recorded)."""
    from nvdrec.data.demo import demo_mesh
    from nvdrec.geometry import unwrap_uv
    from nvdrec.render import EnvironmentLight, render_mesh
    from nvdrec.structures.material import Material, Texture2D

    mesh = unwrap_uv(demo_mesh(24))
    g = torch.Generator().manual_seed(0)
    kd = Texture2D(torch.rand(32, 32, 3, generator=g), trainable=False)
    mesh.material = Material("m", kd=kd, ks=Texture2D(torch.full((4, 4, 3), 0.5), trainable=False))
    lgt = EnvironmentLight(torch.full((6, 16, 16, 3), 0.5), trainable=False)
    lgt.build_mips()
    views = cam.validation_views(2, resolution=(32, 32))

    def kd_grad():
        out = render_mesh(RasterContext("torch"), mesh, views.mvp, views.campos, lgt, (32, 32))
        return out["kd_grad"]

    assert kd_grad().abs().sum() == 0  # the texture does not train
    kd.data.requires_grad_(True)
    buf = kd_grad()
    assert buf.sum() > 0 and buf.requires_grad
    with torch.no_grad():
        assert kd_grad().abs().sum() == 0


def test_hash_table_adam_epsilon_equals_gradient_scale():
    """The table's Adam group (epsilon / HASH_GRAD_SCALE) takes the steps that plain Adam
    takes on the table's gradient x HASH_GRAD_SCALE (nvdiffrec's net gradient scale)."""
    from nvdrec.ops.hashgrid import HashGridConfig
    from nvdrec.render.mlptexture import HASH_GRAD_SCALE, MLPTexture3D, adam_groups

    def material():
        return MLPTexture3D(([-1.0] * 3, [1.0] * 3), config=HashGridConfig(log2_table_size=10))

    ours, scaled, unscaled = material(), material(), material()
    groups = [{**g, "lr": 0.01} for g in adam_groups(list(ours.parameters()))]
    assert sorted(g["eps"] for g in groups) == [1e-8 / HASH_GRAD_SCALE, 1e-8]
    assert any(g["params"] == [ours.table] for g in groups)
    opts = [
        torch.optim.Adam(groups, fused=True),
        torch.optim.Adam(scaled.parameters(), lr=0.01, eps=1e-8),
        torch.optim.Adam(unscaled.parameters(), lr=0.01, eps=1e-8),
    ]
    gen = torch.Generator().manual_seed(0)
    for _ in range(5):
        for a, b, c in zip(ours.parameters(), scaled.parameters(), unscaled.parameters()):
            # gradients near epsilon, where the scale changes the step
            g = torch.randn(a.shape, generator=gen) * 1e-8
            a.grad, c.grad = g.clone(), g.clone()
            b.grad = g * HASH_GRAD_SCALE if b is scaled.table else g.clone()
        for o in opts:
            o.step()
    for a, b in zip(ours.parameters(), scaled.parameters()):
        assert_close(a, b, atol=1e-7, rtol=1e-5, name="parameters")
    # plain Adam on the unscaled gradient moves the table less: the scale matters here
    step_ours = (ours.table - material().table).abs().mean()
    step_unscaled = (unscaled.table - material().table).abs().mean()
    assert step_ours > 1.5 * step_unscaled
