"""ResNet-18 in its CIFAR form (He, Zhang, Ren & Sun 2016, "Deep Residual Learning").

Post-activation basic blocks ``relu(bn(conv(relu(bn(conv(x))))) + shortcut(x))`` with
batch-normalised 1x1 projection shortcuts, a 3x3 stem with 64 channels and no max-pool
(32x32 inputs), four stages of two blocks (64, 128, 256, 512), global average pooling
and a linear layer: about 11.17 M parameters at 10 classes. It is the target model of
some LAS-AT / FGSM-SDI tables and the architecture of LAS-AT's strategy network.
Adaptive average pooling lets it take any input of at least 8x8.
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with BN; ReLU after the residual sum."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False),
                nn.BatchNorm2d(planes),
            )

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet18(nn.Module):
    """ResNet-18 for ``in_channels``-channel images of any size >= 8x8.

    ``width``: channels of the stem and the first stage (stages ``width`` x 1, 2, 4, 8);
    64, the default, is the papers' network (see :class:`PreActResNet18`).
    """

    stage_widths = (64, 128, 256, 512)
    blocks_per_stage = 2

    def __init__(self, in_channels: int = 3, num_classes: int = 10, width: int = 64):
        super().__init__()
        if int(width) < 1:
            raise ValueError(f"ResNet18 width must be a positive integer, got {width}")
        widths = tuple(int(width) * w // 64 for w in self.stage_widths)
        self.conv1 = nn.Conv2d(in_channels, widths[0], 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        stages, in_planes = [], widths[0]
        for k, planes in enumerate(widths):
            blocks = []
            for b in range(self.blocks_per_stage):
                blocks.append(BasicBlock(in_planes, planes, 2 if (k > 0 and b == 0) else 1))
                in_planes = planes
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.linear = nn.Linear(in_planes, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        out = F.adaptive_avg_pool2d(out, 1).flatten(1)
        return self.linear(out)
