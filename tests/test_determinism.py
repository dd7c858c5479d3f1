"""CPU training is reproducible bit for bit: the torch references' gathers go through
index_select, whose backward (index_add) sums in a fixed order, where the backward of
``x[idx]`` (an accumulating index_put) sums in a thread-dependent order on large inputs."""

import torch
from _helpers import clip_positions, sphere

from nvdrec import ops


def _grads():
    v, tri = sphere(48, 96)
    pos = clip_positions(v).expand(2, -1, -1).clone().requires_grad_()
    attr = torch.rand(1, len(v), 5, generator=torch.Generator().manual_seed(0)).requires_grad_()
    res = (192, 192)  # 2 x 192 x 192 pixels: large enough for the parallel CPU paths
    rast, _ = ops.rasterize(pos, tri, res, backend="torch")
    col, _ = ops.interpolate(attr, rast, tri, backend="torch")
    out = ops.antialias(col.contiguous(), rast, pos, tri, backend="torch")
    w = torch.rand(out.shape, generator=torch.Generator().manual_seed(1))
    (out * w).sum().backward()
    return pos.grad, attr.grad


def test_raster_chain_gradients_are_bit_reproducible_on_cpu():
    # At least two threads, and the process's count restored after: later tests compare
    # in-process runs with runs in subprocesses, whose results depend on the thread count.
    threads = torch.get_num_threads()
    torch.set_num_threads(max(threads, 2))
    try:
        first = _grads()
        for _ in range(2):
            again = _grads()
            for a, b in zip(first, again):
                assert torch.equal(a, b), float((a - b).abs().max())
    finally:
        torch.set_num_threads(threads)
