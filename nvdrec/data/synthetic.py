"""Synthetic training data: a reference mesh rendered under an HDR light, on the fly."""

from __future__ import annotations

import copy
import math

import torch

from ..render import EnvironmentLight, RasterContext, render_mesh
from ..structures import camera as cam
from ..structures.mesh import Mesh, auto_normals, compute_tangents

__all__ = ["SyntheticDataset"]


class SyntheticDataset:
    """Views of ``ref_mesh`` under ``light``, as nvdiffrec's mesh datasets make them:
    random rotations at camera distance 3 with a translation jitter of 0.25 and fovy 45
    degrees for training, nvdiffrec's validation orbit (looking down from 0.4 rad) for
    validation.

    Batches are dicts ``{mv, mvp, campos, resolution, spp, img}`` with ``img`` [B, H, W, 4]
    = (linear RGB premultiplied over black, alpha).
    """

    def __init__(
        self,
        ref_mesh: Mesh,
        light: EnvironmentLight,
        resolution,
        spp: int = 1,
        layers: int = 1,
        near_far=(0.1, 1000.0),
        device="cpu",
        backend: str = "auto",
        radius: float = 3.0,
    ) -> None:
        if ref_mesh.v_nrm is None:
            ref_mesh = auto_normals(ref_mesh)
        if ref_mesh.v_tex is not None and ref_mesh.v_tng is None:
            ref_mesh = compute_tangents(ref_mesh)
        self.mesh = ref_mesh.to(device)
        for m in self.mesh.materials or [self.mesh.material]:
            if m is not None:
                for t in (m.kd, m.ks, m.normal):
                    if t is not None:
                        t.to(device)
        self.light = light.to(device)
        self.light.build_mips()
        self.resolution = (int(resolution[0]), int(resolution[1]))
        self.spp, self.layers, self.near_far = spp, layers, near_far
        self.device = device
        self.ctx = RasterContext(backend)
        self.radius = radius

    def at_resolution(self, resolution) -> SyntheticDataset:
        """The same scene rendered at another resolution [H, W] (shares mesh and light)."""
        if resolution is None or tuple(resolution) == self.resolution:
            return self
        other = copy.copy(self)
        other.resolution = (int(resolution[0]), int(resolution[1]))
        return other

    @torch.no_grad()
    def render(self, views: cam.Cameras) -> torch.Tensor:
        out = render_mesh(
            self.ctx,
            self.mesh,
            views.mvp,
            views.campos,
            self.light,
            self.resolution,
            spp=self.spp,
            num_layers=self.layers,
        )
        return out["shaded"]

    def _batch(self, views: cam.Cameras) -> dict:
        views = views.to(self.device)
        return {
            "mv": views.mv,
            "mvp": views.mvp,
            "campos": views.campos,
            "resolution": self.resolution,
            "spp": self.spp,
            "img": self.render(views),
        }

    def train_batch(self, batch: int, generator: torch.Generator | list) -> dict:
        views = cam.random_views(
            batch,
            generator,
            radius=self.radius,
            fovy=math.radians(45),
            resolution=self.resolution,
            jitter=0.25,
            near_far=self.near_far,
        )
        return self._batch(views)

    def validation_batches(self, count: int, batch: int = 4):
        """nvdiffrec's validation protocol (:func:`~nvdrec.structures.camera.validation_views`:
        ``count`` views circling the object from 0.4 rad above), rendered at this dataset's
        resolution."""
        views = cam.validation_views(
            count,
            radius=self.radius,
            fovy=math.radians(45),
            resolution=self.resolution,
            near_far=self.near_far,
        )
        for i in range(0, count, batch):
            sl = slice(i, min(i + batch, count))
            yield self._batch(
                cam.Cameras(views.mv[sl], views.mvp[sl], views.campos[sl], views.resolution)
            )
