"""The papers' image datasets: CIFAR-10, CIFAR-100, SVHN (through torchvision) and Tiny ImageNet.

Each split is read once into memory as a uint8 ``(N, 3, H, W)`` tensor (CIFAR-10's 50,000
training images take 150 MB this way, against 600 MB as float32). Augmentation is not
applied here but per batch by the trainer (:mod:`advlit.data.augment`).

Splits, identical for every method and seed:

* ``test``: the official test set (Tiny ImageNet: the official ``val`` folder, as its test
  labels were never released).
* ``val``: a fixed held-out part of the official training set, used for early stopping
  (the "best" checkpoint of Rice et al. 2020, "Overfitting in adversarially robust deep
  learning"): the *last* 1,000 training examples of CIFAR-10/100 and SVHN; for Tiny
  ImageNet every 100th image of the training folder in (class, file name) order, i.e.
  5 images per class.
* ``train``: the rest of the official training set.

Synthetic data (``advlit data fake``, :mod:`advlit.data.fake`) are files in these same
formats, written together with a marker :data:`SYNTHETIC_MARKER` in the root that lists each
synthetic dataset with a digest of its files. A dataset is read as synthetic only when the
marker lists it *and* its files still have that digest (:func:`synthetic_entry`); the
official md5 checksums of torchvision are then replaced by that digest, the validation part
shrinks to the last ``min(1000, N // 10)`` training images (Tiny ImageNet: as many, evenly
spaced), and a warning says, once per dataset and root, that the data are synthetic. In
every other case (no marker, a dataset it does not list, files changed since) the real
checks apply unchanged: torchvision's md5 checks and the 1,000 held-out images.

``torchvision`` is imported inside the functions only, so ``import advlit.data`` works
without it. When files are missing (or a download fails, e.g. offline),
:class:`DatasetNotFoundError` says which dataset, the exact path looked at, and how to
get it; no torchvision traceback escapes.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
from pathlib import Path

import numpy as np
import torch

from advlit.data.base import DatasetInfo, DatasetNotFoundError, IndexedDataset
from advlit.utils import ConfigError

logger = logging.getLogger(__name__)

DATA_ROOT_ENV = "ADVLIT_DATA"
HELD_OUT = 1000
TINY_IMAGENET_URL = "http://cs231n.stanford.edu/tiny-imagenet-200.zip"
TINY_IMAGENET_FOLDER = "tiny-imagenet-200"
TINY_IMAGENET_VAL_EVERY = 100
_TINY_CACHE_FORMAT = 1
SYNTHETIC_MARKER = "ADVLIT_SYNTHETIC.json"
CIFAR_FOLDERS = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python"}
_CIFAR_FILES = {
    "cifar10": [f"data_batch_{k}" for k in range(1, 6)] + ["test_batch", "batches.meta"],
    "cifar100": ["train", "test", "meta"],
}
SVHN_FILES = ("train_32x32.mat", "test_32x32.mat")
_warned_synthetic: set[tuple[str, str]] = set()

_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)

VISION_INFOS = {
    "cifar10": DatasetInfo(
        name="cifar10",
        num_classes=10,
        input_shape=(3, 32, 32),
        pad=4,
        flip=True,
        mean=(0.4914, 0.4822, 0.4465),
        std=(0.2471, 0.2435, 0.2616),
        default_model="preact_resnet18",
        source="torchvision CIFAR10 (cifar-10-batches-py), https://www.cs.toronto.edu/~kriz/cifar.html",
    ),
    "cifar100": DatasetInfo(
        name="cifar100",
        num_classes=100,
        input_shape=(3, 32, 32),
        pad=4,
        flip=True,
        mean=(0.5071, 0.4865, 0.4409),
        std=(0.2673, 0.2564, 0.2762),
        default_model="preact_resnet18",
        source="torchvision CIFAR100 (cifar-100-python), fine labels, https://www.cs.toronto.edu/~kriz/cifar.html",
    ),
    "svhn": DatasetInfo(
        name="svhn",
        num_classes=10,
        input_shape=(3, 32, 32),
        pad=4,
        flip=False,  # mirrored digits are not digits
        mean=(0.4377, 0.4438, 0.4728),
        std=(0.1980, 0.2010, 0.1970),
        default_model="preact_resnet18",
        source="torchvision SVHN (train_32x32.mat, test_32x32.mat; label 10 -> digit 0), http://ufldl.stanford.edu/housenumbers/",
    ),
    "tinyimagenet": DatasetInfo(
        name="tinyimagenet",
        num_classes=200,
        input_shape=(3, 64, 64),
        pad=4,  # the usual 64x64 recipe: pad 4 and crop back to 64x64
        flip=True,
        mean=_IMAGENET_MEAN,
        std=_IMAGENET_STD,
        default_model="preact_resnet18",
        source=f"Tiny ImageNet ({TINY_IMAGENET_FOLDER}/ folder), {TINY_IMAGENET_URL}",
    ),
}


def default_data_root() -> Path:
    """``$ADVLIT_DATA`` if set, else ``~/data`` (user-expanded)."""
    return Path(os.environ.get(DATA_ROOT_ENV, "~/data")).expanduser()


def load_vision_split(name: str, split: str, root=None, download: bool = False) -> IndexedDataset:
    """Load ``split`` (``train``/``val``/``test``) of one of :data:`VISION_INFOS`.

    Synthetic files (see the module docstring) load the same way, with a smaller validation
    part; asking to ``download`` over them is a :class:`ConfigError` (the real data belong
    in another root).
    """
    root = default_data_root() if root is None else Path(root).expanduser()
    info = VISION_INFOS[name]
    synthetic = synthetic_entry(name, root)
    if synthetic is not None:
        if download:
            raise ConfigError(
                f"{name} at {root} is synthetic (written by `advlit data fake`, listed in "
                f"{root / SYNTHETIC_MARKER}); not downloading the real data over it: use another root"
            )
        _warn_synthetic(name, root)
        info = dataclasses.replace(
            info, source=f"SYNTHETIC {name} written by `advlit data fake` (seed {synthetic.get('seed')}), "
                         f"not the real data; {info.source}")
    digest = None if synthetic is None else synthetic["digest"]
    if name == "tinyimagenet":
        images, labels = _load_tiny_imagenet(root, split, download, synthetic_digest=digest)
        return IndexedDataset(images, labels, info)
    official_split = "test" if split == "test" else "train"
    images, labels = _TORCHVISION_LOADERS[name](root, official_split, download, synthetic is None)
    if split != "test":
        held_out = HELD_OUT if synthetic is None else synthetic_held_out(images.shape[0])
        if images.shape[0] <= held_out:
            raise DatasetNotFoundError(
                f"{name}: the training set at {root} has only {images.shape[0]} images; it needs more "
                f"than {held_out}, as the last {held_out} are held out for validation; is it complete?"
            )
        part = slice(-held_out, None) if split == "val" else slice(None, -held_out)
        images, labels = images[part].clone(), labels[part].clone()
    return IndexedDataset(images, labels, info)


# ------------------------------------------------------------------------ synthetic data


def synthetic_held_out(n_train: int) -> int:
    """Validation images taken from ``n_train`` synthetic training images: ``N // 10``, at
    least 1 and at most the 1,000 of the real datasets."""
    return max(1, min(HELD_OUT, n_train // 10))


def dataset_files(name: str, root: Path) -> list[Path]:
    """The files of vision dataset ``name`` under ``root`` that its loader reads (Tiny
    ImageNet: every file of its folder except advlit's caches), sorted; ``[]`` when one is missing."""
    root = Path(root)
    if name in CIFAR_FOLDERS:
        files = [root / CIFAR_FOLDERS[name] / file for file in _CIFAR_FILES[name]]
    elif name == "svhn":
        files = [root / file for file in SVHN_FILES]
    else:
        folder = root / TINY_IMAGENET_FOLDER
        files = sorted(path for path in folder.rglob("*")
                       if path.is_file() and not path.name.startswith("advlit_cache_"))
        return files if (folder / "wnids.txt").is_file() else []
    return files if all(path.is_file() for path in files) else []


def files_digest(files: list[Path], root: Path) -> str:
    """One md5 over the paths (relative to ``root``) and contents of ``files``."""
    total = hashlib.md5(usedforsecurity=False)
    for path in files:
        content = hashlib.md5(usedforsecurity=False)
        with open(path, "rb") as handle:
            while chunk := handle.read(1 << 20):
                content.update(chunk)
        total.update(f"{path.relative_to(root).as_posix()}\0{content.hexdigest()}\n".encode())
    return total.hexdigest()


def read_synthetic_marker(root: Path) -> dict:
    """The ``datasets`` table of ``root``'s :data:`SYNTHETIC_MARKER` (``{}`` when there is
    none; an unreadable marker is logged and counts as none)."""
    marker = Path(root) / SYNTHETIC_MARKER
    if not marker.is_file():
        return {}
    try:
        datasets = json.loads(marker.read_text())["datasets"]
        if not isinstance(datasets, dict):
            raise ValueError("'datasets' is not a table")
    except (OSError, ValueError, KeyError, TypeError) as error:
        logger.warning("ignoring unreadable synthetic-data marker %s: %s", marker, error)
        return {}
    return datasets


def synthetic_entry(name: str, root: Path) -> dict | None:
    """The marker's entry for ``name`` when ``root`` holds synthetic ``name`` files exactly as
    ``advlit data fake`` wrote them (same digest), else ``None``: then the real checks apply."""
    entry = read_synthetic_marker(root).get(name)
    if not isinstance(entry, dict) or "digest" not in entry:
        return None
    files = dataset_files(name, root)
    if not files:
        return None  # missing files: the usual not-found error of the real path
    if files_digest(files, root) != entry["digest"]:
        logger.warning(
            "%s lists %s as synthetic, but its files at %s changed since they were written; "
            "reading them as real data (official checks apply)", Path(root) / SYNTHETIC_MARKER, name, root)
        return None
    return entry


def _warn_synthetic(name: str, root: Path) -> None:
    key = (name, str(Path(root).resolve()))
    if key not in _warned_synthetic:
        _warned_synthetic.add(key)
        logger.warning(
            "%s at %s is SYNTHETIC (written by `advlit data fake`): class-dependent patterns in the "
            "real file format, for trying the code path; no number measured on it says anything "
            "about the real %s", name, root, name)


# --------------------------------------------------------------------------- torchvision


def _missing(
    name: str, path: Path, how: str, error: Exception | None, download: bool
) -> DatasetNotFoundError:
    """The one-line error for a dataset whose files are not at ``path``."""
    reason = f" (download failed: {type(error).__name__}: {error})" if download and error else ""
    return DatasetNotFoundError(
        f"{name} not found (or corrupted) at {path}{reason}; to get it: {how}, "
        f"or set ${DATA_ROOT_ENV} / pass root= to point at an existing copy"
    )


def _how_to_get(name: str, what: str, root: Path) -> str:
    return (
        f"get_dataset({name!r}, ..., download=True) or `advlit data download {name}` "
        f"on a machine with internet, or copy {what} into {root}"
    )


def _import_torchvision(name: str):
    """torchvision, imported on first use; a clear ConfigError where it is not installed."""
    try:
        import torchvision
    except ImportError:
        raise ConfigError(
            f"{name} is read through torchvision, which is not installed: pip install 'advlit[vision]'"
        ) from None
    return torchvision


def _without_checksums(cls):
    """A subclass of torchvision's CIFAR10/CIFAR100/SVHN that reads the same files in the same
    way but checks only that they exist (``check_integrity`` with ``md5=None``). Used for
    synthetic files only, whose digest :func:`synthetic_entry` has already checked."""
    if hasattr(cls, "split_list"):  # SVHN: {split: [url, filename, md5]}
        attrs = {"split_list": {key: [url, file, None] for key, (url, file, _) in cls.split_list.items()}}
    else:
        attrs = {"train_list": [[file, None] for file, _ in cls.train_list],
                 "test_list": [[file, None] for file, _ in cls.test_list],
                 "meta": {**cls.meta, "md5": None}}
    return type(f"Synthetic{cls.__name__}", (cls,), attrs)


def _load_cifar(
    name: str, root: Path, split: str, download: bool, verify: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    torchvision = _import_torchvision(name)
    cls = {"cifar10": torchvision.datasets.CIFAR10, "cifar100": torchvision.datasets.CIFAR100}[name]
    folder = CIFAR_FOLDERS[name]
    if not verify:
        cls = _without_checksums(cls)
    try:
        dataset = cls(str(root), train=(split == "train"), download=download)
    except Exception as error:  # torchvision raises RuntimeError, URLError, OSError, ...
        how = _how_to_get(name, f"the extracted {folder} folder", root)
        raise _missing(name, root / folder, how, error, download) from None
    images = torch.from_numpy(np.ascontiguousarray(dataset.data)).permute(0, 3, 1, 2).contiguous()
    return images, torch.as_tensor(dataset.targets, dtype=torch.int64)


def _load_svhn(root: Path, split: str, download: bool, verify: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    torchvision = _import_torchvision("svhn")
    filename = f"{split}_32x32.mat"
    cls = torchvision.datasets.SVHN if verify else _without_checksums(torchvision.datasets.SVHN)
    try:
        dataset = cls(str(root), split=split, download=download)
    except Exception as error:
        raise _missing(
            "svhn", root / filename, _how_to_get("svhn", filename, root), error, download
        ) from None
    images = torch.from_numpy(np.ascontiguousarray(dataset.data))  # already (N, 3, 32, 32)
    return images, torch.as_tensor(dataset.labels, dtype=torch.int64)


_TORCHVISION_LOADERS = {
    "cifar10": lambda root, split, download, verify: _load_cifar("cifar10", root, split, download, verify),
    "cifar100": lambda root, split, download, verify: _load_cifar("cifar100", root, split, download, verify),
    "svhn": _load_svhn,
}


# ------------------------------------------------------------------------- Tiny ImageNet


def _load_tiny_imagenet(
    root: Path, split: str, download: bool, synthetic_digest: str | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Tiny ImageNet from the standard ``tiny-imagenet-200/`` layout, cached as tensors.

    Classes are numbered in sorted WordNet-id order (what ``ImageFolder`` does on
    ``train/``). Decoding 100,000 JPEGs takes a while, so the decoded splits are saved as
    ``advlit_cache_<split>.pt`` next to the data; a read-only root just skips the cache.
    ``synthetic_digest`` is the digest of synthetic files (``None`` for real data); the
    cache records it, so a cache of synthetic files never stands in for real ones.
    """
    folder = root / TINY_IMAGENET_FOLDER
    cache = folder / f"advlit_cache_{split}.pt"
    if cache.is_file():
        try:
            stored = torch.load(cache, weights_only=True)
        except Exception as error:  # a truncated or foreign file: decode again
            logger.warning("ignoring unreadable cache %s: %s", cache, error)
            stored = {}
        if stored.get("format") == _TINY_CACHE_FORMAT and stored.get("synthetic") == synthetic_digest:
            return stored["images"], stored["labels"]
    if not (folder / "wnids.txt").is_file() and download:
        _download_tiny_imagenet(root, folder)
    if not (folder / "wnids.txt").is_file():
        raise _missing(
            "tinyimagenet",
            folder,
            f"download and unzip {TINY_IMAGENET_URL} into {root} "
            "(or get_dataset('tinyimagenet', ..., download=True))",
            None,
            False,
        )
    decoded = _decode_tiny_imagenet(folder, split, synthetic=synthetic_digest is not None)
    for name, (images, labels) in decoded.items():
        _save_cache(folder / f"advlit_cache_{name}.pt", images, labels, synthetic_digest)
    return decoded[split]


def _download_tiny_imagenet(root: Path, folder: Path) -> None:
    torchvision = _import_torchvision("tinyimagenet")
    try:
        torchvision.datasets.utils.download_and_extract_archive(TINY_IMAGENET_URL, download_root=str(root))
    except Exception as error:
        raise _missing(
            "tinyimagenet", folder, f"download and unzip {TINY_IMAGENET_URL} into {root}", error, True
        ) from None


def _decode_tiny_imagenet(
    folder: Path, split: str, synthetic: bool = False
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Decode the official train folder (-> ``train`` and ``val``) or val folder (-> ``test``).

    ``val`` is every 100th training image; for synthetic files, :func:`synthetic_held_out`
    images evenly spaced (every 10th of a small set; every 100th of 100,000, as for real data).
    """
    wnids = sorted((folder / "wnids.txt").read_text().split())
    class_of = {wnid: i for i, wnid in enumerate(wnids)}
    if split == "test":
        files, labels = [], []
        for line in (folder / "val" / "val_annotations.txt").read_text().splitlines():
            if line.strip():
                filename, wnid = line.split("\t")[:2]
                files.append(folder / "val" / "images" / filename)
                labels.append(class_of[wnid])
        return {"test": (_read_images(files), torch.tensor(labels, dtype=torch.int64))}
    files, labels = [], []
    for wnid in wnids:
        for path in sorted((folder / "train" / wnid / "images").glob("*.JPEG")):
            files.append(path)
            labels.append(class_of[wnid])
    images, labels = _read_images(files), torch.tensor(labels, dtype=torch.int64)
    held_out = torch.zeros(len(files), dtype=torch.bool)
    if synthetic:
        count = synthetic_held_out(len(files))
        held_out[torch.arange(0, len(files), max(1, len(files) // count))[:count]] = True
    else:
        held_out[::TINY_IMAGENET_VAL_EVERY] = True
    return {
        "train": (images[~held_out], labels[~held_out]),
        "val": (images[held_out], labels[held_out]),
    }


def _read_images(files: list[Path]) -> torch.Tensor:
    """Decode RGB 64x64 JPEGs (grey ones are converted) into a uint8 ``(N, 3, 64, 64)`` tensor."""
    from PIL import Image

    images = np.empty((len(files), 64, 64, 3), dtype=np.uint8)
    for k, path in enumerate(files):
        with Image.open(path) as image:
            image = image.convert("RGB")
            if image.size != (64, 64):
                image = image.resize((64, 64), Image.BILINEAR)
            images[k] = np.asarray(image)
    return torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()


def _save_cache(path: Path, images: torch.Tensor, labels: torch.Tensor, synthetic: str | None = None) -> None:
    """Write atomically (temp file + rename); a read-only data folder only logs a warning."""
    temporary = path.with_name(path.name + f".tmp{os.getpid()}")
    stored = {"format": _TINY_CACHE_FORMAT, "images": images, "labels": labels}
    if synthetic is not None:
        stored["synthetic"] = synthetic
    try:
        torch.save(stored, temporary)
        os.replace(temporary, path)
    except OSError as error:
        logger.warning("could not cache decoded Tiny ImageNet at %s: %s", path, error)
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)
