"""bench/pass2_ab.py runs end to end on a tiny scene and reports what it promises."""

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
