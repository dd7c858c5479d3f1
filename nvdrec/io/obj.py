"""Wavefront OBJ + MTL reading and writing, in nvdiffrec's material conventions.

MTL ``Ks`` holds (occlusion, roughness, metallic) and ``map_Ks`` is a linear texture
of the same channels; ``map_Kd`` is sRGB; ``bump``/``norm`` is a tangent-space normal
map stored as (n + 1) / 2. OBJ ``vt`` has v pointing up the image, our UVs point down
(texture memory order), so v is flipped on read and on write.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from ..errors import MeshFormatError, MissingFileError
from ..structures.material import Material, Texture2D
from ..structures.mesh import Mesh
from .image import linear_to_srgb, read_image, srgb_to_linear, write_image
from .png import in_parallel

__all__ = ["load_mesh", "load_mtl", "save_mesh", "save_mtl"]

_DEFAULT_KD = (0.8, 0.8, 0.8)
_F32_MAX = float(np.finfo(np.float32).max)
_DEFAULT_KS = (0.0, 0.5, 0.0)


def _floats(tokens: list[str], n_min: int, n_max: int, where: str) -> list[float]:
    if len(tokens) < n_min:
        raise MeshFormatError(f"{where}: expected at least {n_min} numbers, got {len(tokens)}")
    try:
        vals = [float(t) for t in tokens[:n_max]]
    except ValueError:
        raise MeshFormatError(f"{where}: '{' '.join(tokens)}' is not a list of numbers") from None
    if not all(np.isfinite(vals)):
        raise MeshFormatError(f"{where}: non-finite value in '{' '.join(tokens)}'")
    if any(abs(v) > _F32_MAX for v in vals):
        raise MeshFormatError(f"{where}: value out of the float32 range in '{' '.join(tokens)}'")
    return vals


def _map_path(tokens: list[str]) -> str:
    # options such as "-bm 1.0" precede the file name; without options the name may
    # contain spaces
    if any(t.startswith("-") for t in tokens):
        return tokens[-1]
    return " ".join(tokens)


def _load_texture(mtl_path: Path, name: str, lineno: int, kind: str) -> np.ndarray:
    p = Path(name.replace("\\", "/"))
    p = p if p.is_absolute() else mtl_path.parent / p
    if not p.is_file():
        raise MissingFileError(
            f"{mtl_path}:{lineno}: texture '{name}' ({kind}) not found at '{p}'; "
            "fix the path in the MTL file or put the image next to it"
        )
    return read_image(p)


def load_mtl(path: str | os.PathLike) -> list[Material]:
    """Read all materials of an MTL file.

    Raises:
        MissingFileError: the MTL or a texture it names does not exist.
        MeshFormatError: malformed numbers.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        raise MissingFileError(f"material file '{path}' does not exist") from None
    except OSError as e:
        raise MeshFormatError(f"material file '{path}' cannot be read: {e}") from None
    mats: list[dict] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        tokens = line.split()
        if not tokens or tokens[0].startswith("#"):
            continue
        key, args = tokens[0], tokens[1:]
        where = f"{path}:{lineno}"
        if key == "newmtl":
            mats.append({"name": " ".join(args) or f"mat{len(mats)}"})
            continue
        if not mats:
            if key in ("Kd", "Ks", "map_Kd", "map_Ks", "bump", "map_Bump", "norm", "map_bump"):
                raise MeshFormatError(f"{where}: '{key}' before any 'newmtl'")
            continue
        m = mats[-1]
        if key == "Kd":
            m["Kd"] = _floats(args, 3, 3, where)
        elif key == "Ks":
            m["Ks"] = _floats(args, 3, 3, where)
        elif key == "bsdf" and args:
            m["bsdf"] = args[0]
        elif key in ("map_Kd", "map_Ks", "bump", "map_Bump", "map_bump", "norm", "map_normal"):
            name = _map_path(args)
            if not name:
                raise MeshFormatError(f"{where}: '{key}' without a file name")
            slot = {"map_Kd": "map_Kd", "map_Ks": "map_Ks"}.get(key, "bump")
            m[slot] = _load_texture(path, name, lineno, key)
    return [_to_material(m) for m in mats]


def _to_material(m: dict) -> Material:
    if "map_Kd" in m:
        img = m["map_Kd"]
        if img.shape[-1] == 1:
            img = np.repeat(img, 3, axis=-1)
        kd = np.concatenate([srgb_to_linear(img[..., :3]), img[..., 3:4]], axis=-1)
    else:
        kd = np.asarray(m.get("Kd", _DEFAULT_KD), np.float32)
    if "map_Ks" in m:
        img = m["map_Ks"]
        ks = np.repeat(img, 3, axis=-1) if img.shape[-1] == 1 else img[..., :3]
    else:
        ks = np.asarray(m.get("Ks", _DEFAULT_KS), np.float32)
    normal = None
    if "bump" in m:
        img = m["bump"]
        if img.shape[-1] < 3:
            raise MeshFormatError(f"material '{m['name']}': normal map must have 3 channels")
        normal = Texture2D(img[..., :3] * 2.0 - 1.0)
    return Material(
        name=m["name"],
        kd=Texture2D(np.ascontiguousarray(kd, np.float32)),
        ks=Texture2D(np.ascontiguousarray(ks, np.float32)),
        normal=normal,
        bsdf=m.get("bsdf", "pbr"),
    )


def _index(tok: str, count: int, where: str) -> int:
    try:
        i = int(tok)
    except ValueError:
        raise MeshFormatError(f"{where}: bad index '{tok}'") from None
    i = i - 1 if i > 0 else count + i
    if i < 0 or i >= count or tok in ("0", "-0"):
        raise MeshFormatError(f"{where}: index {tok} out of range (have {count})")
    return i


def load_mesh(path: str | os.PathLike, mtl_override: str | os.PathLike | None = None) -> Mesh:
    """Read an OBJ file (and its MTL) into a :class:`~nvdrec.structures.Mesh`.

    Polygons are fan-triangulated; negative (relative) indices are supported; unknown
    keywords are ignored. Faces without ``vt``/``vn`` get a dummy index when others
    have them. ``mtl_override`` replaces every material by the first one of that file.

    Raises:
        MissingFileError: the OBJ, its MTL or a texture does not exist.
        MeshFormatError: malformed content (the message gives file and line).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        raise MissingFileError(f"mesh file '{path}' does not exist") from None
    except (OSError, UnicodeDecodeError) as e:
        raise MeshFormatError(f"mesh file '{path}' cannot be read: {e}") from None

    pos: list[list[float]] = []
    tex: list[list[float]] = []
    nrm: list[list[float]] = []
    faces: list[tuple[int, int, int, int, int, int, int, int, int, int]] = []
    materials: list[Material] = []
    mat_names: dict[str, int] = {}
    current_mat = 0
    for lineno, line in enumerate(text.splitlines(), 1):
        tokens = line.split()
        if not tokens:
            continue
        key, args = tokens[0], tokens[1:]
        where = f"{path}:{lineno}"
        if key == "v":
            pos.append(_floats(args, 3, 3, where))
        elif key == "vt":
            uv = _floats(args, 1, 2, where)
            tex.append([uv[0], 1.0 - (uv[1] if len(uv) > 1 else 0.0)])
        elif key == "vn":
            nrm.append(_floats(args, 3, 3, where))
        elif key == "f":
            if len(args) < 3:
                raise MeshFormatError(f"{where}: a face needs at least 3 vertices, got {len(args)}")
            corners = []
            for tok in args:
                parts = tok.split("/")
                if len(parts) > 3 or not parts[0]:
                    raise MeshFormatError(f"{where}: bad face vertex '{tok}'")
                vi = _index(parts[0], len(pos), where)
                ti = _index(parts[1], len(tex), where) if len(parts) > 1 and parts[1] else -1
                ni = _index(parts[2], len(nrm), where) if len(parts) > 2 and parts[2] else -1
                corners.append((vi, ti, ni))
            for k in range(1, len(corners) - 1):
                a, b, c = corners[0], corners[k], corners[k + 1]
                faces.append((a[0], b[0], c[0], a[1], b[1], c[1], a[2], b[2], c[2], current_mat))
        elif key == "mtllib" and mtl_override is None:
            mtl_path = path.parent / " ".join(args)
            if not mtl_path.is_file():
                raise MissingFileError(
                    f"{where}: material library '{' '.join(args)}' not found at '{mtl_path}'; "
                    "put the MTL next to the OBJ, fix 'mtllib', or set mtl_override"
                )
            for m in load_mtl(mtl_path):
                mat_names.setdefault(m.name, len(materials))
                materials.append(m)
        elif key == "usemtl":
            name = " ".join(args)
            current_mat = mat_names.get(name, 0)
    if not pos:
        raise MeshFormatError(f"mesh file '{path}' has no vertices ('v' lines)")
    if not faces:
        raise MeshFormatError(f"mesh file '{path}' has no faces ('f' lines)")
    if mtl_override is not None:
        materials = load_mtl(mtl_override)[:1]
        if not materials:
            raise MeshFormatError(f"material file '{mtl_override}' defines no material")
    f = torch.tensor(faces, dtype=torch.int64)
    v_pos = torch.tensor(pos, dtype=torch.float32)
    mesh = Mesh(v_pos=v_pos, t_pos_idx=f[:, 0:3].contiguous())
    for attr, data, cols in (("tex", tex, slice(3, 6)), ("nrm", nrm, slice(6, 9))):
        idx = f[:, cols]
        if not data or (idx < 0).all():
            continue
        width = 2 if attr == "tex" else 3
        vals = torch.tensor(data, dtype=torch.float32).view(-1, width)
        if (idx < 0).any():  # faces without this attribute point at an appended dummy
            vals = torch.cat([vals, torch.zeros(1, width)])
            idx = torch.where(idx < 0, torch.full_like(idx, len(data)), idx)
        setattr(mesh, f"v_{attr}", vals)
        setattr(mesh, f"t_{attr}_idx", idx.contiguous())
    if mesh.v_nrm is not None:
        from ..structures.mesh import safe_normalize

        mesh.v_nrm = safe_normalize(mesh.v_nrm)
    if not materials:  # no material file: a plain grey, fairly rough dielectric
        from ..structures.material import Material, Texture2D

        materials = [
            Material(
                "default",
                kd=Texture2D(torch.tensor([0.6, 0.6, 0.6]), trainable=False),
                ks=Texture2D(torch.tensor([0.0, 0.6, 0.0]), trainable=False),
            )
        ]
    mesh.materials = materials
    mesh.material = materials[0]
    mesh.t_mat_idx = f[:, 9].clamp(min=0, max=len(materials) - 1)
    return mesh


# ------------------------------------------------------------------------ writing


def _fmt_rows(prefix: str, arr: np.ndarray) -> str:
    if len(arr) == 0:
        return ""
    fmt = prefix + " " + " ".join(["%.9g"] * arr.shape[1])
    return "\n".join(fmt % tuple(r) for r in arr.tolist()) + "\n"


def _texture_image(tex: Texture2D | None) -> np.ndarray | None:
    if tex is None:
        return None
    return tex.image().detach().float().cpu().numpy()


def save_mtl(material: Material, folder: str | os.PathLike, name: str = "mesh.mtl") -> None:
    """Write ``name`` and the material's texture PNGs (texture_kd/ks/n.png) into folder."""
    folder = Path(folder)
    lines = [f"newmtl {material.name or 'defaultMat'}", f"bsdf {material.bsdf}"]
    kd, ks, nrm = (_texture_image(t) for t in (material.kd, material.ks, material.normal))
    files = []  # (file name, image): written together below
    if kd is not None:
        if kd.shape[0] * kd.shape[1] == 1:
            lines.append("Kd %.9g %.9g %.9g" % tuple(kd.reshape(-1)[:3]))
        else:
            rgb = linear_to_srgb(kd[..., :3])
            files.append(("texture_kd.png", np.concatenate([rgb, kd[..., 3:4]], -1)))
            lines.append("map_Kd texture_kd.png")
    if ks is not None:
        if ks.shape[0] * ks.shape[1] == 1:
            lines.append("Ks %.9g %.9g %.9g" % tuple(ks.reshape(-1)[:3]))
        else:
            files.append(("texture_ks.png", ks[..., :3]))
            lines.append("map_Ks texture_ks.png")
    if nrm is not None and nrm.shape[0] * nrm.shape[1] > 1:
        files.append(("texture_n.png", (nrm[..., :3] + 1.0) * 0.5))
        lines.append("bump texture_n.png")
    in_parallel(lambda f: write_image(folder / f[0], f[1]), files)
    from .files import atomic_write_text

    atomic_write_text(folder / name, "\n".join(lines) + "\n")


def save_mesh(mesh: Mesh, folder: str | os.PathLike, save_material: bool = True) -> Path:
    """Write ``folder/mesh.obj`` (+ ``mesh.mtl`` and texture PNGs) in nvdiffrec's naming.

    Files are first written to a temporary sibling folder and moved into place only
    when all of them are complete. Returns the OBJ path.
    """
    from .files import atomic_dir

    folder = Path(folder)
    with atomic_dir(folder) as tmp:
        mat = mesh.material if save_material else None
        out = ["# written by nvdrec\n"]
        if mat is not None:
            out.append("mtllib mesh.mtl\n")
        out.append(_fmt_rows("v", mesh.v_pos.detach().cpu().double().numpy()))
        has_t = mesh.v_tex is not None and mesh.t_tex_idx is not None
        has_n = mesh.v_nrm is not None and mesh.t_nrm_idx is not None
        if has_t:
            uv = mesh.v_tex.detach().cpu().double().numpy().copy()
            uv[:, 1] = 1.0 - uv[:, 1]
            out.append(_fmt_rows("vt", uv))
        if has_n:
            out.append(_fmt_rows("vn", mesh.v_nrm.detach().cpu().double().numpy()))
        if mat is not None:
            out.append(f"usemtl {mat.name or 'defaultMat'}\n")
        fi = mesh.t_pos_idx.cpu().long().numpy() + 1
        cols = [fi]
        if has_t:
            cols.append(mesh.t_tex_idx.cpu().long().numpy() + 1)
        if has_n:
            cols.append(mesh.t_nrm_idx.cpu().long().numpy() + 1)
        corner = np.stack(cols, axis=-1)  # [T, 3, k]
        if has_t and has_n:
            fmt = "%d/%d/%d"
        elif has_t:
            fmt = "%d/%d"
        elif has_n:
            fmt = "%d//%d"
        else:
            fmt = "%d"
        face_fmt = "f " + " ".join([fmt] * 3)
        out.append("\n".join(face_fmt % tuple(r) for r in corner.reshape(len(fi), -1).tolist()))
        out.append("\n")
        (tmp / "mesh.obj").write_text("".join(out), encoding="utf-8")
        if mat is not None:
            save_mtl(mat, tmp)
    return folder / "mesh.obj"
