"""AutoAttack (Croce & Hein 2020) through the PyPI package ``pyautoattack`` 0.2.0.

``version="standard"`` is the full ensemble (APGD-CE, APGD-T, FAB-T, Square);
``version="fast"`` is the custom subset APGD-CE + APGD-T that the book uses on CPU,
where FAB-T takes minutes even for a tiny model; ``version="apgd-ce"`` is APGD-CE alone
with the standard version's settings (100 iterations, 1 restart; Croce & Hein 2020,
Sec. 3), the "APGD" column of FGSM-SDI's Table IV. Every result table names the version.
"""
from __future__ import annotations

import logging

import torch
from torch import Tensor, nn

from advlit.attacks.utils import eval_mode
from advlit.utils import ConfigError

VERSIONS = ("standard", "fast", "apgd-ce")


def autoattack(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    eps: float,
    version: str = "standard",
    seed: int = 0,
    batch_size: int = 500,
) -> Tensor:
    """Return AutoAttack's adversarial examples for ``(x, y)`` (model put in eval mode)."""
    if version not in VERSIONS:
        raise ConfigError(f"unknown AutoAttack version {version!r}; choose from {', '.join(VERSIONS)}")
    try:
        from pyautoattack import AutoAttack
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ConfigError("AutoAttack needs the package pyautoattack==0.2.0 (pip install 'advlit[attack]')") from err
    logging.getLogger("auto-attack").setLevel(logging.WARNING)
    kwargs = dict(norm="Linf", eps=float(eps), device=str(x.device), seed=seed)
    if version == "fast":
        kwargs.update(version="custom", attacks=["apgd-ce", "apgd-t"])
    elif version == "apgd-ce":
        kwargs.update(version="custom", attacks=["apgd-ce"])
    else:
        kwargs.update(version="standard")
    with eval_mode(model):
        adversary = AutoAttack(model, **kwargs)
        if version == "apgd-ce":  # the standard version's APGD-CE (a custom one has 5 restarts)
            adversary.apgd.n_restarts, adversary.apgd.n_iter = 1, 100
        x_adv, _ = adversary.run_standard_evaluation(x, y, batch_size=batch_size)
    return x_adv.detach()
