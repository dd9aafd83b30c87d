"""Transfer (black-box) attacks between trained models (LAST, Fig. 8).

Adversarial examples are crafted on a *source* model and evaluated on a *target* model;
the diagonal is the white-box robust accuracy. LAST, Fig. 8 uses PGD-10 at 8/255 between
models trained by Fast-AT, Fast-AT-GA, Fast-BAT, PGD-AT and their LAST versions.
"""
from __future__ import annotations

import torch
from torch import nn

from advlit.attacks import eval_mode
from advlit.evaluate import attack_batch, parse_attack

__all__ = ["transfer_grid"]


def transfer_grid(models: dict[str, nn.Module], x: torch.Tensor, y: torch.Tensor, eps: float, attack: str = "pgd-10",
                  alpha_ratio: float = 0.25, seed: int = 0):
    """Robust accuracy (%) of every target model (columns) on ``attack`` examples crafted on
    every source model (rows), as a pandas DataFrame. Seeded; models in eval mode."""
    import pandas as pd

    spec = parse_attack(attack)
    rows = {}
    for src_name, source in models.items():
        with eval_mode(source), torch.random.fork_rng():
            torch.manual_seed(seed)
            x_adv = attack_batch(source, x, y, spec, eps, alpha_ratio * eps, seed)
        row = {}
        for tgt_name, target in models.items():
            with eval_mode(target), torch.no_grad():
                row[tgt_name] = 100.0 * (target(x_adv).argmax(1) == y).float().mean().item()
        rows[src_name] = row
    df = pd.DataFrame.from_dict(rows, orient="index")
    df.index.name = "source \\ target"
    return df
