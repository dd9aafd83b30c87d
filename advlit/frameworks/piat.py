"""PIAT: Parameter Interpolation Adversarial Training (Liu et al., PIAT, Alg. 1, Eqs. 9-10).

At the end of every epoch the parameters are replaced by an interpolation between the
previous *interpolated* state and the state the epoch has just produced:

    theta'_n = lambda_n * theta'_{n-1} + (1 - lambda_n) * theta_n,         (Eq. 9)
    lambda_n = g(n) = (a n + b) / (c n + d),  c >= a, d >= b,             (Eq. 10)

with a = b = c = 1, d = 10 in the paper, so lambda grows from 2/11 after the first epoch
towards 1. ``n`` is the paper's 1-based epoch counter (Alg. 1: ``for i = 1 to N ...
lambda <- g(i)``); the trainer's epochs are 0-based, so epoch ``e`` uses ``g(e + 1)``.
Alg. 1 starts epoch ``i`` from ``theta_i <- theta'_{i-1}``: training continues from the
interpolated weights, which are written back into the model; ``theta'_0 = theta_0`` is
the initial model, captured in :meth:`PIAT.setup`. Validation and the returned model
(``theta'_N``) are therefore the interpolated weights.

Choices the paper leaves open (METHODS.md, "PIAT"), all options here:

* ``interpolate_buffers`` (default ``True``): floating-point buffers (BatchNorm running
  statistics) are interpolated like parameters. Integer buffers (``num_batches_tracked``)
  keep their current value. Entries that did not change during the epoch (e.g. the
  constants of a :class:`~advlit.models.Normalize` layer) are left bit-identical.
* ``momentum`` (default ``"keep"``): what happens to the optimizer's momentum buffers when
  the weights jump. ``"keep"`` leaves them untouched (what copying a state dict into the
  model does, the simplest reading of Alg. 1); ``"reset"`` zeroes them, so the next
  epoch's first step is a plain gradient step from the interpolated point.
* ``schedule``: a callable ``n -> lambda`` replacing Eq. 10, or ``fixed_lambda`` for the
  constant-lambda ablation of the paper's Fig. 9.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from advlit.methods.base import Method, Wrapper
from advlit.methods.registry import register
from advlit.utils import ConfigError

MOMENTUM_POLICIES = ("keep", "reset")


def rational_schedule(a: float = 1.0, b: float = 1.0, c: float = 1.0, d: float = 10.0) -> Callable[[int], float]:
    """Eq. 10 of PIAT: ``g(n) = (a n + b) / (c n + d)`` for the 1-based epoch ``n``."""
    if c < a or d < b:
        raise ConfigError(f"piat: Eq. 10 needs c >= a and d >= b, got a={a}, b={b}, c={c}, d={d}")
    return lambda n: (a * n + b) / (c * n + d)


@register("piat")
class PIAT(Wrapper):
    """PIAT (Alg. 1) over any base method: epoch-end parameter interpolation (Eq. 9).

    Parameters
    ----------
    base : Method
        The adversarial training method run inside each epoch (PGD-AT in the paper).
    a, b, c, d : float
        Coefficients of the lambda schedule, Eq. 10 (paper: 1, 1, 1, 10).
    fixed_lambda : float, optional
        Use a constant lambda instead of Eq. 10 (the ablation of the paper's Fig. 9).
    schedule : callable, optional
        ``n -> lambda`` for the 1-based epoch ``n``; overrides Eq. 10 and ``fixed_lambda``.
    interpolate_buffers : bool
        Interpolate floating-point buffers (BatchNorm statistics) too (default; the paper
        does not say).
    momentum : {"keep", "reset"}
        Keep the optimizer's momentum buffers across the jump (default) or zero them.
    """

    def __init__(self, base: Method, a: float = 1.0, b: float = 1.0, c: float = 1.0, d: float = 10.0,
                 fixed_lambda: float | None = None, schedule: Callable[[int], float] | None = None,
                 interpolate_buffers: bool = True, momentum: str = "keep"):
        super().__init__(base)
        if momentum not in MOMENTUM_POLICIES:
            raise ConfigError(f"piat: momentum must be one of {', '.join(MOMENTUM_POLICIES)}, got {momentum!r}")
        if fixed_lambda is not None and not 0.0 <= float(fixed_lambda) <= 1.0:
            raise ConfigError(f"piat: lambda must lie in [0, 1], got {fixed_lambda}")
        self.a, self.b, self.c, self.d = float(a), float(b), float(c), float(d)
        self._eq10 = rational_schedule(self.a, self.b, self.c, self.d)
        self.fixed_lambda = None if fixed_lambda is None else float(fixed_lambda)
        self._schedule = schedule
        self.interpolate_buffers = bool(interpolate_buffers)
        self.momentum = momentum
        self._previous: dict[str, torch.Tensor] | None = None  # theta'_{n-1}
        self._optimizer: torch.optim.Optimizer | None = None

    # ------------------------------------------------------------ schedule
    def weight(self, n: int) -> float:
        """lambda for the 1-based epoch ``n`` (Eq. 10 unless overridden)."""
        if self._schedule is not None:
            lam = float(self._schedule(n))
        elif self.fixed_lambda is not None:
            lam = self.fixed_lambda
        else:
            lam = self._eq10(n)
        if not 0.0 <= lam <= 1.0:
            raise ConfigError(f"piat: lambda must lie in [0, 1] (Eq. 9), got {lam} at epoch {n}")
        return lam

    # -------------------------------------------------------------- state
    def interpolated_entries(self, model: nn.Module) -> dict[str, torch.Tensor]:
        """The live tensors Eq. 9 acts on: every parameter, plus floating-point buffers
        when ``interpolate_buffers`` is set."""
        entries = {name: p for name, p in model.named_parameters()}
        if self.interpolate_buffers:
            entries.update({name: b for name, b in model.named_buffers() if b.is_floating_point()})
        return entries

    def setup(self, model, optimizer, context):
        """Capture ``theta'_0 = theta_0`` (Alg. 1, first line) and keep the optimizer for
        the momentum policy."""
        super().setup(model, optimizer, context)
        self._optimizer = optimizer
        self._previous = {k: v.detach().clone() for k, v in self.interpolated_entries(model).items()}

    def on_epoch_end(self, model, epoch):
        """Eq. 9 with ``lambda = g(epoch + 1)``, written back into ``model`` (Alg. 1)."""
        metrics = dict(self.base.on_epoch_end(model, epoch) or {})
        if self._previous is None:
            raise RuntimeError("PIAT.setup must run before the first epoch ends")
        lam = self.weight(epoch + 1)
        moved = 0.0
        with torch.no_grad():
            for name, current in self.interpolated_entries(model).items():
                previous = self._previous[name]
                if torch.equal(previous, current):
                    continue
                new = lam * previous + (1.0 - lam) * current
                moved += float((new - current).pow(2).sum())
                current.copy_(new)
                self._previous[name] = current.detach().clone()
        if self.momentum == "reset" and self._optimizer is not None:
            for state in self._optimizer.state.values():
                buf = state.get("momentum_buffer")
                if buf is not None:
                    buf.zero_()
        metrics.update({"piat_lambda": lam, "piat_shift": moved ** 0.5})
        return metrics

    def state_dict(self):
        """The base's state and ``theta'_{n-1}``, for exact resume."""
        previous = None if self._previous is None else {k: v.clone() for k, v in self._previous.items()}
        return {"base": self.base.state_dict(), "previous": previous}

    def load_state_dict(self, state):
        self.base.load_state_dict(state.get("base", {}))
        if state.get("previous") is not None:
            self._previous = {k: v.clone() for k, v in state["previous"].items()}
