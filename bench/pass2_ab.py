"""A/B of pass-2 settings from one pass 1: train pass 1 once, then run pass 2 (and the
validation) once per variant from that same mesh, textures and light, and print each
variant's validation PSNR against pass 1's, per view (median difference, share of views
that got worse).

    python bench/pass2_ab.py CONFIG [--variant NAME '{"key": value}' ...] [--key value ...]

Without ``--variant`` it compares the config as given with nvdiffrec's plain vertex steps
(``pos_smoothing`` 0). Trailing ``--key value`` pairs override the config for every run.
It writes to the config's out_dir + ``_pass2ab`` (replacing an earlier A/B there), unless
``--out_dir`` is given.
"""

import argparse
import copy
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from quality import solid  # noqa: E402  (bench/quality.py, this folder)

import nvdrec  # noqa: E402
from nvdrec.cli import _overrides  # noqa: E402
from nvdrec.train.helpers import LIGHT_GRAD_SCALE  # noqa: E402
from nvdrec.train.passes import pass1, pass2  # noqa: E402
from nvdrec.train.trainer import Trainer  # noqa: E402


def per_view_psnr(folder: Path) -> list:
    rows = (folder / "metrics.txt").read_text().splitlines()[1:-1]
    return [float(r.split(",")[2]) for r in rows]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("config")
    ap.add_argument("--variant", nargs=2, action="append", metavar=("NAME", "JSON"))
    ap.add_argument("--json", help="also write the rows as JSON to this file")
    args, rest = ap.parse_known_args(argv)
    overrides = _overrides(rest)
    variants = args.variant or [["as_given", "{}"], ["plain_steps", '{"pos_smoothing": 0}']]
    cfg = nvdrec.load_config(args.config, overrides=overrides)
    if "out_dir" not in overrides:  # its own folder: never the config's real run
        cfg = cfg.replace(out_dir=f"{cfg.out_dir}_pass2ab")
    card = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    trainer = Trainer(cfg, overwrite=True)  # a benchmark replaces its earlier run
    trainer.keep_pass1_state = True
    trainer.out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    mesh, lgt = pass1(trainer)
    t_pass1 = time.time() - t0
    p1 = per_view_psnr(trainer.out / "dmtet_validate")
    rows = [{"variant": "pass 1", "psnr": statistics.mean(p1), "seconds": t_pass1}]
    rows[0].update(solid(mesh), cleanup=trainer.cleanup)
    geo, mat, _ = trainer.pass1_state
    for passage in (0, 1, 2):  # the cavity fill's passage width: faces hidden, PSNR
        with torch.no_grad():
            m = geo.final_mesh(passage=passage).detach()
        met = trainer.report.validate(m, lgt, mat, f"dmtet_validate_passage{passage}")
        st = solid(m)
        print(
            f"pass-1 extraction with passage {passage}: {met['psnr']:.3f} dB, "
            f"{m.num_triangles} faces, {st['hidden_pct']:.2f}% hidden, {st['interior']} "
            f"interior components, {geo.filled_vertices} grid vertices filled",
            flush=True,
        )
    print(
        f"pass 1: {rows[0]['psnr']:.3f} dB over {len(p1)} views ({t_pass1:.0f} s), "
        f"{rows[0]['hidden_pct']:.2f}% of {mesh.num_triangles} faces hidden, "
        f"{rows[0]['interior']} interior components",
        flush=True,
    )
    for name, js in variants:
        trainer.cfg = cfg.replace(**json.loads(js), out_dir=cfg.out_dir)
        m = copy.deepcopy(mesh)
        light = copy.deepcopy(lgt)  # a deep copy drops the gradient hook: add it again
        if cfg.learn_light:
            light.base.register_hook(lambda g: g * LIGHT_GRAD_SCALE)
        t0 = time.time()
        final = pass2(trainer, m, light)
        metrics = trainer.report.validate(final, light, folder=f"validate_{name}")
        p2 = per_view_psnr(trainer.out / f"validate_{name}")
        diff = [b - a for a, b in zip(p1, p2)]
        rows.append(
            {
                "variant": name,
                "settings": js,
                "psnr": metrics["psnr"],
                "ssim": metrics["ssim"],
                "median_view_gain": statistics.median(diff),
                "views_worse": sum(d < 0 for d in diff) / len(diff),
                "ms_per_iter": trainer.timing["mesh_pass"]["ms_per_iter_median"],
                "seconds": time.time() - t0,
            }
        )
        r = rows[-1]
        r.update(solid(final))
        print(
            f"{name}: {r['psnr']:.3f} dB ({r['psnr'] - rows[0]['psnr']:+.3f} vs pass 1, "
            f"median view {r['median_view_gain']:+.3f}, {100 * r['views_worse']:.0f}% of views "
            f"worse), {r['ms_per_iter']:.1f} ms/it, {r['hidden_pct']:.2f}% of the faces hidden",
            flush=True,
        )
    print(f"\n{args.config} on {card}, overrides {overrides}")
    for r in rows:
        print(json.dumps(r))
    if args.json:
        Path(args.json).write_text(json.dumps({"card": card, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
