"""Relighting and turntables of a finished run: the exported mesh + textures (not the
training state) under the learned probe or any HDR environment map, on an orbit.

    frames = turntable(*load_run("out/bob"), frames=60, res=512)   # uint8 [F, H, W, 3]
    write_frames(frames, "bob.gif")

``nvdrec render RUN_DIR`` is the command-line front of these functions.
"""

from __future__ import annotations

import math
import os
import textwrap
from pathlib import Path

import numpy as np
import torch

from ..errors import MissingFileError, NvdrecError
from ..structures import camera as cam
from ..structures.mesh import Mesh, auto_normals, compute_tangents
from .light import EnvironmentLight
from .renderer import RasterContext, render_mesh

__all__ = [
    "load_run",
    "load_light",
    "orbit",
    "turntable",
    "contact_sheet",
    "write_frames",
    "check_writer",
    "FORMATS",
]

FORMATS = ("png", "gif", "mp4")


FILTER_CACHE_VERSION = 1


def filter_cache_dir() -> Path | None:
    """``$NVDREC_CACHE_DIR/lights`` (else ``~/.cache/nvdrec/lights``); None when
    ``$NVDREC_LIGHT_CACHE`` is "off"."""
    if os.environ.get("NVDREC_LIGHT_CACHE") == "off":
        return None
    env = os.environ.get("NVDREC_CACHE_DIR")
    return (Path(env) if env else Path.home() / ".cache" / "nvdrec") / "lights"


def _cached_filter(light: EnvironmentLight, hdr: Path, scale: float) -> None:
    """Fill ``light``'s filtered levels from the cache (key: the map's bytes, scale,
    cube size, sample counts, cache version), or filter and store them. A cache that
    cannot be read or written is skipped."""
    import hashlib

    from ..io.files import atomic_path

    root = filter_cache_dir()
    if root is None:
        return
    h = hashlib.sha256(Path(hdr).read_bytes())
    h.update(repr((scale, light.base.shape[1], light.samples, FILTER_CACHE_VERSION)).encode())
    path = root / f"{h.hexdigest()[:32]}.pt"
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        light.specular, light.diffuse = list(state["specular"]), state["diffuse"]
        return
    except (OSError, RuntimeError, KeyError, TypeError, ValueError, EOFError):
        pass  # not there yet, or damaged: filter again
    light.build_mips()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            torch.save(
                {"specular": [s.contiguous() for s in light.specular], "diffuse": light.diffuse},
                tmp,
            )
    except OSError:
        pass


def load_run(
    run_dir, envmap=None, env_scale: float = 1.0, light_res: int | None = None, device="cpu"
) -> tuple[Mesh, EnvironmentLight]:
    """(mesh with its textures, light) of a run's ``mesh/`` folder: the light is the
    learned ``probe.hdr``, or ``envmap`` (a lat-long HDR) times ``env_scale``, as a cube
    map of ``light_res`` (default 256 on a GPU, 128 on the CPU, where filtering a 256
    cube map takes ~7 s)."""
    from ..io.obj import load_mesh

    folder = Path(run_dir) / "mesh"
    src = folder / "mesh.obj"
    if not src.is_file():
        raise MissingFileError(
            f"'{src}' not found: RUN_DIR must be the out_dir of a finished 'nvdrec train'"
        )
    hdr = Path(envmap) if envmap is not None else folder / "probe.hdr"
    if not hdr.is_file():
        raise MissingFileError(f"environment map '{hdr}' not found")
    mesh = load_mesh(src)
    if mesh.v_nrm is None:
        mesh = auto_normals(mesh)
    if mesh.v_tex is not None:
        mesh = compute_tangents(mesh)
    light = load_light(hdr, env_scale, light_res, device)
    for mat in {id(m): m for m in [mesh.material, *(mesh.materials or [])] if m}.values():
        for t in (mat.kd, mat.ks, mat.normal):  # textures loaded here: moved in place
            if t is not None:
                t.to(device)
    return mesh.to(device), light


def load_light(hdr, env_scale: float = 1.0, light_res: int | None = None, device="cpu"):
    """A lat-long HDR map times ``env_scale`` as a fixed :class:`EnvironmentLight` on
    ``device``, cube faces of ``light_res`` (default 256 on a GPU, 128 on the CPU, where
    its filtered levels are cached per map)."""
    if light_res is None:
        light_res = 256 if torch.device(device).type == "cuda" else 128
    light = EnvironmentLight.load(hdr, scale=env_scale, res=light_res, trainable=False)
    if torch.device(device).type == "cpu":  # filtering takes seconds there: cached per map
        _cached_filter(light, Path(hdr), env_scale)
    return light.to(device)


def orbit(mesh: Mesh, frames: int, res: int, elevation_deg: float = 20.0, fovy_deg: float = 40.0):
    """(mvp [F, 4, 4], camera positions [F, 3]) of ``frames`` views on a circle around the
    mesh's vertical axis, all at ``elevation_deg``, framing its bounding sphere."""
    lo, hi = mesh.aabb()
    centre = (lo + hi) / 2
    radius = float((mesh.v_pos - centre).norm(dim=-1).max())
    fovy = math.radians(fovy_deg)
    dist = 1.1 * radius / math.sin(fovy / 2)
    dev = mesh.v_pos.device
    proj = cam.perspective(fovy, 1.0, 0.05 * dist, 10 * dist, device=dev)
    shift = cam.translate(*(-centre).tolist(), device=dev)
    mvs = [
        cam.translate(0, 0, -dist, device=dev)
        @ cam.rotate_x(math.radians(elevation_deg), device=dev)
        @ cam.rotate_y(2 * math.pi * i / frames, device=dev)
        @ shift
        for i in range(frames)
    ]
    mv = torch.stack(mvs)
    return proj @ mv, torch.linalg.inv(mv)[:, :3, 3]


@torch.no_grad()
def turntable(
    mesh: Mesh,
    light: EnvironmentLight,
    frames: int = 60,
    res: int = 512,
    elevation_deg: float = 20.0,
    background=(1.0, 1.0, 1.0),
    spp: int = 2,
    batch: int = 8,
    backend: str = "auto",
    progress=None,
    on_frames=None,
) -> np.ndarray:
    """Render ``frames`` views of ``mesh`` under ``light`` around its vertical axis.

    Args:
        mesh: a textured mesh (as :func:`load_run` gives), on the device to render on.
        light: environment light on the same device.
        res: square image size.
        background: linear RGB behind the object (default white), or None for black.
        spp: supersampling per axis (antialiasing of texture detail and edges).
        progress: called with the number of frames done.
        on_frames: called with (index of the first, uint8 frames [n, res, res, 3]) as
            each batch is made (to write them at once).

    Returns:
        sRGB frames, uint8 [frames, res, res, 3].
    """
    from ..io.image import linear_to_srgb

    if frames < 1 or res < 8:
        raise NvdrecError(f"turntable needs frames >= 1 and res >= 8, got {frames}, {res}")
    ctx = RasterContext(backend)
    mvp, campos = orbit(mesh, frames, res, elevation_deg)
    out = np.empty((frames, res, res, 3), np.uint8)
    bg = background or (0.0, 0.0, 0.0)
    for i in range(0, frames, batch):
        n = min(batch, frames - i)
        img = _shade(ctx, mesh, mvp[i : i + n], campos[i : i + n], light, res, spp, bg)
        srgb = linear_to_srgb(img.clamp(0, 1)).clamp(0, 1)
        out[i : i + n] = (srgb * 255 + 0.5).to(torch.uint8).cpu().numpy()
        if on_frames is not None:
            on_frames(i, out[i : i + n])
        if progress is not None:
            progress(i + n)
    return out


def _shade(ctx, mesh, mvp, campos, light, res: int, spp: int, bg, bsdf=None) -> torch.Tensor:
    """Linear RGB [V, res, res, 3] of the views ``mvp`` on the background colour ``bg``
    (``bsdf``: a debug view of the renderer, or None for the shaded mesh); the light is
    filtered first where it is not yet."""
    if light.diffuse is None or light.base.requires_grad:  # not filtered yet
        light.build_mips()
    v = mvp.shape[0]
    background = torch.tensor(bg, device=mesh.v_pos.device, dtype=torch.float32)
    return render_mesh(
        ctx,
        mesh,
        mvp,
        campos,
        light,
        (res, res),
        spp=spp,
        bsdf=bsdf,
        background=background.expand(v, res, res, 3).contiguous(),
    )["shaded"][..., :3]


SHEET_CHANNELS = (  # (label, debug bsdf, channel of its output or None for RGB)
    ("base colour", "kd", None),
    ("roughness", "ks", 1),
    ("metallic", "ks", 2),
    ("normals (object space)", "normal", None),
)


@torch.no_grad()
def contact_sheet(
    mesh: Mesh,
    lights: list,
    views: int = 4,
    res: int = 256,
    elevation_deg: float = 20.0,
    spp: int = 2,
    title: str = "",
    backend: str = "auto",
) -> np.ndarray:
    """One labelled picture of a result: a row per light (the mesh shaded under it, on
    white) and per channel (base colour, roughness, metallic, object-space normals, on
    neutral grey), a column per view around the vertical axis.

    Args:
        mesh: a textured mesh (as :func:`load_run` gives).
        lights: [(label, EnvironmentLight)], on the mesh's device.
        views: columns, evenly spaced around the object.
        res: size of each square cell.

    Returns:
        sRGB picture, uint8 [H, W, 3]: a header line, then the rows with their labels
        on the left.
    """
    from ..io.image import linear_to_srgb

    if views < 1 or res < 8 or not lights:
        raise NvdrecError(
            f"a contact sheet needs views >= 1, res >= 8 and a light, got {views}, {res}"
        )
    ctx = RasterContext(backend)
    mvp, campos = orbit(mesh, views, res, elevation_deg)
    rows, labels = [], []

    def draw(light, bsdf, bg):
        return _shade(ctx, mesh, mvp, campos, light, res, spp, bg, bsdf)

    for label, light in lights:
        rows.append(linear_to_srgb(draw(light, None, (1.0, 1.0, 1.0)).clamp(0, 1)))
        labels.append(f"shaded: {label}")
    grey = 0.2140  # linear value of sRGB 0.5
    for label, bsdf, ch in SHEET_CHANNELS:
        if bsdf == "kd":  # a colour: shown in sRGB, as textures are
            img = linear_to_srgb(draw(lights[0][1], bsdf, (grey,) * 3).clamp(0, 1))
        else:  # data shown as stored, on mid grey
            img = draw(lights[0][1], bsdf, (0.5, 0.5, 0.5))
            if ch is not None:
                img = img[..., ch : ch + 1].expand(*img.shape[:-1], 3)
        rows.append(img)
        labels.append(label)
    cells = torch.stack(rows).clamp(0, 1)  # [R, V, res, res, 3]
    grid = cells.permute(0, 2, 1, 3, 4).reshape(len(rows) * res, views * res, 3)
    grid = (grid * 255 + 0.5).to(torch.uint8).cpu().numpy()
    return _label_sheet(grid, labels, res, views, title)


def _label_sheet(grid: np.ndarray, labels: list, res: int, views: int, title: str):
    """Add a header (title, view angles) and the row labels to a sheet's grid."""
    from PIL import Image, ImageDraw, ImageFont

    size = max(11, min(18, res // 12))
    try:
        font = ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: one bitmap size
        font = ImageFont.load_default()
    left, top = 12 * size, 2 * size + 8
    sheet = Image.new("RGB", (left + grid.shape[1], top + grid.shape[0]), (255, 255, 255))
    sheet.paste(Image.fromarray(grid), (left, top))
    pen = ImageDraw.Draw(sheet)
    pen.text((6, 4), title, fill=(0, 0, 0), font=font)
    for v in range(views):
        pen.text(
            (left + v * res + 4, size + 6), f"{360 * v / views:.0f} deg", fill=(0, 0, 0), font=font
        )
    for r, label in enumerate(labels):
        y = top + r * res + res // 2 - size
        lines = textwrap.wrap(label, 11, break_long_words=False, break_on_hyphens=False)
        for k, line in enumerate(lines):
            pen.text((6, y + k * (size + 2)), line, fill=(0, 0, 0), font=font)
    return np.asarray(sheet)


def check_writer(suffix: str) -> None:
    """Raise a clear error now when frames of this kind cannot be written (``.mp4``
    needs imageio's ffmpeg plugin), before any rendering."""
    if suffix.lower().lstrip(".") == "mp4":
        try:
            import imageio_ffmpeg  # noqa: F401
        except ImportError:
            raise NvdrecError(
                "writing .mp4 needs imageio's ffmpeg plugin: pip install imageio-ffmpeg "
                "(or write --format gif / png)"
            ) from None


def write_frames(frames: np.ndarray, path, fps: int = 30) -> Path:
    """Write uint8 frames [F, H, W, 3]: ``.gif`` (looping), ``.mp4`` (H.264 through
    imageio's ffmpeg plugin, ``pip install imageio-ffmpeg``), or a folder of PNGs (any
    other path). The file appears whole or not at all."""
    import imageio.v3 as iio

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".gif", ".mp4"):
        path.mkdir(parents=True, exist_ok=True)
        for i, f in enumerate(frames):
            iio.imwrite(path / f"frame_{i:04d}.png", f)
        return path
    check_writer(suffix)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}{suffix}")
    try:
        if suffix == ".gif":
            iio.imwrite(tmp, frames, extension=".gif", duration=1000 / fps, loop=0)
        else:
            iio.imwrite(tmp, frames, extension=".mp4", plugin="FFMPEG", fps=fps)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
