"""Shared test helpers: comparisons that say where they failed, small scenes."""

import math

import torch

from nvdrec.structures import camera as cam


def assert_close(actual, expected, atol, rtol=0.0, name="value"):
    """Like torch.testing.assert_close but reports max abs/rel error and its index."""
    actual, expected = actual.detach().double().cpu(), expected.detach().double().cpu()
    assert actual.shape == expected.shape, f"{name}: shape {actual.shape} != {expected.shape}"
    err = (actual - expected).abs()
    bound = atol + rtol * expected.abs()
    bad = err > bound
    if bad.any():
        idx = torch.nonzero(bad)[0].tolist()
        flat = int(torch.argmax(err))
        rel = (err / expected.abs().clamp(min=1e-30)).flatten()[flat]
        raise AssertionError(
            f"{name}: {int(bad.sum())} of {err.numel()} elements differ; first at {idx}; "
            f"max abs err {float(err.max()):.3e} (rel {float(rel):.3e}) at flat index {flat}"
        )


def sphere(n_lat=16, n_lon=32, radius=1.0):
    """UV sphere (positions [V, 3] float32, triangles [T, 3] int32), outward CCW."""
    verts = [[0.0, radius, 0.0]]
    for i in range(1, n_lat):
        th = math.pi * i / n_lat
        for j in range(n_lon):
            ph = 2 * math.pi * j / n_lon
            verts.append(
                [
                    radius * math.sin(th) * math.sin(ph),
                    radius * math.cos(th),
                    radius * math.sin(th) * math.cos(ph),
                ]
            )
    verts.append([0.0, -radius, 0.0])
    tris = []
    for j in range(n_lon):
        tris.append([0, 1 + j, 1 + (j + 1) % n_lon])
    for i in range(n_lat - 2):
        for j in range(n_lon):
            a = 1 + i * n_lon + j
            b = 1 + i * n_lon + (j + 1) % n_lon
            c, d = a + n_lon, b + n_lon
            tris += [[a, c, d], [a, d, b]]
    last = len(verts) - 1
    base = 1 + (n_lat - 2) * n_lon
    for j in range(n_lon):
        tris.append([last, base + (j + 1) % n_lon, base + j])
    return torch.tensor(verts), torch.tensor(tris, dtype=torch.int32)


def clip_positions(v, eye=(0.0, 0.5, 3.0), fovy_deg=45.0, aspect=1.0):
    """[V, 3] world positions -> [1, V, 4] clip positions for a look-at camera."""
    mvp = cam.perspective(math.radians(fovy_deg), aspect, 0.1, 100.0) @ cam.look_at(eye)
    p = torch.nn.functional.pad(v, (0, 1), value=1.0) @ mvp.T
    return p[None].contiguous()


def noisy_surface(grid: int, inside: float, seed: int = 0):
    """Marching tets of a random SDF (uniform in [-inside, 1 - inside)) on a tet grid: a
    surface of many small components, as an untrained or noisy isosurface gives."""
    import torch

    from nvdrec.geometry import DMTetGeometry

    g = torch.Generator().manual_seed(seed)
    geo = DMTetGeometry(grid_res=grid, scale=2.0)
    with torch.no_grad():
        geo.sdf.copy_(torch.rand(len(geo.sdf), generator=g) - inside)
    return geo.get_mesh().detach()
