"""Sub-AT: subspace adversarial training (Li, Wu, Chen, Fang & Huang, CVPR 2022,
"Subspace Adversarial Training").

Catastrophic (and robust) overfitting go with fast-growing per-example gradients; Sub-AT
controls them by training only inside a low-dimensional subspace of the parameters,
extracted from an earlier training trajectory (DLDR: dynamic linear dimensionality
reduction):

1. **Sampling.** Ordinary single-step AT (FGSM-RS) for ``sample_epochs`` epochs; the
   flattened parameters are recorded at the start and ``samples_per_epoch`` times per
   epoch (the authors' code: after 201 of its 352 iterations and at the end of each epoch).
2. **Subspace.** PCA of the recorded vectors ``W`` (n x D): the top ``n_components``
   principal directions ``P`` (k x D, orthonormal rows) of the centred trajectory.
3. **Training in the subspace.** The parameters restart from a recorded point
   ``w_0`` (the code: the first, i.e. the initialisation) and every update is projected,
   ``g <- P^T (P g)``, and applied by SGD with momentum, so ``w - w_0`` stays in
   ``span(P)`` for the rest of the run (P-SGD).

"In subspace, we also allow single-step AT with larger steps and larger radius" (the
abstract): ``sub_eps_factor`` scales the radius *and* the step of the phase-2 FGSM-RS
(``k eps``, ``k alpha``); the default 1 trains both phases at ``eps``, the Sub-AT the
larger radius extends.

Facts from the authors' code (nblt/Sub-AT, ``train_adv.py``, ``train_adv_psgd.py``,
``run.sh``) used as defaults: FGSM with a random start and step 10/255 at 8/255 (``alpha =
1.25 eps``), the start clamped to [0, 1], in the training mode; 80 components; phase 2
uses SGD with LR 1 and momentum 0.9, *no* weight decay, a constant LR (its only milestone
is the last epoch), 40 epochs; the sampling run uses LR 0.1 (SGD momentum 0.9, constant
until epoch 100) and snapshots 0..130 are used (the initialisation plus 65 epochs at two
per epoch). The code's ``run.sh`` trains phase 2 of CIFAR-10 Fast Sub-AT at 16/255 with
step 20/255 (``sub_eps_factor=2``; its earlier revisions also ran 8/10 and 12/15) and the
sampling run with weight decay 5e-4, which it suggests "instead of 1e-4 (our original
setting)".

How it maps onto one run of the trainer, and deviations:

- Phase 1 is the trainer's optimizer and schedule; phase 2 is this method's own SGD
  (``sub_lr``, ``sub_momentum``, no weight decay, constant LR), which ignores the trainer's
  optimizer and schedule. The switch happens at the end of epoch ``sample_epochs``
  (default: half of the run, at least 1).
- ``n_components`` is capped at ``n - 1`` for ``n`` samples (the rank of a centred set of
  ``n`` points); directions with a vanishing singular value are dropped.
- At the restart only the *parameters* return to the recorded point; BatchNorm running
  statistics are kept (the code reloads the whole state dict, statistics included): the
  recorded vectors hold parameters only and the statistics re-adapt within the first
  steps of phase 2.
- The in-epoch snapshots are taken at even fractions of the epoch (``samples_per_epoch =
  2``: after half of it), not after a fixed 201 iterations.
- The snapshots are kept on the CPU, where the PCA (an SVD of the centred n x D matrix)
  runs, and are saved with the method state (exact resume); at the paper's scale this is
  ~130 x 11 M floats (about 6 GB) for PreActResNet-18.
- A framework that uses only :meth:`perturb` and :meth:`loss` (LAST) gets FGSM-RS (at the
  phase's radius); the restart still happens at the switch, but the subspace constraint
  lives in :meth:`step`.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from advlit.attacks import fgsm
from advlit.methods.base import Batch, step_metrics
from advlit.methods.fgsm import FGSMRS
from advlit.methods.registry import register
from advlit.utils import ConfigError


def flat_parameters(model: nn.Module) -> Tensor:
    """All trainable parameters of ``model`` as one detached vector."""
    return torch.cat([p.detach().reshape(-1) for p in model.parameters() if p.requires_grad])


def set_flat_parameters(model: nn.Module, vector: Tensor) -> None:
    """Inverse of :func:`flat_parameters` (in place)."""
    start = 0
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.copy_(vector[start:start + p.numel()].view_as(p))
                start += p.numel()


def principal_directions(samples: Tensor, k: int) -> Tensor:
    """The top-``k`` principal directions (rows, orthonormal) of the rows of ``samples``
    after centring; at most ``n - 1`` and only those with a non-vanishing singular value."""
    centred = samples - samples.mean(0, keepdim=True)
    _, s, vh = torch.linalg.svd(centred, full_matrices=False)
    keep = int((s > 1e-6 * s.max()).sum().item()) if s.numel() and s.max() > 0 else 0
    k = max(1, min(k, keep, samples.shape[0] - 1))
    return vh[:k].contiguous()


def project(basis: Tensor, vector: Tensor) -> Tensor:
    """``P^T (P v)``: the orthogonal projection of ``vector`` onto the row space of ``basis``."""
    return basis.t() @ (basis @ vector)


@register("sub_at")
class SubAT(FGSMRS):
    """Sub-AT: FGSM-RS sampling, PCA of the trajectory, P-SGD in the subspace (see the
    module docstring); ``alpha`` defaults to ``1.25 eps``; phase 2 attacks at
    ``sub_eps_factor`` times ``eps`` and ``alpha``."""

    def __init__(self, eps: float, alpha: float | None = None, sample_epochs: int | None = None,
                 samples_per_epoch: int = 2, n_components: int = 80, sub_lr: float = 1.0,
                 sub_momentum: float = 0.9, restart_from: int = 0, sub_eps_factor: float = 1.0):
        super().__init__(eps, alpha)
        if sample_epochs is not None and int(sample_epochs) < 1:
            raise ConfigError(f"sub_at: sample_epochs must be >= 1 or None, got {sample_epochs}")
        if int(samples_per_epoch) < 1 or int(n_components) < 1:
            raise ConfigError(f"sub_at: samples_per_epoch and n_components must be >= 1, got "
                              f"{samples_per_epoch}, {n_components}")
        if sub_lr <= 0 or not 0 <= sub_momentum < 1:
            raise ConfigError(f"sub_at: sub_lr must be > 0 and sub_momentum in [0, 1), got {sub_lr}, {sub_momentum}")
        if not sub_eps_factor > 0:
            raise ConfigError(f"sub_at: sub_eps_factor must be > 0, got {sub_eps_factor}")
        self.sample_epochs = None if sample_epochs is None else int(sample_epochs)
        self.samples_per_epoch = int(samples_per_epoch)
        self.n_components = int(n_components)
        self.sub_lr = float(sub_lr)
        self.sub_momentum = float(sub_momentum)
        self.restart_from = int(restart_from)
        self.sub_eps_factor = float(sub_eps_factor)
        self._snapshots: list[Tensor] = []
        self._basis: Tensor | None = None
        self._sub_optimizer: torch.optim.Optimizer | None = None
        self._model: nn.Module | None = None

    # ----------------------------------------------------------------- set-up
    def switch_epoch(self) -> int:
        """The number of sampling epochs (phase 1)."""
        if self.sample_epochs is not None:
            return self.sample_epochs
        return max(1, self.context.epochs // 2)

    def setup(self, model, optimizer, context):
        super().setup(model, optimizer, context)
        if self.switch_epoch() >= context.epochs:
            raise ConfigError(f"sub_at: sample_epochs ({self.switch_epoch()}) must be smaller than the run's "
                              f"epochs ({context.epochs}), or no epoch is left to train in the subspace")
        n = 1 + self.switch_epoch() * (len(self._marks()) + 1)
        if not -n <= self.restart_from < n:
            raise ConfigError(f"sub_at: restart_from ({self.restart_from}) must index one of the {n} snapshots")
        self._model = model
        self._snapshots = [flat_parameters(model).cpu()]
        self._basis = None
        self._sub_optimizer = None

    @property
    def phase(self) -> int:
        return 1 if self._basis is None else 2

    def _marks(self) -> set[int]:
        """In-epoch step counts after which phase 1 records a snapshot (the epoch end is
        recorded by :meth:`on_epoch_end`)."""
        steps, s = self.context.steps_per_epoch, self.samples_per_epoch
        return {k * steps // s for k in range(1, s)} - {0, steps}

    # ------------------------------------------------------------------- step
    def perturb(self, model, batch: Batch):
        """FGSM-RS at ``eps`` (step ``alpha``) in phase 1, at ``sub_eps_factor`` times both
        in phase 2 (the code's run.sh: 16/255 with step 20/255 after 8/255 with 10/255)."""
        if self._basis is None or self.sub_eps_factor == 1.0:
            return super().perturb(model, batch)
        k = self.sub_eps_factor
        return fgsm(model, batch.x, batch.y, k * self.eps, k * self.alpha, init=self.init)

    def step(self, model, optimizer, batch: Batch) -> dict:
        if self._basis is None:  # phase 1: FGSM-RS with the trainer's optimizer
            out = super().step(model, optimizer, batch)
            done = batch.iteration - batch.epoch * self.context.steps_per_epoch + 1
            if done in self._marks():
                self._snapshots.append(flat_parameters(model).cpu())
            return out
        x_adv = self.perturb(model, batch)
        loss, logits = self.loss(model, batch, x_adv)
        params = [p for p in model.parameters() if p.requires_grad]
        grads = torch.autograd.grad(loss, params, allow_unused=True)
        flat = torch.cat([(g if g is not None else torch.zeros_like(p)).reshape(-1) for p, g in zip(params, grads)])
        flat = project(self._basis, flat)
        start = 0
        for p in params:
            p.grad = flat[start:start + p.numel()].view_as(p).clone()
            start += p.numel()
        self._sub_optimizer.step()
        return step_metrics(loss, logits, batch.y)

    def _make_sub_optimizer(self, model) -> None:
        self._sub_optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=self.sub_lr,
                                              momentum=self.sub_momentum, weight_decay=0.0)

    def on_epoch_end(self, model, epoch):
        if self._basis is not None:
            return {"sub_at_phase": 2}
        self._snapshots.append(flat_parameters(model).cpu())
        if epoch + 1 < self.switch_epoch():
            return {"sub_at_phase": 1}
        samples = torch.stack(self._snapshots)  # on the CPU, where the snapshots live
        device = next(model.parameters()).device
        self._basis = principal_directions(samples, self.n_components).to(device)
        set_flat_parameters(model, samples[self.restart_from].to(device))
        self._make_sub_optimizer(model)
        return {"sub_at_phase": 1, "sub_at_dim": int(self._basis.shape[0])}

    # ------------------------------------------------------------------ state
    def state_dict(self):
        return {"snapshots": [s.clone() for s in self._snapshots],
                "basis": None if self._basis is None else self._basis.clone(),
                "sub_optimizer": None if self._sub_optimizer is None else self._sub_optimizer.state_dict()}

    def load_state_dict(self, state):
        # back to the CPU: the trainer loads checkpoints onto the training device
        self._snapshots = [s.detach().cpu().clone() for s in state.get("snapshots", self._snapshots)]
        basis = state.get("basis")
        device = next(self._model.parameters()).device if self._model is not None else None
        self._basis = None if basis is None else basis.to(device)
        if self._basis is not None:
            self._make_sub_optimizer(self._model)
            if state.get("sub_optimizer") is not None:
                self._sub_optimizer.load_state_dict(state["sub_optimizer"])
