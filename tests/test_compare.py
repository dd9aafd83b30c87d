"""The comparison chapter's machinery: one protocol per profile (advlit.experiments.comparison)
and the table, notes, figures and command line built from records (advlit.compare).

The records here are small synthetic dicts written where :func:`advlit.compare.collect_records`
looks for them, with the configuration hash and code fingerprint of the real experiment, so
they count as current; nothing is trained."""
import json
from dataclasses import fields

import matplotlib
import pytest

matplotlib.use("Agg")

from advlit import compare  # noqa: E402
from advlit.cli import main  # noqa: E402
from advlit.config import RunConfig  # noqa: E402
from advlit.experiments import PROFILES, atas, comparison, get_config, last, list_experiments  # noqa: E402
from advlit.methods import build_method  # noqa: E402
from advlit.methods.registry import available_methods  # noqa: E402
from advlit.results import code_fingerprint, run_name  # noqa: E402
from advlit.utils import ConfigError  # noqa: E402

KNOBS = {"method", "alpha_ratio", "method_args", "seed"}
NAMES = list_experiments(comparison.PREFIX)
FASTAT = list_experiments(comparison.FASTAT_PREFIX)


# ------------------------------------------------------------------ experiments
def test_every_registered_method_is_compared_or_excused():
    layers = {layer for name in NAMES for layer in name[len(comparison.PREFIX):].split("+")}
    registered = set(available_methods())
    assert registered <= layers | set(comparison.NOT_COMPARED), sorted(registered - layers - set(comparison.NOT_COMPARED))
    assert not layers & set(comparison.NOT_COMPARED), "a method both compared and excused"
    assert set(comparison.NOT_COMPARED) <= registered
    assert all(len(reason) > 20 for reason in comparison.NOT_COMPARED.values())


def test_the_issue_compositions_are_compared():
    for spec in ("last+atas", "piat+atas", "piat+last+fgsm_rs", "last+fgsm_mep", "piat+las_pgd_at"):
        assert f"compare.{spec}" in NAMES


@pytest.mark.parametrize("profile", ["cpu", "gpu"])
def test_every_config_validates_and_builds(profile):
    for name in NAMES + FASTAT:
        cfg = get_config(name, profile)  # validates
        build_method(cfg.method, cfg.eps, cfg.alpha_ratio, **cfg.method_args)  # every knob is an argument


@pytest.mark.parametrize("profile", ["cpu", "gpu"])
def test_one_protocol_per_profile(profile):
    """No two compare.* runs of a profile differ in anything but the method and its knobs
    (Free-AT's epochs follow the pass-count rule), and the protocol is the profile's."""
    settings = [f.name for f in fields(RunConfig) if f.name not in KNOBS]
    reference = get_config("compare.fgsm_rs", profile)
    for name in NAMES:
        cfg = get_config(name, profile)
        for field in settings:
            if field == "epochs" and cfg.method.split("+")[-1] == "free_at":
                assert cfg.epochs == comparison.free_at_epochs(PROFILES[profile]["epochs"], cfg.method_args["replays"])
                continue
            assert getattr(cfg, field) == getattr(reference, field), f"{name}: {field}"
    for key in ("dataset", "model", "eps", "epochs", "lr", "lr_schedule", "batch_size", "aa_subset"):
        assert getattr(reference, key) == PROFILES[profile][key]
    assert {"pgd-20", "cw-20"} <= set(reference.final_attacks)
    assert ("aa-fast" if profile == "cpu" else "aa") in reference.final_attacks
    assert ("pgd-50" if profile == "cpu" else "pgd-50x10") in reference.final_attacks


def test_knobs_are_the_chapters():
    cpu = {n: get_config(f"compare.{n}", "cpu") for n in ("atas", "gradalign", "trades", "last+atas", "free_at",
                                                          "mail", "fgsm_rs", "piat+last+fgsm_rs")}
    assert cpu["atas"].method_args == atas.ATAS_DIGITS and cpu["atas"].alpha_ratio == 2.0
    assert get_config("compare.atas", "gpu").method_args == atas.ATAS_CIFAR
    assert cpu["gradalign"].method_args == {"lam": atas.GRADALIGN_LAMBDA_CPU}
    assert cpu["trades"].method_args["steps"] == 10, "PGD methods keep their paper's PGD-10 on cpu too"
    assert cpu["last+atas"].method_args == {**atas.ATAS_DIGITS, **last.LAST_CPU}
    assert cpu["piat+last+fgsm_rs"].method_args == last.LAST_CPU and cpu["piat+last+fgsm_rs"].alpha_ratio == 1.25
    assert get_config("compare.last+atas", "gpu").method_args == {**atas.ATAS_CIFAR, **last.LAST_GPU}
    assert (cpu["free_at"].epochs, cpu["free_at"].method_args["replays"]) == (15, 4)  # the ATAS chapter's cpu run
    assert cpu["mail"].method_args["burn_in"] == round(75 * 30 / 101)  # scaled from the paper's 75 of 101 epochs
    assert cpu["fgsm_rs"].alpha_ratio == 1.25


def test_fastat_protocol():
    cfg = {m: get_config(f"compare_fastat.{m}", "gpu") for m in comparison.FASTAT_METHODS}
    assert set(cfg) == {"fgsm_rs", "gradalign", "free_at", "fgsm_mep", "pgd_at"}
    for m, c in cfg.items():
        assert (c.dataset, c.model, c.lr, c.batch_size, c.val_subset) == ("cifar10", "resnet18", 0.1, 128, 1000)
        assert c.epochs == (50 if m == "free_at" else 100)
    assert cfg["fgsm_mep"].method_args["label_smoothing"] == 0.4
    assert cfg["gradalign"].method_args == {"lam": 0.2} and cfg["gradalign"].alpha_ratio == 1.0
    # at cpu the same run as compare.<m>
    assert get_config("compare_fastat.fgsm_rs", "cpu").hash() == get_config("compare.fgsm_rs", "cpu").hash()
    assert {"weight averaging (tau = 0.9995)", "label smoothing 0.4"} <= set(comparison.FASTAT_GAPS)


# ------------------------------------------------------------------ synthetic records
def _final(clean, pgd50, aa, profile="cpu"):
    m = compare.METRICS[profile]
    return {m["clean"]: clean, m["PGD-20"]: pgd50 + 1, m["PGD-50"]: pgd50, m["C&W"]: pgd50 - 1, m["AutoAttack"]: aa}


def _write(root, method, seed, last, best=None, seconds=1.0, collapsed=False, profile="cpu", code=None):
    config = get_config(f"compare.{method}", profile, seed=seed)
    run_dir = root / run_name(config)
    run_dir.mkdir(parents=True)
    record = {"config": config.to_dict(), "complete": True, "config_hash": config.hash(),
              "code": code or code_fingerprint(config),
              "final": {"last": last, "best": best or last}, "seconds_per_epoch": seconds,
              "epochs_done": config.epochs, "overfitting": {"detected": collapsed, "epoch": 7 if collapsed else None}}
    (run_dir / "record.json").write_text(json.dumps(record))


@pytest.fixture()
def results(tmp_path):
    for seed, aa in zip((0, 1, 2), (40.0, 42.0, 44.0)):  # FGSM-RS: AA 42 ± 2 (sample std), one collapse
        _write(tmp_path, "fgsm_rs", seed, _final(80.0, 50.0, aa), best=_final(81.0, 52.0, aa + 5),
               collapsed=seed == 1)
    for seed in (0, 1, 2):  # Free-AT: twice the seconds per epoch, half the epochs: the same cost
        _write(tmp_path, "free_at", seed, _final(70.0, 50.0, 44.9), seconds=2.0)  # AA 5.1 below PGD-50
    for seed in (0, 1):  # ATAS: two seeds of three; AA exactly 5 below PGD-50
        _write(tmp_path, "atas", seed, _final(75.0, 50.0, 45.0), seconds=2.0)  # twice FGSM-RS's cost
    _write(tmp_path, "pgd_at", 0, _final(70.0, 50.0, 45.0), code="000000000000")  # stale: another code version
    return tmp_path


def test_collect_keeps_current_records_only(results):
    records = compare.collect_records("cpu", results)
    assert [len(records[m]) for m in ("fgsm_rs", "free_at", "atas", "pgd_at", "trades")] == [3, 3, 2, 0, 0]
    assert list(records) == comparison.compared_methods()


def test_table_means_stds_missing_collapses_and_cost(results):
    records = compare.collect_records("cpu", results)
    table = compare.comparison_table(records, "cpu", "last")
    row = table.loc["fgsm_rs"]
    assert row["AutoAttack"] == "42.0 ± 2.0" and row["clean"] == "80.0 ± 0.0" and row["PGD-20"] == "51.0 ± 0.0"
    assert row["seeds"] == "3/3" and row["collapses"] == "1/3"
    assert table.loc["atas", "seeds"] == "2/3" and table.loc["atas", "collapses"] == "0/2"
    assert (table.loc["trades"] == compare.MISSING).drop("seeds").all() and table.loc["trades", "seeds"] == "0/3"
    assert table.loc["pgd_at", "AutoAttack"] == compare.MISSING  # a stale record is not shown
    assert table.loc["fgsm_rs", "cost vs FGSM-RS (records)"] == "1.00x"
    assert table.loc["free_at", "cost vs FGSM-RS (records)"] == "1.00x"  # 2 s x 15 epochs = 1 s x 30 epochs
    assert table.loc["free_at", "s/epoch"] == "2.00 ± 0.00"
    assert table.loc["atas", "cost vs FGSM-RS (records)"] == "2.00x"
    best = compare.comparison_table(records, "cpu", "best")
    assert best.loc["fgsm_rs", "AutoAttack"] == "47.0 ± 2.0" and best.loc["fgsm_rs", "PGD-50"] == "52.0 ± 0.0"
    both = compare.comparison_table(records, "cpu", ("best", "last"))
    assert both.loc["fgsm_rs", "AutoAttack (best)"] == "47.0 ± 2.0"
    assert both.loc["fgsm_rs", "AutoAttack (last)"] == "42.0 ± 2.0"


def _pgd50_on_aa_images(records, shift=0.0):
    """A reference as the chapter stores it: each run's PGD-50 on AutoAttack's images, here the
    record's full-split PGD-50 moved by ``shift`` points."""
    pgd = compare.METRICS["cpu"]["PGD-50"]
    return {run_name(RunConfig.from_dict(r["config"])): {ck: r["final"][ck][pgd] + shift for ck in ("best", "last")}
            for recs in records.values() for r in recs}


def test_masking_flag_fires_above_five_points_only(results):
    records = compare.collect_records("cpu", results)
    reference = _pgd50_on_aa_images(records)
    table = compare.comparison_table(records, "cpu", "last", reference=reference)
    assert table.loc["free_at", "masking"].startswith("last: AA 5.1 below PGD-50")
    assert table.loc["atas", "masking"] == ""  # exactly 5 points: no flag
    assert table.loc["fgsm_rs", "masking"].startswith("last: AA 8.0")
    assert compare.masking_flag(5.0001) and not compare.masking_flag(5.0) and not compare.masking_flag(None)
    notes = compare.masking_notes(records, "cpu", reference=reference)
    assert any(n.startswith("free_at (last checkpoint)") for n in notes)
    assert not any(n.startswith("atas") for n in notes)
    assert not any(n.startswith("fgsm_rs (best") for n in notes)  # best: 52 - 47 = 5


def test_masking_compares_autoattack_with_pgd_on_the_same_images(results):
    """At the cpu profile AutoAttack runs on the first 100 test digits and PGD-50 on all 397:
    the gap is taken against PGD-50 on AutoAttack's images, never across the two sets, and a
    run without that number is "not judged" rather than flagged."""
    records = compare.collect_records("cpu", results)
    config = get_config("compare.free_at", "cpu")
    assert config.aa_subset < 397 and config.final_subset is None  # the premise: two sets of images
    lower = _pgd50_on_aa_images(records, shift=-3.0)  # AutoAttack's images are harder for PGD too
    table = compare.comparison_table(records, "cpu", "last", reference=lower)
    assert table.loc["free_at", "masking"] == ""  # 47.0 - 44.9 = 2.1 on the same images (5.1 across sets)
    assert table.loc["fgsm_rs", "masking"] == ""  # 47 - 42 = 5.0: not more than 5 (8.0 across the sets)
    assert compare.masking_gap(records["free_at"], "last", "pgd-50", "aa-fast", lower) == pytest.approx(2.1)
    assert not any(n.startswith("free_at") for n in compare.masking_notes(records, "cpu", reference=lower))
    unjudged = compare.comparison_table(records, "cpu", "last")  # no reference: not judged, not flagged
    assert unjudged.loc["free_at", "masking"].startswith("last: not judged")
    assert compare.masking_notes(records, "cpu") == []
    partial = dict(lower)
    partial.pop(run_name(RunConfig.from_dict(records["fgsm_rs"][1]["config"])))  # one fgsm_rs run lacks it: not judged
    assert compare.comparison_table(records, "cpu", "last", reference=partial).loc["fgsm_rs", "masking"] \
        .startswith("last: not judged")


def test_masking_at_the_gpu_profile_reads_the_records(tmp_path):
    """Where AutoAttack ran on the images of the other attacks (gpu: the full test set) the
    records' own PGD-50 is used and no reference is needed."""
    config = get_config("compare.fgsm_rs", "gpu")
    assert config.aa_subset is None
    for seed in (0, 1, 2):
        _write(tmp_path, "fgsm_rs", seed, _final(80.0, 50.0, 40.0, "gpu"), profile="gpu")
    records = compare.collect_records("gpu", tmp_path, methods=["fgsm_rs"])
    assert compare.comparison_table(records, "gpu", "last").loc["fgsm_rs", "masking"].startswith("last: AA 10.0")


def test_pareto_front_on_a_hand_made_example():
    points = {"cheap": (1.0, 40.0), "mid": (2.0, 50.0), "dominated": (3.0, 45.0), "best": (5.0, 55.0),
              "tie_cost_worse": (2.0, 49.0), "equal_twin": (5.0, 55.0), "costly_worse": (9.0, 54.0)}
    front = compare.pareto_front(points)
    assert front[:2] == ["cheap", "mid"] and set(front[2:]) == {"best", "equal_twin"}
    assert compare.pareto_front({"a": (1.0, 1.0)}) == ["a"] and compare.pareto_front({}) == []


def test_join_bench_adds_side_by_side_ratios(results):
    records = compare.collect_records("cpu", results)
    table = compare.comparison_table(records, "cpu")
    bench = {"results": {"fgsm_rs": {"ratio_to_fgsm_rs": 1.0}, "free_at": {"ratio_to_fgsm_rs": 2.1}}}
    joined = compare.join_bench(table, bench, compare.protocol_epochs("cpu", methods=["fgsm_rs", "free_at"]))
    assert joined.loc["free_at", "s/step vs FGSM-RS (bench)"] == "2.10x"
    assert joined.loc["free_at", "run cost vs FGSM-RS (bench)"] == "1.05x"  # 2.1 x 15 / 30 epochs
    assert joined.loc["atas", "s/step vs FGSM-RS (bench)"] == "not benched"


def test_figures_mark_the_pareto_front(results):
    records = compare.collect_records("cpu", results)
    fig = compare.plot_cost_robustness(records, "cpu")
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and "AutoAttack" in ax.get_ylabel()
    front_line = [line for line in ax.get_lines() if line.get_label().startswith("Pareto")]
    assert len(front_line) == 1
    # fgsm_rs (cost 30, AA 42) is dominated by free_at (cost 30, AA 44.9); atas (cost 60, AA 45) is not
    assert list(front_line[0].get_ydata()) == [44.9, 45.0]
    fig2 = compare.plot_clean_robustness(records, "cpu")
    assert "clean" in fig2.axes[0].get_xlabel()


def test_cost_axis_can_be_the_side_by_side_cost(results):
    """With ``cost`` the x axis and the Pareto front use it, not the records' seconds."""
    records = compare.collect_records("cpu", results)
    # records: fgsm_rs 30 s / AA 42, free_at 30 s / AA 44.9, atas 60 s / AA 45 (front: free_at, atas);
    # side by side ATAS is the cheapest, so it alone is the front; free_at has no cost and is left out
    fig = compare.plot_cost_robustness(records, "cpu", cost={"fgsm_rs": 1.0, "atas": 0.5}, cost_label="x FGSM-RS")
    ax = fig.axes[0]
    front_line = [line for line in ax.get_lines() if line.get_label().startswith("Pareto")]
    assert list(front_line[0].get_xdata()) == [0.5] and list(front_line[0].get_ydata()) == [45.0]
    assert sorted(t.get_text() for t in ax.texts) == ["atas", "fgsm_rs"]
    assert ax.get_xlabel() == "x FGSM-RS"


def test_smoke_profile_reads_the_attacks_its_runs_make():
    """The smoke profile shrinks the gpu attacks (pgd-50x10 -> pgd-50x2, aa -> aa-fast): the
    table's columns must be those, for both protocols; fastat stays refused at cpu."""
    assert set(compare.metrics_for("smoke").values()) <= set(get_config("compare.fgsm_rs", "smoke").final_attacks)
    assert compare.metrics_for("smoke")["AutoAttack"] == "aa-fast"
    fastat = compare.metrics_for("smoke", "fastat")
    assert set(fastat.values()) <= set(get_config("compare_fastat.fgsm_rs", "smoke").final_attacks)
    with pytest.raises(ConfigError, match="gpu protocol"):
        compare.metrics_for("cpu", "fastat")


# ------------------------------------------------------------------ command line
def test_cli_prints_the_table_with_missing_rows(results, capsys):
    from advlit.analysis.masking import store_accuracy

    records = compare.collect_records("cpu", results)
    assert main(["compare", "--profile", "cpu", "--results", str(results)]) == 0
    assert "note:" not in capsys.readouterr().out  # PGD-50 on AutoAttack's images unknown: nothing judged
    stored = _pgd50_on_aa_images(records)  # as the chapter stores it
    store_accuracy(results, [(RunConfig.from_dict(r["config"]), stored[run_name(RunConfig.from_dict(r["config"]))])
                             for recs in records.values() for r in recs], "pgd-50")
    assert main(["compare", "--profile", "cpu", "--results", str(results)]) == 0
    out = capsys.readouterr().out
    assert "3 of" in out.splitlines()[0] and "not measured side by side" in out.splitlines()[0]
    lines = {line.split()[0]: line for line in out.splitlines()[2:] if line and not line.startswith("note")}
    assert "42.0 ± 2.0" in lines["fgsm_rs"] and compare.MISSING in lines["trades"]
    assert "note: free_at (last checkpoint)" in out
    assert main(["compare", "--results", str(results), "--format", "markdown", "--checkpoint", "best"]) == 0
    md = capsys.readouterr().out.splitlines()
    assert md[1].startswith("| method |") and any("47.0 ± 2.0" in line for line in md)


def test_cli_without_records_says_how_to_make_them(tmp_path, capsys):
    assert main(["compare", "--profile", "cpu", "--results", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and "advlit grid --profile cpu --only 07_comparison --run" in captured.err
    assert main(["compare", "--profile", "cpu", "--protocol", "fastat"]) == 2
    assert "gpu protocol" in capsys.readouterr().err


def test_fastat_benchmark_transcription_loads():
    from advlit.results import paper_table

    table = paper_table("fastat_benchmark.csv")
    assert list(table.columns) == ["source", "dataset", "model", "eps", "method", "checkpoint", "metric", "value", "std"]
    assert not table.duplicated(["dataset", "model", "eps", "method", "checkpoint", "metric"]).any()
    assert {"FGSM-RS", "GRAD-ALIGN", "FREE-AT", "FGSM-PGI", "PGD-AT"} <= set(table.method)
    aa = paper_table("fastat_benchmark.csv", method="FGSM-RS", metric="aa").iloc[0]
    assert (aa["value"], aa["std"], aa["checkpoint"]) == (43.09, 5.33, "best")  # the mean of seeds 48.05, 37.45, 43.77


def test_join_ratios_names_its_source_and_scales_run_cost_by_epochs():
    import pandas as pd

    table = pd.DataFrame({"seeds": [3, 3, 3]}, index=["fgsm_rs", "free_at", "atas"])
    joined = compare.join_ratios(table, {"fgsm_rs": 1.0, "free_at": 2.0}, {"fgsm_rs": 30, "free_at": 15},
                                 source="side by side", missing="missing")
    assert list(joined["s/step vs FGSM-RS (side by side)"]) == ["1.00x", "2.00x", "missing"]
    assert list(joined["run cost vs FGSM-RS (side by side)"]) == ["1.00x", "1.00x", "missing"]


@pytest.mark.parametrize("method", sorted(comparison.RETUNED))
def test_a_retuned_run_changes_one_setting_of_the_protocols_run(method):
    """compare_retuned.<m> is compare.<m> with the one cpu setting of RETUNED (method_args
    key by key: a replaced dict would drop the method's other knobs), and compare.<m> at gpu."""
    change, reason = comparison.RETUNED[method]
    protocol = get_config(f"compare.{method}", "cpu").to_dict()
    retuned = get_config(f"{comparison.RETUNED_PREFIX}{method}", "cpu").to_dict()
    differing = {k for k in protocol if protocol[k] != retuned[k]}
    assert differing == set(change) and len(change) == 1 and reason
    if "method_args" in change:
        assert retuned["method_args"] == {**protocol["method_args"], **change["method_args"]}
        assert len(retuned["method_args"]) > len(change["method_args"])
        (key, value), = change["method_args"].items()
        assert protocol["method_args"][key] != value
    else:
        assert {k: retuned[k] for k in change} == change
    assert get_config(f"{comparison.RETUNED_PREFIX}{method}", "gpu") == get_config(f"compare.{method}", "gpu")
