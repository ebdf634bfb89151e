"""Shard sets: one data set written as N activation files by N processes (SLURM array tasks, torchrun ranks).

``vrnn extract ... -o OUT --shard I/N`` writes the I-th contiguous block of the stimuli (the
blocks of ``numpy.array_split``) to ``OUT.shards/shard-IIIII-of-NNNNN.nc`` (``.zarr``, a store
per shard, when OUT is a Zarr store); each shard is a complete activation file of its own (its ``.partial``, lock and resume as for any output).
This module knows the names and attributes of a set; :mod:`vision_rnn.store` reads them.
Every command addresses the data set by ``OUT``: :func:`vision_rnn.store.open_set` opens a
complete set as one lazy DataTree in the stimulus order of a single run,
:func:`vision_rnn.store.merge` writes the single file ``OUT``,
:func:`vision_rnn.store.describe_set` reports the shards done. A set is refused while a
shard is missing or incomplete, or when its shards were written with different settings.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from .errors import StoreError, VRNNError

NAME = re.compile(r"^shard-(\d{5})-of-(\d{5})\.(nc|zarr)(\.partial)?$")
SET_KEYS = ("shard_index", "shard_count", "shard_start", "set_n_stimuli", "set_fingerprint")


def folder(out) -> Path:
    """``OUT.shards``: where the shards of ``OUT`` are written."""
    out = Path(out)
    return out.with_name(out.name + ".shards")


def shard_path(out, index: int, count: int) -> Path:
    """Shards are written in the format of ``out``: netCDF files, or Zarr stores for ``NAME.zarr``."""
    from ._zarr import is_zarr

    return folder(out) / f"shard-{index:05d}-of-{count:05d}.{'zarr' if is_zarr(out) else 'nc'}"


def parse(spec) -> tuple[int, int]:
    """``"I/N"`` (or a pair) -> (I, N) with 0 <= I < N; VRNNError naming ``shard`` otherwise."""
    shown = str(spec) if str(spec).isprintable() else repr(str(spec))
    try:
        index, count = (spec.split("/") if isinstance(spec, str) else spec)
        index, count = int(index), int(count)
    except (TypeError, ValueError):
        raise VRNNError(f"`shard={shown}`: write it I/N, the I-th of N shards (0 <= I < N), e.g. 0/4") from None
    if count < 1 or not 0 <= index < count:
        raise VRNNError(f"`shard={shown}`: needs 0 <= I < N (the I-th of N shards, counted from 0)")
    return index, count


def block(n_stimuli: int, index: int, count: int) -> np.ndarray:
    """The stimuli of shard ``index`` of ``count``: the contiguous blocks of ``numpy.array_split``."""
    if count > n_stimuli:
        raise VRNNError(f"`shard={index}/{count}`: {count} shards for {n_stimuli} stimuli; use at most "
                        f"{n_stimuli} shards")
    return np.array_split(np.arange(n_stimuli), count)[index]


def is_set(out) -> bool:
    out = Path(out)
    return not out.exists() and folder(out).is_dir()


def listing(out) -> tuple[int, dict, dict]:
    """(N, {index: complete shard}, {index: partial shard}) of the set of ``out``."""
    counts, done, partial = set(), {}, {}
    for p in sorted(folder(out).iterdir()):
        m = NAME.match(p.name)
        if not m:
            continue
        i, n = int(m.group(1)), int(m.group(2))
        counts.add(n)
        (partial if m.group(4) else done)[i] = p
    if not counts:
        raise StoreError(f"{folder(out)}: holds no shard (shard-IIIII-of-NNNNN.nc or .zarr); extract with "
                         "`shard=I/N` and this `out`")
    if len(counts) > 1:
        raise StoreError(f"{folder(out)}: holds shards of sets of different sizes ({', '.join(map(str, sorted(counts)))} "
                         "shards); keep one set in it")
    return counts.pop(), done, partial


def ranges(indices) -> str:
    """Sorted indices as runs: ``[0, 1, 2, 5]`` -> ``"0-2, 5"``."""
    out, run = [], []
    for i in sorted(indices):
        if run and i == run[-1] + 1:
            run.append(i)
        else:
            if run:
                out.append(f"{run[0]}" if len(run) == 1 else f"{run[0]}-{run[-1]}")
            run = [i]
    if run:
        out.append(f"{run[0]}" if len(run) == 1 else f"{run[0]}-{run[-1]}")
    return ", ".join(out)


def set_attrs(attrs: list[dict]) -> dict:
    """The root attributes of the whole set (from those of its shards), as a single run writes them."""
    merged = {k: v for k, v in attrs[0].items() if k not in SET_KEYS}
    skipped = [s for a in attrs for s in json.loads(a.get("skipped", "[]"))]
    merged.update(n_stimuli=sum(int(a["n_stimuli"]) for a in attrs), stimuli_fingerprint=attrs[0]["set_fingerprint"],
                  skipped=json.dumps(skipped), batches_done=0, complete=1)
    return merged
