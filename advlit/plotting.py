"""Shared figure helpers: every figure of the book is drawn from run records."""
from __future__ import annotations

import numpy as np


def style() -> None:
    """A quiet, readable matplotlib style used by every chapter (PNG output)."""
    import matplotlib as mpl

    mpl.rcParams.update({
        "figure.dpi": 100, "savefig.dpi": 100, "figure.figsize": (6.4, 3.6), "axes.grid": True,
        "grid.alpha": 0.3, "axes.spines.top": False, "axes.spines.right": False, "legend.frameon": False,
        "font.size": 10,
    })
    try:  # inline figures as PNG (nbval ignores images; SVG would be compared byte for byte)
        from matplotlib_inline.backend_inline import set_matplotlib_formats

        set_matplotlib_formats("png")
    except Exception:  # outside IPython
        pass


def curve(records: list[dict], key: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Epochs, mean and std over the records (seeds) of the per-epoch metric ``key``."""
    rows = [[r[key] for r in rec["history"] if key in r] for rec in records]
    epochs = [r["epoch"] for r in records[0]["history"] if key in r]
    values = np.array(rows, dtype=float)
    return np.array(epochs), values.mean(0), values.std(0)


def plot_curves(ax, records_by_label: dict[str, list[dict]], key: str = "val_robust", ylabel: str | None = None,
                individual: bool = False):
    """Mean +- std band of ``key`` per label; ``individual=True`` draws each seed instead."""
    for label, records in records_by_label.items():
        if individual:
            for i, rec in enumerate(records):
                xs = [r["epoch"] for r in rec["history"] if key in r]
                ys = [r[key] for r in rec["history"] if key in r]
                line, = ax.plot(xs, ys, lw=1.2, alpha=0.85, label=label if i == 0 else None,
                                color=None if i == 0 else line.get_color())
        else:
            xs, mean, std = curve(records, key)
            line, = ax.plot(xs, mean, lw=1.5, label=f"{label} (n={len(records)})")
            ax.fill_between(xs, mean - std, mean + std, color=line.get_color(), alpha=0.2)
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel or key)
    ax.legend()
    return ax


def plot_overfitting(runs: dict[str, list[dict]], pgd_label: str = "PGD-20"):
    """Catastrophic overfitting at a glance: one panel per label, the validation PGD (red)
    and FGSM (blue, dashed) accuracy after every epoch, one line per seed (Wong et al. 2020,
    Fig. 3; ATAS, Fig. 1). Returns the figure."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(runs), figsize=(5 * len(runs), 3.4), sharey=True, squeeze=False)
    for ax, (label, records) in zip(axes[0], runs.items()):
        for rec in records:
            epochs = [r["epoch"] for r in rec["history"] if "val_robust" in r]
            ax.plot(epochs, [r["val_robust"] for r in rec["history"] if "val_robust" in r], color="tab:red", lw=1.2)
            ax.plot(epochs, [r["val_fgsm"] for r in rec["history"] if "val_fgsm" in r], color="tab:blue", lw=1.2,
                    ls="--")
        ax.plot([], [], color="tab:red", label=f"{pgd_label} (validation)")
        ax.plot([], [], color="tab:blue", ls="--", label="FGSM (validation)")
        ax.set_title(label)
        ax.set_xlabel("epoch")
        ax.legend()
    axes[0][0].set_ylabel("accuracy (%), one line per seed")
    return fig
