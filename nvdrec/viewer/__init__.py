"""Offline browser viewer of a finished run (``nvdrec view RUN_DIR``).

One self-contained HTML page: three.js (the parts used, bundled inline; MIT licence in
``LICENSE.three.txt`` and at the end of the bundle), ``mesh.glb`` and the learned light
``probe.hdr`` embedded as base64. It opens from disk or from a small local server (for a
machine reached over SSH: ``ssh -L 8000:127.0.0.1:8000 host``), needs no network, and
shows the asset shaded under its light or one channel at a time (base colour,
roughness, metallic, normals in object or view space, a depth-tested wireframe over the
shaded mesh) with an exposure slider and a background toggle. The URL hash follows the
view (``viewer.html#channel=roughness&exposure=1&bg=grey&cam=...``); "copy link" and
"save PNG" share it. A panel shows the run's numbers (triangles, texture sizes,
validation metrics, iterations, time) and its first validation views as photo, render
and difference.
"""

from __future__ import annotations

import base64
import html
import json
from importlib import resources
from pathlib import Path

from ..errors import MissingFileError

__all__ = ["write_viewer", "serve", "run_info", "camera_frusta", "CHANNELS"]

CHANNELS = (
    "shaded",
    "basecolor",
    "roughness",
    "metallic",
    "normals",  # object space (geometry and normal map)
    "normals_view",  # view space
    "wireframe",
)
VIEW_SIDE = 256  # validation images embedded at most this many pixels on a side
MAX_VIEWS = 8  # the run writes its first 8 validation views


def _read_json(path: Path):
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return None  # absent or damaged: the panel leaves it out
    return value if isinstance(value, dict) else None


def _png_b64(img) -> str:
    import io

    import imageio.v3 as iio

    buf = io.BytesIO()
    iio.imwrite(buf, img, extension=".png")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _small(img, side: int = VIEW_SIDE):
    """An 8-bit RGB image [H, W, 3] reduced (box filter, whole factor) to ``side``."""
    import numpy as np

    img = np.asarray(img)[..., :3]
    k = max(1, -(-max(img.shape[:2]) // side))
    if k > 1:
        h, w = img.shape[0] // k * k, img.shape[1] // k * k
        img = img[:h, :w].reshape(h // k, k, w // k, k, 3).astype(np.float32).mean((1, 3))
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


MAX_FRUSTA = 1000  # cameras drawn at most (evenly picked)


def camera_frusta(run: Path) -> list | None:
    """Line segments of the training cameras of a run on an image dataset (the
    ``ref_mesh`` folder of its ``config.json``: NeRF-synthetic, LLFF or COLMAP), in the
    mesh's coordinates: per camera 8 segments (centre to the 4 corners of the image
    plane, and its outline) at a depth of 15% of the median camera distance, as a flat
    list of [x, y, z] endpoints (16 per camera). None when the run was not trained on a
    dataset folder or the folder cannot be read any more."""
    import numpy as np
    import torch

    cfg = _read_json(run / "config.json")
    ref = cfg.get("ref_mesh") if cfg else None
    if not isinstance(ref, str) or not Path(ref).is_dir():
        return None
    from ..data.check import load_dataset_folder
    from ..errors import NvdrecError

    try:  # small images: only the cameras are used
        _, ds = load_dataset_folder(ref, max_side=32)
    except (NvdrecError, OSError, ValueError):
        return None
    mv = ds.mv.double().cpu()
    proj = ds.proj.double().cpu()
    pick = torch.linspace(0, len(mv) - 1, min(len(mv), MAX_FRUSTA)).round().long()
    mv, proj = mv[pick], proj[pick]
    c2w = torch.linalg.inv(mv)
    centre = c2w[:, :3, 3]
    depth = 0.15 * float(centre.norm(dim=-1).median())
    # image-plane corners in camera space (OpenGL: looking down -z) at that depth
    tx, ty = 1.0 / proj[:, 0, 0], 1.0 / proj[:, 1, 1]  # tan of the half fields of view
    corners = []
    for sx, sy in ((-1, -1), (1, -1), (1, 1), (-1, 1)):
        p = torch.stack([sx * tx * depth, sy * ty * depth, -depth * torch.ones_like(tx)], -1)
        corners.append(torch.einsum("nij,nj->ni", c2w[:, :3, :3], p) + centre)
    segments = []
    for k in range(4):
        segments += [centre, corners[k], corners[k], corners[(k + 1) % 4]]
    pts = torch.stack(segments, 1).reshape(-1, 3)  # [N * 16, 3]
    return np.round(pts.numpy(), 5).tolist()


def run_info(run: Path) -> dict:
    """What the page's panel shows about a run: validation metrics of each pass
    (``validate/metrics.json``, ``dmtet_validate/metrics.json``), iterations, time and
    backend (``run.json``), up to 8 validation views as (photo, render) PNGs in base64,
    and the training cameras (:func:`camera_frusta`). Missing or damaged files are left
    out."""
    import imageio.v3 as iio

    info: dict = {"name": run.resolve().name}
    for key, folder in (("final", "validate"), ("pass1", "dmtet_validate")):
        m = _read_json(run / folder / "metrics.json")
        if m is not None:
            info[key] = {k: m[k] for k in ("views", "psnr", "ssim", "lpips") if k in m}
    r = _read_json(run / "run.json")
    cfg = _read_json(run / "config.json")
    if r is not None:
        info["seconds"] = r.get("seconds")
    if cfg is not None:
        info["iter"] = cfg.get("iter")
    views = []
    for k in range(MAX_VIEWS):
        pair = [run / "validate" / f"val_{k:06d}_{s}.png" for s in ("ref", "opt")]
        if not all(p.is_file() for p in pair):
            break
        try:
            ref, opt = (_small(iio.imread(p, extension=".png")) for p in pair)
        except (OSError, ValueError):
            break
        if ref.shape != opt.shape:
            break
        views.append({"photo": _png_b64(ref), "render": _png_b64(opt)})
    info["views"] = views
    info["frusta"] = camera_frusta(run)
    return info


def _glb_bytes(run: Path) -> bytes:
    glb = run / "mesh" / "mesh.glb"
    if glb.is_file():
        from ..io.gltf import check_glb

        data = glb.read_bytes()
        check_glb(data, str(glb))  # a damaged file is named, not embedded
        return data
    obj = run / "mesh" / "mesh.obj"
    if not obj.is_file():
        raise MissingFileError(
            f"'{glb}' not found: RUN_DIR must be the out_dir of a finished 'nvdrec train'"
        )
    return _obj_glb(obj)  # runs exported without GLB


def _obj_glb(obj: Path) -> bytes:
    """An OBJ (with its MTL and textures) as GLB bytes."""
    import tempfile

    from ..io.gltf import save_glb
    from ..io.obj import load_mesh

    with tempfile.TemporaryDirectory() as tmp:
        return Path(save_glb(load_mesh(obj), Path(tmp) / "mesh.glb")).read_bytes()


def _pass1_glb(run: Path, checkpoint: Path) -> bytes:
    """The surface of a pass-1 checkpoint as GLB bytes, untextured (the material is still
    the neural field then). Extracted here, in the server's process: the training does no
    work for it."""
    import tempfile

    import torch

    from ..geometry import DMTetGeometry, FlexiCubesGeometry
    from ..io.gltf import save_glb

    cfg = json.loads((run / "config.json").read_text())
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    flexi = cfg.get("isosurface") == "flexicubes"
    geo = (FlexiCubesGeometry if flexi else DMTetGeometry)(
        int(cfg["dmtet_grid"]), float(cfg["mesh_scale"]), seed=int(cfg.get("seed", 0))
    )
    params = {k[4:]: v for k, v in state["params"].items() if k.startswith("geo.")}
    geo.load_state_dict(params)
    with torch.no_grad():
        mesh = geo.get_mesh(training=False) if flexi else geo.get_mesh()
    if mesh.num_triangles == 0:
        raise ValueError("no surface yet")
    mesh = mesh.with_(v_tex=None, t_tex_idx=None, v_tng=None).detach()
    with tempfile.TemporaryDirectory() as tmp:
        return Path(save_glb(mesh, Path(tmp) / "mesh.glb")).read_bytes()


def live_state(run) -> dict:
    """What a live page polls (``/live.json``) while a run trains: the newest mesh
    (``mesh/mesh.glb`` at the end, before that pass 1's ``dmtet_mesh/mesh.obj``, and
    during pass 1 the surface of its newest checkpoint), its light, the newest preview
    image and the stage it shows, and a ``stamp`` that changes whenever one of them
    does."""
    run = Path(run)
    mesh = None
    for cand in (run / "mesh/mesh.glb", run / "mesh/mesh.obj", run / "dmtet_mesh/mesh.obj"):
        if cand.is_file():
            mesh = cand
            break
    if mesh is None:  # pass 1: its newest checkpoint holds the surface
        ckpts = sorted((run / "checkpoints").glob("dmtet_pass1_*.pt"))
        mesh = ckpts[-1] if ckpts else None
    probe = mesh.parent / "probe.hdr" if mesh is not None and mesh.suffix != ".pt" else None
    previews = sorted(run.glob("img_*.png"), key=lambda p: p.stat().st_mtime)
    preview = previews[-1] if previews else None
    stage = "waiting for the first preview"
    if preview is not None:
        name = preview.stem[4:]  # img_<pass>_<iteration>
        pass_name, _, it = name.rpartition("_")
        label = {"dmtet_pass1": "pass 1", "mesh_pass": "pass 2"}.get(pass_name, pass_name)
        stage = f"{label}, iteration {int(it) if it.isdigit() else it}"
    if mesh is not None and mesh.parent.name == "mesh":
        stage = "finished"

    def stamp(*paths):
        return "|".join(
            f"{p.relative_to(run)}@{p.stat().st_mtime_ns}"
            for p in paths
            if p is not None and p.is_file()
        )

    return {
        "stamp": stamp(mesh, probe, preview),
        "mesh_stamp": stamp(mesh, probe),
        "mesh": str(mesh.relative_to(run)) if mesh is not None else None,
        "light": bool(probe is not None and probe.is_file()),
        "preview": preview.name if preview is not None else None,
        "stage": stage,
    }


def write_viewer(run_dir, output=None, live: bool = False) -> Path:
    """Write the viewer page of a run (default ``RUN_DIR/viewer.html``) and return its
    path. The page appears whole or not at all. ``live``: a page for ``serve(...,
    run=RUN_DIR)`` that follows a run while it trains (it may have no mesh yet)."""
    from ..io.files import atomic_write_text

    run = Path(run_dir)
    probe = run / "mesh" / "probe.hdr"
    if live and not (run / "mesh" / "mesh.glb").is_file():
        glb, probe = b"", None  # the page loads them from the server as they appear
    else:
        glb = _glb_bytes(run)
    if probe is not None and not probe.is_file():
        raise MissingFileError(f"'{probe}' not found (the run's learned light)")
    from ..io.hdr import read_hdr

    if probe is not None:
        read_hdr(probe)  # a damaged light is named here (ImageFormatError), not embedded
    here = resources.files(__name__)
    page = here.joinpath("viewer.html").read_text(encoding="utf-8")
    bundle = here.joinpath("three_viewer.min.js").read_text(encoding="utf-8")
    fills = {
        "__TITLE__": html.escape(run.resolve().name),
        "__GLB_B64__": base64.b64encode(glb).decode("ascii"),
        "__HDR_B64__": base64.b64encode(probe.read_bytes() if probe else b"").decode("ascii"),
        # inside a <script>: "</" may not appear, so it is escaped
        "__INFO_JSON__": json.dumps({**run_info(run), "live": live}).replace("</", "<\\/"),
        "__THREE_BUNDLE__": bundle,
    }
    for key, value in fills.items():  # each placeholder once; values are not rescanned
        head, sep, tail = page.partition(key)
        page = head + value + tail if sep else page
    out = Path(output) if output else run / "viewer.html"
    if out.suffix.lower() not in (".html", ".htm"):
        out = out / "viewer.html"
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, page)
    return out


def _live_files(run: Path, state: dict, cache: dict) -> dict:
    """The bytes of ``/live/mesh.glb``, ``/live/probe.hdr`` and ``/live/preview.png`` for
    a live state (an OBJ converted, a checkpoint's surface extracted once per stamp)."""
    if cache.get("stamp") == state["stamp"]:
        return cache["files"]
    files = {}
    mesh = run / state["mesh"] if state["mesh"] else None
    if mesh is not None:
        try:
            if mesh.suffix == ".pt":
                glb = _pass1_glb(run, mesh)
            else:
                glb = mesh.read_bytes() if mesh.suffix == ".glb" else _obj_glb(mesh)
            files["/live/mesh.glb"] = glb
            if state["light"]:
                files["/live/probe.hdr"] = (mesh.parent / "probe.hdr").read_bytes()
        except Exception:  # noqa: BLE001  (a file still being written: next poll)
            return cache.get("files", {})
    if state["preview"]:
        try:
            files["/live/preview.png"] = (run / state["preview"]).read_bytes()
        except OSError:
            pass
    cache.update(stamp=state["stamp"], files=files)
    return files


def serve(page: Path, port: int = 8000, host: str = "127.0.0.1", ready=None, run=None) -> None:
    """Serve the page ``page`` (and nothing else) on ``host:port`` until interrupted.
    With ``run`` (a run folder, live pages): also ``/live.json`` (:func:`live_state`) and
    the newest ``/live/mesh.glb``, ``/live/probe.hdr`` and ``/live/preview.png``.

    The page is self-contained, so the server answers GET/HEAD of ``/`` and ``/NAME`` with
    it and 404 to every other path: no directory listings, no checkpoints or configs of
    the run, nothing reached through links. Requests whose Host header is not this
    loopback address and port get 421 (a page elsewhere cannot reach the server through
    DNS rebinding). ``ready``: called with the bound server before serving (tests).

    Raises:
        ConfigError: the port is out of range or cannot be bound (in use, no rights).
    """
    import http.server
    import urllib.parse

    from ..errors import ConfigError

    if not 0 < int(port) < 65536:
        raise ConfigError(f"--port {port}: a port is a number from 1 to 65535")
    body = Path(page).read_bytes()
    paths = {"/", "/" + urllib.parse.quote(Path(page).name)}
    live_cache: dict = {}
    types = {".json": "application/json", ".glb": "model/gltf-binary", ".png": "image/png"}
    hosts = {f"{h}:{port}" for h in (host, "127.0.0.1", "localhost", "[::1]")}

    class Handler(http.server.BaseHTTPRequestHandler):
        server_version = "nvdrec-view"

        def _answer(self, with_body: bool) -> None:
            if (self.headers.get("Host") or "").lower() not in hosts:
                self.send_error(421, "unexpected Host header")
                return
            path = urllib.parse.urlsplit(self.path).path
            data, kind = body, "text/html; charset=utf-8"
            if run is not None and (path == "/live.json" or path.startswith("/live/")):
                state = live_state(run)
                files = _live_files(Path(run), state, live_cache)
                if path == "/live.json":
                    data = json.dumps(state).encode()
                elif path in files:
                    data = files[path]
                else:
                    self.send_error(404, "not written yet")
                    return
                kind = types.get(Path(path).suffix, "application/octet-stream")
            elif path not in paths:
                self.send_error(404, "only the viewer page is served")
                return
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Content-Type-Options", "nosniff")
            self.end_headers()
            if with_body:
                self.wfile.write(data)

        def do_GET(self):  # noqa: N802 (the http.server interface)
            self._answer(True)

        def do_HEAD(self):  # noqa: N802
            self._answer(False)

        def log_message(self, format, *args):  # noqa: A002  quiet: one line per request is noise
            pass

    try:
        httpd = http.server.ThreadingHTTPServer((host, int(port)), Handler)
    except OSError as e:
        raise ConfigError(
            f"--port {port}: cannot serve on {host}:{port} ({e.strerror or e}); "
            "pick another port with --port"
        ) from None
    with httpd:
        if ready is not None:
            ready(httpd)
        print(f"nvdrec view: serving http://{host}:{port}/{Path(page).name} (Ctrl-C stops)")
        print(f"  from another machine over SSH: ssh -L {port}:{host}:{port} THIS_HOST")
        try:
            httpd.serve_forever()
        except KeyboardInterrupt:
            pass
