"""The activation file: netCDF-4 with one group per layer (DESIGN.md section 2).

Writing goes through :class:`ActivationFile`: ``create`` lays out every
variable (coordinates, readout, attributes) in ``<out>.partial``, batches are
then written into it (see :mod:`vision_rnn.extract`), and ``finish`` marks it
complete and renames it. Reading goes through :func:`open_activations`
(lazy, dask-backed) and :func:`layer`.
"""

from __future__ import annotations

import datetime
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import StoreError

CHUNK_BYTES = 16 * 2**20
COMPRESSIONS = ("zstd", "zlib", "none")
# attrs that must agree for --resume to continue a .partial
PROVENANCE = ("model", "model_config", "weights_sha256", "seed", "stimuli_fingerprint", "layers",
              "timesteps", "batch_size", "pool", "dtype", "compression", "n_stimuli")


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
        """Chunk along stimulus = the batch, capped near 16 MB by splitting units."""
        item = np.dtype(self.stored).itemsize
        per_stim = timesteps * self.n * item
        splits = max(1, math.ceil(batch_size * per_stim / CHUNK_BYTES))
        return (batch_size, timesteps, math.ceil(self.n / splits))


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


def _str_var(ds, name, dim, values):
    v = ds.createVariable(name, str, (dim,))
    for i, s in enumerate(values):
        v[i] = s
    return v


def create(path, layout: Layout, *, stimuli_ids, labels, label_names, metadata, classes,
           readout_weight, readout_bias, attrs: dict, compression: str) -> None:
    """Write the layout of an activation file at ``path`` (activations still empty)."""
    import netCDF4

    enc = _encoding(compression)
    with netCDF4.Dataset(path, "w", format="NETCDF4") as ds:
        n, t = layout.n_stimuli, layout.timesteps
        ds.createDimension("stimulus", n)
        ds.createDimension("time", t)
        ds.createDimension("class", len(classes))
        ds.createDimension("feature", readout_weight.shape[1])
        _str_var(ds, "stimulus", "stimulus", stimuli_ids)
        ds.createVariable("time", "i4", ("time",))[:] = np.arange(t)
        _str_var(ds, "class", "class", classes)
        ds.createVariable("label", "i8", ("stimulus",))[:] = np.asarray(labels, dtype=np.int64)
        _str_var(ds, "label_name", "stimulus", label_names)
        coord_names = ["label", "label_name"]
        if metadata is not None:
            for col in metadata.columns:
                values = metadata[col].to_numpy()
                name = str(col)
                if values.dtype.kind in "biuf":
                    ds.createVariable(name, values.dtype.str.lstrip("<>|="), ("stimulus",))[:] = values
                else:
                    _str_var(ds, name, "stimulus", [str(v) for v in values])
                coord_names.append(name)
        ds.createVariable("readout_weight", "f4", ("class", "feature"))[:] = readout_weight
        if readout_bias is not None:
            ds.createVariable("readout_bias", "f4", ("class",))[:] = readout_bias
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
                var.setncattr("long_name", "readout logits (before softmax)")
                continue
            if spec.spatial is not None:
                c, h, w = spec.spatial
                cc, rr, ww = np.unravel_index(np.arange(spec.n), (c, h, w))
                for name, values in (("channel", cc), ("row", rr), ("col", ww)):
                    grp.createVariable(name, "i4", ("unit",))[:] = values
                var.setncattr("coordinates", "channel row col")
                var.setncattr("spatial_shape", np.array(spec.spatial, dtype=np.int32))
            else:
                grp.createVariable("channel", "i4", ("unit",))[:] = np.arange(spec.n)
                var.setncattr("coordinates", "channel")
            var.setncattr("long_name", f"{spec.group} activation after ReLU")
        attrs = dict(attrs, complete=0, batches_done=0)
        for k, v in attrs.items():
            ds.setncattr(k, v)


def read_attrs(path) -> dict:
    """Root attributes of a netCDF file (StoreError if it is not one)."""
    import netCDF4

    try:
        with netCDF4.Dataset(path, "r") as ds:
            return {k: ds.getncattr(k) for k in ds.ncattrs()}
    except OSError as e:
        raise StoreError(f"{path}: not a readable netCDF file ({e}); "
                         "pass an activation file written by vrnn extract") from None


def provenance_mismatch(path, expected: dict) -> list[str]:
    """The provenance fields of ``path`` that differ from ``expected``."""
    attrs = read_attrs(path)
    return [k for k in PROVENANCE if str(attrs.get(k)) != str(expected.get(k))]


def finish(partial: Path, out: Path) -> None:
    import netCDF4

    with netCDF4.Dataset(partial, "a") as ds:
        ds.setncattr("complete", 1)
    os.replace(partial, out)


def base_attrs(model, stim, layout, *, layers, pool, dtype, compression, skipped) -> dict:
    from . import __version__

    return {
        "model": model.name,
        "model_config": model.config.to_json(),
        "weights": str(model.weights_source),
        "weights_sha256": model.weights_sha256(),
        "seed": int(model.seed if model.seed is not None else -1),
        "vision_rnn_version": __version__,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "stimuli_source": str(stim.source),
        "stimuli_fingerprint": stim.fingerprint(),
        "n_stimuli": layout.n_stimuli,
        "input_size": int(model.input_size),
        "readout_layer": "gap",
        "layers": ",".join(layers),
        "timesteps": int(layout.timesteps),
        "batch_size": int(layout.batch_size),
        "pool": pool or "none",
        "dtype": dtype,
        "compression": compression,
        "skipped": json.dumps(list(skipped)),
        "Conventions": "vision-rnn activations 1.0",
    }


# -- reading ---------------------------------------------------------------------------------
def open_activations(path, chunks: dict | None = None):
    """Open an activation file lazily (dask-backed) as an ``xarray.DataTree``.

    >>> tree = vrnn.open_activations("acts.nc")          # doctest: +SKIP
    >>> vrnn.layer(tree, "it").sel(time=3)               # doctest: +SKIP
    """
    import xarray as xr

    path = Path(path)
    if not path.exists():
        partial = path.with_name(path.name + ".partial")
        hint = f" ({partial.name} exists: finish it with --resume)" if partial.exists() else ""
        raise StoreError(f"{path}: no such activation file{hint}")
    attrs = read_attrs(path)
    if "vision_rnn_version" not in attrs or "layers" not in attrs:
        raise StoreError(f"{path}: not an activation file written by vrnn extract (no vision-rnn attributes)")
    try:
        tree = xr.open_datatree(path, engine="netcdf4", chunks={} if chunks is None else chunks)
    except Exception as e:
        raise StoreError(f"{path}: cannot be read as an activation file ({e})") from None
    _eager_coords(tree)
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
    """A human summary of an activation file (complete or .partial)."""
    import netCDF4

    path = Path(path)
    if not path.exists():
        raise StoreError(f"{path}: no such file")
    attrs = read_attrs(path)
    if "vision_rnn_version" not in attrs or "layers" not in attrs:
        raise StoreError(f"{path}: not an activation file written by vrnn extract")
    lines = []
    with netCDF4.Dataset(path, "r") as ds:
        n = ds.dimensions["stimulus"].size
        t = ds.dimensions["time"].size
        total = math.ceil(n / int(attrs["batch_size"]))
        lines.append(f"file      {path}")
        lines.append(f"model     {attrs['model']}  (weights: {attrs['weights']}, seed {attrs['seed']})")
        lines.append(f"stimuli   {n} from {attrs['stimuli_source']}")
        lines.append(f"steps     {t}")
        lines.append(f"classes   {ds.dimensions['class'].size}")
        lines.append("layers")
        for g in ds.groups.values():
            var = g.variables["activation"]
            shape = tuple(int(s) for s in var.getncattr("spatial_shape")) if "spatial_shape" in var.ncattrs() else None
            what = f"{var.shape[2]} units" + (f" = {shape[0]}x{shape[1]}x{shape[2]}" if shape else "")
            lines.append(f"  {g.name:<8}{what}")
        done = int(attrs.get("batches_done", 0))
        complete = int(attrs.get("complete", 0)) == 1
        lines.append(f"complete  {'yes' if complete else 'no'} ({done}/{total} batches done)")
        lines.append(f"storage   {attrs['dtype']}, {attrs['compression']}, pool {attrs['pool']}")
    size = path.stat().st_size
    lines.append(f"size      {size / 2**20:.1f} MiB on disk")
    return "\n".join(lines)
