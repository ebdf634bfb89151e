"""The input side of an extraction: batches of images decoded and prepared ahead of the model.

:class:`Batches` is a torch map-style dataset over batch numbers; :func:`batches` runs it
in ``workers`` forked processes (a torch DataLoader), each preparing a whole batch for
the model (:func:`vision_rnn.stimuli.prepare`, large JPEGs decoded at reduced scale).
An image that does not decode is reported with every other bad image of its batch,
never raised half-way; each image file's size, mtime and content hash travel with its
batch, for the resume check of :mod:`vision_rnn.extract`.
"""

from __future__ import annotations

import hashlib
import math
import multiprocessing as mp
import os

import numpy as np

from .errors import WriteFailed
from .stimuli import SCAN_ALL_BELOW, unreadable

SOURCE = np.dtype([("index", "<i8"), ("size", "<i8"), ("mtime_ns", "<i8"), ("hash", "<u8")])


def file_hash(path) -> int:
    """A 64-bit content hash (BLAKE2b) of a file, read in 1 MiB blocks."""
    h = hashlib.blake2b(digest_size=8)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(2**20), b""):
            h.update(block)
    return int.from_bytes(h.digest(), "little")


def scan_all(stim, found: dict, size: int) -> str:
    """The error of a run that failed before its first batch (``found``: {index: reason}): every
    unreadable file of a small folder, else those found so far."""
    complete = stim.files is not None and len(stim) <= SCAN_ALL_BELOW
    if complete:
        found = {**found, **stim.decode_errors([i for i in range(len(stim)) if i not in found], size)}
    note = "" if complete else " (found in the first batch; `skip_bad=True` checks every file first)"
    return f"{unreadable(stim, found)}{note}; nothing was written: fix or remove them, or pass `skip_bad=True`"


class Batches:
    """Batch ``b`` of the stimuli, decoded and prepared for the model (a torch map-style dataset).

    Returns ``(b, x, bad, sources)``: ``x`` the (k, 3, size, size) tensor (None when an image
    is unreadable), ``bad`` {index: reason} of the unreadable images of the batch, ``sources``
    the size, mtime and content hash of each image file (None for other stimuli).
    """

    def __init__(self, stim, layout, size, mean, std, start):
        self.stim, self.n, self.bs = stim, layout.n_stimuli, layout.batch_size
        self.size, self.mean, self.std, self.start = size, mean, std, start
        self.total = math.ceil(self.n / self.bs)

    def __len__(self):
        return self.total - self.start

    def __getitem__(self, k):
        from .stimuli import prepare

        b = self.start + k
        idx = list(range(b * self.bs, min((b + 1) * self.bs, self.n)))
        sources = self._sources(idx) if self.stim.files is not None else None
        try:
            images = self.stim.load(idx, self.size)
        except Exception as e:  # noqa: BLE001 - find every unreadable image of the batch
            bad = self.stim.decode_errors(idx, self.size)
            return b, None, bad or {idx[0]: str(e).split("\n")[0] or e.__class__.__name__}, sources
        return b, prepare(images, self.size, self.mean, self.std), {}, sources

    def _sources(self, idx):
        out = np.zeros(len(idx), dtype=SOURCE)
        for j, i in enumerate(idx):
            f = self.stim.files[i]
            try:
                st = os.stat(f)
                out[j] = (i, st.st_size, st.st_mtime_ns, file_hash(f))
            except OSError:
                out[j] = (i, -1, -1, 0)
        return out


def batches(stim, layout, model, start, workers, device):
    """The prepared batches from ``start`` on, decoded in ``workers`` processes ahead of the model."""
    from torch.utils.data import DataLoader

    data = Batches(stim, layout, model.input_size, model.mean, model.std, start)
    if workers == 0:
        return (data[k] for k in range(len(data)))
    return iter(DataLoader(data, batch_size=None, shuffle=False, num_workers=workers, prefetch_factor=2,
                           multiprocessing_context=mp.get_context("fork"),
                           pin_memory=device.type == "cuda", collate_fn=_as_is,
                           worker_init_fn=_worker_init))


def decoded(batches):
    """The batches, with a decoding process that died (killed, out of memory) as one clear error."""
    while True:
        try:
            item = next(batches)
        except StopIteration:
            return
        except RuntimeError as e:
            if "DataLoader worker" not in str(e):
                raise
            raise WriteFailed(f"a decoding process stopped ({str(e).splitlines()[0]})",
                               "find out why (memory, a signal), or pass fewer `workers`") from None
        yield item


def _as_is(item):
    return item


def _worker_init(_):
    import torch

    torch.set_num_threads(1)
