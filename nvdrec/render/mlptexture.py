"""Neural material: hash-grid encoding + small MLP giving kd, ks and normal (pass 1)."""

from __future__ import annotations

import torch
from torch import nn

from ..ops.hashgrid import HashGridConfig, hashgrid_encode, init_hashgrid_params

__all__ = ["MLPTexture3D", "HASH_GRAD_SCALE", "FP16_LOSS_SCALE", "adam_groups"]

# nvdiffrec trains its fp16 tiny-cuda-nn grid with loss-scaling hooks whose net effect is
# that the hash table's gradient reaches Adam 16x larger than the true gradient. Adam is
# invariant to gradient scale except through its epsilon, where this lets rarely touched
# (small-gradient) table entries take larger steps. We keep the same factor so the table
# trains as nvdiffrec's does, applied where it acts: Adam with epsilon / 16 for the table
# takes exactly the steps that Adam with the gradient x 16 takes (m and sqrt(v) both scale
# by 16), without a multiply over the whole 16.8M-entry gradient each iteration (a gradient
# hook: ~50-150 ms an iteration on a 2-core CPU). The factor rides on the parameter as
# ``adam_grad_scale``; nvdrec's trainer reads it (see nvdrec.train.loop.run_pass).
HASH_GRAD_SCALE = 16.0
ADAM_GRAD_SCALE_ATTR = "adam_grad_scale"

# On CUDA the MLP runs in float16 (as tiny-cuda-nn's fully fused MLP does). Gradients
# entering it are multiplied by this factor so small values do not underflow in half
# precision, and divided again on the way out (weights and encoding), so the gradients
# that reach the optimiser are the true ones.
FP16_LOSS_SCALE = 128.0


class _ScaleGrad(torch.autograd.Function):
    """Identity forward; gradient multiplied by ``scale`` in backward."""

    @staticmethod
    def forward(ctx, x, scale):
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, g):
        return g * ctx.scale, None


class MLPTexture3D(nn.Module):
    """Volumetric material field.

    Args:
        aabb: (min [3], max [3]) box that positions are normalised into [0, 1]^3 by.
        channels: output channels (9 = kd 3 + ks 3 + normal 3).
        min_max: (min [channels], max [channels]): the sigmoid output is mapped to this
            range (nvdiffrec's kd_min/kd_max, ks_min/ks_max, nrm_min/nrm_max).
        config: hash encoding settings (defaults: 16 levels x 2 features, 2^19 table,
            resolutions 16..4096).
        internal_dims, hidden: MLP width and hidden layer count (32, 2: 32 -> 32 -> 32 -> 9,
            ReLU, no biases).
        backend: "auto", "torch", "cuda" or "tinycudann" (optional package).

    The hash table is meant to be trained by Adam with epsilon / HASH_GRAD_SCALE (the
    parameter carries the factor as ``table.adam_grad_scale``; :func:`adam_groups` builds
    such parameter groups).
    """

    def __init__(
        self,
        aabb,
        channels: int = 9,
        min_max=None,
        config: HashGridConfig | None = None,
        internal_dims: int = 32,
        hidden: int = 2,
        backend: str = "auto",
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.config = config or HashGridConfig()
        lo, hi = (torch.as_tensor(a, dtype=torch.float32).reshape(3) for a in aabb)
        self.register_buffer("aabb_min", lo)
        self.register_buffer("aabb_max", hi)
        g = torch.Generator().manual_seed(seed)
        self.backend = backend
        self._tcnn = None
        if backend == "tinycudann":
            self._tcnn = _tcnn_encoding(self.config)
            self.table = None
        else:
            self.table = nn.Parameter(init_hashgrid_params(self.config, g))
            setattr(self.table, ADAM_GRAD_SCALE_ATTR, HASH_GRAD_SCALE)
        dims = [self.config.output_dim] + [internal_dims] * hidden + [channels]
        layers: list[nn.Module] = []
        for i in range(len(dims) - 1):
            lin = nn.Linear(dims[i], dims[i + 1], bias=False)
            bound = (6.0 / dims[i]) ** 0.5  # Kaiming-uniform for ReLU
            with torch.no_grad():
                lin.weight.uniform_(-bound, bound, generator=g)
            layers.append(lin)
            if i < len(dims) - 2:
                layers.append(nn.ReLU())
        self.net = nn.Sequential(*layers)
        if min_max is not None:
            mn, mx = (torch.as_tensor(a, dtype=torch.float32).reshape(channels) for a in min_max)
        else:
            mn, mx = torch.zeros(channels), torch.ones(channels)
        self.register_buffer("out_min", mn)
        self.register_buffer("out_max", mx)

    def encode(self, points: torch.Tensor) -> torch.Tensor:
        x = (points.reshape(-1, 3) - self.aabb_min) / (self.aabb_max - self.aabb_min)
        if self._tcnn is not None:
            return self._tcnn(x.clamp(0, 1)).float()
        return hashgrid_encode(x, self.table, self.config, backend=self.backend)

    def mlp(self, enc: torch.Tensor) -> torch.Tensor:
        """MLP on encodings [P, D] -> raw outputs [P, channels] (float16 on CUDA)."""
        if not enc.is_cuda:
            return self.net(enc)
        scale = FP16_LOSS_SCALE
        x = _ScaleGrad.apply(enc, 1.0 / scale)
        with torch.autocast("cuda", dtype=torch.float16):
            for layer in self.net:
                if isinstance(layer, nn.Linear):
                    # the scaled gradient is divided out again on the way to the weight
                    x = torch.nn.functional.linear(x, _ScaleGrad.apply(layer.weight, 1.0 / scale))
                else:
                    x = layer(x)
        return _ScaleGrad.apply(x.float(), scale)

    def sample(self, points: torch.Tensor) -> torch.Tensor:
        """Material at points [..., 3] -> [..., channels] within [min, max]."""
        out = self.mlp(self.encode(points))
        out = torch.sigmoid(out) * (self.out_max - self.out_min) + self.out_min
        return out.view(*points.shape[:-1], out.shape[-1])

    @staticmethod
    def split(values: torch.Tensor):
        """(kd [..., 3], ks [..., 3], normal [..., 3]) from a 9-channel sample."""
        return values[..., 0:3], values[..., 3:6], values[..., 6:9]


def _tcnn_encoding(config: HashGridConfig):
    try:
        import tinycudann as tcnn
    except ImportError:
        raise ImportError(
            "backend='tinycudann' needs the optional tinycudann package, which is not installed; "
            "use backend='auto' (nvdrec's own hash-grid kernels)"
        ) from None
    return tcnn.Encoding(
        3,
        {
            "otype": "HashGrid",
            "n_levels": config.n_levels,
            "n_features_per_level": config.n_features,
            "log2_hashmap_size": config.log2_table_size,
            "base_resolution": config.base_resolution,
            "per_level_scale": config.per_level_scale,
        },
    )


def adam_groups(params, eps: float = 1e-8) -> list[dict]:
    """Adam parameter groups (``params`` and ``eps``; the caller adds the learning rate)
    for ``params``: parameters that carry an ``adam_grad_scale`` (the hash table of
    :class:`MLPTexture3D`) get a group of their own with ``eps / scale`` (the same steps
    as Adam on their gradient x scale)."""
    by_scale: dict[float, list] = {}
    for p in params:
        by_scale.setdefault(float(getattr(p, ADAM_GRAD_SCALE_ATTR, 1.0)), []).append(p)
    return [{"params": ps, "eps": eps / scale} for scale, ps in by_scale.items()]
