"""The activation file: netCDF-4 with one group per layer (DESIGN.md section 2), or the same
layout in a Zarr v3 store for an output named ``NAME.zarr`` (:mod:`vision_rnn._zarr`).

Writing goes through :class:`ActivationFile`: ``create`` lays out every
variable (coordinates, readout, attributes) in ``<out>.partial``, batches are
then written into it (see :mod:`vision_rnn.extract`), and ``finish`` marks it
complete and renames it. Reading goes through :func:`open_activations`
(lazy, dask-backed) and :func:`layer`.

This module is the only one that opens activation files, and it opens each
file at most once per process: every reader here (DataTrees, attributes,
``vrnn info``) borrows one shared handle per file (:mod:`vision_rnn._handles`
says why), and writers refuse a file that is open for reading in the same
process. A ``.partial`` being written carries a lock naming its writer.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import shutil
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import _handles, _shards, _zarr, atomic
from ._locks import being_written, writer_of
from ._handles import check_not_open, is_open  # noqa: F401  (part of the store's API)
from .errors import StoreError

CHUNK_BYTES = 16 * 2**20
LAYER_CHUNK_BYTES = 2 * 2**20     # a layer's chunk: one batch at one step, units split to stay under this
COMPRESSIONS = ("zstd", "zlib", "none")
# attrs that must agree for --resume to continue a .partial
PROVENANCE = ("model", "model_config", "weights_sha256", "seed", "stimuli_fingerprint", "layers",
              "timesteps", "batch_size", "pool", "dtype", "compression", "n_stimuli")


# every name of the layout (DESIGN.md section 2): dimensions, coordinates, variables; groups are the layers
LAYOUT_NAMES = frozenset({"stimulus", "time", "class", "feature", "unit",               # dimensions
                          "label", "label_name", "channel", "row", "col", "time_ms",    # coordinates
                          "logits", "readout_weight", "readout_bias", "activation"})    # variables
MAX_NAME_BYTES = 256  # NC_MAX_NAME


def name_problem(name) -> str | None:
    """Why ``name`` cannot be a metadata coordinate of an activation file (None if it can).

    netCDF's rules for names (valid UTF-8 in Unicode NFC, starting with a letter, digit,
    underscore or non-ASCII character, no '/' or control characters, no trailing space,
    at most 256 bytes), and no whitespace at all: the file lists its coordinates in a
    space-separated attribute.
    """
    import unicodedata

    if not isinstance(name, str):
        return f"{name!r} is not a string"
    if name == "":
        return "an empty name"
    try:
        raw = name.encode("utf-8")
    except UnicodeEncodeError:
        return f"{name!r} is not valid UTF-8"
    if len(raw) > MAX_NAME_BYTES:
        return f"{name[:20]!r}... is longer than {MAX_NAME_BYTES} bytes"
    if unicodedata.normalize("NFC", name) != name:
        return f"{name!r} is not in Unicode NFC form"
    first = name[0]
    if first.isascii() and not (first.isalnum() or first == "_"):
        return f"{name!r} does not start with a letter, digit or underscore"
    if "/" in name:
        return f"{name!r} contains '/'"
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        return f"{name!r} contains a control character"
    if any(c.isspace() for c in name):
        return f"{name!r} contains whitespace"
    return None


def check_metadata_names(columns, layers=(), where: str = "metadata") -> None:
    """Refuse, in one line, metadata columns that collide with the layout or break netCDF's naming rules."""
    taken = LAYOUT_NAMES | set(layers)
    problems = []
    for col in columns:
        if isinstance(col, str) and col in taken:
            what = "a layer" if col in set(layers) and col not in LAYOUT_NAMES else "a name of the file's layout"
            problems.append(f"{col!r} is {what}")
        else:
            why = name_problem(col)
            if why:
                problems.append(why)
    if problems:
        raise StoreError(f"{where}: {len(problems)} column name(s) cannot be stored: {'; '.join(problems)}; "
                         f"rename them (reserved: {', '.join(sorted(taken))})")


@dataclass
class VarSpec:
    """One per-stimulus variable: where it lives and its per-stimulus shape (time, n)."""

    name: str            # "logits" or a layer name
    group: str | None    # None for the root
    n: int               # units (or classes for logits)
    dtype: str           # what the values are rounded to: float32 or float16
    spatial: tuple | None = None  # (C, H, W) for convolutional layers stored unpooled

    @property
    def stored(self) -> str:
        """netCDF has no 16-bit float: float16 values are kept as float32 rounded to
        float16 precision (BitRound, 10 mantissa bits), which compression then packs."""
        return "float32"

    def chunks(self, batch_size: int, timesteps: int) -> tuple:
        """A layer's chunk is one batch of stimuli at one step, units split to stay under 2 MiB;
        the logits' chunk is one batch at every step (under 16 MiB).

        One step per chunk lets the readers that go step by step (RDMs over time, and the
        comparison's Gram accumulation over blocks of units, for layers larger than memory)
        read each chunk once and only the steps they need; a batch per chunk keeps every
        written batch whole chunks. The analyses that need every step of a stimulus read a
        batch's chunks of all steps together.
        """
        item = np.dtype(self.stored).itemsize
        steps = timesteps if self.group is None else 1
        cap = CHUNK_BYTES if self.group is None else LAYER_CHUNK_BYTES
        splits = max(1, math.ceil(batch_size * steps * self.n * item / cap))
        return (batch_size, steps, math.ceil(self.n / splits))


@dataclass
class Layout:
    """Everything the file holds, decided before anything is written."""

    n_stimuli: int
    timesteps: int
    batch_size: int
    specs: list = field(default_factory=list)

    def nbytes(self) -> int:
        return sum(self.n_stimuli * self.timesteps * s.n * np.dtype(s.stored).itemsize for s in self.specs)

    def batch_nbytes(self) -> int:
        return sum(self.batch_size * self.timesteps * s.n * np.dtype(s.stored).itemsize for s in self.specs)


def _encoding(compression: str) -> dict:
    if compression == "zstd":
        return dict(compression="zstd", complevel=1, shuffle=True)
    if compression == "zlib":
        return dict(compression="zlib", complevel=1, shuffle=True)
    return {}


CONVENTIONS = "CF-1.11 vision-rnn-activations-1.0"   # CF, and this layout's own version (DESIGN.md section 2)
LONG_NAMES = {
    "stimulus": "stimulus id (path relative to the stimuli root, '/'-separated)",
    "time": "model time step (0 .. T-1; milliseconds only through a TimeMapping, see time_ms)",
    "class": "class name of the model's readout",
    "label": "class index of the stimulus's label in the model's classes (-1: none)",
    "label_name": "label of the stimulus (its first folder for a folder of images)",
    "channel": "channel of the unit", "row": "row of the unit in the feature map",
    "col": "column of the unit in the feature map",
    "readout_weight": "readout matrix (class x feature); feature = units of the readout layer",
    "readout_bias": "readout bias per class",
    "logits": "readout logits (before softmax)",
}


def activation_long_name(layer: str) -> str:
    return f"{layer} activation after ReLU"


def _str_var(ds, name, dim, values):
    v = ds.createVariable(name, str, (dim,))
    for i, s in enumerate(values):
        v[i] = s
    return v


def _describe_var(var, name: str) -> None:
    if name in LONG_NAMES:
        var.setncattr("long_name", LONG_NAMES[name])


def create(path, layout: Layout, *, stimuli_ids, labels, label_names, metadata, classes,
           readout_weight, readout_bias, attrs: dict, compression: str) -> None:
    """Write the layout of an activation file at ``path`` (activations still empty)."""
    import netCDF4

    enc = _encoding(compression)
    if metadata is not None:
        check_metadata_names(list(metadata.columns), [sp.group for sp in layout.specs if sp.group])
    if _zarr.is_zarr(path):
        return _zarr.create(path, layout, stimuli_ids=stimuli_ids, labels=labels, label_names=label_names,
                            metadata=metadata, classes=classes, readout_weight=readout_weight,
                            readout_bias=readout_bias, attrs=attrs, compression=compression, long_names=LONG_NAMES,
                            activation_long_name=activation_long_name)
    _handles.check_not_open(path)
    with netCDF4.Dataset(path, "w", format="NETCDF4") as ds:
        n, t = layout.n_stimuli, layout.timesteps
        ds.createDimension("stimulus", n)
        ds.createDimension("time", t)
        ds.createDimension("class", len(classes))
        if readout_weight is not None:
            ds.createDimension("feature", readout_weight.shape[1])
        _str_var(ds, "stimulus", "stimulus", stimuli_ids)
        ds.createVariable("time", "i4", ("time",))[:] = np.arange(t)
        _str_var(ds, "class", "class", classes)
        ds.createVariable("label", "i8", ("stimulus",))[:] = np.asarray(labels, dtype=np.int64)
        _str_var(ds, "label_name", "stimulus", label_names)
        for name in ("stimulus", "time", "class", "label", "label_name"):
            _describe_var(ds.variables[name], name)
        coord_names = ["label", "label_name"]
        if metadata is not None:
            for col in metadata.columns:
                values = metadata[col].to_numpy()
                name = str(col)
                if values.dtype.kind == "b":         # netCDF has no bool: int8 that xarray reads back as bool
                    var = ds.createVariable(name, "i1", ("stimulus",))
                    var[:] = values.astype(np.int8)
                    var.setncattr("dtype", "bool")
                elif values.dtype.kind in "iu":
                    ds.createVariable(name, values.dtype.str.lstrip("<>|="), ("stimulus",))[:] = values
                elif values.dtype.kind == "f":           # float16 (no netCDF type) and float32 kept as float32
                    kind = "f8" if values.dtype.itemsize >= 8 else "f4"
                    ds.createVariable(name, kind, ("stimulus",))[:] = values.astype(kind)
                else:
                    _str_var(ds, name, "stimulus", [str(v) for v in values])
                coord_names.append(name)
        if readout_weight is not None:
            ds.createVariable("readout_weight", "f4", ("class", "feature"))[:] = readout_weight
            _describe_var(ds.variables["readout_weight"], "readout_weight")
        if readout_weight is not None and readout_bias is not None:
            ds.createVariable("readout_bias", "f4", ("class",))[:] = readout_bias
            _describe_var(ds.variables["readout_bias"], "readout_bias")
        for spec in layout.specs:
            grp = ds if spec.group is None else ds.createGroup(spec.group)
            last = "class" if spec.group is None else "unit"
            if spec.group is not None:
                grp.createDimension("unit", spec.n)
            quantize = dict(significant_digits=10, quantize_mode="BitRound") if spec.dtype == "float16" else {}
            var = grp.createVariable(spec.name if spec.group is None else "activation", spec.stored,
                                     ("stimulus", "time", last),
                                     chunksizes=spec.chunks(layout.batch_size, t), **enc, **quantize)
            if spec.group is None:
                var.setncattr("coordinates", " ".join(coord_names))
                _describe_var(var, "logits")
                continue
            if spec.spatial is not None:
                c, h, w = spec.spatial
                cc, rr, ww = np.unravel_index(np.arange(spec.n), (c, h, w))
                for name, values in (("channel", cc), ("row", rr), ("col", ww)):
                    grp.createVariable(name, "i4", ("unit",))[:] = values
                    _describe_var(grp.variables[name], name)
                var.setncattr("coordinates", "channel row col")
                var.setncattr("spatial_shape", np.array(spec.spatial, dtype=np.int32))
            else:
                grp.createVariable("channel", "i4", ("unit",))[:] = np.arange(spec.n)
                _describe_var(grp.variables["channel"], "channel")
                var.setncattr("coordinates", "channel")
            var.setncattr("long_name", activation_long_name(spec.group))
        attrs = dict(attrs, complete=0, batches_done=0)
        for k, v in attrs.items():
            ds.setncattr(k, v)


def _refuse_if_being_written(path) -> None:
    """Readers: refuse a .partial another process is writing (HDF5 would fail to open it, or read it torn)."""
    if str(path).endswith(".partial"):
        w = writer_of(path)
        if w is not None and int(w["pid"]) != os.getpid():
            raise StoreError(being_written(path))


@contextmanager
def _reading(path):
    """The file (netCDF4.Dataset) or store (:class:`vision_rnn._zarr.Group`) at ``path``, for reading."""
    if _zarr.is_zarr(path):
        yield _zarr.open_group(path, "r")
    else:
        with _handles.reading(path) as ds:
            yield ds


def read_attrs(path) -> dict:
    """Root attributes of a netCDF file or Zarr store (StoreError if it is neither)."""
    _refuse_if_being_written(path)
    with _reading(path) as ds:
        return {k: ds.getncattr(k) for k in ds.ncattrs()}


@contextmanager
def _checked(path):
    """``(ds, attrs)`` of an activation file whose attributes and layout have been checked."""
    _refuse_if_being_written(path)
    with _reading(path) as ds:
        yield ds, checked_attrs(path, ds)


def checked_attrs(path, ds) -> dict:
    """The root attributes of the open activation file ``ds``, after checking they and its layout fit."""
    attrs = {k: ds.getncattr(k) for k in ds.ncattrs()}
    _check_vrnn(path, attrs)
    _check_layout(path, ds)
    return attrs


def resume_point(partial) -> int:
    """The batches an interrupted extraction wrote (its layout checked first)."""
    with _checked(partial) as (_, attrs):
        return progress_of(attrs)[0]


def written_ids(path, n: int) -> tuple[list, list]:
    """The ids and labels of the first ``n`` stimuli of an activation file."""
    with _checked(path) as (ds, _):
        ids = [str(v) for v in np.asarray(ds.variables["stimulus"][:n])]
        labels = [int(v) for v in np.asarray(ds.variables["label"][:n])]
    return ids, labels


def _copy_rows(a, b, specs, n: int, step: int, at: int = 0) -> None:
    """Rows 0..n of every per-stimulus variable of the open file ``a`` into rows at..at+n of ``b``,
    ``step`` rows at a time (bounded memory), values as stored."""
    for spec in specs:
        va = a.variables[spec.name] if spec.group is None else a.groups[spec.group].variables["activation"]
        vb = b.variables[spec.name] if spec.group is None else b.groups[spec.group].variables["activation"]
        va.set_auto_maskandscale(False)
        vb.set_auto_maskandscale(False)
        for lo in range(0, n, step):
            hi = min(lo + step, n)
            vb[at + lo:at + hi] = va[lo:hi]


def copy_batches(src, dst, layout, n: int, batches: int) -> None:
    """Copy the first ``n`` stimuli of every activation variable of ``src`` into ``dst`` (a new
    file of the same variables), one batch at a time, and record ``batches`` as done."""
    with _checked(src) as (a, _), appending(dst) as b:
        _copy_rows(a, b, layout.specs, n, layout.batch_size)
        b.setncattr("batches_done", int(batches))
        b.sync()


def merge_files(paths, dst, attrs: dict, root) -> None:
    """Write ``dst``: the activation files ``paths`` (the shards of one set, in order) as one file
    laid out as a single run lays it out. ``root`` holds the stimulus coordinates of the whole
    set (ids, labels, label names, metadata); ``attrs`` its root attributes."""
    import pandas as pd

    with _checked(paths[0]) as (ds, a):
        t = ds.dimensions["time"].size
        classes = [str(c) for c in np.asarray(ds.variables["class"][:])]
        weight = np.asarray(ds.variables["readout_weight"][:]) if "readout_weight" in ds.variables else None
        bias = np.asarray(ds.variables["readout_bias"][:]) if "readout_bias" in ds.variables else None
        specs = [VarSpec("logits", None, ds.dimensions["class"].size, "float32")]
        for name, g in ds.groups.items():
            var = g.variables["activation"]
            spatial = tuple(int(v) for v in var.getncattr("spatial_shape")) if "spatial_shape" in var.ncattrs() else None
            specs.append(VarSpec(name, name, g.dimensions["unit"].size, str(a.get("dtype", "float32")), spatial))
        batch_size, compression = int(a["batch_size"]), str(a.get("compression", "zstd"))
    n = root.sizes["stimulus"]
    layout = Layout(n, t, min(batch_size, n), specs)
    columns = [c for c in root.coords if root[c].dims == ("stimulus",) and c not in ("stimulus", "label", "label_name")]
    meta = pd.DataFrame({c: root[c].values for c in columns}, index=root["stimulus"].values) if columns else None
    create(dst, layout, stimuli_ids=[str(i) for i in root["stimulus"].values], labels=root["label"].values,
           label_names=[str(v) for v in root["label_name"].values], metadata=meta, classes=classes,
           readout_weight=weight, readout_bias=bias, attrs=attrs, compression=compression)
    start = 0
    with appending(dst) as out:
        for path in paths:
            with _checked(path) as (src, _):
                k = src.dimensions["stimulus"].size
                _copy_rows(src, out, specs, k, layout.batch_size, at=start)
            start += k
        out.setncattr("batches_done", math.ceil(n / layout.batch_size))
        out.setncattr("complete", 1)
        out.sync()
    if _zarr.is_zarr(dst):
        _zarr.consolidate(dst)


def provenance_mismatch(path, expected: dict) -> list[str]:
    """The provenance fields of ``path`` that differ from ``expected``."""
    attrs = read_attrs(path)
    return [k for k in PROVENANCE if str(attrs.get(k)) != str(expected.get(k))]


@contextmanager
def appending(path, check: bool = True):
    """``path`` opened for writing (netCDF4.Dataset, mode "a", or a Zarr store); a netCDF file is
    refused while it is open for reading.

    ``check=False`` is for the extraction's writer process, whose parent has checked."""
    import netCDF4

    if _zarr.is_zarr(path):
        yield _zarr.open_group(path, "r+")
        return
    if check:
        _handles.check_not_open(path)
    with netCDF4.Dataset(path, "a") as ds:
        yield ds


def write_rows(ds, targets: dict, lo: int, views: dict, k: int) -> None:
    """Rows lo..lo+k of the variables ``targets`` of the open file ``ds`` from the arrays ``views``."""
    if isinstance(ds, _zarr.Group):
        ds.write_rows(targets, lo, views, k)            # the variables' chunks compressed in parallel
        return
    for name, var in targets.items():
        var[lo:lo + k] = views[name][:k]


def finish(partial: Path, out: Path) -> None:
    with appending(partial) as ds:
        ds.setncattr("complete", 1)
    if _zarr.is_zarr(partial):
        _zarr.consolidate(partial)
    atomic.replace(partial, out)


def size_on_disk(path) -> int:
    """Bytes of an activation file, or of the files of a Zarr store."""
    path = Path(path)
    return _zarr.nbytes(path) if path.is_dir() else path.stat().st_size


def base_attrs(model, stim, layout, *, layers, pool, dtype, compression, skipped) -> dict:
    from ._version import __version__

    prov = model.provenance
    return {
        "model": model.name,
        "model_config": str(prov["config"]),
        "weights": str(prov["weights"]),
        "weights_sha256": str(prov["weights_sha256"]),
        "seed": int(prov["seed"] if prov.get("seed") is not None else -1),
        "vision_rnn_version": __version__,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "stimuli_source": str(stim.source),
        "stimuli_fingerprint": stim.fingerprint(),
        "n_stimuli": layout.n_stimuli,
        "input_size": int(model.input_size),
        "readout_layer": str(getattr(model, "readout_layer", None) or ""),
        "layers": ",".join(layers),
        "timesteps": int(layout.timesteps),
        "batch_size": int(layout.batch_size),
        "pool": pool or "none",
        "dtype": dtype,
        "compression": compression,
        "skipped": json.dumps(list(skipped)),
        "Conventions": CONVENTIONS,
    }


# -- reading ---------------------------------------------------------------------------------
def _check_vrnn(path, attrs) -> None:
    if "vision_rnn_version" not in attrs or "layers" not in attrs:
        raise StoreError(f"{path}: not an activation file written by vrnn extract (no vision-rnn attributes)")


def _check_layout(path, ds) -> None:
    """Refuse a netCDF file with vision-rnn attributes but not the layout of an activation file."""
    problems = []
    for dim in ("stimulus", "time", "class"):
        if dim not in ds.dimensions:
            problems.append(f"no {dim!r} dimension")
    for name, dims in (("stimulus", ("stimulus",)), ("time", ("time",)), ("class", ("class",)),
                       ("label", ("stimulus",)), ("logits", ("stimulus", "time", "class"))):
        if name not in ds.variables:
            problems.append(f"no {name!r} variable")
        elif ds.variables[name].dimensions != dims:
            problems.append(f"{name!r} is on {ds.variables[name].dimensions}, not {dims}")
    for g in ds.groups.values():
        var = g.variables.get("activation")
        if var is None or var.dimensions != ("stimulus", "time", "unit"):
            problems.append(f"group {g.name!r} has no activation (stimulus, time, unit)")
    counts = {k: _whole(ds.getncattr(k)) if k in ds.ncattrs() else None
              for k in ("n_stimuli", "batch_size", "batches_done", "complete")}
    for key, low in (("n_stimuli", 1), ("batch_size", 1), ("batches_done", 0)):
        if counts[key] is None or counts[key] < low:
            problems.append(f"attribute {key!r} is missing or not a whole number of at least {low}")
    if "complete" not in ds.ncattrs():
        problems.append("no 'complete' attribute, so whether every stimulus was written is unknown")
    elif counts["complete"] not in (0, 1):
        problems.append("attribute 'complete' is not 0 or 1")
    if not problems and "stimulus" in ds.dimensions and counts["n_stimuli"] != ds.dimensions["stimulus"].size:
        problems.append("attribute 'n_stimuli' differs from the stimulus dimension")
    if problems:
        raise StoreError(f"{path}: not an activation file written by vrnn extract ({'; '.join(problems[:4])}"
                         f"{'; ...' if len(problems) > 4 else ''})")


def _whole(value) -> int | None:
    """An attribute's value as an int if it is one whole number (netCDF keeps scalars as 1-element arrays)."""
    a = np.asarray(value)
    if a.size != 1 or a.dtype.kind not in "iu":
        return None
    return int(a.reshape(()))


def progress_of(attrs) -> tuple[int, int, int]:
    """(batches done, batches in all, stimuli written) of an activation file's root attributes."""
    n = int(attrs.get("n_stimuli", 0))
    bs = max(1, int(attrs.get("batch_size", 1)))
    total = math.ceil(n / bs)
    if int(attrs.get("complete", 0)) == 1:
        return total, total, n
    done = min(int(attrs.get("batches_done", 0)), total)
    return done, total, min(done * bs, n)


def incomplete_message(path, attrs) -> str:
    done, total, written = progress_of(attrs)
    path = Path(path)
    final = path.with_name(path.name[:-len(".partial")]) if path.name.endswith(".partial") else path
    return (f"{path}: incomplete activation file, an interrupted extraction ({done} of {total} batches, "
            f"{written} of {attrs.get('n_stimuli', '?')} stimuli written); finish it by extracting again "
            f"into {final.name} with `resume=True` (in Python, `open_activations(path, "
            f"allow_incomplete=True)` reads the {written} stimuli written so far)")


@contextmanager
def refuse_damaged(path):
    """Turn netCDF/HDF5 read failures inside the block (damaged chunks) into one StoreError naming ``path``."""
    try:
        yield
    except (RuntimeError, OSError) as e:
        text = str(e).splitlines()[0] if str(e) else e.__class__.__name__
        if "NetCDF" in text or "HDF" in text or "filter" in text.lower():
            raise StoreError(f"{path}: damaged data, the file cannot be read ({text}); extract it again") from None
        raise


def open_activations(path, chunks: dict | None = None, allow_incomplete: bool = False):
    """Open an activation file lazily (dask-backed) as an ``xarray.DataTree``.

    An incomplete file (an interrupted extraction, ``<out>.partial``) is refused:
    rows not yet written would read as netCDF fill values. With
    ``allow_incomplete=True`` the tree holds only the stimuli written so far
    (the first ``batches_done x batch_size``).

    The file stays open until ``tree.close()`` (or until the tree is garbage
    collected). Open activation files with this function rather than
    ``xarray.open_datatree``: it shares one handle per file with every other
    reader of the package (see the module docstring).

    >>> tree = vrnn.open_activations("acts.nc")          # doctest: +SKIP
    >>> vrnn.layer(tree, "it").sel(time=3)               # doctest: +SKIP
    """
    import xarray as xr
    from xarray.backends import NetCDF4DataStore

    path = Path(path)
    if _shards.is_set(path):
        if allow_incomplete:
            raise StoreError(f"{path}: a shard set is opened whole; `allow_incomplete=True` reads one shard's "
                             f"file in {_shards.folder(path).name}/")
        return open_set(path, chunks=chunks)
    if not path.exists():
        partial = path.with_name(path.name + ".partial")
        hint = f" ({partial.name} exists: finish it by extracting again with `resume=True`)" if partial.exists() else ""
        raise StoreError(f"{path}: no such activation {'store' if _zarr.is_zarr(path) else 'file'}{hint}")
    if path.is_dir() and not _zarr.is_zarr(path):
        raise StoreError(f"{path}: is a folder; pass an activation file (.nc) or store (.zarr) written by vrnn extract")
    _refuse_if_being_written(path)
    if _zarr.is_zarr(path):
        return _open_zarr(path, chunks, allow_incomplete)
    manager = _handles.SharedFileManager(path)
    try:
        attrs = checked_attrs(path, manager.acquire())
        complete = _whole(attrs["complete"]) == 1
        if not complete and not allow_incomplete:
            raise StoreError(incomplete_message(path, attrs))
        groups = list(manager.acquire().groups)
        lock = _handles.netcdf_lock()
        parts = {}
        for group in [None, *groups]:
            store = NetCDF4DataStore(manager, group=group, lock=lock)
            parts["/" + (group or "")] = xr.open_dataset(store, chunks={} if chunks is None else chunks)
        tree = xr.DataTree.from_dict(parts)
        if not complete:
            tree = tree.isel(stimulus=slice(0, progress_of(attrs)[2]))
        _eager_coords(tree)
    except StoreError:
        manager.close()
        raise
    except Exception as e:
        manager.close()
        raise StoreError(f"{path}: cannot be read as an activation file ({str(e).splitlines()[0] if str(e) else e.__class__.__name__})") from None
    for node in tree.subtree:
        node.set_close(manager.close)
    return tree


def _open_zarr(path, chunks, allow_incomplete):
    with _checked(path) as (_, attrs):
        complete = _whole(attrs["complete"]) == 1
    if not complete and not allow_incomplete:
        raise StoreError(incomplete_message(path, attrs))
    try:
        tree = _zarr.open_tree(path, chunks)
        for node in tree.subtree:            # strings as netCDF files give them (zarr reads numpy's StringDType)
            ds = node.to_dataset(inherit=False)
            text = {k: (ds[k].dims, np.array(ds[k].values.tolist(), dtype=str), ds[k].attrs)
                    for k in ds.coords if ds[k].dtype.kind == "T"}
            if text:
                node.dataset = ds.assign_coords(text)
        if not complete:
            tree = tree.isel(stimulus=slice(0, progress_of(attrs)[2]))
        _eager_coords(tree)
    except Exception as e:
        raise StoreError(f"{path}: cannot be read as an activation store ({str(e).splitlines()[0] if str(e) else e.__class__.__name__})") from None
    return tree


def _eager_coords(tree) -> None:
    """Load small coordinates (labels, metadata, channel/row/col) in place; activations stay lazy.

    In place, so the tree handed back is the one that owns the open file (a
    second tree left to the garbage collector would close it under the first).
    """
    for node in tree.subtree:
        for name, var in node.to_dataset(inherit=False).coords.variables.items():
            if name not in node.indexes:
                node.coords[name].variable.load()


def layer(tree, name: str):
    """One layer's ``activation`` (stimulus, time, unit) with the root's stimulus coords attached."""
    if name == "logits":
        return tree["logits"]
    names = [c for c in tree.children]
    if name not in names:
        raise StoreError(f"layer {name!r} is not in this file; it has {', '.join(names)}")
    da = tree[name].to_dataset()["activation"]
    root = tree.to_dataset(inherit=False)
    extra = {c: root.coords[c] for c in root.coords
             if c != "stimulus" and root.coords[c].dims == ("stimulus",)}
    da = da.assign_coords(extra)
    da.name = name
    return da


def describe(path) -> str:
    """A human summary of an activation file (complete or .partial), or of a shard set."""
    path = Path(path)
    if _shards.is_set(path):
        return describe_set(path)
    if not path.exists():
        partial = path.with_name(path.name + ".partial")
        if partial.exists():
            raise StoreError(f"{path}: no such file, but {partial} is there: an extraction that has not "
                             f"finished; `vrnn info {partial}` describes it")
        raise StoreError(f"{path}: no such file")
    if path.is_dir() and not _zarr.is_zarr(path):
        raise StoreError(f"{path}: is a folder; pass an activation file (.nc) or store (.zarr) written by vrnn extract")
    lines = []
    with _checked(path) as (ds, attrs):
        n = ds.dimensions["stimulus"].size
        t = ds.dimensions["time"].size
        lines.append(f"file      {path}")
        a = {k: attrs.get(k, "?") for k in ("model", "weights", "seed", "stimuli_source", "dtype", "compression",
                                               "pool")}
        lines.append(f"model     {a['model']}  (weights: {a['weights']}, seed {a['seed']})")
        lines.append(f"stimuli   {n} from {a['stimuli_source']}")
        lines.append(f"steps     {t}")
        lines.append(f"classes   {ds.dimensions['class'].size}")
        lines.append("layers")
        for g in ds.groups.values():
            var = g.variables["activation"]
            shape = tuple(int(s) for s in var.getncattr("spatial_shape")) if "spatial_shape" in var.ncattrs() else None
            what = f"{var.shape[2]} units" + (f" = {shape[0]}x{shape[1]}x{shape[2]}" if shape else "")
            lines.append(f"  {g.name:<8}{what}")
        done, total, written = progress_of(attrs)
        complete = _whole(attrs["complete"]) == 1
        state = "yes" if complete else f"no: {written} of {n} stimuli written, finish it with --resume"
        lines.append(f"complete  {state} ({done}/{total} batches done)")
        kind = ", Zarr v3" if _zarr.is_zarr(path) else ""
        lines.append(f"storage   {a['dtype']}, {a['compression']}, pool {a['pool']}{kind}")
    lines.append(f"size      {size_on_disk(path) / 2**20:.1f} MiB on disk")
    return "\n".join(lines)


# -- shard sets (their names and attributes: vision_rnn._shards) ------------------------------
def check_set(out) -> tuple[list[Path], list[dict]]:
    """The shard files of a complete set, in order, with their root attributes; StoreError naming
    what is missing or differs."""
    count, done, partial = _shards.listing(out)
    missing = [i for i in range(count) if i not in done]
    if missing:
        running = [i for i in missing if i in partial]
        parts = [f"{len(missing)} of {count} shards are not complete (shard {_shards.ranges(missing)})"]
        if running:
            parts.append(f"shard {_shards.ranges(running)} interrupted or running: resume it with `resume=True`")
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


def open_set(out, chunks=None):
    """One lazy DataTree of a complete shard set, in the stimulus order of a single run."""
    import xarray as xr

    paths, shard_attrs = check_set(out)
    trees = [open_activations(p, chunks=chunks) for p in paths]
    try:
        parts = {}
        for name in [""] + list(trees[0].children):
            nodes = [t.to_dataset(inherit=False) if not name else t[name].to_dataset(inherit=False) for t in trees]
            parts["/" + name] = xr.concat(nodes, dim="stimulus", data_vars="minimal", coords="minimal",
                                          compat="override", join="override", combine_attrs="override")
        tree = xr.DataTree.from_dict(parts)
        attrs = _shards.set_attrs(shard_attrs)
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
    out = Path(out)
    if out.exists() and not _shards.folder(out).is_dir():
        return f"{out} is already a single activation {'store' if _zarr.is_zarr(out) else 'file'}; nothing to merge"
    if not _shards.folder(out).is_dir():
        raise StoreError(f"{out}: no such activation file and no shards ({_shards.folder(out).name}/) to merge")
    if out.exists() and not overwrite:
        raise StoreError(f"{out} exists; pass `overwrite=True` to replace it with the merged shards")
    tmp = out.with_name(f".merging-{os.getpid()}.{out.name}")
    atomic.remove(tmp)
    tree = open_set(out)                          # checks the set; its attributes are the merged file's
    count, done, _ = _shards.listing(out)
    try:
        merge_files([done[i] for i in range(count)], tmp, {**tree.attrs, "batches_done": 0, "complete": 0},
                          tree.to_dataset(inherit=False))
        tree.close()
        atomic.replace(tmp, out)
    except (OSError, RuntimeError) as e:            # a full disk, mostly: one line, nothing left behind
        tree.close()
        atomic.remove(tmp)
        free = shutil.disk_usage(out.parent).free / 2**20
        raise StoreError(f"{out}: writing the merged file failed ({str(e).splitlines()[0] if str(e) else e.__class__.__name__}; "
                         f"{free:.0f} MiB free); free space and merge again (the shards are untouched)") from None
    except BaseException:
        tree.close()
        atomic.remove(tmp)
        raise
    if delete_shards:
        shutil.rmtree(_shards.folder(out))
        return f"merged {count} shards into {out} (shards deleted)"
    return f"merged {count} shards into {out} (shards kept in {_shards.folder(out).name}/)"


def describe_set(out) -> str:
    """What ``vrnn info OUT`` says of a shard set: which shards are done."""
    count, done, partial = _shards.listing(out)
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
            lines.append(f"  not started: shard {_shards.ranges(waiting)}")
    else:
        total = sum(int(read_attrs(p)["n_stimuli"]) for p in done.values())
        lines.append(f"  {total} stimuli; open it with vrnn.open_activations({str(out)!r}), "
                     f"or write one file with `vrnn merge {out}`")
    return "\n".join(lines)
