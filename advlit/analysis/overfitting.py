"""Detectors of the two failure modes of adversarial training, read off run records.

*Catastrophic overfitting* (Wong et al. 2020): within a few epochs, multi-step (PGD)
robust accuracy collapses towards zero while single-step (FGSM) accuracy rises, because
the model becomes locally non-linear and FGSM stops approximating the inner maximum.
*Robust overfitting* (Rice et al. 2020): robust accuracy peaks and then slowly decays.
"""
from __future__ import annotations


def catastrophic_overfitting(history: list[dict], collapse: float = 0.25, fgsm_gap: float = 20.0) -> dict:
    """Flag catastrophic overfitting in a run's per-epoch validation metrics.

    An epoch is *collapsed* when its validation PGD accuracy (``val_robust``) is below
    ``collapse`` x the best value seen so far **and** its FGSM accuracy exceeds the PGD
    accuracy by more than ``fgsm_gap`` points. Returns ``{"detected": bool, "epoch": first
    collapsed epoch or None, "peak_robust": ..., "final_robust": ..., "final_fgsm": ...}``.
    """
    rows = [r for r in history if "val_robust" in r]
    peak, first = 0.0, None
    for r in rows:
        peak = max(peak, r["val_robust"])
        if first is None and peak > 0 and r["val_robust"] < collapse * peak and r["val_fgsm"] - r["val_robust"] > fgsm_gap:
            first = r["epoch"]
    last = rows[-1] if rows else {}
    return {
        "detected": first is not None,
        "epoch": first,
        "peak_robust": peak,
        "final_robust": last.get("val_robust"),
        "final_fgsm": last.get("val_fgsm"),
    }


def oscillation(history: list[dict], key: str = "val_robust") -> dict:
    """How unstable a run's robust accuracy is: the mean absolute epoch-to-epoch change of
    ``key``, and the best-minus-final gap (PIAT, Sec. III-A: robust accuracy oscillates)."""
    values = [r[key] for r in history if key in r]
    if len(values) < 2:
        return {"mean_abs_change": 0.0, "best_minus_final": 0.0}
    changes = [abs(b - a) for a, b in zip(values, values[1:])]
    return {"mean_abs_change": sum(changes) / len(changes), "best_minus_final": max(values) - values[-1]}
