"""A configurable plain CNN: the family the CPU stand-in is chosen from (issue 14).

``ConvNet(channels=(c1, c2, ...), pools=(p1, p2, ...), hidden=h)`` stacks one stage per
entry of ``channels``: a 3x3 convolution (padding 1) with ``c_i`` output channels, a ReLU
and, where ``p_i`` is true, a 2x2 max-pool; then a ``h``-unit hidden layer (ReLU) and the
output layer. ``channels=(32, 64), pools=(True, True), hidden=128`` is
:class:`~advlit.models.small_cnn.SmallCNN` layer for layer, with the same parameter names,
so a SmallCNN ``state_dict`` loads into it and both compute the same function.

Like SmallCNN it has **no BatchNorm**, for the same two reasons: the small CNN without
BatchNorm is the model on which FGSM training at a large step collapses (catastrophic
overfitting) within a few epochs on ``digits16``, which the chapters need to show; and
without BatchNorm train and eval modes compute the same function, so whether a method
crafts its attacks in train or in eval mode cannot change what the attack sees.

The pooling layout sets the cost and the capacity: with one pool after the second
convolution only (``pools=(False, True)``) the second convolution runs at full
resolution and the hidden layer sees ``c2 x H/2 x W/2`` features: about 4x the
multiply-adds of the layout with two pools at the same widths (5.3 M against 1.4 M per
16x16 image at widths 32 and 64).
"""
from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn


class ConvNet(nn.Module):
    """conv(c1)-ReLU[-pool]-conv(c2)-ReLU[-pool]-...-FC(hidden)-ReLU-FC(classes).

    ``input_size`` is ``H`` (square) or ``(H, W)``. Each pool halves a side (rounding
    down, as :class:`torch.nn.MaxPool2d` does), so the flattened size is
    ``channels[-1] * H' * W'`` with ``H'`` the height after the pools: 16x16 gives
    ``64 * 4 * 4 = 1024`` with two pools and ``64 * 8 * 8 = 4096`` with one.
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10, input_size: int | tuple = 16,
                 channels: Sequence[int] = (32, 64), pools: Sequence[bool] = (True, True), hidden: int = 128):
        super().__init__()
        height, width = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
        channels, pools = tuple(channels), tuple(pools)
        if not channels or any(isinstance(c, bool) or not isinstance(c, int) or c < 1 for c in channels):
            raise ValueError(f"channels must be a non-empty sequence of positive integers, got {channels}")
        if len(pools) != len(channels) or any(not isinstance(p, bool) for p in pools):
            raise ValueError(f"pools must hold one true/false per stage ({len(channels)} stages), got {pools}")
        if isinstance(hidden, bool) or not isinstance(hidden, int) or hidden < 1:
            raise ValueError(f"hidden must be a positive integer, got {hidden}")
        layers: list[nn.Module] = []
        previous, h, w = in_channels, height, width
        for c, pool in zip(channels, pools):
            layers += [nn.Conv2d(previous, c, 3, padding=1), nn.ReLU()]
            if pool:
                if h < 2 or w < 2:
                    raise ValueError(f"ConvNet with pools {pools} needs larger inputs than {height}x{width}")
                layers.append(nn.MaxPool2d(2))
                h, w = h // 2, w // 2
            previous = c
        self.channels, self.pools, self.hidden = channels, pools, hidden
        self.flat_features = previous * h * w
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(self.flat_features, hidden),
            nn.ReLU(),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x))
