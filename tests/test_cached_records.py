"""The committed run records still reproduce: retrain a few of them and compare exactly.

Each CI run samples ``ADVLIT_RECHECK`` (default 2) of the committed ``results/cpu`` records
that are current for this code, cheap (at most ``ADVLIT_RECHECK_SECONDS`` of training,
default 90 s as recorded) and made on this type of processor with as many threads as this
process uses, retrains them from their stored configuration and requires the same
per-epoch metrics and the same final evaluation, number for number. (Another processor type dispatches other float kernels:
the last bits differ from the first epochs on, and a run that overfits catastrophically
amplifies them; so does another thread count. Records are compared only where both match.)
"""
import json
import os
import random
from pathlib import Path

import pytest
import torch

from advlit.config import RunConfig
from advlit.results import REPO_DIR, is_current
from advlit.train import Trainer, cpu_name

RECORDS = sorted((REPO_DIR / "results" / "cpu").glob("*/record.json"))


def _candidates():
    limit = float(os.environ.get("ADVLIT_RECHECK_SECONDS", "90"))
    here = {"cpu": cpu_name(), "threads": torch.get_num_threads()}
    out = []
    for path in RECORDS:
        record = json.loads(path.read_text())
        config = RunConfig.from_dict(record["config"])
        if (is_current(record, config) and record["seconds_per_epoch"] * config.epochs <= limit
                and all(record["environment"].get(k) == v for k, v in here.items())):
            out.append(path)
    return out


def _sample():
    candidates = _candidates()
    k = min(int(os.environ.get("ADVLIT_RECHECK", "2")), len(candidates))
    return random.Random(os.environ.get("ADVLIT_RECHECK_SEED")).sample(candidates, k) if k else []


def _strip(history):
    return [{k: v for k, v in row.items() if k != "seconds"} for row in history]


def test_committed_records_are_current():
    """Every committed record was made by the current code (else the book would show stale numbers)."""
    stale = []
    for path in RECORDS:
        record = json.loads(path.read_text())
        if not is_current(record, RunConfig.from_dict(record["config"])):
            stale.append(path.parent.name)
    assert not stale, f"stale records (regenerate with `advlit book run`): {stale}"


@pytest.mark.parametrize("path", _sample(), ids=lambda p: Path(p).parent.name)
def test_sampled_record_reproduces_exactly(path):
    stored = json.loads(Path(path).read_text())
    fresh = Trainer(RunConfig.from_dict(stored["config"]), progress=False).fit()
    assert _strip(fresh["history"]) == _strip(stored["history"])
    assert fresh["final"] == stored["final"]
