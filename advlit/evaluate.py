"""One-call robustness evaluation: clean, FGSM, PGD-k (restarts), C&W, APGD-CE, AutoAttack.

    >>> from advlit.evaluate import evaluate
    >>> evaluate(model, test_set, eps=8/255, attacks=["clean", "pgd-10", "pgd-50x10", "cw-20", "aa"])
    {'clean': 83.1, 'pgd-10': 47.2, ...}

Attack names: ``clean``; ``fgsm``; ``pgd-K`` / ``pgd-KxR`` (K steps, R restarts);
``cw-K`` / ``cw-KxR`` (PGD on the C&W margin loss); ``aa`` (standard AutoAttack) and
``aa-fast`` (APGD-CE + APGD-T); ``apgd-ce`` (AutoAttack's APGD-CE alone, as in the
standard version: 100 iterations, 1 restart; Croce & Hein 2020, Sec. 3). PGD step size
is ``alpha_ratio * eps`` (default eps / 4, i.e. 2/255 at 8/255). Accuracies are
percentages. The model is put in eval mode and its mode is restored afterwards;
randomness is seeded and isolated from the caller's RNG, and
each attack draws its random starts from its own seed (:func:`attack_seed`), so an attack's
accuracy does not depend on which other attacks are evaluated with it.

:func:`evaluate_eps_ratios` runs attacks at multiples ``r * eps`` of the budget (LAST's
Table I: trained at 8/255, evaluated at 8/255 and 16/255); their results are keyed
``"<attack>@<r>eps"`` (:func:`eps_ratio_key`, e.g. ``"pgd-20@2eps"``).
"""
from __future__ import annotations

import re
import zlib
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from advlit.attacks import autoattack, eval_mode, fgsm, pgd
from advlit.utils import ConfigError, format_eps

_PGD = re.compile(r"^(pgd|cw)-(\d+)(?:x(\d+))?$")


@dataclass(frozen=True)
class AttackSpec:
    """A parsed attack name."""

    name: str
    kind: str  # clean | fgsm | pgd | aa (every pyautoattack attack, run on the AutoAttack subset)
    steps: int = 0
    restarts: int = 1
    loss: str = "ce"
    version: str = "standard"  # of advlit.attacks.autoattack: standard, fast or apgd-ce


def parse_attack(name: str) -> AttackSpec:
    """Parse an attack name (see the module docstring); unknown names raise ConfigError."""
    if name in ("clean", "fgsm"):
        return AttackSpec(name, name)
    if name in ("aa", "aa-fast"):
        return AttackSpec(name, "aa", version="fast" if name == "aa-fast" else "standard")
    if name == "apgd-ce":
        return AttackSpec(name, "aa", version="apgd-ce")
    m = _PGD.match(name)
    if m:
        loss = "cw" if m.group(1) == "cw" else "ce"
        return AttackSpec(name, "pgd", steps=int(m.group(2)), restarts=int(m.group(3) or 1), loss=loss)
    raise ConfigError(f"unknown attack {name!r}; use clean, fgsm, pgd-K, pgd-KxR, cw-K, cw-KxR, apgd-ce, aa "
                      "or aa-fast")


def attack_seed(seed: int, attack: str, start: int) -> int:
    """The seed of one attack on the batch that begins at example ``start``: a function of
    the evaluation seed, the attack's name and the batch only."""
    return (seed * 1_000_003 + zlib.crc32(attack.encode()) + 7_919 * start) % 2**63


def attack_batch(model: nn.Module, x: Tensor, y: Tensor, spec: AttackSpec, eps: float, alpha: float, seed: int) -> Tensor:
    """The adversarial version of one batch under ``spec`` (model assumed in eval mode)."""
    if spec.kind == "clean":
        return x
    if spec.kind == "fgsm":
        return fgsm(model, x, y, eps, eps, init="zero")
    if spec.kind == "pgd":
        return pgd(model, x, y, eps, alpha, spec.steps, random_start=True, restarts=spec.restarts, loss=spec.loss)
    return autoattack(model, x, y, eps, version=spec.version, seed=seed, batch_size=len(x))


def _as_tensors(data, subset: int | None, device) -> tuple[Tensor, Tensor]:
    if isinstance(data, (tuple, list)):
        x, y = data
    else:  # an advlit IndexedDataset
        x, y = data.batch(torch.arange(len(data)))
    if subset is not None and subset < len(x):
        x, y = x[:subset], y[:subset]
    return x.to(device), y.to(device)


def evaluate(
    model: nn.Module,
    data,
    eps: float,
    attacks=("clean", "pgd-10"),
    alpha_ratio: float = 0.25,
    batch_size: int = 512,
    subset: int | None = None,
    seed: int = 0,
    device=None,
) -> dict[str, float]:
    """Accuracy (%) of ``model`` on ``data`` under each attack in ``attacks``.

    ``data`` is an :class:`advlit.data.IndexedDataset` or a tuple ``(x, y)``; ``subset``
    keeps its first ``subset`` examples (the datasets' order is fixed, so the subset is too).
    """
    specs = [parse_attack(a) for a in attacks]
    device = device or next(model.parameters()).device
    x_all, y_all = _as_tensors(data, subset, device)
    alpha = alpha_ratio * eps
    correct = {s.name: 0 for s in specs}
    with eval_mode(model), torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        for start in range(0, len(x_all), batch_size):
            x, y = x_all[start:start + batch_size], y_all[start:start + batch_size]
            for spec in specs:
                torch.manual_seed(attack_seed(seed, spec.name, start))
                x_adv = attack_batch(model, x, y, spec, eps, alpha, seed)
                with torch.no_grad():
                    correct[spec.name] += (model(x_adv).argmax(1) == y).sum().item()
    n = len(x_all)
    return {name: 100.0 * c / n for name, c in correct.items()}


def eps_ratio_key(attack: str, ratio: float) -> str:
    """The result key of ``attack`` run at ``ratio * eps``: ``eps_ratio_key("pgd-20", 2.0)``
    is ``"pgd-20@2eps"`` (the ratio written with ``:g``)."""
    return f"{attack}@{ratio:g}eps"


def split_eps_ratio_key(key: str) -> tuple[str, float | None]:
    """The inverse of :func:`eps_ratio_key`: ``"pgd-20@2eps"`` -> ``("pgd-20", 2.0)``,
    ``"pgd-20"`` -> ``("pgd-20", None)``."""
    attack, sep, budget = key.partition("@")
    return attack, (float(budget.removesuffix("eps")) if sep else None)


def evaluate_eps_ratios(model: nn.Module, data, eps: float, ratios, attacks, **kwargs) -> dict[str, float]:
    """:func:`evaluate` at each budget ``r * eps`` (``r`` in ``ratios``), keyed
    :func:`eps_ratio_key`; ``clean`` is left out (it does not depend on eps). The other
    arguments are :func:`evaluate`'s, so the step is ``alpha_ratio * r * eps`` and each
    attack draws the random starts it draws at ``eps`` (same name, same seed)."""
    attacks = [a for a in attacks if a != "clean"]
    out: dict[str, float] = {}
    for r in ratios if attacks else ():
        res = evaluate(model, data, eps * r, attacks=attacks, **kwargs)
        out.update({eps_ratio_key(a, r): acc for a, acc in res.items()})
    return out


def format_table(rows: dict[str, dict[str, float]], eps: float | None = None, digits: int = 1) -> str:
    """A plain-text table: one row per model, one column per attack."""
    if not rows:
        return ""
    columns = list(next(iter(rows.values())).keys())
    head = ["model"] + columns
    body = [[name] + [f"{r[c]:.{digits}f}" for c in columns] for name, r in rows.items()]
    widths = [max(len(str(row[i])) for row in [head] + body) for i in range(len(head))]
    lines = ["  ".join(str(v).rjust(w) if i else str(v).ljust(w) for i, (v, w) in enumerate(zip(row, widths)))
             for row in [head] + body]
    title = f"accuracy (%) at eps = {format_eps(eps)}" if eps is not None else "accuracy (%)"
    return "\n".join([title, lines[0], "-" * len(lines[0]), *lines[1:]])
