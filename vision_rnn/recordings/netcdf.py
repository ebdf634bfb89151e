"""Our recording file: a netCDF file holding the DataArray ``response`` (the layout of
:mod:`vision_rnn.recordings.layout`). :func:`load_recording` also reads BrainIO
assemblies (:mod:`vision_rnn.recordings.brainio`).

>>> from vision_rnn.recordings import load_recording                # doctest: +SKIP
>>> rec = load_recording("assembly.nc")                             # doctest: +SKIP
>>> rec.sizes                                                       # doctest: +SKIP
Frozen({'stimulus': 640, 'repetition': 50, 'time': 25, 'neuroid': 168})
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..atomic import atomic_write
from ..errors import DataError
from .brainio import BRAINIO_VARIABLES, from_brainio_dataset
from .layout import check_recording

__all__ = ["load_recording", "save_recording"]

CONVENTIONS = "CF-1.11 vision-rnn-recording-1.0"   # CF, and the recording layout's own version


def load_recording(path, average: bool = False):
    """A recording from our netCDF layout or a BrainIO assembly (Brain-Score's netCDF format).

    BrainIO: ``presentation x neuroid [x time_bin]``, stimulus id in ``stimulus_id`` (or the
    older ``image_id``); the presentations of a stimulus are numbered 0, 1, ... in order of
    appearance into a ``repetition`` dim (missing ones NaN; the file's own ``repetition``
    coordinate, which need not be unique, is kept as ``brainio_repetition``), or averaged
    with ``average=True``. ``time_bin_start``/``time_bin_end`` give ``time`` = the bin centre;
    an assembly without ``time_bin`` becomes a single bin (``time`` NaN unless the file has
    scalar bin edges). A recording where every stimulus appears once has no repetition dim.

    Parameters
    ----------
    path : str or os.PathLike
        A file written by :func:`save_recording`, or a BrainIO assembly.
    average : bool, optional
        Average over the ``repetition`` dim (NaN left out) instead of keeping it.

    Returns
    -------
    xarray.DataArray
        The recording, in memory, checked by :func:`~vision_rnn.recordings.layout.check_recording`:
        (stimulus, [repetition,] time, neuroid), ``time`` in ms with
        ``time_bin_start`` and ``time_bin_end``.
    """
    import xarray as xr

    path = Path(path)
    if not path.exists():
        raise DataError(f"recording {path} does not exist")
    from ..store import is_open

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
    da = check_recording(from_brainio_dataset(ds, var, path), path)
    if average and "repetition" in da.dims:
        da = da.mean("repetition", skipna=True, keep_attrs=True)
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
    """Write a recording in our layout (netCDF, written to ``<path>.partial`` then renamed).

    The DataArray is written as the variable ``response``; object coordinates
    become strings, attributes netCDF cannot store as they are become JSON text,
    and the time coordinates get units (ms).

    Parameters
    ----------
    da : xarray.DataArray
        The recording, dims (stimulus, [repetition,] time, neuroid).
    path : str or os.PathLike
        The file to write, in an existing folder; replaced if it exists.

    Returns
    -------
    pathlib.Path
        ``path``.
    """

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
