"""The results cache (advlit.results.run_or_load): stored weights are used instead of a
retrain, a missing weights file is retrained without touching the record, and damaged
files are reported and replaced, never a traceback."""
import json
import shutil
import warnings

import pytest
import torch

from advlit import results
from advlit.results import WEIGHTS, load_model, load_record, run_name, run_or_load
from advlit.train import BEST, CHECKPOINT, Trainer
from tests.helpers import tiny_config


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One tiny run with its weights, trained once for the module."""
    root = tmp_path_factory.mktemp("results")
    cfg = tiny_config(epochs=2)
    record = run_or_load(cfg, root, need_model=True)
    return cfg, root, record


def fresh_copy(trained, tmp_path):
    cfg, root, record = trained
    run_dir = tmp_path / run_name(cfg)
    shutil.copytree(root / run_name(cfg), run_dir)
    return cfg, run_dir


def no_training(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("trained although the repository holds the run")

    monkeypatch.setattr(Trainer, "fit", refuse)


def test_weights_are_written_with_the_record_they_belong_to(trained):
    cfg, root, record = trained
    weights = torch.load(root / run_name(cfg) / WEIGHTS, weights_only=False)
    assert weights["config_hash"] == record["config_hash"] == cfg.hash() and weights["code"] == record["code"]
    assert set(weights) >= {"last", "best", "method", "config"}


def test_committed_weights_are_used_without_checkpoints(trained, tmp_path, monkeypatch):
    """A clone holds record.json and weights.pt only: nothing is retrained, and the model is
    the one that made the record."""
    cfg, run_dir = fresh_copy(trained, tmp_path)
    expected = torch.load(run_dir / CHECKPOINT, weights_only=False)["model"]
    for name in (CHECKPOINT, BEST):
        (run_dir / name).unlink()
    no_training(monkeypatch)
    record = run_or_load(cfg, tmp_path, need_model=True)
    model = load_model(record, "last")
    assert all(torch.equal(model.state_dict()[k], v) for k, v in expected.items())
    load_model(record, "best")  # best falls back to last when they are the same weights


def test_missing_weights_retrain_keeps_the_record_and_warns_when_it_differs(trained, tmp_path):
    cfg, run_dir = fresh_copy(trained, tmp_path)
    for name in (CHECKPOINT, BEST, WEIGHTS):
        (run_dir / name).unlink()
    stored = json.loads((run_dir / "record.json").read_text())
    stored["final"]["last"]["clean"] += 1.0  # as if made on another processor type
    (run_dir / "record.json").write_text(json.dumps(stored))
    with pytest.warns(UserWarning, match="differs from the committed record"):
        record = run_or_load(cfg, tmp_path, need_model=True)
    assert record["final"]["last"]["clean"] == stored["final"]["last"]["clean"]  # the record is kept
    assert json.loads((run_dir / "record.json").read_text()) == stored
    assert (run_dir / WEIGHTS).exists() and not (run_dir / "retrain.tmp").exists()


def test_missing_weights_retrain_is_silent_when_it_reproduces(trained, tmp_path):
    cfg, run_dir = fresh_copy(trained, tmp_path)
    (run_dir / WEIGHTS).unlink()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        run_or_load(cfg, tmp_path, need_model=True)
    assert (run_dir / WEIGHTS).exists()


def test_weights_of_another_configuration_are_not_used(trained, tmp_path):
    cfg, run_dir = fresh_copy(trained, tmp_path)
    weights = torch.load(run_dir / WEIGHTS, weights_only=False)
    weights["config_hash"] = "0" * 12
    torch.save(weights, run_dir / WEIGHTS)
    record = load_record(run_dir)
    assert results.stored_weights(run_dir, record) is None


@pytest.mark.parametrize("damage", ["truncated", "empty", "not json"])
def test_damaged_record_is_reported_and_the_run_trained_again(trained, tmp_path, damage):
    cfg, run_dir = fresh_copy(trained, tmp_path)
    path = run_dir / "record.json"
    text = path.read_text()
    path.write_text({"truncated": text[: len(text) // 2], "empty": "", "not json": "[1, 2]"}[damage])
    with pytest.warns(UserWarning, match="damaged run record"):
        record = run_or_load(cfg, tmp_path)
    assert record["complete"] and json.loads(path.read_text())["complete"]


def test_damaged_weights_are_reported_and_replaced(trained, tmp_path):
    cfg, run_dir = fresh_copy(trained, tmp_path)
    data = (run_dir / WEIGHTS).read_bytes()
    (run_dir / WEIGHTS).write_bytes(data[: len(data) // 3])
    with pytest.warns(UserWarning, match="damaged weights file"):
        record = run_or_load(cfg, tmp_path, need_model=True)
    assert results.stored_weights(run_dir, record) is not None


def test_cached_json_computes_once_per_key_and_survives_damage(tmp_path):
    calls = []

    def compute():
        calls.append(1)
        return {"a": [1.5, 2.0]}

    path = tmp_path / "analysis.json"
    assert results.cached_json(path, {"k": 1}, compute, code=[run_or_load]) == {"a": [1.5, 2.0]}
    assert results.cached_json(path, {"k": 1}, compute, code=[run_or_load]) == {"a": [1.5, 2.0]}
    assert len(calls) == 1
    results.cached_json(path, {"k": 2}, compute, code=[run_or_load])
    assert len(calls) == 2
    path.write_text("{not json")
    with pytest.warns(UserWarning, match="damaged analysis cache"):
        results.cached_json(path, {"k": 2}, compute)
    assert len(calls) == 3


def test_model_identity_follows_the_weights(trained, tmp_path):
    """The same configuration and code give other weights on another processor type: the
    identity of a model must change with its weights, not only with its configuration."""
    cfg, run_dir = fresh_copy(trained, tmp_path)
    record = {**load_record(run_dir), "run_dir": str(run_dir)}
    before = results.model_identity(record)
    weights = torch.load(run_dir / WEIGHTS, weights_only=False)
    first = next(iter(weights["last"]))
    weights["last"][first] = weights["last"][first] + 1e-6
    torch.save(weights, run_dir / WEIGHTS)
    after = results.model_identity(record)
    assert before[:2] == after[:2] and before[2] != after[2]
