"""Binary glTF 2.0 (GLB) export with a metallic-roughness PBR material (pygltflib)."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import torch

from ..errors import MeshFormatError
from ..ops import unique_rows
from ..structures.mesh import Mesh, auto_normals, compute_tangents
from .files import atomic_write_bytes
from .image import linear_to_srgb
from .png import encode_png, in_parallel

__all__ = ["check_glb", "save_glb", "unify_vertices"]


def check_glb(data: bytes, name: str = "<bytes>") -> None:
    """Raise MeshFormatError unless ``data`` is a well-formed binary glTF 2.0 container:
    header (magic, version 2, total length), a JSON chunk that parses to an object with
    an ``asset``, and chunk lengths that add up."""
    import json
    import struct

    def bad(why):
        return MeshFormatError(f"'{name}' is not a valid GLB file: {why}")

    if len(data) < 20:
        raise bad(f"{len(data)} bytes is too short")
    magic, version, length = struct.unpack_from("<4sII", data, 0)
    if magic != b"glTF" or version != 2:
        raise bad("no 'glTF' version 2 header")
    if length != len(data):
        raise bad(f"the header says {length} bytes, the file has {len(data)} (truncated?)")
    pos, chunks = 12, []
    while pos < length:
        if pos + 8 > length:
            raise bad("a chunk header runs past the end")
        size, kind = struct.unpack_from("<I4s", data, pos)
        if pos + 8 + size > length:
            raise bad("a chunk runs past the end")
        chunks.append((kind, data[pos + 8 : pos + 8 + size]))
        pos += 8 + size
    if not chunks or chunks[0][0] != b"JSON":
        raise bad("the first chunk is not JSON")
    try:
        doc = json.loads(chunks[0][1].decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise bad(f"its JSON chunk does not parse ({e})") from None
    if not isinstance(doc, dict) or "asset" not in doc:
        raise bad("its JSON has no 'asset'")


def unify_vertices(mesh: Mesh):
    """glTF needs one index per corner: split vertices where position/uv/normal/tangent
    indices differ. Returns numpy arrays (pos, nrm, tng, uv, faces)."""
    cols = [mesh.t_pos_idx]
    for idx in (mesh.t_tex_idx, mesh.t_nrm_idx, mesh.t_tng_idx):
        cols.append(idx if idx is not None else mesh.t_pos_idx)
    key = torch.stack([c.reshape(-1).long().cpu() for c in cols], -1)  # [3T, 4]
    uniq, inv = unique_rows(key, return_inverse=True)

    def take(arr, col):
        return arr.detach().cpu().float()[uniq[:, col]].numpy() if arr is not None else None

    pos = take(mesh.v_pos, 0)
    uv = take(mesh.v_tex, 1)
    nrm = take(mesh.v_nrm, 2)
    tng = take(mesh.v_tng, 3)
    faces = inv.view(-1, 3).numpy().astype(np.uint32)
    return pos, nrm, tng, uv, faces


def _png_bytes(img: np.ndarray) -> bytes:
    q = np.clip(np.rint(img * 255), 0, 255).astype(np.uint8)
    return encode_png(q)


def save_glb(mesh: Mesh, path: str | os.PathLike) -> Path:
    """Write ``mesh`` (with its Material) as a self-contained ``.glb``.

    kd -> baseColorTexture (sRGB; RGBA when kd has alpha); ks = (occlusion, roughness,
    metallic) -> metallicRoughnessTexture (R = 1 - occlusion, G = roughness,
    B = metallic), also used as occlusionTexture (glTF reads occlusion from R); normal map
    -> normalTexture (tangent space, +Y up). UVs are written as they are (glTF's origin
    is the top-left of the image, like ours).
    """
    import pygltflib as g

    if mesh.v_nrm is None:
        mesh = auto_normals(mesh)
    if mesh.v_tex is not None and mesh.v_tng is None:
        mesh = compute_tangents(mesh)
    pos, nrm, tng, uv, faces = unify_vertices(mesh)
    blob = io.BytesIO()
    views, accessors = [], []

    def add(data: np.ndarray, target, comp, typ, minmax=False):
        data = np.ascontiguousarray(data)
        while blob.tell() % 4:
            blob.write(b"\0")
        off = blob.tell()
        blob.write(data.tobytes())
        views.append(g.BufferView(buffer=0, byteOffset=off, byteLength=data.nbytes, target=target))
        acc = g.Accessor(bufferView=len(views) - 1, componentType=comp, count=len(data), type=typ)
        if minmax:
            acc.min = data.min(0).tolist()
            acc.max = data.max(0).tolist()
        accessors.append(acc)
        return len(accessors) - 1

    attrs = g.Attributes(
        POSITION=add(pos.astype(np.float32), g.ARRAY_BUFFER, g.FLOAT, g.VEC3, True)
    )
    if nrm is not None:
        attrs.NORMAL = add(
            (nrm / np.linalg.norm(nrm, axis=-1, keepdims=True).clip(1e-12)).astype(np.float32),
            g.ARRAY_BUFFER,
            g.FLOAT,
            g.VEC3,
        )
    if tng is not None and nrm is not None:
        # unit tangents orthogonal to the normal (the Khronos validator checks both)
        nn = nrm / np.linalg.norm(nrm, axis=-1, keepdims=True).clip(1e-12)
        tng = tng - (tng * nn).sum(-1, keepdims=True) * nn
        bad = np.linalg.norm(tng, axis=-1) < 1e-6
        if bad.any():
            axis = np.where(np.abs(nn[bad, :1]) < 0.9, [[1.0, 0.0, 0.0]], [[0.0, 1.0, 0.0]])
            tng[bad] = np.cross(nn[bad], axis)
    if tng is not None:
        t4 = np.concatenate(
            [tng / np.linalg.norm(tng, axis=-1, keepdims=True).clip(1e-12), np.ones((len(tng), 1))],
            1,
        )
        attrs.TANGENT = add(t4.astype(np.float32), g.ARRAY_BUFFER, g.FLOAT, g.VEC4)
    if uv is not None:
        attrs.TEXCOORD_0 = add(uv.astype(np.float32), g.ARRAY_BUFFER, g.FLOAT, g.VEC2)
    ind = add(faces.reshape(-1), g.ELEMENT_ARRAY_BUFFER, g.UNSIGNED_INT, g.SCALAR)

    images, textures = [], []

    def add_image(data: bytes) -> int:
        while blob.tell() % 4:
            blob.write(b"\0")
        off = blob.tell()
        blob.write(data)
        views.append(g.BufferView(buffer=0, byteOffset=off, byteLength=len(data)))
        images.append(g.Image(bufferView=len(views) - 1, mimeType="image/png"))
        textures.append(g.Texture(source=len(images) - 1, sampler=0))
        return len(textures) - 1

    mat = mesh.material
    pbr = g.PbrMetallicRoughness()
    material = g.Material(
        name=getattr(mat, "name", "material") or "material", pbrMetallicRoughness=pbr
    )
    if mat is not None and uv is not None:
        kd = mat.kd.image().detach().cpu().float().numpy() if mat.kd is not None else None
        ks = mat.ks.image().detach().cpu().float().numpy() if mat.ks is not None else None
        pictures = {}  # encoded together, added in this order
        if kd is not None:
            rgb = linear_to_srgb(np.clip(kd[..., :3], 0, 1))
            if kd.shape[-1] > 3:
                rgb = np.concatenate([rgb, kd[..., 3:4]], -1)
                material.alphaMode = "BLEND"
            pictures["kd"] = rgb
        if ks is not None:
            orm = np.stack([1.0 - ks[..., 0], ks[..., 1], ks[..., 2]], -1)
            pictures["orm"] = np.clip(orm, 0, 1)
        if mat.normal is not None and not mat.normal.is_constant:
            n = mat.normal.image().detach().cpu().float().numpy()
            pictures["n"] = (n[..., :3] + 1) * 0.5
        png = dict(zip(pictures, in_parallel(_png_bytes, list(pictures.values()))))
        if "kd" in png:
            pbr.baseColorTexture = g.TextureInfo(index=add_image(png["kd"]))
        if "orm" in png:
            tex = add_image(png["orm"])
            pbr.metallicRoughnessTexture = g.TextureInfo(index=tex)
            material.occlusionTexture = g.OcclusionTextureInfo(index=tex)
            pbr.metallicFactor = 1.0
            pbr.roughnessFactor = 1.0
        if "n" in png:
            material.normalTexture = g.NormalMaterialTexture(index=add_image(png["n"]))
    gltf = g.GLTF2(
        asset=g.Asset(version="2.0", generator="nvdrec"),
        scene=0,
        scenes=[g.Scene(nodes=[0])],
        nodes=[g.Node(mesh=0)],
        meshes=[g.Mesh(primitives=[g.Primitive(attributes=attrs, indices=ind, material=0)])],
        materials=[material],
        accessors=accessors,
        bufferViews=views,
        buffers=[g.Buffer(byteLength=0)],
        images=images,
        textures=textures,
        samplers=[g.Sampler(magFilter=g.LINEAR, minFilter=g.LINEAR_MIPMAP_LINEAR)]
        if textures
        else [],
    )
    data = blob.getvalue()
    while len(data) % 4:
        data += b"\0"
    gltf.buffers[0].byteLength = len(data)
    gltf.set_binary_blob(data)
    path = Path(path)
    atomic_write_bytes(path, b"".join(gltf.save_to_bytes()))
    return path
