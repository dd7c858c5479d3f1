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
BELOW_UI = slice(112, 200)  # rows of a 320x240 screenshot between the controls and the status
SLATE = np.array([0x26, 0x34, 0x4A]) / 255  # behind the data channels (no grey matches it)


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


LOADING = np.array([0x80, 0x80, 0x80]) / 255  # the check flag while the page still loads


def _shot(page, channel, path, exposure=0, check=True, extra=""):
    """A 320x240 screenshot with ``#channel=..&exposure=..`` (+ ``extra``, ``&check``).
    With ``check``, a screenshot taken while the flag still says loading (image decoding
    runs in real time while virtual time runs out; slow on a 2-core machine with a large
    page) is taken again with a longer virtual-time budget, up to five tries."""
    fragment = f"channel={channel}&exposure={exposure}{extra}" + ("&check" if check else "")
    for budget in (20000, 40000, 60000, 120000, 180000):
        subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--use-angle=swiftshader"]
            + ["--enable-unsafe-swiftshader", "--window-size=320,240"]
            + [f"--virtual-time-budget={budget}", f"--screenshot={path}"]
            + [f"file://{page}#{fragment}"],
            capture_output=True,
            timeout=300,
        )
        img = read_image(path)
        if not (check and np.allclose(img[-4, -4], LOADING, atol=0.02)):
            break
    return img


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
        assert img[BELOW_UI].std() > 0.02, c  # something is drawn
    for i, a in enumerate(CHANNELS):
        for b in CHANNELS[i + 1 :]:
            assert np.abs(shots[a][BELOW_UI] - shots[b][BELOW_UI]).mean() > 0.003, (a, b)
    brighter = _shot(page, "shaded", tmp_path / "ev.png", exposure=1.5)  # exposure works
    assert brighter[BELOW_UI].mean() > shots["shaded"][BELOW_UI].mean() + 0.01
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
    """The page's DOM once the mesh is drawn (``data-ready`` set), with ``#fragment``
    (headless Chromium). --dump-dom can dump before the asynchronous load finishes (image
    decoding runs in real time while virtual time runs out; about one load in three here):
    up to six tries with longer virtual-time budgets."""
    return _dom_url(f"file://{page}#{fragment}")


def _dom_url(url):
    for budget in (20000, 40000, 60000, 90000, 120000, 180000):
        r = subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--use-angle=swiftshader"]
            + ["--enable-unsafe-swiftshader", "--window-size=320,240"]
            + [f"--virtual-time-budget={budget}", "--dump-dom", url],
            capture_output=True,
            text=True,
            timeout=300,
        )
        dom = html.unescape(r.stdout)
        if 'data-ready="1"' in dom:
            break
    return dom


@pytest.mark.extras
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (.ci/run installs it)")
def test_viewer_link_round_trip_bad_values_and_exposure(tiny_run, tmp_path):  # noqa: F811
    """The hash follows the view (channel, exposure, background, camera), so a link reopens it; bad
    values are named in a visible note and not used; exposure changes the shaded
    channel only."""
    run, _ = tiny_run
    page = write_viewer(run, tmp_path / "viewer.html")
    view = "channel=roughness&exposure=1.5&bg=grey&cam=0.5,0.3,0.9,0,0.1,0"
    dom = _dom(page, view)
    assert f'data-hash="{view}"' in dom and 'data-channel="roughness"' in dom
    assert '<div id="note"></div>' in dom
    dom = _dom(page, "channel=albedo&exposure=abc&cam=1,2&bg=pink")
    note = dom.split('<div id="note">')[1].split("</div>")[0]
    assert note.startswith("ignored from the link: channel=albedo (one of shaded, basecolor")
    assert "exposure=abc (a number from -4 to 4)" in note and "cam=1,2 (six numbers" in note
    assert "bg=pink (env or grey)" in note
    assert 'data-channel="shaded"' in dom and "exposure=0.0&bg=env&cam=" in dom
    dim = _shot(page, "basecolor", tmp_path / "b0.png", exposure=0)
    bright = _shot(page, "basecolor", tmp_path / "b2.png", exposure=2)
    assert np.abs(dim[BELOW_UI] - bright[BELOW_UI]).mean() < 0.002  # data: not exposed
    # the load flag for scripted checks is not shown to users
    plain = _shot(page, "basecolor", tmp_path / "plain.png", check=False)
    assert np.allclose(plain[-4, -4, :3], SLATE, atol=0.02), plain[-4, -4]


def test_run_info_of_the_panel(tiny_run, tmp_path):  # noqa: F811
    """The panel's data: each pass's validation metrics as the run wrote them, iterations,
    and the first validation views as (photo, render) PNGs of at most 256 px; damaged
    files are left out instead of failing the page."""
    import json
    import shutil as sh

    import imageio.v3 as iio

    from nvdrec.viewer import run_info

    run, _ = tiny_run
    info = run_info(run)
    final = json.loads((run / "validate" / "metrics.json").read_text())
    assert info["final"]["psnr"] == final["psnr"] and info["final"]["views"] == final["views"]
    pass1 = json.loads((run / "dmtet_validate" / "metrics.json").read_text())
    assert info["pass1"]["ssim"] == pass1["ssim"]
    assert info["iter"] == json.loads((run / "config.json").read_text())["iter"]
    assert len(info["views"]) == min(final["views"], 8)
    for v in info["views"]:
        photo, render = (iio.imread(base64.b64decode(v[k])) for k in ("photo", "render"))
        assert photo.shape == render.shape and max(photo.shape[:2]) <= 256
    ref = iio.imread(run / "validate" / "val_000000_ref.png")[..., :3]
    photo = iio.imread(base64.b64decode(info["views"][0]["photo"]))
    if ref.shape == photo.shape:  # small views travel unchanged
        assert np.array_equal(ref, photo)
    copy = tmp_path / "run"
    sh.copytree(run, copy)
    (copy / "validate" / "metrics.json").write_text("{not json")
    (copy / "validate" / "val_000000_opt.png").write_bytes(b"damaged")
    info = run_info(copy)
    assert "final" not in info and info["views"] == [] and "pass1" in info
    page = write_viewer(copy, tmp_path / "v.html").read_text()
    assert "</script>" not in page.split("const INFO = ")[1].split(";\n")[0]


@pytest.mark.extras
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (.ci/run installs it)")
def test_viewer_panel_buttons_background_wireframe_and_normals(tiny_run, tmp_path):  # noqa: F811
    """save PNG gives the picture on screen; copy link gives the URL of the view; the panel
    shows the run's metrics, texture sizes and photo / render / difference; the
    background toggle, the depth-tested wireframe over the shaded mesh and object-space
    normals (which turn with the camera, unlike view-space ones) are drawn."""
    import json

    import imageio.v3 as iio

    run, _ = tiny_run
    page = write_viewer(run, tmp_path / "viewer.html")
    dom = _dom(page, "channel=normals&bg=grey&check&click=save")
    assert 'data-hash="channel=normals&exposure=0.0&bg=grey&cam=' in dom
    png = dom.split('data-png="data:image/png;base64,')[1].split('"')[0]
    saved = iio.imread(base64.b64decode(png))
    import re

    w, h = re.search(r"<canvas [^>]*width: (\d+)px; height: (\d+)px", dom).groups()
    assert saved.shape[:2] == (int(h), int(w)) and saved[..., :3].std() > 5  # the drawn view
    m = json.loads((run / "validate" / "metrics.json").read_text())
    assert f"PSNR {m['psnr']:.2f} dB, SSIM {m['ssim']:.4f} ({m['views']} views)" in dom
    res = json.loads((run / "config.json").read_text())["texture_res"]
    assert f"base colour {res[1]}x{res[0]}" in dom
    assert "difference x4, PSNR" in dom and 'data-view="0"' in dom  # the diff was computed
    dom = _dom(page, "check&click=copy")
    copied = dom.split('data-copied="')[1].split('"')[0]
    assert copied.endswith("#" + dom.split('data-hash="')[1].split('"')[0])
    assert "link copied: " in dom or "copy this link: " + copied in dom

    def shot(channel, extra=""):
        return _shot(page, channel, tmp_path / f"{channel}{len(extra)}.png", extra=extra)

    shaded, grey = shot("shaded"), shot("shaded", "&bg=grey")
    assert np.allclose(grey[150, 5], 64 / 255, atol=0.02)  # neutral grey behind the mesh
    assert np.abs(shaded[150, 5] - grey[150, 5]).max() > 0.1  # the environment
    # wireframe over the shaded mesh: the same picture except at the (visible) edges
    wire = shot("wireframe")
    d = np.abs(wire[BELOW_UI] - shaded[BELOW_UI]).max(-1)
    assert np.median(d) < 0.01 and 0.005 < (d > 0.1).mean() < 0.4, (np.median(d), (d > 0.1).mean())
    # seen from the opposite side, object-space normals change colour, view-space do not
    cam = dom.split('data-hash="')[1].split('"')[0].split("cam=")[1]
    p = [float(x) for x in cam.split(",")]
    back = f"&cam={2 * p[3] - p[0]},{p[1]},{2 * p[5] - p[2]},{p[3]},{p[4]},{p[5]}"

    def mean_normal(img):
        reg = img[115:200, :, :3]
        return reg[(np.abs(reg - SLATE) > 0.03).any(-1)].mean(0)

    obj = mean_normal(shot("normals")) - mean_normal(shot("normals", back))
    view = mean_normal(shot("normals_view")) - mean_normal(shot("normals_view", back))
    assert abs(obj[2]) > 0.2 and abs(view[2]) < 0.1, (obj, view)


@pytest.mark.extras
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (.ci/run installs it)")
def test_a_page_over_10_mb_draws_in_a_scripted_screenshot(tiny_run, tmp_path):  # noqa: F811
    """A run with three 1024^2 textures of noise (they do not compress) gives a page over
    10 MB; a scripted screenshot under a virtual-time budget shows it drawn (green flag),
    and the panel names the texture sizes."""
    import imageio.v3 as iio

    run, _ = tiny_run
    big = tmp_path / "big"
    shutil.copytree(run, big)
    (big / "mesh" / "mesh.glb").unlink()  # the page converts the OBJ with its textures
    rng = np.random.default_rng(0)
    for name in ("kd", "ks", "n"):
        noise = rng.integers(0, 256, (1024, 1024, 3), dtype=np.uint8)
        iio.imwrite(big / "mesh" / f"texture_{name}.png", noise)
    page = write_viewer(big, tmp_path / "big.html")
    assert page.stat().st_size > 10 * 2**20
    img = _shot(page, "shaded", tmp_path / "big.png")
    assert np.allclose(img[-4, -4], [0, 200 / 255, 0], atol=0.02), img[-4, -4]
    assert img[BELOW_UI].std() > 0.02
    assert "base colour 1024x1024" in _dom(page, "check")


def _camera_folder(folder, n=6):
    """A NeRF-synthetic folder of ``n`` cameras on a circle (radius 4, 1 up) looking at
    the origin, with 16x16 images (only the cameras matter here)."""
    import json
    import math

    from nvdrec.io import write_image

    (folder / "train").mkdir(parents=True)
    frames = []
    for i in range(n):
        a = 2 * math.pi * i / n
        eye = np.array([4 * math.cos(a), 4 * math.sin(a), 1.0])  # Blender world: +z up
        back = eye / np.linalg.norm(eye)  # the camera looks down its -z axis
        right = np.cross([0.0, 0.0, 1.0], back)
        right /= np.linalg.norm(right)
        c2w = np.eye(4)
        c2w[:3, 0], c2w[:3, 1], c2w[:3, 2], c2w[:3, 3] = right, np.cross(back, right), back, eye
        write_image(folder / "train" / f"r_{i}.png", np.full((16, 16, 4), 0.5, np.float32))
        frames.append({"file_path": f"./train/r_{i}", "transform_matrix": c2w.tolist()})
    doc = {"camera_angle_x": 0.69, "frames": frames}
    (folder / "transforms_train.json").write_text(json.dumps(doc))
    return folder


def test_camera_frusta_of_a_run_on_an_image_folder(tmp_path):
    """The frusta are the training cameras in the mesh's (training) coordinates: each
    starts at a camera centre, its image plane lies 15% of the median camera distance
    along the viewing direction and spans the field of view; a run without a dataset
    folder has none."""
    import json

    import torch

    from nvdrec.data.nerf import NeRFDataset
    from nvdrec.viewer import camera_frusta

    folder = _camera_folder(tmp_path / "data")
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"ref_mesh": str(folder)}))
    pts = np.array(camera_frusta(run)).reshape(6, 16, 3)  # 8 segments per camera
    ds = NeRFDataset(folder, "train")
    c2w = torch.linalg.inv(ds.mv.double()).numpy()
    centre, fwd = c2w[:, :3, 3], -c2w[:, :3, 2]
    assert np.allclose(pts[:, 0], centre, atol=1e-4)
    depth = 0.15 * np.median(np.linalg.norm(centre, axis=1))
    corners = pts[:, 1::4]  # the 4 corners: each segment from the centre ends at one
    assert np.allclose(corners.mean(1), centre + depth * fwd, atol=1e-3)
    half_x = np.tan(0.69 / 2) * depth  # camera_angle_x of the folder
    width = np.linalg.norm(corners[:, 1] - corners[:, 0], axis=-1)
    assert np.allclose(width, 2 * half_x, rtol=1e-3)
    (run / "config.json").write_text(json.dumps({"ref_mesh": "some/mesh.obj"}))
    assert camera_frusta(run) is None
    (run / "config.json").write_text("{damaged")
    assert camera_frusta(run) is None


@pytest.mark.extras
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (.ci/run installs it)")
def test_viewer_draws_the_training_cameras(tiny_run, tmp_path):  # noqa: F811
    """With a dataset folder behind the run, "cameras" draws its frusta; the hash keeps
    the toggle (cams=1), a bad value is named in the note."""
    import json

    run, _ = tiny_run
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    cfg = json.loads((copy / "config.json").read_text())
    cfg["ref_mesh"] = str(_camera_folder(tmp_path / "data"))
    (copy / "config.json").write_text(json.dumps(cfg))
    page = write_viewer(copy, tmp_path / "viewer.html")
    far = "&cam=6,5,9,0,0,0"  # far enough to see the cameras around the object
    on = _shot(page, "shaded", tmp_path / "on.png", extra="&cams=1" + far)
    off = _shot(page, "shaded", tmp_path / "off.png", extra="&cams=0" + far)
    blue = (on[..., 2] > on[..., 0] + 0.3) & (on[..., 2] > 0.6)  # the frusta's colour
    assert blue[BELOW_UI].sum() > 20 and not ((off[..., 2] > off[..., 0] + 0.3)[BELOW_UI]).any()
    dom = _dom(page, "cams=1" + far)
    assert "&cams=1&cam=6,5,9,0,0,0" in dom and "6 training views" in dom
    dom = _dom(page, "cams=yes")
    assert "cams=yes (0 or 1)" in dom and "&cams=0&cam=" in dom


def _serving(page, port, **kw):
    """Start ``serve`` in a thread; returns (thread, box with the server as "h")."""
    import threading

    from nvdrec.viewer import serve

    box = {}
    t = threading.Thread(
        target=serve,
        args=(page, port),
        kwargs={"ready": lambda h: box.update(h=h), **kw},
        daemon=True,
    )
    t.start()
    for _ in range(100):
        if "h" in box:
            break
        time.sleep(0.05)
    return t, box


def _get(port, path):
    import http.client

    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request("GET", path, headers={"Host": f"127.0.0.1:{port}"})
    r = c.getresponse()
    return r.status, r.read()


def _live_run(finished, tmp_path):
    """A run folder as it looks in pass 1: its config and one preview image, no mesh."""
    run, _ = finished
    live = tmp_path / "live"
    live.mkdir()
    shutil.copy(run / "config.json", live / "config.json")
    shutil.copy(run / "img_dmtet_pass1_000000.png", live / "img_dmtet_pass1_000100.png")
    return live


def test_live_server_follows_a_running_run(tiny_run, tmp_path):  # noqa: F811
    """nvdrec view RUN --serve on a run in pass 1: /live.json names the stage and the
    newest preview; pass 1's mesh (OBJ) is served as GLB once written, then the final
    GLB; the stamp changes with each; other paths stay unserved."""
    import json

    run, _ = tiny_run
    live = _live_run(tiny_run, tmp_path)
    page = write_viewer(live, tmp_path / "live.html", live=True)  # no mesh yet: allowed
    port = _free_port()
    t, box = _serving(page, port, run=live)
    try:
        status, body = _get(port, "/live.json")
        state = json.loads(body)
        assert status == 200 and state["stage"] == "pass 1, iteration 100"
        assert state["mesh"] is None and state["preview"] == "img_dmtet_pass1_000100.png"
        assert _get(port, "/live/mesh.glb")[0] == 404
        preview = (live / "img_dmtet_pass1_000100.png").read_bytes()
        assert _get(port, "/live/preview.png") == (200, preview)
        shutil.copytree(run / "dmtet_mesh", live / "dmtet_mesh")  # pass 1 ends
        later = json.loads(_get(port, "/live.json")[1])
        assert later["mesh"] == "dmtet_mesh/mesh.obj" and later["stamp"] != state["stamp"]
        status, glb = _get(port, "/live/mesh.glb")
        assert status == 200 and glb[:4] == b"glTF"
        assert _get(port, "/live/probe.hdr") == (
            200,
            (run / "dmtet_mesh" / "probe.hdr").read_bytes(),
        )
        shutil.copytree(run / "mesh", live / "mesh")  # the run ends
        final = json.loads(_get(port, "/live.json")[1])
        assert final["stage"] == "finished" and final["mesh"] == "mesh/mesh.glb"
        assert _get(port, "/live/mesh.glb") == (200, (run / "mesh" / "mesh.glb").read_bytes())
        for path in ("/live/config.json", "/live/../config.json", "/live/", "/dmtet_mesh/mesh.obj"):
            assert _get(port, path)[0] == 404, path
    finally:
        box["h"].shutdown()
        t.join(timeout=5)


@pytest.mark.extras
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (.ci/run installs it)")
def test_live_page_shows_the_stage_preview_and_then_the_mesh(tiny_run, tmp_path):  # noqa: F811
    """The served page of a run in pass 1 says the stage and shows the newest preview;
    once pass 1's mesh is written, the page draws it."""
    run, _ = tiny_run
    live = _live_run(tiny_run, tmp_path)
    page = write_viewer(live, tmp_path / "live.html", live=True)
    port = _free_port()
    t, box = _serving(page, port, run=live)
    url = f"http://127.0.0.1:{port}/live.html"

    def dom():
        return _dom_url(url + "#check")

    try:
        text = dom()
        assert "live: pass 1, iteration 100" in text and "no mesh yet" in text
        assert 'id="live-preview"' in text and 'src="live/preview.png?' in text
        shutil.copytree(run / "dmtet_mesh", live / "dmtet_mesh")
        text = dom()
        status = text.split('<div id="status"')[1].split("</div>")[0]
        # the status text is the live line or, once the mesh is drawn, "ready: ..."; the
        # mesh the server offers stays in data-mesh
        assert 'data-ready="1"' in status and 'data-mesh="dmtet_mesh/mesh.obj"' in status, status
        tris = text.split("triangles</td><td>")[1].split("<")[0]
        assert int(tris.replace(",", "")) > 0
    finally:
        box["h"].shutdown()
        t.join(timeout=5)


def test_live_state_shows_the_surface_of_a_pass1_checkpoint(tmp_path):
    """During pass 1 (no mesh written yet) the live server extracts the surface of the
    newest pass-1 checkpoint: an untextured GLB of that surface (here a sphere SDF of
    radius 0.6), re-made when a newer checkpoint appears."""
    import json

    import pygltflib
    import torch

    import nvdrec
    from nvdrec.geometry import DMTetGeometry
    from nvdrec.viewer import _live_files, live_state

    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    nvdrec.load_config({"dmtet_grid": 16, "mesh_scale": 2.1, "seed": 0}).save(run / "config.json")
    assert live_state(run)["mesh"] is None

    def checkpoint(it, radius):
        geo = DMTetGeometry(16, 2.1)
        sdf = geo.verts.norm(dim=-1) - radius
        state = {"params": {"geo.sdf": sdf, "geo.deform": geo.deform.detach()}, "version": 1}
        torch.save(state, run / "checkpoints" / f"dmtet_pass1_{it:06d}.pt")

    def served_extent(state):
        files = _live_files(run, state, cache)
        data = files["/live/mesh.glb"]
        assert data[:4] == b"glTF" and "/live/probe.hdr" not in files
        glb = pygltflib.GLTF2.load_from_bytes(data)
        pos = glb.accessors[glb.meshes[0].primitives[0].attributes.POSITION]
        assert glb.meshes[0].primitives[0].attributes.TEXCOORD_0 is None
        return max(abs(v) for v in pos.max + pos.min)

    cache: dict = {}
    checkpoint(2, 0.6)
    state = live_state(run)
    assert state["mesh"] == "checkpoints/dmtet_pass1_000002.pt" and not state["light"]
    assert abs(served_extent(state) - 0.6) < 0.06
    checkpoint(4, 0.8)  # training goes on: the newer checkpoint's surface replaces it
    later = live_state(run)
    assert later["mesh"] == "checkpoints/dmtet_pass1_000004.pt" and later["stamp"] != state["stamp"]
    assert abs(served_extent(later) - 0.8) < 0.06
    json.dumps(later)  # what /live.json sends
