"""What a live view costs the training it watches: the same run twice, once alone and once
watched by `nvdrec view RUN --serve` (its own process, as a user starts it) and a client
polling it as the page does (``/live.json``, then the mesh and preview it names) every
``--poll`` seconds (the page: 2). Prints the median ms per iteration of each pass both ways,
runs interleaved.

    python bench/live_view.py [--config CFG] [--iter 60] [--poll 2] [--key value ...]

Without ``--config`` the built-in demo scene at a small size is used (runs on a CPU).
A pass-1 checkpoint every ``checkpoint_interval`` iterations gives the server a surface
to extract during pass 1, which is the server's largest piece of work.
"""

import argparse
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import nvdrec  # noqa: E402
from nvdrec.cli import _overrides  # noqa: E402
from nvdrec.train.trainer import Trainer  # noqa: E402

SMALL = {
    "train_res": [96, 96],
    "texture_res": [128, 128],
    "dmtet_grid": 32,
    "light_res": 32,
    "hash_log2_size": 14,
    "demo_grid": 48,
    "save_interval": 10,
    "checkpoint_interval": 10,
    "validate_views": 4,
    "progress": "none",
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _poll(port: int, every: float, stop: threading.Event, counts: dict) -> None:
    base = f"http://127.0.0.1:{port}"
    while not stop.is_set():
        try:
            state = json.loads(urllib.request.urlopen(base + "/live.json", timeout=30).read())
            counts["polls"] += 1
            for key, path in (("mesh", "/live/mesh.glb"), ("preview", "/live/preview.png")):
                if state.get(key):
                    urllib.request.urlopen(base + path, timeout=60).read()
                    counts[key] += 1
        except OSError as e:  # the server is not up yet
            counts["errors"] = counts.get("errors", 0) + 1
            counts["last_error"] = repr(e)
        stop.wait(every)


def one_run(cfg: dict, out: Path, live: bool, poll: float) -> dict:
    counts = {"polls": 0, "mesh": 0, "preview": 0}
    stop = threading.Event()
    server = poller = None
    trainer = Trainer(nvdrec.load_config({**cfg, "out_dir": str(out)}))  # claims the folder
    if live:
        trainer.cfg.save(out / "config.json")  # what the live page reads first
        port = _free_port()
        cmd = [sys.executable, "-m", "nvdrec", "view", str(out), "--serve", "--port", str(port)]
        server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 120
        while time.time() < deadline:  # the server is up before the training starts
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/live.json", timeout=5).read()
                break
            except OSError:
                time.sleep(0.5)
        poller = threading.Thread(target=_poll, args=(port, poll, stop, counts))
        poller.start()
    result = trainer.fit()
    stop.set()
    if live:
        poller.join(timeout=60)
        server.terminate()
        server.wait(timeout=30)
    timing = result["timing"]
    return {
        "pass1_ms": timing["dmtet_pass1"]["ms_per_iter_median"],
        "pass2_ms": timing["mesh_pass"]["ms_per_iter_median"],
        "seconds": result["seconds"],
        **counts,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default=None)
    ap.add_argument("--iter", type=int, default=60)
    ap.add_argument("--poll", type=float, default=2.0)
    ap.add_argument("--repeats", type=int, default=2)
    args, rest = ap.parse_known_args()
    base = dict(SMALL)
    if args.config:
        base = json.loads(Path(args.config).read_text())
    cfg = {**base, "iter": args.iter, **_overrides(rest)}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):  # interleaved: alone, live, alone, live, ...
            for live in (False, True):
                out = Path(tmp) / f"run_{r}_{'live' if live else 'alone'}"
                rows.append((live, one_run(cfg, out, live, args.poll)))
    for live, row in rows:
        if live and row.get("errors"):
            print(f"poll errors: {row['errors']} (last: {row['last_error']})")
    print("run | pass 1 ms/it | pass 2 ms/it | seconds | polls | meshes | previews")
    for live, row in rows:
        print(
            f"{'live ' if live else 'alone'} | {row['pass1_ms']:.1f} | {row['pass2_ms']:.1f} | "
            f"{row['seconds']:.1f} | {row['polls']} | {row['mesh']} | {row['preview']}"
        )
    for key in ("pass1_ms", "pass2_ms"):
        alone = statistics.median(r[key] for live, r in rows if not live)
        watched = statistics.median(r[key] for live, r in rows if live)
        print(f"{key}: alone {alone:.1f}, live {watched:.1f} ({100 * (watched / alone - 1):+.1f}%)")


if __name__ == "__main__":
    main()
