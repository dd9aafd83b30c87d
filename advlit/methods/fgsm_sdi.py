"""FGSM-SDI: FGSM from a learnable, sample-dependent initialisation (Jia et al., TIP 2022;
slide deck, Eqs. 5-7 and Alg. 3).

Per batch (Alg. 3, lines 3 and 9-11):

    s_x   = sign(grad_x L(f(x), y))                                      (Eq. 5)
    eta_g = eps * g(x, s_x; theta)                                       (Eq. 6)
    delta = Proj_[-eps, eps] [eta_g + alpha sign(grad_x L(f(x + eta_g), y))]   (Eq. 7)
    w    <- w - grad_w L(f(x + delta), y)

and every ``interval`` (= k) batches, before that, the generator takes one step that
*maximises* the loss of the final adversarial example (Alg. 3, lines 4-8):
``theta <- theta + grad_theta L(f(x + delta(theta)), y)``; the sign step carries no
gradient, so ``theta`` is trained through ``eta_g`` and the projection.

Facts from the authors' code (``jiaxiaojunQAQ/FGSM-SDI``; see METHODS.md), exposed as
options: k = 20, the generator's Adam (LR 1e-3, weight decay 5e-4), alpha = eps (8/255 at
8/255), and label smoothing 0.5 on the target's loss (``label_smoothing``; the paper does
not use it, so the default is 0). ``generator_input`` reproduces the input ablation of
the slides' Table II: ``"both"`` (benign image + signed gradient, the method),
``"benign"`` or ``"grad"``.

The generator lives inside the method (with its optimizer) and is saved in
:meth:`FGSMSDI.state_dict`, so a resumed run continues exactly.
"""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from advlit.attacks import clamp_to_ball, cross_entropy, input_gradient
from advlit.methods.base import Batch, Method, step_metrics
from advlit.methods.registry import register
from advlit.utils import ConfigError

GENERATOR_INPUTS = ("both", "benign", "grad")


class ResidualBlock(nn.Module):
    """BN-PReLU-conv-BN-PReLU-conv plus the identity (the generator's one ResBlock)."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.BatchNorm2d(channels), nn.PReLU(), nn.Conv2d(channels, channels, 3, padding=1),
            nn.BatchNorm2d(channels), nn.PReLU(), nn.Conv2d(channels, channels, 3, padding=1),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class InitGenerator(nn.Module):
    """The lightweight generator of FGSM-SDI (slides, Fig. 3): conv3x3 -> ``width``, BN,
    ReLU, one residual block, BN, conv3x3 -> ``out_channels``, tanh. Its output lies in
    (-1, 1); the method scales it by eps (Eq. 6)."""

    def __init__(self, in_channels: int, out_channels: int, width: int = 64):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
            ResidualBlock(width), nn.BatchNorm2d(width),
            nn.Conv2d(width, out_channels, 3, padding=1), nn.Tanh(),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


@register("fgsm_sdi")
class FGSMSDI(Method):
    """FGSM-SDI (slides, Alg. 3). ``alpha`` defaults to ``eps`` (the authors' code).

    Parameters
    ----------
    interval : int
        k of Alg. 3: the generator is updated on batches whose global iteration is a
        multiple of ``interval`` (20 in the code).
    generator_lr, generator_weight_decay : float
        Adam settings of the generator (1e-3 and 5e-4 in the code).
    generator_steps : int
        Adam steps per generator update (m of the slides' Fig. 7; 1 in Alg. 3).
    generator_input : str
        ``"both"`` (image and signed gradient, Eq. 6), ``"benign"`` or ``"grad"`` (Table II).
    label_smoothing : float
        Label smoothing of the target model's CE (0 = paper; 0.5 in the code).
    width : int
        Channels of the generator (64).
    """

    def __init__(self, eps: float, alpha: float | None = None, interval: int = 20, generator_lr: float = 1e-3,
                 generator_weight_decay: float = 5e-4, generator_steps: int = 1, generator_input: str = "both",
                 label_smoothing: float = 0.0, width: int = 64):
        super().__init__(eps, alpha)
        if self.alpha is None:
            self.alpha = self.eps
        if int(interval) < 1:
            raise ConfigError(f"fgsm_sdi: interval must be >= 1, got {interval}")
        if generator_input not in GENERATOR_INPUTS:
            raise ConfigError(f"fgsm_sdi: generator_input must be one of {', '.join(GENERATOR_INPUTS)}, "
                              f"got {generator_input!r}")
        if not 0.0 <= label_smoothing < 1.0:
            raise ConfigError(f"fgsm_sdi: label_smoothing must lie in [0, 1), got {label_smoothing}")
        self.interval = int(interval)
        self.generator_lr = float(generator_lr)
        self.generator_weight_decay = float(generator_weight_decay)
        self.generator_steps = int(generator_steps)
        self.generator_input = generator_input
        self.label_smoothing = float(label_smoothing)
        self.width = int(width)
        self.generator: InitGenerator | None = None
        self.generator_optimizer: torch.optim.Optimizer | None = None

    # ----------------------------------------------------------------- set-up
    def setup(self, model, optimizer, context):
        super().setup(model, optimizer, context)
        if len(context.input_shape) != 3:
            raise ConfigError("fgsm_sdi needs image inputs (C, H, W); its generator is convolutional")
        channels = context.input_shape[0]
        in_channels = 2 * channels if self.generator_input == "both" else channels
        self.generator = InitGenerator(in_channels, channels, self.width).to(context.device)
        self.generator_optimizer = torch.optim.Adam(self.generator.parameters(), lr=self.generator_lr,
                                                    weight_decay=self.generator_weight_decay)

    # ------------------------------------------------------------ the recipe
    def signed_gradient(self, model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
        """``s_x = sign(grad_x L(f(x), y))`` at the clean input (Eq. 5)."""
        grad, _ = input_gradient(model, x, y, cross_entropy)
        return grad.sign()

    def initialisation(self, x: Tensor, signed_grad: Tensor) -> Tensor:
        """``eta_g = eps * g(x, s_x)`` (Eq. 6); differentiable w.r.t. the generator."""
        if self.generator_input == "both":
            inputs = torch.cat([x, signed_grad], 1)
        elif self.generator_input == "benign":
            inputs = x
        else:
            inputs = signed_grad
        return self.eps * self.generator(inputs)

    def adversarial(self, model: nn.Module, x: Tensor, y: Tensor, eta: Tensor) -> Tensor:
        """``x + delta`` with ``delta = Proj[eta + alpha sign(grad_x L(f(x + eta), y))]`` (Eq. 7).

        Differentiable w.r.t. ``eta`` through the projection (the sign step is constant)."""
        x_init = clamp_to_ball(x + eta, x, self.eps)
        grad, _ = input_gradient(model, x_init, y, cross_entropy)
        return clamp_to_ball(x_init + self.alpha * grad.sign(), x, self.eps)

    def update_generator(self, model: nn.Module, x: Tensor, y: Tensor, signed_grad: Tensor) -> dict:
        """Alg. 3, lines 5-7: ascend the loss of the final adversarial example in ``theta``.

        Only the generator's parameters receive gradients; the target model is untouched.
        Returns the attack loss before the update."""
        params = list(self.generator.parameters())
        before = None
        for _ in range(self.generator_steps):
            x_adv = self.adversarial(model, x, y, self.initialisation(x, signed_grad))
            attack_loss = F.cross_entropy(model(x_adv), y)
            grads = torch.autograd.grad(-attack_loss, params)
            for p, g in zip(params, grads):
                p.grad = g
            self.generator_optimizer.step()
            self.generator_optimizer.zero_grad(set_to_none=True)
            before = attack_loss.item() if before is None else before
        return {"generator_loss": before}

    def perturb(self, model: nn.Module, batch: Batch, signed_grad: Tensor | None = None) -> Tensor:
        """Alg. 3, lines 3 and 9-10 (the generator update of lines 4-8 is in :meth:`step`)."""
        if signed_grad is None:
            signed_grad = self.signed_gradient(model, batch.x, batch.y)
        with torch.no_grad():
            eta = self.initialisation(batch.x, signed_grad)
        return self.adversarial(model, batch.x, batch.y, eta).detach()

    def loss(self, model, batch: Batch, x_adv):
        logits = model(x_adv)
        return F.cross_entropy(logits, batch.y, label_smoothing=self.label_smoothing), logits

    def step(self, model, optimizer, batch: Batch) -> dict:
        """One iteration of Alg. 3: maybe update the generator, then train the target on
        the FGSM step from the generated initialisation."""
        extra = {}
        signed_grad = self.signed_gradient(model, batch.x, batch.y)
        if batch.iteration % self.interval == 0:
            extra = self.update_generator(model, batch.x, batch.y, signed_grad)
        x_adv = self.perturb(model, batch, signed_grad)
        loss, logits = self.loss(model, batch, x_adv)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return {**step_metrics(loss, logits, batch.y), **extra}

    # ----------------------------------------------------------------- state
    def state_dict(self) -> dict:
        return copy.deepcopy({"generator": self.generator.state_dict(),
                              "generator_optimizer": self.generator_optimizer.state_dict()})

    def load_state_dict(self, state: dict) -> None:
        self.generator.load_state_dict(state["generator"])
        self.generator_optimizer.load_state_dict(state["generator_optimizer"])
