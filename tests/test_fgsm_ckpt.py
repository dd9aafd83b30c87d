"""FGSM-CKPT / SSAT (Kim et al. 2021, Alg. 1): the training point is the first misclassified
checkpoint x + (j/c) delta along the FGSM direction (delta includes the random start), x + delta
if none is, and the clean x when the start x + eta is already misclassified; the FGSM pass runs
in eval mode (the authors' code); checked on hand-built models whose boundaries are known."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from advlit.methods import Batch, build_method
from advlit.utils import ConfigError


class LineModel(nn.Module):
    """Two classes on s = x_1 + x_2: class 1's logit is ``s - 1`` (monotone: wrong once
    s > 1) or, with ``bump``, ``1 - 1000 (s - s_mid)^2`` (wrong only near s_mid: a distorted
    boundary, Fig. 1 of the paper)."""

    def __init__(self, bump: float | None = None):
        super().__init__()
        self.bump = bump

    def forward(self, x):
        s = x.flatten(1).sum(1)
        wrong = s - 1.0 if self.bump is None else 1.0 - 1000.0 * (s - self.bump) ** 2
        return torch.stack([torch.zeros_like(s), wrong], 1)


def _ckpt(model, a_values, eps=0.1, c=4, name="fgsm_ckpt"):
    """FGSM-CKPT from a zero start (alpha = eps) on inputs (a, a) of class 0."""
    x = torch.tensor(a_values).view(-1, 1).repeat(1, 2).view(-1, 1, 1, 2)
    batch = Batch(x, torch.zeros(len(a_values), dtype=torch.long), torch.arange(len(a_values)))
    method = build_method(name, eps, alpha=eps, checkpoints=c, init="zero")
    return x, method.perturb(model, batch)


def test_first_misclassified_checkpoint_on_a_monotone_boundary():
    # FGSM moves s by +0.2 (delta = 0.1 per coordinate); checkpoints at +0.05, +0.1, +0.15, +0.2
    # margins s - 1 at the start: -0.07 (wrong from j = 2), -0.03 (from j = 1), -0.5 (never), +0.1 (at once)
    x, out = _ckpt(LineModel(), [0.465, 0.485, 0.25, 0.55])
    delta = torch.full_like(x, 0.1)
    expected = torch.stack([x[0] + 0.5 * delta[0], x[1] + 0.25 * delta[1], x[2] + delta[2], x[3]])
    assert torch.allclose(out, expected, atol=1e-6)


def test_the_first_point_is_taken_even_when_the_full_step_is_classified_correctly():
    """A distorted boundary: only the middle of the FGSM segment is misclassified; plain FGSM
    would train on the (correctly classified) end point, FGSM-CKPT on the middle one."""
    s0 = 0.6
    x, out = _ckpt(LineModel(bump=s0 + 0.1), [s0 / 2])
    assert torch.allclose(out, x + 0.05, atol=1e-6)  # j = 2 of c = 4: s0 + 0.1
    model = LineModel(bump=s0 + 0.1)
    assert model(x + 0.1).argmax(1).item() == 0 and model(out).argmax(1).item() == 1


def test_c_one_is_plain_fgsm_and_ssat_is_the_same_method():
    x, out = _ckpt(LineModel(), [0.465, 0.25], c=1)
    assert torch.allclose(out, x + 0.1, atol=1e-6)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    batch = Batch(torch.rand(6, 1, 4, 4), torch.randint(0, 3, (6,)), torch.arange(6))
    outs = []
    for name in ("fgsm_ckpt", "ssat"):
        torch.manual_seed(1)
        outs.append(build_method(name, 0.1).perturb(model, batch))
    assert torch.equal(*outs) and (outs[0] - batch.x).abs().max() <= 0.1 + 1e-6
    assert build_method("ssat", 8 / 255).alpha == build_method("fgsm_ckpt", 8 / 255).alpha == 1.25 * 8 / 255


class PinModel(nn.Module):
    """Right (class 0) only at the stored clean inputs: class 1's logit is
    ``1e4 |x - x_clean|^2 - 1``, so any random start ``x + eta`` is misclassified."""

    def __init__(self, x_clean):
        super().__init__()
        self.x_clean = x_clean

    def forward(self, x):
        wrong = 1e4 * (x - self.x_clean).flatten(1).pow(2).sum(1) - 1.0
        return torch.stack([torch.zeros_like(wrong), wrong], 1)


def test_a_misclassified_start_point_trains_on_the_clean_input():
    """Alg. 1: y_0 = f(x + eta) is the k = 0 check, and k = 0 gives x' = x (not x + eta)."""
    torch.manual_seed(0)
    x = torch.full((3, 1, 2, 2), 0.5)
    batch = Batch(x, torch.zeros(3, dtype=torch.long), torch.arange(3))
    out = build_method("fgsm_ckpt", 0.1).perturb(PinModel(x), batch)
    assert torch.equal(out, x)
    # the package's variant tests f(x) instead: x is right, the first checkpoint x + delta / 3 is not
    out = build_method("fgsm_ckpt", 0.1, start_check="clean").perturb(PinModel(x), batch)
    assert ((out - x).abs().amax(dim=(1, 2, 3)) > 0).all()


def test_delta_includes_the_random_start(monkeypatch):
    """Alg. 1: delta = eta + alpha * sign(grad), projected; the checkpoints scale this delta."""
    x = torch.full((2, 1, 4, 4), 0.03)  # s = sum(x) stays below 1: LineModel never misclassifies
    eta = torch.full_like(x, 0.01)
    eta[:, :, :2] = -0.015
    monkeypatch.setattr("advlit.methods.fgsm_ckpt.uniform_start", lambda x_, eps: eta)
    batch = Batch(x, torch.zeros(2, dtype=torch.long), torch.arange(2))
    out = build_method("fgsm_ckpt", 0.02).perturb(LineModel(), batch)  # alpha = 1.25 eps = 0.025, grad sign +1
    expected = x + torch.clamp(eta + 0.025, max=0.02)  # 0.01 where eta = -0.015, the full eps elsewhere
    assert torch.allclose(out, expected, atol=1e-7)


def test_the_fgsm_pass_runs_in_eval_mode():
    """The authors' code runs the FGSM step as a torchattacks attack (eval mode): BatchNorm's
    running statistics are not moved by the start points; ``attack_mode="train"`` moves them."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3)).train()
    batch = Batch(torch.rand(8, 1, 4, 4), torch.randint(0, 3, (8,)), torch.arange(8))
    before = model[2].running_mean.clone()
    build_method("fgsm_ckpt", 0.1).perturb(model, batch)
    assert torch.equal(model[2].running_mean, before) and model.training
    build_method("fgsm_ckpt", 0.1, attack_mode="train").perturb(model, batch)
    assert not torch.equal(model[2].running_mean, before) and model.training
    with pytest.raises(ConfigError, match="attack_mode"):
        build_method("fgsm_ckpt", 0.1, attack_mode="test")
