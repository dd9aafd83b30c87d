"""Choosing the cpu stand-in (chapter 01, "Choosing the stand-in"; issue 14).

The ``cpu`` profile replaces the papers' CIFAR-10 / ResNet by the embedded digits and a
small CNN. A stand-in is useful only if the phenomena the papers study appear in it:

1. PGD-AT, the baseline of every paper, converges in the profile's budget: its validation
   accuracy stops climbing before the end, and twice the budget does not add much;
2. FGSM-RS with step 2 eps overfits catastrophically and with step eps does not
   (Wong et al. 2020, Fig. 3): the problem that every fast method of the papers solves;
3. it stays cheap: an FGSM-type epoch takes about a second on this machine.

:func:`candidate_row` measures these on the **validation** split from the records of the
runs of a candidate (the test split is never looked at to choose).
"""
from __future__ import annotations

from advlit.analysis.overfitting import catastrophic_overfitting
from advlit.results import mean_std


def plateau_gain(curve) -> float:
    """Best value over the last third of training minus the best over the middle third.

    With ``E`` epochs: epochs ``(2E/3, E]`` against ``[E/3, 2E/3]`` (21..30 against
    10..20 of 30). A curve that has plateaued before the last third gains about nothing
    (within the validation noise); one still climbing gains many points.
    """
    curve = [float(v) for v in curve]
    e = len(curve)
    if e < 3:
        raise ValueError(f"plateau_gain needs at least 3 epochs, got {e}")
    middle, last = curve[e // 3 - 1: 2 * e // 3], curve[2 * e // 3:]
    return max(last) - max(middle)


def collapses(records) -> int:
    """How many of the runs overfit catastrophically
    (:func:`advlit.analysis.overfitting.catastrophic_overfitting` on their validation history)."""
    return sum(bool(catastrophic_overfitting(r["history"])["detected"]) for r in records)


def _last_val(records) -> str:
    mean, std = mean_std(r["history"][-1]["val_robust"] for r in records)
    return f"{mean:.1f} ± {std:.1f}"


def candidate_row(pgd_at, pgd_at_long, large_step, small_step) -> dict:
    """The criteria of one candidate from its validation histories, each argument a list of
    run records (one per seed): ``pgd_at`` (the profile's budget), ``pgd_at_long`` (twice the
    budget), ``large_step`` (FGSM-RS, alpha = 2 eps) and ``small_step`` (alpha = eps).

    Validation PGD-20 of PGD-AT at the last epoch of both budgets (mean ± sample std over
    seeds), the :func:`plateau_gain` of the profile's budget (mean over seeds), and the
    collapse counts."""
    gain, _ = mean_std(plateau_gain([h["val_robust"] for h in r["history"]]) for r in pgd_at)
    return {"PGD-AT val PGD-20 (last epoch)": _last_val(pgd_at),
            "PGD-AT plateau gain (points)": round(gain, 1),
            "PGD-AT, 2x epochs: val PGD-20 (last epoch)": _last_val(pgd_at_long),
            "FGSM-RS 2 eps collapsed": f"{collapses(large_step)} of {len(large_step)}",
            "FGSM-RS eps collapsed": f"{collapses(small_step)} of {len(small_step)}"}
