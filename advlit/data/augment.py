"""Random crop + horizontal flip, drawn per batch and replayable on stored perturbations.

The standard CIFAR training augmentation (zero-pad by ``pad`` pixels, crop a random
``H x W`` window, flip horizontally with probability 1/2) is usually applied inside a
``DataLoader``, where the trainer never sees which crop an example got. Methods that keep
a perturbation per training example need to see it: ATAS (Huang et al. 2022) stores each
example's perturbation on the *padded* ``(H + 2 pad) x (W + 2 pad)`` canvas, crops and
flips it exactly like the image, runs its attack on the augmented view, and writes the new
perturbation back into the crop window (official code: ``data_aug.py`` of
HuangZhiChao95/ATAS). :class:`Augmentation` makes the transform an explicit value:

    aug = Augmentation.sample(B, pad=4, flip=True, generator=g, device=x.device)
    x_view = aug.apply(x)                                   # what the model trains on
    delta_view = aug.crop_canvas(delta_canvas[idx])         # the same window, the same flip
    ...                                                     # attack x_view + delta_view
    delta_canvas[idx] = aug.write_canvas(delta_canvas[idx], new_delta_view)

Every operation is one advanced-indexing gather or scatter over the batch, so it runs on
the GPU without a Python loop over examples.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor


@dataclass
class Augmentation:
    """Per-example crop offsets and flip flags for one batch.

    ``top[b]`` and ``left[b]`` are the corner of example ``b``'s window on the padded
    canvas, in ``{0, ..., 2 pad}`` (``pad`` means the un-shifted image); ``flip[b]`` says
    whether the window is mirrored left-right after cropping.
    """

    top: Tensor
    left: Tensor
    flip: Tensor
    pad: int

    @classmethod
    def sample(
        cls,
        n: int,
        pad: int,
        flip: bool,
        generator: torch.Generator,
        device=None,
    ) -> "Augmentation":
        """Draw offsets uniformly in ``{0..2 pad}`` and flips ~ Bernoulli(1/2) (if ``flip``).

        The draws happen on the CPU with ``generator`` (so a seeded run gives the same
        augmentations on any device) and are then moved to ``device``. The generator is
        advanced by the same amount whether or not ``flip`` is set.
        """
        top = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
        left = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
        coins = torch.rand(n, generator=generator) < 0.5
        flips = coins if flip else torch.zeros(n, dtype=torch.bool)
        return cls(top, left, flips, pad).to(device)

    @staticmethod
    def identity(n: int, pad: int, device=None) -> "Augmentation":
        """The centred window without flip: :meth:`apply` returns its input unchanged."""
        centre = torch.full((n,), pad, dtype=torch.long)
        return Augmentation(centre, centre.clone(), torch.zeros(n, dtype=torch.bool), pad).to(
            device
        )

    def to(self, device) -> "Augmentation":
        """The same augmentation with its index tensors on ``device`` (``None``: unchanged)."""
        if device is None:
            return self
        return Augmentation(self.top.to(device), self.left.to(device), self.flip.to(device), self.pad)

    def __len__(self) -> int:
        return self.top.shape[0]

    def pad_to_canvas(self, x: Tensor) -> Tensor:
        """Zero-pad ``(B, C, H, W)`` by ``pad`` on every side -> ``(B, C, H + 2p, W + 2p)``."""
        p = self.pad
        return F.pad(x, (p, p, p, p)) if p > 0 else x

    def apply(self, x: Tensor) -> Tensor:
        """Augment a batch ``(B, C, H, W)``: zero-pad, crop the ``H x W`` window, flip."""
        return self.crop_canvas(self.pad_to_canvas(x))

    def crop_canvas(self, canvas: Tensor) -> Tensor:
        """Read each example's (flipped) window from an already padded canvas."""
        return canvas[self._window_index(canvas)]

    def write_canvas(self, canvas: Tensor, values: Tensor) -> Tensor:
        """Inverse of :meth:`crop_canvas`: un-flip ``values`` and store them in the windows.

        Writes in place into ``canvas`` (outside the windows nothing changes) and returns
        it. ``crop_canvas(write_canvas(canvas, v)) == v``. Values are written as given:
        detach them first when ``canvas`` is a stored perturbation buffer.
        """
        index = self._window_index(canvas)
        canvas[index] = values.to(canvas.dtype)
        return canvas

    def _window_index(self, canvas: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Advanced-indexing tuple selecting ``(B, C, H, W)`` windows of ``canvas``.

        Output pixel ``(b, c, i, j)`` comes from canvas pixel
        ``(b, c, top[b] + i, left[b] + j')`` with ``j' = W - 1 - j`` where ``flip[b]``
        (a mirrored crop) and ``j' = j`` otherwise. The same tuple used as a write target
        places each value back where :meth:`crop_canvas` read it, which un-flips it.
        """
        if canvas.dim() != 4:
            raise ValueError(f"expected a (B, C, H, W) batch, got shape {tuple(canvas.shape)}")
        batch, channels, canvas_h, canvas_w = canvas.shape
        if batch != len(self):
            raise ValueError(f"augmentation drawn for {len(self)} examples, batch has {batch}")
        height, width = canvas_h - 2 * self.pad, canvas_w - 2 * self.pad
        device = canvas.device
        top, left, flip = self.top.to(device), self.left.to(device), self.flip.to(device)
        rows = top[:, None] + torch.arange(height, device=device)  # (B, H)
        cols_forward = torch.arange(width, device=device)
        cols = torch.where(flip[:, None], cols_forward.flip(0), cols_forward) + left[:, None]
        examples = torch.arange(batch, device=device)
        return (
            examples[:, None, None, None],
            torch.arange(channels, device=device)[None, :, None, None],
            rows[:, None, :, None],
            cols[:, None, None, :],
        )
