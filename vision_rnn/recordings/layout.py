"""The recording layout (DESIGN.md section 2): a DataArray ``response`` (stimulus, [repetition,] time, neuroid).

``time`` is in milliseconds (bin centre) with ``time_bin_start`` and
``time_bin_end`` coordinates; a recording with one bin is static.
:func:`check_recording` is the one gate every reader and converter passes.
"""

from __future__ import annotations

import numpy as np

from ..errors import DataError

__all__ = ["RECORDING_DIMS", "check_recording"]

RECORDING_DIMS = ("stimulus", "repetition", "time", "neuroid")


def check_recording(da, where):
    """``da`` if it is a usable recording (DESIGN.md section 2), else DataError naming ``where``.

    Dims are stimulus, time and neuroid (and optionally repetition), each non-empty;
    values are numbers; stimulus ids are unique; a time-resolved recording has
    finite, distinct bin centres and ``time_bin_start``/``time_bin_end`` on ``time``.

    Parameters
    ----------
    da : xarray.DataArray
        The recording to check.
    where : str or os.PathLike
        Where it comes from (a file name), to begin error messages with.

    Returns
    -------
    xarray.DataArray
        ``da``; a static recording (one bin) without bin edges gets NaN edges.

    Raises
    ------
    DataError
        If ``da`` is not a usable recording.
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
