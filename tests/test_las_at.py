"""LAS-AT: REINFORCE raises the probability of the better option; heads, histograms, resume."""
from __future__ import annotations

import torch

from advlit.methods.las_policy import StrategyNet, reinforce_loss, sample_strategy
from advlit.train import Trainer
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
