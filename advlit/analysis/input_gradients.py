"""Input-gradient heat maps of two models on clean and adversarial inputs (LAST, Fig. 2).

LAST motivates the proxy with the observation that a *historical* state of the target
(the proxy ``P_omega``) reacts less to an adversarial example crafted on the target
``T_theta``: its loss grows less from ``u`` to ``u_adv`` and its input gradient stays
salient around the object. :func:`input_gradient_maps` computes, for every model, the
input gradient of the CE loss at ``u`` and at ``u_adv`` (each normalised to [0, 1] per
image and channel, as in Fig. 2) and the per-example losses; :func:`plot_input_gradients`
draws the maps side by side.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from advlit.attacks import eval_mode

__all__ = ["input_gradient_maps", "plot_input_gradients", "normalise_maps"]


def normalise_maps(grad: Tensor) -> Tensor:
    """``|g|`` scaled to [0, 1] per image and channel (LAST, Fig. 2 caption)."""
    g = grad.abs().flatten(2)
    low, high = g.min(2, keepdim=True).values, g.max(2, keepdim=True).values
    return ((g - low) / (high - low).clamp_min(1e-12)).view_as(grad)


def _grad_and_loss(model: nn.Module, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    x = x.detach().requires_grad_(True)
    losses = F.cross_entropy(model(x), y, reduction="none")
    (grad,) = torch.autograd.grad(losses.sum(), x)
    return grad.detach(), losses.detach()


def input_gradient_maps(models: dict[str, nn.Module], x: Tensor, y: Tensor, x_adv: Tensor) -> dict:
    """For each named model: normalised input-gradient maps and CE losses at ``x`` and ``x_adv``.

    Returns ``{name: {"clean": maps, "adv": maps, "loss_clean": (B,), "loss_adv": (B,)}}``;
    the models are evaluated in eval mode (restored afterwards).
    """
    out = {}
    for name, model in models.items():
        with eval_mode(model):
            g_clean, l_clean = _grad_and_loss(model, x, y)
            g_adv, l_adv = _grad_and_loss(model, x_adv, y)
        out[name] = {"clean": normalise_maps(g_clean), "adv": normalise_maps(g_adv),
                     "loss_clean": l_clean, "loss_adv": l_adv}
    return out


def plot_input_gradients(maps: dict, x: Tensor, x_adv: Tensor, index: int = 0, axes=None):
    """One row per model: the clean image, its gradient map, the adversarial image, its map
    (LAST, Fig. 2, panels a-f); the CE loss is printed above each map."""
    import matplotlib.pyplot as plt

    names = list(maps)
    if axes is None:
        _, axes = plt.subplots(len(names), 4, figsize=(7.5, 2.0 * len(names)), squeeze=False)
    for row, name in zip(axes, names):
        m = maps[name]
        panels = [(x[index], "clean $u$", "gray"), (m["clean"][index], f"grad at $u$, CE {m['loss_clean'][index]:.2f}",
                                                      "inferno"),
                  (x_adv[index], "adversarial $u_{adv}$", "gray"),
                  (m["adv"][index], f"grad at $u_{{adv}}$, CE {m['loss_adv'][index]:.2f}", "inferno")]
        for ax, (img, title, cmap) in zip(row, panels):
            ax.imshow(img.mean(0).cpu().numpy(), cmap=cmap, vmin=0, vmax=1)
            ax.set_title(title, fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
        row[0].set_ylabel(name, fontsize=9)
    return axes
