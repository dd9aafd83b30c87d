"""The embedded default data: scikit-learn's handwritten digits (8x8, and upsampled 16x16).

``sklearn.datasets.load_digits`` ships with scikit-learn (1,797 grey 8x8 images of the
digits 0-9, integer intensities 0..16, from the UCI "Optical Recognition of Handwritten
Digits" set), so the book and the tests run without downloading anything. It is the
package's CPU stand-in for CIFAR-10: small enough to train a CNN in seconds on two cores,
and a small CNN without BatchNorm shows catastrophic overfitting under FGSM training on it.

The split is fixed once and for all, stratified by class with ``random_state=0``:
397 test images, then 200 validation images (early stopping, Rice et al. 2020) carved from
the remaining 1,400, which leaves 1,200 training images.

``digits16`` upsamples the same images to 16x16 (bilinear, ``align_corners=False``,
clamped to [0, 1]): two pooling stages then leave a 4x4 map, and eps values like 8/255
perturb proportionally more pixels, closer to the CIFAR situation.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from advlit.data.base import DatasetInfo, IndexedDataset

TEST_SIZE = 397
VAL_SIZE = 200
SPLIT_SEED = 0
_SOURCE = "scikit-learn's bundled load_digits (UCI optical digits), no download needed"

DIGITS_INFO = DatasetInfo(
    name="digits",
    num_classes=10,
    input_shape=(1, 8, 8),
    pad=0,
    flip=False,
    mean=None,
    std=None,
    default_model="small_cnn",
    source=_SOURCE,
)
DIGITS16_INFO = DatasetInfo(
    name="digits16",
    num_classes=10,
    input_shape=(1, 16, 16),
    pad=0,
    flip=False,
    mean=None,
    std=None,
    default_model="small_cnn",
    source=_SOURCE + "; bilinearly upsampled to 16x16",
)


@lru_cache(maxsize=1)
def _raw_digits() -> tuple[np.ndarray, np.ndarray]:
    """All 1,797 images as float32 ``(N, 1, 8, 8)`` in [0, 1] and int64 labels."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = (bunch.images.astype(np.float32) / 16.0).reshape(-1, 1, 8, 8)
    return images, bunch.target.astype(np.int64)


@lru_cache(maxsize=1)
def _split_indices() -> dict[str, np.ndarray]:
    from sklearn.model_selection import train_test_split

    _, labels = _raw_digits()
    everything = np.arange(len(labels))
    rest, test = train_test_split(
        everything, test_size=TEST_SIZE, stratify=labels, random_state=SPLIT_SEED
    )
    train, val = train_test_split(
        rest, test_size=VAL_SIZE, stratify=labels[rest], random_state=SPLIT_SEED
    )
    return {"train": train, "val": val, "test": test}


def digits_split_indices() -> dict[str, np.ndarray]:
    """Positions in ``load_digits()`` of each split's examples (``train``/``val``/``test``)."""
    return {split: idx.copy() for split, idx in _split_indices().items()}


def load_digits_split(split: str, size: int = 8) -> IndexedDataset:
    """The ``split`` of the digits at ``size`` x ``size`` (8: ``digits``, 16: ``digits16``)."""
    info = {8: DIGITS_INFO, 16: DIGITS16_INFO}[size]
    images, labels = _raw_digits()
    idx = _split_indices()[split]
    x = torch.from_numpy(images[idx].copy())
    if size != 8:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
        x = x.clamp_(0.0, 1.0)
    return IndexedDataset(x.contiguous(), torch.from_numpy(labels[idx].copy()), info)
