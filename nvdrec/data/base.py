"""The protocol every training dataset follows, as a base class with its defaults.

Training reads a dataset only through these members, so a new kind of data (a video, a
different capture format) is one subclass; see docs/architecture.md ("Add a dataset
kind").
"""

from __future__ import annotations

import torch

__all__ = ["Dataset"]


class Dataset:
    """Views of one object for training and validation.

    Two kinds exist:

    - **fixed views** (``photos`` True): images read from files, with their cameras
      ``mv`` [N, 4, 4] (world to camera, OpenGL), ``proj`` [N, 4, 4] and ``images``
      [N, H, W, 4] (linear RGB premultiplied by alpha, alpha = the object mask). The
      trainer picks the views of each batch (``batch_of``), so that N processes and a
      resumed run draw what one uninterrupted process draws.
    - **rendered views** (``photos`` False): a reference rendered on the fly from random
      cameras (``train_batch``); ``reference_light`` is its known light.

    Batches are dicts ``{mv [B, 4, 4], mvp [B, 4, 4], campos [B, 3], resolution (H, W),
    spp, img [B, H, W, 4]}``.
    """

    photos: bool = False
    resolution: tuple[int, int]
    cache = None  # the ImageCache that reduced the images, if any (nvdrec.data.cache)

    def __len__(self) -> int:
        raise NotImplementedError

    def train_batch(self, batch: int, generator) -> dict:
        """``batch`` random training views (``generator``: one torch.Generator, or one
        per view)."""
        raise NotImplementedError

    def batch_of(self, indices: list[int]) -> dict:
        """The batch of the given view indices (fixed views only)."""
        raise TypeError(f"{type(self).__name__} has no fixed views to pick by index")

    def validation_batches(self, count: int | None = None, batch: int = 4):
        """The validation views, ``batch`` at a time (``count``: how many views a rendered
        reference shows; fixed views always validate every view)."""
        raise NotImplementedError

    def for_validation(self, resolution) -> Dataset:
        """The dataset validation reads at ``resolution`` [H, W] (the config's
        ``display_res``): a rendered reference re-renders at that size; fixed views keep
        their own (None: this dataset)."""
        return self

    @property
    def reference_light(self):
        """The known light of a rendered reference (an EnvironmentLight), else None."""
        return None

    def outside_note(self, folder) -> str | None:
        """A warning when files were read from outside ``folder``, else None."""
        return None

    def seen_from(self, count: int, generator: torch.Generator) -> torch.Tensor:
        """The cameras [N, 4, 4] (mvp) the object is trained from: every fixed view, or
        ``count`` random draws of a rendered reference's cameras (for
        ``cleanup_unseen``)."""
        if self.photos:
            return self.proj @ self.mv
        raise NotImplementedError
