"""The ``smoke`` profile (:mod:`advlit.smoke`): the gpu experiments with the stated reductions only."""
from __future__ import annotations

import pytest

from advlit import experiments, smoke
from advlit.models import get_model
from advlit.notebook import Chapter
from advlit.results import REPO_DIR


def _params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def test_width_option_keeps_the_papers_network_by_default():
    assert _params(get_model("preact_resnet18", 10, (3, 32, 32))) == _params(
        get_model("preact_resnet18", 10, (3, 32, 32), width=64)) == 11_171_146 + 1_024
    small = get_model("resnet18", 10, (3, 32, 32), width=8)
    assert _params(small) < _params(get_model("resnet18", 10, (3, 32, 32))) / 50


@pytest.mark.parametrize("name", experiments.list_experiments())
def test_smoke_is_the_gpu_experiment_shrunk(name):
    gpu = experiments.get_config(name, "gpu")
    small = experiments.get_config(name, "smoke")
    assert (small.device, small.epochs, small.val_subset, small.final_subset, small.aa_subset) == ("cpu", 1, 8, 8, 2)
    # what the smoke keeps: method, its settings, data, budget, schedule, validation attack
    for field in ("method", "method_args", "dataset", "eps", "alpha_ratio", "lr", "lr_schedule", "milestones",
                  "momentum", "weight_decay", "val_attack"):
        assert getattr(small, field) == getattr(gpu, field), field
    assert small.final_attacks == [smoke.smoke_attack(a) for a in gpu.final_attacks]
    model = gpu.model or "preact_resnet18"
    assert small.model == (smoke.MODELS[model][0] if model in smoke.MODELS else model)


def test_smoke_attacks():
    assert smoke.smoke_attack("pgd-50x10") == "pgd-50x2"
    assert smoke.smoke_attack("cw-20") == "cw-20"
    assert smoke.smoke_attack("aa") == "aa-fast"


def test_chapter_reads_attack_names_and_sizes_per_profile(tmp_path):
    cpu, gpu, small = Chapter("cpu"), Chapter("gpu"), Chapter("smoke", results_dir=str(tmp_path))
    assert cpu.attack("atas.atas", "aa") == "aa-fast" and gpu.attack("atas.atas", "aa") == "aa"
    assert cpu.attack("atas.atas", "pgd-50") == "pgd-50" and gpu.attack("atas.atas", "pgd-50") == "pgd-50x10"
    assert small.attack("atas.atas", "pgd-50") == "pgd-50x2"
    assert gpu.attack("atas.atas", "pgd-20") is None and gpu.attack("atas.atas", "pgd-20", fallback="pgd-10") == "pgd-10"
    assert cpu.size(64) == gpu.size(64) == 64 and small.size(64) == smoke.SIZES["points"]


def test_smoke_records_never_go_to_the_repository():
    where = experiments.results_dir_for("smoke")
    assert REPO_DIR not in where.resolve().parents
