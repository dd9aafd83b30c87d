"""PIAT's 3-D toy data: two noisy concentric circles lifted into a thin slab.

Section III-A of PIAT (Motivation, "A Toy Example") builds a binary problem whose
decision boundary can be drawn epoch by epoch. For class ``i``:

    x1 = rho_i cos(z) + e1,   x2 = rho_i sin(z) + e2,   x3 ~ U(alpha_i, beta_i),
    z ~ U(0, 2 pi),   e1, e2 ~ N(0, sigma_2)

with sigma = 0.2, rho_1 = 0.35, rho_2 = 1, alpha_1 = alpha_2 = 0.80, beta_1 = beta_2 = 0.85.
The paper writes the noise as ``N(0, sigma_2)`` but only defines ``sigma = 0.2``; we read it
as a normal with *standard deviation* 0.2. Class 1 of the paper (the inner circle,
rho = 0.35) has label 0 here, class 2 (the outer circle, rho = 1) label 1.

The paper does not give the number of points. We draw balanced splits of 1,000 training,
200 validation and 1,000 test points, each from its own fixed NumPy seed, so the data are
identical on every machine. The features are real-valued (not clipped to [0, 1]); the
paper trains a one-hidden-layer MLP with PGD (eps = 0.1, alpha = 0.05, K = 5).
"""
from __future__ import annotations

import numpy as np
import torch

from advlit.data.base import DatasetInfo, IndexedDataset

RADII = (0.35, 1.0)
NOISE_STD = 0.2
SLAB = (0.80, 0.85)
SPLIT_SIZES = {"train": 1000, "val": 200, "test": 1000}
SPLIT_SEEDS = {"train": 20240, "val": 20241, "test": 20242}

CIRCLES3D_INFO = DatasetInfo(
    name="circles3d",
    num_classes=2,
    input_shape=(3,),
    pad=0,
    flip=False,
    mean=None,
    std=None,
    default_model="mlp",
    source="generated: PIAT (Section III-A) 3-D concentric circles, fixed seed per split",
)


def sample_circles3d(n_per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``n_per_class`` points of each class; returns float32 ``(2n, 3)`` and int64 labels.

    The points are shuffled (with the same seeded generator) so the classes interleave.
    """
    rng = np.random.default_rng(seed)
    points, labels = [], []
    for label, radius in enumerate(RADII):
        angle = rng.uniform(0.0, 2.0 * np.pi, n_per_class)
        noise = rng.normal(0.0, NOISE_STD, (n_per_class, 2))
        height = rng.uniform(SLAB[0], SLAB[1], n_per_class)
        circle = radius * np.stack([np.cos(angle), np.sin(angle)], axis=1) + noise
        points.append(np.column_stack([circle, height]))
        labels.append(np.full(n_per_class, label, dtype=np.int64))
    order = rng.permutation(2 * n_per_class)
    return (
        np.concatenate(points)[order].astype(np.float32),
        np.concatenate(labels)[order],
    )


def load_circles3d(split: str) -> IndexedDataset:
    """The fixed ``split`` (``train``: 1,000 points, ``val``: 200, ``test``: 1,000)."""
    x, y = sample_circles3d(SPLIT_SIZES[split] // 2, SPLIT_SEEDS[split])
    return IndexedDataset(torch.from_numpy(x), torch.from_numpy(y), CIRCLES3D_INFO)
