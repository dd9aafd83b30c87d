"""PIAT's toy study (Section III-A, Figs. 3-5): adversarial training on 3-D concentric
circles, with the decision boundary drawn before and after chosen epochs.

Setting, as in the paper: the ``circles3d`` data, a one-hidden-layer MLP, SGD with
momentum 0.9 and a constant learning rate of 0.5, PGD training examples (eps = 0.1,
alpha = 0.05, K = 5), 50 epochs. Not given by the paper (our choices, arguments here):
batch size (64), weight decay (0), hidden width (64, the ``mlp`` default), and the attack
that measures robustness every epoch (PGD-20, step eps / 4, on the 1,000 test points).

**The [0, 1] box.** Every attack of :mod:`advlit.attacks` clamps its output to [0, 1]
(pixel space), but the toy features are real-valued (x1, x2 in about [-1.8, 1.8]). We
therefore train on the affine image ``u = (x - LOW) / WIDTH`` of the data (LOW = -2,
WIDTH = 4, the same map for every feature, so L-inf balls map to L-inf balls with radius
``eps / WIDTH``), and put the inverse map inside the model as its first layer
(``Normalize(mean=0.5, std=0.25)`` gives back ``x``). The network, its gradients with
respect to its weights and hence the training dynamics are those of the original problem;
the attacks' budget is ``0.1 / 4 = 0.025`` in ``u`` units, i.e. 0.1 in ``x`` units;
:func:`toy_data` checks that no point's eps-ball touches the box, so the clamp never acts.

This module runs its own short training loop (the toy has no run records) but reuses the
package's methods (:func:`advlit.methods.build_method`: ``pgd_at``, ``piat+pgd_at``,
``alp``, ``nmse+pgd_at``), their ``step`` and ``on_epoch_end`` hooks, the batch iterator
of the trainer and :func:`advlit.evaluate.evaluate`.
"""
from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from advlit.data import get_dataset
from advlit.data.toy import SLAB
from advlit.evaluate import evaluate
from advlit.methods import Batch, TrainContext, build_method
from advlit.models import MLP, Normalize
from advlit.utils import seed_everything

LOW, WIDTH = -2.0, 4.0  # u = (x - LOW) / WIDTH maps [-2, 2]^3 onto [0, 1]^3
TOY = dict(eps=0.1, alpha=0.05, steps=5, epochs=50, lr=0.5, momentum=0.9)  # PIAT, Sec. III-A


def to_unit(x: torch.Tensor) -> torch.Tensor:
    """Original toy features -> the [0, 1] box the attacks work in."""
    return (x - LOW) / WIDTH


def toy_data(split: str, eps: float = TOY["eps"]) -> tuple[torch.Tensor, torch.Tensor]:
    """``(u, y)`` of a ``circles3d`` split in [0, 1] units; fails if an eps-ball would be clipped."""
    x, y = get_dataset("circles3d", split).batch(torch.arange(len(get_dataset("circles3d", split))))
    if float(x.abs().max()) + eps >= -LOW:
        raise ValueError(f"toy features reach {float(x.abs().max()):.2f}: the eps-ball would leave the [0, 1] box")
    return to_unit(x), y


def toy_model(hidden: int = 64) -> nn.Module:
    """``Normalize`` (the inverse of :func:`to_unit`) followed by the one-hidden-layer MLP."""
    return nn.Sequential(Normalize([-LOW / WIDTH] * 3, [1.0 / WIDTH] * 3), MLP(3, 2, hidden))


@dataclass
class ToyRun:
    """One toy training run: per-epoch test metrics and model weights by epoch
    (``states[0]`` is the initial model, ``states[n]`` the model after epoch ``n``; a
    stored run keeps only the epochs around its largest robust-accuracy drops)."""

    spec: str
    seed: int
    history: list[dict] = field(default_factory=list)
    states: dict[int, dict] = field(default_factory=dict)

    def model(self, epoch: int) -> nn.Module:
        """The model as it was after ``epoch`` (0: at initialisation)."""
        state = self.states[epoch]
        model = toy_model(state["1.net.1.weight"].shape[0])
        model.load_state_dict(state)
        return model.eval()

    def to_json(self, keep_drops: int = 3) -> dict:
        """A JSON-able record: the history and the states before/after the largest drops."""
        keep = {e for d in sudden_drops(self.history, keep_drops) for e in (d - 1, d)}
        states = {str(e): {k: v.tolist() for k, v in self.states[e].items()} for e in sorted(keep)}
        return {"spec": self.spec, "seed": self.seed, "history": self.history, "states": states}

    @classmethod
    def from_json(cls, d: dict) -> "ToyRun":
        states = {int(e): {k: torch.tensor(v, dtype=torch.float32) for k, v in s.items()} for e, s in d["states"].items()}
        return cls(d["spec"], d["seed"], d["history"], states)


def train_toy(spec: str, seed: int = 0, epochs: int = TOY["epochs"], batch_size: int = 64, lr: float = TOY["lr"],
              weight_decay: float = 0.0, hidden: int = 64, eval_attack: str = "pgd-20", **method_args) -> ToyRun:
    """Train method ``spec`` (e.g. ``"piat+pgd_at"``) on the toy data; see the module docstring."""
    seed_everything(seed)
    eps_u, alpha_ratio = TOY["eps"] / WIDTH, TOY["alpha"] / TOY["eps"]
    x_train, y_train = toy_data("train")
    test = toy_data("test")
    train = _Indexed(x_train, y_train)
    model = toy_model(hidden)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=TOY["momentum"], weight_decay=weight_decay)
    method = build_method(spec, eps_u, alpha_ratio, **{"steps": TOY["steps"], **method_args})
    steps_per_epoch = -(-len(train.y) // batch_size)
    method.setup(model, optimizer, TrainContext(
        num_examples=len(train.y), input_shape=(3,), num_classes=2, epochs=epochs, steps_per_epoch=steps_per_epoch,
        device=torch.device("cpu"), lr_at=lambda t: lr, peak_lr=lr, momentum=TOY["momentum"],
        weight_decay=weight_decay, seed=seed))
    run = ToyRun(spec, seed, states={0: copy.deepcopy(model.state_dict())})
    for epoch in range(epochs):
        model.train()
        method.on_epoch_start(model, epoch)
        order = torch.randperm(len(train.y), generator=torch.Generator().manual_seed(1_000_003 * (seed + 1) + epoch))
        for i, start in enumerate(range(0, len(order), batch_size)):
            idx = order[start:start + batch_size]
            method.step(model, optimizer, Batch(train.x[idx], train.y[idx], idx, epoch=epoch,
                                                iteration=epoch * steps_per_epoch + i))
        hook = method.on_epoch_end(model, epoch) or {}
        res = evaluate(model, test, eps_u, attacks=["clean", eval_attack], seed=seed + epoch)
        run.history.append({"epoch": epoch + 1, "test_clean": res["clean"], "test_robust": res[eval_attack],
                             **{f"method_{k}": v for k, v in hook.items()}})
        run.states[epoch + 1] = copy.deepcopy(model.state_dict())
    return run


def toy_fingerprint(spec: str) -> str:
    """Fingerprint of the code a toy run depends on: the package core and ``spec``'s
    methods (:func:`advlit.results.code_fingerprint`) plus this module's data, model and
    training functions (the plotting helpers may change without invalidating runs)."""
    import inspect
    import textwrap

    from advlit.results import _code_only, code_fingerprint

    sources = [textwrap.dedent(inspect.getsource(f)) for f in (to_unit, toy_data, toy_model, train_toy)]
    own = hashlib.sha256((repr((LOW, WIDTH, TOY)) + "".join(_code_only(s) for s in sources)).encode()).hexdigest()
    return hashlib.sha256((code_fingerprint(spec) + own).encode()).hexdigest()[:12]


def toy_runs(spec: str, seeds=(0, 1, 2), results_dir=None, **kwargs) -> list[ToyRun]:
    """Train (or reload from ``<results_dir>/piat_toy/``) the toy run of ``spec`` for each seed.

    A stored run is reused only if it was made by the current code and the same arguments.
    """
    import json
    from pathlib import Path

    out = Path(results_dir) / "piat_toy" if results_dir is not None else None
    runs = []
    for seed in seeds:
        key = hashlib.sha256(json.dumps({"spec": spec, "seed": seed, **kwargs}, sort_keys=True).encode()).hexdigest()[:8]
        path = out / f"{spec.replace('+', '-')}_s{seed}_{key}.json" if out is not None else None
        code = toy_fingerprint(spec)
        if path is not None and path.exists():
            stored = json.loads(path.read_text())
            if stored.get("code") == code:
                runs.append(ToyRun.from_json(stored))
                continue
        run = train_toy(spec, seed=seed, **kwargs)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps({**run.to_json(), "code": code, "args": kwargs}, indent=None, default=float))
            run = ToyRun.from_json(json.loads(path.read_text()))  # the same object a later reload gives
        runs.append(run)
    return runs


@dataclass
class _Indexed:
    x: torch.Tensor
    y: torch.Tensor


def sudden_drops(history: list[dict], count: int = 3, key: str = "test_robust") -> list[int]:
    """The ``count`` epochs with the largest one-epoch fall of ``key`` (largest first)."""
    values = [r[key] for r in history]
    falls = [(values[i - 1] - values[i], history[i]["epoch"]) for i in range(1, len(values))]
    return [epoch for fall, epoch in sorted(falls, reverse=True)[:count] if fall > 0]


def boundary_grid(model: nn.Module, lim: float = 1.8, x3: float = sum(SLAB) / 2, n: int = 200):
    """Class-1 probability of ``model`` on an ``n x n`` grid of the (x1, x2) plane at height
    ``x3`` (original units); returns ``(x1, x2, p)`` as NumPy arrays for ``contour``."""
    axis = np.linspace(-lim, lim, n, dtype=np.float32)
    g1, g2 = np.meshgrid(axis, axis)
    points = torch.from_numpy(np.stack([g1.ravel(), g2.ravel(), np.full(g1.size, x3, np.float32)], 1))
    with torch.no_grad():
        p = torch.softmax(model.eval()(to_unit(points)), 1)[:, 1].numpy().reshape(g1.shape)
    return g1, g2, p


def plot_boundary_change(ax, run: ToyRun, epoch: int, points: int = 400, lim: float = 1.8):
    """PIAT Fig. 5: the decision boundary before (light, dashed) and after (dark) ``epoch``
    (1-based), over the first ``points`` test points in the (x1, x2) plane."""
    test = get_dataset("circles3d", "test")
    x, y = test.batch(torch.arange(min(points, len(test))))
    colors = np.where(y.numpy() == 0, "tab:red", "tab:blue")
    ax.scatter(x[:, 0], x[:, 1], c=colors, s=6, alpha=0.5, linewidths=0)
    for which, style in ((epoch - 1, dict(colors="0.6", linestyles="--")), (epoch, dict(colors="k"))):
        g1, g2, p = boundary_grid(run.model(which), lim)
        ax.contour(g1, g2, p, levels=[0.5], linewidths=1.5, **style)
    before, after = run.history[epoch - 2]["test_robust"] if epoch > 1 else float("nan"), run.history[epoch - 1]["test_robust"]
    ax.set_title(f"{run.spec}, epoch {epoch}: robust {before:.0f}% -> {after:.0f}%", fontsize=9)
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    return ax
