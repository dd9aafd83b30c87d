"""The one abstraction of the package: a training method.

Every method of the five papers is (i) a way to produce the adversarial input
(:meth:`Method.perturb`), (ii) a defence loss on it (:meth:`Method.loss`), and sometimes
(iii) a different update rule (:meth:`Method.step`) or (iv) an epoch-end hook
(:meth:`Method.on_epoch_end`). Frameworks (LAST, PIAT) wrap a base method and override
(iii) or (iv), which makes compositions such as ``PIAT(LAST(ATAS()))`` valid.

The :class:`~advlit.train.Trainer` knows nothing about any paper: it hands each method a
:class:`Batch` and calls :meth:`Method.step`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# the two helpers live with the attacks, their first users; re-exported for the methods
from advlit.attacks.utils import clamp_to_ball, per_example  # noqa: F401
from advlit.utils import ConfigError


@dataclass
class Batch:
    """One training batch.

    ``x`` are the *augmented* clean inputs in [0, 1]; ``idx`` their dataset indices (for
    per-example state); ``aug`` the crop/flip that produced ``x`` from the stored images
    (``None`` when the data are not augmented), so a method can apply the same transform
    to a stored per-example tensor (:class:`advlit.data.Augmentation`).

    In a data-parallel run (:mod:`advlit.distributed`) a batch is one rank's shard of the
    global batch of ``global_size`` examples; a quantity the single-process run averages
    over the batch uses :attr:`batch_size`, the global batch's size.
    """

    x: Tensor
    y: Tensor
    idx: Tensor
    aug: Any = None
    epoch: int = 0
    iteration: int = 0  # global iteration counter, starting at 0
    global_size: int | None = None  # a data-parallel rank's shard: the size of the global batch

    @property
    def batch_size(self) -> int:
        """The number of examples of the whole batch: ``len(y)``, or the global batch's size
        when this batch is a rank's shard of it."""
        return len(self.y) if self.global_size is None else self.global_size


@dataclass
class TrainContext:
    """What a method may need to know about the run when it is set up."""

    num_examples: int
    input_shape: tuple  # (C, H, W) or (D,)
    num_classes: int
    epochs: int
    steps_per_epoch: int
    device: torch.device
    pad: int = 0  # augmentation padding (ATAS stores perturbations on the padded canvas)
    lr_at: Callable[[float], float] = lambda t: 0.0  # LR of the target optimizer at epoch t (fractional)
    peak_lr: float = 0.0
    momentum: float = 0.9
    weight_decay: float = 5e-4
    seed: int = 0
    extra: dict = field(default_factory=dict)


class Method:
    """Base class: standard training on clean inputs unless ``perturb`` is overridden.

    Parameters
    ----------
    eps : float
        L-inf radius in pixel units ([0, 1] scale), e.g. ``8/255``.
    alpha : float, optional
        Attack step size in pixel units. Methods define their own default
        (for instance FGSM-RS uses ``1.25 * eps``).
    """

    #: registry name, set by :func:`register`
    name: str = "base"
    #: whether the method wraps another method (frameworks)
    wraps: bool = False

    def __init__(self, eps: float = 0.0, alpha: float | None = None):
        if not (0.0 <= float(eps) <= 1.0):
            raise ConfigError(f"eps must lie in [0, 1] (pixel scale), got {eps}")
        if alpha is not None and alpha < 0:
            raise ConfigError(f"alpha must be non-negative, got {alpha}")
        self.eps = float(eps)
        self.alpha = None if alpha is None else float(alpha)
        self.context: TrainContext | None = None

    # ----------------------------------------------------------------- set-up
    def setup(self, model: nn.Module, optimizer: torch.optim.Optimizer, context: TrainContext) -> None:
        """Called once by the trainer before the first step (and before a resume load).

        Allocate per-example buffers, auxiliary networks and their optimizers here.
        """
        self.context = context

    # ------------------------------------------------------------ the recipe
    def perturb(self, model: nn.Module, batch: Batch) -> Tensor:
        """Return the training input. Base: the clean input (standard training)."""
        return batch.x

    def loss(self, model: nn.Module, batch: Batch, x_adv: Tensor) -> tuple[Tensor, Tensor]:
        """Return ``(loss, logits)`` of the defence objective; base: CE on ``x_adv``.

        ``logits`` are the model's outputs on the training input, used for the training
        accuracy the trainer logs.
        """
        logits = model(x_adv)
        return F.cross_entropy(logits, batch.y), logits

    def step(self, model: nn.Module, optimizer: torch.optim.Optimizer, batch: Batch) -> dict:
        """One update: perturb, loss, backward, optimizer step. Returns scalar metrics."""
        x_adv = self.perturb(model, batch)
        loss, logits = self.loss(model, batch, x_adv)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return step_metrics(loss, logits, batch.y)

    # ----------------------------------------------------------------- hooks
    def on_epoch_start(self, model: nn.Module, epoch: int) -> None:
        """Called before the first batch of ``epoch`` (0-based)."""

    def on_epoch_end(self, model: nn.Module, epoch: int) -> dict | None:
        """Called after the last batch of ``epoch``; may return metrics to log."""
        return None

    # ----------------------------------------------------------------- state
    def state_dict(self) -> dict:
        """Everything needed to resume exactly: buffers, auxiliary nets, their optimizers."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Inverse of :meth:`state_dict`."""

    def describe(self) -> dict:
        """A JSON-able description (name and hyper-parameters) for run records."""
        out = {"name": self.name, "eps": self.eps, "alpha": self.alpha}
        for key, value in vars(self).items():
            if key in out or key.startswith("_") or key == "context":
                continue
            if isinstance(value, (int, float, str, bool)) or value is None:
                out[key] = value
            elif isinstance(value, (list, tuple)) and all(isinstance(v, (int, float, str)) for v in value):
                out[key] = list(value)
        return out


def step_metrics(loss: Tensor, logits: Tensor, y: Tensor) -> dict:
    """Loss and accuracy of a training batch as python floats."""
    with torch.no_grad():
        acc = (logits.argmax(1) == y).float().mean().item()
    return {"loss": loss.item(), "acc": acc}


class Wrapper(Method):
    """Base class of frameworks: delegates everything to ``base`` unless overridden."""

    wraps = True

    def __init__(self, base: Method):
        if not isinstance(base, Method):
            raise ConfigError(f"{type(self).__name__} wraps a Method, got {type(base).__name__}")
        self.base = base
        self.context = None

    @property
    def eps(self) -> float:  # type: ignore[override]
        return self.base.eps

    @property
    def alpha(self):  # type: ignore[override]
        return self.base.alpha

    def setup(self, model, optimizer, context):
        self.context = context
        self.base.setup(model, optimizer, context)

    def perturb(self, model, batch):
        return self.base.perturb(model, batch)

    def loss(self, model, batch, x_adv):
        return self.base.loss(model, batch, x_adv)

    def step(self, model, optimizer, batch):
        # the base's step may override the update rule (e.g. LAS-AT); keep it
        return self.base.step(model, optimizer, batch)

    def on_epoch_start(self, model, epoch):
        self.base.on_epoch_start(model, epoch)

    def on_epoch_end(self, model, epoch):
        return self.base.on_epoch_end(model, epoch)

    def state_dict(self):
        return {"base": self.base.state_dict()}

    def load_state_dict(self, state):
        self.base.load_state_dict(state.get("base", {}))

    def describe(self):
        out = {"name": self.name, "base": self.base.describe()}
        for key, value in vars(self).items():
            if key in ("base", "context") or key.startswith("_"):
                continue
            if isinstance(value, (int, float, str, bool)) or value is None:
                out[key] = value
        return out
