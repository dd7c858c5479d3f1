"""Shared bits of the examples: the repository root, the development data, tiny mode."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"  # development data beside the repository

# --tiny: a few iterations at a tiny size (what tests/test_examples.py runs on the CPU)
TINY = {
    "iter": 4,
    "batch": 1,
    "train_res": [48, 48],
    "texture_res": [64, 64],
    "dmtet_grid": 20,
    "light_res": 16,
    "hash_log2_size": 10,
    "save_interval": 0,
    "validate_views": 2,
    "checkpoint_interval": 0,
}
