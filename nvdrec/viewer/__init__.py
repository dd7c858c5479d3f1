"""Offline browser viewer of a finished run (``nvdrec view RUN_DIR``).

One self-contained HTML page: three.js (the parts used, bundled inline; MIT licence in
``LICENSE.three.txt`` and at the end of the bundle), ``mesh.glb`` and the learned light
``probe.hdr`` embedded as base64. It opens from disk or from a small local server (for a
machine reached over SSH: ``ssh -L 8000:127.0.0.1:8000 host``), needs no network, and
shows the asset shaded under its light or one channel at a time (base colour,
roughness, metallic, normals, wireframe) with an exposure slider. The URL hash selects
them at load (``viewer.html#channel=roughness&exposure=1``).
"""

from __future__ import annotations

import base64
import html
from importlib import resources
from pathlib import Path

from ..errors import MissingFileError

__all__ = ["write_viewer", "serve", "CHANNELS"]

CHANNELS = ("shaded", "basecolor", "roughness", "metallic", "normals", "wireframe")


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
    import tempfile

    from ..io.gltf import save_glb
    from ..io.obj import load_mesh

    with tempfile.TemporaryDirectory() as tmp:  # runs exported without GLB
        return Path(save_glb(load_mesh(obj), Path(tmp) / "mesh.glb")).read_bytes()


def write_viewer(run_dir, output=None) -> Path:
    """Write the viewer page of a run (default ``RUN_DIR/viewer.html``) and return its
    path. The page appears whole or not at all."""
    from ..io.files import atomic_write_text

    run = Path(run_dir)
    probe = run / "mesh" / "probe.hdr"
    glb = _glb_bytes(run)
    if not probe.is_file():
        raise MissingFileError(f"'{probe}' not found (the run's learned light)")
    from ..io.hdr import read_hdr

    read_hdr(probe)  # a damaged light is named here (ImageFormatError), not embedded
    here = resources.files(__name__)
    page = here.joinpath("viewer.html").read_text(encoding="utf-8")
    bundle = here.joinpath("three_viewer.min.js").read_text(encoding="utf-8")
    fills = {
        "__TITLE__": html.escape(run.resolve().name),
        "__GLB_B64__": base64.b64encode(glb).decode("ascii"),
        "__HDR_B64__": base64.b64encode(probe.read_bytes()).decode("ascii"),
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


def serve(page: Path, port: int = 8000, host: str = "127.0.0.1", ready=None) -> None:
    """Serve the page ``page`` (and nothing else) on ``host:port`` until interrupted.

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
    hosts = {f"{h}:{port}" for h in (host, "127.0.0.1", "localhost", "[::1]")}

    class Handler(http.server.BaseHTTPRequestHandler):
        server_version = "nvdrec-view"

        def _answer(self, with_body: bool) -> None:
            if (self.headers.get("Host") or "").lower() not in hosts:
                self.send_error(421, "unexpected Host header")
                return
            if urllib.parse.urlsplit(self.path).path not in paths:
                self.send_error(404, "only the viewer page is served")
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Content-Type-Options", "nosniff")
            self.end_headers()
            if with_body:
                self.wfile.write(body)

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
