"""Writing recordings as BrainIO assemblies, the netCDF layout Brain-Score distributes.

The reader is :func:`vision_rnn.neural.load_recording`; this is its inverse, so a
recording made or converted here can go to tools that expect Brain-Score data,
and a lab can check the assembly path end to end (``comparisons/brainio.py``).

Layout written: one DataArray ``(presentation, neuroid, time_bin)`` with
presentation coordinates ``stimulus_id`` and ``repetition`` (0, 1, ... per
stimulus, trials that are missing in every bin and neuroid left out) plus every
stimulus coordinate of the recording, neuroid coordinates ``neuroid_id`` and
the recording's own, and ``time_bin_start``/``time_bin_end`` (ms). As in
BrainIO's files, no coordinate is an index (``presentation``, ``neuroid`` and
``time_bin`` have none) and the variable is ``__xarray_dataarray_variable__``.
Reading it back numbers each stimulus' presentations 0, 1, ... in order of
appearance, so a recording with a missing trial in the middle comes back with
its later trials moved up (their original numbers are in ``brainio_repetition``).

>>> from vision_rnn.brainio import save_brainio                   # doctest: +SKIP
>>> save_brainio(recording, "assembly.nc")                        # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from .atomic import atomic_write
from .errors import DataError

__all__ = ["to_brainio", "save_brainio", "layer_assembly"]


def to_brainio(recording: xr.DataArray) -> xr.DataArray:
    """A recording (stimulus, [repetition,] time, neuroid) as a BrainIO assembly (presentation, neuroid, time_bin)."""
    dims = set(getattr(recording, "dims", ()))
    if not {"stimulus", "time", "neuroid"} <= dims:
        raise DataError(f"to_brainio: a recording is a DataArray (stimulus, [repetition,] time, neuroid); "
                        f"got {getattr(recording, 'dims', type(recording).__name__)}")
    rec = recording if "repetition" in dims else recording.expand_dims(repetition=[0])
    rec = rec.transpose("stimulus", "repetition", "neuroid", "time")
    x = np.asarray(rec.values)
    n_stim, n_rep = x.shape[:2]
    present = ~np.isnan(x).all(axis=(2, 3)) if x.dtype.kind == "f" else np.ones((n_stim, n_rep), bool)
    si, ri = np.nonzero(present)                   # presentations in stimulus order, then repetition
    data = x[si, ri]
    start, end = _bin_edges(rec)
    coords = {"stimulus_id": ("presentation", rec["stimulus"].values.astype(str)[si]),
              "repetition": ("presentation", ri.astype(np.int64)),
              "neuroid_id": ("neuroid", rec["neuroid"].values.astype(str)),
              "time_bin_start": ("time_bin", start), "time_bin_end": ("time_bin", end)}
    for k, c in rec.coords.items():
        if k in ("stimulus", "repetition", "neuroid", "time", "time_bin_start", "time_bin_end"):
            continue
        if c.dims == ("stimulus",):
            coords[k] = ("presentation", np.asarray(c.values)[si])
        elif c.dims == ("neuroid",):
            coords[k] = ("neuroid", np.asarray(c.values))
    return xr.DataArray(data, dims=("presentation", "neuroid", "time_bin"), coords=coords,
                        attrs={k: v for k, v in recording.attrs.items() if isinstance(v, (str, int, float))})


def _bin_edges(rec) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(rec["time"].values, dtype=np.float64)
    if "time_bin_start" in rec.coords and "time_bin_end" in rec.coords:
        return (np.asarray(rec["time_bin_start"].values, dtype=np.float64),
                np.asarray(rec["time_bin_end"].values, dtype=np.float64))
    if len(t) > 1:
        half = np.median(np.diff(t)) / 2
        return t - half, t + half
    return t.copy(), t.copy()


def save_brainio(recording: xr.DataArray, path) -> Path:
    """Write :func:`to_brainio` of ``recording`` to ``path`` (``<path>.partial``, then renamed)."""
    path = Path(path)
    if not path.parent.exists():
        raise DataError(f"save_brainio: folder {path.parent} does not exist")
    assembly = to_brainio(recording)
    assembly.name = None
    for k in list(assembly.coords):
        if assembly[k].dtype == object:
            assembly = assembly.assign_coords({k: assembly[k].astype(str)})
    return atomic_write(path, lambda tmp: assembly.to_netcdf(tmp, engine="netcdf4"))


def layer_assembly(tree, layer: str, mapping) -> xr.DataArray:
    """One model layer as a BrainIO-convention assembly (presentation x neuroid x time_bin).

    ``tree`` is an activation DataTree (:func:`vision_rnn.open_activations`) or a layer
    DataArray (stimulus, time, unit); ``mapping`` a
    :class:`~vision_rnn.analysis.timeaxis.TimeMapping` that gives the layer's step k the
    bin [onset + k * step_ms, onset + (k + 1) * step_ms) in ms. Coordinates: ``stimulus_id``
    on presentation, ``neuroid_id`` (``<layer>.<unit>``), ``layer`` and, for a
    convolutional layer, ``channel``/``row``/``col`` on neuroid, and
    ``time_bin_start``/``time_bin_end`` on time_bin, as in Brain-Score's assemblies.

    >>> from vision_rnn.analysis import TimeMapping                       # doctest: +SKIP
    >>> a = layer_assembly(tree, "it", TimeMapping(onset_ms={"it": 90.0}, step_ms=10.0))  # doctest: +SKIP
    """
    da = tree if isinstance(tree, xr.DataArray) else _layer(tree, layer)
    dims = set(da.dims)
    if not {"stimulus", "time", "unit"} <= dims:
        raise DataError(f"layer_assembly: a layer is (stimulus, time, unit); got {da.dims}")
    onsets = getattr(mapping, "onset_ms", None)
    if onsets is None or not hasattr(mapping, "time_ms"):
        raise DataError("layer_assembly: `mapping` must be a TimeMapping (step -> ms)")
    if layer not in onsets:
        raise DataError(f"layer_assembly: the mapping has no onset for layer {layer!r}; it has {', '.join(onsets)}")
    da = da.transpose("stimulus", "unit", "time")
    steps = np.asarray(da["time"].values)
    start = np.asarray(mapping.time_ms(layer, steps), dtype=np.float64)
    coords = {"stimulus_id": ("presentation", da["stimulus"].values.astype(str)),
              "neuroid_id": ("neuroid", np.array([f"{layer}.{u}" for u in range(da.sizes["unit"])])),
              "layer": ("neuroid", np.full(da.sizes["unit"], layer)),
              "time_bin_start": ("time_bin", start), "time_bin_end": ("time_bin", start + float(mapping.step_ms))}
    for c in ("channel", "row", "col"):
        if c in da.coords and da[c].dims == ("unit",):
            coords[c] = ("neuroid", np.asarray(da[c].values))
    for c, v in da.coords.items():
        if v.dims == ("stimulus",) and c != "stimulus":
            coords[c] = ("presentation", np.asarray(v.values))
    return xr.DataArray(np.asarray(da.values), dims=("presentation", "neuroid", "time_bin"), coords=coords,
                        attrs={"model": str(getattr(tree, "attrs", {}).get("model", "")), "layer": layer,
                               "time_mapping": mapping.to_json() if hasattr(mapping, "to_json") else ""})


def _layer(tree, name):
    from .store import layer

    return layer(tree, name)
