"""The strategy network of LAS-AT (Jia et al., CVPR 2022, Sec. 3.2) and its REINFORCE update.

The strategy network reads a clean image and outputs one categorical distribution per
attack parameter ("head"): the perturbation budget eps, the step size and the number of
iterations (and, for LAS-TRADES, the TRADES beta). A strategy ``a`` is one sample per head,
per example, from ``p(a | x; theta)`` (LAS-AT, Eq. 4). The heads are independent given
``x``, so ``log p(a | x) = sum_h log p_h(a_h | x)``.

The attack is not differentiable in ``a`` (choosing an iteration count has no gradient),
so theta is trained with the likelihood-ratio (REINFORCE, Williams 1992) estimator of
LAS-AT, Eqs. 11-12:

    grad_theta J = E_a [ L0 * grad_theta log p(a | x; theta) ]
                 ~ 1/N sum_n L0(x_n) grad_theta log p(a_n | x_n; theta),

and gradient *ascent* on J (Eq. 13), implemented as descent on ``-mean(L0 * log p)``.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from advlit.utils import ConfigError


class StrategyNet(nn.Module):
    """A feature extractor followed by one linear head per attack parameter.

    ``heads`` maps a head name to its number of options. ``backbone="small_cnn"`` (the cpu
    profile's choice: two 3x3 convolutions and a 64-unit layer) or ``"resnet18"`` (the
    paper's strategy network, LAS-AT Sec. 4.1; the backbone's classifier then produces a
    ``feature_dim`` vector).
    """

    def __init__(self, input_shape: tuple, heads: dict[str, int], backbone: str = "resnet18", feature_dim: int = 64):
        super().__init__()
        if not heads:
            raise ConfigError("the strategy network needs at least one head")
        self.backbone = _backbone(backbone, tuple(input_shape), feature_dim)
        self.heads = nn.ModuleDict({name: nn.Linear(feature_dim, n) for name, n in heads.items()})

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        """Logits of every head, each ``(B, options)``."""
        features = torch.relu(self.backbone(x))
        return {name: head(features) for name, head in self.heads.items()}


def _backbone(name: str, input_shape: tuple, feature_dim: int) -> nn.Module:
    channels = int(input_shape[0])
    if name == "small_cnn":
        h, w = (int(input_shape[1]), int(input_shape[2])) if len(input_shape) == 3 else (1, 1)
        return nn.Sequential(
            nn.Conv2d(channels, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(32 * (h // 4) * (w // 4), feature_dim),
        )
    if name == "resnet18":
        from advlit.models import ResNet18

        return ResNet18(in_channels=channels, num_classes=feature_dim)
    raise ConfigError(f"unknown strategy backbone {name!r}; choose 'small_cnn' or 'resnet18'")


def sample_strategy(logits: dict[str, Tensor], generator: torch.Generator | None = None) -> tuple[dict[str, Tensor], Tensor]:
    """Sample one option index per head and example; return ``(indices, log p(a | x))``.

    ``log p`` is the sum over heads of each head's log-probability (independent heads), of
    shape ``(B,)``; it carries the graph back to the strategy network.
    """
    indices, logp = {}, 0.0
    for name, z in logits.items():
        log_probs = torch.log_softmax(z, dim=1)
        probs = log_probs.detach().exp()
        idx = torch.multinomial(probs, 1, generator=generator).squeeze(1)
        indices[name] = idx
        logp = logp + log_probs.gather(1, idx[:, None]).squeeze(1)
    return indices, logp


def reinforce_loss(logp: Tensor, reward: Tensor) -> Tensor:
    """Descent form of LAS-AT Eq. 12: ``-mean_n( L0_n * log p(a_n | x_n) )``.

    Minimising it is gradient ascent on ``J`` (Eq. 13). ``reward`` (``L0`` per example, shape
    ``(B,)``, or one value for the whole batch, a scalar, as in the authors' code) is treated
    as a constant. Summing the heads' log-probabilities before the product equals the code's
    sum over heads of ``mean(-log p_h * L0)``.
    """
    return -(reward.detach() * logp).mean()


def histogram(indices: Tensor, options: int) -> list[int]:
    """Counts of each option index (a JSON-able list of ints)."""
    return torch.bincount(indices.reshape(-1).cpu(), minlength=options).tolist()
