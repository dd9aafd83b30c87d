"""Sub-AT (Li et al. 2022): snapshots of the sampling phase, PCA of the trajectory, a
restart from the first snapshot and P-SGD updates that stay in w_0 + span(P)."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from advlit.attacks import fgsm
from advlit.methods import Batch, TrainContext, build_method
from advlit.methods.sub_at import flat_parameters, principal_directions, project
from advlit.utils import ConfigError


def test_principal_directions_span_the_centred_trajectory():
    torch.manual_seed(0)
    a, b = torch.randn(50), torch.randn(50)
    samples = torch.stack([t * a + t ** 2 * b + 3.0 for t in torch.linspace(0, 1, 7)])
    basis = principal_directions(samples, 80)
    assert basis.shape == (2, 50)  # two directions: capped by the trajectory's rank, not by 80
    assert torch.allclose(basis @ basis.T, torch.eye(2), atol=1e-5)
    centred = samples - samples.mean(0)
    assert torch.allclose(project(basis, centred.T).T, centred, atol=1e-4)


def _run(method, model, epochs, steps, lr=0.05, stop=None):
    """Set up a run of ``epochs`` epochs and train its first ``stop`` (default: all)."""
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    method.setup(model, opt, TrainContext(num_examples=24, input_shape=(1, 4, 4), num_classes=3, epochs=epochs,
                                          steps_per_epoch=steps, device=torch.device("cpu")))
    torch.manual_seed(1)
    xs, ys = torch.rand(steps, 8, 1, 4, 4), torch.randint(0, 3, (steps, 8))
    history = []
    for epoch in range(epochs if stop is None else stop):
        for i in range(steps):
            method.step(model, opt, Batch(xs[i], ys[i], torch.arange(8), epoch=epoch, iteration=epoch * steps + i))
            history.append((method.phase, flat_parameters(model).clone()))
        method.on_epoch_end(model, epoch)
        history.append(("end", flat_parameters(model).clone()))
    return history


def test_training_after_the_switch_stays_in_the_subspace_around_the_restart_point():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 3))
    w0 = flat_parameters(model).clone()
    method = build_method("sub_at", 0.1, sample_epochs=2, samples_per_epoch=3, n_components=3, sub_lr=0.5)
    history = _run(method, model, epochs=4, steps=6)
    assert len(method._snapshots) == 1 + 2 * 3  # the start, then 3 per sampling epoch
    basis = method._basis
    assert basis.shape == (3, w0.numel())
    restart = [w for tag, w in history if tag == "end"][1]  # the end of the last sampling epoch
    assert torch.equal(restart, w0)  # restarted from the first snapshot (the initialisation)
    after = [w for tag, w in history if tag == 2]
    assert len(after) == 12
    for w in after:
        d = w - w0
        assert (d - project(basis, d)).norm() <= 1e-5 * max(1.0, d.norm().item())
    assert (after[-1] - w0).norm() > 1e-3  # it did move
    # the sampling phase moved freely: its last point is not in that span around w0
    free = [w for tag, w in history if tag == 1][-1] - w0
    assert (free - project(basis, free)).norm() > 1e-3


def _switched(**kwargs):
    """A Sub-AT run just past its switch (2 sampling epochs of 6 steps), with its data."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 3))
    method = build_method("sub_at", 0.1, sample_epochs=2, samples_per_epoch=3, n_components=3, **kwargs)
    _run(method, model, epochs=4, steps=6, stop=2)  # ends with the switch: basis set, parameters at w0
    assert method.phase == 2
    torch.manual_seed(2)
    batches = [Batch(torch.rand(8, 1, 4, 4), torch.randint(0, 3, (8,)), torch.arange(8), epoch=2, iteration=12 + i)
               for i in range(2)]
    return method, model, batches


def test_p_sgd_is_momentum_sgd_on_the_projected_gradient_without_weight_decay():
    """Two phase-2 steps (on the clean inputs, to fix the gradient): w <- w - lr b with
    b <- mu b + P^T P g, LR ``sub_lr``, momentum ``sub_momentum``, no weight decay."""
    method, model, batches = _switched(sub_lr=0.5, sub_momentum=0.8)
    method.perturb = lambda model, batch: batch.x
    basis, params = method._basis, list(model.parameters())
    w, buf = flat_parameters(model).clone(), None
    for batch in batches:
        loss = torch.nn.functional.cross_entropy(model(batch.x), batch.y)
        g = torch.cat([d.reshape(-1) for d in torch.autograd.grad(loss, params)])
        d = project(basis, g)
        buf = d if buf is None else 0.8 * buf + d
        w = w - 0.5 * buf
        method.step(model, torch.optim.SGD(params, lr=123.0, weight_decay=1.0), batch)  # the trainer's: unused
        assert torch.allclose(flat_parameters(model), w, atol=1e-6)


def test_defaults_are_the_codes_fast_sub_at():
    method = build_method("sub_at", 8 / 255)
    assert method.alpha == pytest.approx(10 / 255)  # FGSM-RS step 10/255 at 8/255
    assert (method.n_components, method.sub_lr, method.sub_momentum) == (80, 1.0, 0.9)
    assert (method.samples_per_epoch, method.restart_from, method.sub_eps_factor) == (2, 0, 1.0)


def test_phase_two_attacks_at_sub_eps_factor_times_eps_and_alpha():
    """``sub_eps_factor=2`` (the code's run.sh: 16/255, step 20/255 after 8/255, 10/255):
    the phase-2 perturbation is FGSM-RS at 2 eps with step 2 alpha; phase 1 stays at eps."""
    method, model, batches = _switched(sub_eps_factor=2.0)
    x, y = batches[0].x, batches[0].y
    fresh = build_method("sub_at", 0.1, sub_eps_factor=2.0)  # phase 1: the basis is not set yet
    for m, eps, alpha in ((method, 0.2, 0.25), (fresh, 0.1, 0.125)):
        torch.manual_seed(5)
        got = m.perturb(model, batches[0])
        torch.manual_seed(5)
        assert torch.equal(got, fgsm(model, x, y, eps, alpha, init="uniform"))
        assert 0.1 - 1e-6 < (got - x).abs().max() <= eps + 1e-6  # phase 2 reaches beyond 0.1
    with pytest.raises(ConfigError, match="sub_eps_factor"):
        build_method("sub_at", 0.1, sub_eps_factor=0.0)
