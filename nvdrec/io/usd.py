"""USD export (optional ``usd-core`` package): a mesh with a UsdPreviewSurface material.

``.usdz`` gives one self-contained package (what AR viewers and many engines import);
``.usda`` / ``.usdc`` write the layer with its PNG textures next to it.

Conventions: Y up, metres per unit 1, right-handed counter-clockwise triangles (ours).
USD's ``st`` origin is the bottom-left of the image, ours the top-left, so ``t = 1 - v``.
Textures: base colour (sRGB, alpha to ``opacity`` when present), an ORM texture
(R = 1 - occlusion, G = roughness, B = metallic; the same as the GLB) and the
tangent-space normal map (+Y up, decoded with scale 2 / bias -1).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from ..errors import MissingDependencyError, NvdrecError
from ..structures.mesh import Mesh, auto_normals
from .gltf import _png_bytes
from .image import linear_to_srgb

__all__ = ["save_usd"]


def _pxr():
    try:
        from pxr import Gf, Sdf, Usd, UsdGeom, UsdShade, UsdUtils, Vt
    except ImportError:
        raise MissingDependencyError(
            "USD export needs the optional usd-core package: pip install usd-core "
            "(or pip install 'nvdrec[usd]'); GLB and OBJ export work without it"
        ) from None
    return Gf, Sdf, Usd, UsdGeom, UsdShade, UsdUtils, Vt


def _texture_images(mesh: Mesh) -> dict:
    """{name: (array [H, W, C] in [0, 1], colour space)} of the mesh's material."""
    mat = mesh.material
    out = {}
    if mat is None or mesh.v_tex is None:
        return out

    def img(t):
        return t.image().detach().cpu().float().numpy()

    if mat.kd is not None:
        kd = img(mat.kd)
        rgb = linear_to_srgb(np.clip(kd[..., :3], 0, 1))
        if kd.shape[-1] > 3:
            rgb = np.concatenate([rgb, np.clip(kd[..., 3:4], 0, 1)], -1)
        out["kd"] = (rgb, "sRGB")
    if mat.ks is not None:
        ks = img(mat.ks)
        out["orm"] = (np.clip(np.stack([1 - ks[..., 0], ks[..., 1], ks[..., 2]], -1), 0, 1), "raw")
    if mat.normal is not None and not mat.normal.is_constant:
        out["n"] = (np.clip((img(mat.normal)[..., :3] + 1) * 0.5, 0, 1), "raw")
    return out


def _write_layer(mesh: Mesh, layer: Path) -> list[Path]:
    """Write the stage to ``layer`` and its textures beside it; returns the texture paths."""
    Gf, Sdf, Usd, UsdGeom, UsdShade, _, Vt = _pxr()
    if mesh.v_nrm is None:
        mesh = auto_normals(mesh)
    stage = Usd.Stage.CreateNew(str(layer))
    UsdGeom.SetStageUpAxis(stage, UsdGeom.Tokens.y)
    UsdGeom.SetStageMetersPerUnit(stage, 1.0)
    root = UsdGeom.Xform.Define(stage, "/Root")
    stage.SetDefaultPrim(root.GetPrim())
    geo = UsdGeom.Mesh.Define(stage, "/Root/Mesh")
    pos = mesh.v_pos.detach().cpu().double().numpy()
    tri = mesh.t_pos_idx.detach().cpu().numpy().astype(np.int32)
    geo.CreatePointsAttr(Vt.Vec3fArray.FromNumpy(pos.astype(np.float32)))
    geo.CreateFaceVertexCountsAttr(Vt.IntArray.FromNumpy(np.full(len(tri), 3, np.int32)))
    geo.CreateFaceVertexIndicesAttr(Vt.IntArray.FromNumpy(tri.reshape(-1)))
    geo.CreateSubdivisionSchemeAttr(UsdGeom.Tokens.none)
    geo.CreateOrientationAttr(UsdGeom.Tokens.rightHanded)
    lo, hi = pos.min(0), pos.max(0)
    geo.CreateExtentAttr(Vt.Vec3fArray([Gf.Vec3f(*lo.tolist()), Gf.Vec3f(*hi.tolist())]))
    nrm = mesh.v_nrm.detach().cpu().numpy()[mesh.t_nrm_idx.cpu().numpy()].reshape(-1, 3)
    nrm = nrm / np.linalg.norm(nrm, axis=-1, keepdims=True).clip(1e-12)
    geo.CreateNormalsAttr(Vt.Vec3fArray.FromNumpy(nrm.astype(np.float32)))
    geo.SetNormalsInterpolation(UsdGeom.Tokens.faceVarying)
    images = _texture_images(mesh)
    if mesh.v_tex is not None:
        st = mesh.v_tex.detach().cpu().numpy()[mesh.t_tex_idx.cpu().numpy()].reshape(-1, 2)
        st = np.stack([st[:, 0], 1.0 - st[:, 1]], -1).astype(np.float32)
        pv = UsdGeom.PrimvarsAPI(geo).CreatePrimvar(
            "st", Sdf.ValueTypeNames.TexCoord2fArray, UsdGeom.Tokens.faceVarying
        )
        pv.Set(Vt.Vec2fArray.FromNumpy(st))

    material = UsdShade.Material.Define(stage, "/Root/Materials/pbr")
    surf = UsdShade.Shader.Define(stage, "/Root/Materials/pbr/Surface")
    surf.CreateIdAttr("UsdPreviewSurface")
    surf.CreateInput("useSpecularWorkflow", Sdf.ValueTypeNames.Int).Set(0)
    material.CreateSurfaceOutput().ConnectToSource(surf.ConnectableAPI(), "surface")
    written = []
    if images:
        reader = UsdShade.Shader.Define(stage, "/Root/Materials/pbr/stReader")
        reader.CreateIdAttr("UsdPrimvarReader_float2")
        reader.CreateInput("varname", Sdf.ValueTypeNames.String).Set("st")
        st_out = reader.CreateOutput("result", Sdf.ValueTypeNames.Float2)

        def texture(name, arr, space, scale=None, bias=None):
            file = layer.parent / f"texture_{name}.png"
            file.write_bytes(_png_bytes(arr))
            written.append(file)
            tex = UsdShade.Shader.Define(stage, f"/Root/Materials/pbr/tex_{name}")
            tex.CreateIdAttr("UsdUVTexture")
            tex.CreateInput("file", Sdf.ValueTypeNames.Asset).Set("./" + file.name)
            tex.CreateInput("sourceColorSpace", Sdf.ValueTypeNames.Token).Set(space)
            tex.CreateInput("st", Sdf.ValueTypeNames.Float2).ConnectToSource(st_out)
            tex.CreateInput("wrapS", Sdf.ValueTypeNames.Token).Set("repeat")
            tex.CreateInput("wrapT", Sdf.ValueTypeNames.Token).Set("repeat")
            if scale is not None:
                tex.CreateInput("scale", Sdf.ValueTypeNames.Float4).Set(Gf.Vec4f(*scale))
                tex.CreateInput("bias", Sdf.ValueTypeNames.Float4).Set(Gf.Vec4f(*bias))
            return tex

        def connect(inp, typ, tex, channel, out_typ):
            src = tex.CreateOutput(channel, out_typ)
            surf.CreateInput(inp, typ).ConnectToSource(src)

        f3, f1 = Sdf.ValueTypeNames.Float3, Sdf.ValueTypeNames.Float
        col3, n3 = Sdf.ValueTypeNames.Color3f, Sdf.ValueTypeNames.Normal3f
        if "kd" in images:
            arr, space = images["kd"]
            t = texture("kd", arr, space)
            connect("diffuseColor", col3, t, "rgb", f3)
            if arr.shape[-1] > 3:
                connect("opacity", f1, t, "a", f1)
        if "orm" in images:
            t = texture("orm", *images["orm"])
            connect("occlusion", f1, t, "r", f1)
            connect("roughness", f1, t, "g", f1)
            connect("metallic", f1, t, "b", f1)
        if "n" in images:
            t = texture("n", *images["n"], scale=(2, 2, 2, 1), bias=(-1, -1, -1, 0))
            connect("normal", n3, t, "rgb", f3)
    binding = UsdShade.MaterialBindingAPI.Apply(geo.GetPrim())
    binding.Bind(material)
    stage.GetRootLayer().Save()
    return written


def save_usd(mesh: Mesh, path: str | os.PathLike) -> Path:
    """Write ``mesh`` (with its Material) as USD.

    Args:
        mesh: triangle mesh; v_pos [V, 3], t_pos_idx [T, 3], optional v_tex/t_tex_idx and
            a Material with kd / ks / normal textures.
        path: ``.usdz`` (one package with the textures inside), or ``.usda`` / ``.usdc``
            (textures written next to it as texture_kd.png, texture_orm.png,
            texture_n.png).

    Returns:
        The written path. The file appears only when complete (written in a temporary
        folder, then moved).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".usdz", ".usda", ".usdc", ".usd"):
        raise NvdrecError(f"USD export: '{path}' must end in .usdz, .usda or .usdc")
    _, _, _, _, _, UsdUtils, _ = _pxr()
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".usd_tmp_") as tmp:
        tmp = Path(tmp)
        if suffix == ".usdz":
            layer = tmp / (path.stem + ".usdc")
            _write_layer(mesh, layer)
            packed = tmp / path.name
            if not UsdUtils.CreateNewUsdzPackage(str(layer), str(packed)):
                raise NvdrecError(f"USD export: packaging '{path}' failed")
            os.replace(packed, path)
        else:
            layer = tmp / path.name
            textures = _write_layer(mesh, layer)
            for t in textures:
                shutil.move(str(t), str(path.parent / t.name))
            os.replace(layer, path)
    return path
