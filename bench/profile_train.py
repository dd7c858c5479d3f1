"""Where a training iteration's time goes: a short run of a config under torch.profiler,
top CUDA kernels and top CPU ops (self time) per pass.

    python bench/profile_train.py configs/bob.json --ref_mesh PATH --envmap PATH [--iter 40]
"""

import sys
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import nvdrec  # noqa: E402
from nvdrec.cli import _overrides  # noqa: E402
from nvdrec.train import trainer as T  # noqa: E402


def main():
    ov = {"iter": 40, "validate": False, "save_interval": 0, "checkpoint_interval": 0}
    ov.update(_overrides(sys.argv[2:]))
    cfg = nvdrec.load_config(sys.argv[1], overrides={**ov, "out_dir": "/tmp/nvdrec_profile"})
    tr = T.Trainer(cfg, overwrite=True)  # a benchmark replaces its earlier run
    orig = tr._run

    def run(spec):
        name = spec.name
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            orig(spec)
            torch.cuda.synchronize()
        print(f"\n=== {name}: {tr.timing[name]['ms_per_iter']:.1f} ms/iter (under the profiler)")
        ka = prof.key_averages()
        n = max(tr.cfg.iter, 1)
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
        print(ka.table(sort_by="self_cuda_time_total", row_limit=25, max_name_column_width=60))

    tr._run = run
    tr.fit()


if __name__ == "__main__":
    main()
