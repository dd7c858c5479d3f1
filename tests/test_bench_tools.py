"""The scripts in bench/ run end to end on tiny inputs and report what they promise."""

import json
import subprocess
import sys
from pathlib import Path

from _helpers import TINY

ROOT = Path(__file__).resolve().parents[1]


def test_pass2_ab_on_a_tiny_scene(tmp_path):
    cfg = {**TINY, "iter": 3, "out_dir": str(tmp_path / "ab")}
    f = tmp_path / "tiny.json"
    f.write_text(json.dumps(cfg))
    out = tmp_path / "rows.json"
    r = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "pass2_ab.py"), str(f), "--json", str(out)]
        + ["--variant", "smooth", '{"pos_smoothing": 19}']
        + ["--variant", "plain", '{"pos_smoothing": 0}'],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    rows = json.loads(out.read_text())["rows"]
    assert [row["variant"] for row in rows] == ["pass 1", "smooth", "plain"]
    assert 0.0 <= rows[0]["hidden_pct"] <= 100.0 and rows[0]["interior"] >= 0
    for row in rows[1:]:
        assert 0.0 <= row["views_worse"] <= 1.0 and row["psnr"] > 5.0
    assert "pass-1 extraction with passage 1" in r.stdout


def test_profile_train_names_the_parts_of_an_iteration(tmp_path):
    """bench/profile_train.py on the built-in demo scene: both passes profiled after the
    warm-up, and the host time of each part the training loop names."""
    f = tmp_path / "tiny.json"
    f.write_text(json.dumps(TINY))
    r = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "profile_train.py"), str(f)]
        + ["--iter", "7", "--out_dir", str(tmp_path / "run")],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    for name in ("dmtet_pass1", "mesh_pass"):
        assert f"=== {name}: " in r.stdout and "iterations 6-7 profiled" in r.stdout
    parts = {}
    for line in r.stdout.splitlines():
        words = line.rsplit(None, 2)
        if len(words) == 3 and words[1].replace(".", "").isdigit():
            parts.setdefault(words[0], []).append(float(words[2]))
    # calls per iteration in each pass: the demo scene is a reference mesh, so the batch
    # renders its views too (a second rasterize, material and shade)
    for part in ("geometry", "render", "losses", "backward", "optimizer", "light filter"):
        assert parts.get(part) == [1.0, 1.0], (part, parts.get(part))
    for part in ("rasterize", "material", "shade"):
        assert parts.get(part) == [2.0, 2.0], (part, parts.get(part))
    assert parts.get("batch (a reference mesh's views are rendered)") == [1.0, 1.0]
    assert (tmp_path / "run" / "run.json").is_file()


def test_smooth_solve_bench_prints_a_row_per_size():
    r = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "smooth_solve.py"), "--device", "cpu"]
        + ["--sizes", "100", "300"],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    rows = [line.split("|")[1:-1] for line in r.stdout.splitlines() if line.startswith("| ")]
    head = ["vertices", "inverse built once", "dense solves", "conjugate gradients"]
    try:
        import cholespy  # noqa: F401

        head += ["Cholesky factor built once", "Cholesky solves"]
    except ImportError:
        assert "cholespy is not installed" in r.stdout
    assert [c.strip() for c in rows[0]] == head
    sizes = [int(row[0].replace(",", "")) for row in rows[1:]]
    assert len(sizes) == 2 and abs(sizes[0] - 100) < 30 and abs(sizes[1] - 300) < 40, sizes
    for row in rows[1:]:
        assert len(row) == len(head)
        assert row[1].strip().endswith(" s") and float(row[2]) > 0 and float(row[3]) > 0
        if len(head) == 6:
            assert row[4].strip().endswith(" s") and float(row[5]) > 0


def test_sidebyside_reads_both_systems_outputs(tmp_path):
    """bench/sidebyside.py: nvdiffrec's per-pass medians and PSNRs from its log, nvdrec's
    from run.json and metrics.json, the memory peaks and the ratios."""
    log = ["Config / Flags:", "iter 30"]
    log += [
        f"iter={i:5d}, img_loss=0.1, reg_loss=0.1, lr=0.03, time={t} ms, rem=1 s"
        for i, t in [(10, 200.0), (20, 180.0), (30, 190.0)]
    ]
    log += [
        "Running validation",
        "MSE,      PSNR",
        "0.001, 30.000",
        "Base mesh has 1234 triangles and 600 vertices.",
    ]
    log += [
        f"iter={i:5d}, img_loss=0.1, reg_loss=0.1, lr=0.03, time={t} ms, rem=1 s"
        for i, t in [(10, 100.0), (20, 120.0)]
    ]
    log += ["Running validation", "MSE,      PSNR", "0.0008, 31.500", "Done exporting mesh"]
    (tmp_path / "anchor.log").write_text("\n".join(log) + "\n")
    run = tmp_path / "run"
    for sub, psnr in (("dmtet_validate", 32.0), ("validate", 33.0)):
        (run / sub).mkdir(parents=True)
        (run / sub / "metrics.json").write_text(json.dumps({"psnr": psnr}))
    timing = {
        "dmtet_pass1": {"ms_per_iter_median": 19.0, "peak_memory_gb": 1.5},
        "mesh_pass": {"ms_per_iter_median": 22.0, "peak_memory_gb": 1.2},
    }
    (run / "run.json").write_text(json.dumps({"timing": timing, "cleanup": {"faces_out": 999}}))
    (tmp_path / "a.mem").write_text("0\n4000\n6000\n5000\n")
    (tmp_path / "o.mem").write_text("0\n2000\n3000\n")
    out = tmp_path / "cols.json"
    r = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "sidebyside.py"),
            "--anchor-log",
            str(tmp_path / "anchor.log"),
            "--ours",
            str(run),
            "--anchor-wall",
            "100",
            "--ours-wall",
            "25",
            "--anchor-mem",
            str(tmp_path / "a.mem"),
            "--ours-mem",
            str(tmp_path / "o.mem"),
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "| pass 1 ms/iter (median) | 190.0 | 19.0 | 0.10 |" in r.stdout
    assert "| pass 2 ms/iter (median) | 110.0 | 22.0 | 0.20 |" in r.stdout
    assert "| whole run s | 100.0 | 25.0 | 0.25 |" in r.stdout
    assert "| peak GPU memory MiB (nvidia-smi) | 6000 | 3000 | 0.50 |" in r.stdout
    assert "| final PSNR dB | 31.50 | 33.00 | - |" in r.stdout
    cols = json.loads(out.read_text())
    assert cols["nvdiffrec"]["psnr_pass1"] == 30.0 and cols["nvdiffrec"]["triangles"] == 1234
    assert cols["nvdrec"]["triangles"] == 999 and cols["nvdrec"]["allocated_gb"] == 1.5
