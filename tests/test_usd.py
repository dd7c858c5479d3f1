"""USD export (optional usd-core): structure, material network, texture coordinates."""

import zipfile

import numpy as np
import pytest
import torch

from nvdrec.errors import NvdrecError
from nvdrec.structures import Material, Mesh, Texture2D
from nvdrec.structures.mesh import auto_normals


def _quad_mesh():
    v = torch.tensor([[0.0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]])
    t = torch.tensor([[0, 1, 2], [0, 2, 3]])
    uv = torch.tensor([[0.0, 1.0], [1.0, 1.0], [1.0, 0.0], [0.0, 0.0]])  # ours: v down
    kd = torch.rand(8, 8, 4)
    ks = torch.rand(8, 8, 3)
    nrm = torch.nn.functional.normalize(torch.rand(8, 8, 3) + torch.tensor([0, 0, 2.0]), dim=-1)
    mat = Material("m", kd=Texture2D(kd), ks=Texture2D(ks), normal=Texture2D(nrm))
    mesh = Mesh(v_pos=v, t_pos_idx=t, v_tex=uv, t_tex_idx=t.clone(), material=mat)
    return auto_normals(mesh)


@pytest.mark.extras
def test_usd_structure_and_material(tmp_path):
    pxr = pytest.importorskip("pxr")
    from pxr import Usd, UsdGeom, UsdShade

    from nvdrec.io.usd import save_usd

    mesh = _quad_mesh()
    path = save_usd(mesh, tmp_path / "out" / "mesh.usda")
    assert path.is_file() and pxr
    for name in ("texture_kd.png", "texture_orm.png", "texture_n.png"):
        assert (tmp_path / "out" / name).is_file(), name
    assert not list((tmp_path / "out").glob(".usd_tmp_*"))  # no temporary leftovers
    stage = Usd.Stage.Open(str(path))
    assert UsdGeom.GetStageUpAxis(stage) == UsdGeom.Tokens.y
    geo = UsdGeom.Mesh(stage.GetPrimAtPath("/Root/Mesh"))
    np.testing.assert_allclose(np.array(geo.GetPointsAttr().Get()), mesh.v_pos.numpy())
    assert list(geo.GetFaceVertexIndicesAttr().Get()) == [0, 1, 2, 0, 2, 3]
    st = UsdGeom.PrimvarsAPI(geo).GetPrimvar("st")
    assert st.GetInterpolation() == UsdGeom.Tokens.faceVarying
    # t = 1 - v: our top-left origin becomes USD's bottom-left one
    np.testing.assert_allclose(np.array(st.Get())[:3], [[0, 0], [1, 0], [1, 1]])
    mat = UsdShade.MaterialBindingAPI(geo.GetPrim()).ComputeBoundMaterial()[0]
    assert mat.GetPath() == "/Root/Materials/pbr"
    surf = UsdShade.Shader(stage.GetPrimAtPath("/Root/Materials/pbr/Surface"))
    assert surf.GetIdAttr().Get() == "UsdPreviewSurface"
    for inp in ("diffuseColor", "opacity", "roughness", "metallic", "occlusion", "normal"):
        assert surf.GetInput(inp).HasConnectedSource(), inp
    kd_tex = UsdShade.Shader(stage.GetPrimAtPath("/Root/Materials/pbr/tex_kd"))
    assert kd_tex.GetInput("sourceColorSpace").Get() == "sRGB"
    n_tex = UsdShade.Shader(stage.GetPrimAtPath("/Root/Materials/pbr/tex_n"))
    assert tuple(n_tex.GetInput("bias").Get()) == (-1, -1, -1, 0)


@pytest.mark.extras
def test_usdz_package_holds_textures(tmp_path):
    pytest.importorskip("pxr")
    from pxr import Usd

    from nvdrec.io.usd import save_usd

    path = save_usd(_quad_mesh(), tmp_path / "mesh.usdz")
    names = zipfile.ZipFile(path).namelist()
    assert names[0].endswith(".usdc") and "texture_kd.png" in names and "texture_n.png" in names
    assert Usd.Stage.Open(str(path)).GetPrimAtPath("/Root/Mesh").IsValid()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mesh.usdz"]
    # USD's own validators (usdz packaging, missing references, shader/Sdr compliance,
    # normal-map texture rules, material bindings, stage metadata) find nothing
    UsdValidation = pytest.importorskip("pxr.UsdValidation")  # usd-core >= 25
    validators = UsdValidation.ValidationRegistry().GetOrLoadAllValidators()
    assert len(validators) > 10
    errors = UsdValidation.ValidationContext(validators).Validate(Usd.Stage.Open(str(path)))
    assert [e.GetMessage() for e in errors] == []


def test_usd_errors(tmp_path, monkeypatch):
    from nvdrec.io import usd

    with pytest.raises(NvdrecError, match="must end in .usdz"):
        usd.save_usd(_quad_mesh(), tmp_path / "mesh.fbx")
    import builtins

    real = builtins.__import__

    def no_pxr(name, *a, **k):
        if name == "pxr" or name.startswith("pxr."):
            raise ImportError("no pxr")
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_pxr)
    with pytest.raises(NvdrecError, match="pip install usd-core") as err:
        usd.save_usd(_quad_mesh(), tmp_path / "mesh.usdz")
    # also an ImportError: scripts that fall back with `except ImportError` keep working
    assert isinstance(err.value, ImportError)
