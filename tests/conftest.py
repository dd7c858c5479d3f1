import os
from pathlib import Path

import pytest
import torch

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def pytest_configure(config):
    """Reduced-image caches of the tests go to a temporary folder, not ~/.cache."""
    if "NVDREC_IMAGE_CACHE" not in os.environ:
        import tempfile

        os.environ["NVDREC_IMAGE_CACHE"] = tempfile.mkdtemp(prefix="nvdrec-test-images-")


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def shared_data():
    """../shared/data of a development checkout; tests using it skip elsewhere (CI)."""
    root = Path(os.environ.get("NVDREC_SHARED_DATA", SHARED_DATA))
    if not root.is_dir():
        pytest.skip(f"shared data not found at {root}")
    return root


def devices():
    """Parametrisation list: cpu always, cuda with the marker."""
    return ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)]
