"""Adversarial loss landscapes: the loss on a 2-D slice of input space around a batch.

ATAS (Huang et al. 2022), Fig. 9 and 10, and LAST (Liu et al. 2024), Fig. 1, both draw
the same construction: the mean cross-entropy over a batch at

    x(u, v) = clip_[0,1]( x + u * sign(grad_x CE(f(x), y)) + v * r ),

with ``u`` along the (signed) adversarial direction, ``v`` along a fixed random Rademacher
direction ``r`` in {-1, +1}^d, and ``u, v`` on a grid in ``[-span eps, span eps]``. A
smooth, nearly linear surface means FGSM approximates the inner maximum well; a bumpy one
with a steep rise off the gradient direction is the signature of catastrophic
overfitting (gradient masking).

    >>> res = adversarial_landscape(model, x, y, eps=8/255, n=21)
    >>> plot_landscape(res, kind="surface")
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from advlit.attacks import eval_mode, input_gradient
from advlit.attacks.losses import get_attack_loss
from advlit.utils import ConfigError

__all__ = ["adversarial_landscape", "plot_landscape"]


def adversarial_landscape(model: nn.Module, x: Tensor, y: Tensor, eps: float, n: int = 21, span: float = 1.0,
                          seed: int = 0, loss: str = "ce") -> dict:
    """The loss of ``model`` on the grid ``x + u_i sign(g) + v_j r`` (ATAS Fig. 9/10, LAST Fig. 1).

    Parameters
    ----------
    model, x, y : the network and one batch (inputs in [0, 1]).
    eps : the L-inf radius; the grid spans ``[-span eps, span eps]`` along both axes.
    n : grid points per axis.
    seed : seeds the Rademacher direction ``r`` (a CPU generator, so any device gives the same ``r``).
    loss : ``"ce"`` (mean cross-entropy, the papers' choice) or ``"cw"`` (mean C&W margin).

    Returns ``{"u": (n,), "v": (n,), "loss": (n, n)}`` on the CPU, ``loss[i, j]`` at
    ``(u_i, v_j)``, plus ``"eps"`` and ``"span"``. The model is evaluated in eval mode and its
    mode is restored afterwards.
    """
    if n < 2:
        raise ConfigError(f"landscape grid needs n >= 2 points per axis, got {n}")
    if span <= 0:
        raise ConfigError(f"landscape span must be positive, got {span}")
    loss_fn = get_attack_loss(loss)
    coeffs = torch.linspace(-span * eps, span * eps, n)
    gen = torch.Generator().manual_seed(int(seed))
    rademacher = (torch.randint(0, 2, x.shape, generator=gen) * 2 - 1).to(x.device, x.dtype)
    surface = torch.empty(n, n)
    with eval_mode(model):
        grad, _ = input_gradient(model, x, y, loss_fn)
        direction = grad.sign()
        with torch.no_grad():
            for i, u in enumerate(coeffs.tolist()):
                for j, v in enumerate(coeffs.tolist()):
                    point = (x + u * direction + v * rademacher).clamp(0.0, 1.0)
                    surface[i, j] = loss_fn(model(point), y).mean().item()
    return {"u": coeffs, "v": coeffs.clone(), "loss": surface, "eps": float(eps), "span": float(span)}


def plot_landscape(result: dict, kind: str = "surface", ax=None, title: str | None = None):
    """Draw a landscape from :func:`adversarial_landscape` as a 3-D surface or a contour map.

    Axes are in units of eps (``u / eps`` along sign(grad), ``v / eps`` along the random
    direction). ``ax`` must be a 3-D axis for ``kind="surface"``; one is created when
    ``None``. Returns the axis.
    """
    import matplotlib.pyplot as plt
    import numpy as np

    if kind not in ("surface", "contour"):
        raise ConfigError(f"landscape kind must be 'surface' or 'contour', got {kind!r}")
    eps = result.get("eps") or 1.0
    u = result["u"].numpy() / eps
    v = result["v"].numpy() / eps
    z = result["loss"].numpy()
    grid_u, grid_v = np.meshgrid(u, v, indexing="ij")
    if ax is None:
        fig = plt.figure(figsize=(4.2, 3.6))
        ax = fig.add_subplot(projection="3d") if kind == "surface" else fig.add_subplot()
    if kind == "surface":
        ax.plot_surface(grid_u, grid_v, z, cmap="viridis", linewidth=0, antialiased=True)
        ax.set_zlabel("loss")
    else:
        filled = ax.contourf(grid_u, grid_v, z, levels=15, cmap="viridis")
        ax.figure.colorbar(filled, ax=ax, label="loss")
    ax.set_xlabel(r"$u/\epsilon$ (sign grad)")
    ax.set_ylabel(r"$v/\epsilon$ (random)")
    if title:
        ax.set_title(title)
    return ax
