"""Per-example attack losses."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from advlit.utils import ConfigError


def cross_entropy(logits: Tensor, y: Tensor) -> Tensor:
    """Per-example cross-entropy, shape ``(B,)``."""
    return F.cross_entropy(logits, y, reduction="none")


def cw_margin(logits: Tensor, y: Tensor) -> Tensor:
    """Carlini-Wagner margin loss ``max_{j != y} z_j - z_y`` (Carlini & Wagner 2017, Eq. 6
    with kappa = infinity), per example. Positive means misclassified."""
    true = logits.gather(1, y[:, None]).squeeze(1)
    others = logits.masked_fill(F.one_hot(y, logits.size(1)).bool(), float("-inf"))
    return others.max(1).values - true


ATTACK_LOSSES = {"ce": cross_entropy, "cw": cw_margin}


def get_attack_loss(name: str):
    if name not in ATTACK_LOSSES:
        raise ConfigError(f"unknown attack loss {name!r}; choose from {', '.join(ATTACK_LOSSES)}")
    return ATTACK_LOSSES[name]
