"""The stand-in study of chapter 01 (issue 14): its criteria, its experiments, its timing."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from advlit.analysis.standin import candidate_row, collapses, plateau_gain
from advlit.bench import same_machine, time_experiments
from advlit.experiments import PROFILES, basics, get_config
from advlit.schedules import lr_schedule
from advlit.train import cpu_name
from advlit.utils import ConfigError

from helpers import tiny_config


def test_plateau_gain_compares_the_last_third_with_the_middle_third():
    flat = [10.0] * 9 + [40.0] * 21  # reached 40 by epoch 10
    assert plateau_gain(flat) == 0.0
    climbing = [float(e) for e in range(1, 31)]  # +1 point per epoch to the end
    assert plateau_gain(climbing) == 30 - 20
    # epoch 10 (index 9) belongs to the middle third: a curve that peaks there has plateaued
    peak_at_10 = [0.0] * 9 + [50.0] + [45.0] * 20
    assert plateau_gain(peak_at_10) == -5.0
    # epoch 21 (index 20) belongs to the last third
    jump_at_21 = [30.0] * 20 + [38.0] + [30.0] * 9
    assert plateau_gain(jump_at_21) == 8.0
    with pytest.raises(ValueError):
        plateau_gain([1.0, 2.0])


def _record(curve, fgsm=None):
    fgsm = fgsm or curve
    return {"history": [{"epoch": i + 1, "val_robust": r, "val_fgsm": f} for i, (r, f) in enumerate(zip(curve, fgsm))]}


def test_collapses_and_candidate_row_read_the_validation_history():
    stable = _record([20.0 + e for e in range(30)])
    collapsed = _record([30.0] * 10 + [0.5] * 20, fgsm=[35.0] * 10 + [80.0] * 20)
    assert collapses([stable, collapsed, collapsed]) == 2
    longer = _record([20.0 + e for e in range(60)])
    row = candidate_row([stable, stable], [longer], [collapsed, collapsed, stable], [stable])
    assert row["PGD-AT val PGD-20 (last epoch)"] == "49.0 ± 0.0"
    assert row["PGD-AT, 2x epochs: val PGD-20 (last epoch)"] == "79.0 ± 0.0"
    assert row["PGD-AT plateau gain (points)"] == 10.0
    assert row["FGSM-RS 2 eps collapsed"] == "2 of 3" and row["FGSM-RS eps collapsed"] == "0 of 1"


def test_the_chosen_candidate_is_the_cpu_profile():
    chosen = basics.STANDIN_CANDIDATES[basics.STANDIN_CHOSEN]
    assert {key: PROFILES["cpu"].get(key) for key in chosen} == chosen
    assert basics.standin_experiment(basics.STANDIN_CHOSEN, "pgd_at") == "basics.pgd_at"


@pytest.mark.parametrize("candidate", [c for c in basics.STANDIN_CANDIDATES if c != basics.STANDIN_CHOSEN])
@pytest.mark.parametrize("run", basics.STANDIN_RUNS)
def test_a_candidate_run_differs_from_the_chapters_run_only_in_its_settings(candidate, run):
    name = basics.standin_experiment(candidate, run)
    assert name != f"basics.{run}"
    mine, chapters = get_config(name, "cpu").to_dict(), get_config(f"basics.{run}", "cpu").to_dict()
    settings = basics.standin_settings(candidate, chapters["epochs"])
    assert {key: mine.pop(key) for key in settings} == settings
    for key in settings:
        chapters.pop(key)
    assert mine == chapters
    # at the gpu profile the study is not run: the candidate is the chapter's run itself
    assert get_config(name, "gpu") == get_config(f"basics.{run}", "gpu")


@pytest.mark.parametrize("run, epochs, milestones", [("pgd_at", 30, [15, 23]), ("pgd_at_long", 60, [30, 45])])
def test_the_step_candidate_anneals_at_half_and_three_quarters_of_its_own_budget(run, epochs, milestones):
    config = get_config(basics.standin_experiment("pool_last_32_64_step", run), "cpu")
    assert (config.epochs, config.lr_schedule, config.milestones) == (epochs, "multistep", milestones)
    lr = lr_schedule(config.lr_schedule, config.lr, config.epochs, config.milestones)
    # the whole last third of training runs at the LR of after the first step or lower: the
    # schedule anneals before the last third, which the cyclic one spends annealing
    assert lr(epochs / 2 - 0.01) == config.lr
    assert all(lr(t) <= config.lr / 10 * (1 + 1e-9) for t in np.linspace(2 * epochs / 3, epochs, 50))
    assert lr(epochs) == pytest.approx(config.lr / 100)


class _Chapter:
    def __init__(self, results_dir, configs):
        self.results_dir, self._configs = results_dir, configs

    def config(self, name):
        return self._configs[name]


def test_time_experiments_times_every_epoch_and_reuses_its_cache(tmp_path, monkeypatch):
    chapter = _Chapter(tmp_path, {"a": tiny_config(epochs=1), "b": tiny_config(method="standard", epochs=1)})
    out = time_experiments(chapter, ["a", "b"], epochs=1, rounds=2, cache="timing.json")
    assert set(out["seconds"]) == {"a", "b"} and all(len(v) == 2 for v in out["seconds"].values())
    assert all(s > 0 for v in out["seconds"].values() for s in v)
    assert json.loads((tmp_path / "timing.json").read_text())["seconds"] == out["seconds"]
    assert out["environment"]["cpu"] == cpu_name() and out["environment"]["threads"] == torch.get_num_threads()

    import advlit.train

    monkeypatch.setattr(advlit.train, "Trainer", None)  # a second measurement would fail
    assert time_experiments(chapter, ["a", "b"], epochs=1, rounds=2, cache="timing.json") == out
    with pytest.raises(TypeError):  # another number of rounds is measured again
        time_experiments(chapter, ["a", "b"], epochs=1, rounds=3, cache="timing.json")


def test_same_machine_compares_processor_and_threads_and_is_unknown_without_a_record():
    intel = {"environment": {"cpu": "Intel / AVX512", "cuda": None, "threads": 1}}
    amd = {"environment": {"cpu": "AMD EPYC / AVX512", "cuda": None, "threads": 1}}
    two_threads = {"environment": {"cpu": "Intel / AVX512", "cuda": None, "threads": 2}}
    assert same_machine(intel, dict(intel)) is True
    assert same_machine(intel, amd) is False
    assert same_machine(intel, two_threads) is False
    assert same_machine(intel, {"seconds": {}}) is None  # a timing file made before the field existed


def test_first_epoch_starts_a_methods_timed_epochs_later_and_keys_the_cache(tmp_path, monkeypatch):
    """DyART's first epochs train on clean data only: the chapter times its later epochs."""
    import advlit.train

    seen = {}

    class FakeTrainer:
        steps_per_epoch = 3

        def __init__(self, config, progress=False):
            self.name = config.method

        def train_epoch(self, epoch):
            seen.setdefault(self.name, []).append(epoch)

    monkeypatch.setattr(advlit.train, "Trainer", FakeTrainer)
    chapter = _Chapter(tmp_path, {"a": tiny_config(epochs=1), "b": tiny_config(method="standard", epochs=1)})
    out = time_experiments(chapter, ["a", "b"], epochs=1, rounds=2, cache="t.json", first_epoch={"b": 3})
    assert seen == {"fgsm_rs": [0, 1], "standard": [3, 4]} and out["first_epoch"] == {"b": 3}
    seen.clear()
    assert time_experiments(chapter, ["a", "b"], epochs=1, rounds=2, cache="t.json", first_epoch={"b": 3}) == out
    assert seen == {}  # the cache was made with the same first epochs
    time_experiments(chapter, ["a", "b"], epochs=1, rounds=2, cache="t.json")
    assert seen == {"fgsm_rs": [0, 1], "standard": [0, 1]}  # other first epochs: measured again
    with pytest.raises(ConfigError, match="not timed"):
        time_experiments(chapter, ["a"], first_epoch={"b": 1})
