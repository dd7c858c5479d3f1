"""Which views are validated: nvdiffrec's protocol for each kind of dataset."""

import torch
from test_data_colmap import write_colmap
from test_data_llff import write_llff
from test_data_nerf import _scene, write_nerf

from nvdrec.data.colmap import ColmapDataset
from nvdrec.data.llff import LLFFDataset
from nvdrec.data.nerf import NeRFDataset
from nvdrec.data.synthetic import SyntheticDataset
from nvdrec.structures import camera as cam


def _views(ds, count):
    """Camera matrices [N, 4, 4] of every validation batch, in order."""
    return torch.cat([b["mv"] for b in ds.validation_batches(count)])


def test_nerf_validates_every_test_frame(tmp_path):
    write_nerf(tmp_path, n=2, split="train")
    write_nerf(tmp_path, n=7, split="test")
    test = NeRFDataset(tmp_path, "test")
    mv = _views(test, 2)  # the count of orbit views plays no part
    assert len(mv) == 7
    assert torch.equal(mv, test.mv)  # each frame once, in file order


def test_llff_validates_every_photo(tmp_path):
    write_llff(tmp_path, n=9)
    ds = LLFFDataset(tmp_path)
    mv = _views(ds, 3)
    assert len(mv) == 9 and torch.equal(mv, ds.mv)


def test_colmap_validates_every_photo(tmp_path):
    write_colmap(tmp_path, n=5)
    ds = ColmapDataset(tmp_path)
    assert len(_views(ds, 1)) == len(ds) == 5


def test_reference_mesh_uses_the_validation_orbit():
    mesh, light = _scene()
    ds = SyntheticDataset(mesh, light, (16, 16))
    mv = _views(ds, 6)
    want = cam.validation_views(6, radius=ds.radius, resolution=(16, 16)).mv
    assert len(mv) == 6
    torch.testing.assert_close(mv, want)
