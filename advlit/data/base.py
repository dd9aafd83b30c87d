"""The in-memory dataset every trainer, attack and analysis in advlit consumes.

All datasets of the package are small enough (or, for the vision sets, stored compactly
enough as uint8) to live in memory as two tensors, so a batch is one indexing operation
instead of a ``DataLoader`` with worker processes. Each example keeps its position ``i``
in the split: methods with per-example state (the perturbation buffers of ATTA / ATAS /
FGSM-PGI, the gradient-norm average of ATAS) index that state by ``i``.

The tensors are *un-augmented*; random crops and flips are drawn per batch with
:class:`advlit.data.augment.Augmentation`, which can apply the same transform to a stored
perturbation.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from advlit.utils import ConfigError


@dataclass(frozen=True)
class DatasetInfo:
    """What a trainer needs to know about a dataset before loading it.

    ``input_shape`` is ``(C, H, W)`` for images and ``(D,)`` for vectors. ``pad`` and
    ``flip`` describe the training augmentation (random crop after zero padding by ``pad``
    pixels, ``pad = 0`` meaning no crop; random horizontal flip). ``mean`` / ``std`` are
    the per-channel statistics of the normalisation layer placed *inside* the model
    (inputs stay in pixel space, see METHODS.md "Common protocol"); ``None`` means the
    model sees raw inputs.
    """

    name: str
    num_classes: int
    input_shape: tuple
    pad: int
    flip: bool
    mean: tuple | None
    std: tuple | None
    default_model: str
    source: str

    @property
    def normalize(self) -> tuple[tuple, tuple] | None:
        """``(mean, std)`` in the form :func:`advlit.models.get_model` takes, or ``None``."""
        if self.mean is None or self.std is None:
            return None
        return (self.mean, self.std)


class DatasetNotFoundError(FileNotFoundError, ConfigError):
    """The files of a dataset are not where advlit looked (and could not be downloaded).

    It is both a :class:`FileNotFoundError` (for code that handles missing files) and a
    :class:`advlit.utils.ConfigError` (so the CLI prints its one-line message and exits 2).
    """


class IndexedDataset(torch.utils.data.Dataset):
    """A labelled split held as two tensors; items are ``(x, y, index)``.

    ``images`` is ``(N, C, H, W)`` uint8 for the vision datasets (a quarter of the memory
    of float32), or float32 for the small datasets: images in [0, 1] (digits) or real
    vectors ``(N, D)`` (the toy data, not restricted to [0, 1]). ``labels`` is ``(N,)``
    int64. Whatever the storage, :meth:`__getitem__` and :meth:`batch` return float32
    inputs, uint8 images divided by 255.
    """

    def __init__(self, images: Tensor, labels: Tensor, info: DatasetInfo):
        if images.shape[0] != labels.shape[0]:
            raise ValueError(
                f"images and labels disagree on the number of examples: "
                f"{images.shape[0]} vs {labels.shape[0]}"
            )
        if tuple(images.shape[1:]) != tuple(info.input_shape):
            raise ValueError(
                f"{info.name}: example shape {tuple(images.shape[1:])} does not match "
                f"input_shape {tuple(info.input_shape)}"
            )
        if images.dtype not in (torch.uint8, torch.float32):
            raise ValueError(f"images must be uint8 or float32, got {images.dtype}")
        self.images = images
        self.labels = labels.to(torch.int64)
        self.info = info

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, i: int) -> tuple[Tensor, int, int]:
        i = int(i)
        # clone: a basic-indexing view of a float tensor would let callers edit the dataset
        return _as_float(self.images[i].clone()), int(self.labels[i]), i

    def batch(self, indices: Tensor, device=None) -> tuple[Tensor, Tensor]:
        """Gather the examples ``indices`` at once: float32 ``x`` and int64 ``y`` on ``device``.

        The gather happens where the tensors live (see :meth:`to`) and only the batch is
        moved, so a CPU-held dataset costs one small host-to-device copy per batch.
        """
        indices = torch.as_tensor(indices, dtype=torch.long).to(self.images.device)
        x = self.images[indices]
        y = self.labels[indices]
        if device is not None:
            x = x.to(device, non_blocking=True)
            y = y.to(device, non_blocking=True)
        return _as_float(x), y

    def to(self, device) -> "IndexedDataset":
        """A copy whose tensors live on ``device`` (e.g. a whole CIFAR split on the GPU)."""
        return IndexedDataset(self.images.to(device), self.labels.to(device), self.info)

    def __repr__(self) -> str:
        return (
            f"IndexedDataset({self.info.name!r}, n={len(self)}, "
            f"shape={tuple(self.images.shape[1:])}, dtype={self.images.dtype})"
        )


def _as_float(x: Tensor) -> Tensor:
    """uint8 pixels -> float32 in [0, 1]; float tensors are returned as float32 unchanged."""
    if x.dtype == torch.uint8:
        return x.to(torch.float32).div_(255.0)
    return x.to(torch.float32)
