"""Show that a code change is neutral: short runs trained by the old and the new code agree bit for bit.

Before the committed records are re-stamped instead of retrained
(``tools/restamp_records.py --same-scheme``), this trains each configuration once with the
code of ``--old`` (``advlit/`` of that commit, extracted by ``git archive`` into a temporary
folder and imported by a subprocess) and once with the working tree's code (a second
subprocess, the same way), single-threaded, and compares the two records: the history and
the final evaluations, the best epoch, the overfitting verdict, the method's settings, the
configuration hash, and a hash of the last weights, all exactly. Timing (``seconds``,
``seconds_per_epoch``), the environment, the code fingerprint and the configuration dict are
ignored (a new field of :class:`~advlit.config.RunConfig` at its default leaves the hash
alone, not the dict). It prints one line per configuration and exits with status 1 on any
difference or failure.

The configurations: experiment names of :mod:`advlit.experiments` (their ``cpu`` profile)
or JSON files (a run-config dict or a ``record.json``), each shortened to ``--epochs`` 2,
``val_subset`` 32, ``final_subset`` 64 and the final attacks ``clean pgd-10`` unless
``--as-is``. Without any: one per distinct (method, dataset, model, LR schedule) among the
committed records of ``results/cpu`` (the first run of each, by name), so every method and
schedule the records use runs once (30 configurations, a few minutes per side).

    python tools/check_neutral_change.py --old 392c640                      # all the records' kinds
    python tools/check_neutral_change.py --old HEAD piat.pgd_at atas.atas   # two experiments
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))

from restamp_records import commit_tree, run_in_tree  # noqa: E402

#: record keys that are not results: timings, where and with which code the run was made
IGNORED = frozenset({"seconds", "seconds_per_epoch", "environment", "code", "config", "run_dir"})
SHORT = {"epochs": 2, "val_subset": 32, "final_subset": 64, "final_attacks": ["clean", "pgd-10"], "aa_subset": None}

#: run by ``python -c`` inside a tree: trains each ``{"config": {...}, "out": dir}`` of the
#: JSON file ``argv[1]`` and writes ``{"record": ..., "weights": sha256 of the last weights}``
#: per item to ``argv[2]``
TRAIN_WORKER = r"""
import hashlib, json, sys
from dataclasses import fields
from pathlib import Path
import torch
import advlit
from advlit.config import RunConfig
from advlit.train import CHECKPOINT, Trainer

assert Path(advlit.__file__).resolve().parent == Path(sys.argv[3]).resolve(), advlit.__file__
known = {f.name for f in fields(RunConfig)}
out = []
for item in json.loads(Path(sys.argv[1]).read_text()):
    try:
        extra = {k: v for k, v in item["config"].items() if k not in known}
        if any(v not in (None, [], {}) for v in extra.values()):  # a new field at its default is dropped
            raise ValueError(f"this code has no run-config field(s) {sorted(extra)} (set to non-defaults)")
        config = RunConfig.from_dict({k: v for k, v in item["config"].items() if k in known}).validate()
        record = Trainer(config, progress=False).fit(item["out"])
        state = torch.load(Path(item["out"]) / CHECKPOINT, map_location="cpu", weights_only=False)["model"]
        digest = hashlib.sha256()
        for name in sorted(state):
            digest.update(name.encode())
            digest.update(state[name].detach().cpu().contiguous().numpy().tobytes())
        out.append({"record": json.loads(json.dumps(record, default=str)), "weights": digest.hexdigest()[:12]})
    except Exception as err:
        out.append({"error": f"{type(err).__name__}: {err}"})
Path(sys.argv[2]).write_text(json.dumps(out))
"""


def differences(a, b, path: str = "") -> list[str]:
    """Where two records (or parts of them) differ, as ``key.path: old != new``; the keys of
    :data:`IGNORED` are skipped at every level, floats compare exactly (NaN equals NaN)."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in sorted(set(a) | set(b), key=str):
            if key in IGNORED:
                continue
            where = f"{path}.{key}" if path else str(key)
            if key not in a or key not in b:
                out.append(f"{where}: {'missing' if key not in a else a[key]!r} != "
                           f"{'missing' if key not in b else b[key]!r}")
            else:
                out += differences(a[key], b[key], where)
        return out
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{path}: {len(a)} entries != {len(b)}"]
        return [d for k, (x, y) in enumerate(zip(a, b)) for d in differences(x, y, f"{path}[{k}]")]
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return []
    if type(a) is not type(b) or a != b:
        return [f"{path}: {a!r} != {b!r}"]
    return []


def compare(old: dict, new: dict) -> list[str]:
    """The differences between the worker's answers for one configuration (old, new code)."""
    if "error" in old or "error" in new:
        return [f"{side} code failed: {answer['error']}" for side, answer in (("old", old), ("new", new))
                if "error" in answer]
    out = differences(old["record"], new["record"])
    if old["weights"] != new["weights"]:
        out.append(f"last weights: {old['weights']} != {new['weights']}")
    return out


def shorten(config: dict) -> dict:
    """``config`` cut down to a short run (:data:`SHORT`)."""
    return {**config, **json.loads(json.dumps(SHORT))}


def record_configs(results_dir: Path) -> list[dict]:
    """One committed record's config per distinct (method, dataset, model, LR schedule)."""
    seen: dict = {}
    for path in sorted(results_dir.glob("*/record.json")):
        config = json.loads(path.read_text())["config"]
        seen.setdefault((config["method"], config["dataset"], config.get("model"), config["lr_schedule"]), config)
    return list(seen.values())


def resolve_target(target: str) -> dict:
    """An experiment name (its ``cpu`` config) or a JSON file (a config or a record)."""
    path = Path(target)
    if path.suffix == ".json" and path.exists():
        data = json.loads(path.read_text())
        return data["config"] if "config_hash" in data else data
    sys.path.insert(0, str(REPO))
    from advlit.experiments import get_config

    return get_config(target, "cpu").to_dict()


def label(config: dict) -> str:
    extra = f" {config['lr_schedule']}" if config.get("lr_schedule") != "cyclic" else ""
    return f"{config['method']} ({config['dataset']}{extra}, seed {config['seed']})"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("targets", nargs="*", help="experiment names or JSON config/record files "
                                                   "(default: one per kind of committed record)")
    parser.add_argument("--old", required=True, help="the commit whose code made the records")
    parser.add_argument("--results", default=str(REPO / "results" / "cpu"))
    parser.add_argument("--as-is", action="store_true", help="train the configurations unshortened")
    parser.add_argument("--limit", type=int, help="only the first N configurations")
    parser.add_argument("--jobs", type=int, default=1, choices=(1, 2), help="2: old and new code at the same time")
    args = parser.parse_args(argv)
    configs = [resolve_target(t) for t in args.targets] if args.targets else record_configs(Path(args.results))
    configs = [c if args.as_is else shorten(c) for c in configs][:args.limit]
    if not configs:
        print("no configurations to train")
        return 1
    print(f"training {len(configs)} configuration(s) with the code of {args.old} and of the working tree")
    with commit_tree(args.old) as tree, tempfile.TemporaryDirectory(prefix="advlit-neutral-") as tmp:
        def side(name: str, where: Path) -> list:
            items = [{"config": c, "out": str(Path(tmp) / name / str(k))} for k, c in enumerate(configs)]
            return run_in_tree(where, TRAIN_WORKER, items)

        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            old_job, new_job = pool.submit(side, "old", tree), pool.submit(side, "new", REPO)
            old, new = old_job.result(), new_job.result()
    width = max(len(label(c)) for c in configs)
    failures = 0
    print(f"{'configuration':{width}}  {'last weights':12}  old vs new code")
    for config, a, b in zip(configs, old, new):
        diffs = compare(a, b)
        failures += bool(diffs)
        verdict = "same" if not diffs else "DIFFERS: " + "; ".join(diffs[:4]) + (" ..." if len(diffs) > 4 else "")
        weights = a.get("weights", "-")
        print(f"{label(config):{width}}  {weights:12}  {verdict}")
    print(f"{len(configs) - failures} of {len(configs)} identical" + (": the change is NOT neutral" if failures else ""))
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
