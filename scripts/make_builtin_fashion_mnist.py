#!/usr/bin/env python
"""Generate vision_rnn/data/fashion_mnist_500.npz, the ``builtin:fashion-mnist`` stimuli.

Selection: the first 50 images of each of the 10 classes of the Fashion-MNIST
10k TEST set, in test-set order, stored sorted by class then test-set index
(500 images). Source: the gzipped IDX files of the Debian package
``dataset-fashion-mnist`` (/usr/share/datasets/fashion-mnist/).

Arrays written (np.savez_compressed):
  images      uint8 (500, 28, 28), grey, as in the IDX file
  ids         str   (500,)  "<class>/test_<index:05d>", e.g. "tshirt_top/test_00019"
  label_names str   (500,)  the class name of each image
  test_index  int64 (500,)  index of each image in the 10k test set

Usage:
  python scripts/make_builtin_fashion_mnist.py [--source DIR] [--out FILE] [--per-class 50]
"""

from __future__ import annotations

import argparse
import gzip
import struct
from pathlib import Path

import numpy as np

CLASSES = ["tshirt_top", "trouser", "pullover", "dress", "coat",
           "sandal", "shirt", "sneaker", "bag", "ankle_boot"]  # label 0..9
DEFAULT_SOURCE = Path("/usr/share/datasets/fashion-mnist")
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "vision_rnn" / "data" / "fashion_mnist_500.npz"
IMAGES_MAGIC, LABELS_MAGIC = 2051, 2049  # 0x00000803 (ubyte, 3 dims), 0x00000801 (ubyte, 1 dim)


def read_idx(path: Path, magic: int) -> np.ndarray:
    """Read a gzipped (or plain) IDX file of unsigned bytes; check its magic number."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    found = struct.unpack(">I", data[:4])[0]
    if found != magic:
        raise SystemExit(f"{path}: magic number {found}, expected {magic} (not an IDX file of this kind)")
    ndim = magic & 0xFF
    dims = struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim])
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise SystemExit(f"{path}: {body.size} bytes of data for shape {dims}")
    return body.reshape(dims)


def select(labels: np.ndarray, per_class: int) -> np.ndarray:
    """Indices of the first ``per_class`` items of each class, sorted by class then index."""
    out = []
    for c in range(len(CLASSES)):
        idx = np.flatnonzero(labels == c)[:per_class]
        if len(idx) < per_class:
            raise SystemExit(f"class {c} has only {len(idx)} test images")
        out.append(idx)
    return np.concatenate(out)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--source", type=Path, default=DEFAULT_SOURCE,
                   help="folder with t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    p.add_argument("--per-class", type=int, default=50)
    a = p.parse_args(argv)

    images = read_idx(a.source / "t10k-images-idx3-ubyte.gz", IMAGES_MAGIC)
    labels = read_idx(a.source / "t10k-labels-idx1-ubyte.gz", LABELS_MAGIC)
    if images.shape[1:] != (28, 28) or len(images) != len(labels):
        raise SystemExit(f"unexpected shapes: images {images.shape}, labels {labels.shape}")

    idx = select(labels, a.per_class)
    names = np.array([CLASSES[labels[i]] for i in idx])
    ids = np.array([f"{CLASSES[labels[i]]}/test_{i:05d}" for i in idx])
    a.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(a.out, images=np.ascontiguousarray(images[idx]), ids=ids,
                        label_names=names, test_index=idx.astype(np.int64))
    print(f"wrote {a.out}: {len(idx)} images, {a.out.stat().st_size} bytes, first id {ids[0]}")


if __name__ == "__main__":
    main()
