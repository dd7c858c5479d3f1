"""Helper process for tests/test_build_safety.py: build the tiny extension and use it."""

import sys
from pathlib import Path

import torch

from nvdrec.native.build import build_locked

root = Path(sys.argv[1])
src = Path(__file__).parent / "csrc" / "tiny_ext.cpp"
mod = build_locked(
    "nvdrec_tiny_ext",
    [src],
    root / "tiny",
    {"test": True},
    extra_ldflags=["-Wl,--exclude-libs,ALL"],
)
assert float(mod.add_one(torch.zeros(1))) == 1.0
try:
    mod.fail(2.5)
except RuntimeError as e:
    assert "value 2.5 is not negative" in str(e)
print("OK", flush=True)
