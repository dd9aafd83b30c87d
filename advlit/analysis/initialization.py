"""Analyses of the chapter *Initialisation matters* (FGSM-SDI / FGSM-PGI, slide deck of
Jia et al.): the success rate of the training attack over training (FGSM-SDI, Fig. 6),
the learned initialisation next to the random one (FGSM-SDI, Fig. 8), and tables that
put each method's *best* and *last* checkpoints side by side.

Everything is computed from run records or from a trained checkpoint; nothing here trains.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from advlit.attacks import clamp_to_ball, cross_entropy, input_gradient


def attack_success_rate(record: dict) -> tuple[np.ndarray, np.ndarray]:
    """Epochs and the success rate (%) of the *training* attack in each epoch.

    The trainer logs ``train_acc``: the accuracy of the model, before each update, on the
    training inputs the method produced (the adversarial examples). The training attack
    succeeds on the examples it gets misclassified, so its success rate is
    ``100 - train_acc`` (FGSM-SDI, Fig. 6 plots the same quantity for CIFAR-10)."""
    rows = record["history"]
    return np.array([r["epoch"] for r in rows]), np.array([100.0 - r["train_acc"] for r in rows])


def success_rate_curves(records_by_label: dict[str, list[dict]]) -> dict[str, tuple]:
    """``label -> (epochs, mean, std)`` of :func:`attack_success_rate` over the seeds."""
    out = {}
    for label, records in records_by_label.items():
        curves = [attack_success_rate(r) for r in records]
        values = np.stack([c[1] for c in curves])
        out[label] = (curves[0][0], values.mean(0), values.std(0))
    return out


def plot_success_rate(ax, records_by_label: dict[str, list[dict]]):
    """Mean +- std band of the training attack's success rate per label."""
    for label, (epochs, mean, std) in success_rate_curves(records_by_label).items():
        n = len(records_by_label[label])
        line, = ax.plot(epochs, mean, lw=1.5, label=f"{label} (n={n})")
        ax.fill_between(epochs, mean - std, mean + std, color=line.get_color(), alpha=0.2)
    ax.set_xlabel("epoch")
    ax.set_ylabel("training attack success rate (%)")
    ax.legend()
    return ax


def final_table(records_by_label: dict[str, list[dict]], metrics, digits: int = 1):
    """``mean ± std`` over seeds of each final test metric, for the ``best`` and the
    ``last`` checkpoint, plus seconds per epoch and how many seeds collapsed
    (:func:`advlit.analysis.overfitting.catastrophic_overfitting`, stored in the record)."""
    import pandas as pd

    from advlit.results import mean_std

    rows = []
    for label, records in records_by_label.items():
        for which in ("best", "last"):
            row = {"method": label, "checkpoint": which, "seeds": len(records)}
            for metric in metrics:
                m, s = mean_std(r["final"][which][metric] for r in records)
                row[metric] = f"{m:.{digits}f} ± {s:.{digits}f}"
            row["collapsed"] = f"{sum(bool(r['overfitting']['detected']) for r in records)}/{len(records)}"
            rows.append(row)
    return pd.DataFrame(rows).set_index(["method", "checkpoint"])


def seconds_table(records_by_label: dict[str, list[dict]]):
    """Mean seconds per training epoch (training only, validation excluded) per label."""
    import pandas as pd

    from advlit.results import mean_std

    rows = [{"method": label, "s/epoch": round(mean_std(r["seconds_per_epoch"] for r in recs)[0], 2)}
            for label, recs in records_by_label.items()]
    return pd.DataFrame(rows).set_index("method")


def paper_wide(df, metrics, rename: dict | None = None):
    """A long-format paper table (:func:`advlit.results.paper_table`) as one row per
    (method, checkpoint) and one column per metric; values exactly as printed."""
    wide = df[df["metric"].isin(metrics)].pivot_table(index=["method", "checkpoint"], columns="metric",
                                                       values="value", aggfunc="first", sort=False)
    wide = wide[[m for m in metrics if m in wide.columns]]
    return wide.rename(columns=rename or {})


def method_from_checkpoint(record: dict, device="cpu"):
    """Rebuild the method of a run (auxiliary networks and buffers included) from its
    final state (:func:`advlit.results.final_state`: the committed weights, else
    ``checkpoint.pt``)."""
    from advlit.config import RunConfig
    from advlit.data import dataset_info
    from advlit.methods import TrainContext, build_method
    from advlit.results import final_state, model_from_checkpoint

    state = final_state(record, device=device)
    cfg = RunConfig.from_dict(state["config"])
    info = dataset_info(cfg.dataset)
    model = model_from_checkpoint(state, device)
    method = build_method(cfg.method, cfg.eps, cfg.alpha_ratio, **cfg.method_args)
    ctx = TrainContext(num_examples=1, input_shape=tuple(info.input_shape), num_classes=info.num_classes,
                       epochs=cfg.epochs, steps_per_epoch=1, device=torch.device(device))
    method.setup(model, torch.optim.SGD(model.parameters(), lr=0.0), ctx)
    method.load_state_dict(state["method"])
    return model, method


def initialisations(model, sdi, x, y, seed: int = 0) -> dict[str, torch.Tensor]:
    """The perturbations of FGSM-SDI, Fig. 8 for one batch, all against ``model``:
    FGSM-RS's random start ``U(-eps, eps)`` and its FGSM-updated perturbation (step
    ``sdi.alpha``), and FGSM-SDI's generated initialisation ``eta_g`` (Eq. 6) and its
    FGSM-updated perturbation (Eq. 7). Also the loss of each point (``"loss: ..."`` keys)."""
    eps, alpha = sdi.eps, sdi.alpha
    gen = torch.Generator().manual_seed(seed)
    out = {}
    random0 = (2 * torch.rand(x.shape, generator=gen) - 1).to(x) * eps
    x_rs0 = clamp_to_ball(x + random0, x, eps)
    grad, loss0 = input_gradient(model, x_rs0, y, cross_entropy)
    x_rs = clamp_to_ball(x_rs0 + alpha * grad.sign(), x, eps)
    signed = sdi.signed_gradient(model, x, y)
    with torch.no_grad():
        eta = sdi.initialisation(x, signed)
    x_sdi0 = clamp_to_ball(x + eta, x, eps)
    x_sdi = sdi.adversarial(model, x, y, eta).detach()
    out["FGSM-RS: random init"] = x_rs0 - x
    out["FGSM-RS: after FGSM"] = x_rs - x
    out["FGSM-SDI: learned init"] = x_sdi0 - x
    out["FGSM-SDI: after FGSM"] = x_sdi - x
    with torch.no_grad():
        for name, point in (("FGSM-RS: random init", x_rs0), ("FGSM-RS: after FGSM", x_rs),
                            ("FGSM-SDI: learned init", x_sdi0), ("FGSM-SDI: after FGSM", x_sdi)):
            out[f"loss: {name}"] = cross_entropy(model(point), y)
    return out


def plot_initialisations(x, perturbations: dict[str, torch.Tensor], eps: float, n: int = 6):
    """A grid: the clean images in the first row, then one row per perturbation (same
    colour scale, -eps blue to +eps red; the mean over colour channels for RGB images);
    each panel is titled with its example's loss."""
    import matplotlib.pyplot as plt

    names = [k for k in perturbations if not k.startswith("loss: ")]
    fig, axes = plt.subplots(len(names) + 1, n, figsize=(1.3 * n, 1.35 * (len(names) + 1)), squeeze=False)
    for j in range(n):
        if x.shape[1] == 3:  # colour images: the image in colour, the channel mean of the perturbation
            axes[0, j].imshow(x[j].permute(1, 2, 0).cpu().clamp(0, 1))
        else:
            axes[0, j].imshow(x[j, 0].cpu(), cmap="gray", vmin=0, vmax=1)
        for i, name in enumerate(names, start=1):
            axes[i, j].imshow(perturbations[name][j].mean(0).cpu(), cmap="RdBu_r", vmin=-eps, vmax=eps)
            loss = perturbations.get(f"loss: {name}")
            if loss is not None:
                axes[i, j].set_title(f"loss {loss[j]:.2f}", fontsize=7)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
        ax.grid(False)
    axes[0, 0].set_ylabel("clean", fontsize=8)
    for i, name in enumerate(names, start=1):
        axes[i, 0].set_ylabel(name.replace(": ", "\n"), fontsize=7)
    fig.tight_layout()
    return fig
