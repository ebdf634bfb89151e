"""BrainIO assemblies, the netCDF layout Brain-Score distributes, in and out.

In: :func:`from_assembly` (an assembly in memory) and
:func:`vision_rnn.recordings.load_recording` (a file) turn an assembly into a
recording. Out: :func:`to_brainio` / :func:`save_brainio` are their inverse, so a
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

>>> from vision_rnn.recordings.brainio import save_brainio                   # doctest: +SKIP
>>> save_brainio(recording, "assembly.nc")                        # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from ..analysis.timeaxis import bin_edges
from ..atomic import atomic_write
from ..errors import DataError
from .layout import check_recording

__all__ = ["from_assembly", "to_brainio", "save_brainio", "layer_assembly"]

BRAINIO_VARIABLES = ("data", "__xarray_dataarray_variable__")


def from_assembly(assembly, where="assembly"):
    """A recording from an in-memory BrainIO/Brain-Score assembly (e.g. a ``NeuroidAssembly``).

    Read as :func:`load_recording` reads a BrainIO file. Brain-Score's own package
    is not needed.

    Parameters
    ----------
    assembly : xarray.DataArray
        An assembly over ``presentation x neuroid [x time_bin]`` whose
        coordinates (plain or levels of a pandas MultiIndex, as Brain-Score keeps them)
        include ``stimulus_id`` (or ``image_id``), optionally ``neuroid_id``, ``repetition``
        and ``time_bin_start``/``time_bin_end`` in ms.
    where : str, optional
        What to call the assembly in error messages.

    Returns
    -------
    xarray.DataArray
        The recording (stimulus, [repetition,] time, neuroid), checked by
        :func:`~vision_rnn.recordings.layout.check_recording`; the presentations of
        a stimulus become repetitions 0, 1, ... in order of appearance (no
        ``repetition`` dim when every stimulus appears once).
    """
    import xarray as xr

    if not isinstance(assembly, xr.DataArray) or "presentation" not in assembly.dims:
        raise DataError(f"{where}: an assembly is a DataArray over presentation x neuroid [x time_bin]; "
                        f"got {getattr(assembly, 'dims', type(assembly).__name__)}")
    flat = assembly.reset_index([d for d in assembly.dims if d in assembly.indexes])
    flat = flat.drop_vars([d for d in flat.dims if d in flat.coords])       # dimension coords the reset left
    return check_recording(from_brainio_dataset(flat.to_dataset(name="data"), "data", where), where)


def from_brainio_dataset(ds, var: str, path):
    """The recording held in variable ``var`` of a BrainIO Dataset ``ds`` (``path`` names it in errors)."""
    import pandas as pd
    import xarray as xr

    src = ds[var]
    odd = [d for d in src.dims if d not in ("presentation", "neuroid", "time_bin")]
    if odd:
        raise DataError(f"{path}: a BrainIO assembly has dims presentation, neuroid and optionally time_bin; "
                        f"{var} also has {', '.join(map(str, odd))}")
    if src.dtype.kind not in "biuf":
        raise DataError(f"{path}: {var} must hold numbers; got {src.dtype} values")
    for c in ("time_bin_start", "time_bin_end"):
        if c in ds.coords and ds[c].ndim and ds[c].dims != ("time_bin",):
            raise DataError(f"{path}: {c} must be on the time_bin dim; it is on {ds[c].dims}")
    id_coord = "stimulus_id" if "stimulus_id" in ds.coords else "image_id" if "image_id" in ds.coords else None
    if id_coord is None:
        raise DataError(f"{path}: BrainIO assembly without a 'stimulus_id' or 'image_id' coordinate on presentation")
    ids = np.asarray(ds[id_coord].values).astype(str)
    if ids.size == 0 or src.sizes["neuroid"] == 0:
        raise DataError(f"{path}: the assembly has {src.sizes['presentation']} presentations and "
                        f"{src.sizes['neuroid']} neuroids; nothing to compare: pass an assembly with responses")
    order = pd.unique(ids)
    rep = pd.Series(ids).groupby(ids, sort=False).cumcount().to_numpy()
    n_rep = int(rep.max()) + 1
    stim_pos = {s: i for i, s in enumerate(order)}
    si = np.array([stim_pos[s] for s in ids])
    timed = "time_bin" in src.dims
    x = src.transpose("presentation", "neuroid", *(["time_bin"] if timed else [])).values.astype(np.float64)
    if not timed:
        x = x[..., None]
    n_time = x.shape[2]
    out = np.full((len(order), n_rep, n_time, x.shape[1]), np.nan)
    out[si, rep] = np.swapaxes(x, 1, 2)
    if timed and "time_bin_start" in ds.coords and "time_bin_end" in ds.coords:
        start = np.asarray(ds["time_bin_start"].values, dtype=np.float64).reshape(-1)
        end = np.asarray(ds["time_bin_end"].values, dtype=np.float64).reshape(-1)
    elif not timed and "time_bin_start" in ds.coords and ds["time_bin_start"].ndim == 0:
        start = np.array([float(ds["time_bin_start"])])
        end = np.array([float(ds["time_bin_end"])])
    else:
        start = end = np.full(n_time, np.nan)
    coords = {"stimulus": order, "repetition": np.arange(n_rep), "time": (start + end) / 2,
              "time_bin_start": ("time", start), "time_bin_end": ("time", end)}
    neuroid_id = ds["neuroid_id"].values.astype(str) if "neuroid_id" in ds.coords else np.arange(x.shape[1])
    coords["neuroid"] = neuroid_id
    first_idx = pd.Series(np.arange(len(ids))).groupby(si, sort=True).first().to_numpy()
    for k, c in ds.coords.items():
        if c.dims == ("neuroid",) and k != "neuroid_id":
            coords[k] = ("neuroid", c.values)
        elif c.dims == ("presentation",) and k != id_coord:
            vals = np.asarray(c.values)
            name = "brainio_repetition" if k == "repetition" else k
            constant = pd.Series(vals).groupby(si).nunique(dropna=False).to_numpy().max() == 1
            if constant:
                coords[name] = ("stimulus", vals[first_idx])
            else:
                text = vals.dtype.kind in "OUS"
                grid = np.full((len(order), n_rep), "" if text else np.nan, dtype=object if text else np.float64)
                grid[si, rep] = vals
                coords[name] = (("stimulus", "repetition"), grid.astype(str) if text else grid)
    da = xr.DataArray(out, dims=("stimulus", "repetition", "time", "neuroid"), coords=coords, name="response")
    if n_rep == 1:
        da = da.isel(repetition=0, drop=True)
        da = da.drop_vars([k for k in da.coords if "repetition" in da[k].dims], errors="ignore")
    da.attrs = {"source": str(path), "source_format": "brainio", "stimulus_id_from": id_coord,
                **{k: v for k, v in ds.attrs.items() if isinstance(v, (str, int, float))}}
    return da


def to_brainio(recording: xr.DataArray) -> xr.DataArray:
    """A recording (stimulus, [repetition,] time, neuroid) as a BrainIO assembly (presentation, neuroid, time_bin).

    Parameters
    ----------
    recording : xarray.DataArray
        A recording, dims (stimulus, [repetition,] time, neuroid).

    Returns
    -------
    xarray.DataArray
        The assembly (presentation, neuroid, time_bin), one presentation per
        (stimulus, repetition) that is not missing in every bin and neuroid, in
        stimulus order: coordinates ``stimulus_id`` and ``repetition`` plus the
        recording's stimulus coordinates on presentation, ``neuroid_id`` and the
        recording's neuroid coordinates on neuroid, ``time_bin_start``/``time_bin_end``
        (ms) on time_bin; the recording's number and string attributes.
    """
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
    start, end = bin_edges(rec, one_bin="point")
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


def save_brainio(recording: xr.DataArray, path) -> Path:
    """Write :func:`to_brainio` of ``recording`` to ``path`` (``<path>.partial``, then renamed).

    Parameters
    ----------
    recording : xarray.DataArray
        A recording, dims (stimulus, [repetition,] time, neuroid).
    path : str or os.PathLike
        The netCDF file to write, in an existing folder; replaced if it exists.

    Returns
    -------
    pathlib.Path
        ``path``.

    Examples
    --------
    >>> save_brainio(recording, "assembly.nc")                        # doctest: +SKIP
    """
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

    Parameters
    ----------
    tree : xarray.DataTree or xarray.DataArray
        An activation DataTree (:func:`vision_rnn.open_activations`) or a layer
        DataArray (stimulus, time, unit).
    layer : str
        The layer's name (its group in ``tree``, and its onset in ``mapping``).
    mapping : TimeMapping
        A :class:`~vision_rnn.analysis.timeaxis.TimeMapping` that gives the layer's
        step k the bin [onset + k * step_ms, onset + (k + 1) * step_ms) in ms.

    Returns
    -------
    xarray.DataArray
        The assembly (presentation, neuroid, time_bin). Coordinates: ``stimulus_id``
        (and the layer's other stimulus coordinates) on presentation, ``neuroid_id``
        (``<layer>.<unit>``), ``layer`` and, for a convolutional layer,
        ``channel``/``row``/``col`` on neuroid, and ``time_bin_start``/``time_bin_end``
        on time_bin, as in Brain-Score's assemblies; attributes ``model``,
        ``layer`` and ``time_mapping``.

    Examples
    --------
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
    from ..store import layer

    return layer(tree, name)
