"""Run records on disk: cache-or-train, code fingerprints, and tables over seeds.

A finished run is stored as ``<results_dir>/<run name>/record.json`` (committed to the
repository for the ``cpu`` profile) next to ``checkpoint.pt`` and ``best.pt`` (not
committed). :func:`run_or_load` returns the stored record when its configuration hash
*and* the fingerprint of the code it depends on match, and trains otherwise, so the book
shows multi-seed tables without retraining them in every build, and never shows a number
that the current code would not produce.
"""
from __future__ import annotations

import ast
import functools
import hashlib
import inspect
import json
import math
from pathlib import Path

import torch

from advlit.config import RunConfig

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_DIR = PACKAGE_DIR.parent
#: files every run depends on, whatever its method
CORE_FILES = ("config.py", "train.py", "evaluate.py", "schedules.py", "utils.py",
              "data/*.py", "models/*.py", "attacks/*.py", "methods/base.py", "methods/registry.py")


def _method_files(spec: str) -> list[Path]:
    from advlit.methods import method_class

    files = set()
    for layer in spec.split("+"):
        for cls in inspect.getmro(method_class(layer.strip())):
            if cls.__module__.startswith("advlit."):
                files.add(Path(inspect.getsourcefile(cls)).resolve())
    return sorted(files)


@functools.lru_cache(maxsize=None)
def _code_only_cached(path: str, mtime_ns: int) -> str:
    return _code_only(Path(path).read_text())


def _code_only(source: str) -> str:
    """The syntax tree of ``source`` without docstrings: comments, docstrings and layout
    can change without invalidating the records, any change of code invalidates them."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) \
                and isinstance(getattr(body[0], "value", None), ast.Constant) and isinstance(body[0].value.value, str):
            node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree, annotate_fields=False, include_attributes=False)


def code_fingerprint(spec: str) -> str:
    """Hash of the code (not the docs) of the files a run of method ``spec`` depends on:
    the core files (:data:`CORE_FILES`) and the modules of every class of its methods."""
    files: set[Path] = set()
    for pattern in CORE_FILES:
        files.update(p.resolve() for p in PACKAGE_DIR.glob(pattern))
    files.update(_method_files(spec))
    digest = hashlib.sha256()
    for path in sorted(files):
        digest.update(str(path.relative_to(PACKAGE_DIR)).encode())
        digest.update(_code_only_cached(str(path), path.stat().st_mtime_ns).encode())
    return digest.hexdigest()[:12]


def run_name(config: RunConfig) -> str:
    """Directory name of a run: readable prefix + configuration hash."""
    method = config.method.replace("+", "-")
    return f"{method}_{config.dataset}_s{config.seed}_{config.hash()}"


def load_record(run_dir: str | Path) -> dict | None:
    path = Path(run_dir) / "record.json"
    if not path.exists():
        return None
    return json.loads(path.read_text())


def is_current(record: dict | None, config: RunConfig) -> bool:
    """True when ``record`` is complete and was made by this config and this code."""
    return bool(record and record.get("complete") and record.get("config_hash") == config.hash()
                and record.get("code") == code_fingerprint(config.method))


def run_or_load(config: RunConfig, results_dir: str | Path, need_model: bool = False,
                progress: bool | None = False) -> dict:
    """Return the current record of ``config`` from ``results_dir``, training if needed.

    ``need_model=True`` also guarantees that the checkpoints exist (retraining, which is
    deterministic, when only the record is present). The record's ``"run_dir"`` key
    tells where it lives.
    """
    from advlit.train import CHECKPOINT, Trainer

    run_dir = Path(results_dir) / run_name(config)
    record = load_record(run_dir)
    have_model = (run_dir / CHECKPOINT).exists()
    if not (is_current(record, config) and (have_model or not need_model)):
        resume = have_model and record is not None and not record.get("complete") \
            and record.get("code") == code_fingerprint(config.method) and record.get("config_hash") == config.hash()
        record = Trainer(config, progress=progress).fit(run_dir, resume=resume)
    record["run_dir"] = str(run_dir)
    return record


def load_model(record: dict, which: str = "last", device="cpu") -> torch.nn.Module:
    """Rebuild the model of a run record and load its ``last`` or ``best`` weights."""
    from advlit.train import BEST, CHECKPOINT

    path = Path(record["run_dir"]) / (CHECKPOINT if which == "last" else BEST)
    state = torch.load(path, map_location=device, weights_only=False)
    return model_from_checkpoint(state, device)


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
