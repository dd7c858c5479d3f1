"""Synthetic training data: a reference mesh rendered under an HDR light, on the fly."""

from __future__ import annotations

import copy
import math

import torch

from ..render import EnvironmentLight, RasterContext, render_mesh
from ..structures import camera as cam
from ..structures.mesh import Mesh, auto_normals, compute_tangents
from .base import Dataset

__all__ = ["SyntheticDataset", "write_nerf_folder"]


class SyntheticDataset(Dataset):
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

    def for_validation(self, resolution) -> SyntheticDataset:
        """The same scene rendered at another resolution [H, W] (shares mesh and light)."""
        if resolution is None or tuple(resolution) == self.resolution:
            return self
        other = copy.copy(self)
        other.resolution = (int(resolution[0]), int(resolution[1]))
        return other

    @property
    def reference_light(self) -> EnvironmentLight:
        return self.light

    def seen_from(self, count: int, generator: torch.Generator) -> torch.Tensor:
        """``count`` random cameras [count, 4, 4] (mvp) around the reference."""
        views = cam.random_views(
            count, generator, radius=self.radius, resolution=self.resolution, near_far=self.near_far
        )
        return views.mvp

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


def write_nerf_folder(
    dataset: SyntheticDataset,
    folder,
    n_train: int = 100,
    n_test: int = 20,
    radius: float = 4.0,
    fov_x: float = 0.6911112070083618,
    seed: int = 0,
    batch: int = 8,
) -> None:
    """Render ``dataset``'s mesh into a NeRF-synthetic folder: ``transforms_train.json`` /
    ``transforms_test.json`` (Blender world, +Z up; OpenGL camera axes) and RGBA PNGs
    (sRGB, straight alpha, transparent background) at the dataset's resolution.

    Training cameras look at the origin from uniformly random directions of the upper
    hemisphere (height 0.1..0.95 of ``radius``), as the Blender scenes of the NeRF paper;
    test cameras orbit at 30 degrees elevation. ``fov_x`` defaults to the scenes' value.
    Used by the benchmarks and examples to make image-folder data from a reference mesh.
    """
    import json
    from pathlib import Path

    from ..io.image import linear_to_srgb, write_image

    folder = Path(folder)
    h, w = dataset.resolution
    fovy = 2 * math.atan(math.tan(fov_x / 2) * h / w)
    proj = cam.perspective(fovy, w / h, *dataset.near_far)
    from_y_up = torch.linalg.inv(cam.blender_to_opengl_world().double())
    g = torch.Generator().manual_seed(seed)
    for split, n in (("train", n_train), ("test", n_test)):
        (folder / split).mkdir(parents=True, exist_ok=True)
        eyes = []
        for i in range(n):
            if split == "train":
                y = 0.1 + 0.85 * float(torch.rand((), generator=g))
                az = 2 * math.pi * float(torch.rand((), generator=g))
            else:
                y, az = math.sin(math.radians(30)), 2 * math.pi * i / max(n, 1)
            r = math.sqrt(max(1 - y * y, 0.0))
            eyes.append((radius * r * math.sin(az), radius * y, radius * r * math.cos(az)))
        mv = torch.stack([cam.look_at(e) for e in eyes])
        frames = []
        for a in range(0, n, batch):
            views = cam.Cameras.from_mv(mv[a : a + batch], proj, (h, w)).to(dataset.device)
            img = dataset.render(views).cpu()  # premultiplied linear RGB, alpha
            alpha = img[..., 3:4]
            rgb = torch.where(alpha > 0, img[..., :3] / alpha.clamp(min=1e-8), img[..., :3])
            for k in range(img.shape[0]):
                name = f"{split}/r_{a + k}"
                out = torch.cat([linear_to_srgb(rgb[k].clamp(0, 1)), alpha[k]], -1)
                write_image(folder / f"{name}.png", out)
                c2w = from_y_up @ torch.linalg.inv(views.mv[k].double().cpu())
                frames.append({"file_path": f"./{name}", "transform_matrix": c2w.tolist()})
        doc = {"camera_angle_x": fov_x, "frames": frames}
        (folder / f"transforms_{split}.json").write_text(json.dumps(doc, indent=1))
