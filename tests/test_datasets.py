"""Training sets: MiniEcoset HDF5, ImageFolder trees, Fashion-MNIST, and the one input pipeline."""

from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from PIL import Image

import vision_rnn as vrnn
from vision_rnn.datasets import (FASHION_MNIST_DIR, channel_stats, load_fashion_mnist, load_fashion_split,
                                 make_batch, open_training_data, read_idx, stratified_holdout, write_hdf5)
from vision_rnn.errors import DataError
from vision_rnn.models.registry import FASHION_MNIST_CLASSES
from vision_rnn.stimuli import prepare

CLASSES = ["red", "green", "blue"]


def coloured(n_per_class: int, size: int = 32, seed: int = 0):
    """Images whose dominant channel is their class, (N, size, size, 3) uint8, labels."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(3), n_per_class)
    images = rng.integers(0, 80, (len(labels), size, size, 3)).astype(np.uint8)
    images[np.arange(len(labels)), :, :, labels] += 150
    return images, labels


@pytest.fixture
def h5file(tmp_path):
    splits = {"train": coloured(8), "val": coloured(2, seed=1), "test": coloured(2, seed=2)}
    return write_hdf5(tmp_path / "mini.h5", splits, CLASSES)


def test_hdf5_classes_splits_and_normalisation(h5file):
    data = open_training_data(h5file)
    assert data.kind == "hdf5" and data.classes == tuple(CLASSES)
    assert len(data.train) == 24 and len(data.val) == 6 and len(data.test()) == 6
    with h5py.File(h5file) as f:
        expected = tuple(round(v / 255, 4) for v in f["train_img_mean_channels"][()])
        x = f["train"]["data"][()]
    assert data.mean == expected
    assert data.std == tuple(round(v, 4) for v in (x.reshape(-1, 3) / 255.0).std(axis=0))
    assert len(data.identity["sha256"]) == 64 and data.identity["bytes"] == h5file.stat().st_size
    np.testing.assert_array_equal(data.train.rgb([0, 5]), x[[0, 5]])
    with pytest.raises(DataError, match="no held-out group 'testplus'"):
        data.test("testplus")


def test_hdf5_without_stats_computes_them(tmp_path):
    images, labels = coloured(4)
    with h5py.File(tmp_path / "plain.h5", "w") as f:
        for s in ("train", "val"):
            f[f"{s}/data"], f[f"{s}/labels"] = images, labels
    data = open_training_data(tmp_path / "plain.h5")
    assert data.classes == ("class_000", "class_001", "class_002")
    assert data.mean == channel_stats(images)[0]


def test_hdf5_without_expected_groups(tmp_path):
    images, labels = coloured(2)
    with h5py.File(tmp_path / "bad.h5", "w") as f:
        f["train/data"], f["train/labels"] = images, labels
        f["other/data"] = images
    with pytest.raises(DataError, match=r"bad\.h5: no group 'val'.*groups: other, train"):
        open_training_data(tmp_path / "bad.h5")


def test_bad_sources(tmp_path):
    with pytest.raises(DataError, match="nope.h5`: no such file or folder"):
        open_training_data(tmp_path / "nope.h5")
    (tmp_path / "text.h5").write_text("hello")
    with pytest.raises(DataError, match="not an HDF5 file"):
        open_training_data(tmp_path / "text.h5")
    with pytest.raises(DataError, match="no such folder"):
        open_training_data(f"fashion-mnist:{tmp_path / 'missing'}")


def _write_pngs(root: Path, n_per_class: int, sizes=None):
    images, labels = coloured(n_per_class)
    for i, (im, c) in enumerate(zip(images, labels)):
        d = root / CLASSES[c]
        d.mkdir(parents=True, exist_ok=True)
        pil = Image.fromarray(im)
        if sizes:
            pil = pil.resize(sizes[i % len(sizes)])
        pil.save(d / f"img_{i:03d}.png")
    return images, labels


def test_image_folder_holdout_is_seeded_stratified_and_disjoint(tmp_path):
    _write_pngs(tmp_path / "flat", 10)
    a = open_training_data(tmp_path / "flat")
    b = open_training_data(tmp_path / "flat")
    c = open_training_data(tmp_path / "flat", split_seed=1)
    assert a.kind == "folder" and a.classes == tuple(sorted(CLASSES))
    assert len(a.train) == 27 and len(a.val) == 3
    assert np.bincount(a.val.labels).tolist() == [1, 1, 1]
    np.testing.assert_array_equal(a.val.images, b.val.images)
    assert not np.array_equal(a.val.images, c.val.images)
    train_keys = {im.tobytes() for im in a.train.images}
    assert not train_keys & {im.tobytes() for im in a.val.images}
    assert a.mean == channel_stats(a.train.images)[0]


def test_image_folder_train_val_layout_and_mixed_sizes(tmp_path):
    _write_pngs(tmp_path / "tree" / "train", 4, sizes=[(32, 32), (40, 36)])
    _write_pngs(tmp_path / "tree" / "val", 1)
    data = open_training_data(tmp_path / "tree")
    assert len(data.train) == 12 and len(data.val) == 3
    assert isinstance(data.train.images, list)  # differing sizes stay a list
    x, y = make_batch(data.train, [0, 1, 2], 32, data.mean, data.std)
    assert x.shape == (3, 3, 32, 32) and y.tolist() == data.train.labels[:3].tolist()


def test_image_folder_errors(tmp_path):
    (tmp_path / "loose").mkdir()
    Image.fromarray(coloured(1)[0][0]).save(tmp_path / "loose" / "a.png")
    with pytest.raises(DataError, match="no class sub-folders"):
        open_training_data(tmp_path / "loose")
    (tmp_path / "bad" / "cat").mkdir(parents=True)
    (tmp_path / "bad" / "cat" / "x.png").write_bytes(b"not a png")
    (tmp_path / "bad" / "cat" / "y.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match=r"unreadable image .*\.png"):
        open_training_data(tmp_path / "bad")


def test_folder_training_batch_equals_stimuli_pipeline(tmp_path):
    """A folder seen as training data and as stimuli gives the same model input."""
    _write_pngs(tmp_path / "tree" / "train", 3, sizes=[(48, 40)])
    _write_pngs(tmp_path / "tree" / "val", 1)
    data = open_training_data(tmp_path / "tree")
    stim = vrnn.load_stimuli(tmp_path / "tree" / "train")
    _, x_stim = next(stim.batches(len(stim), 32, data.mean, data.std))
    x_train, _ = make_batch(data.train, range(len(data.train)), 32, data.mean, data.std)
    assert torch.equal(x_train, x_stim)


def test_augmentation_is_seeded_per_image(h5file):
    data = open_training_data(h5file)
    a, _ = make_batch(data.train, range(8), 32, data.mean, data.std, augment_key=(0, 1))
    b, _ = make_batch(data.train, range(4, 8), 32, data.mean, data.std, augment_key=(0, 1))
    c, _ = make_batch(data.train, range(8), 32, data.mean, data.std, augment_key=(0, 2))
    plain, _ = make_batch(data.train, range(8), 32, data.mean, data.std)
    assert torch.equal(a[4:], b)  # independent of the batch an image is in
    assert not torch.equal(a, c) and not torch.equal(a, plain)


def test_stratified_holdout_and_channel_stats():
    labels = np.repeat(np.arange(4), 20)
    tr, va = stratified_holdout(labels, 0.25, seed=3)
    assert len(va) == 20 and np.bincount(labels[va]).tolist() == [5] * 4
    assert sorted(np.concatenate([tr, va]).tolist()) == list(range(80))
    grey = np.array([[[0, 255]]], dtype=np.uint8)  # half black, half white
    assert channel_stats(grey) == ((0.5,) * 3, (0.5,) * 3)


# -- Fashion-MNIST -----------------------------------------------------------------------------
needs_fmnist = pytest.mark.skipif(
    not (FASHION_MNIST_DIR / "train-images-idx3-ubyte.gz").exists(),
    reason=f"Fashion-MNIST not installed at {FASHION_MNIST_DIR} (Debian package dataset-fashion-mnist)")


@pytest.fixture(scope="module")
def fmnist():
    return load_fashion_mnist()


@needs_fmnist
def test_idx_reader():
    labels = read_idx(FASHION_MNIST_DIR / "t10k-labels-idx1-ubyte.gz")
    images = read_idx(FASHION_MNIST_DIR / "t10k-images-idx3-ubyte.gz")
    assert labels.shape == (10000,) and images.shape == (10000, 28, 28) and images.dtype == np.uint8
    assert np.bincount(labels).tolist() == [1000] * 10


@needs_fmnist
def test_fashion_mnist_split_is_seeded_and_disjoint(fmnist):
    assert len(fmnist.train) == 55000 and len(fmnist.val) == 5000
    assert fmnist.classes == FASHION_MNIST_CLASSES
    assert np.bincount(fmnist.val.labels).tolist() == [500] * 10
    tr, va = stratified_holdout(load_fashion_split(None, "train").labels, 5000 / 60000, 0)
    assert not set(tr) & set(va) and len(set(tr) | set(va)) == 60000
    other = stratified_holdout(load_fashion_split(None, "train").labels, 5000 / 60000, 1)[1]
    assert not np.array_equal(va, other)
    assert fmnist.mean == (0.286,) * 3 and fmnist.std == (0.353,) * 3
    test = fmnist.test()
    assert len(test) == 10000 and test.images.shape == (10000, 28, 28)


@needs_fmnist
def test_fashion_mnist_png_gives_the_training_tensor(fmnist, tmp_path):
    """A 28 px Fashion-MNIST image saved as PNG and read as stimuli is, bit for bit,
    what training feeds the model for that image (inside a training batch)."""
    idx = np.arange(100, 164)
    x_train, y = make_batch(fmnist.train, idx, 32, fmnist.mean, fmnist.std)
    for j in (0, 37):
        name = FASHION_MNIST_CLASSES[y[j]]
        (tmp_path / name).mkdir(exist_ok=True)
        Image.fromarray(fmnist.train.images[idx[j]]).save(tmp_path / name / f"train_{idx[j]}.png")
    stim = vrnn.load_stimuli(tmp_path)
    got = torch.cat([x for _, x in stim.batches(1, 32, fmnist.mean, fmnist.std)])
    order = sorted((f"{FASHION_MNIST_CLASSES[y[j]]}/train_{idx[j]}.png", j) for j in (0, 37))
    expected = torch.stack([x_train[j] for _, j in order])
    assert torch.equal(got, expected)
    assert torch.equal(got[0], prepare(fmnist.train.rgb([idx[order[0][1]]]), 32, fmnist.mean, fmnist.std)[0])
