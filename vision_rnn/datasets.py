"""Training sets: MiniEcoset HDF5 files, ImageFolder trees and Fashion-MNIST.

A :class:`TrainingData` holds the train and validation images as uint8 arrays
in memory, integer labels, the class names and the input normalisation (per
channel mean and std on a 0-1 scale). Batches become model input through
:func:`vision_rnn.stimuli.prepare`, the same function extraction uses, so a
trained model sees exactly the numbers it will see from image files.

``--data`` sources (:func:`open_training_data`):

- ``PATH.h5``: a MiniEcoset-layout HDF5 file: groups ``train`` and ``val``
  (optional ``test``, ``testplus``) each with ``data`` (N, H, W, 3) uint8 and
  ``labels``; top-level ``categories`` (class names) and
  ``train_img_mean_channels`` / ``train_img_std_channels`` on a 0-255 scale
  (computed from the train images when absent);
- a folder: ``root/train/<class>/*.png`` with ``root/val/<class>/...`` (and
  optional ``root/test``), or ``root/<class>/...`` from which a stratified 10%
  of each class is held out for validation (seeded). Mean and std are computed
  from the training images;
- ``fashion-mnist[:DIR]``: the gzipped IDX files of Fashion-MNIST (default
  ``/usr/share/datasets/fashion-mnist``, Debian package
  ``dataset-fashion-mnist``). 5,000 of the 60,000 training images (500 per
  class, seeded) are held out for validation; the 10,000 test images are
  :meth:`TrainingData.test`. Mean and std are computed from the 60,000 training
  images, so they do not depend on the hold-out seed: 0.2860 and 0.3530.

Statistics are rounded to 4 decimals. Images stay 28 px grey in memory and are
replicated to RGB per batch.

>>> from vision_rnn.datasets import open_training_data
>>> data = open_training_data("fashion-mnist")          # doctest: +SKIP
>>> len(data.train), len(data.val), data.mean           # doctest: +SKIP
(55000, 5000, (0.286, 0.286, 0.286))
"""

from __future__ import annotations

import gzip
import hashlib
import os
import struct
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from .atomic import atomic_write
from .errors import DataError
from .models.registry import FASHION_MNIST_CLASSES
from .stimuli import IMAGE_EXTENSIONS, decode_image, prepare

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_VAL = 5000
FOLDER_VAL_FRACTION = 0.1
HASH_LIMIT = 2 << 30  # files larger than this are identified by size only
DATA_HELP = "pass a MiniEcoset-layout HDF5 file, an image folder or fashion-mnist[:DIR]"


@dataclass
class Split:
    """Images (N, H, W, 3) or grey (N, H, W) uint8, or a list of (H, W, 3) arrays of
    different sizes, with int64 labels (N,)."""

    images: np.ndarray | list
    labels: np.ndarray

    def __len__(self):
        return len(self.labels)

    def rgb(self, indices: Sequence[int]):
        """The images at ``indices`` as uint8 RGB: an array (n, H, W, 3), or a list
        when the images differ in size."""
        if isinstance(self.images, list):
            return [self.images[i] for i in indices]
        block = self.images[np.asarray(indices, dtype=np.int64)]
        if block.ndim == 3:
            block = np.repeat(block[..., None], 3, axis=3)
        return block


@dataclass
class TrainingData:
    """A training set: train and validation splits, class names, normalisation."""

    source: str
    kind: str  # "hdf5", "folder" or "fashion-mnist"
    classes: tuple
    mean: tuple
    std: tuple
    train: Split
    val: Split
    identity: dict = field(default_factory=dict)  # sha256 and/or bytes of the source
    split_seed: int = 0
    _test: Callable[[str], Split] | None = None

    def test(self, split: str = "test") -> Split:
        """A held-out split, loaded on request: ``test`` (Fashion-MNIST's 10,000
        images, ``root/test`` of a folder), or any group of an HDF5 file (``testplus``)."""
        if self._test is None:
            raise DataError(f"{self.source}: has no test split")
        return self._test(split)

    def describe(self) -> dict:
        """What a run records about its data."""
        return {"source": self.source, "kind": self.kind, **self.identity,
                "train_images": len(self.train), "val_images": len(self.val),
                "classes": len(self.classes), "split_seed": self.split_seed}


def open_training_data(source, split_seed: int = 0, size: int | None = None) -> TrainingData:
    """A training set from an HDF5 path, an image folder or ``fashion-mnist[:DIR]``.

    ``size``: the model input the images are for; image files decode for it as extraction
    decodes them (:func:`vision_rnn.stimuli.decode_image`), so both see the same numbers."""
    source = os.fspath(source)
    if source == "fashion-mnist" or source.startswith("fashion-mnist:"):
        folder = source.partition(":")[2] or None
        return load_fashion_mnist(folder, split_seed=split_seed)
    path = Path(source)
    if not path.exists():
        raise DataError(f"`data={source}`: no such file or folder; {DATA_HELP}")
    if path.is_dir():
        return load_image_folder(path, split_seed=split_seed, size=size)
    return load_hdf5(path)


def make_batch(split: Split, indices, size: int, mean, std, augment_key=None):
    """``(x, y)``: the images at ``indices`` prepared for a model (N, 3, size, size)
    and their labels. ``augment_key=(seed, epoch)`` applies TrivialAugmentWide to
    each uint8 image first, seeded by (seed, epoch, image index)."""
    import torch

    indices = np.asarray(indices, dtype=np.int64)
    images = split.rgb(indices)
    if augment_key is not None:
        images = augment(images, [(*augment_key, int(i)) for i in indices])
    y = torch.as_tensor(split.labels[indices], dtype=torch.long)
    return prepare(images, size, mean, std), y


_AUGMENT_LOCK = threading.Lock()


def augment(images, keys):
    """TrivialAugmentWide on each (H, W, 3) uint8 image, seeded by its key tuple; the
    result depends only on the image and the key (not on batches, ranks or threads).
    Images go through PIL, where the geometric operations are fast on small images."""
    import torch
    from PIL import Image
    from torchvision.transforms import TrivialAugmentWide

    op = TrivialAugmentWide()
    out = []
    with _AUGMENT_LOCK, torch.random.fork_rng(devices=[]):
        for im, key in zip(images, keys):
            seed = np.random.SeedSequence([int(k) for k in key]).generate_state(1, np.uint64)[0]
            torch.default_generator.manual_seed(int(seed) & 0x7FFF_FFFF_FFFF_FFFF)
            out.append(np.asarray(op(Image.fromarray(np.asarray(im), "RGB")), dtype=np.uint8))
    return np.stack(out) if len({a.shape for a in out}) == 1 else out


# -- statistics, splits, identity ---------------------------------------------------------------
def channel_stats(images, chunk: int = 4096) -> tuple[tuple, tuple]:
    """Per-channel mean and std (0-1 scale, rounded to 4 decimals) of uint8 images:
    an array (N, H, W, 3), grey (N, H, W), or a list of (H, W, 3) arrays."""
    grey = not isinstance(images, list) and images.ndim == 3
    s, s2, n = np.zeros(3), np.zeros(3), 0
    groups = images if isinstance(images, list) else (images[i:i + chunk] for i in range(0, len(images), chunk))
    for g in groups:
        g = np.asarray(g, dtype=np.float64).reshape(-1, 1 if grey else 3) / 255.0
        s += g.sum(axis=0)
        s2 += (g * g).sum(axis=0)
        n += len(g)
    if n == 0:
        raise DataError("no training images to compute the normalisation from")
    mean = s / n
    std = np.sqrt(np.maximum(s2 / n - mean ** 2, 0.0))
    mean, std = np.broadcast_to(mean, 3), np.broadcast_to(std, 3)
    return tuple(round(float(m), 4) for m in mean), tuple(round(float(v), 4) for v in std)


def stratified_holdout(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, val) index arrays: a seeded ``fraction`` of each class (at least one
    image of each class with two or more) goes to validation; both sorted."""
    rng = np.random.default_rng(seed)
    val = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        k = int(round(len(idx) * fraction))
        if len(idx) >= 2:
            k = min(max(k, 1), len(idx) - 1)
        else:
            k = 0
        val.append(rng.permutation(idx)[:k])
    val = np.sort(np.concatenate(val)) if val else np.zeros(0, np.int64)
    train = np.setdiff1d(np.arange(len(labels)), val)
    return train, val


def file_identity(paths: Sequence[Path]) -> dict:
    """sha256 over the files' bytes (in order) and their total size; size only beyond 2 GiB."""
    total = sum(os.path.getsize(p) for p in paths)
    if total > HASH_LIMIT:
        return {"bytes": total}
    h = hashlib.sha256()
    for p in paths:
        with open(p, "rb") as f:
            for block in iter(lambda: f.read(1 << 22), b""):
                h.update(block)
    return {"sha256": h.hexdigest(), "bytes": total}


# -- Fashion-MNIST -------------------------------------------------------------------------------
def read_idx(path) -> np.ndarray:
    """An IDX file of unsigned bytes (gzipped or plain) as a uint8 array of its shape."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e}); reinstall dataset-fashion-mnist or pass fashion-mnist:DIR") from None
    if len(data) < 4 or data[:2] != b"\0\0" or data[2] != 0x08:
        raise DataError(f"{path}: not an IDX file of unsigned bytes")
    ndim = data[3]
    dims = struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim])
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise DataError(f"{path}: {body.size} bytes of data for shape {dims} (truncated file?)")
    return body.reshape(dims)


def _idx_file(folder: Path, stem: str) -> Path:
    for name in (stem + ".gz", stem):
        if (folder / name).exists():
            return folder / name
    raise DataError(f"fashion-mnist:{folder}: no {stem}.gz; install the Debian package dataset-fashion-mnist "
                    "or pass fashion-mnist:DIR with the four IDX files")


def load_fashion_split(folder=None, split: str = "train") -> Split:
    """The Fashion-MNIST ``train`` (60,000) or ``test`` (10,000) file as a grey Split."""
    folder = Path(folder) if folder else FASHION_MNIST_DIR
    if not folder.is_dir():
        raise DataError(f"fashion-mnist:{folder}: no such folder; install the Debian package "
                        "dataset-fashion-mnist or pass fashion-mnist:DIR")
    prefix = "train" if split == "train" else "t10k"
    images = read_idx(_idx_file(folder, f"{prefix}-images-idx3-ubyte"))
    labels = read_idx(_idx_file(folder, f"{prefix}-labels-idx1-ubyte")).astype(np.int64)
    if images.ndim != 3 or len(images) != len(labels):
        raise DataError(f"fashion-mnist:{folder}: {prefix} images {images.shape} do not match labels {labels.shape}")
    return Split(images, labels)


def load_fashion_mnist(folder=None, split_seed: int = 0, val_size: int = FASHION_MNIST_VAL) -> TrainingData:
    """Fashion-MNIST: 55,000 train and 5,000 validation images (seeded, stratified)."""
    folder = Path(folder) if folder else FASHION_MNIST_DIR
    full = load_fashion_split(folder, "train")
    mean, std = channel_stats(full.images)
    tr, va = stratified_holdout(full.labels, val_size / len(full), split_seed)
    ident = file_identity([_idx_file(folder, "train-images-idx3-ubyte"),
                           _idx_file(folder, "train-labels-idx1-ubyte")])
    return TrainingData(f"fashion-mnist:{folder.resolve()}", "fashion-mnist", FASHION_MNIST_CLASSES, mean, std,
                        Split(full.images[tr], full.labels[tr]), Split(full.images[va], full.labels[va]),
                        ident, split_seed, lambda split: load_fashion_split(folder, _only_test(split)))


# -- MiniEcoset HDF5 ------------------------------------------------------------------------------
def load_hdf5(path) -> TrainingData:
    """A MiniEcoset-layout HDF5 file (see the module docstring)."""
    import h5py

    path = Path(path)
    try:
        f = h5py.File(path, "r")
    except OSError:
        raise DataError(f"`data={path}`: not an HDF5 file; {DATA_HELP}") from None
    with f:
        groups = [k for k in f if isinstance(f[k], h5py.Group)]
        for split in ("train", "val"):
            if split not in f or "data" not in f[split] or "labels" not in f[split]:
                raise DataError(f"{path}: no group '{split}' with 'data' and 'labels' (groups: "
                                f"{', '.join(groups) or 'none'}); expected the MiniEcoset layout "
                                "train/, val/ with data (N,H,W,3) uint8 and labels")
        train, val = (_h5_split(f, path, s) for s in ("train", "val"))
        n_classes = int(max(train.labels.max(initial=-1), val.labels.max(initial=-1))) + 1
        if "categories" in f:
            classes = tuple(c.decode() if isinstance(c, bytes) else str(c) for c in f["categories"][()])
        else:
            classes = tuple(f"class_{i:03d}" for i in range(n_classes))
        if n_classes > len(classes):
            raise DataError(f"{path}: labels go up to {n_classes - 1} but 'categories' names "
                            f"{len(classes)} classes; fix the labels or the categories")
        if "train_img_mean_channels" in f and "train_img_std_channels" in f:
            mean = tuple(round(float(v) / 255.0, 4) for v in np.ravel(f["train_img_mean_channels"][()]))
            std = tuple(round(float(v) / 255.0, 4) for v in np.ravel(f["train_img_std_channels"][()]))
            if len(mean) != 3 or len(std) != 3:
                raise DataError(f"{path}: train_img_mean_channels/std_channels must hold 3 values")
        else:
            mean, std = channel_stats(train.images)

    def test(split):
        if split not in groups or split in ("train", "val"):
            raise DataError(f"{path}: no held-out group {split!r} (groups: {', '.join(groups)})")
        return _read_split(path, split)
    return TrainingData(str(path.resolve()), "hdf5", classes, mean, std, train, val,
                        file_identity([path]), 0, test)


def write_hdf5(path, splits: dict, classes: Sequence[str]) -> Path:
    """Write images in the MiniEcoset layout: ``splits`` maps a split name ("train",
    "val", "test", ...) to ``(images (N, H, W, 3) uint8, labels (N,))``; the
    per-channel mean/std of the train images are stored on a 0-255 scale.

    >>> import numpy as np
    >>> x = np.zeros((4, 32, 32, 3), np.uint8); y = np.array([0, 1, 0, 1])
    >>> write_hdf5("tiny.h5", {"train": (x, y), "val": (x, y)}, ["a", "b"])   # doctest: +SKIP
    """
    import h5py

    def write(tmp):
        with h5py.File(tmp, "w") as f:
            for name, (images, labels) in splits.items():
                g = f.create_group(name)
                g["data"] = np.asarray(images, dtype=np.uint8)
                g["labels"] = np.asarray(labels, dtype=np.int64)
            f["categories"] = np.array([str(c).encode() for c in classes])
            x = np.asarray(splits["train"][0], dtype=np.float64).reshape(-1, 3)
            f["train_img_mean_channels"] = x.mean(axis=0)
            f["train_img_std_channels"] = x.std(axis=0)

    return atomic_write(path, write)


def _h5_split(f, path: Path, split: str) -> Split:
    data = f[split]["data"]
    if data.ndim != 4 or data.shape[-1] != 3 or data.dtype != np.uint8:
        raise DataError(f"{path}: {split}/data must be (N, H, W, 3) uint8; got {data.dtype} {data.shape}")
    labels = np.asarray(f[split]["labels"][()]).astype(np.int64).ravel()
    if len(labels) != data.shape[0]:
        raise DataError(f"{path}: {split} has {data.shape[0]} images but {len(labels)} labels")
    if labels.size and labels.min() < 0:
        raise DataError(f"{path}: {split}/labels holds negative values")
    return Split(data[()], labels)


def _only_test(split: str) -> str:
    if split != "test":
        raise DataError(f"no split {split!r}: this data set has only 'test' besides train and val")
    return split


def _read_split(path: Path, split: str) -> Split:
    import h5py

    with h5py.File(path, "r") as f:
        return _h5_split(f, path, split)


# -- ImageFolder ---------------------------------------------------------------------------------
def load_image_folder(root, split_seed: int = 0, size: int | None = None) -> TrainingData:
    """``root/train/<class>/...`` + ``root/val/<class>/...``, or ``root/<class>/...``
    with a seeded, stratified 10% validation hold-out."""
    root = Path(root)
    if (root / "train").is_dir():
        classes, train_files, train_labels = _scan(root / "train")
        if (root / "val").is_dir():
            _, val_files, val_labels = _scan(root / "val", classes)
        else:
            tr, va = stratified_holdout(np.asarray(train_labels), FOLDER_VAL_FRACTION, split_seed)
            val_files, val_labels = [train_files[i] for i in va], [train_labels[i] for i in va]
            train_files, train_labels = [train_files[i] for i in tr], [train_labels[i] for i in tr]
    else:
        classes, files, labels = _scan(root)
        tr, va = stratified_holdout(np.asarray(labels), FOLDER_VAL_FRACTION, split_seed)
        train_files, train_labels = [files[i] for i in tr], [labels[i] for i in tr]
        val_files, val_labels = [files[i] for i in va], [labels[i] for i in va]
    if not val_files:
        raise DataError(f"{root}: too few images to hold out a validation set; add images "
                        "or a val/ folder with one sub-folder per class")
    train = Split(_decode_all(train_files, size), np.asarray(train_labels, dtype=np.int64))
    val = Split(_decode_all(val_files, size), np.asarray(val_labels, dtype=np.int64))
    mean, std = channel_stats(train.images)
    all_files = sorted(train_files + val_files)
    h = hashlib.sha256()
    for p in all_files:
        h.update(p.relative_to(root).as_posix().encode() + b"\0" + p.read_bytes())
    ident = {"sha256": h.hexdigest(), "bytes": sum(os.path.getsize(p) for p in all_files)}

    def read_test(split):
        _, files, labels = _scan(root / _only_test(split), classes)
        return Split(_decode_all(files, size), np.asarray(labels, dtype=np.int64))

    return TrainingData(str(root.resolve()), "folder", tuple(classes), mean, std, train, val, ident,
                        split_seed, read_test if (root / "test").is_dir() else None)


def _scan(folder: Path, classes: Sequence[str] | None = None):
    """(class names, files, labels) of ``folder/<class>/**`` images, sorted."""
    subdirs = sorted(d.name for d in folder.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not subdirs:
        raise DataError(f"{folder}: no class sub-folders; put the images in {folder}/<class>/ "
                        f"(one sub-folder per class), or {DATA_HELP}")
    if classes is None:
        classes = subdirs
    else:
        unknown = sorted(set(subdirs) - set(classes))
        if unknown:
            raise DataError(f"{folder}: classes {unknown[:5]} are not in the training classes; "
                            "use the same class sub-folders in train/ and val/")
    files, labels = [], []
    for c, name in enumerate(classes):
        d = folder / name
        if not d.is_dir():
            continue
        found = sorted(Path(dp) / fn for dp, dns, fns in os.walk(d) for fn in fns
                       if not fn.startswith(".") and fn.lower().endswith(IMAGE_EXTENSIONS))
        if not found and folder.name not in ("val", "test"):
            raise DataError(f"{d}: class folder without images; add images or remove the folder")
        files += found
        labels += [c] * len(found)
    return list(classes), files, labels


def _decode_all(files: Sequence[Path], size: int | None = None):
    out = []
    for p in files:
        try:
            out.append(decode_image(p, size))
        except Exception as e:
            raise DataError(f"unreadable image {p} ({str(e).splitlines()[0] if str(e) else e.__class__.__name__}); "
                            "fix or remove it") from None
    if out and len({im.shape for im in out}) == 1:
        return np.stack(out)
    return out
