"""YOPO, "You Only Propagate Once" (Zhang, Zhang, Lu, Zhu & Dong, NeurIPS 2019, Alg. 1, YOPO-m-n).

The network is split into its first layer ``f_0`` (parameters theta_0) and the rest
``g`` (theta~). Pontryagin's maximum principle says the perturbation only couples to the
first layer through the *adjoint* ``p = dL / df_0``: one full forward-backward pass gives
both ``p`` and the gradient of theta~, and ``n`` cheap inner updates of the perturbation
then use the first layer alone (the Hamiltonian ``H = p . f_0(x + eta)``):

    eta ~ U(-eps, eps)
    for j = 1..m:                                    (m full forward-backward passes)
        L = CE(g(f_0(x + eta)), y);  p = dL/df_0;  U_1 += dL/dtheta~          (one backward)
        for s = 1..n:                                (first layer only)
            eta <- Proj_eps( eta + alpha * sign( d/deta [ p . f_0(x + eta) ] ) )
        U_0 += d/dtheta_0 [ p . f_0(x + eta) ]       (the Hamiltonian's parameter gradient)
    theta~ <- step(U_1 / m),  theta_0 <- step(U_0 / m)

Facts from the authors' code (a1600012888/YOPO-You-Only-Propagate-Once,
``experiments/CIFAR10/pre-res18.yopo-5-3``): YOPO-5-3 (m = 5, n = 3), sigma = 2/255 at
eps = 8/255 (``alpha = eps / 4``), a uniform start, the first layer is the stem
convolution (``layer_one``), the inner steps are signed and projected to the eps-ball and
[0, 1], the adjoint of each outer iteration is taken at its *start* point and the
gradients of the m passes are accumulated and applied once per batch. PreActResNet-18,
36 epochs, SGD momentum 0.9, weight decay 5e-4, LR 0.2 / m on the *summed* gradients
(divided by 10 at epochs 30 and 34), batch 256.

Conventions and deviations of this implementation:

- The accumulated gradients are *averaged* over the m passes, so the optimizer's LR
  means what it means for every other method: the code's ``lr = 0.2 / m`` on summed
  gradients with weight decay 5e-4 is the same SGD trajectory as LR 0.2 on the mean with
  weight decay ``5e-4 / m`` (= 1e-4 at m = 5); the ``gpu`` experiment uses that.
- ``layer_one_grad="paper"`` (default): theta_0 is updated with the Hamiltonian gradient
  only (Alg. 1). ``"code"``: as in the authors' code, the cross-entropy backward of each
  outer pass also reaches theta_0 and is added (the first layer then gets both; the
  authors confirm it in their repository's issue #4: lines once meant to drop it had no
  effect).
- The first layer is the first module (in registration order) that owns parameters:
  the stem convolution of every model in :mod:`advlit.models` (after a parameter-free
  ``Normalize``); ``layer_one="name"`` picks another module by its name. The inner passes
  run the model only up to that layer (a forward hook stops the pass there).
- ``perturb`` (what frameworks such as LAST call) runs the same m x n schedule without
  any parameter update and returns the last ``x + eta``.
- Every pass runs in the model's current (training) mode, as in the code; every input is
  clamped to [0, 1] (the code's first full pass uses ``x + eta_0`` unclamped; later ones
  are in [0, 1] by the inner steps' clamp).
"""
from __future__ import annotations

from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from advlit.methods.base import Batch, Method, clamp_to_ball
from advlit.methods.registry import register
from advlit.utils import ConfigError

LAYER_ONE_GRADS = ("paper", "code")


class _StopForward(Exception):
    """Raised by the capture hook to end a forward pass after the first layer."""


def first_layer(model: nn.Module, name: str | None = None) -> tuple[str, nn.Module]:
    """``(name, module)`` of the layer YOPO treats as ``f_0``: ``name`` if given, else the
    first module (in registration order) that owns parameters."""
    modules = dict(model.named_modules())
    if name is not None:
        if name not in modules:
            raise ConfigError(f"yopo: the model has no module named {name!r}")
        return name, modules[name]
    for key, module in modules.items():
        if any(True for _ in module.parameters(recurse=False)):
            return key, module
    raise ConfigError("yopo: the model has no parameters")


@contextmanager
def capture(layer: nn.Module, stop: bool = False):
    """Record ``layer``'s output during the forward passes inside the block (in
    ``box["out"]``); with ``stop=True`` the pass ends right after it."""
    box: dict = {}

    def hook(module, inputs, output):
        box["out"] = output
        if stop:
            raise _StopForward

    handle = layer.register_forward_hook(hook)
    try:
        yield box
    finally:
        handle.remove()


def layer_one_output(model: nn.Module, layer: nn.Module, x: Tensor) -> Tensor:
    """``f_0(x)``: the model run only up to (and including) ``layer``."""
    with capture(layer, stop=True) as box:
        try:
            model(x)
        except _StopForward:
            pass
    if "out" not in box:
        raise ConfigError("yopo: the chosen first layer is not on the model's forward path")
    return box["out"]


@register("yopo")
class YOPO(Method):
    """YOPO-m-n (Alg. 1): ``m`` full passes per batch, ``n`` first-layer-only updates each;
    ``alpha`` (the inner step) defaults to ``eps / 4``. See the module docstring."""

    def __init__(self, eps: float, alpha: float | None = None, m: int = 5, n: int = 3,
                 layer_one: str | None = None, layer_one_grad: str = "paper"):
        super().__init__(eps, alpha)
        if int(m) < 1 or int(n) < 1:
            raise ConfigError(f"yopo: m and n must be >= 1, got m={m}, n={n}")
        if layer_one_grad not in LAYER_ONE_GRADS:
            raise ConfigError(f"yopo: layer_one_grad must be one of {LAYER_ONE_GRADS}, got {layer_one_grad!r}")
        self.m, self.n = int(m), int(n)
        self.layer_one = layer_one
        self.layer_one_grad = layer_one_grad
        if self.alpha is None:
            self.alpha = self.eps / 4

    # ------------------------------------------------------------ the pieces
    def _start(self, x: Tensor) -> Tensor:
        eta = (torch.rand_like(x) * 2 - 1) * self.eps
        return clamp_to_ball(x + eta, x, self.eps) - x

    def inner_steps(self, model: nn.Module, layer: nn.Module, x: Tensor, eta: Tensor, p: Tensor) -> Tensor:
        """``n`` signed ascent steps on the Hamiltonian ``p . f_0(x + eta)``: the first layer only."""
        for _ in range(self.n):
            eta = eta.detach().requires_grad_(True)
            hamiltonian = (layer_one_output(model, layer, x + eta) * p).sum()
            (grad,) = torch.autograd.grad(hamiltonian, eta)
            eta = clamp_to_ball(x + eta.detach() + self.alpha * grad.sign(), x, self.eps) - x
        return eta.detach()

    def _full_pass(self, model, layer, x, y, eta, wrt: list[Tensor]):
        """One full forward-backward pass at ``x + eta``: ``(loss, logits, p, grads of wrt)``."""
        with capture(layer) as box:
            logits = model(x + eta)
        loss = F.cross_entropy(logits, y)
        grads = torch.autograd.grad(loss, [box["out"], *wrt], allow_unused=True)
        return loss, logits, grads[0].detach(), grads[1:]

    # ------------------------------------------------------------ the recipe
    def perturb(self, model, batch: Batch) -> Tensor:
        """The YOPO perturbation schedule without parameter updates (for frameworks)."""
        _, layer = first_layer(model, self.layer_one)
        x, y = batch.x, batch.y
        eta = self._start(x)
        for _ in range(self.m):
            _, _, p, _ = self._full_pass(model, layer, x, y, eta, [])
            eta = self.inner_steps(model, layer, x, eta, p)
        return (x + eta).detach()

    def step(self, model, optimizer, batch: Batch) -> dict:
        """Alg. 1 for one batch: m full passes, n first-layer updates after each, one step."""
        _, layer = first_layer(model, self.layer_one)
        x, y = batch.x, batch.y
        first = [p for p in layer.parameters() if p.requires_grad]
        first_ids = {id(p) for p in first}
        rest = [p for p in model.parameters() if p.requires_grad and id(p) not in first_ids]
        wrt = rest + (first if self.layer_one_grad == "code" else [])
        sums = {id(p): torch.zeros_like(p) for p in first + rest}
        eta = self._start(x)
        losses, correct = [], 0.0
        for _ in range(self.m):
            loss, logits, p, grads = self._full_pass(model, layer, x, y, eta, wrt)
            for param, grad in zip(wrt, grads):
                if grad is not None:
                    sums[id(param)] += grad
            eta = self.inner_steps(model, layer, x, eta, p)
            hamiltonian = (layer_one_output(model, layer, x + eta) * p).sum()
            for param, grad in zip(first, torch.autograd.grad(hamiltonian, first, allow_unused=True)):
                if grad is not None:
                    sums[id(param)] += grad
            losses.append(loss.item())
            correct = (logits.argmax(1) == y).float().mean().item()
        optimizer.zero_grad(set_to_none=True)
        for param in first + rest:
            param.grad = sums[id(param)] / self.m
        optimizer.step()
        return {"loss": sum(losses) / len(losses), "acc": correct}
