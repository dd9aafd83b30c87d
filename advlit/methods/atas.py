"""ATTA and ATAS: single-step adversarial training from the previous epoch's perturbation.

ATTA (Zheng et al. 2020; "ATTA-1" in ATAS, Appendix): every training example keeps its
adversarial perturbation delta_i in a buffer; at epoch j the attack starts from it,

    x_i^j = Proj_{B(x_i, eps) cap [0,1]}( x_i + delta_i^{j-1} + alpha sign(grad_x l(x_i + delta_i^{j-1}, y_i)) ),

with a fixed step alpha (ATTA-1: 4/255 at eps = 8/255, i.e. eps / 2), and stores
delta_i^j = x_i^j - x_i back.

ATAS (Huang et al. 2022, Alg. 1) replaces the fixed step by a per-example one:

    v_i^j = beta v_i^{j-1} + (1 - beta) ||grad_x l(x_i^{j-1}, y_i)||_2^2        (Eq. 3)
    alpha_i^j = gamma / (c + sqrt(v_i^j))                                      (Eq. 4)
    x_i^j = Proj( x_i^{j-1} + alpha_i^j sign(grad_x l(x_i^{j-1}, y_i)) )       (Eq. 5)

so the step shrinks for examples with a large input-gradient norm (those that cause
catastrophic overfitting, Sec. III) and grows up to gamma / c for the others. The gradient
of Eq. 3 is the one of the attack step: ATAS costs no extra forward-backward pass.

Conventions of this implementation (paper = default, official code = option):
- ``alpha`` (``--alpha-ratio r`` -> ``r * eps``) is the *maximum* step gamma / c, so
  ``gamma = alpha * c``. The paper fixes gamma / c = 16/255 (Sec. V; Table IV ablates it
  around 16/255 at eps = 12/255 and 16/255), and the official code hard-codes it
  (``2 * 8 / 255``, whatever eps). The default, 2 eps, is that value at eps = 8/255 and
  scales with eps (the digits16 runs, eps = 0.2); a run at another CIFAR budget states
  ``alpha=16/255`` (``method_args``), which :func:`advlit.methods.build_method` keeps over
  ``alpha_ratio``.
- ``c`` = 0.01 (the paper's value on CIFAR-10 / CIFAR-100; 0.1 on ImageNet) with
  ``grad_norm="batch_mean"`` (default): the norm of each example's gradient divided by the
  batch size, which is what the official code measures (the gradient of the batch-*mean*
  loss), the scale at which it uses the paper's c = 0.01 (App. B: c "should be close to
  the magnitude of v").
  ``"example"`` takes each example's own gradient as Eq. 3 writes it; it needs a c about
  B times larger (at c = 0.01 and B = 128 its steps are up to 128 times smaller), so it is
  an option for a c chosen for it (the digits16 cpu runs: c = 0.5).
- ``min_step_ratio`` / ``max_step_ratio`` clamp the step to ``[min, max] * eps`` (the
  official code: [4/255, 14/255] at 8/255, i.e. [0.5, 1.75] eps; the paper: no clamp).
- ``warmup_epochs``: the official code uses the fixed step ``warmup_step_ratio * eps``
  (= eps) and does not update v for its first 5 epochs (paper: none).
- The perturbation buffer (not v) is re-drawn from U(-eps, eps) before epochs 10, 20, ...
  (1-based) except the last, as in the official code (``reset_every``).
- The attack runs in eval mode (official code); the update in the trainer's mode.
- Buffers are aligned with the augmentation: with crop/flip (CIFAR) each perturbation
  lives on the zero-padded ``(H + 2 pad)`` canvas and is read and written through the same
  window and flip as its image (:class:`advlit.data.Augmentation`); without augmentation
  (digits16, ``batch.aug is None``) it is stored as is.
- ``store_size=32`` is the ImageNet variant (ATAS, Alg. 2): perturbations are stored
  down-sampled to ``store_size x store_size`` and up-sampled (bilinear) when used.

The module also holds :class:`Subset`, the framework of the subset study of Sec. III.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from advlit.attacks import eval_mode, input_gradient
from advlit.attacks.losses import cross_entropy
from advlit.data import Augmentation
from advlit.methods.base import Batch, Method, Wrapper, clamp_to_ball, per_example
from advlit.methods.registry import register
from advlit.utils import ConfigError

GRAD_NORMS = ("example", "batch_mean")


@register("atta")
class ATTA(Method):
    """ATTA-1: previous-epoch initialisation and one signed step of fixed size ``alpha``
    (default ``eps / 2``); see the module docstring for the buffer conventions."""

    default_alpha_ratio = 0.5

    def __init__(self, eps: float, alpha: float | None = None, reset_every: int | None = 10,
                 attack_mode: str = "eval", store_size: int | None = None, track_norms: bool = False):
        super().__init__(eps, alpha)
        if self.alpha is None:
            self.alpha = self.default_alpha_ratio * self.eps
        if attack_mode not in ("eval", "train"):
            raise ConfigError(f"{self.name}: attack_mode must be 'eval' or 'train', got {attack_mode!r}")
        if reset_every is not None and int(reset_every) < 1:
            raise ConfigError(f"{self.name}: reset_every must be >= 1 or None, got {reset_every}")
        if store_size is not None and int(store_size) < 1:
            raise ConfigError(f"{self.name}: store_size must be a positive integer or None, got {store_size}")
        self.reset_every = None if reset_every is None else int(reset_every)
        self.attack_mode = attack_mode
        self.store_size = None if store_size is None else int(store_size)
        self.track_norms = bool(track_norms)

    # ----------------------------------------------------------------- buffers
    def setup(self, model, optimizer, context):
        super().setup(model, optimizer, context)
        shape = tuple(context.input_shape)
        if self.store_size is not None:
            if len(shape) != 3:
                raise ConfigError(f"{self.name}: store_size needs image inputs (C, H, W), got shape {shape}")
            shape = (shape[0], self.store_size, self.store_size)
        elif len(shape) == 3 and context.pad > 0:
            shape = (shape[0], shape[1] + 2 * context.pad, shape[2] + 2 * context.pad)
        n, dev = context.num_examples, context.device
        self.delta = self._uniform((n, *shape), epoch=-1).to(dev)
        self.norm_sum = torch.zeros(n, device=dev)  # sum over epochs of ||g_i|| at the start point
        self.norm_count = torch.zeros(n, device=dev)
        self.step_last = torch.zeros(n, device=dev)  # the step each example got last
        self.norm_last = torch.zeros(n, device=dev)
        epochs = context.epochs if self.track_norms else 0
        self.norm_history = torch.zeros(epochs, n, device=dev)
        self.step_history = torch.zeros(epochs, n, device=dev)

    def _uniform(self, shape, epoch: int) -> Tensor:
        """U(-eps, eps) from a generator seeded by (seed, epoch): resets are reproducible."""
        gen = torch.Generator().manual_seed(7_919 * (self.context.seed + 1) + epoch + 1)
        return (torch.rand(shape, generator=gen) * 2 - 1) * self.eps

    def on_epoch_start(self, model, epoch):
        e = epoch + 1  # the official code counts epochs from 1
        if self.reset_every and e % self.reset_every == 0 and e != self.context.epochs:
            self.delta = self._uniform(tuple(self.delta.shape), epoch).to(self.delta.device)

    def _canvas(self, batch: Batch) -> Tensor:
        """The stored perturbations of the batch, on the canvas the augmentation reads."""
        stored = self.delta[batch.idx]
        if self.store_size is None:
            return stored
        size = batch.x.shape[-2:] if batch.aug is None else \
            (batch.x.shape[-2] + 2 * batch.aug.pad, batch.x.shape[-1] + 2 * batch.aug.pad)
        return F.interpolate(stored, size=tuple(size), mode="bilinear", align_corners=False)

    def load_delta(self, batch: Batch) -> Tensor:
        """The batch's stored perturbations, cropped and flipped like its images."""
        canvas = self._canvas(batch)
        return canvas if batch.aug is None else batch.aug.crop_canvas(canvas)

    def store_delta(self, batch: Batch, delta: Tensor) -> None:
        """Write the batch's new perturbations back (un-flipped, into the crop window)."""
        delta = delta.detach()
        if batch.aug is not None:
            delta = batch.aug.write_canvas(self._canvas(batch).clone(), delta)
        if self.store_size is not None:
            delta = F.interpolate(delta, size=(self.store_size, self.store_size), mode="area")
        self.delta[batch.idx] = delta.to(self.delta.dtype)

    # ------------------------------------------------------------------ attack
    def step_size(self, batch: Batch, grad: Tensor) -> Tensor:
        """Per-example step (B,); ATTA: the fixed ``alpha``."""
        return torch.full((len(batch.y),), self.alpha, device=grad.device, dtype=grad.dtype)

    def perturb(self, model, batch: Batch) -> Tensor:
        x = batch.x
        start = clamp_to_ball(x + self.load_delta(batch), x, self.eps)
        if self.attack_mode == "eval":
            with eval_mode(model):
                grad, _ = input_gradient(model, start, batch.y, cross_entropy)
        else:
            grad, _ = input_gradient(model, start, batch.y, cross_entropy)
        step = self.step_size(batch, grad)
        x_adv = clamp_to_ball(start + per_example(step, x) * grad.sign(), x, self.eps).detach()
        self.store_delta(batch, x_adv - x)
        self._track(batch, grad, step)
        return x_adv

    def _track(self, batch: Batch, grad: Tensor, step: Tensor) -> None:
        norms = grad.detach().flatten(1).norm(dim=1).to(self.norm_sum.dtype)
        self.norm_sum[batch.idx] += norms
        self.norm_count[batch.idx] += 1
        self.norm_last[batch.idx] = norms
        self.step_last[batch.idx] = step.detach().to(self.step_last.dtype)
        if self.track_norms and batch.epoch < self.norm_history.shape[0]:
            self.norm_history[batch.epoch, batch.idx] = norms
            self.step_history[batch.epoch, batch.idx] = self.step_last[batch.idx]

    def on_epoch_end(self, model, epoch):
        """Mean step and gradient norm of the epoch (in eps units / L2); with ``track_norms``
        the last epoch also returns the per-example norm averaged over training (ATAS
        Sec. III: GN(x_i)) and the per-decile trajectories of Fig. 10."""
        out = {"step_mean": (self.step_last.mean() / self.eps).item(), "grad_norm_mean": self.norm_last.mean().item()}
        if self.track_norms and epoch + 1 == self.context.epochs:
            from advlit.analysis.gradient_norms import decile_trajectories

            average = self.norm_sum / self.norm_count.clamp(min=1)
            out["grad_norm_per_example"] = [float(f"{v:.4g}") for v in average.tolist()]
            out.update(decile_trajectories(average, self.norm_history, self.step_history / self.eps))
        return out

    # ------------------------------------------------------------------- state
    _BUFFERS = ("delta", "norm_sum", "norm_count", "step_last", "norm_last", "norm_history", "step_history")

    def state_dict(self):
        return {k: getattr(self, k).clone() for k in self._BUFFERS if hasattr(self, k)}

    def load_state_dict(self, state):
        for key, value in state.items():
            setattr(self, key, value.to(getattr(self, key).device))


@register("atas")
class ATAS(ATTA):
    """ATAS (Huang et al. 2022, Alg. 1): ATTA with the adaptive step of Eqs. 3-4.

    ``alpha`` is the maximum step gamma / c (default 2 eps, i.e. the paper's 16/255 at 8/255);
    ``c`` (paper: 0.01 on CIFAR, 0.1 on ImageNet) goes with ``grad_norm`` (default
    ``"batch_mean"``, the scale at which the official code uses c = 0.01); ``beta`` (0.5) and
    the options of the official code are described in the module docstring.
    """

    default_alpha_ratio = 2.0

    def __init__(self, eps: float, alpha: float | None = None, c: float = 0.01, beta: float = 0.5,
                 grad_norm: str = "batch_mean", min_step_ratio: float | None = None,
                 max_step_ratio: float | None = None, warmup_epochs: int = 0, warmup_step_ratio: float = 1.0,
                 reset_every: int | None = 10, attack_mode: str = "eval", store_size: int | None = None,
                 track_norms: bool = False):
        super().__init__(eps, alpha, reset_every=reset_every, attack_mode=attack_mode, store_size=store_size,
                         track_norms=track_norms)
        if c <= 0:
            raise ConfigError(f"atas: c must be positive, got {c}")
        if not 0 <= beta < 1:
            raise ConfigError(f"atas: beta must lie in [0, 1), got {beta}")
        if grad_norm not in GRAD_NORMS:
            raise ConfigError(f"atas: grad_norm must be one of {', '.join(GRAD_NORMS)}, got {grad_norm!r}")
        if min_step_ratio is not None and max_step_ratio is not None and min_step_ratio > max_step_ratio:
            raise ConfigError(f"atas: min_step_ratio {min_step_ratio} exceeds max_step_ratio {max_step_ratio}")
        self.c = float(c)
        self.gamma = self.alpha * self.c
        self.beta = float(beta)
        self.grad_norm = grad_norm
        self.min_step_ratio = min_step_ratio
        self.max_step_ratio = max_step_ratio
        self.warmup_epochs = int(warmup_epochs)
        self.warmup_step_ratio = float(warmup_step_ratio)

    def setup(self, model, optimizer, context):
        super().setup(model, optimizer, context)
        self.v = torch.zeros(context.num_examples, device=context.device)  # Alg. 1, line 1

    def step_size(self, batch: Batch, grad: Tensor) -> Tensor:
        """Eqs. 3-4: update v_i with the squared gradient norm, return gamma / (c + sqrt(v_i))."""
        if batch.epoch < self.warmup_epochs:
            return torch.full((len(batch.y),), self.warmup_step_ratio * self.eps, device=grad.device,
                              dtype=grad.dtype)
        norms = grad.detach().flatten(1).norm(dim=1)
        if self.grad_norm == "batch_mean":  # the gradient of the (global) batch's mean loss
            norms = norms / batch.batch_size
        v = self.beta * self.v[batch.idx] + (1 - self.beta) * norms.pow(2).to(self.v.dtype)
        self.v[batch.idx] = v
        step = self.gamma / (self.c + v.sqrt())
        low = None if self.min_step_ratio is None else self.min_step_ratio * self.eps
        high = None if self.max_step_ratio is None else self.max_step_ratio * self.eps
        if low is not None or high is not None:
            step = step.clamp(min=low, max=high)
        return step.to(grad.dtype)

    _BUFFERS = ATTA._BUFFERS + ("v",)


@register("subset")
class Subset(Wrapper):
    """Train the wrapped method on a subset of the training set (ATAS Sec. III, Fig. 3).

    Each batch keeps only its examples whose dataset index is in ``indices``, so every
    subset gets the same number of iterations as a full run, with batches of about
    ``B |D| / n`` examples (the paper resamples full batches from the subset; the trainer
    of this package draws batches from the whole set, and subsets of equal size, the ones
    the figure compares, get equal batch sizes either way).
    """

    def __init__(self, base: Method, indices=()):
        super().__init__(base)
        self.indices = [int(i) for i in indices]
        if not self.indices:
            raise ConfigError("subset: give the training indices, e.g. method_args={'subset.indices': [...]}")
        self.size = len(self.indices)

    def setup(self, model, optimizer, context):
        super().setup(model, optimizer, context)
        if max(self.indices) >= context.num_examples or min(self.indices) < 0:
            raise ConfigError(f"subset: indices must lie in [0, {context.num_examples})")
        self.mask = torch.zeros(context.num_examples, dtype=torch.bool, device=context.device)
        self.mask[torch.tensor(self.indices, device=context.device)] = True

    def step(self, model, optimizer, batch):
        keep = self.mask[batch.idx]
        if not bool(keep.any()):
            return {"loss": math.nan, "acc": math.nan}
        aug = None if batch.aug is None else Augmentation(batch.aug.top[keep], batch.aug.left[keep],
                                                          batch.aug.flip[keep], batch.aug.pad)
        sub = Batch(x=batch.x[keep], y=batch.y[keep], idx=batch.idx[keep], aug=aug, epoch=batch.epoch,
                    iteration=batch.iteration)
        return self.base.step(model, optimizer, sub)
