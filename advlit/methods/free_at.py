"""Free adversarial training (Shafahi et al. 2019, Alg. 1, "Free-m").

Each batch is replayed ``m`` times; one backward pass per replay gives both the parameter
gradient (SGD step) and the input gradient, which updates a perturbation that persists
across replays *and* across batches:

    for each batch, repeat m times:
        g_theta, g_x = grad CE(f(clip_[0,1](x + delta)), y)
        theta <- theta - lr * g_theta
        delta <- clip_[-eps, eps](delta + eps * sign(g_x))          (step = eps, the paper's)

Budget: one trainer epoch of Free-m is a pass over the data with m replays, i.e. m
forward-backward passes per batch (FGSM-RS: 2). The paper trains Free-m for N/m epochs to
match N epochs of natural training; the ATAS paper (Appendix) trains Free-8 for 10 epochs
on CIFAR-10. The chapter's experiments say which budget they give it.
The replays run in the model's current (training) mode.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from advlit.methods.base import Batch, Method, step_metrics
from advlit.methods.registry import register
from advlit.utils import ConfigError


@register("free_at")
class FreeAT(Method):
    """Free-m adversarial training; ``alpha`` (the perturbation step) defaults to ``eps``."""

    def __init__(self, eps: float, alpha: float | None = None, replays: int = 8):
        super().__init__(eps, alpha)
        if int(replays) < 1:
            raise ConfigError(f"free_at: replays must be >= 1, got {replays}")
        self.replays = int(replays)
        if self.alpha is None:
            self.alpha = self.eps
        self.delta = None

    def _delta_for(self, x):
        """The persistent perturbation, sliced to the batch (re-made if the shape changed)."""
        if self.delta is None or self.delta.shape[1:] != x.shape[1:] or self.delta.shape[0] < x.shape[0] \
                or self.delta.device != x.device:
            self.delta = torch.zeros_like(x)
        return self.delta[: x.shape[0]]

    def perturb(self, model, batch: Batch):
        return (batch.x + self._delta_for(batch.x)).clamp(0.0, 1.0)

    def step(self, model, optimizer, batch: Batch) -> dict:
        x, y = batch.x, batch.y
        losses, accs = [], []
        for _ in range(self.replays):
            delta = self._delta_for(x).clone().requires_grad_(True)
            logits = model((x + delta).clamp(0.0, 1.0))
            loss = F.cross_entropy(logits, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            with torch.no_grad():
                self.delta[: x.shape[0]] = (delta + self.alpha * delta.grad.sign()).clamp(-self.eps, self.eps)
            m = step_metrics(loss, logits, y)
            losses.append(m["loss"])
            accs.append(m["acc"])
        return {"loss": sum(losses) / len(losses), "acc": sum(accs) / len(accs)}

    def state_dict(self):
        return {"delta": None if self.delta is None else self.delta.clone()}

    def load_state_dict(self, state):
        self.delta = state.get("delta")
