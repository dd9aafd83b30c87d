"""LAS-AT: REINFORCE raises the probability of the better option; heads, histograms, resume."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import advlit.methods.las_at as las_at
from advlit.methods import Batch, TrainContext, build_method
from advlit.methods.las_policy import StrategyNet, reinforce_loss, sample_strategy
from advlit.train import Trainer
from advlit.utils import ConfigError
from tests.helpers import same_state, strip_times, tiny_config

FAST = dict(policy_backbone="small_cnn", interval=5, eps_options=[0.5, 1.0], step_options=[0.25, 0.5],
            iter_options=[1, 2], eval_steps=1, policy_lr=0.05)


def test_reinforce_raises_probability_of_the_best_option():
    """LAS-AT Eqs. 11-13 on a toy bandit: option 2 earns reward 1, the others 0."""
    torch.manual_seed(0)
    net = StrategyNet((1, 8, 8), {"choice": 3}, backbone="small_cnn")
    opt = torch.optim.SGD(net.parameters(), lr=0.5)
    x = torch.rand(64, 1, 8, 8)
    prob = lambda: torch.softmax(net(x)["choice"], 1)[:, 2].mean().item()  # noqa: E731
    before = prob()
    for _ in range(60):
        idx, logp = sample_strategy(net(x))
        reward = (idx["choice"] == 2).float()
        opt.zero_grad()
        reinforce_loss(logp, reward).backward()
        opt.step()
    after = prob()
    assert before < 0.5 and after > 0.8, (before, after)


def test_reinforce_loss_is_the_likelihood_ratio_gradient():
    """The gradient of the loss is -mean(R * grad log p) (Eq. 12, descent form)."""
    logits = torch.zeros(4, 3, requires_grad=True)
    idx, logp = sample_strategy({"h": logits})
    reward = torch.tensor([1.0, 2.0, 0.0, -1.0])
    reinforce_loss(logp, reward).backward()
    onehot = torch.nn.functional.one_hot(idx["h"], 3).float()
    expected = -(reward[:, None] * (onehot - 1 / 3)) / 4
    assert torch.allclose(logits.grad, expected, atol=1e-6)


def test_strategy_values_scale_with_eps_and_drive_pgd():
    cfg = tiny_config(method="las_pgd_at", method_args=FAST)
    trainer = Trainer(cfg, progress=False)
    method = trainer.method
    x, y = trainer.train_set.batch(torch.arange(32))
    idx, strategy, _ = method.sample(x)
    assert set(strategy) == {"eps", "step", "iters"}
    assert torch.all((strategy["eps"] - 0.1).abs().lt(1e-6) | (strategy["eps"] - 0.2).abs().lt(1e-6))
    x_adv = method.attack(trainer.model, x, y, strategy)
    linf = (x_adv - x).abs().flatten(1).max(1).values
    assert torch.all(linf <= strategy["eps"] + 1e-6)


def test_histograms_are_recorded_and_resume_is_exact(tmp_path):
    cfg = tiny_config(method="las_trades", method_args=FAST, epochs=2)
    full = Trainer(cfg, progress=False).fit(tmp_path / "a")
    for row in full["history"]:
        for head, n in (("eps", 2), ("step", 2), ("iters", 2), ("beta", 6)):
            counts = row[f"method_hist_{head}"]
            assert len(counts) == n and sum(counts) == 1200
    Trainer(cfg, progress=False).fit(tmp_path / "b", stop_after=1)
    resumed = Trainer(cfg, progress=False)
    record = resumed.fit(tmp_path / "b", resume=True)
    assert strip_times(record["history"]) == strip_times(full["history"])
    first = Trainer(cfg, progress=False)
    first.load_checkpoint(tmp_path / "a" / "checkpoint.pt")
    assert same_state(first.method.policy.state_dict(), resumed.method.policy.state_dict())


def test_policy_step_changes_only_the_policy():
    """The look-ahead model is a copy: the target's weights move only in the target step."""
    cfg = tiny_config(method="las_pgd_at", method_args=FAST)
    trainer = Trainer(cfg, progress=False)
    method, model = trainer.method, trainer.model
    before = {k: v.clone() for k, v in model.state_dict().items()}
    policy_before = {k: v.clone() for k, v in method.policy.state_dict().items()}
    x, y = trainer.train_set.batch(torch.arange(64))
    from advlit.methods import Batch

    out = method.policy_step(model, trainer.optimizer, Batch(x=x, y=y, idx=torch.arange(64)))
    assert {"reward_l1", "reward_l2", "reward_l3"} <= set(out)
    assert same_state(before, model.state_dict())
    assert not same_state(policy_before, method.policy.state_dict())


# ------------------------------------------------------------------ the reward on a toy
#: a toy batch of 4: the loss L1 of each example, and the look-ahead model's logits on the
#: clean input and on the PGD example (true class 0 for all)
TOY_L1 = torch.tensor([1.0, 3.0, 20.0, 0.5])
CLEAN_LOGITS = torch.tensor([[2.0, 0.0], [1.0, 0.0], [0.0, 1.0], [3.0, 0.0]])  # 3 of 4 right
ROBUST_LOGITS = torch.tensor([[0.0, 1.0], [0.5, 0.0], [0.0, 2.0], [0.0, 0.5]])  # 1 of 4 right


class LookUp(nn.Module):
    """``w_hat`` of the toy: pixel 0 holds the example's id, pixel 1 says PGD example (1) or not."""

    def forward(self, x):
        flat = x.flatten(1)
        ids, adversarial = flat[:, 0].round().long(), flat[:, 1] > 0.5
        return torch.where(adversarial[:, None], ROBUST_LOGITS[ids], CLEAN_LOGITS[ids])


def toy_reward(monkeypatch, **kwargs) -> torch.Tensor:
    """The reward ``policy_step`` hands to REINFORCE on the toy batch."""
    method = build_method("las_pgd_at", 0.2, **{**FAST, **kwargs})
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 2))
    ctx = TrainContext(num_examples=4, input_shape=(1, 4, 4), num_classes=2, epochs=1, steps_per_epoch=1,
                       device=torch.device("cpu"))
    method.setup(model, torch.optim.SGD(model.parameters(), lr=0.1), ctx)
    x = torch.zeros(4, 1, 4, 4)
    x.view(4, -1)[:, 0] = torch.arange(4.0)
    y = torch.zeros(4, dtype=torch.long)
    method.attack = lambda model, x, y, strategy: x
    method.per_example_loss = lambda model, x, x_adv, y, strategy: (TOY_L1.clone(), None)
    method.look_ahead = lambda *args: LookUp()
    monkeypatch.setattr(las_at, "pgd", lambda net, x, *args, **kw: x + F.pad(torch.ones(4, 1), (1, 14)).view(4, 1, 4, 4))
    seen = []

    def spy(logp, reward):
        seen.append(reward)
        return reinforce_loss(logp, reward)

    monkeypatch.setattr(las_at, "reinforce_loss", spy)
    method.policy_step(model, None, Batch(x=x, y=y, idx=torch.arange(4)))
    return seen[0]


def test_code_reward_is_one_value_per_batch_with_the_codes_weights(monkeypatch):
    """The authors' code (Get_reward): R1 = batch-mean CE clamped to [0, 10], R2 = 4 x robust
    accuracy, R3 = 2 x clean accuracy of the look-ahead model, one reward for the batch."""
    reward = toy_reward(monkeypatch, reward="code")
    assert reward.dim() == 0
    expected = min(TOY_L1.mean().item(), 10.0) + 4 * 0.25 + 2 * 0.75  # 6.125 + 1 + 1.5
    assert reward.item() == pytest.approx(expected)
    # a zero weight drops its term (Table 6's ablation), in the code's reward too
    assert toy_reward(monkeypatch, reward="code", weight_l3=0.0).item() == pytest.approx(6.125 + 1.0)
    assert toy_reward(monkeypatch, reward="code", weight_l2=0.0).item() == pytest.approx(6.125 + 1.5)


def test_paper_reward_is_eq7_per_example_and_differs_from_the_code(monkeypatch):
    """Eq. 7 with alpha = 2, beta = 4 on L2 = -CE(w_hat, PGD example), L3 = -CE(w_hat, x)."""
    reward = toy_reward(monkeypatch)
    y = torch.zeros(4, dtype=torch.long)
    expected = (TOY_L1.clamp(0, 10) - 2 * F.cross_entropy(ROBUST_LOGITS, y, reduction="none")
                - 4 * F.cross_entropy(CLEAN_LOGITS, y, reduction="none"))
    assert reward.shape == (4,) and torch.allclose(reward, expected)
    code = toy_reward(monkeypatch, reward="code")
    assert not torch.allclose(reward, code.expand(4))


def test_code_reward_refuses_a_weight_it_would_replace():
    build_method("las_pgd_at", 0.2, reward="code", weight_l2=4.0, weight_l3=2.0)  # the code's own values
    with pytest.raises(ConfigError, match="weight_l2"):
        build_method("las_pgd_at", 0.2, reward="code", weight_l2=3.0)


def test_scalar_reward_reinforce_loss_is_the_codes_sum_over_heads():
    """One reward for the batch: the loss is the code's sum over heads of mean(-log p_h * R)."""
    g = torch.Generator().manual_seed(0)
    logits = {"eps": torch.randn(5, 3, generator=g), "iters": torch.randn(5, 4, generator=g)}
    idx, logp = sample_strategy(logits, generator=g)
    reward = torch.tensor(2.5)
    per_head = [-(torch.log_softmax(z, 1).gather(1, idx[h][:, None]).squeeze(1) * reward).mean()
                for h, z in logits.items()]
    assert torch.allclose(reinforce_loss(logp, reward), sum(per_head))


def test_default_options_are_the_papers_and_the_codes_are_named():
    """LAS-AT Sec. 4.1: eps 3..15, step 1..6, iterations 3..15 (1/255 at eps = 8/255); the
    authors' code (README): step 1..5, iterations 3..14."""
    m = build_method("las_pgd_at", 8 / 255)
    pixels = lambda values: [round(v * 8) for v in values]  # noqa: E731  (multiples of eps -> k/255)
    assert len(m.step_options) == 6 and len(m.iter_options) == 13 and len(m.eps_options) == 13
    assert pixels(m.eps_options) == list(range(3, 16)) and pixels(m.step_options) == list(range(1, 7))
    assert m.iter_options == list(range(3, 16))
    assert pixels(las_at.CODE_STEP) == list(range(1, 6)) and list(las_at.CODE_ITERS) == list(range(3, 15))
    assert pixels(las_at.CODE_EPS) == list(range(3, 16))
    assert (m.reward, m.weight_l2, m.weight_l3, m.interval, m.policy_lr) == ("paper", 2.0, 4.0, 40, 1e-3)
