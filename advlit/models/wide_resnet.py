"""Wide residual networks (Zagoruyko & Komodakis 2016), CIFAR variant of robustness papers.

WRN-d-w has a 3x3 stem with 16 channels and three groups of ``n = (d - 4) / 6``
pre-activation basic blocks with ``16 w``, ``32 w`` and ``64 w`` channels (strides 1, 2,
2), then BN-ReLU, global average pooling and a linear layer. WRN-34-10 (46.2 M
parameters) is the large model of the LAS-AT, FGSM-PGI and PIAT tables (and of TRADES,
AWP, Rice et al.); dropout is 0 as in those papers.

Where the number of channels changes, the block activates its input once and feeds
``relu(bn(x))`` to both the first convolution and the 1x1 projection shortcut (as the
reference WRN code does); otherwise the shortcut is the identity on ``x``. Convolutions
use He (fan-out) initialisation, BN weights 1 and biases 0, the linear bias 0, as in that
code. Adaptive pooling lets the network take any input of at least 8x8.
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


class WideBasicBlock(nn.Module):
    """BN-ReLU-conv3x3-BN-ReLU-(dropout)-conv3x3, plus identity or 1x1 projection."""

    def __init__(self, in_planes: int, planes: int, stride: int, dropout: float = 0.0):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.dropout = dropout
        self.shortcut = None
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        activated = F.relu(self.bn1(x))
        skip = x if self.shortcut is None else self.shortcut(activated)
        out = F.relu(self.bn2(self.conv1(activated)))
        if self.dropout > 0:
            out = F.dropout(out, p=self.dropout, training=self.training)
        return self.conv2(out) + skip


class WideResNet(nn.Module):
    """WRN-``depth``-``width`` for ``in_channels``-channel images; ``depth = 6 n + 4``."""

    def __init__(
        self,
        depth: int = 34,
        width: int = 10,
        in_channels: int = 3,
        num_classes: int = 10,
        dropout: float = 0.0,
    ):
        super().__init__()
        if depth < 10 or (depth - 4) % 6 != 0:
            raise ValueError(
                f"WideResNet depth must be 6n + 4 with n >= 1 (10, 16, 22, 28, 34, ...), got {depth}"
            )
        if width < 1:
            raise ValueError(f"WideResNet width must be a positive integer, got {width}")
        blocks_per_group = (depth - 4) // 6
        widths = (16 * width, 32 * width, 64 * width)
        self.conv1 = nn.Conv2d(in_channels, 16, 3, stride=1, padding=1, bias=False)
        groups, in_planes = [], 16
        for k, planes in enumerate(widths):
            blocks = []
            for b in range(blocks_per_group):
                stride = 2 if (k > 0 and b == 0) else 1
                blocks.append(WideBasicBlock(in_planes, planes, stride, dropout))
                in_planes = planes
            groups.append(nn.Sequential(*blocks))
        self.block1, self.block2, self.block3 = groups
        self.bn = nn.BatchNorm2d(in_planes)
        self.linear = nn.Linear(in_planes, num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Linear):
                nn.init.zeros_(module.bias)

    def forward(self, x: Tensor) -> Tensor:
        out = self.block3(self.block2(self.block1(self.conv1(x))))
        out = F.relu(self.bn(out))
        out = F.adaptive_avg_pool2d(out, 1).flatten(1)
        return self.linear(out)
