"""Per-step accuracy of a model on the full Fashion-MNIST test set, measured as a user would.

The 10,000 test images are written once as PNG files in class folders
(``<cache>/fashion-mnist-test/<class>/test_NNNNN.png``, from the Debian package
``dataset-fashion-mnist``), run through ``vrnn extract`` (labels come from the
folder names), and the accuracy at every step is read off the file's logits.

    python scripts/evaluate_model.py lateral                 # shipped weights
    python scripts/evaluate_model.py runs/lateral --json out.json

Prints one line per step and, with ``--json``, writes the numbers.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

CLASSES = ("tshirt_top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle_boot")


def read_idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic, n = struct.unpack(">II", data[:8])
    if magic == 2051:
        rows, cols = struct.unpack(">II", data[8:16])
        return np.frombuffer(data, np.uint8, offset=16).reshape(n, rows, cols)
    if magic == 2049:
        return np.frombuffer(data, np.uint8, offset=8)
    raise ValueError(f"{path}: not an IDX file (magic {magic})")


def export_test_set(source: Path, folder: Path) -> Path:
    """Write the 10k test images as PNGs in class folders (skipped if already complete)."""
    from PIL import Image

    done = folder / ".complete"
    if done.exists():
        return folder
    images = read_idx(source / "t10k-images-idx3-ubyte.gz")
    labels = read_idx(source / "t10k-labels-idx1-ubyte.gz")
    for c in CLASSES:
        (folder / c).mkdir(parents=True, exist_ok=True)
    for i, (im, lab) in enumerate(zip(images, labels)):
        Image.fromarray(im).save(folder / CLASSES[lab] / f"test_{i:05d}.png")
    done.write_text("10000\n")
    return folder


def evaluate(model: str, source: Path, cache: Path, batch_size: int = 250) -> dict:
    import vision_rnn as vrnn

    stim = export_test_set(source, cache / "fashion-mnist-test")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "eval.nc"
        cmd = ["vrnn", "extract", "--model", model, "--stimuli", str(stim), "--layers", "gap",
               "--batch-size", str(batch_size), "-o", str(out)]
        subprocess.run(cmd, check=True)
        with vrnn.open_activations(out) as tree:
            logits = tree["logits"].values
            labels = tree["label"].values
    if (labels < 0).any():
        raise SystemExit("some test images did not get a label: does the model use the Fashion-MNIST class names?")
    pred = logits.argmax(axis=2)
    acc = (pred == labels[:, None]).mean(axis=0)
    return {"test_images": int(len(labels)), "test_accuracy_per_step": [round(float(a), 4) for a in acc],
            "command": " ".join(["vrnn", "extract", "--model", model, "--stimuli", "fashion-mnist-test/",
                                 "--layers", "gap", "-o", "eval.nc"])}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", help="model name, run folder or weights file")
    ap.add_argument("--source", default="/usr/share/datasets/fashion-mnist", type=Path)
    ap.add_argument("--cache", default=Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "vision-rnn",
                    type=Path)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    if not (args.source / "t10k-images-idx3-ubyte.gz").exists():
        sys.exit(f"{args.source}: no Fashion-MNIST IDX files; apt-get install dataset-fashion-mnist or pass --source")
    res = evaluate(args.model, args.source, args.cache)
    for t, a in enumerate(res["test_accuracy_per_step"]):
        print(f"step {t}: {a:.4f}")
    if args.json:
        args.json.write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
