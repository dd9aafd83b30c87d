"""Datasets as in-memory ``(x, y, index)`` tensors, and batch-level augmentation.

    from advlit.data import get_dataset, dataset_info
    train = get_dataset("digits16", "train")            # embedded, no download
    x, y = train.batch(torch.arange(128), device="cpu") # float32 in [0, 1], int64

Names: ``digits`` and ``digits16`` (scikit-learn's digits, the CPU default),
``circles3d`` (PIAT's 3-D toy data), ``cifar10``, ``cifar100``, ``svhn`` and
``tinyimagenet`` (files under ``root``, default ``$ADVLIT_DATA`` or ``~/data``).
Every dataset has ``train``, ``val`` (fixed held-out part of the training data, for early
stopping) and ``test`` splits.
"""
from __future__ import annotations

from pathlib import Path

from advlit.data.augment import Augmentation
from advlit.data.base import DatasetInfo, DatasetNotFoundError, IndexedDataset
from advlit.data.digits import DIGITS16_INFO, DIGITS_INFO, load_digits_split
from advlit.data.fake import write_fake_dataset
from advlit.data.toy import CIRCLES3D_INFO, load_circles3d
from advlit.data.vision import VISION_INFOS, default_data_root, load_vision_split
from advlit.utils import ConfigError

__all__ = [
    "Augmentation",
    "DatasetInfo",
    "DatasetNotFoundError",
    "IndexedDataset",
    "available_datasets",
    "dataset_info",
    "dataset_code",
    "default_data_root",
    "get_dataset",
    "write_fake_dataset",
]

SPLITS = ("train", "val", "test")

_INFOS: dict[str, DatasetInfo] = {
    "digits": DIGITS_INFO,
    "digits16": DIGITS16_INFO,
    "circles3d": CIRCLES3D_INFO,
    **VISION_INFOS,
}


def available_datasets() -> list[str]:
    """Names accepted by :func:`get_dataset`, embedded ones first."""
    return list(_INFOS)


def dataset_info(name: str) -> DatasetInfo:
    """Shape, classes, augmentation and normalisation of ``name``, without loading any data."""
    if name not in _INFOS:
        raise ConfigError(f"unknown dataset {name!r}; choose one of: {', '.join(_INFOS)}")
    return _INFOS[name]


def get_dataset(
    name: str,
    split: str,
    root: str | Path | None = None,
    download: bool = False,
) -> IndexedDataset:
    """Load ``split`` (``train``, ``val`` or ``test``) of dataset ``name`` into memory.

    ``root`` and ``download`` matter for the vision datasets only: ``root`` defaults to
    ``$ADVLIT_DATA`` or ``~/data``; missing files raise :class:`DatasetNotFoundError`.
    """
    dataset_info(name)
    if split not in SPLITS:
        raise ConfigError(f"unknown split {split!r}; choose one of: {', '.join(SPLITS)}")
    if name == "digits":
        return load_digits_split(split, size=8)
    if name == "digits16":
        return load_digits_split(split, size=16)
    if name == "circles3d":
        return load_circles3d(split)
    return load_vision_split(name, split, root=root, download=download)


def dataset_code(name: str) -> list:
    """The code that loads dataset ``name``, for the code fingerprint of its runs
    (:func:`advlit.results.code_fingerprint`): the source of :func:`get_dataset` and the
    file of its loader (a change to the CIFAR loader leaves the digits runs current)."""
    import inspect

    dataset_info(name)
    loader = {"digits": load_digits_split, "digits16": load_digits_split, "circles3d": load_circles3d}.get(
        name, load_vision_split)
    return [inspect.getsource(get_dataset), Path(inspect.getsourcefile(loader)).resolve()]
