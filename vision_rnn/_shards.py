"""Shard sets: one data set written as N activation files by N processes (SLURM array tasks, torchrun ranks).

``vrnn extract ... -o OUT --shard I/N`` writes the I-th contiguous block of the stimuli (the
blocks of ``numpy.array_split``) to ``OUT.shards/shard-IIIII-of-NNNNN.nc`` (``.zarr``, a store
per shard, when OUT is a Zarr store); each shard is a complete activation file of its own (its ``.partial``, lock and resume as for any output).
Every command addresses the data set by ``OUT``: :func:`open_set` opens a complete set as
one lazy DataTree in the stimulus order of a single run, :func:`merge` writes the single
file ``OUT``, :func:`describe_set` reports the shards done. A set is refused while a
shard is missing or incomplete, or when its shards were written with different settings.
"""

from __future__ import annotations

import json
import os
import re
import shutil
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


def _listing(out) -> tuple[int, dict, dict]:
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


def _ranges(indices) -> str:
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


def check_set(out) -> tuple[list[Path], list[dict]]:
    """The shard files of a complete set, in order, with their root attributes; StoreError naming
    what is missing or differs."""
    from .store import PROVENANCE, read_attrs

    count, done, partial = _listing(out)
    missing = [i for i in range(count) if i not in done]
    if missing:
        running = [i for i in missing if i in partial]
        parts = [f"{len(missing)} of {count} shards are not complete (shard {_ranges(missing)})"]
        if running:
            parts.append(f"shard {_ranges(running)} interrupted or running: resume it with `resume=True`")
        raise StoreError(f"{out}: " + "; ".join(parts))
    paths = [done[i] for i in range(count)]
    attrs = [read_attrs(p) for p in paths]
    keys = [k for k in PROVENANCE if k not in ("stimuli_fingerprint", "n_stimuli")] + \
        ["shard_count", "set_n_stimuli", "set_fingerprint"]
    for k in keys:
        values = {str(a.get(k)) for a in attrs}
        if len(values) > 1:
            raise StoreError(f"{out}: its shards were written with different {k}; extract every shard with the "
                             "same options (or start the set again)")
    starts = np.cumsum([0] + [int(a["n_stimuli"]) + len(json.loads(a.get("skipped", "[]"))) for a in attrs])
    if any(int(a.get("shard_start", -1)) != s for a, s in zip(attrs, starts[:-1])) or \
            starts[-1] != int(attrs[0].get("set_n_stimuli", -1)):
        raise StoreError(f"{out}: its shards do not cover the stimuli in order; extract the set again")
    return paths, attrs


def set_attrs(attrs: list[dict]) -> dict:
    """The root attributes of the whole set (from those of its shards), as a single run writes them."""
    merged = {k: v for k, v in attrs[0].items() if k not in SET_KEYS}
    skipped = [s for a in attrs for s in json.loads(a.get("skipped", "[]"))]
    merged.update(n_stimuli=sum(int(a["n_stimuli"]) for a in attrs), stimuli_fingerprint=attrs[0]["set_fingerprint"],
                  skipped=json.dumps(skipped), batches_done=0, complete=1)
    return merged


def open_set(out, chunks=None):
    """One lazy DataTree of a complete shard set, in the stimulus order of a single run."""
    import xarray as xr

    from .store import open_activations

    paths, shard_attrs = check_set(out)
    trees = [open_activations(p, chunks=chunks) for p in paths]
    try:
        parts = {}
        for name in [""] + list(trees[0].children):
            nodes = [t.to_dataset(inherit=False) if not name else t[name].to_dataset(inherit=False) for t in trees]
            parts["/" + name] = xr.concat(nodes, dim="stimulus", data_vars="minimal", coords="minimal",
                                          compat="override", join="override", combine_attrs="override")
        tree = xr.DataTree.from_dict(parts)
        attrs = set_attrs(shard_attrs)
        attrs["batches_done"] = int(np.ceil(attrs["n_stimuli"] / int(attrs["batch_size"])))
        tree.attrs = attrs
        for name in trees[0].children:
            tree[name].attrs = dict(trees[0][name].attrs)
    except BaseException:
        for t in trees:
            t.close()
        raise
    tree.set_close(lambda: [t.close() for t in trees])
    return tree


def merge(out, *, delete_shards: bool = False, overwrite: bool = False) -> str:
    """Write the single file ``out`` from its complete shard set (equal, value for value, to an
    unsharded run); returns what was done. ``out`` already a single file: nothing to do."""
    from . import store

    out = Path(out)
    if out.exists() and not folder(out).is_dir():
        from ._zarr import is_zarr

        return f"{out} is already a single activation {'store' if is_zarr(out) else 'file'}; nothing to merge"
    if not folder(out).is_dir():
        raise StoreError(f"{out}: no such activation file and no shards ({folder(out).name}/) to merge")
    if out.exists() and not overwrite:
        raise StoreError(f"{out} exists; pass `overwrite=True` to replace it with the merged shards")
    tmp = out.with_name(f".merging-{os.getpid()}.{out.name}")
    store.remove(tmp)
    tree = open_set(out)                          # checks the set; its attributes are the merged file's
    count, done, _ = _listing(out)
    try:
        store.merge_files([done[i] for i in range(count)], tmp, {**tree.attrs, "batches_done": 0, "complete": 0},
                          tree.to_dataset(inherit=False))
        tree.close()
        store.replace(tmp, out)
    except (OSError, RuntimeError) as e:            # a full disk, mostly: one line, nothing left behind
        tree.close()
        store.remove(tmp)
        free = shutil.disk_usage(out.parent).free / 2**20
        raise StoreError(f"{out}: writing the merged file failed ({str(e).splitlines()[0] if str(e) else e.__class__.__name__}; "
                         f"{free:.0f} MiB free); free space and merge again (the shards are untouched)") from None
    except BaseException:
        tree.close()
        store.remove(tmp)
        raise
    if delete_shards:
        shutil.rmtree(folder(out))
        return f"merged {count} shards into {out} (shards deleted)"
    return f"merged {count} shards into {out} (shards kept in {folder(out).name}/)"


def describe_set(out) -> str:
    """What ``vrnn info OUT`` says of a shard set: which shards are done."""
    from .store import progress_of, read_attrs

    count, done, partial = _listing(out)
    lines = [f"shard set {out}: {len(done)} of {count} shards complete"]
    if len(done) < count:
        waiting = [i for i in range(count) if i not in done and i not in partial]
        for i in sorted(partial):
            try:
                d, total, written = progress_of(read_attrs(partial[i]))
                lines.append(f"  shard {i}: interrupted or running, {d} of {total} batches")
            except StoreError as e:
                lines.append(f"  shard {i}: {e}")
        if waiting:
            lines.append(f"  not started: shard {_ranges(waiting)}")
    else:
        total = sum(int(read_attrs(p)["n_stimuli"]) for p in done.values())
        lines.append(f"  {total} stimuli; open it with vrnn.open_activations({str(out)!r}), "
                     f"or write one file with `vrnn merge {out}`")
    return "\n".join(lines)
