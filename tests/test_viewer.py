"""nvdrec view: the offline HTML viewer, checked in a real headless Chromium."""

import base64
import html
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pytest
from test_trainer import tiny_run  # noqa: F401  (a finished tiny run)

from nvdrec.errors import MissingFileError
from nvdrec.io import read_image
from nvdrec.viewer import CHANNELS, write_viewer

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def test_page_is_self_contained(tiny_run, tmp_path):  # noqa: F811
    run, _ = tiny_run
    page = write_viewer(run, tmp_path / "v.html")
    text = page.read_text()
    assert "__GLB_B64__" not in text and "__THREE_BUNDLE__" not in text
    glb = (run / "mesh" / "mesh.glb").read_bytes()
    assert base64.b64encode(glb).decode() in text  # the mesh travels inside the page
    assert "Three.js Authors" in text and "MIT" in text  # the bundled library's licence
    assert "<script src" not in text and "<link" not in text  # nothing to fetch
    with pytest.raises(MissingFileError, match="finished 'nvdrec train'"):
        write_viewer(tmp_path / "nothing")


def test_view_command_serves_the_page(tiny_run, tmp_path):  # noqa: F811
    run, _ = tiny_run
    with socket.socket() as s:  # a free port on the loopback interface
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "page.html"
    cmd = [sys.executable, "-m", "nvdrec", "view", str(run), "--output", str(out)]
    proc = subprocess.Popen(cmd + ["--serve", "--port", str(port)], stdout=subprocess.PIPE)
    try:
        for _ in range(100):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/page.html", timeout=2) as r:
                    body = r.read()
                break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail("the viewer was not served")
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert body == out.read_bytes()


def _shot(page, channel, path, exposure=0, check=True):
    subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--use-angle=swiftshader"]
        + ["--enable-unsafe-swiftshader", "--window-size=320,240", "--virtual-time-budget=20000"]
        + [f"--screenshot={path}"]
        + [f"file://{page}#channel={channel}&exposure={exposure}" + ("&check" if check else "")],
        capture_output=True,
        timeout=120,
    )
    return read_image(path)


@pytest.mark.extras
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (.ci/run installs it)")
def test_viewer_draws_every_channel_in_chromium(tiny_run, tmp_path):  # noqa: F811
    """The page loads without errors (its corner flag turns green only when the model
    was drawn and no error or console error occurred), the model is drawn (not blank)
    and every channel looks different."""
    run, _ = tiny_run
    page = write_viewer(run, tmp_path / "viewer.html")
    shots = {c: _shot(page, c, tmp_path / f"{c}.png") for c in CHANNELS}
    for c, img in shots.items():
        assert np.allclose(img[-4, -4], [0, 200 / 255, 0], atol=0.02), (c, img[-4, -4])
        assert img[60:220].std() > 0.02, c  # something is drawn below the controls
    for i, a in enumerate(CHANNELS):
        for b in CHANNELS[i + 1 :]:
            assert np.abs(shots[a][60:220] - shots[b][60:220]).mean() > 0.003, (a, b)
    brighter = _shot(page, "shaded", tmp_path / "ev.png", exposure=1.5)  # exposure works
    assert brighter[60:220].mean() > shots["shaded"][60:220].mean() + 0.01
    # an error is reported: a damaged mesh turns the flag red
    bad = tmp_path / "bad.html"
    text = page.read_text()
    glb = base64.b64encode((run / "mesh" / "mesh.glb").read_bytes()).decode()
    bad.write_text(text.replace(glb, base64.b64encode(b"not a glb file").decode()))
    img = _shot(bad, "shaded", tmp_path / "bad.png")
    assert np.allclose(img[-4, -4], [1, 0, 0], atol=0.02), img[-4, -4]


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_server_serves_the_page_and_nothing_else(tmp_path):
    """The run folder holds checkpoints, the config and a link out of it: none of it is
    served; a foreign Host header (DNS rebinding) is refused; bad ports are errors."""
    import http.client
    import threading

    from nvdrec.errors import ConfigError
    from nvdrec.viewer import serve

    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "mesh_pass_000010.pt").write_bytes(b"secret")
    (run / "config.json").write_text("{}")
    (tmp_path / "outside.txt").write_text("outside")
    (run / "link.txt").symlink_to(tmp_path / "outside.txt")
    page = run / "viewer.html"
    page.write_text("<html>viewer</html>")
    port = _free_port()
    box = {}
    t = threading.Thread(
        target=serve, args=(page, port), kwargs={"ready": lambda h: box.update(h=h)}, daemon=True
    )
    t.start()
    for _ in range(100):
        if "h" in box:
            break
        time.sleep(0.05)

    def get(path, host=f"127.0.0.1:{port}", method="GET"):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        c.request(method, path, headers={"Host": host})
        r = c.getresponse()
        return r.status, r.read()

    try:
        assert get("/viewer.html") == (200, b"<html>viewer</html>")
        assert get("/") == (200, b"<html>viewer</html>")
        assert get("/viewer.html?x=1#a")[0] == 200
        assert get("/viewer.html", host=f"localhost:{port}")[0] == 200
        assert get("/viewer.html", method="HEAD") == (200, b"")
        for path in (
            "/checkpoints/",
            "/checkpoints/mesh_pass_000010.pt",
            "/config.json",
            "/link.txt",
            "/../outside.txt",
            "/%2e%2e/outside.txt",
        ):
            status, body = get(path)
            assert status == 404 and b"secret" not in body and b"outside" not in body, path
        assert get("/viewer.html", host="evil.example:80")[0] == 421
        assert get("/viewer.html", host=f"evil.example:{port}")[0] == 421
        with pytest.raises(ConfigError, match=f"--port {port}: cannot serve"):
            serve(page, port)  # busy
    finally:
        box["h"].shutdown()
        t.join(timeout=5)
    for bad in (0, 70000):
        with pytest.raises(ConfigError, match="1 to 65535"):
            serve(page, bad)


def _dom(page, fragment):
    """The page's DOM once the mesh is loaded (``data-hash`` set), with ``#fragment``
    (headless Chromium). --dump-dom can dump before the asynchronous load finishes on
    a busy machine: up to three tries with longer virtual-time budgets."""
    for budget in (20000, 60000, 180000):
        r = subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--use-angle=swiftshader"]
            + ["--enable-unsafe-swiftshader", "--window-size=320,240"]
            + [f"--virtual-time-budget={budget}", "--dump-dom", f"file://{page}#{fragment}"],
            capture_output=True,
            text=True,
            timeout=300,
        )
        dom = html.unescape(r.stdout)
        if "data-hash=" in dom:
            break
    return dom


@pytest.mark.extras
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (.ci/run installs it)")
def test_viewer_link_round_trip_bad_values_and_exposure(tiny_run, tmp_path):  # noqa: F811
    """The hash follows the view (channel, exposure, camera), so a link reopens it; bad
    values are named in a visible note and not used; exposure changes the shaded
    channel only."""
    run, _ = tiny_run
    page = write_viewer(run, tmp_path / "viewer.html")
    view = "channel=roughness&exposure=1.5&cam=0.5,0.3,0.9,0,0.1,0"
    dom = _dom(page, view)
    assert f'data-hash="{view}"' in dom and 'data-channel="roughness"' in dom
    assert '<div id="note"></div>' in dom
    dom = _dom(page, "channel=albedo&exposure=abc&cam=1,2")
    note = dom.split('<div id="note">')[1].split("</div>")[0]
    assert note.startswith("ignored from the link: channel=albedo (one of shaded, basecolor")
    assert "exposure=abc (a number from -4 to 4)" in note and "cam=1,2 (six numbers" in note
    assert 'data-channel="shaded"' in dom and "exposure=0.0&cam=" in dom
    dim = _shot(page, "basecolor", tmp_path / "b0.png", exposure=0)
    bright = _shot(page, "basecolor", tmp_path / "b2.png", exposure=2)
    assert np.abs(dim[60:220] - bright[60:220]).mean() < 0.002  # data: not exposed
    # the load flag for scripted checks is not shown to users
    plain = _shot(page, "basecolor", tmp_path / "plain.png", check=False)
    assert np.allclose(plain[-4, -4], 64 / 255, atol=0.02), plain[-4, -4]  # neutral grey
