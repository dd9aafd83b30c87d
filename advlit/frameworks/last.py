"""LAST: Learn from the Past (Liu et al. 2024), a proxy-guided update around any method.

Per batch (LAST, Alg. 1):

1. the **target** model ``theta_i`` crafts the adversarial input with the base method's
   :meth:`perturb` (Alg. 1, lines 5-10);
2. the **proxy** ``omega_i`` (which holds the *previous* target state ``theta_{i-1}``;
   ``omega_0 = theta_0``) takes one step of its own optimizer on the defence objective
   (Eq. 4): ``omega~ = omega_i - beta * grad L_def(P_omega(x_adv), y)`` (line 12);
3. the differential unit ``G = theta_i - omega~`` (line 13);
4. the proxy records the current target state, ``omega_{i+1} = theta_i`` (line 15);
5. the target moves with ``G`` (line 16).

Two readings of step 5 are implemented (see ``shared/METHODS.md``):

* ``rule="paper"`` (default), Alg. 1 literally: ``theta <- theta - gamma * G``, i.e.
  ``theta <- (1 - gamma) theta + gamma omega~`` (Sec. III-E), no momentum and no weight
  decay on the target; ``gamma`` is a constant aggregation coefficient unless
  ``gamma_schedule="lr"``. The target's torch optimizer is not used at all.
* ``rule="code"``, the authors' follow-up code (callous-youth/RPG): each target
  parameter's ``.grad`` is set to ``G`` and the *target's own optimizer* steps (SGD with
  the run's momentum and weight decay), with LR ``gamma`` following the run's schedule
  shape (a cyclic LR peaking at ``gamma = 0.8``). This reading is unstable on the
  package's CPU problem even without attacks (see the chapter).

Schedules: the proxy LR ``beta_t`` is the target's scheduled LR when ``beta is None``
(``beta_t = lr_at(t)``, the paper's setting: Eq. 3 and Eq. 4 share ``beta``), else
``beta * lr_at(t) / peak_lr`` (same shape, peak ``beta``). ``gamma_t`` is constant
(``"constant"``) or ``gamma * lr_at(t) / peak_lr`` (``"lr"``).

The proxy optimizer is SGD with ``proxy_momentum`` and ``proxy_weight_decay``: Eq. 4 is a
plain gradient step, which is the default of the paper rule (momentum 0); the code gives
the proxy SGD momentum 0.9, which is the default of the code rule. Weight decay defaults
to the run's value. Its momentum buffer persists across iterations although the proxy's
parameters are overwritten with ``theta`` every step, as in the code.

BatchNorm statistics (``buffers="follow"``, default). Alg. 1 exchanges the *model state*
between target and proxy; only the parameters get gradients, but the running statistics
must still track the training inputs, as they do in the base method without LAST. Here the
training forward pass is the proxy's (line 12), and a base that attacks in eval mode
(TRADES, MART, ATAS, ...) never runs the target in train mode, so a target whose buffers
stayed its own would be evaluated with its *initial* statistics. So the proxy borrows the
target's buffers before its forward pass and hands the updated ones back: the target's
statistics follow one stream of training batches, exactly as in plain adversarial training
(the attack's train-mode forward passes, if any, then the training forward pass).
``buffers="own"`` keeps two independent sets, as in the authors' code (which only moves
parameters); with it, the target's statistics move only in the base's attack passes.

The optional self-distillation objective of the proxy (Eq. 5) is :class:`SelfDistillation`.
"""
from __future__ import annotations

import copy
import logging
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from advlit.methods.base import Method, Wrapper, step_metrics
from advlit.methods.registry import register
from advlit.utils import ConfigError

log = logging.getLogger(__name__)

RULES = ("paper", "code")
BUFFER_POLICIES = ("follow", "own")
GAMMA_SCHEDULES = ("constant", "lr")


SD_FORMS = ("paper", "code")


@dataclass
class SelfDistillation:
    """The self-distillation defence objective of the proxy, Eq. 5 of LAST.

    ``form="paper"`` (default), Eq. 5 as printed:

        L_SD = mu * KL( softmax(P(u)/tau) || softmax(P(u_adv)/tau) ) + (1 - mu) * CE(P(u_adv), v),

    the KL divergence of each example's two soft-target distributions, averaged over the
    batch (PyTorch's ``reduction="batchmean"``), with no ``tau^2`` factor.

    ``form="code"``, the authors' code (Hinton-style distillation as in the repository the
    paper follows, ref. [55]): ``mu * tau^2 * KL`` with PyTorch's default ``reduction="mean"``,
    which averages over examples *and classes*, i.e. ``tau^2 / K`` times the paper's term for
    ``K`` classes (3.6x at tau = 6 and K = 10).

    The clean logits are not detached, as in the code.
    """

    mu: float = 0.95
    tau: float = 6.0
    form: str = "paper"

    def __post_init__(self):
        if not 0.0 <= self.mu < 1.0:
            raise ConfigError(f"last: the distillation coefficient mu must lie in [0, 1), got {self.mu}")
        if self.tau <= 0:
            raise ConfigError(f"last: the temperature tau must be positive, got {self.tau}")
        if self.form not in SD_FORMS:
            raise ConfigError(f"last: sd_form must be one of {SD_FORMS}, got {self.form!r}")

    def kl_term(self, logits_adv: Tensor, logits_clean: Tensor) -> Tensor:
        """The weighted KL term of Eq. 5 without ``mu`` (see the class docstring)."""
        t = self.tau
        log_p_adv, p_clean = F.log_softmax(logits_adv / t, 1), F.softmax(logits_clean / t, 1)
        if self.form == "paper":
            return F.kl_div(log_p_adv, p_clean, reduction="batchmean")
        # PyTorch's reduction="mean" (sum over all elements / their number), spelled out:
        # torch warns that "mean" will change meaning in a future release
        return t * t * F.kl_div(log_p_adv, p_clean, reduction="sum") / log_p_adv.numel()

    def __call__(self, logits_adv: Tensor, logits_clean: Tensor, y: Tensor) -> Tensor:
        return self.mu * self.kl_term(logits_adv, logits_clean) + (1.0 - self.mu) * F.cross_entropy(logits_adv, y)


def copy_buffers(source: torch.nn.Module, target: torch.nn.Module) -> None:
    """Copy every buffer (BatchNorm running statistics and counters) of ``source`` into
    ``target`` in place; both networks have the same architecture."""
    with torch.no_grad():
        for mine, theirs in zip(target.buffers(), source.buffers()):
            mine.copy_(theirs)


@register("last")
class LAST(Wrapper):
    """LAST around ``base`` (LAST, Alg. 1); see the module docstring for every option.

    Parameters
    ----------
    gamma : float
        Aggregation coefficient (paper rule) or peak target LR (code rule); paper: 0.8.
    beta : float or None
        Peak proxy LR; ``None``: the run's own LR schedule (paper setting).
    rule : ``"paper"`` | ``"code"``
        Target update of Alg. 1, line 16, literal or through the target's optimizer.
    gamma_schedule : ``"constant"`` | ``"lr"`` | None
        ``None``: constant for the paper rule, the LR shape for the code rule.
    proxy_momentum, proxy_weight_decay : float or None
        The proxy's SGD; ``None``: 0 / the run's momentum (paper / code rule) and the
        run's weight decay.
    buffers : ``"follow"`` | ``"own"``
        The target's BatchNorm statistics follow the proxy's training forward pass
        (default), or the two networks keep their own (the authors' code).
    sd : bool or :class:`SelfDistillation` or None
        Use the self-distillation objective (Eq. 5) for the proxy; ``True`` builds one from
        ``mu``, ``tau`` and ``sd_form`` (``"paper"``: Eq. 5 as printed; ``"code"``: the
        authors' ``tau^2``-scaled, class-averaged KL; see :class:`SelfDistillation`).
    """

    def __init__(self, base: Method, gamma: float = 0.8, beta: float | None = None, rule: str = "paper",
                 gamma_schedule: str | None = None, proxy_momentum: float | None = None,
                 proxy_weight_decay: float | None = None, buffers: str = "follow", sd: bool | SelfDistillation | None = None,
                 mu: float = 0.95, tau: float = 6.0, sd_form: str = "paper"):
        super().__init__(base)
        if rule not in RULES:
            raise ConfigError(f"last: rule must be one of {RULES}, got {rule!r}")
        if buffers not in BUFFER_POLICIES:
            raise ConfigError(f"last: buffers must be one of {BUFFER_POLICIES}, got {buffers!r}")
        self.buffers = buffers
        gamma_schedule = gamma_schedule or ("constant" if rule == "paper" else "lr")
        if gamma_schedule not in GAMMA_SCHEDULES:
            raise ConfigError(f"last: gamma_schedule must be one of {GAMMA_SCHEDULES}, got {gamma_schedule!r}")
        if not float(gamma) > 0:
            raise ConfigError(f"last: gamma must be positive, got {gamma}")
        if beta is not None and not float(beta) > 0:
            raise ConfigError(f"last: beta must be positive or None, got {beta}")
        self.gamma = float(gamma)
        self.beta = None if beta is None else float(beta)
        self.rule = rule
        self.gamma_schedule = gamma_schedule
        self.proxy_momentum = proxy_momentum
        self.proxy_weight_decay = proxy_weight_decay
        if isinstance(sd, SelfDistillation):
            self.sd = sd
        elif sd:
            self.sd = SelfDistillation(float(mu), float(tau), sd_form)
        else:
            self.sd = None
        self.proxy: torch.nn.Module | None = None
        self.proxy_optimizer: torch.optim.Optimizer | None = None
        if type(base).step is not Method.step:
            log.warning("last: %s overrides step(); LAST uses only its perturb() and loss()", base.name)

    # ----------------------------------------------------------------- set-up
    def setup(self, model, optimizer, context):
        """Build the proxy ``omega_0 = theta_0`` (Alg. 1, line 2) and its optimizer."""
        super().setup(model, optimizer, context)
        self.proxy = copy.deepcopy(model)
        momentum = self.proxy_momentum
        if momentum is None:
            momentum = 0.0 if self.rule == "paper" else context.momentum
        wd = context.weight_decay if self.proxy_weight_decay is None else self.proxy_weight_decay
        self.proxy_optimizer = torch.optim.SGD(self.proxy.parameters(), lr=self.beta_at(0.0),
                                               momentum=float(momentum), weight_decay=float(wd))

    # -------------------------------------------------------------- schedules
    def _shape(self, t: float) -> float:
        ctx = self.context
        return ctx.lr_at(t) / ctx.peak_lr if ctx.peak_lr > 0 else 1.0

    def beta_at(self, t: float) -> float:
        """Proxy LR at fractional epoch ``t``: the target's schedule, or its shape x ``beta``."""
        if self.beta is None:
            return float(self.context.lr_at(t))
        return self.beta * self._shape(t)

    def gamma_at(self, t: float) -> float:
        """Aggregation coefficient / target LR at fractional epoch ``t``."""
        return self.gamma if self.gamma_schedule == "constant" else self.gamma * self._shape(t)

    # ------------------------------------------------------------------- step
    def defence_loss(self, batch, x_adv) -> tuple[Tensor, Tensor]:
        """``L_def`` of the proxy: the base method's loss, or Eq. 5 when ``sd`` is set."""
        if self.sd is None:
            return self.base.loss(self.proxy, batch, x_adv)
        logits_adv = self.proxy(x_adv)
        return self.sd(logits_adv, self.proxy(batch.x), batch.y), logits_adv

    def step(self, model, optimizer, batch):
        """One iteration of LAST, Alg. 1, lines 5-16 (see the module docstring)."""
        if self.proxy is None:
            raise RuntimeError("LAST.step called before setup(): the proxy model does not exist yet")
        t = (batch.iteration + 1) / self.context.steps_per_epoch
        # lines 5-10: the target crafts the attack
        x_adv = self.base.perturb(model, batch)
        # line 12, Eq. 4: one step of the proxy's own optimizer on the defence objective
        self.proxy.train(model.training)
        if self.buffers == "follow":
            copy_buffers(model, self.proxy)  # the proxy's forward pass continues the target's statistics
        for group in self.proxy_optimizer.param_groups:
            group["lr"] = self.beta_at(t)
        loss, logits = self.defence_loss(batch, x_adv)
        self.proxy_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.proxy_optimizer.step()
        gamma = self.gamma_at(t)
        with torch.no_grad():
            for theta, omega in zip(model.parameters(), self.proxy.parameters()):
                diff = theta - omega  # line 13: G = theta_i - omega~
                omega.copy_(theta)  # line 15: omega_{i+1} = theta_i
                if self.rule == "paper":
                    theta.sub_(gamma * diff)  # line 16: theta_{i+1} = theta_i - gamma G
                else:
                    theta.grad = diff
        if self.buffers == "follow":
            copy_buffers(self.proxy, model)  # ... and hands them back
        if self.rule == "code":  # the code's reading: the target's optimizer steps with G
            for group in optimizer.param_groups:
                group["lr"] = gamma
            optimizer.step()
        out = step_metrics(loss, logits, batch.y)
        out.update({"gamma": gamma, "beta": self.beta_at(t)})
        return out

    # ------------------------------------------------------------------ state
    def state_dict(self):
        out = super().state_dict()
        if self.proxy is not None:
            out["proxy"] = self.proxy.state_dict()
            out["proxy_optimizer"] = self.proxy_optimizer.state_dict()
        return out

    def load_state_dict(self, state):
        super().load_state_dict(state)
        if "proxy" in state:
            self.proxy.load_state_dict(state["proxy"])
            self.proxy_optimizer.load_state_dict(state["proxy_optimizer"])

    def describe(self):
        out = super().describe()
        out["sd"] = None if self.sd is None else {"mu": self.sd.mu, "tau": self.sd.tau,
                                                  "form": self.sd.form}
        return out
