"""The Python API: `Trainer(config, callbacks=...).fit()` with your own progress display
and an early stop, then the result dictionary.

    python examples/python_api.py [--tiny]

Runs the built-in demo scene (no files): 200 + 200 iterations, ~60 s on one GPU, a few
minutes on a 2-core CPU; --tiny: 4 + 4 iterations, ~15 s on that CPU.
"""

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import TINY  # noqa: E402

import nvdrec  # noqa: E402


class Progress:
    """Prints one line every ``every`` iterations; asks to stop when the image loss of
    pass 2 falls below ``target`` (the trainer then exports the result so far)."""

    def __init__(self, every: int, target: float) -> None:
        self.every, self.target, self.t0 = every, target, time.time()

    def __call__(self, ev: dict) -> bool:
        if ev["it"] % self.every == 0 or ev["it"] == ev["total"] - 1:
            print(
                f"{ev['pass']:>12} {ev['it'] + 1:5d}/{ev['total']}  loss {ev['img_loss']:.4f}"
                f"  {ev['ms']:.0f} ms/it  {time.time() - self.t0:.0f} s",
                flush=True,
            )
        return ev["pass"] == "mesh_pass" and ev["img_loss"] < self.target


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tiny", action="store_true")
    ap.add_argument("--out", default="out/python_api")
    ap.add_argument("--overwrite", action="store_true", help="replace an earlier result in --out")
    a = ap.parse_args()
    keys = {"iter": 200, "train_res": [256, 256], "progress": "none"}
    if a.tiny:
        keys.update(TINY)
    cfg = nvdrec.load_config(keys, {"out_dir": str(Path(a.out).resolve())})
    trainer = nvdrec.Trainer(
        cfg, callbacks=[Progress(every=max(cfg.iter // 4, 1), target=1e-4)], overwrite=a.overwrite
    )
    try:
        result = trainer.fit()
    except KeyboardInterrupt as stop:  # Ctrl-C: checkpointed, --resume continues
        print(f"interrupted: {stop}")
        return
    if result["stopped_early"]:  # the callback's stop: the result so far was exported
        done = result["stopped_early"]
        print(f"stopped early in {done['pass']} after {done['iterations']} iterations")
    print(
        f"PSNR after pass 1: {result['metrics_pass1']['psnr']:.2f} dB, final: "
        f"{result['metrics']['psnr']:.2f} dB"
    )
    for stage, t in result["timing"].items():
        print(f"{stage}: {t['ms_per_iter']:.1f} ms per iteration")
    print("files:", ", ".join(f"{k}={v}" for k, v in result["paths"].items()))


if __name__ == "__main__":
    try:
        main()
    except nvdrec.NvdrecError as e:  # e.g. --out holds an earlier result: one line
        sys.exit(f"python_api: {e}")
