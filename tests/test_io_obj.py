import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from nvdrec.errors import MeshFormatError, MissingFileError
from nvdrec.io import load_mesh, read_image, save_mesh, write_image
from nvdrec.structures import Material, Mesh, Texture2D

QUAD_OBJ = """# a quad, a triangle, negative indices, two materials
mtllib two.mtl
o thing
v 0 0 0
v 1 0 0
v 1 1 0
v 0 1 0
v 0 0 1
vt 0 0
vt 1 0
vt 1 1
vt 0 1
vn 0 0 1
s off
usemtl red
f 1/1/1 2/2/1 3/3/1 4/4/1
usemtl textured
f -5/-4/-1 -4/-3/-1 -1/-1/-1
weirdkeyword 1 2 3
"""

TWO_MTL = """newmtl red
Kd 1 0 0
Ks 0 0.3 1
newmtl textured
bsdf pbr
illum 2
map_Kd -bm 1.0 kd.png
map_Ks ks.png
bump nrm.png
"""


@pytest.fixture
def quad(tmp_path):
    (tmp_path / "m.obj").write_text(QUAD_OBJ)
    (tmp_path / "two.mtl").write_text(TWO_MTL)
    write_image(tmp_path / "kd.png", np.full((4, 4, 3), 0.5, np.float32))
    write_image(tmp_path / "ks.png", np.full((4, 4, 3), [0.0, 0.4, 0.2], np.float32))
    write_image(tmp_path / "nrm.png", np.full((4, 4, 3), [0.5, 0.5, 1.0], np.float32))
    return tmp_path


def test_load_polygons_negative_indices_materials(quad):
    m = load_mesh(quad / "m.obj")
    assert m.num_vertices == 5 and m.num_triangles == 3
    assert m.t_pos_idx.tolist() == [[0, 1, 2], [0, 2, 3], [0, 1, 4]]
    assert m.t_tex_idx.tolist()[2] == [0, 1, 3]
    # v is flipped into texture-memory order
    assert m.v_tex[2].tolist() == [1.0, 0.0]
    assert [x.name for x in m.materials] == ["red", "textured"]
    assert m.t_mat_idx.tolist() == [0, 0, 1]
    red, tex = m.materials
    assert red.kd.image().flatten().tolist() == [1, 0, 0]
    assert torch.allclose(red.ks.image().flatten(), torch.tensor([0.0, 0.3, 1.0]))
    # map_Kd is sRGB in the file -> linear in memory; ks and normal are linear
    assert abs(tex.kd.image()[0, 0, 0].item() - 0.2158605) < 2e-3
    assert torch.allclose(tex.ks.image()[0, 0], torch.tensor([0.0, 0.4, 0.2]), atol=3e-3)
    assert torch.allclose(tex.normal.image()[0, 0], torch.tensor([0.0, 0.0, 1.0]), atol=5e-3)


def test_mtl_override(quad):
    (quad / "metal.mtl").write_text("newmtl metal\nKd 0.9 0.9 0.9\nKs 0 0.2 1\n")
    m = load_mesh(quad / "m.obj", mtl_override=quad / "metal.mtl")
    assert [x.name for x in m.materials] == ["metal"]
    assert m.t_mat_idx.tolist() == [0, 0, 0]


@pytest.mark.parametrize(
    "bad,match",
    [
        ("v 0 0\n", "at least 3"),
        ("v a b c\n", "not a list of numbers"),
        ("v 0 0 0\nv 1 0 0\nf 1 2\n", "at least 3 vertices"),
        ("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 9\n", "out of range"),
        ("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 0\n", "out of range"),
        ("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1/1/1/1 2 3\n", "bad face vertex"),
        ("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1/x 2 3\n", "bad index"),
        ("v 0 0 0\n", "no faces"),
        ("# nothing\n", "no vertices"),
        ("v 0 0 nan\n", "non-finite"),
    ],
)
def test_malformed_obj_lines(tmp_path, bad, match):
    p = tmp_path / "bad.obj"
    p.write_text(bad)
    with pytest.raises(MeshFormatError, match=match) as e:
        load_mesh(p)
    assert "bad.obj" in str(e.value)


def test_missing_files_name_the_path(tmp_path, quad):
    with pytest.raises(MissingFileError, match="nope.obj"):
        load_mesh(tmp_path / "nope.obj")
    (quad / "two.mtl").unlink()
    with pytest.raises(MissingFileError, match=r"m.obj:2.*two.mtl"):
        load_mesh(quad / "m.obj")
    (quad / "two.mtl").write_text(TWO_MTL)
    (quad / "ks.png").unlink()
    with pytest.raises(MissingFileError, match=r"two.mtl:\d+: texture 'ks.png'"):
        load_mesh(quad / "m.obj")


def test_save_load_roundtrip_with_textures(tmp_path, quad):
    m = load_mesh(quad / "m.obj")
    m.material = m.materials[1]
    out = save_mesh(m, tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "mesh.mtl",
        "mesh.obj",
        "texture_kd.png",
        "texture_ks.png",
        "texture_n.png",
    ]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]  # temp folder gone
    back = load_mesh(out)
    for a in ("v_pos", "v_tex", "v_nrm", "t_pos_idx", "t_tex_idx", "t_nrm_idx"):
        torch.testing.assert_close(getattr(back, a), getattr(m, a), atol=1e-7, rtol=0)
    torch.testing.assert_close(back.material.kd.image(), m.material.kd.image(), atol=3e-3, rtol=0)
    torch.testing.assert_close(back.material.ks.image(), m.material.ks.image(), atol=3e-3, rtol=0)
    assert abs(read_image(tmp_path / "out" / "texture_kd.png")[0, 0, 0] - 0.5) < 3e-3  # sRGB file


@settings(max_examples=25, deadline=None)
@given(
    nv=st.integers(3, 30),
    nt=st.integers(1, 30),
    seed=st.integers(0, 2**31),
    uv=st.booleans(),
    nrm=st.booleans(),
)
def test_obj_roundtrip_property(tmp_path_factory, nv, nt, seed, uv, nrm):
    g = torch.Generator().manual_seed(seed)
    pos = (torch.rand(nv, 3, generator=g) - 0.5) * 10 ** float(
        torch.randint(-3, 4, (1,), generator=g)
    )
    tri = torch.randint(0, nv, (nt, 3), generator=g)
    mesh = Mesh(v_pos=pos, t_pos_idx=tri)
    if uv:
        mesh.v_tex, mesh.t_tex_idx = torch.rand(nv, 2, generator=g), tri.clone()
    if nrm:
        n = torch.nn.functional.normalize(torch.randn(nv, 3, generator=g), dim=-1)
        mesh.v_nrm, mesh.t_nrm_idx = n, tri.clone()
    mesh.material = Material("m", kd=Texture2D([0.1, 0.2, 0.3]), ks=Texture2D([0, 0.5, 1]))
    d = tmp_path_factory.mktemp("rt")
    back = load_mesh(save_mesh(mesh, d))
    assert torch.equal(back.v_pos, pos)  # %.9g is exact for float32
    assert torch.equal(back.t_pos_idx, tri)
    if uv:
        torch.testing.assert_close(back.v_tex, mesh.v_tex, atol=1e-7, rtol=0)
    if nrm:
        torch.testing.assert_close(back.v_nrm, mesh.v_nrm, atol=1e-6, rtol=0)
    assert back.material.kd.image().flatten().tolist() == pytest.approx([0.1, 0.2, 0.3])


def test_shared_meshes(shared_data):
    bob = load_mesh(shared_data / "meshes/bob/bob_tri.obj")
    assert bob.num_vertices == 5344 and bob.num_triangles == 10688
    assert bob.material.kd.shape == (1, 2048, 2048, 3)
    assert torch.allclose(bob.material.ks.image().flatten(), torch.tensor([0.0, 0.25, 0.0]))
    lo, _ = bob.aabb()
    assert torch.allclose(lo, torch.tensor([-0.91, -0.51, -0.73]), atol=0.02)
    spot = load_mesh(shared_data / "meshes/spot/spot.obj")
    assert spot.num_vertices == 2930 and spot.num_triangles == 5856
    blub = load_mesh(shared_data / "meshes/blub/blub_triangulated.obj")
    assert blub.num_triangles == 14208


def test_mtl_paths_cannot_make_writes_escape_the_output_folder(tmp_path):
    """Texture names from an MTL are only read; save_mesh writes fixed names in its folder."""
    src = tmp_path / "src"
    src.mkdir()
    write_image(tmp_path / "outside.png", np.full((2, 2, 3), 0.5, np.float32))
    (src / "m.mtl").write_text("newmtl m\nmap_Kd ../outside.png\n")
    (src / "m.obj").write_text(
        "mtllib m.mtl\nv 0 0 0\nv 1 0 0\nv 0 1 0\nvt 0 0\nvt 1 0\nvt 0 1\nf 1/1 2/2 3/3\n"
    )
    mesh = load_mesh(src / "m.obj")
    before = set(tmp_path.rglob("*"))
    save_mesh(mesh, tmp_path / "out")
    written = set(tmp_path.rglob("*")) - before
    assert written and all(
        (tmp_path / "out") in p.parents or p == tmp_path / "out" for p in written
    )
    assert (tmp_path / "out" / "texture_kd.png").is_file()
