"""Fast-BAT (advlit.methods.fast_bat): attack constraints, the interior mask, and the
implicit gradient equal to the exact derivative through the lower-level step."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from advlit.methods import Batch, build_method
from helpers import tiny_config
from advlit.train import Trainer


def batch(n=6, low=0.0, high=1.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = low + (high - low) * torch.rand(n, 4, generator=g)
    return Batch(x=x, y=torch.arange(n) % 3, idx=torch.arange(n))


def test_attack_stays_in_ball_and_box_and_defaults():
    torch.manual_seed(0)
    method = build_method("fast_bat", 0.2)
    assert method.alpha == pytest.approx(2000 / 255) and method.lam == 10.0  # the code's step above 8/255
    b = batch()
    x_adv = method.perturb(nn.Linear(4, 3), b)
    assert (x_adv - b.x).abs().max() <= 0.2 + 1e-6 and x_adv.min() >= 0 and x_adv.max() <= 1


@pytest.mark.parametrize("eps, step", [(4 / 255, 5000 / 255), (8 / 255, 5000 / 255), (12 / 255, 2000 / 255),
                                       (16 / 255, 2000 / 255)])
def test_default_step_is_the_codes_rule(eps, step):
    """OPTML-Group/Fast-BAT: 5000/255 up to eps = 8/255 and 2000/255 above (gradient units, not
    proportional to eps: a ratio 625 eps would give 10000/255 at 16/255); also under LAST."""
    assert build_method("fast_bat", eps).alpha == pytest.approx(step, rel=1e-12)
    assert build_method("last+fast_bat", eps).alpha == pytest.approx(step, rel=1e-12)


def test_an_explicit_step_wins_over_the_default():
    assert build_method("fast_bat", 16 / 255, alpha=3.0).alpha == 3.0
    assert build_method("fast_bat", 16 / 255, alpha_ratio=100.0).alpha == pytest.approx(100.0 * 16 / 255)
    assert build_method("last+fast_bat", 8 / 255, alpha=7.0).alpha == 7.0


def test_interior_mask():
    method = build_method("fast_bat", 0.2)
    x = torch.tensor([[0.5, 0.5, 0.1, 0.95]])
    x_adv = torch.tensor([[0.7, 0.6, 0.0, 1.0]])  # at +eps, inside, at the 0 box edge, at the 1 box edge
    assert method.interior_mask(x, x_adv).tolist() == [[0.0, 1.0, 0.0, 0.0]]


def test_implicit_gradient_is_the_total_derivative_when_unconstrained():
    """With lam = 1/alpha and no active constraint (H = 1), Fast-BAT's parameter gradient
    equals d/dtheta CE(theta, delta_1 + alpha grad_delta sum CE(theta, delta_1))."""
    torch.manual_seed(0)
    model = nn.Linear(4, 3)
    alpha = 0.02
    method = build_method("fast_bat", 0.3, alpha=alpha, lam=1 / alpha)
    b = batch(low=0.4, high=0.6)
    x_adv = method.perturb(model, b)
    delta_1 = method._pending[1].clone()
    assert method.interior_mask(b.x, x_adv).min() == 1.0
    loss, _ = method.loss(model, b, x_adv)
    implicit = torch.autograd.grad(loss, list(model.parameters()))
    d1 = delta_1.clone().requires_grad_(True)
    g1 = torch.autograd.grad(F.cross_entropy(model(b.x + d1), b.y, reduction="sum"), d1, create_graph=True)[0]
    exact = torch.autograd.grad(F.cross_entropy(model(b.x + delta_1 + alpha * g1), b.y), list(model.parameters()))
    plain = torch.autograd.grad(F.cross_entropy(model(x_adv), b.y), list(model.parameters()))
    for i, e, p in zip(implicit, exact, plain):
        assert torch.allclose(i, e, atol=1e-6)
    assert any(not torch.allclose(i, p, atol=1e-6) for i, p in zip(implicit, plain))  # the cross term matters


def test_trains_deterministically():
    cfg = tiny_config(method="fast_bat", epochs=1)
    a, b = Trainer(cfg, progress=False).fit(), Trainer(cfg, progress=False).fit()
    assert a["final"] == b["final"] and a["history"][0]["train_loss"] == b["history"][0]["train_loss"]
