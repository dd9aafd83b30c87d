"""One-hidden-layer perceptron: PIAT's model for its 3-D toy data.

PIAT (Section III-A) trains "a single hidden layer of MLP" on the concentric-circles data
but does not give its width. We use 64 ReLU units by default: enough to carve a circular
boundary in the (x1, x2) plane with room to spare, small enough to train in a second and
to draw its decision boundary every epoch.
"""
from __future__ import annotations

from torch import Tensor, nn

DEFAULT_HIDDEN = 64


class MLP(nn.Module):
    """``Linear(in, hidden) - ReLU - Linear(hidden, classes)``; inputs are flattened to (B, D)."""

    def __init__(self, in_features: int, num_classes: int, hidden: int = DEFAULT_HIDDEN):
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(),
            nn.Linear(in_features, hidden),
            nn.ReLU(),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)
