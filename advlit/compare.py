"""The comparison table and figures: every method under one protocol, from run records.

:mod:`advlit.experiments.comparison` defines the runs (``compare.<method spec>`` at each
profile, ``compare_fastat.<method>`` at the gpu profile); this module reads their records,
read only (it never trains), and builds

* :func:`comparison_table`: per method, mean ± std over seeds of clean, PGD-20, PGD-50
  (PGD-50 with 10 restarts at the gpu profile), C&W-20 and AutoAttack (``aa-fast`` on the
  cpu profile's subset, standard ``aa`` on the full test set at gpu) for the best and / or
  the last checkpoint; the collapse count (runs whose record flags catastrophic overfitting,
  :func:`advlit.analysis.overfitting.catastrophic_overfitting`); seconds per epoch, training
  seconds per run and the cost ratio to FGSM-RS; and a gradient-masking flag where the mean
  AutoAttack accuracy lies more than :data:`MASKING_GAP` points below the mean PGD-50
  accuracy on the same images (:mod:`advlit.analysis.masking`: at the cpu profile AutoAttack
  runs on a subset of the test split, where PGD-50 is evaluated again). A method without a current record is a row that says ``missing``: no number is
  ever filled in;
* :func:`plot_cost_robustness` (AutoAttack against training cost, the seed spread as error
  bars, the Pareto front marked) and :func:`plot_clean_robustness` (AutoAttack against clean).

Cost ratios. The ratio in the table comes from the records' ``seconds_per_epoch`` (the
training part of each epoch, validation excluded) times the epochs trained: runs made at
different times, under different machine loads, possibly on different machines. It is NOT a
side-by-side measurement. The side-by-side ratio is ``advlit bench`` (:mod:`advlit.bench`,
all methods interleaved in one process); :func:`join_bench` adds its ratios from a bench JSON
file. ``advlit bench`` runs a method with the ATAS chapter's settings when that chapter has
an experiment of it and with the method's defaults otherwise (its ``settings_from`` field),
not always with the comparison's knobs.
"""
from __future__ import annotations

import json
from pathlib import Path

from advlit import experiments
from advlit.experiments import comparison
from advlit.results import is_current, load_record, mean_std, run_name, summarize
from advlit.smoke import smoke_attack
from advlit.utils import ConfigError

#: column label -> final attack, per profile (``smoke``: the gpu profile's attacks as
#: :func:`advlit.smoke.smoke_attack` shrinks them, ``pgd-50x2`` and ``aa-fast``)
METRICS = {
    "cpu": {"clean": "clean", "PGD-20": "pgd-20", "PGD-50": "pgd-50", "C&W": "cw-20", "AutoAttack": "aa-fast"},
    "gpu": {"clean": "clean", "PGD-20": "pgd-20", "PGD-50": "pgd-50x10", "C&W": "cw-20", "AutoAttack": "aa"},
}
METRICS["smoke"] = {label: smoke_attack(attack) for label, attack in METRICS["gpu"].items()}
#: the fastat protocol's attacks (FastAT Benchmark: PGD-10/20/50 with one restart, AutoAttack; no C&W)
FASTAT_METRICS = {"clean": "clean", "PGD-10": "pgd-10", "PGD-20": "pgd-20", "PGD-50": "pgd-50", "AutoAttack": "aa"}
#: points by which AutoAttack must fall below PGD-50 to flag gradient masking (strictly more)
MASKING_GAP = 5.0
REFERENCE = "fgsm_rs"
MISSING = "missing"
PROTOCOLS = ("common", "fastat")
#: what to run when no record exists
HOW_TO_MAKE = "advlit grid --profile {profile} --only 07_comparison --run"


def protocol_methods(protocol: str = "common") -> list[str]:
    """The method specs of a protocol, in table order."""
    if protocol == "common":
        return comparison.compared_methods()
    if protocol == "fastat":
        return list(comparison.FASTAT_METHODS)
    raise ConfigError(f"unknown protocol {protocol!r}; choose from {', '.join(PROTOCOLS)}")


def experiment_name(method: str, protocol: str = "common") -> str:
    return (comparison.PREFIX if protocol == "common" else comparison.FASTAT_PREFIX) + method


def metrics_for(profile: str, protocol: str = "common") -> dict[str, str]:
    """Column label -> final attack of the table at ``profile`` (``smoke``: the gpu
    profile's, shrunk as :func:`advlit.smoke.smoke_attack` shrinks the runs' attacks)."""
    experiments.check_profile(profile)
    if protocol == "fastat":
        if profile == "cpu":
            raise ConfigError("the fastat protocol is a gpu protocol (FastAT Benchmark's CIFAR-10 setting); "
                              "use --profile gpu")
        if profile == "smoke":
            return {label: smoke_attack(attack) for label, attack in FASTAT_METRICS.items()}
        return dict(FASTAT_METRICS)
    return dict(METRICS[profile])


def collect_records(profile: str = "cpu", results_dir=None, seeds=None, protocol: str = "common",
                    methods=None) -> dict[str, list[dict]]:
    """Method spec -> the *current* records of its experiment for ``seeds`` (the profile's
    default seeds), read from ``results_dir`` (default ``results/<profile>``); a seed whose
    record is absent, incomplete, or made by another configuration or code version is left
    out, so a method with none has an empty list. Never trains."""
    seeds = experiments.DEFAULT_SEEDS[experiments.check_profile(profile)] if seeds is None else list(seeds)
    root = experiments.results_dir_for(profile, results_dir)
    out = {}
    for method in methods or protocol_methods(protocol):
        records = []
        for seed in seeds:
            config = experiments.get_config(experiment_name(method, protocol), profile, seed=seed)
            record = load_record(root / run_name(config))
            if is_current(record, config):
                records.append(record)
        out[method] = records
    return out


def training_seconds(record: dict) -> float:
    """Seconds of training of one run: its mean training seconds per epoch x epochs trained."""
    return float(record["seconds_per_epoch"]) * int(record["epochs_done"])


def collapses(records: list[dict]) -> int:
    """How many of the runs the records flag as catastrophically overfitted."""
    return sum(bool((r.get("overfitting") or {}).get("detected")) for r in records)


def _record_config(record: dict):
    from advlit.config import RunConfig

    return RunConfig.from_dict(record["config"])


def pgd_on_aa_images(record: dict, checkpoint: str, pgd: str, reference: dict | None) -> float | None:
    """The ``pgd`` accuracy of a run on the images its AutoAttack ran on: the record's own
    when the final evaluation used the same images for both
    (:func:`advlit.analysis.masking.same_images`), else the run's entry of ``reference``
    (``{run name: {checkpoint: accuracy}}``, :func:`advlit.analysis.masking.pgd_on_aa_subset`),
    else ``None``."""
    from advlit.analysis.masking import same_images

    config = _record_config(record)
    if same_images(config):
        return record["final"][checkpoint].get(pgd)
    entry = (reference or {}).get(run_name(config))
    return None if entry is None else entry.get(checkpoint)


def masking_gap(records: list[dict], checkpoint: str, pgd: str, aa: str, reference: dict | None = None) -> float | None:
    """Mean PGD-50 minus mean AutoAttack accuracy (points) of ``checkpoint``, both on the
    images AutoAttack ran on (:func:`pgd_on_aa_images`), or ``None`` when a record lacks
    either attack on those images: a gap between two different sets of images is never
    reported as masking."""
    return _masking_state(records, checkpoint, pgd, aa, reference)[1]


def _masking_state(records: list[dict], checkpoint: str, pgd: str, aa: str,
                   reference: dict | None = None) -> tuple[bool, float | None]:
    """``(judged, gap)``: whether PGD-50 is known on AutoAttack's images for every record, and
    :func:`masking_gap` (``None`` when not judged or a record lacks AutoAttack)."""
    pgd_values = [pgd_on_aa_images(r, checkpoint, pgd, reference) for r in records]
    judged = bool(records) and all(v is not None for v in pgd_values)
    if not judged or any(aa not in r["final"][checkpoint] for r in records):
        return judged, None
    return judged, mean_std(pgd_values)[0] - mean_std(r["final"][checkpoint][aa] for r in records)[0]


def stored_reference(records_by_method: dict[str, list[dict]], profile: str = "cpu", results_dir=None,
                     protocol: str = "common") -> dict:
    """PGD-50 on AutoAttack's images of the records' runs, as the comparison chapter stored
    it (:func:`advlit.analysis.masking.stored_accuracy`; the runs it has not evaluated are
    left out, and their masking is "not judged"). Evaluates nothing: ``advlit compare``."""
    from advlit.analysis.masking import stored_accuracy

    configs = [_record_config(r) for records in records_by_method.values() for r in records]
    return stored_accuracy(experiments.results_dir_for(profile, results_dir), configs,
                           metrics_for(profile, protocol)["PGD-50"])


def masking_flag(gap: float | None, threshold: float = MASKING_GAP) -> bool:
    """True when AutoAttack lies *more* than ``threshold`` points below PGD-50."""
    return gap is not None and gap > threshold


def pareto_front(points: dict[str, tuple[float, float]]) -> list[str]:
    """Labels of the points ``(cost, robust accuracy)`` that no other point dominates (one
    costing no more and robust at least as much, better in one of the two), by cost."""
    front = []
    for label, (cost, acc) in points.items():
        dominated = any(c <= cost and a >= acc and (c < cost or a > acc)
                        for other, (c, a) in points.items() if other != label)
        if not dominated:
            front.append(label)
    return sorted(front, key=lambda k: (points[k][0], -points[k][1]))


def _checkpoints(checkpoint) -> list[str]:
    cks = [checkpoint] if isinstance(checkpoint, str) else list(checkpoint)
    for ck in cks:
        if ck not in ("best", "last"):
            raise ConfigError(f"unknown checkpoint {ck!r}; choose best or last")
    return cks


def comparison_table(records_by_method: dict[str, list[dict]], profile: str = "cpu", checkpoint="last",
                     seeds: int | None = None, digits: int = 1, protocol: str = "common", reference: dict | None = None):
    """The comparison table (a pandas frame, one row per method, in the given order).

    ``records_by_method``: method spec -> its records (:func:`collect_records`); ``checkpoint``:
    ``"best"``, ``"last"`` or both (``("best", "last")``: every metric column twice); ``seeds``:
    how many were asked for (default :data:`advlit.experiments.DEFAULT_SEEDS`). A method
    without records is a row of ``missing``; one with fewer records than seeds says so in
    ``seeds`` ("2/3"). The cost ratio is to FGSM-RS's records (not side by side, see the
    module docstring); the masking column names the checkpoints where the mean AutoAttack
    accuracy is more than :data:`MASKING_GAP` points below the mean PGD-50 accuracy on the
    same images (``reference``: PGD-50 on AutoAttack's images of the runs whose final
    evaluation ran it on more, :func:`advlit.analysis.masking.pgd_on_aa_subset`; a checkpoint
    without it says "not judged").
    """
    import pandas as pd

    metrics = metrics_for(profile, protocol)
    cks = _checkpoints(checkpoint)
    wanted = len(experiments.DEFAULT_SEEDS[profile]) if seeds is None else int(seeds)
    present = {m: recs for m, recs in records_by_method.items() if recs}
    cells = {}
    for ck in cks:
        part = summarize(present, metrics=list(metrics.values()), checkpoint=ck, digits=digits, with_time=False) \
            if present else None
        for label, attack in metrics.items():
            column = label if len(cks) == 1 else f"{label} ({ck})"
            cells[column] = {m: part.loc[m, attack] for m in present} if part is not None else {}
    ref = records_by_method.get(REFERENCE) or []
    ref_cost = mean_std(training_seconds(r) for r in ref)[0] if ref else None
    pgd, aa = metrics.get("PGD-50"), metrics.get("AutoAttack")
    rows = []
    for method, records in records_by_method.items():
        row = {"method": method}
        if not records:
            row.update({"seeds": f"0/{wanted}", **{c: MISSING for c in cells}, "collapses": MISSING,
                        "s/epoch": MISSING, "train s": MISSING, "cost vs FGSM-RS (records)": MISSING,
                        "masking": MISSING})
            rows.append(row)
            continue
        row["seeds"] = f"{len(records)}/{wanted}"
        row.update({c: values[method] for c, values in cells.items()})
        row["collapses"] = f"{collapses(records)}/{len(records)}"
        row["s/epoch"] = "{:.2f} ± {:.2f}".format(*mean_std(r["seconds_per_epoch"] for r in records))
        cost = mean_std(training_seconds(r) for r in records)
        row["train s"] = f"{cost[0]:.0f} ± {cost[1]:.0f}"
        row["cost vs FGSM-RS (records)"] = f"{cost[0] / ref_cost:.2f}x" if ref_cost else "no FGSM-RS record"
        flagged = []
        for ck in cks if pgd and aa else ():  # a profile without both attacks cannot judge masking
            judged, gap = _masking_state(records, ck, pgd, aa, reference)
            if not judged:
                flagged.append(f"{ck}: not judged (no PGD-50 on AutoAttack's images)")
            elif masking_flag(gap):
                flagged.append(f"{ck}: AA {gap:.1f} below PGD-50")
        row["masking"] = "; ".join(flagged)
        rows.append(row)
    return pd.DataFrame(rows).set_index("method")


def masking_notes(records_by_method: dict[str, list[dict]], profile: str = "cpu", checkpoints=("best", "last"),
                  protocol: str = "common", reference: dict | None = None) -> list[str]:
    """One sentence per (method, checkpoint) whose mean AutoAttack accuracy is more than
    :data:`MASKING_GAP` points below its mean PGD-50 accuracy on the same images (see
    :func:`masking_gap`; ``reference`` as in :func:`comparison_table`): a gradient-masking
    signal (PGD's gradients mislead it; AutoAttack's targeted and gradient-free stages do not)."""
    metrics = metrics_for(profile, protocol)
    notes = []
    for method, records in records_by_method.items():
        for ck in _checkpoints(checkpoints):
            gap = masking_gap(records, ck, metrics["PGD-50"], metrics["AutoAttack"], reference)
            if masking_flag(gap):
                notes.append(f"{method} ({ck} checkpoint): AutoAttack is {gap:.1f} points below PGD-50 on the same images "
                             f"(more than {MASKING_GAP:g}): a gradient-masking signal, robustness by PGD overstated")
    return notes


def join_ratios(table, ratios: dict[str, float], epochs: dict[str, int] | None = None, source: str = "bench",
                missing: str = "not benched"):
    """``table`` with two side-by-side cost columns from ``ratios`` (method -> its cost per
    training step relative to FGSM-RS): ``s/step vs FGSM-RS (<source>)``, and ``run cost vs
    FGSM-RS (<source>)``, that ratio times the method's epochs over FGSM-RS's (``epochs``:
    method -> epochs of its run; Free-AT trains fewer). A method without a ratio says
    ``missing``."""
    table = table.copy()
    step, run = [], []
    for method in table.index:
        ratio = ratios.get(method)
        if ratio is None:
            step.append(missing)
            run.append(missing)
            continue
        step.append(f"{ratio:.2f}x")
        if epochs and method in epochs and REFERENCE in epochs:
            run.append(f"{ratio * epochs[method] / epochs[REFERENCE]:.2f}x")
        else:
            run.append("-")
    table[f"s/step vs FGSM-RS ({source})"] = step
    table[f"run cost vs FGSM-RS ({source})"] = run
    return table


def join_bench(table, bench: dict | str | Path, epochs: dict[str, int] | None = None):
    """``table`` with the side-by-side cost ratios of an ``advlit bench`` result (its JSON
    file or dict), the ratio of the fastest rounds per training step (:func:`join_ratios`,
    source ``bench``). A method the bench did not measure says ``not benched``."""
    out = json.loads(Path(bench).read_text()) if isinstance(bench, (str, Path)) else bench
    ratios = {m: r.get("ratio_to_fgsm_rs") for m, r in out.get("results", {}).items()}
    return join_ratios(table, {m: r for m, r in ratios.items() if r is not None}, epochs)


def protocol_epochs(profile: str = "cpu", protocol: str = "common", methods=None) -> dict[str, int]:
    """Method -> the epochs its run trains under the protocol (for :func:`join_bench`)."""
    return {m: experiments.get_config(experiment_name(m, protocol), profile).epochs
            for m in methods or protocol_methods(protocol)}


def format_table(table, fmt: str = "text") -> str:
    """The table as aligned plain text or as a markdown table."""
    head = [table.index.name or "method", *map(str, table.columns)]
    body = [[str(i), *(str(v) for v in row)] for i, row in zip(table.index, table.itertuples(index=False))]
    if fmt == "markdown":
        return "\n".join(["| " + " | ".join(head) + " |", "|" + "---|" * len(head),
                          *("| " + " | ".join(r) + " |" for r in body)])
    if fmt != "text":
        raise ConfigError(f"unknown format {fmt!r}; choose text or markdown")
    widths = [max(len(r[i]) for r in [head] + body) for i in range(len(head))]
    lines = ["  ".join(v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(r, widths)))
             for r in [head] + body]
    return "\n".join([lines[0], "-" * len(lines[0]), *lines[1:]])


# ------------------------------------------------------------------ figures
def _points(records_by_method, x, y):
    out = {}
    for method, records in records_by_method.items():
        if records:
            xs, ys = [x(r) for r in records], [y(r) for r in records]
            out[method] = (*mean_std(xs), *mean_std(ys))
    return out


def plot_cost_robustness(records_by_method: dict[str, list[dict]], profile: str = "cpu", checkpoint: str = "last",
                         protocol: str = "common", annotate: bool = True, cost: dict[str, float] | None = None,
                         cost_label: str | None = None):
    """AutoAttack accuracy against training cost (seconds of training per run, log scale),
    one point per method at its mean over seeds with the seed spread (± std) as error bars;
    the Pareto front (:func:`pareto_front` on the means) is joined by a line and its points
    ringed. Methods without records are left out (the table lists them). Returns the figure.

    ``cost`` (method -> one number, e.g. the run cost relative to FGSM-RS measured side by
    side, :func:`advlit.bench.time_experiments`) replaces the records' training seconds on
    the x axis (no x error bar: one measurement per method; a method without a cost is left
    out), and ``cost_label`` names it; the records' seconds were measured at different times
    under different machine loads, so only a side-by-side cost ranks methods by cost."""
    import matplotlib.pyplot as plt

    aa = metrics_for(profile, protocol)["AutoAttack"]
    pts = _points(records_by_method, training_seconds, lambda r: r["final"][checkpoint][aa])
    if cost is not None:
        pts = {m: (float(cost[m]), 0.0, cy, sy) for m, (_, _, cy, sy) in pts.items() if cost.get(m) is not None}
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    front = pareto_front({m: (p[0], p[2]) for m, p in pts.items()})
    for method, (cx, sx, cy, sy) in pts.items():
        ax.errorbar(cx, cy, xerr=sx, yerr=sy, fmt="o", ms=5, capsize=2, lw=1,
                    color="tab:red" if method in front else "tab:blue", alpha=0.9)
        if annotate:
            ax.annotate(method, (cx, cy), textcoords="offset points", xytext=(4, 3), fontsize=7)
    if front:
        ax.plot([pts[m][0] for m in front], [pts[m][2] for m in front], color="tab:red", lw=1, ls="--",
                label="Pareto front (mean over seeds)")
        ax.legend(loc="lower right")
    ax.set_xscale("log")
    ax.set_xlabel(cost_label or ("training cost (side by side)" if cost is not None else
                                 "training cost: seconds of training per run (records, not side by side)"))
    ax.set_ylabel(f"AutoAttack accuracy (%), {checkpoint} checkpoint")
    ax.set_title(f"robustness against training cost ({profile} profile, ± std over seeds)")
    return fig


def plot_clean_robustness(records_by_method: dict[str, list[dict]], profile: str = "cpu", checkpoint: str = "last",
                          protocol: str = "common", annotate: bool = True):
    """AutoAttack accuracy against clean accuracy, one point per method (mean, ± std over
    seeds as error bars). Returns the figure."""
    import matplotlib.pyplot as plt

    aa = metrics_for(profile, protocol)["AutoAttack"]
    pts = _points(records_by_method, lambda r: r["final"][checkpoint]["clean"], lambda r: r["final"][checkpoint][aa])
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    for method, (cx, sx, cy, sy) in pts.items():
        ax.errorbar(cx, cy, xerr=sx, yerr=sy, fmt="o", ms=5, capsize=2, lw=1, color="tab:blue", alpha=0.9)
        if annotate:
            ax.annotate(method, (cx, cy), textcoords="offset points", xytext=(4, 3), fontsize=7)
    ax.set_xlabel(f"clean accuracy (%), {checkpoint} checkpoint")
    ax.set_ylabel(f"AutoAttack accuracy (%), {checkpoint} checkpoint")
    ax.set_title(f"robustness against clean accuracy ({profile} profile, ± std over seeds)")
    return fig
