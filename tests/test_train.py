"""The trainer: determinism, exact resume, schedules, run records, checkpoints."""
import json
from pathlib import Path

import pytest

import advlit
from advlit.config import RunConfig
from advlit.results import load_model, run_or_load
from advlit.schedules import lr_schedule
from advlit.train import BEST, CHECKPOINT, RECORD, Trainer
from advlit.utils import ConfigError
from helpers import same_state, straight_and_resumed, strip_times, tiny_config


@pytest.mark.parametrize("method", ["fgsm_rs", "pgd_at", "trades", "standard", "fgsm"])
def test_same_seed_same_numbers(method):
    cfg = tiny_config(method=method, method_args={"steps": 2} if method in ("pgd_at", "trades") else {})
    a = Trainer(cfg, progress=False)
    rec_a = a.fit()
    b = Trainer(cfg, progress=False)
    rec_b = b.fit()
    assert strip_times(rec_a["history"]) == strip_times(rec_b["history"])
    assert rec_a["final"] == rec_b["final"]
    assert same_state(a.model.state_dict(), b.model.state_dict())


def test_different_seed_different_numbers():
    a = Trainer(tiny_config(seed=0), progress=False).fit()
    b = Trainer(tiny_config(seed=1), progress=False).fit()
    assert strip_times(a["history"]) != strip_times(b["history"])


@pytest.mark.parametrize("method", ["fgsm_rs", "pgd_at"])
def test_resume_reproduces_uninterrupted_run_bit_for_bit(tmp_path, method):
    cfg = tiny_config(method=method, epochs=4, method_args={"steps": 2} if method == "pgd_at" else {})
    straight, resumed = straight_and_resumed(cfg, tmp_path, stop_after=2)
    assert same_state(straight.optimizer.state_dict()["state"][0], resumed.optimizer.state_dict()["state"][0])


def test_resume_refuses_other_config_and_missing_checkpoint(tmp_path):
    Trainer(tiny_config(epochs=2), progress=False).fit(tmp_path, stop_after=1)
    with pytest.raises(ConfigError, match="different configuration"):
        Trainer(tiny_config(epochs=2, seed=5), progress=False).fit(tmp_path, resume=True)
    with pytest.raises(ConfigError, match="no checkpoint"):
        Trainer(tiny_config(), progress=False).fit(tmp_path / "empty", resume=True)


def test_record_and_checkpoints(tmp_path):
    rec = Trainer(tiny_config(epochs=3), progress=False).fit(tmp_path)
    on_disk = json.loads((tmp_path / RECORD).read_text())
    assert on_disk["complete"] and on_disk["epochs_done"] == 3
    for key in ("config", "config_hash", "code", "method", "history", "best_epoch", "seconds_per_epoch",
                "final", "environment", "overfitting"):
        assert key in on_disk
    assert set(on_disk["final"]) == {"last", "best"}
    assert set(on_disk["final"]["last"]) == {"clean", "fgsm", "pgd-5"}
    row = on_disk["history"][0]
    for key in ("train_loss", "train_acc", "lr", "seconds", "val_clean", "val_fgsm", "val_robust"):
        assert key in row
    assert (tmp_path / CHECKPOINT).exists() and (tmp_path / BEST).exists()
    best = max(on_disk["history"], key=lambda r: r["val_robust"])
    assert on_disk["best_epoch"] == best["epoch"]
    assert rec["final"] == on_disk["final"]


def test_run_or_load_reuses_current_records(tmp_path):
    cfg = tiny_config()
    first = run_or_load(cfg, tmp_path)
    mtime = (tmp_path.glob("*/record.json").__next__()).stat().st_mtime_ns
    second = run_or_load(cfg, tmp_path)
    assert (next(tmp_path.glob("*/record.json"))).stat().st_mtime_ns == mtime
    assert strip_times(first["history"]) == strip_times(second["history"])
    model = load_model(second, "best")
    assert not model.training


@pytest.mark.parametrize("name,peak,t,expected", [
    ("cyclic", 0.2, 0, 0.0), ("cyclic", 0.2, 15, 0.2), ("cyclic", 0.2, 30, 0.0), ("cyclic", 0.2, 7.5, 0.1),
    ("piecewise", 0.1, 23.9, 0.1), ("piecewise", 0.1, 24, 0.01), ("piecewise", 0.1, 28, 0.001),
    ("constant", 0.5, 17, 0.5),
])
def test_lr_schedules(name, peak, t, expected):
    assert lr_schedule(name, peak, 30)(t) == pytest.approx(expected)


def test_multistep_schedule():
    f = lr_schedule("multistep", 1.0, 10, milestones=[3, 6])
    assert [f(t) for t in (0, 3, 6)] == pytest.approx([1.0, 0.1, 0.01])


@pytest.mark.parametrize("field,value,message", [
    ("eps", 0.0, "eps must lie in"), ("eps", 1.5, "eps must lie in"), ("method", "nope", "unknown method"),
    ("dataset", "mnist", "unknown dataset"), ("lr_schedule", "cosine", "unknown LR schedule"),
    ("epochs", 0, "epochs must be"), ("val_attack", "pgd", "unknown attack"),
    ("final_eps_ratios", [0], "final eps ratios must be"), ("final_attacks", ["apgd"], "unknown attack"),
])
def test_bad_config_gives_one_clear_error(field, value, message):
    with pytest.raises(ConfigError, match=message):
        RunConfig(**{field: value}).validate()


def test_config_hash_ignores_data_root_only():
    assert RunConfig(data_root="/a").hash() == RunConfig(data_root="/b").hash()
    assert RunConfig(seed=0).hash() != RunConfig(seed=1).hash()


def test_final_evaluation_reuses_last_when_best_is_last(monkeypatch):
    import advlit.train as train_module

    trainer = Trainer(tiny_config(epochs=1), progress=False)
    trainer.fit()
    calls = []
    real_evaluate = train_module.evaluate
    monkeypatch.setattr(train_module, "evaluate", lambda *a, **k: calls.append(1) or real_evaluate(*a, **k))
    state = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    trainer.best = {"epoch": len(trainer.history), "val_robust": 1.0, "state": state}
    same = trainer.final_evaluation()
    assert same["best"] == same["last"] and len(calls) == 1
    calls.clear()
    trainer.best = {"epoch": 0, "val_robust": 1.0, "state": state}  # same weights, an earlier epoch
    separate = trainer.final_evaluation()
    assert len(calls) == 2 and separate["best"] == separate["last"] == same["last"]


# ---------------------------------------------------------------- layering (issue 20)
PACKAGE_DIR = Path(advlit.__file__).resolve().parent


def _imports(path) -> set[str]:
    """Every module a file imports (``from a.b import c`` counts as ``a.b`` and ``a.b.c``)."""
    import ast

    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_the_trainer_imports_neither_the_method_registry_nor_the_results():
    imported = _imports(PACKAGE_DIR / "train.py")
    assert not {"advlit.methods.registry", "advlit.methods.build_method", "advlit.results"} & imported
    assert not any(name.startswith("advlit.methods.registry") for name in imported)


def test_the_attacks_import_nothing_from_the_methods():
    for path in (PACKAGE_DIR / "attacks").glob("*.py"):
        assert not any(name.startswith("advlit.methods") for name in _imports(path)), path.name


def test_the_trainer_trains_the_method_it_is_given():
    from advlit.runner import build_method, build_trainer

    cfg = tiny_config(epochs=1)
    given = build_method(RunConfig.from_dict({**cfg.to_dict(), "alpha_ratio": 0.5}))
    assert Trainer(cfg, given, progress=False).fit()["method"]["alpha"] == pytest.approx(0.5 * cfg.eps)
    built = build_trainer(cfg, progress=False).fit()
    assert built["method"]["alpha"] == pytest.approx(1.25 * cfg.eps)
    # the configuration alone still works (older callers) and trains the same run
    alone = Trainer(cfg, progress=False).fit()
    assert strip_times(alone["history"]) == strip_times(built["history"]) and alone["final"] == built["final"]
    with pytest.raises(ConfigError, match="given to the trainer is 'fgsm', but the configuration's is 'fgsm_rs'"):
        Trainer(cfg, build_method(RunConfig.from_dict({**cfg.to_dict(), "method": "fgsm"})), progress=False)


def test_building_a_method_draws_no_random_numbers():
    """The runner builds the method before the trainer seeds and initialises the model: no
    method may draw random numbers when it is built (set-up, after seeding, may)."""
    import random

    import numpy as np
    import torch

    from advlit.methods import available_methods, build_method

    for name, cls in available_methods().items():
        spec = f"{name}+fgsm_rs" if cls.wraps else name
        kwargs = {"subset.indices": [0, 1]} if name == "subset" else {}
        torch_state, py_state, np_state = torch.get_rng_state(), random.getstate(), np.random.get_state()[1].copy()
        build_method(spec, 0.1, **kwargs)
        assert torch.equal(torch_state, torch.get_rng_state()), name
        assert random.getstate() == py_state and (np.random.get_state()[1] == np_state).all(), name


def test_results_re_exports_the_fingerprint():
    from advlit import fingerprint, results

    assert results.code_fingerprint is fingerprint.code_fingerprint and results.CORE_FILES == fingerprint.CORE_FILES
    assert results.PACKAGE_DIR == fingerprint.PACKAGE_DIR and results._code_only is fingerprint._code_only


@pytest.mark.parametrize("filename,covered", [("runner.py", True), ("train.py", True), ("fingerprint.py", False),
                                              ("distributed.py", False)])
def test_which_new_modules_the_fingerprint_covers(monkeypatch, filename, covered):
    """runner.py builds the method a run trains (core); fingerprint.py changes no result, and
    a one-process run never imports distributed.py (tests/test_distributed.py)."""
    from advlit import fingerprint

    cfg = tiny_config()
    before = fingerprint.code_fingerprint(cfg)
    target = str((fingerprint.PACKAGE_DIR / filename).resolve())
    assert (fingerprint.PACKAGE_DIR / filename).exists()
    real = fingerprint._code_only_cached
    monkeypatch.setattr(fingerprint, "_code_only_cached",
                        lambda path, mtime: real(path, mtime) + ("<edited>" if path == target else ""))
    assert (fingerprint.code_fingerprint(cfg) != before) == covered
