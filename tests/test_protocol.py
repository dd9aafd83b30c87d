"""The papers' stated settings (book/paper_tables/paper_settings.csv) against the gpu profile.

Every gpu setting either matches the paper's stated value or carries a reason in its
chapter's ``GPU_DEVIATIONS``, and no reason outlives the difference it explains
(:mod:`advlit.protocol`)."""
import pytest

from advlit.config import RunConfig
from advlit import experiments
from advlit.experiments import get_config, last
from advlit.protocol import CHAPTERS, MATCH, paper_settings, protocol_problems, protocol_table, resolve

COLUMNS = ["chapter", "family", "experiments", "setting", "value", "quote", "source"]


def test_settings_file_is_well_formed():
    table = paper_settings()
    assert list(table.columns) == COLUMNS
    assert set(table.chapter) <= set(CHAPTERS)
    assert (table[COLUMNS] != "").all().all(), "every cell is filled"
    assert not table.duplicated(["chapter", "family", "experiments", "setting"]).any()


@pytest.mark.parametrize("chapter", sorted(CHAPTERS))
def test_every_row_names_registered_experiments_and_resolving_settings(chapter):
    assert protocol_problems(chapter)["unresolved"] == []


@pytest.mark.parametrize("chapter", sorted(CHAPTERS))
def test_gpu_settings_match_the_paper_or_say_why(chapter):
    assert protocol_problems(chapter)["unexplained"] == []


@pytest.mark.parametrize("chapter", sorted(CHAPTERS))
def test_no_reason_outlives_its_difference(chapter):
    assert protocol_problems(chapter)["stale"] == []


def test_a_missing_and_a_stale_reason_are_caught(monkeypatch):
    registry = experiments._load()
    spec = registry["last.lf_at"]
    monkeypatch.setitem(registry, "last.lf_at", {**spec, "common": {**spec["common"], "final_eps_ratios": [3.0]}})
    monkeypatch.setattr(last, "GPU_DEVIATIONS", {("lf", "method_args.last.gamma"): "no longer differs"})
    problems = protocol_problems("last")
    assert any("last.lf_at: final_eps_ratios is 3" in p for p in problems["unexplained"])
    assert any("('lf', 'method_args.last.gamma')" in p for p in problems["stale"])


def test_a_changed_gpu_value_is_caught(monkeypatch):
    registry = experiments._load()
    spec = registry["las.k20"]
    monkeypatch.setitem(registry, "las.k20", {**spec, "gpu": {**spec["gpu"], "method_args": {
        **spec["gpu"]["method_args"], "interval": 60}}})
    assert any(p.startswith("las.k20: method_args.interval is 60") for p in protocol_problems("las_at")["unexplained"])


def test_piats_linear_decay_is_checked_with_its_epochs(monkeypatch):
    """PIAT's schedule (Sec. V-A: linear decays ending at 90 and 120) is matched epoch by epoch."""
    gpu = get_config("piat.pgd_at", "gpu")
    assert resolve(gpu, "lr_schedule", "linear_decay 60 90 120")[1]
    assert not resolve(gpu, "lr_schedule", "linear_decay 60 90 130")[1]
    assert not resolve(gpu, "lr_schedule", "step 60 90 120")[1]
    registry = experiments._load()
    spec = registry["piat.pgd_at"]
    monkeypatch.setitem(registry, "piat.pgd_at", {**spec, "gpu": {**spec["gpu"], "milestones": [75, 105, 120]}})
    assert any(p.startswith("piat.pgd_at: lr_schedule is linear_decay") for p in protocol_problems("piat")["unexplained"])


def test_normalisation():
    gpu = get_config("atas.atas", "gpu")
    assert resolve(gpu, "eps", "8/255") == ("8/255", True)
    assert resolve(gpu, "alpha_ratio", "16/255") == ("16/255 (2 eps)", True)
    assert resolve(gpu, "lr_schedule", "step 24 28") == ("piecewise (/10 at 24, 28)", True)
    assert not resolve(gpu, "lr_schedule", "step 20 25")[1]
    assert resolve(gpu, "final_attacks", "clean pgd-10 pgd-50 aa")[1]  # restarts unstated: any
    assert not resolve(gpu, "final_attacks", "clean pgd-20")[1]
    assert not resolve(gpu, "final_attacks", "apgd")[1]
    assert resolve(RunConfig(final_attacks=["clean", "apgd-ce"]), "final_attacks", "clean apgd")[1]  # APGD: apgd-ce
    assert resolve(gpu, "aa_subset", "full") == ("full", True)
    assert resolve(RunConfig(aa_subset=1000), "aa_subset", "full") == ("1000", False)
    assert resolve(gpu, "method_args.beta", "0.5") == ("0.5", True)  # the method's default
    las = get_config("las.las_pgd_at", "gpu")
    assert resolve(las, "method_args.step_options", "1..6/255") == ("1..6/255", True)
    assert resolve(las, "method_args.iter_options", "3..15") == ("3..15", True)


def test_protocol_table_shows_paper_gpu_cpu_and_reasons():
    table = protocol_table("last")
    assert list(table.columns) == ["setting", "experiments", "paper", "source", "gpu", "gpu vs paper", "cpu",
                                   "cpu vs paper"]
    eps16 = table[table.setting == "final_eps_ratios"]  # Table I's 16/255 columns: the 8/255 models at 2 eps
    assert len(eps16) == 1 and eps16["gpu vs paper"].item() == MATCH and eps16["cpu vs paper"].item() == MATCH
    assert "last.lf_at" in eps16.experiments.item() and "_2eps" not in eps16.experiments.item()
    assert (table[table.setting == "model"]["gpu vs paper"] == MATCH).all()
    assert all("LAST, Sec. IV-A1" in source for source in table[table.setting == "model"].source)
