"""Recordings: our netCDF layout, BrainIO assemblies, the 92-image data sets, simulation.

A recording is a DataArray named ``response`` (stimulus, [repetition,] time,
neuroid): ``time`` in milliseconds (bin centre) with ``time_bin_start`` and
``time_bin_end`` coordinates, neuroid coordinates such as ``region``. The
published 92-image data (:func:`kriegeskorte92`, :func:`cichy2014_meg`) live
in :mod:`vision_rnn.neural_sets`, the synthetic recordings
(:func:`simulate_recording`) in :mod:`vision_rnn.simulation`.

>>> import vision_rnn as vrnn
>>> rec = vrnn.neural.load_recording("assembly.nc")                 # doctest: +SKIP
>>> rec.sizes                                                       # doctest: +SKIP
Frozen({'stimulus': 640, 'repetition': 50, 'time': 25, 'neuroid': 168})
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .atomic import atomic_write
from .errors import DataError

__all__ = ["load_recording", "save_recording", "from_assembly", "match_stimuli", "StimulusMatch", "data_dir", "NinetyTwo",
           "kriegeskorte92", "cichy2014_meg", "simulate_recording"]

CONVENTIONS = "CF-1.11 vision-rnn-recording-1.0"   # CF, and the recording layout's own version
BRAINIO_VARIABLES = ("data", "__xarray_dataarray_variable__")


def data_dir(name: str | None = None) -> Path:
    """The shared data folder: ``$VRNN_DATA`` if set, else ``../shared/data`` next to the project
    (or the working directory); ``name`` is a sub-folder. DataError if none exists."""
    env = os.environ.get("VRNN_DATA")
    candidates = [Path(env)] if env else []
    candidates += [Path(__file__).resolve().parents[1].parent / "shared" / "data",
                   Path.cwd().parent / "shared" / "data"]
    for c in candidates:
        if c.is_dir():
            return c / name if name else c
    where = ", ".join(str(c) for c in candidates)
    raise DataError(f"no data folder found (looked in {where}); set VRNN_DATA to the folder that holds "
                    f"{name or 'the data sets'} or pass the path explicitly")


# -- stimulus ids across sources -------------------------------------------------------------
@dataclass
class StimulusMatch:
    """Index pairs of matched stimuli (``a[i]`` matches ``b[i]``) and how they matched."""

    a: np.ndarray
    b: np.ndarray
    n_a: int
    n_b: int
    by: dict = field(default_factory=dict)

    @property
    def n_matched(self) -> int:
        return len(self.a)

    def __str__(self) -> str:
        how = ", ".join(f"{n} by {k}" for k, n in self.by.items() if n) or "none"
        return f"{self.n_matched} stimuli matched ({how}) of {self.n_a} and {self.n_b}"


def _stem(s: str) -> str:
    return Path(s).stem


def _read_id_map(id_map) -> dict:
    if id_map is None:
        return {}
    if isinstance(id_map, dict):
        return {str(k): str(v) for k, v in id_map.items()}
    path = Path(id_map)
    if not path.exists():
        raise DataError(f"id map {path} does not exist; pass a CSV with two columns: ids of the first "
                        "source, ids of the second")
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            rows = [r for r in csv.reader(fh) if r]
    except UnicodeDecodeError as e:
        raise DataError(f"id map {path}: not UTF-8 text ({e.reason} at byte {e.start}); save it as UTF-8 CSV") from None
    except (OSError, csv.Error) as e:
        raise DataError(f"id map {path}: unreadable as CSV ({e})") from None
    if not rows or len(rows[0]) < 2:
        raise DataError(f"{path}: an id map needs two columns (first source, second source) and a header row")
    return {r[0].strip(): r[1].strip() for r in rows[1:] if len(r) >= 2}


def match_stimuli(a_ids, b_ids, id_map=None) -> StimulusMatch:
    """Match two lists of stimulus ids: exact id, else file stem, else ``id_map``.

    Each id of ``a_ids`` is tried in that order; a stem must be unique on both sides to
    count. ``id_map`` is a dict or a CSV file with a header and two columns (an id or stem of
    the first source, an id or stem of the second). Pairs are in the order of ``a_ids``.

    >>> m = match_stimuli(["cats/a.png", "b.jpg", "x"], ["a", "b", "zz"], id_map={"x": "zz"})
    >>> m.a.tolist(), m.b.tolist(), str(m)
    ([0, 1, 2], [0, 1, 2], '3 stimuli matched (2 by stem, 1 by id_map) of 3 and 3')
    """
    a_ids = [str(s) for s in a_ids]
    b_ids = [str(s) for s in b_ids]
    exact = {s: i for i, s in enumerate(b_ids)}

    def unique_stems(ids):
        out, dup = {}, set()
        for i, s in enumerate(ids):
            st = _stem(s)
            if st in out:
                dup.add(st)
            out[st] = i
        return {k: v for k, v in out.items() if k not in dup}

    b_stems = unique_stems(b_ids)
    a_stem_ok = unique_stems(a_ids)
    mapping = _read_id_map(id_map)
    ia, ib, used = [], [], set()
    by = {"id": 0, "stem": 0, "id_map": 0}
    for i, s in enumerate(a_ids):
        j, how = None, None
        if s in exact:
            j, how = exact[s], "id"
        elif _stem(s) in b_stems and _stem(s) in a_stem_ok:
            j, how = b_stems[_stem(s)], "stem"
        elif mapping:
            target = mapping.get(s, mapping.get(_stem(s)))
            if target is not None:
                j = exact.get(target, b_stems.get(_stem(target)))
                how = "id_map"
        if j is not None and j not in used:
            used.add(j)
            ia.append(i)
            ib.append(j)
            by[how] += 1
    return StimulusMatch(np.asarray(ia, dtype=np.int64), np.asarray(ib, dtype=np.int64),
                         len(a_ids), len(b_ids), by)


# -- reading and writing recordings ----------------------------------------------------------
def load_recording(path, average: bool = False):
    """A recording from our netCDF layout or a BrainIO assembly (Brain-Score's netCDF format).

    BrainIO: ``presentation x neuroid [x time_bin]``, stimulus id in ``stimulus_id`` (or the
    older ``image_id``); the presentations of a stimulus are numbered 0, 1, ... in order of
    appearance into a ``repetition`` dim (missing ones NaN; the file's own ``repetition``
    coordinate, which need not be unique, is kept as ``brainio_repetition``), or averaged
    with ``average=True``. ``time_bin_start``/``time_bin_end`` give ``time`` = the bin centre;
    an assembly without ``time_bin`` becomes a single bin (``time`` NaN unless the file has
    scalar bin edges). A recording where every stimulus appears once has no repetition dim.
    """
    import xarray as xr

    path = Path(path)
    if not path.exists():
        raise DataError(f"recording {path} does not exist")
    from .store import is_open

    if is_open(path):                  # an activation file this process reads: never open a file twice
        raise DataError(f"{path}: is an activation file open in this process, not a recording; pass a "
                        "recording saved by save_recording or a BrainIO assembly")
    try:
        with xr.open_dataset(path, engine="netcdf4") as opened:
            ds = opened.load()
    except Exception as e:
        raise DataError(f"{path}: not a readable netCDF file ({str(e).splitlines()[0]}); "
                        "pass a recording saved by save_recording or a BrainIO assembly") from None
    if "response" in ds.data_vars and {"stimulus", "time", "neuroid"} <= set(ds["response"].dims):
        da = check_recording(ds["response"], path)
        if average and "repetition" in da.dims:
            da = da.mean("repetition", skipna=True, keep_attrs=True)
        return da
    var = next((v for v in BRAINIO_VARIABLES if v in ds.data_vars), None)
    if var is None or "presentation" not in ds[var].dims or "neuroid" not in ds[var].dims:
        found = ", ".join(f"{k}{tuple(ds[k].dims)}" for k in ds.data_vars) or "no variables"
        raise DataError(f"{path}: not a recording (found {found}); expected 'response' (stimulus, time, neuroid) "
                        f"or a BrainIO assembly ('data' or '__xarray_dataarray_variable__' over presentation x neuroid)")
    da = check_recording(_from_brainio(ds, var, path), path)
    if average and "repetition" in da.dims:
        da = da.mean("repetition", skipna=True, keep_attrs=True)
    return da


RECORDING_DIMS = ("stimulus", "repetition", "time", "neuroid")


def check_recording(da, where):
    """``da`` if it is a usable recording (DESIGN.md section 2), else DataError naming ``where``.

    Dims are stimulus, time and neuroid (and optionally repetition), each non-empty;
    values are numbers; stimulus ids are unique; a time-resolved recording has
    finite, distinct bin centres and ``time_bin_start``/``time_bin_end`` on ``time``.
    A static recording (one bin) without bin edges gets NaN edges.
    """
    import xarray as xr

    if not isinstance(da, xr.DataArray):
        raise DataError(f"{where}: a recording is an xarray.DataArray (stimulus, time, neuroid); "
                        f"got {type(da).__name__}")
    odd = [d for d in da.dims if d not in RECORDING_DIMS]
    missing = [d for d in ("stimulus", "time", "neuroid") if d not in da.dims]
    if odd or missing:
        raise DataError(f"{where}: a recording has dims (stimulus, [repetition,] time, neuroid); it has "
                        f"{tuple(map(str, da.dims))}" + (f": reduce or select {', '.join(map(str, odd))} first"
                                                          if odd else ""))
    empty = [f"0 {d}s" if d != "stimulus" else "0 stimuli" for d in RECORDING_DIMS if da.sizes.get(d, 1) == 0]
    if empty:
        raise DataError(f"{where}: the recording has {' and '.join(empty)} ({dict(da.sizes)}); "
                        "nothing to compare: pass a recording with responses")
    if da.dtype.kind not in "biuf":
        raise DataError(f"{where}: responses must be numbers; got {da.dtype} values")
    ids = [str(s) for s in da["stimulus"].values] if "stimulus" in da.coords else None
    if ids is not None and len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise DataError(f"{where}: stimulus {dup!r} appears twice; average repeated presentations into a "
                        "'repetition' dim, or give each stimulus a unique id")
    t = np.asarray(da["time"].values, dtype=np.float64) if "time" in da.coords else np.full(da.sizes["time"], np.nan)
    has_bins = all(c in da.coords and da[c].dims == ("time",) for c in ("time_bin_start", "time_bin_end"))
    if da.sizes["time"] > 1:
        if not np.isfinite(t).all() or len(np.unique(t)) != len(t):
            raise DataError(f"{where}: the time coordinate must hold distinct, finite bin centres in ms; got "
                            f"{np.array2string(t, threshold=8)}")
        if not has_bins:
            raise DataError(f"{where}: a time-resolved recording needs time_bin_start and time_bin_end (ms) on "
                            "'time'; add them, e.g. rec.assign_coords(time_bin_start=('time', starts), "
                            "time_bin_end=('time', ends))")
    elif not has_bins:
        da = da.assign_coords(time_bin_start=("time", np.full(1, np.nan)), time_bin_end=("time", np.full(1, np.nan)))
    return da


def from_assembly(assembly, where="assembly"):
    """A recording from an in-memory BrainIO/Brain-Score assembly (e.g. a ``NeuroidAssembly``).

    ``assembly`` is a DataArray over ``presentation x neuroid [x time_bin]`` whose
    coordinates (plain or levels of a pandas MultiIndex, as Brain-Score keeps them)
    include ``stimulus_id`` (or ``image_id``), optionally ``neuroid_id``, ``repetition``
    and ``time_bin_start``/``time_bin_end`` in ms. Read as :func:`load_recording` reads
    a BrainIO file. Brain-Score's own package is not needed.
    """
    import xarray as xr

    if not isinstance(assembly, xr.DataArray) or "presentation" not in assembly.dims:
        raise DataError(f"{where}: an assembly is a DataArray over presentation x neuroid [x time_bin]; "
                        f"got {getattr(assembly, 'dims', type(assembly).__name__)}")
    flat = assembly.reset_index([d for d in assembly.dims if d in assembly.indexes])
    flat = flat.drop_vars([d for d in flat.dims if d in flat.coords])       # dimension coords the reset left
    return check_recording(_from_brainio(flat.to_dataset(name="data"), "data", where), where)


def _from_brainio(ds, var: str, path: Path):
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


def _netcdf_attr(key, value):
    """An attribute value netCDF can store: numbers, strings and 1-D numeric arrays as they are,
    UTF-8 bytes as text, anything else as JSON; DataError naming the attribute otherwise."""
    if isinstance(value, (str, int, float, np.integer, np.floating)) and not isinstance(value, bool):
        return value
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            raise DataError(f"save_recording: attribute {key!r} holds bytes that are not UTF-8 text; "
                            "store them as a string or drop the attribute") from None
    if isinstance(value, np.ndarray) and value.ndim <= 1 and value.dtype.kind in "iuf":
        return value
    try:
        return json.dumps(value.tolist() if isinstance(value, np.ndarray) else value)
    except (TypeError, ValueError):
        raise DataError(f"save_recording: attribute {key!r} ({type(value).__name__}) cannot be stored in "
                        "netCDF; make it a number, a string or a list of numbers, or drop it") from None


def save_recording(da, path) -> Path:
    """Write a recording in our layout (netCDF, written to ``<path>.partial`` then renamed)."""

    path = Path(path)
    if getattr(da, "dims", None) is None or not {"stimulus", "time", "neuroid"} <= set(da.dims):
        raise DataError(f"save_recording: a recording is a DataArray (stimulus, time, neuroid); "
                        f"got {getattr(da, 'dims', type(da).__name__)}")
    if not path.parent.exists():
        raise DataError(f"save_recording: folder {path.parent} does not exist")
    if path.is_dir():
        raise DataError(f"save_recording: {path} is a folder; pass a file name such as {path / 'recording.nc'}")
    da = da.copy()
    da.name = "response"
    for k in list(da.coords):
        if da[k].dtype == object:
            da = da.assign_coords({k: da[k].astype(str)})
    attrs = {}
    for k, v in da.attrs.items():
        attrs[str(k)] = _netcdf_attr(k, v)
    attrs["Conventions"] = CONVENTIONS
    da.attrs = attrs
    units = {"time": ("ms", "bin centre after stimulus onset"), "time_bin_start": ("ms", "bin start after stimulus onset"),
             "time_bin_end": ("ms", "bin end after stimulus onset")}
    for name, (unit, long_name) in units.items():
        if name in da.coords:
            da[name].attrs.update(units=unit, long_name=long_name)
    if "stimulus" in da.coords:
        da["stimulus"].attrs.setdefault("long_name", "stimulus id")
    return atomic_write(path, lambda tmp: da.to_netcdf(tmp, engine="netcdf4"))


from .neural_sets import NinetyTwo, cichy2014_meg, kriegeskorte92  # noqa: E402
from .simulation import simulate_recording  # noqa: E402
