"""The instance-wise view of catastrophic overfitting (ATAS, Huang et al. 2022, Sec. III-IV).

- GN(x_i) = (1/N) sum_j ||grad_x l(x~_i^j, y_i)||_2: the input-gradient norm at the attack's
  start point x~_i^j, averaged over the N epochs of a run (Sec. III). ATTA and ATAS record it
  as they train (``track_norms=True``); :func:`average_norms_from_record` reads it back,
  :func:`input_gradient_norms` measures it for a trained model.
- rank(x_i) = (1/n) sum_k 1(GN(x_k) < GN(x_i)) and the subsets
  D_i^j = {x_k : (i - 1)/10 <= rank(x_k) < j/10} (:func:`ranks`, :func:`decile_subset`).
- Ratio of Eq. 10: (1 - beta)^(-1/4) sqrt( (sum_i G_i^2 / n) / (sum_i G_i / n)^2 ), the
  factor by which the regret bound of the non-adaptive SGD_BCA exceeds the one of the
  adaptive A-SGD_BCA (ATAS) (:func:`convergence_ratio`).
- Per-decile step-size and gradient-norm trajectories of Fig. 10 (:func:`decile_trajectories`).
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from advlit.attacks import eval_mode, input_gradient, uniform_start
from advlit.attacks.losses import cross_entropy
from advlit.utils import ConfigError

__all__ = ["input_gradient_norms", "average_norms_from_record", "ranks", "decile_subset", "class_balance",
           "convergence_ratio", "decile_trajectories"]


def input_gradient_norms(model: nn.Module, data, eps: float = 0.0, start: str = "uniform", batch_size: int = 256,
                         seed: int = 0, device="cpu") -> Tensor:
    """||grad_x CE(f(x~_i), y_i)||_2 for every example of ``data`` (an IndexedDataset) at the
    start point x~_i = x_i (``start="zero"``) or x_i + U(-eps, eps) (``"uniform"``, FGSM-RS's
    start), in eval mode. Returns a CPU tensor of shape (n,)."""
    if start not in ("zero", "uniform"):
        raise ConfigError(f"start must be 'zero' or 'uniform', got {start!r}")
    gen = torch.Generator(device="cpu").manual_seed(seed)
    out = []
    with eval_mode(model):
        for lo in range(0, len(data), batch_size):
            x, y = data.batch(torch.arange(lo, min(lo + batch_size, len(data))), device=device)
            if start == "uniform":
                x = x + uniform_start(x.cpu(), eps, gen).to(device)
            grad, _ = input_gradient(model, x, y, cross_entropy)
            out.append(grad.flatten(1).norm(dim=1).cpu())
    return torch.cat(out)


def average_norms_from_record(record: dict) -> Tensor:
    """GN(x_i) of Sec. III from an ATTA / ATAS run record made with ``track_norms=True``."""
    for row in reversed(record["history"]):
        if "method_grad_norm_per_example" in row:
            return torch.tensor(row["method_grad_norm_per_example"])
    raise ConfigError("this record holds no per-example gradient norms: train ATTA / ATAS with track_norms=True")


def ranks(norms: Tensor) -> Tensor:
    """rank(x_i): the fraction of examples with a strictly smaller norm (ATAS Sec. III)."""
    norms = torch.as_tensor(norms, dtype=torch.float64)
    order = torch.sort(norms).values
    return torch.searchsorted(order, norms, right=False).double() / len(norms)


def decile_subset(norms: Tensor, lo: int, hi: int, groups: int = 10) -> Tensor:
    """Indices of D_lo^hi = {x_k : (lo - 1)/groups <= rank(x_k) < hi/groups} (1-based, inclusive)."""
    if not (1 <= lo <= hi <= groups):
        raise ConfigError(f"subset D_{lo}^{hi} needs 1 <= lo <= hi <= {groups}")
    r = ranks(norms)
    keep = (r >= (lo - 1) / groups) & ((r < hi / groups) if hi < groups else torch.ones_like(r, dtype=torch.bool))
    return torch.nonzero(keep).flatten()


def class_balance(indices: Tensor, labels: Tensor, num_classes: int) -> tuple[float, float]:
    """(min, max) share of one class in a subset, in percent (ATAS reports 8.98 % - 10.86 %)."""
    counts = torch.bincount(torch.as_tensor(labels)[torch.as_tensor(indices)], minlength=num_classes).double()
    share = 100 * counts / counts.sum()
    return share.min().item(), share.max().item()


def convergence_ratio(norms: Tensor, beta: float = 0.5) -> dict:
    """Eq. 10 of ATAS with G_i = ``norms``: returns ``moment_ratio`` = (mean G^2) / (mean G)^2
    (the quantity plotted in Fig. 6b), ``sqrt_ratio`` = its square root, and ``ratio`` =
    (1 - beta)^(-1/4) sqrt_ratio, Eq. 10 as printed. By Cauchy-Schwarz ``moment_ratio >= 1``;
    the longer the tail of G, the larger the advantage of the adaptive step."""
    g = torch.as_tensor(norms, dtype=torch.float64)
    moment = (g.pow(2).mean() / g.mean().pow(2)).item()
    return {"moment_ratio": moment, "sqrt_ratio": moment ** 0.5, "ratio": (1 - beta) ** -0.25 * moment ** 0.5,
            "beta": beta}


def decile_trajectories(average: Tensor, norm_history: Tensor, step_history: Tensor, groups: int = 10) -> dict:
    """Per-epoch mean gradient norm and step of each of the ``groups`` subsets D_k^k, the
    subsets formed by ranking ``average`` (ATAS Fig. 10). ``*_history`` are (epochs, n).
    Returns lists ``norm_by_decile[k][epoch]`` and ``step_by_decile[k][epoch]``."""
    average = average.detach().cpu()
    norm_history, step_history = norm_history.detach().cpu(), step_history.detach().cpu()
    norms, steps = [], []
    for k in range(1, groups + 1):
        idx = decile_subset(average, k, k, groups)
        norms.append([float(f"{v:.4g}") for v in norm_history[:, idx].mean(1).tolist()])
        steps.append([float(f"{v:.4g}") for v in step_history[:, idx].mean(1).tolist()])
    return {"norm_by_decile": norms, "step_by_decile": steps}
