"""Synthetic vision data in the real formats (advlit.data.fake, `advlit data fake`): the real
loaders read them, with a smaller validation part and a warning, and only them: without
their marker, or changed since, the official checks apply as before."""
from __future__ import annotations

import json
import logging
import pickle
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from advlit.cli import main
from advlit.data import DatasetNotFoundError, dataset_info, get_dataset
from advlit.data import vision
from advlit.data.fake import synthetic_split, tiny_wnids, write_fake_dataset
from advlit.utils import ConfigError

VISION = ["cifar10", "cifar100", "svhn", "tinyimagenet"]
N_TRAIN, N_TEST, SEED = 300, 40, 3
N_VAL = 30  # N_TRAIN // 10


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """One root holding all four synthetic datasets (written once for the module)."""
    root = tmp_path_factory.mktemp("fake")
    for name in VISION:
        write_fake_dataset(name, root, train=N_TRAIN, test=N_TEST, seed=SEED)
    return root


def _copy(root, tmp_path):
    target = tmp_path / "copy"
    shutil.copytree(root, target)
    return target


def _official_order(name, labels):
    """Positions of the writer's training images in the order the loader reads them:
    as written for CIFAR/SVHN; for Tiny ImageNet by class, then by file name
    (``<wnid>_10.JPEG`` sorts before ``<wnid>_2.JPEG``)."""
    if name != "tinyimagenet":
        return np.arange(len(labels))
    within = np.concatenate([np.arange(count) for count in np.bincount(labels, minlength=200)])
    return np.array(sorted(range(len(labels)), key=lambda i: (labels[i], f"{within[i]}.JPEG")))


def _close(name, loaded, expected):
    """Exact for the lossless formats; JPEG (Tiny ImageNet) keeps each 8x8 cell's colour."""
    expected = torch.from_numpy(expected)
    if name != "tinyimagenet":
        return torch.equal(loaded, expected)
    cells = (F.avg_pool2d(loaded.float(), 8) - F.avg_pool2d(expected.float(), 8)).abs()
    return cells.mean() < 8 and cells.max() < 60  # another image: about 60 on average


# ----------------------------------------------------------------- the real loaders read them


@pytest.mark.parametrize("name", VISION)
def test_real_loaders_read_the_synthetic_files(written, name):
    info = dataset_info(name)
    parts = {split: get_dataset(name, split, root=written) for split in ["train", "val", "test"]}
    assert {s: len(d) for s, d in parts.items()} == {"train": N_TRAIN - N_VAL, "val": N_VAL, "test": N_TEST}
    for data in parts.values():
        assert data.images.dtype == torch.uint8 and tuple(data.images.shape[1:]) == info.input_shape
        assert data.labels.dtype == torch.int64
        assert 0 <= data.labels.min() and data.labels.max() < info.num_classes
        x, y = data.batch(torch.arange(len(data)))
        assert x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1 and x.std() > 0.05
        assert "SYNTHETIC" in data.info.source
    # the writer's images and labels, in the loader's order, validation part evenly spread
    # (Tiny ImageNet) or at the end (the others), as the real data
    images, labels = synthetic_split(name, "train", N_TRAIN, SEED)
    order = _official_order(name, labels)
    images, labels = images[order], labels[order]
    if name == "tinyimagenet":
        val = np.zeros(N_TRAIN, dtype=bool)
        val[::N_TRAIN // N_VAL] = True
    else:
        val = np.arange(N_TRAIN) >= N_TRAIN - N_VAL
    assert parts["train"].labels.tolist() == labels[~val].tolist()
    assert parts["val"].labels.tolist() == labels[val].tolist()
    assert _close(name, parts["train"].images, images[~val]) and _close(name, parts["val"].images, images[val])
    test_images, test_labels = synthetic_split(name, "test", N_TEST, SEED)
    assert parts["test"].labels.tolist() == test_labels.tolist()
    assert _close(name, parts["test"].images, test_images)


@pytest.mark.parametrize("name", ["cifar10", "tinyimagenet"])
def test_classes_are_learnable_a_little(written, name):
    """Nearest class mean, fitted on train, beats chance several times on test: images
    depend on their labels (labels shuffled apart from their images would give chance)."""
    train, test = get_dataset(name, "train", root=written), get_dataset(name, "test", root=written)
    x, y = train.images.float().flatten(1), train.labels
    classes = dataset_info(name).num_classes
    means = torch.stack([x[y == c].mean(0) if (y == c).any() else torch.full_like(x[0], 1e6)
                         for c in range(classes)])
    accuracy = (torch.cdist(test.images.float().flatten(1), means).argmin(1) == test.labels).float().mean()
    assert accuracy > 4 / classes, accuracy


def test_same_seed_same_data_other_seed_other_data(written, tmp_path):
    write_fake_dataset("cifar10", tmp_path / "again", train=N_TRAIN, test=N_TEST, seed=SEED)
    write_fake_dataset("cifar10", tmp_path / "other", train=N_TRAIN, test=N_TEST, seed=SEED + 1)
    write_fake_dataset("cifar10", tmp_path / "bigger", train=N_TRAIN + 100, test=N_TEST, seed=SEED)
    load = lambda root, split: get_dataset("cifar10", split, root=root)  # noqa: E731
    for split in ["train", "val", "test"]:
        assert torch.equal(load(written, split).images, load(tmp_path / "again", split).images)
        assert torch.equal(load(written, split).labels, load(tmp_path / "again", split).labels)
        assert not torch.equal(load(written, split).images, load(tmp_path / "other", split).images)
    # the test split does not depend on the size of the training split
    assert torch.equal(load(written, "test").images, load(tmp_path / "bigger", "test").images)
    a, b = synthetic_split("svhn", "train", 50, 0), synthetic_split("svhn", "train", 50, 0)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])


# ------------------------------------------------------------------------- the real formats


def test_svhn_files_use_the_real_mat_layout_and_label_10_for_digit_0(written):
    from scipy.io import loadmat

    images, digits = synthetic_split("svhn", "test", N_TEST, SEED)
    mat = loadmat(written / "test_32x32.mat")
    assert mat["X"].shape == (32, 32, 3, N_TEST) and mat["X"].dtype == np.uint8
    assert mat["y"].shape == (N_TEST, 1)
    stored = mat["y"][:, 0]
    assert set(stored.tolist()) == set(range(1, 11))  # 1..10, never 0: 10 is the digit 0
    assert np.array_equal(stored % 10, digits)
    assert np.array_equal(mat["X"][:, :, :, 5], images[5].transpose(1, 2, 0))  # X[h, w, c, n]
    loaded = get_dataset("svhn", "test", root=written).labels
    assert 0 in loaded.tolist() and 10 not in loaded.tolist()
    assert loaded[torch.from_numpy(stored == 10)].eq(0).all()


def test_cifar_files_are_the_official_pickles(written):
    folder = written / "cifar-10-batches-py"
    batches = []
    for k in range(1, 6):
        with open(folder / f"data_batch_{k}", "rb") as handle:
            batches.append(pickle.load(handle, encoding="latin1"))
    assert all(set(b) == {"batch_label", "labels", "data", "filenames"} for b in batches)
    assert sum(len(b["labels"]) for b in batches) == N_TRAIN
    assert all(b["data"].dtype == np.uint8 and b["data"].shape == (len(b["labels"]), 3072) for b in batches)
    images, labels = synthetic_split("cifar10", "train", N_TRAIN, SEED)
    assert np.array_equal(batches[0]["data"][0, :1024].reshape(32, 32), images[0, 0])  # R plane first
    assert batches[0]["labels"] == labels[:len(batches[0]["labels"])].tolist()
    with open(folder / "batches.meta", "rb") as handle:
        assert pickle.load(handle, encoding="latin1")["label_names"][0] == "airplane"
    with open(written / "cifar-100-python" / "train", "rb") as handle:
        train = pickle.load(handle, encoding="latin1")
    assert {"fine_labels", "coarse_labels", "data"} <= set(train) and max(train["fine_labels"]) < 100
    with open(written / "cifar-100-python" / "meta", "rb") as handle:
        assert len(pickle.load(handle, encoding="latin1")["fine_label_names"]) == 100


def test_tiny_imagenet_folder_layout(written):
    folder = written / "tiny-imagenet-200"
    listed = (folder / "wnids.txt").read_text().split()
    assert sorted(listed) == tiny_wnids() and listed != tiny_wnids()  # unsorted, as the real file
    counts = [len(list((folder / "train" / w / "images").glob("*.JPEG"))) for w in tiny_wnids()]
    assert sum(counts) == N_TRAIN and max(counts) - min(counts) <= 1
    lines = (folder / "val" / "val_annotations.txt").read_text().splitlines()
    assert len(lines) == N_TEST and all(len(line.split("\t")) == 6 for line in lines)
    assert len(list((folder / "val" / "images").glob("*.JPEG"))) == N_TEST


# --------------------------------------------------------- the real checks are not weakened


@pytest.mark.parametrize("name, damage", [
    ("cifar10", "no marker"), ("svhn", "no marker"), ("cifar100", "file changed"), ("svhn", "file changed"),
    ("cifar10", "other dataset listed"),
])
def test_files_not_vouched_for_by_the_marker_meet_the_official_md5_check(written, tmp_path, name, damage):
    root = _copy(written, tmp_path)
    marker = root / vision.SYNTHETIC_MARKER
    if damage == "no marker":
        marker.unlink()
    elif damage == "file changed":
        victim = vision.dataset_files(name, root)[0]
        victim.write_bytes(victim.read_bytes() + b"\0")
    else:
        content = json.loads(marker.read_text())
        del content["datasets"][name]
        marker.write_text(json.dumps(content))
    with pytest.raises(DatasetNotFoundError, match="not found \\(or corrupted\\)") as caught:
        get_dataset(name, "test", root=root)
    assert "\n" not in str(caught.value)
    assert len(get_dataset("tinyimagenet", "test", root=root)) == N_TEST  # no md5 of its own


def test_a_damaged_marker_vouches_for_nothing(written, tmp_path):
    root = _copy(written, tmp_path)
    (root / vision.SYNTHETIC_MARKER).write_text("{ truncated")
    with pytest.raises(DatasetNotFoundError):
        get_dataset("cifar10", "train", root=root)


def test_synthetic_tiny_imagenet_changed_since_is_read_as_real_data(written, tmp_path):
    """Without a valid marker entry the real rule applies: every 100th image held out."""
    root = _copy(written, tmp_path)
    for cache in (root / "tiny-imagenet-200").glob("advlit_cache_*"):
        cache.unlink()
    (root / vision.SYNTHETIC_MARKER).unlink()
    assert len(get_dataset("tinyimagenet", "val", root=root)) == 3  # rows 0, 100, 200 of 300
    assert "SYNTHETIC" not in get_dataset("tinyimagenet", "train", root=root).info.source


def test_missing_root_gives_the_clear_error(tmp_path):
    root = tmp_path / "nowhere"
    with pytest.raises(DatasetNotFoundError) as caught:
        get_dataset("cifar10", "train", root=root)
    assert str(root / "cifar-10-batches-py") in str(caught.value) and "\n" not in str(caught.value)


def test_listed_but_deleted_files_give_the_clear_error(written, tmp_path):
    root = _copy(written, tmp_path)
    shutil.rmtree(root / "cifar-10-batches-py")
    (root / "train_32x32.mat").unlink()
    for name, path in [("cifar10", "cifar-10-batches-py"), ("svhn", "train_32x32.mat")]:
        with pytest.raises(DatasetNotFoundError, match=f"{name} not found") as caught:
            get_dataset(name, "train", root=root)
        assert str(root / path) in str(caught.value)


def test_a_one_time_warning_says_the_data_are_synthetic(written, monkeypatch, caplog):
    monkeypatch.setattr(vision, "_warned_synthetic", set())
    with caplog.at_level(logging.WARNING, logger="advlit.data.vision"):
        for split in ["train", "val", "test", "train"]:
            get_dataset("svhn", split, root=written)
    warnings = [r.getMessage() for r in caplog.records if "SYNTHETIC" in r.getMessage()]
    assert len(warnings) == 1 and "svhn" in warnings[0]


def test_no_download_over_synthetic_data(written):
    with pytest.raises(ConfigError, match="synthetic.*not downloading"):
        get_dataset("cifar10", "test", root=written, download=True)


def test_the_writer_never_overwrites_real_files(tmp_path):
    real = tmp_path / "cifar-10-batches-py"
    real.mkdir()
    (real / "data_batch_1").write_bytes(b"the user's real data")
    (tmp_path / "test_32x32.mat").write_bytes(b"real svhn")
    for name in ["cifar10", "svhn"]:
        with pytest.raises(ConfigError, match="not overwriting"):
            write_fake_dataset(name, tmp_path, train=20, test=5)
    assert (real / "data_batch_1").read_bytes() == b"the user's real data"
    assert (tmp_path / "test_32x32.mat").read_bytes() == b"real svhn"
    assert not (tmp_path / vision.SYNTHETIC_MARKER).exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".advlit-fake")] == []


def test_rewriting_replaces_synthetic_data_and_its_tiny_imagenet_cache(tmp_path):
    write_fake_dataset("tinyimagenet", tmp_path, train=220, test=10, seed=0)
    first = get_dataset("tinyimagenet", "test", root=tmp_path)
    assert list((tmp_path / "tiny-imagenet-200").glob("advlit_cache_*.pt"))
    write_fake_dataset("cifar10", tmp_path, train=20, test=5)  # the marker keeps both entries
    write_fake_dataset("tinyimagenet", tmp_path, train=220, test=10, seed=1)
    second = get_dataset("tinyimagenet", "test", root=tmp_path)
    assert not torch.equal(first.images, second.images)
    assert len(get_dataset("tinyimagenet", "train", root=tmp_path)) == 198
    assert len(get_dataset("cifar10", "val", root=tmp_path)) == 2
    listed = json.loads((tmp_path / vision.SYNTHETIC_MARKER).read_text())["datasets"]
    assert set(listed) == {"cifar10", "tinyimagenet"} and listed["tinyimagenet"]["seed"] == 1


def test_a_cache_of_synthetic_tiny_imagenet_never_stands_in_for_real_data(tmp_path):
    write_fake_dataset("tinyimagenet", tmp_path, train=220, test=10)
    get_dataset("tinyimagenet", "val", root=tmp_path)  # caches the synthetic split (22 images)
    (tmp_path / vision.SYNTHETIC_MARKER).unlink()  # now the same files count as real data
    assert len(get_dataset("tinyimagenet", "val", root=tmp_path)) == 3  # re-decoded, every 100th


# ------------------------------------------------------------------------------- command line


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "advlit.cli", *args], capture_output=True, text=True)


def test_data_fake_help_says_what_it_is_for(capsys):
    with pytest.raises(SystemExit) as caught:
        main(["data", "fake", "--help"])
    assert caught.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for phrase in ["synthetic", "gpu profile", "downloading the real data", "tested",
                   "ADVLIT_SYNTHETIC.json", "--train", "--test", "--seed", "--root"]:
        assert phrase.lower() in text.lower(), phrase
    with pytest.raises(SystemExit):
        main(["data", "--help"])
    assert "fake" in capsys.readouterr().out


def test_data_fake_end_to_end(tmp_path):
    root = tmp_path / "data"
    out = run_cli("data", "fake", "--dataset", "svhn", "--root", str(root), "--train", "50", "--test", "8",
                  "--seed", "5")
    assert out.returncode == 0, out.stderr
    assert "45 train + 5 val" in out.stdout and str(root) in out.stdout
    assert [len(get_dataset("svhn", s, root=root)) for s in ["train", "val", "test"]] == [45, 5, 8]
    images, labels = synthetic_split("svhn", "test", 8, 5)
    test = get_dataset("svhn", "test", root=root)
    assert torch.equal(test.images, torch.from_numpy(images)) and test.labels.tolist() == labels.tolist()
    again = run_cli("data", "fake", "--dataset", "svhn", "--root", str(root), "--train", "50", "--test", "8")
    assert again.returncode == 0, again.stderr  # synthetic data may be rewritten (seed 0 now)
    assert not torch.equal(get_dataset("svhn", "test", root=root).images, test.images)


@pytest.mark.parametrize("args, message", [
    (["--dataset", "digits16"], "cannot write synthetic 'digits16'"),
    (["--dataset", "cifar10", "--train", "1"], "--train must lie in [2, 50000]"),
    (["--dataset", "cifar10", "--train", "0"], "must be a positive integer"),
    (["--dataset", "svhn", "--test", "30000"], "--test must lie in [1, 26032]"),
    (["--dataset", "cifar10", "--train", "many"], "not an integer"),
    (["--dataset", "cifar10", "--root", "FILE"], "is a file, not a folder"),
    (["--dataset", "cifar10", "--root", "REAL"], "not overwriting"),
    (["--train", "20"], "the following arguments are required: --dataset"),
])
def test_data_fake_bad_parameters_are_one_line_and_exit_2(tmp_path, capsys, args, message):
    (tmp_path / "FILE").write_text("x")
    (tmp_path / "REAL" / "cifar-10-batches-py").mkdir(parents=True)
    args = [str(tmp_path / a) if a in ("FILE", "REAL") else a for a in args]
    if "--root" not in args:
        args += ["--root", str(tmp_path / "out")]
    assert main(["data", "fake", *args]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("advlit: error:"), lines
    assert message in lines[0]
    assert not (tmp_path / "out").exists() and list((tmp_path / "REAL").iterdir()) == [
        tmp_path / "REAL" / "cifar-10-batches-py"]
