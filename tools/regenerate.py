"""Retrain run records in parallel worker processes (one torch thread each).

    python tools/regenerate.py --stale --need-model --experiment last.lf_at_sd_code_2eps --workers 2

``--stale``: every committed cpu record that the current code no longer reproduces
(configuration from the record itself); ``--experiment NAME``: the chapters' seeds of a
new experiment; ``--need-model``: the runs whose model a chapter loads (record and
weights made together, on this machine; ``--only NAME ...`` narrows them). Longest runs first; each worker trains whole runs.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import shutil
import time

#: (experiment, seed) of the runs whose weights the chapters load (need_model=True)
NEED_MODEL = [("basics.standard", 0), ("basics.pgd_at_long", 0), ("init.sdi_snapshot", 0),
              ("last.fig_fgsm_rs", 0), ("last.fig_lf_at", 0)]


def jobs(args):
    from advlit import experiments
    from advlit.config import RunConfig
    from advlit.results import REPO_DIR, is_current, run_name

    out = {}
    root = REPO_DIR / "results" / "cpu"
    if args.stale:
        for path in sorted(root.glob("*/record.json")):
            record = json.loads(path.read_text())
            config = RunConfig.from_dict(record["config"])
            if not is_current(record, config):
                out[run_name(config)] = (config, False, record["seconds_per_epoch"] * config.epochs)
    for name in args.experiment:
        for seed in experiments.DEFAULT_SEEDS["cpu"]:
            config = experiments.get_config(name, "cpu", seed=seed)
            out.setdefault(run_name(config), (config, False, 600.0))
    if args.need_model:
        for name, seed in NEED_MODEL:
            if args.only is not None and name not in args.only:
                continue
            config = experiments.get_config(name, "cpu", seed=seed)
            out[run_name(config)] = (config, True, 900.0)
    return sorted(out.items(), key=lambda kv: -kv[1][2])


def work(item):
    import os

    os.environ.setdefault("ADVLIT_PROGRESS", "0")
    from advlit.results import REPO_DIR, run_or_load
    # importing advlit sets torch's threads from ADVLIT_THREADS

    name, (config, need_model, _) = item
    run_dir = REPO_DIR / "results" / "cpu" / name
    if run_dir.exists():
        shutil.rmtree(run_dir)
    t0 = time.time()
    run_or_load(config, REPO_DIR / "results" / "cpu", need_model=need_model)
    for leftover in ("checkpoint.pt", "best.pt"):
        (run_dir / leftover).unlink(missing_ok=True)
    return f"{name}: {time.time() - t0:.0f} s"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stale", action="store_true")
    parser.add_argument("--need-model", action="store_true")
    parser.add_argument("--only", nargs="*", default=None, help="with --need-model: only these experiments")
    parser.add_argument("--experiment", action="append", default=[])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--dry-run", action="store_true")
    args = parser.parse_args()
    todo = jobs(args)
    for name, (_, need, secs) in todo:
        print(f"{name:55s} need_model={need} ~{secs:.0f} s training")
    if args.dry_run:
        return
    with mp.get_context("spawn").Pool(args.workers, maxtasksperchild=1) as pool:
        for line in pool.imap_unordered(work, todo):
            print(line, flush=True)


if __name__ == "__main__":
    main()
