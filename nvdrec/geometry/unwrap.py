"""UV unwrapping of a mesh for baking: xatlas with a deadline, or the fallback atlas
(:mod:`nvdrec.geometry.atlas`); positions stay joined across the UV seams."""

from __future__ import annotations

import numpy as np
import torch

from ..errors import DataError
from ..structures.mesh import Mesh, auto_normals, compute_tangents
from .atlas import make_atlas

__all__ = ["unwrap_uv"]


def unwrap_uv(mesh: Mesh, resolution: int = 1024, timeout: float = 60.0, log=None) -> Mesh:
    """New mesh with UVs (xatlas, or the fallback grid atlas when xatlas fails or runs
    past ``timeout`` seconds; see :func:`nvdrec.geometry.atlas.make_atlas`), smooth
    normals and tangents. ``resolution``: the texture size the atlas is packed for;
    ``log``: called with a one-line report (triangles, method, charts, seconds).

    Positions stay joined: ``v_pos`` / ``t_pos_idx`` are the input's (one vertex per
    position, so a mesh trained afterwards cannot crack at UV seams and its normals and
    Laplacian cross the seams), while the UVs get their own index list ``t_tex_idx``
    (split along the seams). Faces keep their order.

    Raises:
        DataError: the mesh is empty or degenerate (nothing to unwrap).
    """
    v = mesh.v_pos.detach().cpu().numpy().astype(np.float32)
    f = mesh.t_pos_idx.detach().cpu().numpy().astype(np.uint32)
    if len(f) == 0 or len(v) < 3:
        raise DataError(
            "the reconstructed mesh is empty: pass 1 collapsed. Check that the object fits "
            "inside mesh_scale, the masks/alpha are right, or try a different dmtet_grid"
        )
    e1, e2 = v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]]
    extent = float((v.max(0) - v.min(0)).max())  # zero area relative to the mesh's size
    if not extent > 0 or np.linalg.norm(np.cross(e1, e2), axis=-1).sum() < 1e-12 * extent**2:
        raise DataError("the reconstructed mesh has zero area (degenerate); see mesh_scale / masks")
    atlas = make_atlas(v, f, int(resolution), timeout)
    vmap, idx, uvs = atlas.vmap, atlas.faces, atlas.uvs
    if log is not None:
        why = f" ({atlas.note}; fallback atlas)" if atlas.method != "xatlas" else ""
        log(
            f"unwrap: {len(f)} triangles -> {len(uvs)} UV vertices by {atlas.method} in "
            f"{atlas.seconds:.1f} s{why}"
        )
    dev = mesh.v_pos.device
    # xatlas's output faces, written with the input's position indices
    t_pos = torch.from_numpy(vmap.astype(np.int64)[idx.astype(np.int64)]).to(dev)
    new = Mesh(
        v_pos=mesh.v_pos,
        t_pos_idx=t_pos,
        v_tex=torch.from_numpy(uvs.astype(np.float32)).to(dev),
        t_tex_idx=torch.from_numpy(idx.astype(np.int64)).to(dev),
        material=mesh.material,
    )
    return compute_tangents(auto_normals(new))
