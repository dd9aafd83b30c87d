"""Run records on disk: cache-or-train, code fingerprints, and tables over seeds.

A finished run is stored as ``<results_dir>/<run name>/record.json`` (committed to the
repository for the ``cpu`` profile) next to ``checkpoint.pt`` and ``best.pt`` (not
committed). :func:`run_or_load` returns the stored record when its configuration hash
*and* the fingerprint of the code it depends on match, and trains otherwise, so the book
shows multi-seed tables without retraining them in every build, and never shows a number
that the current code would not produce.

The few runs whose *model* a chapter needs (``need_model=True``: loss landscapes, gradient
maps, decision boundaries) also keep ``weights.pt``, the last and best weights of the run
that made the record, committed with it. A chapter then computes its figures from stored
weights, never from a retrain: float results of training differ between processor types,
so a retrain on another machine would not reproduce the stored outputs. When the weights
are missing the run is retrained for them, the committed record is kept, and a warning
says whether the retrain reproduced it.
"""
from __future__ import annotations

import functools
import hashlib
import json
import math
import shutil
import warnings
from pathlib import Path

import torch

from advlit.config import RunConfig
# the fingerprints live in advlit.fingerprint (the trainer stamps its records with them);
# re-exported here, where the records are read
from advlit.fingerprint import (  # noqa: F401
    CORE_FILES, PACKAGE_DIR, _code_only, _code_only_cached, _data_and_model_code, _method_files, code_fingerprint,
    module_fingerprint,
)
from advlit.utils import ConfigError

REPO_DIR = PACKAGE_DIR.parent


def run_name(config: RunConfig) -> str:
    """Directory name of a run: readable prefix + configuration hash."""
    method = config.method.replace("+", "-")
    return f"{method}_{config.dataset}_s{config.seed}_{config.hash()}"


#: the committed weights of a run whose model a chapter loads
WEIGHTS = "weights.pt"


def load_record(run_dir: str | Path) -> dict | None:
    """The run record in ``run_dir``, or ``None`` when there is none or it is damaged (a
    damaged record is reported with a warning; the caller retrains)."""
    path = Path(run_dir) / "record.json"
    if not path.exists():
        return None
    try:
        record = json.loads(path.read_text())
        if not isinstance(record, dict):
            raise ValueError("not a JSON object")
    except (ValueError, UnicodeDecodeError) as err:
        warnings.warn(f"damaged run record {path} ({err}); the run is trained again", stacklevel=2)
        return None
    return record


def is_current(record: dict | None, config: RunConfig) -> bool:
    """True when ``record`` is complete and was made by this config and this code."""
    return bool(record and record.get("complete") and record.get("config_hash") == config.hash()
                and record.get("code") == code_fingerprint(config))


@functools.lru_cache(maxsize=8)
def _read_weights(path: str, mtime_ns: int, size: int) -> dict:
    """The contents of a weights file, read once per version of the file (a chapter asks
    for the same weights several times: model, method state, identity)."""
    from advlit.checkpoint_io import read_checkpoint

    return read_checkpoint(path, keys=("config", "config_hash", "code", "last"))


def stored_weights(run_dir: str | Path, record: dict) -> dict | None:
    """The committed ``weights.pt`` of ``run_dir`` if it belongs to ``record`` (same
    configuration hash and code fingerprint), else ``None`` (with a warning when the file
    is damaged). Callers must not modify the returned tensors: they are shared."""
    path = Path(run_dir) / WEIGHTS
    if not path.exists():
        return None
    stat = path.stat()
    try:
        state = _read_weights(str(path), stat.st_mtime_ns, stat.st_size)
    except ConfigError as err:
        warnings.warn(f"damaged weights file, not used: {err}", stacklevel=2)
        return None
    if state["config_hash"] != record.get("config_hash") or state["code"] != record.get("code"):
        return None
    return state


def write_weights(run_dir: str | Path, record: dict) -> Path:
    """Write ``weights.pt`` from the run's checkpoints: the last and best model weights and
    the method's final state (auxiliary networks such as FGSM-SDI's generator), with the
    record's configuration hash and code fingerprint. No optimizer state: it cannot resume."""
    from advlit.train import BEST, CHECKPOINT

    run_dir = Path(run_dir)
    checkpoint = torch.load(run_dir / CHECKPOINT, map_location="cpu", weights_only=False)
    last = checkpoint["model"]
    best = torch.load(run_dir / BEST, map_location="cpu", weights_only=False)["model"] if (run_dir / BEST).exists() else None
    same = best is not None and all(torch.equal(best[k], last[k]) for k in last)
    state = {"config": record["config"], "config_hash": record["config_hash"], "code": record["code"],
             "best_epoch": record.get("best_epoch"), "last": last, "best": None if same else best,
             "method": checkpoint["method"]}
    tmp = run_dir / (WEIGHTS + ".tmp")
    torch.save(state, tmp)
    tmp.replace(run_dir / WEIGHTS)
    return run_dir / WEIGHTS


def _same_numbers(a: dict, b: dict) -> bool:
    strip = lambda h: [{k: v for k, v in row.items() if k != "seconds"} for row in h]  # noqa: E731
    return strip(a["history"]) == strip(b["history"]) and a["final"] == b["final"]


def _retrain_for_weights(config: RunConfig, run_dir: Path, record: dict, progress) -> None:
    """The record is current but its weights are missing: train again in a scratch
    directory, keep the committed record, take the weights, and say whether they match."""
    from advlit.runner import build_trainer
    from advlit.train import BEST, CHECKPOINT, environment

    scratch = run_dir / "retrain.tmp"
    if scratch.exists():
        shutil.rmtree(scratch)
    fresh = build_trainer(config, progress=progress).fit(scratch)
    for name in (CHECKPOINT, BEST):
        if (scratch / name).exists():
            (scratch / name).replace(run_dir / name)
    shutil.rmtree(scratch)
    if not _same_numbers(fresh, record):
        here, there = environment()["cpu"], record.get("environment", {}).get("cpu")
        warnings.warn(f"{run_dir.name}: the weights were retrained (no {WEIGHTS}) and the retrain differs from "
                      f"the committed record (this processor: {here}; the record's: {there}); the record is kept, "
                      "figures drawn from these weights may differ slightly from the stored ones", stacklevel=3)
    write_weights(run_dir, record)


def run_or_load(config: RunConfig, results_dir: str | Path, need_model: bool = False,
                progress: bool | None = False) -> dict:
    """Return the current record of ``config`` from ``results_dir``, training if needed.

    ``need_model=True`` also guarantees the run's weights (:data:`WEIGHTS`, written after
    training; retrained with a warning when only the record is present: see the module
    docstring). The record's ``"run_dir"`` key tells where it lives.
    """
    from advlit.runner import build_trainer
    from advlit.train import CHECKPOINT

    run_dir = Path(results_dir) / run_name(config)
    record = load_record(run_dir)
    if is_current(record, config):
        if need_model and stored_weights(run_dir, record) is None:
            _retrain_for_weights(config, run_dir, record, progress)
    else:
        have_checkpoint = (run_dir / CHECKPOINT).exists()
        resume = have_checkpoint and record is not None and not record.get("complete") \
            and record.get("code") == code_fingerprint(config) and record.get("config_hash") == config.hash()
        record = build_trainer(config, progress=progress).fit(run_dir, resume=resume)
        if need_model:
            write_weights(run_dir, record)
    record["run_dir"] = str(run_dir)
    return record


def final_state(record: dict, which: str = "last", device="cpu") -> dict:
    """``{"config", "model", ...}`` of the ``last`` or ``best`` weights of the run of
    ``record`` (the ``last`` state also holds ``"method"``, the method's final state): from
    its :data:`WEIGHTS` file when it belongs to the record, else from its checkpoints."""
    from advlit.train import BEST, CHECKPOINT

    run_dir = Path(record["run_dir"])
    weights = stored_weights(run_dir, record)
    if weights is None:
        return torch.load(run_dir / (CHECKPOINT if which == "last" else BEST), map_location=device,
                          weights_only=False)
    model = weights[which] if weights.get(which) is not None else weights["last"]  # best None: same as last
    return {"config": weights["config"], "model": model, "method": weights["method"] if which == "last" else None}


def load_model(record: dict, which: str = "last", device="cpu") -> torch.nn.Module:
    """Rebuild the model of a run record and load its ``last`` or ``best`` weights
    (:func:`final_state`)."""
    return model_from_checkpoint(final_state(record, which, device), device)


def model_from_checkpoint(state: dict, device="cpu") -> torch.nn.Module:
    """Rebuild a model from a checkpoint dict holding ``config`` and ``model``."""
    from advlit.data import dataset_info
    from advlit.models import get_model

    cfg = RunConfig.from_dict(state["config"])
    info = dataset_info(cfg.dataset)
    normalize = (info.mean, info.std) if info.mean is not None else None
    model = get_model(cfg.model or info.default_model, info.num_classes, info.input_shape,
                      normalize=normalize, **cfg.model_args)
    model.load_state_dict(state["model"])
    return model.to(device).eval()


def model_identity(record: dict) -> list[str]:
    """What identifies the weights of a run: its configuration hash, code fingerprint and a
    hash of its last weights (the same configuration and code train other weights on
    another processor type)."""
    state = final_state(record)["model"]
    digest = hashlib.sha256()
    for name in sorted(state):
        digest.update(name.encode())
        digest.update(state[name].detach().cpu().contiguous().numpy().tobytes())
    return [record["config_hash"], record["code"], digest.hexdigest()[:12]]


def cached_json(path: str | Path, key: dict, compute, code=()):
    """``compute()`` (a JSON-serialisable value), cached in the JSON file ``path`` while
    ``key`` and the code of ``code`` (functions or classes: their modules are hashed) match.

    Chapters compute tables from stored weights through this cache: the numbers an attack
    gives on stored weights still depend, by an image or two, on the processor's float
    kernels, so the book stores them once and every build on any machine shows the same
    table; delete the file (or change anything in ``key``) to recompute.
    """
    path = Path(path)
    full_key = {**key, "code": module_fingerprint(*code) if code else None}
    if path.exists():
        try:
            cached = json.loads(path.read_text())
            if cached.get("key") == json.loads(json.dumps(full_key)):
                return cached["value"]
        except (ValueError, UnicodeDecodeError, AttributeError):
            warnings.warn(f"damaged analysis cache {path}; computing it again", stacklevel=2)
    value = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"key": full_key, "value": value}, indent=1))
    tmp.replace(path)
    return json.loads(json.dumps(value))


def mean_std(values) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    values = [float(v) for v in values]
    m = sum(values) / len(values)
    if len(values) < 2:
        return m, 0.0
    return m, math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1))


def summarize(records_by_label: dict[str, list[dict]], metrics=("clean", "pgd-20"), checkpoint: str = "last",
              digits: int = 1, with_time: bool = True):
    """A pandas table: one row per label, ``mean ± std`` over the records (seeds) of each
    final test metric, plus seconds per epoch. Values come only from the records."""
    import pandas as pd

    rows = []
    for label, records in records_by_label.items():
        row = {"method": label, "seeds": len(records)}
        for metric in metrics:
            m, s = mean_std(r["final"][checkpoint][metric] for r in records)
            row[metric] = f"{m:.{digits}f} ± {s:.{digits}f}"
        if with_time:
            m, s = mean_std(r["seconds_per_epoch"] for r in records)
            row["s/epoch"] = f"{m:.2f}"
        rows.append(row)
    return pd.DataFrame(rows).set_index("method")


def paper_table(filename: str, **filters):
    """Load ``book/paper_tables/<filename>`` (long format, one number per row) filtered by
    column values; these numbers are *quotes* from the papers, never results of ours."""
    import pandas as pd

    df = pd.read_csv(REPO_DIR / "book" / "paper_tables" / filename, dtype={"eps": str})
    for key, value in filters.items():
        df = df[df[key].isin(value if isinstance(value, (list, tuple)) else [value])]
    return df
