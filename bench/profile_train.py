"""Where a training iteration's time goes: a short run of a config under torch.profiler,
per pass: GPU busy time, launches, the host time of each part of the iteration (light
filter, geometry, rasterize, material, shade, losses, backward, optimizer, the loss read
that waits for the GPU) and the top CUDA kernels.

    python bench/profile_train.py configs/bob.json --ref_mesh PATH --envmap PATH [--iter 40]
        [--out_dir DIR] [any other config key as --key value]
"""

import sys
import tempfile
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile, schedule

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import nvdrec  # noqa: E402
from nvdrec.cli import _overrides  # noqa: E402
from nvdrec.train import trainer as T  # noqa: E402

SKIP = 5  # first iterations of each pass (kernel builds, caches, allocator growth)


def main():
    ov = {"iter": 40, "validate": False, "save_interval": 0, "checkpoint_interval": 0}
    ov.update(_overrides(sys.argv[2:]))
    out = str(Path(tempfile.gettempdir()) / "nvdrec_profile")  # unless --out_dir says
    cfg = nvdrec.load_config(sys.argv[1], overrides={"out_dir": out, **ov})
    skip = min(SKIP, max(cfg.iter - 1, 0))  # warm-up iterations left out of the profile
    active = cfg.iter - skip
    current = {}
    # the profiler advances one step per iteration: it records iterations skip+1..iter
    tr = T.Trainer(
        cfg, overwrite=True, callbacks=[lambda ev: current["prof"].step()]
    )  # a benchmark replaces its earlier run
    orig = tr._run

    def run(spec):
        name = spec.name
        sched = schedule(wait=max(skip - 1, 0), warmup=min(skip, 1), active=active, repeat=1)
        acts = [ProfilerActivity.CPU]
        acts += [ProfilerActivity.CUDA] if torch.cuda.is_available() else []
        with profile(activities=acts, schedule=sched) as prof:
            current["prof"] = prof
            orig(spec)
            if torch.cuda.is_available():
                torch.cuda.synchronize()
        print(
            f"\n=== {name}: {tr.timing[name]['ms_per_iter_median']:.1f} ms/iter median "
            f"(under the profiler; iterations {skip + 1}-{cfg.iter} profiled)"
        )
        ka = prof.key_averages()
        n = max(active, 1)
        # kernel entries only: an op's self-CUDA time repeats the time of the kernels it
        # launched, so summing every entry (the table's total) counts kernels twice
        cuda = torch.autograd.DeviceType.CUDA
        gpu = sum(e.self_device_time_total for e in ka if e.device_type == cuda) / 1e3 / n
        cpu = sum(e.self_cpu_time_total for e in ka) / 1e3 / n
        launches = sum(e.count for e in ka if e.key in ("cudaLaunchKernel", "cuLaunchKernel")) / n
        print(
            f"per iteration: GPU busy {gpu:.1f} ms, CPU (self, all ops) {cpu:.1f} ms, "
            f"{launches:.0f} kernel launches - GPU busy well below ms/iter means CPU-bound"
        )
        # the parts of an iteration, as the training loop names them ("nvdrec:" ranges):
        # CPU time is the wall time the host spent issuing that part (the GPU runs behind
        # it; the loss read is where the host waits for the GPU to catch up)
        print(f"{'part of the iteration':44s} {'CPU ms/iter':>12s} {'calls/iter':>11s}")
        for e in sorted(ka, key=lambda e: -e.cpu_time_total):
            if e.key.startswith("nvdrec:"):
                print(f"{e.key[7:]:44s} {e.cpu_time_total / 1e3 / n:12.2f} {e.count / n:11.1f}")
        print(ka.table(sort_by="self_cuda_time_total", row_limit=25, max_name_column_width=60))

    tr._run = run
    tr.fit()


if __name__ == "__main__":
    main()
