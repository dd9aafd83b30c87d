"""Sub-AT (Li et al. 2022): snapshots of the sampling phase, PCA of the trajectory, a
restart from the first snapshot and P-SGD updates that stay in w_0 + span(P)."""
from __future__ import annotations

import torch
from torch import nn

from advlit.methods import Batch, TrainContext, build_method
from advlit.methods.sub_at import flat_parameters, principal_directions, project


def test_principal_directions_span_the_centred_trajectory():
    torch.manual_seed(0)
    a, b = torch.randn(50), torch.randn(50)
    samples = torch.stack([t * a + t ** 2 * b + 3.0 for t in torch.linspace(0, 1, 7)])
    basis = principal_directions(samples, 80)
    assert basis.shape == (2, 50)  # two directions: capped by the trajectory's rank, not by 80
    assert torch.allclose(basis @ basis.T, torch.eye(2), atol=1e-5)
    centred = samples - samples.mean(0)
    assert torch.allclose(project(basis, centred.T).T, centred, atol=1e-4)


def _run(method, model, epochs, steps, lr=0.05):
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    method.setup(model, opt, TrainContext(num_examples=24, input_shape=(1, 4, 4), num_classes=3, epochs=epochs,
                                          steps_per_epoch=steps, device=torch.device("cpu")))
    torch.manual_seed(1)
    xs, ys = torch.rand(steps, 8, 1, 4, 4), torch.randint(0, 3, (steps, 8))
    history = []
    for epoch in range(epochs):
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
