"""Re-stamping records after a proven-neutral change (tools/restamp_records.py --same-scheme)
and the proof (tools/check_neutral_change.py): the decisions, without training."""
import copy
import json
import math
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch

from advlit import results
from advlit.config import RunConfig

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))

import check_neutral_change as neutral  # noqa: E402
import restamp_records as restamp  # noqa: E402

RECORD = {"config": {"method": "pgd_at"}, "config_hash": "abc", "code": "old1", "complete": True,
          "history": [{"epoch": 1, "train_loss": 2.3, "lr": 0.1, "seconds": 0.8, "val_robust": 7.0},
                      {"epoch": 2, "train_loss": 1.9, "lr": 0.1, "seconds": 0.7, "val_robust": float("nan")}],
          "best_epoch": 2, "seconds_per_epoch": 0.75, "final": {"last": {"clean": 64.7, "pgd-10": 23.9}},
          "environment": {"cpu": "A"}}


# ------------------------------------------------------------ check_neutral_change
def test_records_differing_only_in_times_environment_and_code_are_the_same():
    other = copy.deepcopy(RECORD)
    other["history"][0]["seconds"] = 9.0
    other.update(seconds_per_epoch=3.0, environment={"cpu": "B"}, code="new1")
    assert neutral.differences(RECORD, other) == []  # NaN equals NaN
    assert neutral.compare({"record": RECORD, "weights": "w"}, {"record": other, "weights": "w"}) == []


def test_a_changed_accuracy_loss_epoch_or_weights_is_caught():
    other = copy.deepcopy(RECORD)
    other["final"]["last"]["clean"] = math.nextafter(64.7, 100)  # one bit
    other["history"][1]["train_loss"] = 1.8
    assert neutral.differences(RECORD, other) == [f"final.last.clean: 64.7 != {math.nextafter(64.7, 100)!r}",
                                                  "history[1].train_loss: 1.9 != 1.8"]
    shorter = {**RECORD, "history": RECORD["history"][:1]}
    assert neutral.differences(RECORD, shorter) == ["history: 2 entries != 1"]
    assert neutral.differences(RECORD, {**RECORD, "best_epoch": 1}) == ["best_epoch: 2 != 1"]
    assert neutral.compare({"record": RECORD, "weights": "w1"}, {"record": RECORD, "weights": "w2"}) == [
        "last weights: w1 != w2"]
    assert neutral.compare({"error": "ValueError: x"}, {"record": RECORD, "weights": "w"}) == [
        "old code failed: ValueError: x"]


def test_default_configurations_are_short_and_one_per_kind(tmp_path):
    for k, (method, schedule) in enumerate([("pgd_at", "cyclic"), ("pgd_at", "cyclic"), ("pgd_at", "piecewise")]):
        (tmp_path / f"run{k}").mkdir()
        config = RunConfig(method=method, lr_schedule=schedule, seed=k).to_dict()
        (tmp_path / f"run{k}" / "record.json").write_text(json.dumps({"config": config}))
    configs = neutral.record_configs(tmp_path)
    assert [(c["lr_schedule"], c["seed"]) for c in configs] == [("cyclic", 0), ("piecewise", 2)]
    short = neutral.shorten(configs[0])
    assert (short["epochs"], short["val_subset"], short["final_subset"], short["final_attacks"]) == (
        2, 32, 64, ["clean", "pgd-10"])
    RunConfig.from_dict(short).validate()


# ----------------------------------------------------------- restamp --same-scheme
def _answer(fingerprint, **parts):
    return {"fingerprint": fingerprint, "same_scheme": True,
            "parts": {"advlit/train.py": "t", "advlit/schedules.py": "s", **parts}}


def test_same_scheme_verdicts():
    verdict = restamp.same_scheme_verdict
    old = _answer("old1")
    changed = _answer("new1", **{"advlit/schedules.py": "s2"})
    assert verdict("old1", old, changed, ["advlit/schedules.py"]) == ("restamped", "old1 -> new1")
    assert verdict("old1", old, changed, ["./advlit/schedules.py"])[0] == "restamped"
    assert verdict("old1", old, changed, []) == ("kept", "changed: advlit/schedules.py")
    assert verdict("zzz", old, changed, ["advlit/schedules.py"]) == (
        "kept", "its stamp zzz is not --old's fingerprint old1")
    assert verdict("old1", old, _answer("old1"), []) == ("current", "same fingerprint")
    # a part on one side only (a new method file, a model file no longer used) is a change
    extra = _answer("new1", **{"advlit/methods/extra.py": "e"})
    assert verdict("old1", old, extra, []) == ("kept", "changed: advlit/methods/extra.py")
    # a registry function or entry is allowed with its file
    registry = _answer("new1", **{"advlit/models/__init__.py#1": "r2"})
    assert verdict("old1", _answer("old1", **{"advlit/models/__init__.py#1": "r1"}), registry,
                   ["advlit/models/__init__.py"])[0] == "restamped"
    assert verdict("old1", {"error": "ConfigError: x"}, changed, [])[0] == "kept"
    assert "scheme changed" in verdict("old1", {**old, "same_scheme": False}, changed, ["advlit/schedules.py"])[1]


def test_same_scheme_restamps_record_weights_and_cache_keys(tmp_path, monkeypatch, capsys):
    for name, code in (("made_by_old", "old1"), ("made_by_older", "older")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "record.json").write_text(json.dumps({**RECORD, "code": code}, indent=1) + "\n")
    torch.save({"config_hash": "abc", "code": "old1", "last": {}}, tmp_path / "made_by_old" / results.WEIGHTS)
    (tmp_path / "cache.json").write_text(json.dumps({"key": {"x": ["abc", "old1", 64]}, "value": 1}))

    @contextmanager
    def fake_tree(commit):
        assert commit == "c0ffee"
        yield tmp_path / "old-tree"

    def fake_worker(tree, script, items):  # the old code fingerprints "old1", the new "new1"
        assert script is restamp.PARTS_WORKER and len(items) == 2
        is_old = tree == tmp_path / "old-tree"
        return [_answer("old1" if is_old else "new1", **({} if is_old else {"advlit/schedules.py": "s2"}))] * 2

    monkeypatch.setattr(restamp, "commit_tree", fake_tree)
    monkeypatch.setattr(restamp, "run_in_tree", fake_worker)
    assert restamp.same_scheme("c0ffee", ["advlit/schedules.py"], tmp_path, dry_run=True) == 0
    assert json.loads((tmp_path / "made_by_old" / "record.json").read_text())["code"] == "old1"  # dry run
    assert restamp.main(["--same-scheme", "--old", "c0ffee", "--allow", "advlit/schedules.py",
                         "--results", str(tmp_path)]) == 0
    text = (tmp_path / "made_by_old" / "record.json").read_text()
    assert json.loads(text)["code"] == "new1" and text.startswith("{\n") and text.endswith("\n")
    assert json.loads((tmp_path / "made_by_older" / "record.json").read_text())["code"] == "older"
    assert torch.load(tmp_path / "made_by_old" / results.WEIGHTS, weights_only=False)["code"] == "new1"
    assert json.loads((tmp_path / "cache.json").read_text())["key"]["x"] == ["abc", "new1", 64]
    out = capsys.readouterr().out
    assert "restamped made_by_old: old1 -> new1" in out
    assert "kept      made_by_older: its stamp older is not --old's fingerprint old1" in out


def test_the_parts_worker_rebuilds_this_trees_fingerprint():
    """The worker hashes exactly what code_fingerprint hashes (fails when the scheme changes
    without the tool): one subprocess on the working tree, no training."""
    config = RunConfig(method="piat+pgd_at", dataset="digits16")
    answer, toy = restamp.run_in_tree(REPO, restamp.PARTS_WORKER, [{"config": config.to_dict()}, {"toy": "alp"}])
    assert answer["same_scheme"] and answer["fingerprint"] == results.code_fingerprint(config)
    assert {"advlit/schedules.py", "advlit/frameworks/piat.py", "advlit/data/digits.py",
            "advlit/models/small_cnn.py", "advlit/data/__init__.py#0"} <= set(answer["parts"])
    from advlit.analysis.decision_boundary import toy_fingerprint

    assert toy["same_scheme"] and toy["fingerprint"] == toy_fingerprint("alp")
    assert "advlit/analysis/decision_boundary.py" in toy["parts"]
