"""The code fingerprint of a run covers exactly the code the run executes: core, its
methods, its dataset's loader and its model (advlit.results.code_fingerprint)."""
import pytest
import torch

from advlit import fingerprint, models, results
from advlit.config import RunConfig

DIGITS = RunConfig(method="fgsm_rs", dataset="digits16")
CIFAR = RunConfig(method="pgd_at", dataset="cifar10")


def fingerprint_after_editing(monkeypatch, config, filename):
    """``code_fingerprint(config)`` as if ``advlit/<filename>``'s code had been changed."""
    real = fingerprint._code_only_cached  # the fingerprint code lives in advlit.fingerprint
    target = str((results.PACKAGE_DIR / filename).resolve())
    assert (results.PACKAGE_DIR / filename).exists(), filename
    monkeypatch.setattr(fingerprint, "_code_only_cached",
                        lambda path, mtime: real(path, mtime) + ("<edited>" if path == target else ""))
    try:
        return results.code_fingerprint(config)
    finally:
        monkeypatch.setattr(fingerprint, "_code_only_cached", real)


@pytest.mark.parametrize("filename", ["train.py", "evaluate.py", "attacks/pgd.py", "schedules.py", "data/augment.py",
                                      "data/digits.py", "models/small_cnn.py", "methods/fgsm.py"])
def test_an_edit_of_the_code_a_digits_run_executes_changes_its_fingerprint(monkeypatch, filename):
    assert fingerprint_after_editing(monkeypatch, DIGITS, filename) != results.code_fingerprint(DIGITS)


@pytest.mark.parametrize("filename", ["data/vision.py", "models/preact_resnet.py", "models/wide_resnet.py",
                                      "methods/trades.py"])
def test_an_edit_elsewhere_leaves_a_digits_run_current(monkeypatch, filename):
    assert fingerprint_after_editing(monkeypatch, DIGITS, filename) == results.code_fingerprint(DIGITS)


@pytest.mark.parametrize("config,changes", [(DIGITS, False), (RunConfig(method="fgsm_rs", precision="bf16"), True),
                                            (RunConfig(method="fgsm_rs", channels_last=True), True)])
def test_precision_code_counts_only_for_runs_that_use_it(monkeypatch, config, changes):
    """advlit/precision.py changes a bf16 / channels_last run's results, not a default fp32 one's."""
    assert (fingerprint_after_editing(monkeypatch, config, "precision.py") != results.code_fingerprint(config)) == changes


@pytest.mark.parametrize("filename,changes", [("data/vision.py", True), ("models/preact_resnet.py", True),
                                              ("methods/pgd_at.py", True), ("data/digits.py", False),
                                              ("models/small_cnn.py", False)])
def test_a_cifar_run_follows_its_loader_and_model(monkeypatch, filename, changes):
    edited = fingerprint_after_editing(monkeypatch, CIFAR, filename)
    assert (edited != results.code_fingerprint(CIFAR)) == changes


def test_the_registry_entry_of_the_model_is_part_of_the_fingerprint(monkeypatch):
    before = results.code_fingerprint(DIGITS)
    entry = models._REGISTRY["small_cnn"]
    # the same class, built differently (another input size): a plausible registry edit
    monkeypatch.setitem(models._REGISTRY, "small_cnn", models._Entry(
        lambda k, shape: models.SmallCNN(models._image_channels(shape), k, 16), min_size=entry.min_size))
    assert results.code_fingerprint(DIGITS) != before


def test_the_model_choice_changes_the_fingerprint():
    assert results.code_fingerprint(RunConfig(method="pgd_at", dataset="cifar10", model="wrn34_10")) \
        != results.code_fingerprint(CIFAR)


def test_computing_a_fingerprint_draws_no_random_numbers():
    """The model is built on the meta device under a forked generator: a fingerprint taken
    between seeding and initialisation must not change the run."""
    config = RunConfig(method="fgsm_rs", dataset="cifar100", model="resnet18")  # not built before in this process
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    results.code_fingerprint(config)
    assert torch.equal(torch.rand(3), expected)


def test_a_method_spec_alone_covers_core_and_methods_only(monkeypatch):
    spec = "fgsm_rs"
    assert fingerprint_after_editing(monkeypatch, spec, "data/digits.py") == results.code_fingerprint(spec)
    assert fingerprint_after_editing(monkeypatch, spec, "methods/fgsm.py") != results.code_fingerprint(spec)
