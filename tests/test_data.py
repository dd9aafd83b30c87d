"""Tests of advlit.data: the embedded datasets, the vision loaders on small fake files
written in the real on-disk formats, and the replayable batch augmentation."""
from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from advlit.data import (
    Augmentation,
    DatasetInfo,
    DatasetNotFoundError,
    IndexedDataset,
    available_datasets,
    dataset_info,
    get_dataset,
)
from advlit.data.digits import digits_split_indices
from advlit.utils import ConfigError

VISION = ["cifar10", "cifar100", "svhn", "tinyimagenet"]


# ----------------------------------------------------------------------------- registry


def test_registry_lists_every_dataset_with_consistent_info():
    assert available_datasets() == ["digits", "digits16", "circles3d", *VISION]
    for name in available_datasets():
        info = dataset_info(name)
        assert isinstance(info, DatasetInfo) and info.name == name
        assert (info.mean is None) == (info.std is None)
    assert dataset_info("digits").default_model == "small_cnn"
    assert dataset_info("circles3d").default_model == "mlp"
    assert dataset_info("cifar10").normalize == (dataset_info("cifar10").mean, dataset_info("cifar10").std)
    assert dataset_info("svhn").flip is False and dataset_info("cifar10").flip is True


@pytest.mark.parametrize("call", [lambda: dataset_info("mnist"), lambda: get_dataset("mnist", "train"),
                                  lambda: get_dataset("digits", "training")])
def test_unknown_name_or_split_is_a_one_line_config_error(call):
    with pytest.raises(ConfigError) as caught:
        call()
    message = str(caught.value)
    assert "\n" not in message and ("digits16" in message or "val" in message)


def test_importing_the_package_does_not_import_torchvision():
    code = ("import sys, advlit, advlit.data, advlit.models; "
            "assert 'torchvision' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


# ------------------------------------------------------------------------------- digits


def test_digits_splits_have_the_documented_sizes_shapes_and_range():
    for name, side in [("digits", 8), ("digits16", 16)]:
        sizes = {}
        for split in ["train", "val", "test"]:
            data = get_dataset(name, split)
            assert data.images.dtype == torch.float32 and data.labels.dtype == torch.int64
            assert tuple(data.images.shape[1:]) == (1, side, side) == data.info.input_shape
            assert 0.0 <= data.images.min() and data.images.max() <= 1.0
            sizes[split] = len(data)
        assert sizes == {"train": 1200, "val": 200, "test": 397}


def test_digits_splits_are_disjoint_stratified_and_deterministic():
    splits = digits_split_indices()
    everything = np.concatenate(list(splits.values()))
    assert len(everything) == len(set(everything.tolist())) == 1797
    full = np.bincount(np.concatenate([get_dataset("digits", s).labels.numpy() for s in splits]))
    for split, data in [(s, get_dataset("digits", s)) for s in splits]:
        counts = np.bincount(data.labels.numpy(), minlength=10)
        expected = full / full.sum() * len(data)
        assert np.all(np.abs(counts - expected) <= 1.5), (split, counts, expected)
    again = get_dataset("digits", "train")
    assert torch.equal(again.images, get_dataset("digits", "train").images)
    assert np.array_equal(digits_split_indices()["test"], splits["test"])


def test_digits16_is_the_bilinear_upsampling_of_digits():
    small, large = get_dataset("digits", "val"), get_dataset("digits16", "val")
    expected = F.interpolate(small.images, size=(16, 16), mode="bilinear", align_corners=False)
    assert torch.allclose(large.images, expected.clamp(0, 1))
    assert torch.equal(large.labels, small.labels)


def test_indexed_dataset_items_and_batches():
    images = torch.randint(0, 256, (5, 3, 4, 4), dtype=torch.uint8)
    info = DatasetInfo("fake", 3, (3, 4, 4), 0, False, None, None, "small_cnn", "test")
    data = IndexedDataset(images, torch.tensor([0, 1, 2, 0, 1]), info)
    x, y, i = data[3]
    assert x.dtype == torch.float32 and torch.allclose(x, images[3].float() / 255) and (y, i) == (0, 3)
    xb, yb = data.batch(torch.tensor([4, 0]))
    assert torch.allclose(xb, images[[4, 0]].float() / 255) and yb.tolist() == [1, 0]
    floats = get_dataset("digits", "test")
    x, _, _ = floats[0]
    x += 1.0  # items are copies: editing one must not edit the dataset
    assert floats.images.max() <= 1.0


# ---------------------------------------------------------------------------- circles3d


def test_circles3d_follows_piat_section_3a():
    data = get_dataset("circles3d", "train")
    assert data.images.shape == (1000, 3) and data.info.input_shape == (3,)
    assert data.labels.bincount().tolist() == [500, 500]
    x = data.images.double()
    assert x[:, 2].min() >= 0.80 and x[:, 2].max() <= 0.85
    radius_sq = x[:, 0] ** 2 + x[:, 1] ** 2
    for label, rho in [(0, 0.35), (1, 1.0)]:
        # E[r^2] = rho^2 + 2 sigma^2 for isotropic noise of std sigma = 0.2
        estimate = (radius_sq[data.labels == label].mean() - 2 * 0.2**2).sqrt()
        assert abs(estimate - rho) < 0.04, (label, estimate)
    assert torch.equal(get_dataset("circles3d", "train").images, data.images)
    sizes = {s: len(get_dataset("circles3d", s)) for s in ["val", "test"]}
    assert sizes == {"val": 200, "test": 1000}
    assert not torch.equal(get_dataset("circles3d", "test").images[:200], get_dataset("circles3d", "val").images)


# ---------------------------------------------------------- vision data in real formats


@pytest.fixture
def without_md5(monkeypatch):
    """torchvision checks the md5 of every CIFAR/SVHN file (``check_integrity``) before
    loading; our small fakes cannot match the real checksums, so integrity becomes
    "the file exists" for these tests (missing files are still detected)."""
    import torchvision.datasets.cifar
    import torchvision.datasets.svhn

    def exists(fpath, md5=None):
        return os.path.isfile(fpath)

    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", exists)
    monkeypatch.setattr(torchvision.datasets.svhn, "check_integrity", exists)


def _pickle(path: Path, content: dict) -> None:
    # The official files are Python 2 pickles whose str keys torchvision reads with
    # encoding="latin1" as str (b"data" only appears when unpickling with encoding="bytes").
    with open(path, "wb") as handle:
        pickle.dump(content, handle, protocol=2)


def _fake_cifar(root: Path, name: str, n_train=1100, n_test=50):
    """Rows of 3072 uint8 in channel-major order, like the official batches."""
    rng = np.random.default_rng(0)
    classes = 10 if name == "cifar10" else 100
    train = rng.integers(0, 256, (n_train, 3072), dtype=np.uint8)
    test = rng.integers(0, 256, (n_test, 3072), dtype=np.uint8)
    train_y, test_y = np.arange(n_train) % classes, (np.arange(n_test) * 7) % classes
    if name == "cifar10":
        folder = root / "cifar-10-batches-py"
        folder.mkdir(parents=True)
        for k, (rows, labels) in enumerate(zip(np.array_split(train, 5), np.array_split(train_y, 5)), 1):
            _pickle(folder / f"data_batch_{k}", {"data": rows, "labels": labels.tolist()})
        _pickle(folder / "test_batch", {"data": test, "labels": test_y.tolist()})
        _pickle(folder / "batches.meta", {"label_names": [f"c{i}" for i in range(10)]})
    else:
        folder = root / "cifar-100-python"
        folder.mkdir(parents=True)
        _pickle(folder / "train", {"data": train, "fine_labels": train_y.tolist(),
                                   "coarse_labels": (train_y // 5).tolist()})
        _pickle(folder / "test", {"data": test, "fine_labels": test_y.tolist(),
                                  "coarse_labels": (test_y // 5).tolist()})
        _pickle(folder / "meta", {"fine_label_names": [f"f{i}" for i in range(100)]})
    return train, train_y, test, test_y


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_cifar_loads_official_pickles_with_a_held_out_tail(tmp_path, without_md5, name):
    train, train_y, test, test_y = _fake_cifar(tmp_path, name)
    parts = {s: get_dataset(name, s, root=tmp_path) for s in ["train", "val", "test"]}
    assert [len(parts[s]) for s in ["train", "val", "test"]] == [100, 1000, 50]
    for split, rows, labels in [("train", train[:100], train_y[:100]), ("val", train[100:], train_y[100:]),
                                ("test", test, test_y)]:
        data = parts[split]
        assert data.images.dtype == torch.uint8 and tuple(data.images.shape[1:]) == (3, 32, 32)
        assert torch.equal(data.images, torch.from_numpy(rows.reshape(-1, 3, 32, 32)))
        assert data.labels.tolist() == labels.tolist()
        x, y = data.batch(torch.arange(4))
        assert x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1


@pytest.mark.parametrize("n_train", [999, 1000])
def test_a_training_set_not_larger_than_the_held_out_part_is_refused_in_correct_words(
        tmp_path, without_md5, n_train):
    """Issue 15: exactly 1,000 images left nothing to train on, yet the message said "fewer
    than the 1000 held out"; it now says what is needed, true at equality too."""
    _fake_cifar(tmp_path, "cifar10", n_train=n_train)
    assert len(get_dataset("cifar10", "test", root=tmp_path)) == 50
    for split in ["train", "val"]:
        with pytest.raises(DatasetNotFoundError) as caught:
            get_dataset("cifar10", split, root=tmp_path)
        message = str(caught.value)
        assert f"has only {n_train} images" in message and "needs more than 1000" in message
        assert "fewer than" not in message and "\n" not in message


def test_svhn_loads_mat_files_and_maps_label_10_to_digit_0(tmp_path, without_md5):
    from scipy.io import savemat

    rng = np.random.default_rng(1)
    arrays = {}
    for split, n in [("train", 1010), ("test", 20)]:
        images = rng.integers(0, 256, (32, 32, 3, n), dtype=np.uint8)
        labels = (np.arange(n) % 10 + 1).astype(np.uint8).reshape(n, 1)  # 1..10, 10 = digit 0
        savemat(tmp_path / f"{split}_32x32.mat", {"X": images, "y": labels})
        arrays[split] = (images, labels[:, 0] % 10)
    test = get_dataset("svhn", "test", root=tmp_path)
    images, digits = arrays["test"]
    assert torch.equal(test.images, torch.from_numpy(images.transpose(3, 2, 0, 1).copy()))
    assert test.labels.tolist() == digits.tolist() and 0 in test.labels.tolist()
    train, val = get_dataset("svhn", "train", root=tmp_path), get_dataset("svhn", "val", root=tmp_path)
    assert (len(train), len(val)) == (10, 1000)
    assert val.labels.tolist() == arrays["train"][1][10:].tolist()


def _fake_tiny_imagenet(root: Path):
    """Two classes (listed unsorted in wnids.txt), 4 training images each, 3 val images.
    Each class has its own solid colour so labels can be checked from pixels."""
    from PIL import Image

    folder = root / "tiny-imagenet-200"
    colours = {"n01000000": (250, 10, 10), "n02000000": (10, 10, 250)}
    (folder / "wnids.txt").parent.mkdir(parents=True)
    (folder / "wnids.txt").write_text("n02000000\nn01000000\n")
    for wnid, colour in colours.items():
        images = folder / "train" / wnid / "images"
        images.mkdir(parents=True)
        for k in range(4):
            Image.new("RGB", (64, 64), colour).save(images / f"{wnid}_{k}.JPEG")
    (folder / "val" / "images").mkdir(parents=True)
    annotations = []
    for k, wnid in enumerate(["n02000000", "n01000000", "n02000000"]):
        image = Image.new("RGB", (64, 64), colours[wnid])
        (image.convert("L") if k == 2 else image).save(folder / "val" / "images" / f"val_{k}.JPEG")
        annotations.append(f"val_{k}.JPEG\t{wnid}\t0\t0\t63\t63")
    (folder / "val" / "val_annotations.txt").write_text("\n".join(annotations) + "\n")
    return folder


def test_tiny_imagenet_loads_the_folder_layout_and_caches_it(tmp_path):
    folder = _fake_tiny_imagenet(tmp_path)
    train = get_dataset("tinyimagenet", "train", root=tmp_path)
    val = get_dataset("tinyimagenet", "val", root=tmp_path)
    test = get_dataset("tinyimagenet", "test", root=tmp_path)
    assert (len(train), len(val), len(test)) == (7, 1, 3)  # every 100th training image held out
    for data in (train, val, test):
        assert data.images.dtype == torch.uint8 and tuple(data.images.shape[1:]) == (3, 64, 64)
    # classes in sorted wnid order: n01 (red) -> 0, n02 (blue) -> 1
    assert train.labels.tolist() == [0, 0, 0, 1, 1, 1, 1] and val.labels.tolist() == [0]
    assert test.labels.tolist() == [1, 0, 1]
    red = train.images[0].float().mean(dim=(1, 2))
    assert red[0] > 200 and red[2] < 50
    grey = test.images[2].float().mean(dim=(1, 2))
    assert torch.allclose(grey, grey.mean().expand(3), atol=2)  # grey JPEG -> 3 equal channels
    assert {p.name for p in folder.glob("advlit_cache_*.pt")} == {
        "advlit_cache_train.pt", "advlit_cache_val.pt", "advlit_cache_test.pt"}
    for sub in ("train", "val"):  # the cache alone now suffices
        for path in sorted((folder / sub).rglob("*.JPEG")):
            path.unlink()
    assert torch.equal(get_dataset("tinyimagenet", "train", root=tmp_path).images, train.images)


def test_tiny_imagenet_tolerates_a_read_only_root(tmp_path, monkeypatch):
    _fake_tiny_imagenet(tmp_path)

    def refuse(*args, **kwargs):
        raise PermissionError("read-only file system")

    monkeypatch.setattr(torch, "save", refuse)
    assert len(get_dataset("tinyimagenet", "test", root=tmp_path)) == 3
    assert not list((tmp_path / "tiny-imagenet-200").glob("advlit_cache_*"))


@pytest.mark.parametrize("name, looked_at", [("cifar10", "cifar-10-batches-py"),
                                             ("cifar100", "cifar-100-python"),
                                             ("svhn", "train_32x32.mat"),
                                             ("tinyimagenet", "tiny-imagenet-200")])
def test_missing_vision_data_raises_one_clear_error(tmp_path, name, looked_at):
    root = tmp_path / "nowhere"
    with pytest.raises(DatasetNotFoundError) as caught:
        get_dataset(name, "train", root=root)
    message = str(caught.value)
    assert str(root / looked_at) in message and name in message and "\n" not in message
    assert isinstance(caught.value, FileNotFoundError) and isinstance(caught.value, ConfigError)
    error = caught.value  # no torchvision traceback chained to it
    assert error.__cause__ is None and (error.__context__ is None or error.__suppress_context__)


def test_a_failed_download_is_reported_as_missing_data(tmp_path, monkeypatch):
    import torchvision.datasets.cifar

    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(torchvision.datasets.cifar, "download_and_extract_archive", offline)
    with pytest.raises(DatasetNotFoundError, match="download failed.*unreachable"):
        get_dataset("cifar10", "test", root=tmp_path, download=True)


def test_default_root_comes_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("ADVLIT_DATA", str(tmp_path / "env-root"))
    with pytest.raises(DatasetNotFoundError, match="env-root"):
        get_dataset("cifar10", "test")


# ------------------------------------------------------------------------- augmentation


def _reference_augment(x, aug):
    """Slow, obviously correct version: pad, crop, flip, one example at a time."""
    out = []
    height, width = x.shape[-2:]
    for b in range(x.shape[0]):
        canvas = F.pad(x[b], (aug.pad,) * 4)
        top, left = int(aug.top[b]), int(aug.left[b])
        window = canvas[:, top:top + height, left:left + width]
        out.append(window.flip(-1) if aug.flip[b] else window)
    return torch.stack(out)


@pytest.fixture
def batch_and_aug():
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(16, 3, 8, 6, generator=generator)
    aug = Augmentation.sample(16, pad=2, flip=True, generator=generator)
    return x, aug


def test_sample_draws_offsets_in_range_and_is_seeded():
    aug = Augmentation.sample(500, pad=4, flip=True, generator=torch.Generator().manual_seed(1))
    assert aug.top.dtype == torch.long and aug.flip.dtype == torch.bool
    assert set(aug.top.tolist()) == set(range(9)) == set(aug.left.tolist())
    assert 0.4 < aug.flip.float().mean() < 0.6
    again = Augmentation.sample(500, pad=4, flip=True, generator=torch.Generator().manual_seed(1))
    assert torch.equal(aug.top, again.top) and torch.equal(aug.flip, again.flip)
    no_flip = Augmentation.sample(500, pad=4, flip=False, generator=torch.Generator().manual_seed(1))
    assert not no_flip.flip.any()


def test_apply_matches_pad_crop_flip_reference(batch_and_aug):
    x, aug = batch_and_aug
    assert aug.flip.any() and not aug.flip.all()
    assert torch.equal(aug.apply(x), _reference_augment(x, aug))
    assert torch.equal(aug.crop_canvas(F.pad(x, (2, 2, 2, 2))), aug.apply(x))


def test_write_canvas_inverts_crop_canvas(batch_and_aug):
    x, aug = batch_and_aug
    canvas = torch.randn(16, 3, 12, 10)
    before = canvas.clone()
    values = torch.randn(16, 3, 8, 6)
    written = aug.write_canvas(canvas, values)
    assert torch.equal(aug.crop_canvas(written), values)
    outside = torch.ones_like(canvas, dtype=torch.bool)
    aug.write_canvas(outside, torch.zeros_like(values, dtype=torch.bool))
    assert torch.equal(written[outside], before[outside])  # nothing outside the windows moved


def test_stored_perturbation_follows_its_image(batch_and_aug):
    """ATAS keeps delta on the padded canvas: the view of x + delta is the view of x plus
    the same window of delta, mirrored the same way."""
    x, aug = batch_and_aug
    delta = 0.03 * torch.randn_like(x)
    delta_canvas = F.pad(delta, (2, 2, 2, 2))
    assert torch.allclose(aug.apply(x + delta), aug.apply(x) + aug.crop_canvas(delta_canvas), atol=1e-6)
    # an update made on the view lands on the canvas pixels of the image pixels it touched
    step = torch.randn(16, 3, 8, 6)
    aug.write_canvas(delta_canvas, aug.crop_canvas(delta_canvas) + step)
    image_canvas = F.pad(x, (2, 2, 2, 2))
    assert torch.allclose(aug.crop_canvas(image_canvas + delta_canvas), aug.apply(x + delta) + step, atol=1e-6)


def test_identity_and_pad_zero_and_device_moves():
    x = torch.rand(4, 1, 5, 5)
    assert torch.equal(Augmentation.identity(4, pad=3).apply(x), x)
    only_flip = Augmentation.sample(4, pad=0, flip=True, generator=torch.Generator().manual_seed(3))
    expected = torch.where(only_flip.flip[:, None, None, None], x.flip(-1), x)
    assert torch.equal(only_flip.apply(x), expected)
    moved = only_flip.to("cpu")
    assert torch.equal(moved.apply(x), expected)
    with pytest.raises(ValueError):
        only_flip.apply(torch.rand(3, 1, 5, 5))
