"""FGSM-CKPT / SSAT (Kim et al. 2021): the training point is the first misclassified
checkpoint x + (j/c) delta along the FGSM direction, x + delta if none is, and x when the
start is already misclassified; checked on hand-built models whose boundaries are known."""
from __future__ import annotations

import torch
from torch import nn

from advlit.methods import Batch, build_method


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
