"""What the trainer shows and writes besides checkpoints: preview images, exports of the
mesh and light, and the validation metrics (nvdiffrec's ``validate/`` layout)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from ..io.image import linear_to_srgb, write_image
from ..io.obj import save_mesh
from ..render import EnvironmentLight, render_mesh
from ..structures.mesh import Mesh
from .metrics import image_metrics

__all__ = ["Reporter"]


class Reporter:
    """Renders and writes a run's results: training renders, previews, exports and
    validation.

    Args:
        cfg: the run's Config (after framing: its final ``mesh_scale``).
        out: the run folder.
        device: where rendering runs.
        ctx: the RasterContext.
        val_dataset: the views validation renders (a :class:`nvdrec.data.Dataset`).
        shift: [3] the framing's centre (added back to exported positions).
        warn: called with one line for a problem the run survives.
    """

    def __init__(self, cfg, out: Path, device, ctx, val_dataset, shift: torch.Tensor, warn):
        self.cfg, self.out, self.device, self.ctx = cfg, Path(out), device, ctx
        self.val_dataset, self.shift, self.warn = val_dataset, shift, warn
        self._write_warned: set = set()
        self._relight_lights: dict = {}

    def orient_light(self, lgt: EnvironmentLight, batch: dict, count: int | None = None) -> None:
        """``camera_space_light``: the light turns with the camera (a light fixed to the
        capture rig), so its lookups are rotated by the views' world-to-camera matrices
        (the first ``count`` views); otherwise it stays in world space."""
        if self.cfg.camera_space_light:
            lgt.xfm(batch["mv"][:count].to(self.device))
        else:
            lgt.xfm(None)

    def render(
        self, mesh: Mesh, batch: dict, lgt: EnvironmentLight, bg, material=None, jitter=None
    ) -> dict:
        """render_mesh of a batch of views with the config's sampling settings (and the
        light oriented for ``camera_space_light``); ``jitter``: the kd-smoothness noise."""
        cfg = self.cfg
        self.orient_light(lgt, batch)
        return render_mesh(
            self.ctx,
            mesh,
            batch["mvp"],
            batch["campos"],
            lgt,
            tuple(batch["resolution"]),
            spp=cfg.spp,
            num_layers=cfg.layers,
            background=bg,
            material=material,
            min_roughness=cfg.min_roughness,
            kd_jitter=jitter,
        )

    def try_write(self, what: str, fn, *args) -> bool:
        """``fn(*args)``; an OSError (disk full, folder gone) becomes one warning per
        ``what`` and False: a picture or report that cannot be written does not end the run."""
        try:
            fn(*args)
            return True
        except OSError as e:
            if what not in self._write_warned:
                self._write_warned.add(what)
                self.warn(f"{what} not written ({e.strerror or e}); the run goes on")
            return False

    def save_preview(self, name: str, buffers, target, bg, extras=None) -> None:
        """[optimised | reference | the config's ``display`` extras] of the first view."""
        ref_rgb = target[..., :3] + bg * (1 - target[..., 3:4])
        tiles = [
            linear_to_srgb(t.detach().clamp(0, 1))
            for t in (buffers["shaded"][0, ..., :3], ref_rgb[0])
        ]
        tiles += [t.detach().clamp(0, 1) for t in (extras() if extras else [])]
        self.try_write("preview image", write_image, self.out / name, torch.cat(tiles, 1).cpu())

    @torch.no_grad()
    def display_extras(self, mesh, material, lgt, batch, h, w) -> list:
        """The ``display`` entries as [H, W, 3] images in [0, 1] (already display-encoded):
        {"bsdf": "kd"/"ks"/"normal"/"tangent"/...} renders that debug view of the first
        training view, {"latlong": true} the light as a lat-long image (sRGB, scaled to the
        view height), {"relight": "env.hdr"} the current surface and material under that
        lat-long HDR map instead of the learned light."""
        out = []
        for item in self.cfg.display or []:
            if item.get("latlong"):
                ll = lgt.latlong(max(h // 2, 1))  # [h/2, h, 3]
                ll = torch.nn.functional.interpolate(
                    ll.permute(2, 0, 1)[None], size=(h, w), mode="bilinear", align_corners=False
                )[0].permute(1, 2, 0)
                out.append(linear_to_srgb(ll.clamp(0, 1)).to(self.device))
            if item.get("relight"):  # the current surface under another light
                lights = self._relight_lights
                path = item["relight"]
                if path not in lights:
                    lights[path] = EnvironmentLight.load(
                        path, res=min(self.cfg.light_res, 256), trainable=False
                    ).to(self.device)
                    lights[path].build_mips()
                lights[path].xfm(None)  # the new light stays in world space
                buf = render_mesh(
                    self.ctx,
                    mesh,
                    batch["mvp"][:1],
                    batch["campos"][:1],
                    lights[path],
                    (h, w),
                    background=torch.zeros(1, h, w, 3, device=self.device),
                    material=material,
                    min_roughness=self.cfg.min_roughness,
                )["shaded"][0, ..., :3]
                out.append(linear_to_srgb(buf.clamp(0, 1)))
            if "bsdf" in item:
                mode = item["bsdf"]
                self.orient_light(lgt, batch, 1)
                buf = render_mesh(
                    self.ctx,
                    mesh,
                    batch["mvp"][:1],
                    batch["campos"][:1],
                    lgt,
                    (h, w),
                    background=torch.zeros(1, h, w, 3, device=self.device),
                    material=material,
                    bsdf=mode,
                    min_roughness=self.cfg.min_roughness,
                )["shaded"][0, ..., :3]
                # colours (kd and shaded views) are shown sRGB-encoded, data (ks, normals) raw
                out.append(buf if mode in ("ks", "normal", "tangent") else linear_to_srgb(buf))
        return out

    def export(self, mesh: Mesh, lgt: EnvironmentLight, folder: Path, glb: bool) -> dict:
        if bool(self.shift.abs().sum() > 0):  # back into the input's frame (auto framing)
            mesh = mesh.with_(v_pos=mesh.v_pos + self.shift.to(mesh.v_pos.device))
        paths = {"obj": str(save_mesh(mesh, folder))}
        lgt.save(folder / "probe.hdr")
        paths["probe"] = str(folder / "probe.hdr")
        if glb and "glb" in self.cfg.export_formats:
            from ..io.gltf import save_glb

            paths["glb"] = str(save_glb(mesh, folder / "mesh.glb"))
        if glb and "usd" in self.cfg.export_formats:
            from ..io.usd import save_usd

            paths["usd"] = str(save_usd(mesh, folder / "mesh.usdz"))
        return paths

    @torch.no_grad()
    def validate(
        self, mesh: Mesh, lgt: EnvironmentLight, material=None, folder: str = "validate"
    ) -> dict:
        """Render the validation views, write ``OUT/<folder>/metrics.txt`` (nvdiffrec's
        layout plus SSIM), ``metrics.json`` and the first views' images; return the means.
        ``material`` overrides the mesh's (the neural material after pass 1)."""
        cfg = self.cfg
        folder = self.out / folder
        what = f"validation output in {folder}"
        self.try_write(what, folder.mkdir, 0o777, True, True)
        lgt.build_mips()
        rows, k = [], 0
        white = cfg.background == "white"
        from .metrics import lpips_metric

        lpips_fn = lpips_metric(self.device)
        for batch in self.val_dataset.validation_batches(cfg.validate_views):
            h, w = batch["resolution"]
            b = batch["mvp"].shape[0]
            bg = torch.full((b, h, w, 3), 1.0 if white else 0.0, device=self.device)
            out = self.render(mesh, batch, lgt, bg, material)
            ref = batch["img"][..., :3] + bg * (1 - batch["img"][..., 3:4])
            for i in range(b):
                o = linear_to_srgb(out["shaded"][i, ..., :3].clamp(0, 1))
                r = linear_to_srgb(ref[i].clamp(0, 1))
                rows.append(image_metrics(o, r))
                if lpips_fn is not None:
                    rows[-1]["lpips"] = lpips_fn(o, r)
                if k < 8:
                    self.try_write(what, write_image, folder / f"val_{k:06d}_opt.png", o.cpu())
                    self.try_write(what, write_image, folder / f"val_{k:06d}_ref.png", r.cpu())
                k += 1
        mse = [r["mse"] for r in rows]
        psnr = [r["psnr"] for r in rows]
        ssim = [r["ssim"] for r in rows]
        lines = ["ID, MSE, PSNR, SSIM"] + [
            f"{i}, {a:.8f}, {b:.8f}, {c:.6f}" for i, (a, b, c) in enumerate(zip(mse, psnr, ssim))
        ]
        lines.append(f"AVERAGES: {np.mean(mse):.8f}, {np.mean(psnr):.4f}, {np.mean(ssim):.6f}")
        from ..io.files import atomic_write_text

        self.try_write(what, atomic_write_text, folder / "metrics.txt", "\n".join(lines) + "\n")
        metrics = {
            "views": len(rows),
            "mse": float(np.mean(mse)),
            "psnr": float(np.mean(psnr)),
            "ssim": float(np.mean(ssim)),
        }
        if lpips_fn is not None:
            metrics["lpips"] = float(np.mean([r["lpips"] for r in rows]))
        text = json.dumps(metrics, indent=2) + "\n"
        self.try_write(what, atomic_write_text, folder / "metrics.json", text)
        return metrics

    def write_run_json(self, result: dict, losses: dict, cleanup: dict, coverage: dict) -> None:
        """``run.json``: timing (per pass), the stages outside the iterations (seconds),
        seconds, world size, batch per process, the early stop,
        the losses per iteration, the clean-up and each pass's coverage (rendered /
        reference alpha over its last iterations: ``coverage`` holds the sums)."""
        from ..io.files import atomic_write_text

        run = {k: result[k] for k in ("timing", "stages", "seconds", "world_size")}
        run["batch_per_process"] = self.cfg.batch
        if result.get("stopped_early"):
            run["stopped_early"] = result["stopped_early"]
        run["losses"] = losses
        run["cleanup"] = cleanup
        run["coverage"] = {k: (o / r if r > 0 else None) for k, (o, r) in coverage.items()}
        text = json.dumps(run, indent=2) + "\n"
        self.try_write(f"{self.out / 'run.json'}", atomic_write_text, self.out / "run.json", text)
