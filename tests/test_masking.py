"""PGD on AutoAttack's images (advlit.analysis.masking): the comparison chapter's masking
signal must compare AutoAttack with PGD on the same images, not across two sets."""
from __future__ import annotations

import pytest

from advlit.analysis import masking
from advlit.data import get_dataset
from advlit.evaluate import evaluate
from advlit.results import load_model, run_name, run_or_load

from helpers import tiny_config

AA_IMAGES = 16


class _Chapter:
    """The part of advlit.notebook.Chapter the analysis uses: configurations and records of
    named experiments, for the chapter's seeds, in a results folder."""

    def __init__(self, results_dir, configs, seeds=(0,)):
        self.results_dir, self._configs, self.seeds = results_dir, configs, list(seeds)

    def config(self, name, seed=0):
        return self._configs[name].__class__(**{**self._configs[name].__dict__, "seed": seed})

    def run(self, name, seeds=None, need_model=False):
        return [run_or_load(self.config(name, s), self.results_dir, need_model=need_model)
                for s in (self.seeds if seeds is None else seeds)]


@pytest.fixture()
def chapter(tmp_path):
    config = tiny_config(final_attacks=["clean", "pgd-5"], final_subset=None, aa_subset=AA_IMAGES)
    return _Chapter(tmp_path, {"a": config})


def test_pgd_is_evaluated_again_on_autoattacks_images_and_stored(chapter, monkeypatch):
    config = chapter.config("a")
    assert not masking.same_images(config)
    out = masking.pgd_on_aa_subset(chapter, ["a"], "pgd-5")
    record = chapter.run("a")[0]
    test = get_dataset(config.dataset, "test")
    for which in ("best", "last"):
        model = load_model(record, which)
        expected = evaluate(model, test, config.eps, attacks=["pgd-5"], alpha_ratio=config.eval_alpha_ratio,
                            subset=AA_IMAGES, seed=config.seed)["pgd-5"]
        assert out[run_name(config)][which] == expected  # the first AA_IMAGES images, not the whole split
    assert masking.stored_accuracy(chapter.results_dir, [config], "pgd-5") == out
    assert masking.stored_accuracy(chapter.results_dir, [config], "pgd-20") == {}  # another attack: not stored

    monkeypatch.setattr(masking, "_evaluate_again", None)  # a second evaluation would fail
    assert masking.pgd_on_aa_subset(chapter, ["a"], "pgd-5") == out


def test_a_changed_run_is_evaluated_again(chapter, monkeypatch):
    masking.pgd_on_aa_subset(chapter, ["a"], "pgd-5")
    calls = []
    real = masking._evaluate_again
    monkeypatch.setattr(masking, "_evaluate_again", lambda *a, **k: calls.append(a) or real(*a, **k))
    chapter._configs["a"] = chapter.config("a").__class__(**{**chapter.config("a").__dict__, "epochs": 1})
    masking.pgd_on_aa_subset(chapter, ["a"], "pgd-5")
    assert len(calls) == 1
    assert masking.stored_accuracy(chapter.results_dir, [chapter.config("a")], "pgd-5")  # stored beside the first


def test_same_images_reads_the_records(chapter, monkeypatch):
    same = tiny_config(final_attacks=["clean", "pgd-5"], final_subset=32, aa_subset=32)
    assert masking.same_images(same) and masking.same_images(tiny_config(aa_subset=None))
    chapter._configs["b"] = same
    monkeypatch.setattr(masking, "_evaluate_again", None)
    out = masking.pgd_on_aa_subset(chapter, ["b"], "pgd-5")
    record = chapter.run("b")[0]
    assert out == {run_name(same): {ck: record["final"][ck]["pgd-5"] for ck in ("best", "last")}}
