"""The small CNN used on the digits: the CPU stand-in for PreActResNet-18.

Two 3x3 convolutions (32 and 64 channels, ReLU, each followed by a 2x2 max-pool), then a
128-unit hidden layer. It deliberately has **no BatchNorm**: this is the model on which
FGSM training at large eps shows catastrophic overfitting within a few epochs on
``digits16``, and without BatchNorm train and eval modes compute the same function, so
the attack mode (train or eval) of a method cannot change what it sees. About 0.16 GMAC
per 128-image batch at 16x16, so an FGSM epoch on digits16 takes about a second on one core.
"""
from __future__ import annotations

from torch import Tensor, nn


class SmallCNN(nn.Module):
    """conv(32)-ReLU-pool-conv(64)-ReLU-pool-FC(128)-ReLU-FC(classes).

    ``input_size`` is ``H`` (square) or ``(H, W)``; the flattened size is
    ``64 * (H // 4) * (W // 4)`` (8x8 -> 256, 16x16 -> 1024, 32x32 -> 4096).
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10, input_size: int | tuple = 8):
        super().__init__()
        height, width = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
        if height < 4 or width < 4:
            raise ValueError(f"SmallCNN needs inputs of at least 4x4, got {height}x{width}")
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(64 * (height // 4) * (width // 4), 128),
            nn.ReLU(),
            nn.Linear(128, num_classes),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x))
