"""YOPO (Zhang et al. 2019, Alg. 1): m full forward-backward passes per batch, the inner
perturbation updates through the first layer only (its adjoint p), and the first layer's
parameters updated with the Hamiltonian gradient."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from advlit.methods import Batch, build_method
from advlit.methods.yopo import first_layer


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.Tanh(), nn.Flatten(), nn.Linear(48, 4))


def _batch():
    torch.manual_seed(1)
    return Batch(torch.rand(5, 1, 4, 4) * 0.6 + 0.2, torch.tensor([0, 1, 2, 3, 1]), torch.arange(5))


def test_first_layer_is_the_stem():
    from advlit.models import get_model

    assert first_layer(_net())[0] == "0"
    net = get_model("preact_resnet18", 10, (3, 32, 32), normalize=((0.5,) * 3, (0.25,) * 3))
    assert first_layer(net)[0] == "1.conv1"  # after the parameter-free Normalize layer


def test_only_m_full_passes_and_the_inner_steps_use_the_first_layer_alone():
    """Counting passes: the classifier sees m forward and m backward passes per batch; the
    first layer sees m (n + 2): the full passes, the n inner steps, the Hamiltonian."""
    net, batch = _net(), _batch()
    m, n = 2, 3
    counts = {"first_fwd": 0, "last_fwd": 0, "last_bwd": 0}
    net[0].register_forward_hook(lambda *a: counts.__setitem__("first_fwd", counts["first_fwd"] + 1))
    net[3].register_forward_hook(lambda *a: counts.__setitem__("last_fwd", counts["last_fwd"] + 1))
    net[3].register_full_backward_hook(lambda *a: counts.__setitem__("last_bwd", counts["last_bwd"] + 1))
    method = build_method("yopo", 0.1, m=m, n=n)
    method.step(net, torch.optim.SGD(net.parameters(), lr=0.1), batch)
    assert counts == {"first_fwd": m * (n + 2), "last_fwd": m, "last_bwd": m}


def _adjoint_and_start(net, batch, eps, seed):
    """Hand computation of one outer iteration: the start eta_0 and p = dL/df_0 there."""
    torch.manual_seed(seed)
    x = batch.x
    eta0 = (torch.rand_like(x) * 2 - 1) * eps
    eta0 = torch.min(torch.max(x + eta0, x - eps), x + eps).clamp(0, 1) - x
    f0 = net[0](x + eta0).detach().requires_grad_(True)
    loss = F.cross_entropy(net[3](net[2](net[1](f0))), batch.y)
    (p,) = torch.autograd.grad(loss, f0)
    return eta0, p


def test_inner_step_is_a_signed_ascent_on_the_first_layer_hamiltonian():
    net, batch = _net(), _batch()
    eps, alpha = 0.1, 0.03
    eta0, p = _adjoint_and_start(net, batch, eps, seed=7)
    eta = eta0.clone().requires_grad_(True)
    (g,) = torch.autograd.grad((net[0](batch.x + eta) * p).sum(), eta)  # d/deta [p . f_0(x + eta)]
    expected = torch.min(torch.max(batch.x + eta0 + alpha * g.sign(), batch.x - eps), batch.x + eps).clamp(0, 1)
    method = build_method("yopo", eps, alpha=alpha, m=1, n=1)
    torch.manual_seed(7)
    assert torch.allclose(method.perturb(net, batch), expected, atol=1e-7)


@pytest.mark.parametrize("rule", ["paper", "code"])
def test_update_uses_the_hamiltonian_gradient_for_the_first_layer(rule):
    """m = n = 1, plain SGD at LR 1: the classifier moves by -dCE/dtheta~ at the start point;
    the first layer by -d/dtheta_0 [p . f_0(x + eta_1)] (plus -dCE/dtheta_0 with the code's rule)."""
    net, batch = _net(), _batch()
    eps, alpha = 0.1, 0.03
    eta0, p = _adjoint_and_start(net, batch, eps, seed=3)
    eta = eta0.clone().requires_grad_(True)
    (g,) = torch.autograd.grad((net[0](batch.x + eta) * p).sum(), eta)
    eta1 = torch.min(torch.max(batch.x + eta0 + alpha * g.sign(), batch.x - eps), batch.x + eps).clamp(0, 1) - batch.x
    ham = torch.autograd.grad((net[0](batch.x + eta1) * p).sum(), list(net[0].parameters()))
    ce = torch.autograd.grad(F.cross_entropy(net(batch.x + eta0), batch.y), list(net.parameters()))
    first = [h + (c if rule == "code" else 0) for h, c in zip(ham, ce[:2])]
    expected = [w.detach() - d for w, d in zip(net.parameters(), first + list(ce[2:]))]
    method = build_method("yopo", eps, alpha=alpha, m=1, n=1, layer_one_grad=rule)
    torch.manual_seed(3)
    method.step(net, torch.optim.SGD(net.parameters(), lr=1.0), batch)
    for after, want in zip(net.parameters(), expected):
        assert torch.allclose(after, want, atol=1e-6)


def test_gradients_are_averaged_over_the_m_passes():
    """Two identical passes (n = 1, alpha = 0: eta never moves) give the one-pass step."""
    batch = _batch()
    steps = []
    for m in (1, 2):
        net = _net()
        torch.manual_seed(5)
        build_method("yopo", 0.1, alpha=1e-12, m=m, n=1).step(net, torch.optim.SGD(net.parameters(), lr=1.0), batch)
        steps.append([w.detach().clone() for w in net.parameters()])
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(*steps))


def _proj(x, x_adv, eps):
    return torch.min(torch.max(x_adv, x - eps), x + eps).clamp(0, 1)


def _reference(net, batch, eps, alpha, m, n, seed, rule="paper"):
    """YOPO-m-n written out by hand for ``_net()`` (f_0 = net[0], g = net[1:]): the start,
    and for each outer iteration j a fresh adjoint p_j = dL/df_0 at x + eta_j (its start
    point), n signed ascent steps on p_j . f_0(x + eta), the classifier's CE gradient at the
    start point and the first layer's Hamiltonian gradient at the end point, averaged over
    the m iterations. Returns ``(x + eta_m, the parameters after SGD at LR 1)``."""
    x, y = batch.x, batch.y
    params = list(net.parameters())
    torch.manual_seed(seed)
    eta = _proj(x, x + (torch.rand_like(x) * 2 - 1) * eps, eps) - x
    total = [torch.zeros_like(w) for w in params]
    for _ in range(m):
        f0 = net[0](x + eta).detach().requires_grad_(True)
        (p,) = torch.autograd.grad(F.cross_entropy(net[3](net[2](net[1](f0))), y), f0)
        ce = torch.autograd.grad(F.cross_entropy(net(x + eta), y), params)
        for _ in range(n):
            e = eta.clone().requires_grad_(True)
            (g,) = torch.autograd.grad((net[0](x + e) * p).sum(), e)
            eta = _proj(x, x + eta + alpha * g.sign(), eps) - x
        ham = torch.autograd.grad((net[0](x + eta) * p).sum(), params[:2])
        first = [h + (c if rule == "code" else 0) for h, c in zip(ham, ce[:2])]
        total = [t + d for t, d in zip(total, first + list(ce[2:]))]
    return x + eta, [w.detach() - t / m for w, t in zip(params, total)]


@pytest.mark.parametrize("rule", ["paper", "code"])
def test_outer_iterations_carry_eta_and_take_a_fresh_adjoint_at_each_start(rule):
    """m = 2, n = 2: eta goes on from where the previous outer iteration's inner steps left
    it, and each outer iteration takes its own full pass (its own p) there; fails when the
    outer iterations restart from eta_0 or reuse the first adjoint."""
    net, batch = _net(), _batch()
    eps, alpha, m, n = 0.1, 0.03, 2, 2
    want_x, want_params = _reference(net, batch, eps, alpha, m, n, seed=11, rule=rule)
    method = build_method("yopo", eps, alpha=alpha, m=m, n=n, layer_one_grad=rule)
    torch.manual_seed(11)
    assert torch.allclose(method.perturb(net, batch), want_x, atol=1e-7)
    torch.manual_seed(11)
    method.step(net, torch.optim.SGD(net.parameters(), lr=1.0), batch)
    for after, want in zip(net.parameters(), want_params):
        assert torch.allclose(after, want, atol=1e-6)


def test_defaults_are_yopo_5_3_with_step_eps_over_4():
    """YOPO-5-3 with sigma = 2/255 at eps = 8/255 (the authors' CIFAR-10 configuration)."""
    method = build_method("yopo", 8 / 255)
    assert (method.m, method.n, method.layer_one_grad) == (5, 3, "paper")
    assert method.alpha == pytest.approx(2 / 255)
