"""Synthetic CIFAR-10, CIFAR-100, SVHN and Tiny ImageNet, written in the real on-disk formats.

    advlit data fake --dataset cifar10 --root /tmp/fake        # 1,200 training and 200 test images
    write_fake_dataset("svhn", "/tmp/fake", train=1200, test=200, seed=0)
    get_dataset("svhn", "train", root="/tmp/fake")             # the real loader (and a warning)

What for: trying the ``gpu`` profile's code path (the real loaders, models and input shapes)
before downloading the real data, or where it cannot be downloaded, and testing it. The
files are exactly those the real loaders of :mod:`advlit.data.vision` read, through
torchvision's own readers:

* ``cifar10``: ``cifar-10-batches-py/data_batch_1`` ... ``data_batch_5``, ``test_batch``
  and ``batches.meta``: pickles (protocol 2, as torchvision reads the official Python 2
  files) of dicts with ``data`` (rows of 3,072 uint8: the R, G and B planes of a 32x32
  image), ``labels``, ``batch_label`` and ``filenames``; ``batches.meta`` has ``label_names``.
* ``cifar100``: ``cifar-100-python/train``, ``test`` (``data``, ``fine_labels``,
  ``coarse_labels``, ``filenames``) and ``meta`` (``fine_label_names``,
  ``coarse_label_names``). The coarse labels are ``fine // 5``, not the real superclasses
  (advlit uses the fine labels only).
* ``svhn``: ``train_32x32.mat`` and ``test_32x32.mat`` (MATLAB 5, as scipy writes them):
  ``X`` of shape ``(32, 32, 3, N)`` uint8 and ``y`` of shape ``(N, 1)`` with labels 1..10,
  10 standing for the digit 0.
* ``tinyimagenet``: ``tiny-imagenet-200/wnids.txt`` (200 made-up WordNet ids, unsorted as in
  the real file), ``words.txt``, ``train/<wnid>/images/<wnid>_<k>.JPEG`` with
  ``train/<wnid>/<wnid>_boxes.txt``, ``val/images/val_<k>.JPEG`` and
  ``val/val_annotations.txt`` (file, wnid, box). The unlabelled official ``test/`` folder,
  which advlit never reads, is not written.

Besides the files, the root gets the marker :data:`advlit.data.vision.SYNTHETIC_MARKER`
(``ADVLIT_SYNTHETIC.json``), which lists each synthetic dataset with its sizes, seed and a
digest of its files; only files with that digest are read as synthetic (see
:mod:`advlit.data.vision`: smaller validation part, no official md5, a warning). Files that
are already in the root and are not synthetic data written here are never overwritten.

The images: each class has a prototype, a coarse grid of random colours (4x4 cells on a
32x32 image, 8x8 on 64x64); an image is ``0.25 * prototype + 0.75 * a random grid of its
own`` plus Gaussian pixel noise (standard deviation 16/255), so classes are learnable but
overlap: the nearest class mean of 1,200 training images classifies about 70 % of synthetic
CIFAR-10 test images correctly, 20 % of CIFAR-100 and 50 % of Tiny ImageNet (chance: 10, 1
and 0.5 %).
The same dataset, sizes and seed give the same images and labels; the test images do not
depend on the number of training images, nor the reverse. Numbers measured on these data
say nothing about the real datasets.
"""
from __future__ import annotations

import json
import os
import pickle
import shutil
import tempfile
from pathlib import Path

import numpy as np

from advlit.data.vision import (
    CIFAR_FOLDERS,
    SVHN_FILES,
    SYNTHETIC_MARKER,
    TINY_IMAGENET_FOLDER,
    VISION_INFOS,
    dataset_files,
    files_digest,
    read_synthetic_marker,
    synthetic_entry,
    synthetic_held_out,
)
from advlit.utils import ConfigError

FAKE_DATASETS = tuple(VISION_INFOS)
DEFAULT_TRAIN = 1200
DEFAULT_TEST = 200
#: the sizes of the official train and test splits: the most a synthetic copy may have
REAL_SIZES = {"cifar10": (50000, 10000), "cifar100": (50000, 10000), "svhn": (73257, 26032),
              "tinyimagenet": (100000, 10000)}
_FORMAT = 1
_CODES = {name: k for k, name in enumerate(FAKE_DATASETS)}  # seeds the streams of each dataset
_STREAMS = {"prototypes": 0, "train": 1, "test": 2, "order": 3}
_SIGNAL = 0.25  # weight of the class prototype in an image
_NOISE_STD = 16.0
_CHUNK = 1024

CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
CIFAR100_CLASSES = (
    "apple aquarium_fish baby bear beaver bed bee beetle bicycle bottle bowl boy bridge bus butterfly "
    "camel can castle caterpillar cattle chair chimpanzee clock cloud cockroach couch crab crocodile cup "
    "dinosaur dolphin elephant flatfish forest fox girl hamster house kangaroo keyboard lamp lawn_mower "
    "leopard lion lizard lobster man maple_tree motorcycle mountain mouse mushroom oak_tree orange orchid "
    "otter palm_tree pear pickup_truck pine_tree plain plate poppy porcupine possum rabbit raccoon ray "
    "road rocket rose sea seal shark shrew skunk skyscraper snail snake spider squirrel streetcar "
    "sunflower sweet_pepper table tank telephone television tiger tractor train trout tulip turtle "
    "wardrobe whale willow_tree wolf woman worm"
).split()


def tiny_wnids() -> list[str]:
    """The 200 made-up WordNet ids of synthetic Tiny ImageNet, in class order (sorted)."""
    return [f"n{99000000 + c}" for c in range(200)]


def _rng(name: str, seed: int, stream: str) -> np.random.Generator:
    return np.random.default_rng([int(seed), _CODES[name], _STREAMS[stream]])


def _tiny_train_counts(n: int) -> np.ndarray:
    """Training images per class of synthetic Tiny ImageNet: as equal as possible."""
    return np.array([n // 200 + (c < n % 200) for c in range(200)])


def synthetic_split(name: str, split: str, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The images (``(n, 3, H, W)`` uint8) and labels (``(n,)`` int64, ``0..C-1``) of one
    *official* split (``train`` or ``test``) that :func:`write_fake_dataset` stores, in the
    order it stores them (Tiny ImageNet ``train``: class by class, ``<wnid>_0``, ``_1``, ...).
    The writer's ground truth, for tests."""
    if split not in ("train", "test"):
        raise ValueError(f"official split 'train' or 'test', got {split!r}")
    info = VISION_INFOS[name]
    classes, side = info.num_classes, info.input_shape[-1]
    if name == "tinyimagenet" and split == "train":
        labels = np.repeat(np.arange(classes), _tiny_train_counts(n))
    else:
        labels = _rng(name, seed, "order" if split == "train" else "test").permutation(np.arange(n) % classes)
    grid = 4 if side == 32 else 8
    prototypes = _rng(name, seed, "prototypes").uniform(0, 255, (classes, 3, grid, grid)).astype(np.float32)
    rng = _rng(name, seed, split)
    block = side // grid
    images = np.empty((n, 3, side, side), dtype=np.uint8)
    for start in range(0, n, _CHUNK):
        y = labels[start:start + _CHUNK]
        own = rng.uniform(0, 255, (len(y), 3, grid, grid)).astype(np.float32)
        coarse = _SIGNAL * prototypes[y] + (1 - _SIGNAL) * own
        fine = coarse.repeat(block, axis=2).repeat(block, axis=3)
        fine += _NOISE_STD * rng.standard_normal(fine.shape, dtype=np.float32)
        images[start:start + len(y)] = np.clip(np.rint(fine), 0, 255).astype(np.uint8)
    return images, labels.astype(np.int64)


# ------------------------------------------------------------------------------ writers


def _pickle(path: Path, content: dict) -> None:
    with open(path, "wb") as handle:
        pickle.dump(content, handle, protocol=2)


def _cifar_batch(label_key: str, images: np.ndarray, labels: np.ndarray, batch_label: str, offset: int) -> dict:
    batch = {"batch_label": batch_label, label_key: labels.tolist(),
             "data": images.reshape(len(images), -1),  # R, G, B planes of 1,024 pixels each
             "filenames": [f"synthetic_{int(y)}_{offset + i:06d}.png" for i, y in enumerate(labels)]}
    if label_key == "fine_labels":
        batch["coarse_labels"] = (labels // 5).tolist()
    return batch


def _write_cifar(name: str, target: Path, splits: dict) -> None:
    folder = target / CIFAR_FOLDERS[name]
    folder.mkdir(parents=True)
    (train_x, train_y), (test_x, test_y) = splits["train"], splits["test"]
    if name == "cifar10":
        parts = np.array_split(np.arange(len(train_y)), 5)
        for k, part in enumerate(parts, 1):
            _pickle(folder / f"data_batch_{k}", _cifar_batch(
                "labels", train_x[part], train_y[part], f"training batch {k} of 5", int(part[0]) if len(part) else 0))
        _pickle(folder / "test_batch", _cifar_batch("labels", test_x, test_y, "testing batch 1 of 1", 0))
        _pickle(folder / "batches.meta", {"num_cases_per_batch": len(parts[0]), "label_names": CIFAR10_CLASSES,
                                          "num_vis": 3072})
    else:
        _pickle(folder / "train", _cifar_batch("fine_labels", train_x, train_y, "training batch 1 of 1", 0))
        _pickle(folder / "test", _cifar_batch("fine_labels", test_x, test_y, "testing batch 1 of 1", 0))
        _pickle(folder / "meta", {"fine_label_names": CIFAR100_CLASSES,
                                  "coarse_label_names": [f"synthetic_superclass_{k}" for k in range(20)]})


def _write_svhn(target: Path, splits: dict) -> None:
    from scipy.io import savemat

    for file in SVHN_FILES:
        images, labels = splits[file.split("_")[0]]
        digits = np.where(labels == 0, 10, labels).astype(np.uint8).reshape(-1, 1)  # the digit 0 is label 10
        savemat(target / file, {"X": np.ascontiguousarray(images.transpose(2, 3, 1, 0)), "y": digits})


def _write_tiny_imagenet(target: Path, splits: dict, seed: int) -> None:
    from PIL import Image

    def save(array: np.ndarray, path: Path) -> None:
        Image.fromarray(np.ascontiguousarray(array.transpose(1, 2, 0))).save(path, format="JPEG", quality=90)

    folder = target / TINY_IMAGENET_FOLDER
    wnids = tiny_wnids()
    folder.mkdir(parents=True)
    listed = _rng("tinyimagenet", seed, "order").permutation(len(wnids))  # the real file is not sorted
    (folder / "wnids.txt").write_text("".join(f"{wnids[c]}\n" for c in listed))
    (folder / "words.txt").write_text("".join(f"{wnid}\tsynthetic class {c}\n" for c, wnid in enumerate(wnids)))
    images, labels = splits["train"]
    start = 0
    for c, count in enumerate(_tiny_train_counts(len(labels))):
        wnid = wnids[c]
        (folder / "train" / wnid / "images").mkdir(parents=True)
        boxes = []
        for k in range(count):
            save(images[start + k], folder / "train" / wnid / "images" / f"{wnid}_{k}.JPEG")
            boxes.append(f"{wnid}_{k}.JPEG\t0\t0\t63\t63\n")
        (folder / "train" / wnid / f"{wnid}_boxes.txt").write_text("".join(boxes))
        start += count
    images, labels = splits["test"]
    (folder / "val" / "images").mkdir(parents=True)
    annotations = []
    for k, (image, label) in enumerate(zip(images, labels)):
        save(image, folder / "val" / "images" / f"val_{k}.JPEG")
        annotations.append(f"val_{k}.JPEG\t{wnids[label]}\t0\t0\t63\t63\n")
    (folder / "val" / "val_annotations.txt").write_text("".join(annotations))


def _top_paths(name: str) -> list[str]:
    """The names, relative to the root, of what one dataset occupies there."""
    if name in CIFAR_FOLDERS:
        return [CIFAR_FOLDERS[name]]
    return list(SVHN_FILES) if name == "svhn" else [TINY_IMAGENET_FOLDER]


def check_fake_request(name: str, train: int, test: int) -> None:
    """A one-line :class:`ConfigError` for a dataset that cannot be faked or sizes out of range."""
    if name not in VISION_INFOS:
        raise ConfigError(f"cannot write synthetic {name!r}: choose one of {', '.join(FAKE_DATASETS)}")
    max_train, max_test = REAL_SIZES[name]
    if not 2 <= train <= max_train:
        raise ConfigError(f"--train must lie in [2, {max_train}] for {name} (its real size), got {train}")
    if not 1 <= test <= max_test:
        raise ConfigError(f"--test must lie in [1, {max_test}] for {name} (its real size), got {test}")


def write_fake_dataset(name: str, root, train: int = DEFAULT_TRAIN, test: int = DEFAULT_TEST,
                       seed: int = 0) -> dict:
    """Write synthetic ``name`` (``train`` training and ``test`` test images) into ``root``
    in the real format, and list it in the root's marker; returns the marker entry.

    Synthetic files of an earlier call are replaced; anything else already at the dataset's
    place in ``root`` (real data, foreign files) is left alone and a :class:`ConfigError`
    says so. The files are first written to a temporary folder inside ``root``, then moved.
    """
    check_fake_request(name, train, test)
    root = Path(root).expanduser()
    if root.exists() and not root.is_dir():
        raise ConfigError(f"--root {root} is a file, not a folder")
    present = [root / path for path in _top_paths(name) if (root / path).exists()]
    if present and synthetic_entry(name, root) is None:
        raise ConfigError(
            f"{present[0]} already exists and is not synthetic {name} written by `advlit data fake` "
            f"(or it changed since); not overwriting it: choose another --root")
    root.mkdir(parents=True, exist_ok=True)
    splits = {"train": synthetic_split(name, "train", train, seed), "test": synthetic_split(name, "test", test, seed)}
    staging = Path(tempfile.mkdtemp(prefix=".advlit-fake-", dir=root))
    try:
        if name in CIFAR_FOLDERS:
            _write_cifar(name, staging, splits)
        elif name == "svhn":
            _write_svhn(staging, splits)
        else:
            _write_tiny_imagenet(staging, splits, seed)
        for path in _top_paths(name):
            if (root / path).is_dir():
                shutil.rmtree(root / path)
            os.replace(staging / path, root / path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    entry = {"train": train, "test": test, "seed": seed, "format": _FORMAT,
             "val": synthetic_held_out(train), "digest": files_digest(dataset_files(name, root), root)}
    datasets = read_synthetic_marker(root)
    datasets[name] = entry
    marker = {"about": "Synthetic data written by `advlit data fake` (advlit.data.fake): class-dependent "
                       "patterns in the real file formats, NOT the real datasets. advlit reads a dataset "
                       "listed here as synthetic only while its files have the digest below.",
              "datasets": dict(sorted(datasets.items()))}
    temporary = root / f"{SYNTHETIC_MARKER}.tmp{os.getpid()}"
    temporary.write_text(json.dumps(marker, indent=1) + "\n")
    os.replace(temporary, root / SYNTHETIC_MARKER)
    return entry
