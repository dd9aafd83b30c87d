"""Several evaluation budgets in one run (``RunConfig.final_eps_ratios``): LAST's Table I
trains at 8/255 and evaluates the same model at 8/255 and 16/255."""
import json
from dataclasses import fields
from pathlib import Path

import pytest
import torch

import advlit.evaluate as evaluate_module
from advlit.config import OPTIONAL_FIELDS, RunConfig
from advlit.data import get_dataset
from advlit.evaluate import eps_ratio_key, evaluate
from advlit.train import Trainer
from advlit.utils import ConfigError
from helpers import tiny_config

RECORDS = sorted((Path(__file__).resolve().parents[1] / "results" / "cpu").glob("*/record.json"))
#: RunConfig().hash() before final_eps_ratios existed (computed on the parent commit)
DEFAULT_HASH = "d9a357aae40c"


def test_key_format():
    assert eps_ratio_key("pgd-20", 2.0) == "pgd-20@2eps"
    assert eps_ratio_key("aa-fast", 2) == "aa-fast@2eps"
    assert eps_ratio_key("cw-20", 1.5) == "cw-20@1.5eps"


def test_unset_field_keeps_every_existing_hash_and_dict():
    assert RunConfig().hash() == DEFAULT_HASH
    for unset in (None, []):
        cfg = RunConfig(final_eps_ratios=unset)
        assert "final_eps_ratios" not in cfg.to_dict() and cfg.hash() == DEFAULT_HASH
    assert RECORDS, "no committed records to check"
    for path in RECORDS:
        record = json.loads(path.read_text())
        cfg = RunConfig.from_dict(record["config"])
        assert cfg.hash() == record["config_hash"], path
        assert cfg.to_dict() == record["config"], path  # a checkpoint of that run still resumes


def test_set_field_enters_hash_and_round_trips():
    cfg = RunConfig(final_eps_ratios=[2])
    assert cfg.hash() != DEFAULT_HASH
    assert cfg.hash() == RunConfig(final_eps_ratios=[2.0]).hash()
    assert cfg.hash() != RunConfig(final_eps_ratios=[2.0, 3.0]).hash()
    assert RunConfig.from_dict(cfg.to_dict()) == cfg and cfg.to_dict()["final_eps_ratios"] == [2]


@pytest.mark.parametrize("ratios", [[0], [-2.0], ["2"], [True], [1], [1.0], [2, 2.0], [2.0, 2.0000001], [6.0], 2.0])
def test_bad_ratios_give_one_clear_error(ratios):
    with pytest.raises(ConfigError, match="final eps ratios must be"):
        RunConfig(eps=0.2, final_eps_ratios=ratios).validate()  # 6 * 0.2 > 1


def test_good_ratios_validate():
    for ratios in (None, [], [2.0], [0.5, 2, 5.0]):
        RunConfig(eps=0.2, final_eps_ratios=ratios).validate()


@pytest.fixture(scope="module")
def run_with_ratios():
    """A tiny run with final_eps_ratios=[2], every attack_batch call seen (eps, alpha, the
    largest perturbation) during its final evaluation."""
    cfg = tiny_config(final_eps_ratios=[2.0], final_attacks=["clean", "fgsm", "pgd-5"])
    trainer = Trainer(cfg, progress=False)
    seen = []
    real = evaluate_module.attack_batch

    def spy(model, x, y, spec, eps, alpha, seed):
        x_adv = real(model, x, y, spec, eps, alpha, seed)
        seen.append((spec.name, eps, alpha, (x_adv - x).abs().max().item(), x_adv.min().item(), x_adv.max().item()))
        return x_adv

    trainer.fit()  # training and validation unobserved
    evaluate_module.attack_batch = spy
    try:
        final = trainer.final_evaluation()
    finally:
        evaluate_module.attack_batch = real
    return cfg, trainer, final, seen


def test_final_evaluation_adds_keys_at_each_ratio(run_with_ratios):
    cfg, trainer, final, _ = run_with_ratios
    assert set(final) == {"last", "best"}
    for which in ("last", "best"):
        assert list(final[which]) == ["clean", "fgsm", "pgd-5", "fgsm@2eps", "pgd-5@2eps"]
        assert final[which]["pgd-5@2eps"] <= final[which]["pgd-5"]  # a larger ball is at least as strong
        assert final[which]["fgsm@2eps"] <= final[which]["clean"]


def test_ratio_attacks_use_the_scaled_eps_and_step(run_with_ratios):
    cfg, trainer, final, seen = run_with_ratios
    eps2 = 2.0 * cfg.eps
    at_2 = [s for s in seen if s[1] == eps2]
    at_1 = [s for s in seen if s[1] == cfg.eps]
    assert {s[0] for s in at_2} == {"fgsm", "pgd-5"} and {s[0] for s in at_1} == {"clean", "fgsm", "pgd-5"}
    for name, eps, alpha, pert, lo, hi in at_2:
        assert alpha == cfg.eval_alpha_ratio * eps2
        assert pert <= eps2 + 1e-6 and lo >= 0 and hi <= 1
    assert max(s[3] for s in at_2) > cfg.eps + 1e-3  # the larger ball is used, not the training one


def test_ratio_result_equals_evaluate_at_that_eps(run_with_ratios):
    """The key "pgd-5@2eps" is what evaluate() at 2 eps gives (same seed, same step ratio)."""
    cfg, trainer, final, _ = run_with_ratios
    test = get_dataset(cfg.dataset, "test")
    direct = evaluate(trainer.model, test, 2.0 * cfg.eps, attacks=["pgd-5"], alpha_ratio=cfg.eval_alpha_ratio,
                      subset=cfg.final_subset, seed=cfg.seed)
    assert final["last"]["pgd-5@2eps"] == direct["pgd-5"]


def test_training_and_validation_do_not_change(run_with_ratios):
    """Validation stays at the training eps: the history (validation included) and the
    results at eps are those of the same run without ratios."""
    cfg, trainer, final, _ = run_with_ratios
    plain = Trainer(tiny_config(final_attacks=cfg.final_attacks), progress=False)
    record = plain.fit()
    strip = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    assert strip(record["history"]) == strip(trainer.history)
    assert all({k: final[w][k] for k in cfg.final_attacks} == record["final"][w] for w in ("last", "best"))


def test_run_without_ratios_has_the_same_record_keys():
    cfg = tiny_config(epochs=1)
    record = Trainer(cfg, progress=False).fit()
    assert "final_eps_ratios" not in record["config"]
    assert set(record["config"]) == {f.name for f in fields(RunConfig)} - set(OPTIONAL_FIELDS)
    for which in ("last", "best"):
        assert list(record["final"][which]) == cfg.final_attacks


def test_autoattack_entries_run_at_the_ratio_on_aa_subset(monkeypatch):
    """AutoAttack and APGD-CE (both on aa_subset) are run at r * eps too; clean is not."""
    import advlit.train as train_module

    calls = []
    monkeypatch.setattr(evaluate_module, "evaluate", lambda model, data, eps, attacks, subset=None, **k: calls.append(
        (eps, tuple(attacks), subset)) or {a: 0.0 for a in attacks})
    monkeypatch.setattr(train_module, "evaluate", evaluate_module.evaluate)
    cfg = tiny_config(epochs=1, final_eps_ratios=[2.0], final_attacks=["clean", "pgd-5", "apgd-ce", "aa-fast"],
                      final_subset=64, aa_subset=16)
    trainer = Trainer(cfg, progress=False)
    trainer.history = [{}]
    trainer.best = {"epoch": 1, "val_robust": 0.0, "state": trainer.model.state_dict()}
    final = trainer.final_evaluation()
    assert calls == [(cfg.eps, ("clean", "pgd-5"), 64), (cfg.eps, ("apgd-ce", "aa-fast"), 16),
                     (2 * cfg.eps, ("pgd-5",), 64), (2 * cfg.eps, ("apgd-ce", "aa-fast"), 16)]
    assert list(final["last"]) == ["clean", "pgd-5", "apgd-ce", "aa-fast", "pgd-5@2eps", "apgd-ce@2eps",
                                   "aa-fast@2eps"]
    assert final["best"] == final["last"]


def test_evaluate_eps_ratios_leaves_out_clean_and_keeps_the_order():
    torch.manual_seed(0)
    from advlit.models import get_model

    model = get_model("small_cnn", 10, (1, 16, 16)).eval()
    x, y = get_dataset("digits16", "test").batch(torch.arange(16))
    out = evaluate_module.evaluate_eps_ratios(model, (x, y), 0.1, [2.0, 0.5], ["clean", "pgd-3"])
    assert list(out) == ["pgd-3@2eps", "pgd-3@0.5eps"]
