"""The tables of FlexiCubes (:mod:`nvdrec.geometry.flexicubes`): cube corners, edges and
faces, and the patch table that says which edge crossings of a cube form one surface
patch for each of the 256 sign cases and 2^6 face decisions. Enumerated by our own
code; tests/test_flexicubes.py checks it against a brute-force labelling of sampled cube
surfaces."""

from __future__ import annotations

import functools

import numpy as np
import torch

__all__ = ["CUBE_EDGES", "CUBE_FACES", "cube_grid", "grid_edges", "patch_table", "tables_on"]

# cube corner k sits at (k & 1, k >> 1 & 1, k >> 2 & 1)
CUBE_EDGES = tuple(
    (c, c | 1 << a) for a in range(3) for c in range(8) if not (c >> a) & 1
)  # 0-3 along x, 4-7 along y, 8-11 along z


def _face_cycle(a: int, s: int) -> tuple:
    """The 4 corners of the face with bit ``a`` == ``s``, in the cycle (0,0), (1,0),
    (1,1), (0,1) over the two other axes taken in cyclic order after ``a``."""
    a1, a2 = (a + 1) % 3, (a + 2) % 3
    return tuple(s << a | b1 << a1 | b2 << a2 for b1, b2 in ((0, 0), (1, 0), (1, 1), (0, 1)))


CUBE_FACES = tuple(_face_cycle(a, s) for a in range(3) for s in range(2))  # face 2a + s
_EDGE_OF = {frozenset(e): i for i, e in enumerate(CUBE_EDGES)}
# the 4 edges of each face: edge k joins cycle corners k and k + 1
_FACE_EDGES = tuple(
    tuple(_EDGE_OF[frozenset((f[k], f[(k + 1) % 4]))] for k in range(4)) for f in CUBE_FACES
)


def _case_patches(case: int, dec: int) -> tuple[list, int, list]:
    """Patch of each cube edge (-1: no crossing), patch count, and which faces are
    ambiguous with both segments on one patch, for one case and face decisions."""
    inside = [(case >> k) & 1 for k in range(8)]
    cross = [inside[i] != inside[j] for i, j in CUBE_EDGES]
    parent = list(range(12))

    def find(e):
        while parent[e] != e:
            parent[e] = parent[parent[e]]
            e = parent[e]
        return e

    ambiguous = {}
    for f, corners in enumerate(CUBE_FACES):
        fe = _FACE_EDGES[f]
        ins = [inside[c] for c in corners]
        crossing = [k for k in range(4) if cross[fe[k]]]
        if len(crossing) == 2:
            pairs = [(fe[crossing[0]], fe[crossing[1]])]
        elif len(crossing) == 4:
            # the segment around corner k joins its face edges k - 1 and k: cut off the
            # outside corners when the inside corners connect across the face, else the
            # inside corners
            cut = 0 if (dec >> f) & 1 else 1
            pairs = [(fe[(k - 1) % 4], fe[k]) for k in range(4) if ins[k] == cut]
            ambiguous[f] = pairs
        else:
            pairs = []
        for a, b in pairs:
            parent[find(a)] = find(b)
    roots, ids = {}, []
    for e in range(12):
        if cross[e]:
            ids.append(roots.setdefault(find(e), len(roots)))
        else:
            ids.append(-1)
    joined = [
        f in ambiguous and ids[ambiguous[f][0][0]] == ids[ambiguous[f][1][0]] for f in range(6)
    ]
    return ids, len(roots), joined


@functools.lru_cache(maxsize=1)
def patch_table() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(patch [256, 64, 12] int8, count [256, 64] int8, joined [256, 64, 6] bool).

    Index: case (bit k set = corner k inside, s < 0) and face decisions (bit f = on face
    f the inside corners connect across the face; only ambiguous faces read it).
    ``patch``: for each cube edge, the patch (0 .. count - 1) its crossing belongs to, or
    -1 without a crossing. ``joined``: ambiguous faces whose two boundary segments lie
    on one patch. Patches are numbered by their lowest edge."""
    patch = np.full((256, 64, 12), -1, np.int8)
    count = np.zeros((256, 64), np.int8)
    joined = np.zeros((256, 64, 6), bool)
    for case in range(256):
        amb = 0  # mask of the ambiguous faces: only their decisions matter
        for f, corners in enumerate(CUBE_FACES):
            ins = [(case >> c) & 1 for c in corners]
            if ins[0] == ins[2] and ins[1] == ins[3] and ins[0] != ins[1]:
                amb |= 1 << f
        for dec in range(64):
            if dec & ~amb:
                continue
            ids, n, jn = _case_patches(case, dec)
            sel = [d for d in range(64) if d & amb == dec]
            patch[case, sel] = ids
            count[case, sel] = n
            joined[case, sel] = jn
    return torch.from_numpy(patch), torch.from_numpy(count), torch.from_numpy(joined)


def cube_grid(res: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(vertices [(res+1)^3, 3] in [-0.5, 0.5]^3, cubes [res^3, 8] corner indices with
    corner k at offset (k & 1, k >> 1 & 1, k >> 2 & 1)). Vertex (i, j, k) has index
    i + (res+1) (j + (res+1) k)."""
    n = res + 1
    r = torch.arange(n, dtype=torch.float32) / res - 0.5
    z, y, x = torch.meshgrid(r, r, r, indexing="ij")
    verts = torch.stack([x, y, z], -1).reshape(-1, 3)
    i = torch.arange(res)
    kk, jj, ii = torch.meshgrid(i, i, i, indexing="ij")
    base = (ii + n * (jj + n * kk)).reshape(-1)
    offs = torch.tensor([(c & 1) + n * ((c >> 1) & 1) + n * n * ((c >> 2) & 1) for c in range(8)])
    return verts, base[:, None] + offs[None, :]


def grid_edges(cubes: torch.Tensor) -> torch.Tensor:
    """Unique grid edges [E, 2] (sorted vertex pairs) of ``cubes`` [M, 8]."""
    e = cubes[:, torch.tensor(CUBE_EDGES)].reshape(-1, 2)
    n = int(cubes.max()) + 1
    key = torch.unique(e[:, 0] * n + e[:, 1])
    return torch.stack([key // n, key % n], -1)


@functools.lru_cache(maxsize=8)
def tables_on(device: str) -> tuple:
    dev = torch.device(device)
    patch, count, joined = patch_table()
    edges = torch.tensor(CUBE_EDGES, device=dev)
    faces = torch.tensor(CUBE_FACES, device=dev)
    axis = torch.tensor([a for a in range(3) for _ in range(4)], device=dev)
    # slot of a cube around one of its edges: the edge's corner bits on the two other
    # axes (cyclic order), (0,0) (1,0) (1,1) (0,1) -> 0 1 2 3
    slot = []
    for a in range(3):
        for c in range(8):
            if not (c >> a) & 1:
                b1, b2 = (c >> ((a + 1) % 3)) & 1, (c >> ((a + 2) % 3)) & 1
                slot.append({(0, 0): 0, (1, 0): 1, (1, 1): 2, (0, 1): 3}[(b1, b2)])
    return (
        patch.long().to(dev),
        count.long().to(dev),
        joined.to(dev),
        edges,
        faces,
        axis,
        torch.tensor(slot, device=dev),
        (2 ** torch.arange(8, device=dev)),
        (2 ** torch.arange(6, device=dev)),
    )
