"""Activation stores in Zarr v3 (``-o NAME.zarr``): the layout of DESIGN.md section 2 in a folder.

The store is laid out through xarray (so plain ``xarray.open_datatree(path, engine="zarr")``
reads it, coordinates and attributes included) and then filled batch by batch through
zarr, whose codec pipeline compresses the chunks of a batch on several threads at once
(Blosc with zstd or zlib, byte shuffle, 1 MiB blocks). :class:`Group` lends a store the few methods
of ``netCDF4.Dataset`` that :mod:`vision_rnn.store` uses, so reading, checking, resuming,
copying and merging go through one code path for both formats. A finished store carries
consolidated metadata (one read opens it); an unfinished one (``NAME.zarr.partial``) is
read without.

``--dtype float16`` rounds values exactly as netCDF-C's BitRound quantizer does (10 mantissa
bits, half away from zero) and stores float32, so a Zarr store and a netCDF file of the same
extraction hold the same numbers.
"""

from __future__ import annotations

import json
import os
import shutil
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from .errors import StoreError

SUFFIX = ".zarr"
_WORK = (".partial", ".carry")          # names of a store being written, or carried over on resume
QUANTIZE = "_QuantizeBitRoundNumberOfSignificantBits"   # the attribute netCDF-C writes for BitRound


def is_zarr(path) -> bool:
    """Whether ``path`` names a Zarr store (``NAME.zarr``, or one being written: ``NAME.zarr.partial``)."""
    name = Path(path).name
    stripped = True
    while stripped:
        stripped = False
        for s in _WORK:
            if name.endswith(s):
                name, stripped = name[:-len(s)], True
    return name.endswith(SUFFIX)


def require():
    try:
        import zarr
    except ImportError:
        raise StoreError("Zarr stores (.zarr) need the zarr package, version 3 or later: "
                         "pip install 'zarr>=3' (or write netCDF: -o NAME.nc)") from None
    if int(zarr.__version__.split(".")[0]) < 3:
        raise StoreError(f"Zarr stores (.zarr) need zarr 3 or later (this is zarr {zarr.__version__}): "
                         "pip install -U 'zarr>=3'")
    return zarr


def bitround(values, bits: int = 10) -> np.ndarray:
    """float32 ``values`` with ``bits`` mantissa bits kept, as netCDF-C's BitRound keeps them.

    It adds half of the last kept bit to the bit pattern and clears the rest (so ties round
    away from zero); NaN and infinity pass unchanged, as there.

    >>> bitround(np.float32([1.0 + 2**-11, 1.0 + 2**-12, -3.14159265]))
    array([ 1.0009766,  1.       , -3.140625 ], dtype=float32)
    """
    a = np.array(values, dtype=np.float32, copy=True)
    u = a.view(np.uint32)
    drop = 23 - int(bits)
    keep = np.uint32((0xFFFFFFFF << drop) & 0xFFFFFFFF)
    finite = np.isfinite(a)
    u[finite] = (u[finite] + np.uint32(1 << (drop - 1))) & keep
    return a


def _compressors(compression: str):
    from zarr.codecs import BloscCodec

    if compression in ("zstd", "zlib"):      # 1 MiB blocks: 1.5x Blosc's default speed, and a better ratio
        return [BloscCodec(cname=compression, clevel=1, shuffle="shuffle", blocksize=2**20)]
    return None


def _plain(value):
    """An attribute value as JSON keeps it (netCDF attributes may be numpy scalars and arrays)."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def _text(values) -> np.ndarray:
    """Strings as Zarr v3's variable-length ``string`` type (xarray writes object arrays so)."""
    return np.array([str(v) for v in values], dtype=object)


def create(path, layout, *, stimuli_ids, labels, label_names, metadata, classes, readout_weight, readout_bias,
           attrs: dict, compression: str, long_names: dict, activation_long_name) -> None:
    """Lay out the store ``path`` (activations still empty): coordinates, readout and attributes
    written, activation arrays declared with their chunks and codec."""
    import dask.array as da
    import xarray as xr

    require()
    n, t = layout.n_stimuli, layout.timesteps

    def described(name, dims, values):
        return xr.Variable(dims, values, {"long_name": long_names[name]} if name in long_names else {})

    root = xr.Dataset(coords={
        "stimulus": described("stimulus", "stimulus", _text(stimuli_ids)),
        "time": described("time", "time", np.arange(t, dtype=np.int32)),
        "class": described("class", "class", _text(classes)),
        "label": described("label", "stimulus", np.asarray(labels, dtype=np.int64)),
        "label_name": described("label_name", "stimulus", _text(label_names)),
    })
    if metadata is not None:
        for col in metadata.columns:
            values = metadata[col].to_numpy()
            if values.dtype.kind == "f":                 # as netCDF keeps them: float16 and float32 as float32
                values = values.astype("f8" if values.dtype.itemsize >= 8 else "f4")
            elif values.dtype.kind not in "biu":
                values = _text(values)
            root.coords[str(col)] = ("stimulus", values)
    if readout_weight is not None:
        root["readout_weight"] = described("readout_weight", ("class", "feature"),
                                           np.asarray(readout_weight, dtype=np.float32))
    if readout_weight is not None and readout_bias is not None:
        root["readout_bias"] = described("readout_bias", ("class",), np.asarray(readout_bias, dtype=np.float32))
    root.attrs = {k: _plain(v) for k, v in dict(attrs, complete=0, batches_done=0).items()}
    parts, encoding = {"/": root}, {}
    compressors = _compressors(compression)
    for spec in layout.specs:
        chunks = spec.chunks(layout.batch_size, t)
        last = "class" if spec.group is None else "unit"
        empty = da.zeros((n, t, spec.n), dtype=spec.stored, chunks=chunks)
        var_attrs = {"long_name": long_names["logits"] if spec.group is None else activation_long_name(spec.group)}
        if spec.dtype == "float16":
            var_attrs[QUANTIZE] = 10
        variable = xr.Variable(("stimulus", "time", last), empty, var_attrs)
        enc = {"chunks": chunks, "compressors": compressors, "fill_value": np.float32(np.nan)}
        if spec.group is None:
            root["logits"] = variable
            encoding.setdefault("/", {})["logits"] = enc
            continue
        group = xr.Dataset()
        if spec.spatial is not None:
            variable.attrs["spatial_shape"] = [int(s) for s in spec.spatial]
            for name, values in zip(("channel", "row", "col"), np.unravel_index(np.arange(spec.n), spec.spatial)):
                group.coords[name] = described(name, "unit", values.astype(np.int32))
        else:
            group.coords["channel"] = described("channel", "unit", np.arange(spec.n, dtype=np.int32))
        group["activation"] = variable
        parts["/" + spec.group] = group
        encoding["/" + spec.group] = {"activation": enc}
    tree = xr.DataTree.from_dict(parts)
    try:
        tree.to_zarr(os.fspath(path), mode="w-", compute=False, zarr_format=3, consolidated=False,
                     encoding=encoding)
    except BaseException:
        shutil.rmtree(path, ignore_errors=True)
        raise


def consolidate(path) -> None:
    """Write the consolidated metadata of a finished store (plain xarray then opens it in one read)."""
    zarr = require()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")          # "not part of the Zarr v3 specification": xarray reads it
        zarr.consolidate_metadata(os.fspath(path))


def _in_order(names, layers) -> list:
    """Group names in model order (the root's ``layers`` attribute), as a netCDF file keeps them;
    a store lists its groups in no particular order."""
    order = str(layers).split(",") if layers else []
    return sorted(names, key=lambda k: (order.index(k) if k in order else len(order), k))


def open_tree(path, chunks):
    """The store as a lazy (dask-backed) xarray DataTree, its layers in model order."""
    import xarray as xr

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)     # no consolidated metadata (a .partial): read without
        tree = xr.open_datatree(os.fspath(path), engine="zarr", chunks={} if chunks is None else chunks,
                                zarr_format=3, consolidated=False)
    parts = {"/": tree.to_dataset(inherit=False)}
    for name in _in_order(list(tree.children), tree.attrs.get("layers")):
        parts["/" + name] = tree[name].to_dataset(inherit=False)
    return xr.DataTree.from_dict(parts)


def nbytes(path) -> int:
    """Bytes on disk of a store (the files of its folder)."""
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


class _Dim:
    def __init__(self, size: int):
        self.size = size


class Variable:
    """A zarr array with the ``netCDF4.Variable`` methods the store uses."""

    def __init__(self, array):
        self._a = array
        self.dimensions = tuple(array.metadata.dimension_names or ())
        self.shape = tuple(array.shape)

    def ncattrs(self) -> list:
        return list(self._a.attrs.keys())

    def getncattr(self, key):
        return self._a.attrs[key]

    def set_auto_maskandscale(self, flag: bool) -> None:
        """Values are read and written as stored either way (the store has no scale or offset)."""

    def __getitem__(self, key):
        return self._a[key]

    def __setitem__(self, key, values):
        bits = self._a.attrs.get(QUANTIZE)
        if bits is not None:
            values = bitround(values, int(bits))
        self._a[key] = values


class Group:
    """A zarr group with the ``netCDF4.Dataset`` methods the store uses (dimensions, variables,
    groups, attributes)."""

    def __init__(self, group, name: str = "/"):
        self._g, self.name = group, name
        self.variables = {k: Variable(a) for k, a in group.arrays()}
        groups = dict(group.groups())
        self.groups = {k: Group(groups[k], k) for k in _in_order(groups, group.attrs.get("layers"))}
        dims = {}
        for v in self.variables.values():
            for d, s in zip(v.dimensions, v.shape):
                dims.setdefault(d, s)
        self.dimensions = {d: _Dim(s) for d, s in dims.items()}

    def ncattrs(self) -> list:
        return list(self._g.attrs.keys())

    def getncattr(self, key):
        return self._g.attrs[key]

    def setncattr(self, key, value) -> None:
        self._g.attrs[key] = _plain(value)

    def sync(self) -> None:
        """Every write has reached the store when it returns (chunk and metadata files replaced whole)."""

    def write_rows(self, targets: dict, lo: int, views: dict, k: int) -> None:
        """Rows lo..lo+k of every variable in ``targets`` from ``views``, the variables at once
        (their chunks are compressed in parallel)."""
        with ThreadPoolExecutor(max_workers=len(targets)) as pool:
            for f in [pool.submit(var.__setitem__, slice(lo, lo + k), views[name][:k])
                      for name, var in targets.items()]:
                f.result()

    def close(self) -> None:
        pass


def open_group(path, mode: str = "r") -> Group:
    """The store at ``path`` for reading (``"r"``) or writing its arrays and attributes (``"r+"``)."""
    zarr = require()
    if not Path(path).is_dir():
        raise StoreError(f"{path}: not a Zarr store (no such folder); pass a store written by vrnn extract")
    try:
        group = zarr.open_group(os.fspath(path), mode=mode, zarr_format=3, use_consolidated=False)
        return Group(group)
    except (FileNotFoundError, ValueError, KeyError, TypeError, json.JSONDecodeError) as e:
        text = str(e).splitlines()[0] if str(e) else e.__class__.__name__
        raise StoreError(f"{path}: not a readable Zarr v3 store ({text}); pass a store written by vrnn extract") from None
