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


def straight_and_resumed(cfg: RunConfig, tmp_path, stop_after: int):
    """Train ``cfg`` once uninterrupted and once stopped after ``stop_after`` epochs and
    resumed by a fresh trainer (with the global RNG disturbed, as a new process would be).
    Asserts that the two runs agree bit for bit; returns both trainers for further checks."""
    from advlit.train import Trainer

    straight = Trainer(cfg, progress=False)
    rec_a = straight.fit(tmp_path / "straight")
    partial = Trainer(cfg, progress=False).fit(tmp_path / "interrupted", stop_after=stop_after)
    assert partial["epochs_done"] == stop_after and not partial["complete"]
    torch.manual_seed(12345)
    resumed = Trainer(cfg, progress=False)
    rec_b = resumed.fit(tmp_path / "interrupted", resume=True)
    assert strip_times(rec_a["history"]) == strip_times(rec_b["history"])
    assert rec_a["final"] == rec_b["final"]
    assert same_state(straight.model.state_dict(), resumed.model.state_dict())
    return straight, resumed
