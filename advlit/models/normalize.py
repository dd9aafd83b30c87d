"""Per-channel standardisation as the model's first layer.

The fast-AT papers normalise CIFAR inputs with the dataset mean and standard deviation,
but every attack and every stored perturbation in advlit works in *pixel* space ([0, 1],
where eps = 8/255 is defined; see METHODS.md, "Common protocol"). Putting the
normalisation inside the model keeps both true: callers pass pixels, the network sees
``(x - mean) / std``, and gradients with respect to the input are pixel-space gradients.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn


class Normalize(nn.Module):
    """``(x - mean) / std`` over dimension 1 (channels of images, features of vectors).

    ``mean`` and ``std`` have one entry per channel; they are buffers (saved in the
    state dict, moved with ``.to(device)``, never trained).
    """

    def __init__(self, mean: Sequence[float], std: Sequence[float]):
        super().__init__()
        mean_t = torch.as_tensor(mean, dtype=torch.float32).flatten()
        std_t = torch.as_tensor(std, dtype=torch.float32).flatten()
        if mean_t.shape != std_t.shape:
            raise ValueError(f"mean and std differ in length: {len(mean_t)} vs {len(std_t)}")
        if bool((std_t <= 0).any()):
            raise ValueError(f"std must be positive, got {std_t.tolist()}")
        self.register_buffer("mean", mean_t)
        self.register_buffer("std", std_t)

    def forward(self, x: Tensor) -> Tensor:
        shape = (1, -1) + (1,) * (x.dim() - 2)
        return (x - self.mean.view(shape)) / self.std.view(shape)

    def extra_repr(self) -> str:
        mean = tuple(round(v, 4) for v in self.mean.tolist())
        std = tuple(round(v, 4) for v in self.std.tolist())
        return f"mean={mean}, std={std}"
