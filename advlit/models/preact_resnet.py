"""PreActResNet-18: the standard model of the fast adversarial training papers.

He, Zhang, Ren & Sun (2016), "Identity Mappings in Deep Residual Networks": each residual
block computes ``x + conv(relu(bn(conv(relu(bn(x))))))`` (batch norm and ReLU *before*
each convolution), so the skip path is a pure identity. The CIFAR variant used by Wong et
al. (2020, Fast-AT) and by ATAS, LAST, LAS-AT, FGSM-SDI/PGI and PIAT: a 3x3 stem with 64
channels and no pooling, four stages of two blocks (64, 128, 256, 512 channels; stride 2
from the second stage on), a final BN-ReLU, global average pooling, and a linear layer.
About 11.17 M parameters at 10 classes.

Global *adaptive* average pooling replaces the fixed 4x4 pool of the CIFAR code, so the
same network accepts 8x8 digits, 32x32 CIFAR and 64x64 Tiny ImageNet inputs.
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


class PreActBlock(nn.Module):
    """Pre-activation basic block; a 1x1 projection shortcut where the shape changes.

    As in the reference code, the projection shortcut takes the *activated* input
    ``relu(bn1(x))`` while the identity shortcut takes ``x`` itself.
    """

    def __init__(self, in_planes: int, planes: int, stride: int = 1):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.shortcut = None
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(x))
        skip = self.shortcut(out) if self.shortcut is not None else x
        out = self.conv1(out)
        out = self.conv2(F.relu(self.bn2(out)))
        return out + skip


class PreActResNet18(nn.Module):
    """PreActResNet-18 for ``in_channels``-channel images of any size >= 8x8.

    ``width`` is the number of channels of the stem and the first stage (the stages have
    ``width``, 2, 4 and 8 times ``width``); 64, the default, is the papers' network. A
    smaller width keeps the layers and the code path and divides the FLOPs by about
    ``(64 / width) ** 2`` (the smoke run of the chapters, :mod:`advlit.smoke`, uses 8).
    """

    stage_widths = (64, 128, 256, 512)
    blocks_per_stage = 2

    def __init__(self, in_channels: int = 3, num_classes: int = 10, width: int = 64):
        super().__init__()
        if int(width) < 1:
            raise ValueError(f"PreActResNet18 width must be a positive integer, got {width}")
        widths = tuple(int(width) * w // 64 for w in self.stage_widths)
        self.conv1 = nn.Conv2d(in_channels, widths[0], 3, stride=1, padding=1, bias=False)
        stages, in_planes = [], widths[0]
        for k, planes in enumerate(widths):
            blocks = []
            for b in range(self.blocks_per_stage):
                stride = 2 if (k > 0 and b == 0) else 1
                blocks.append(PreActBlock(in_planes, planes, stride))
                in_planes = planes
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.bn = nn.BatchNorm2d(in_planes)
        self.linear = nn.Linear(in_planes, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv1(x)
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        out = F.relu(self.bn(out))
        out = F.adaptive_avg_pool2d(out, 1).flatten(1)
        return self.linear(out)
