"""LAS-AT: learnable attack strategy (Jia et al., CVPR 2022), as LAS-PGD-AT and LAS-TRADES.

A strategy network (:mod:`advlit.methods.las_policy`) samples, per example, the attack
strategy ``a = (eps, step, iterations)`` (LAS-TRADES adds the TRADES beta) from
``p(a | x; theta)`` (LAS-AT, Eq. 4). The target network is trained on the examples those
strategies produce (Eq. 8, update Eq. 9); every ``interval`` target steps the strategy
network takes one REINFORCE step (Eqs. 11-13) on the reward

    L0 = L1 + alpha * L2 + beta * L3                                  (LAS-AT, Eq. 7)

- ``L1``: the target's loss on the strategy's example (clamped to [0, 10], as in the code);
- ``L2`` (Eq. 5): robustness of the look-ahead model ``w_hat = w - lambda grad_w L1``
  (one SGD step of a copy of the target on the example) under PGD-10 at the evaluation eps;
- ``L3`` (Eq. 6): how well ``w_hat`` classifies the clean input.

``reward="paper"`` (default): Eqs. 5-7 as printed, per example: ``L2`` and ``L3`` are the
negative cross-entropies of ``w_hat`` and alpha = 2, beta = 4 (Sec. 4.1, ``weight_l2``,
``weight_l3``). ``reward="code"``: the authors' code (``LAS_AT_train_cifar10.py``,
``Get_reward``): ONE reward per batch, ``R1 + 4 * acc_rob + 2 * acc_clean`` with ``R1`` the
batch-mean loss clamped to [0, 10] and the accuracies of ``w_hat`` over the batch (the
code's ``R2_param = 4`` on robustness and ``R3_param = 2`` on clean accuracy: the paper's
weights swapped; :data:`CODE_WEIGHT_L2`, :data:`CODE_WEIGHT_L3`). In that mode a zero
``weight_l2`` / ``weight_l3`` still drops its term (Table 6's ablation); other values are
replaced by the code's. Either way the REINFORCE loss is the mean over the batch of
``-log p(a | x) * reward``, the code's sum over heads of ``mean(-log p_h * reward)``.
``interval``: paper k = 40 (code 20). ``policy_lr``: paper 1e-3 (code 1e-4).

The option sets are given as *multiples of eps*; the defaults are the ranges LAS-AT's
Sec. 4.1 prints, in units of 1/255 at eps = 8/255: eps 3..15, step 1..6 and iterations
3..15 (:data:`PAPER_EPS`, :data:`PAPER_STEP`, :data:`PAPER_ITERS`); at another eps (digits16:
0.2) they scale proportionally. The authors' code (its README's commands) uses eps 3..15,
step 1..5 and iterations 3..14: :data:`CODE_EPS`, :data:`CODE_STEP`, :data:`CODE_ITERS`,
passed as ``eps_options``, ``step_options``, ``iter_options``.

Differences to the code, on purpose: the random start is ``U(-eps_i, eps_i)`` with each
example's own eps (code: ``U(-8/255, 8/255)``); the look-ahead step has no label smoothing
and no weight decay (code: 0.7 and a fresh SGD with weight decay 5e-4); the PGD-10 of
``L2`` has one start, no early stop and ``w_hat`` in eval mode (code: two restarts, an
example stops once misclassified, ``w_hat`` left in train mode); the policy's SGD uses
momentum 0.9 (Sec. 4.1: "SGD momentum optimizer", no value; code: plain SGD) and weight
decay 5e-4 (not stated).
"""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import Tensor

from advlit.attacks import clamp_to_ball, eval_mode, pgd
from advlit.methods.base import Batch, Method, per_example, step_metrics
from advlit.methods.las_policy import StrategyNet, histogram, reinforce_loss, sample_strategy
from advlit.methods.registry import register
from advlit.utils import ConfigError

#: the paper's options at eps = 8/255, as multiples of eps (LAS-AT Sec. 4.1: eps 3..15,
#: step 1..6, iterations 3..15)
PAPER_EPS = tuple(k / 8 for k in range(3, 16))
PAPER_STEP = tuple(k / 8 for k in range(1, 7))
PAPER_ITERS = tuple(range(3, 16))
#: the authors' code's options (README commands: eps 3..15, step 1..5, iterations 3..14)
CODE_EPS = PAPER_EPS
CODE_STEP = tuple(k / 8 for k in range(1, 6))
CODE_ITERS = tuple(range(3, 15))
#: the code's reward weights: ``R2_param`` on the robust accuracy, ``R3_param`` on the clean one
CODE_WEIGHT_L2 = 4.0
CODE_WEIGHT_L3 = 2.0
PAPER_WEIGHT_L2 = 2.0  # alpha, LAS-AT Sec. 4.1
PAPER_WEIGHT_L3 = 4.0  # beta
REWARDS = ("paper", "code")


@register("las_pgd_at")
class LASPGDAT(Method):
    """LAS-PGD-AT: PGD-AT (CE on the example) with a learned per-example PGD strategy.

    Parameters (defaults: the paper)
    ----------
    eps_options, step_options : multiples of ``eps`` (the evaluation budget).
    iter_options : PGD iteration counts.
    interval : target steps between two policy steps (k; paper 40, code 20).
    weight_l2, weight_l3 : alpha and beta of Eq. 7 (paper 2 and 4); 0 drops the term
        (the L1 / L1+L2 / L1+L3 ablation of Table 6). With ``reward="code"`` a non-zero
        weight means the code's (4 on L2, 2 on L3).
    reward : ``"paper"`` (per example, negative losses in L2, L3) or ``"code"`` (one reward
        per batch from the batch's accuracies, the code's weights), see the module docstring.
    policy_lr : SGD learning rate of the strategy network (paper 1e-3, code 1e-4).
    policy_backbone : ``"resnet18"`` (paper) or ``"small_cnn"`` (cpu profile).
    eval_steps : PGD iterations of L2's robustness check (10).
    """

    loss_name = "ce"

    def __init__(self, eps: float, alpha: float | None = None, eps_options=PAPER_EPS, step_options=PAPER_STEP,
                 iter_options=PAPER_ITERS, interval: int = 40, weight_l2: float = PAPER_WEIGHT_L2,
                 weight_l3: float = PAPER_WEIGHT_L3, reward: str = "paper", policy_lr: float = 1e-3,
                 policy_backbone: str = "resnet18", clip: float = 1.0, l1_max: float = 10.0, eval_steps: int = 10):
        super().__init__(eps, alpha)
        if reward not in REWARDS:
            raise ConfigError(f"{self.name}: reward must be one of {REWARDS}, got {reward!r}")
        if reward == "code":  # the code's weights replace a non-zero weight: refuse one that means neither
            for key, value, paper, code in (("weight_l2", weight_l2, PAPER_WEIGHT_L2, CODE_WEIGHT_L2),
                                            ("weight_l3", weight_l3, PAPER_WEIGHT_L3, CODE_WEIGHT_L3)):
                if float(value) not in (0.0, paper, code):
                    raise ConfigError(f"{self.name}: with reward='code' {key} is the code's {code:g} (or 0 to drop "
                                      f"the term), got {value}")
        if int(interval) < 1:
            raise ConfigError(f"{self.name}: interval must be >= 1, got {interval}")
        if not (eps_options and step_options and iter_options) or min(iter_options) < 1:
            raise ConfigError(f"{self.name}: every option set must be non-empty (iterations >= 1)")
        self.eps_options = [float(v) for v in eps_options]
        self.step_options = [float(v) for v in step_options]
        self.iter_options = [int(v) for v in iter_options]
        self.interval = int(interval)
        self.weight_l2 = float(weight_l2)
        self.weight_l3 = float(weight_l3)
        self.reward = reward
        self.policy_lr = float(policy_lr)
        self.policy_backbone = policy_backbone
        self.clip = float(clip)
        self.l1_max = float(l1_max)
        self.eval_steps = int(eval_steps)
        self.policy: StrategyNet | None = None
        self.policy_optimizer = None
        self._counts: dict[str, list[int]] = {}
        self._last_reward: dict = {}

    # ----------------------------------------------------------- the heads
    def head_options(self) -> dict[str, list]:
        """Option values of every head, in the units the attack uses (pixels, counts)."""
        return {"eps": [m * self.eps for m in self.eps_options], "step": [m * self.eps for m in self.step_options],
                "iters": list(self.iter_options)}

    def setup(self, model, optimizer, context):
        super().setup(model, optimizer, context)
        heads = {name: len(values) for name, values in self.head_options().items()}
        self.policy = StrategyNet(context.input_shape, heads, backbone=self.policy_backbone).to(context.device)
        self.policy_optimizer = torch.optim.SGD(self.policy.parameters(), lr=self.policy_lr, momentum=0.9,
                                                weight_decay=5e-4)
        self._reset_counts()

    def _reset_counts(self):
        self._counts = {name: [0] * len(values) for name, values in self.head_options().items()}

    def decode(self, indices: dict[str, Tensor]) -> dict[str, Tensor]:
        """Per-example strategy values from option indices (tensors of shape ``(B,)``)."""
        out = {}
        for name, values in self.head_options().items():
            table = torch.tensor(values, device=indices[name].device)
            out[name] = table[indices[name]]
        out["iters"] = out["iters"].long()
        return out

    # --------------------------------------------------- example and loss
    def attack(self, model, x: Tensor, y: Tensor, strategy: dict[str, Tensor]) -> Tensor:
        """Eq. 2: the example of ``x`` under each example's own strategy (PGD, CE)."""
        return pgd(model, x, y, strategy["eps"], strategy["step"], strategy["iters"], random_start=True)

    def per_example_loss(self, model, x: Tensor, x_adv: Tensor, y: Tensor, strategy: dict[str, Tensor]):
        """``L(f_w(x_adv), y)`` per example (LAS-PGD-AT: cross-entropy); returns (loss, logits)."""
        logits = model(x_adv)
        return F.cross_entropy(logits, y, reduction="none"), logits

    def sample(self, x: Tensor, grad: bool = False):
        """Sample a strategy for ``x``; returns ``(indices, strategy values, log p)``."""
        with torch.set_grad_enabled(grad):
            indices, logp = sample_strategy(self.policy(x))
        return indices, self.decode(indices), logp

    # ------------------------------------------------------------ the step
    def step(self, model, optimizer, batch: Batch) -> dict:
        """Every ``interval`` steps a policy step (Eqs. 11-13), then the target step (Eq. 9)."""
        if batch.iteration % self.interval == 0:
            self._last_reward = self.policy_step(model, optimizer, batch)
        indices, strategy, _ = self.sample(batch.x)
        for name, idx in indices.items():
            counts = histogram(idx, len(self._counts[name]))
            self._counts[name] = [a + b for a, b in zip(self._counts[name], counts)]
        x_adv = self.attack(model, batch.x, batch.y, strategy)
        loss, logits = self.target_update(model, optimizer, batch, x_adv, strategy)
        return {**step_metrics(loss, logits, batch.y), **self._last_reward}

    def target_update(self, model, optimizer, batch, x_adv, strategy):
        """Eq. 9: one optimizer step on the mean loss of the learned examples."""
        losses, logits = self.per_example_loss(model, batch.x, x_adv, batch.y, strategy)
        loss = losses.mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss, logits

    def reward_weights(self) -> tuple[float, float]:
        """The weights of L2 and L3 in the reward: alpha and beta (``reward="paper"``) or the
        code's 4 and 2 (``reward="code"``); a zero weight drops its term either way."""
        if self.reward == "paper":
            return self.weight_l2, self.weight_l3
        return (CODE_WEIGHT_L2 if self.weight_l2 else 0.0, CODE_WEIGHT_L3 if self.weight_l3 else 0.0)

    def policy_step(self, model, optimizer, batch: Batch) -> dict:
        """One REINFORCE step of the strategy network on the reward L0 of Eq. 7: per example
        (paper) or one value for the batch (code), see the module docstring."""
        x, y = batch.x, batch.y
        indices, strategy, logp = self.sample(x, grad=True)
        with eval_mode(model):
            x_adv = self.attack(model, x, y, strategy)
            with torch.no_grad():
                l1 = self.per_example_loss(model, x, x_adv, y, strategy)[0]
        l1 = (l1.mean() if self.reward == "code" else l1).clamp(0, self.l1_max)
        reward = l1
        out = {"reward_l1": l1.mean().item()}
        weight_l2, weight_l3 = self.reward_weights()
        if weight_l2 or weight_l3:
            w_hat = self.look_ahead(model, optimizer, x, x_adv, y, strategy)
            if weight_l2:
                x_hat = pgd(w_hat, x, y, self.eps, self.eps / 4, self.eval_steps, random_start=True)
                l2 = self._score(w_hat, x_hat, y)
                reward = reward + weight_l2 * l2
                out["reward_l2"] = l2.mean().item()
            if weight_l3:
                l3 = self._score(w_hat, x, y)
                reward = reward + weight_l3 * l3
                out["reward_l3"] = l3.mean().item()
        loss = reinforce_loss(logp, reward)
        self.policy_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.policy.parameters(), self.clip)
        self.policy_optimizer.step()
        return out

    def look_ahead(self, model, optimizer, x, x_adv, y, strategy):
        """``w_hat = w - lambda grad_w L1`` (Eq. 5): a copy of the target after one plain SGD
        step on the example, lambda = the target's current learning rate. No gradient flows
        back into ``w``; returned in eval mode."""
        w_hat = copy.deepcopy(model)
        w_hat.train()
        lr = optimizer.param_groups[0]["lr"]
        loss = self.per_example_loss(w_hat, x, x_adv, y, strategy)[0].mean()
        grads = torch.autograd.grad(loss, [p for p in w_hat.parameters() if p.requires_grad])
        with torch.no_grad():
            for p, g in zip([p for p in w_hat.parameters() if p.requires_grad], grads):
                p.sub_(lr * g)
        return w_hat.eval()

    def _score(self, net, x, y) -> Tensor:
        """Score of ``net`` on ``x``: ``-CE`` per example (paper, Eqs. 5-6) or the accuracy
        over the batch, one scalar (code)."""
        with torch.no_grad():
            logits = net(x)
            if self.reward == "paper":
                return -F.cross_entropy(logits, y, reduction="none")
            return (logits.argmax(1) == y).float().mean()

    # --------------------------------------------------------------- hooks
    def on_epoch_start(self, model, epoch):
        self._reset_counts()

    def on_epoch_end(self, model, epoch) -> dict:
        """The epoch's histogram of every head (option counts over the target steps)."""
        return {f"hist_{name}": list(counts) for name, counts in self._counts.items()}

    def state_dict(self) -> dict:
        return {"policy": self.policy.state_dict(), "policy_optimizer": self.policy_optimizer.state_dict(),
                "counts": copy.deepcopy(self._counts), "last_reward": dict(self._last_reward)}

    def load_state_dict(self, state: dict) -> None:
        self.policy.load_state_dict(state["policy"])
        self.policy_optimizer.load_state_dict(state["policy_optimizer"])
        self._counts = copy.deepcopy(state["counts"])
        self._last_reward = dict(state["last_reward"])


def trades_kl_per_example(logits_adv: Tensor, logits_clean: Tensor) -> Tensor:
    """``KL(softmax(clean) || softmax(adv))`` per example (TRADES, Eq. 5)."""
    return F.kl_div(F.log_softmax(logits_adv, 1), F.softmax(logits_clean, 1), reduction="none").sum(1)


#: LAS-TRADES beta options: our choice around TRADES' default 6 (the paper does not list them)
TRADES_BETAS = (3.0, 4.0, 5.0, 6.0, 7.0, 8.0)


@register("las_trades")
class LASTRADES(LASPGDAT):
    """LAS-TRADES: TRADES (KL-PGD example, CE + beta KL loss) with a learned per-example
    strategy; an extra head picks the TRADES beta (``beta_options``, our choice)."""

    def __init__(self, eps: float, alpha: float | None = None, beta_options=TRADES_BETAS, **kwargs):
        self.beta_options = [float(b) for b in beta_options]
        if not self.beta_options:
            raise ConfigError("las_trades: beta_options must be non-empty")
        super().__init__(eps, alpha, **kwargs)

    def head_options(self):
        return {**super().head_options(), "beta": list(self.beta_options)}

    def attack(self, model, x, y, strategy):
        """TRADES' KL-PGD from ``x + 0.001 N(0, I)``, eval mode, per-example eps/step/iterations."""
        eps, step, iters = strategy["eps"], per_example(strategy["step"], x), strategy["iters"]
        with eval_mode(model):
            with torch.no_grad():
                p_clean = model(x)
            x_adv = clamp_to_ball(x + 0.001 * torch.randn_like(x), x, eps)
            for t in range(int(iters.max().item())):
                x_adv.requires_grad_(True)
                kl = trades_kl_per_example(model(x_adv), p_clean).sum()
                (grad,) = torch.autograd.grad(kl, x_adv)
                moving = per_example((iters > t).to(x.dtype), x)
                x_adv = clamp_to_ball(x_adv.detach() + moving * step * grad.sign(), x, eps)
        return x_adv.detach()

    def per_example_loss(self, model, x, x_adv, y, strategy):
        """``CE(f(x), y) + beta_i KL(f(x) || f(x_adv))`` per example (TRADES, Eq. 5)."""
        logits_clean = model(x)
        logits_adv = model(x_adv)
        loss = F.cross_entropy(logits_clean, y, reduction="none") + strategy["beta"] * \
            trades_kl_per_example(logits_adv, logits_clean)
        return loss, logits_adv


@register("las_awp")
class LASAWP(LASPGDAT):
    """LAS-AWP: LAS-PGD-AT's learned examples with AWP's weight perturbation on the target
    step (:func:`advlit.methods.awp.awp_update`); gamma = 0.01 (LAS-AT's code)."""

    def __init__(self, eps: float, alpha: float | None = None, gamma: float = 0.01, proxy_lr: float = 0.01, **kwargs):
        super().__init__(eps, alpha, **kwargs)
        self.gamma = float(gamma)
        self.proxy_lr = float(proxy_lr)
        self._proxy = None

    def target_update(self, model, optimizer, batch, x_adv, strategy):
        from advlit.methods.awp import awp_update

        if self._proxy is None:
            self._proxy = copy.deepcopy(model)

        def loss_fn(net):
            losses, logits = self.per_example_loss(net, batch.x, x_adv, batch.y, strategy)
            return losses.mean(), logits

        return awp_update(model, self._proxy, optimizer, loss_fn, self.gamma, self.proxy_lr)
