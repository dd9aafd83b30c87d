"""Shared test helpers: a tiny run configuration and a quickly trained digits model."""
from __future__ import annotations

import torch

from advlit.config import RunConfig


def tiny_config(**overrides) -> RunConfig:
    """A run that takes about a second: digits16, 2 epochs, small validation and test."""
    base = dict(method="fgsm_rs", dataset="digits16", eps=0.2, alpha_ratio=1.25, epochs=2, batch_size=128,
                val_subset=64, final_attacks=["clean", "fgsm", "pgd-5"], final_subset=64)
    base.update(overrides)
    return RunConfig(**base)


def same_state(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def strip_times(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "seconds"} for row in history]
