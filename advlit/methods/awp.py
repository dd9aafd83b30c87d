"""Adversarial weight perturbation (AWP; Wu et al., NeurIPS 2020), on PGD-AT's examples.

AWP trains on the worst case over inputs *and* a small, layer-wise relative perturbation
``v`` of the weights (AWP, Eq. 6):

    min_w max_{||v_l|| <= gamma ||w_l||} E max_delta CE(f_{w + v}(x + delta), y).

One step: (i) PGD-AT's example ``x_adv`` under the current weights; (ii) a proxy copy of
the model takes one SGD *ascent* step (LR ``proxy_lr``) on the loss of ``x_adv``, so ``v``
points along ``+grad_w L`` and ``L(w + v) > L(w)`` (AWP maximises over ``v``); for every
weight tensor (``dim > 1``: convolution and linear weights, not biases or norms) the
difference ``d_l = w_proxy_l - w_l`` is rescaled to ``v_l = gamma ||w_l|| d_l / ||d_l||``
(AWP, Eq. 8); (iii) the model is moved to ``w + v``, the loss and its gradient are
computed there, the target optimizer steps; (iv) ``v`` is subtracted again, so the step
equals the optimizer's step *at w* using the gradient taken at ``w + v`` (AWP, Eq. 9).

gamma = 5e-3 (AWP paper, PGD-AT) by default; LAS-AWP uses 0.01 (LAS-AT's code).
"""
from __future__ import annotations

import copy
from typing import Callable

import torch
from torch import Tensor, nn

from advlit.methods.base import Batch, step_metrics
from advlit.methods.pgd_at import PGDAT
from advlit.methods.registry import register
from advlit.utils import ConfigError


def perturbable(name: str, param: Tensor) -> bool:
    """The tensors AWP perturbs: weights of convolutions and linear layers (``dim > 1``)."""
    return param.requires_grad and param.dim() > 1


def weight_perturbation(model: nn.Module, proxy: nn.Module, loss_fn: Callable[[nn.Module], Tensor],
                        gamma: float, proxy_lr: float = 0.01) -> dict[str, Tensor]:
    """AWP, Eq. 8: ``v_l = gamma ||w_l|| d_l / ||d_l||`` with ``d`` one ascent step of a proxy.

    ``proxy`` is overwritten with ``model``'s weights first; ``loss_fn(net)`` returns the
    scalar loss to *increase*. Returns ``{name: v_l}``; the model itself is not changed.
    """
    proxy.load_state_dict(model.state_dict())
    proxy.train(model.training)
    params = dict(proxy.named_parameters())
    names = [n for n, p in params.items() if perturbable(n, p)]
    grads = torch.autograd.grad(loss_fn(proxy), [params[n] for n in names], allow_unused=True)
    current = dict(model.named_parameters())
    out = {}
    for name, grad in zip(names, grads):
        if grad is None:
            continue
        d = proxy_lr * grad  # w_proxy - w after one ascent step of plain SGD
        out[name] = gamma * current[name].detach().norm() * d / (d.norm() + 1e-20)
    return out


def shift_weights(model: nn.Module, perturbation: dict[str, Tensor], sign: float) -> None:
    """``w <- w + sign * v`` in place for the perturbed tensors."""
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, v in perturbation.items():
            params[name].add_(sign * v)


def awp_update(model: nn.Module, proxy: nn.Module, optimizer: torch.optim.Optimizer,
               loss_fn: Callable[[nn.Module], tuple[Tensor, Tensor]], gamma: float, proxy_lr: float):
    """AWP, Eq. 9: perturb the weights, take the optimizer step with the gradient at
    ``w + v``, and undo ``v``. ``loss_fn(net)`` returns ``(loss, logits)``; returns them."""
    v = weight_perturbation(model, proxy, lambda net: loss_fn(net)[0], gamma, proxy_lr)
    shift_weights(model, v, +1.0)
    loss, logits = loss_fn(model)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    shift_weights(model, v, -1.0)
    return loss, logits


@register("awp")
class AWP(PGDAT):
    """AWP on PGD-AT examples (AT-AWP, Wu et al. 2020): ``gamma`` = 5e-3 (AWP paper;
    0.01 in LAS-AWP), proxy ascent LR ``proxy_lr`` = 0.01 (AWP code)."""

    def __init__(self, eps: float, alpha: float | None = None, steps: int = 10, random_start: bool = True,
                 gamma: float = 5e-3, proxy_lr: float = 0.01):
        super().__init__(eps, alpha, steps, random_start)
        if gamma < 0 or proxy_lr <= 0:
            raise ConfigError(f"awp: gamma must be >= 0 and proxy_lr > 0, got {gamma}, {proxy_lr}")
        self.gamma = float(gamma)
        self.proxy_lr = float(proxy_lr)
        self._proxy = None

    def setup(self, model, optimizer, context):
        super().setup(model, optimizer, context)
        self._proxy = copy.deepcopy(model)

    def step(self, model, optimizer, batch: Batch) -> dict:
        """PGD example at ``w``, then the AWP update (Eq. 9)."""
        if self._proxy is None:
            self._proxy = copy.deepcopy(model)
        x_adv = self.perturb(model, batch)
        loss, logits = awp_update(model, self._proxy, optimizer, lambda net: self.loss(net, batch, x_adv),
                                  self.gamma, self.proxy_lr)
        return step_metrics(loss, logits, batch.y)
