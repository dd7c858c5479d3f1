"""Multi-process training with torch.distributed (``torchrun`` / ``nvdrec train --gpus N``).

Meaning of ``batch``: images **per process** (per GPU); the global batch is
``batch x world_size``. Gradients are averaged over the processes by
DistributedDataParallel, so N processes with ``batch`` B take exactly the steps of one
process with batch N x B at the same learning rate (the loss is a mean over the batch).

Per-image randomness (the random camera of a synthetic view, the random background) is
drawn from a generator seeded by (seed, iteration, global slot) where the global slot of
image i of rank r is ``i * world_size + r``; file datasets pick images with
:class:`torch.utils.data.DistributedSampler` (an epoch-wise shuffled permutation, sharded
the same interleaved way). Hence a run is reproducible, resumes exactly, and N processes
see the same images as one process with the N-fold batch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from ..errors import ConfigError

__all__ = ["DistInfo", "setup", "slot_generators", "file_indices", "launch", "pick_device"]


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup(device: str) -> DistInfo:
    """Join the process group that ``torchrun`` describes in the environment (RANK,
    WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT); NCCL for CUDA, gloo for the CPU. A single
    process (no torchrun) gives ``DistInfo()``."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        use_cuda = device != "cpu" and torch.cuda.is_available()
        if use_cuda:
            torch.cuda.set_device(local)
        # (no device_id=: this is the form measured on the 2-GPU machine)
        dist.init_process_group("nccl" if use_cuda else "gloo")
    return DistInfo(rank=rank, world=world, local_rank=local)


def slot_seed(seed: int, iteration: int, slot: int) -> int:
    """A 63-bit seed for one image slot of one iteration (splitmix-style mixing)."""
    x = (seed * 0x9E3779B97F4A7C15 + iteration * 0xBF58476D1CE4E5B9 + slot * 0x94D049BB133111EB) & (
        2**64 - 1
    )
    x ^= x >> 31
    x = (x * 0xD6E8FEB86659FD93) & (2**64 - 1)
    x ^= x >> 32
    return x & (2**63 - 1)


def global_slots(info: DistInfo, batch: int) -> list[int]:
    """Global slot of each local image: ``i * world + rank``."""
    return [i * info.world + info.rank for i in range(batch)]


def slot_generators(seed: int, iteration: int, slots: list[int]) -> list[torch.Generator]:
    return [torch.Generator().manual_seed(slot_seed(seed, iteration, s)) for s in slots]


def file_indices(n: int, info: DistInfo, batch: int, iteration: int, seed: int) -> list[int]:
    """Dataset indices of this rank's images at an iteration: a DistributedSampler stream
    (one shuffled permutation per epoch, sharded over the ranks) read ``batch`` at a time."""
    from torch.utils.data import DistributedSampler

    sampler = DistributedSampler(
        range(n), num_replicas=info.world, rank=info.rank, shuffle=True, seed=seed
    )
    per_epoch = len(sampler)
    out, cache = [], {}
    for p in range(iteration * batch, (iteration + 1) * batch):
        epoch = p // per_epoch
        if epoch not in cache:
            sampler.set_epoch(epoch)
            cache[epoch] = list(sampler)
        out.append(cache[epoch][p % per_epoch])
    return out


def launch(nproc: int, argv: list[str]) -> int:
    """Re-run ``nvdrec`` under torchrun with ``nproc`` processes on this machine."""
    import subprocess
    import sys

    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={nproc}",
        "-m",
        "nvdrec",
        *argv,
    ]
    env = dict(os.environ)
    env.setdefault("NCCL_NVLS_ENABLE", "0")
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    return subprocess.call(cmd, env=env)


def all_max(value: float, device) -> float:
    """Maximum of a float over all ranks."""
    t = torch.tensor([float(value)], dtype=torch.float64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return float(t.item())


def all_sum(values: list[float], device) -> list[float]:
    """Element-wise sum of a few floats over all ranks (one collective)."""
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()


def param_spread(params: list[torch.Tensor]) -> float:
    """Largest |difference| between any rank's parameters and rank 0's (0 when in sync)."""
    flat = torch.cat([p.detach().reshape(-1).float() for p in params])
    ref = flat.clone()
    dist.broadcast(ref, src=0)
    return all_max((flat - ref).abs().max().item() if flat.numel() else 0.0, flat.device)


def broadcast_object(obj, device):
    """``obj`` of rank 0 on every rank (pickled; tensors are moved to the CPU first)."""
    box = [obj]
    dist.broadcast_object_list(box, src=0, device=device if device.type == "cuda" else None)
    return box[0]


def pick_device(setting: str, dist) -> torch.device:
    """The device of this process for the config's ``device`` ("auto", "cpu", "cuda",
    "cuda:N"): under torchrun each process takes the GPU of its local rank."""
    if dist.enabled and setting != "cpu" and torch.cuda.is_available():
        return torch.device("cuda", dist.local_rank)
    if dist.enabled and setting == "auto":
        return torch.device("cpu")
    if setting == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if setting.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"config key 'device': got {setting!r} but no CUDA device is visible")
    return torch.device(setting)
