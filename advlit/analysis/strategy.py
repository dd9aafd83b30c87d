"""What the LAS-AT strategy network chose: per-epoch histograms of every head, as heat maps
and mean-value curves (the package's version of LAS-AT, Fig. 4).

The method stores, for every epoch, the counts of each option of each head in the run
record's history (``method_hist_<head>``, a list of ints); everything here reads records.
"""
from __future__ import annotations

import numpy as np


def heads(record: dict) -> list[str]:
    """Names of the strategy heads stored in ``record`` (e.g. eps, step, iters)."""
    return [k[len("method_hist_"):] for k in record["history"][0] if k.startswith("method_hist_")]


def strategy_frequencies(records: list[dict], head: str) -> tuple[np.ndarray, np.ndarray]:
    """Epochs and the ``(epochs, options)`` matrix of option frequencies of ``head``,
    each row normalised to sum to 1, averaged over ``records`` (seeds)."""
    mats = []
    for rec in records:
        rows = np.array([r[f"method_hist_{head}"] for r in rec["history"]], dtype=float)
        mats.append(rows / rows.sum(1, keepdims=True))
    epochs = np.array([r["epoch"] for r in records[0]["history"]])
    return epochs, np.mean(mats, axis=0)


def mean_choice(records: list[dict], head: str, values) -> tuple[np.ndarray, np.ndarray]:
    """Epochs and the mean chosen value of ``head`` per epoch (``values``: the options)."""
    epochs, freq = strategy_frequencies(records, head)
    return epochs, freq @ np.asarray(values, dtype=float)


def plot_strategy_heatmap(ax, records: list[dict], head: str, labels=None, title: str | None = None):
    """Heat map: epochs (x) by options (y), colour = share of training examples that got
    the option in that epoch (mean over the records)."""
    epochs, freq = strategy_frequencies(records, head)
    image = ax.imshow(freq.T, aspect="auto", origin="lower", cmap="viridis", vmin=0, vmax=1,
                      extent=(epochs[0] - 0.5, epochs[-1] + 0.5, -0.5, freq.shape[1] - 0.5))
    ax.set_yticks(range(freq.shape[1]))
    if labels is not None:
        ax.set_yticklabels(labels)
    ax.set_xlabel("epoch")
    ax.set_ylabel(head)
    ax.grid(False)
    if title:
        ax.set_title(title)
    return image


def strategy_table(records: list[dict], head: str, labels, epochs=None):
    """A pandas table of option shares (percent) of ``head`` at the given epochs."""
    import pandas as pd

    all_epochs, freq = strategy_frequencies(records, head)
    picks = list(all_epochs) if epochs is None else list(epochs)
    rows = {f"epoch {e}": 100 * freq[list(all_epochs).index(e)] for e in picks}
    return pd.DataFrame(rows, index=[str(label) for label in labels]).T.round(1)
