"""Curves read from a comparison's cross-temporal matrix (layer, step, time).

A static target has one bin, so its curve over steps is that bin. For a
time-resolved target the :class:`~vision_rnn.analysis.timeaxis.TimeMapping`
(``mapped``) says which bins each step of a layer is active in: the curve over
steps takes the bin at the middle of each step's mapped bins, the curve over
recording time the step active in each bin.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from ..errors import CompareError

__all__ = ["step_curve", "ms_curve"]


def step_curve(ds: xr.Dataset) -> xr.Dataset:
    """(layer, step) curves: the only bin of a static target; else the bin at each step's mapped centre."""
    if ds.sizes["time"] == 1:
        return ds[["value", "low", "high"]].isel(time=0, drop=True)
    if "mapped" not in ds:
        raise CompareError("step_curve: a time-resolved result needs a 'mapped' variable (a TimeMapping)")
    mapped = ds["mapped"].values.astype(bool)
    idx = np.full(mapped.shape[:2], -1)
    for (i, k), _ in np.ndenumerate(idx):
        hits = np.flatnonzero(mapped[i, k])
        if hits.size:
            idx[i, k] = hits[hits.size // 2]
    out = {}
    for v in ("value", "low", "high"):
        a = ds[v].transpose("layer", "step", "time").values
        picked = np.take_along_axis(a, np.clip(idx, 0, None)[..., None], axis=2)[..., 0]
        out[v] = (("layer", "step"), np.where(idx >= 0, picked, np.nan))
    time_of = np.where(idx >= 0, ds["time"].values[np.clip(idx, 0, None)], np.nan)
    return xr.Dataset(out, coords={"layer": ds["layer"].values, "step": ds["step"].values,
                                   "time_ms": (("layer", "step"), time_of)})


def ms_curve(ds: xr.Dataset) -> xr.Dataset:
    """(layer, time) curves over recording time: the value of the step the mapping makes active."""
    if "mapped" not in ds:
        raise CompareError("ms_curve: needs a time-resolved result with a 'mapped' variable")
    mapped = ds["mapped"].transpose("layer", "step", "time").values.astype(bool)
    any_step = mapped.any(axis=1)
    k = mapped.argmax(axis=1)
    out = {}
    for v in ("value", "low", "high"):
        a = ds[v].transpose("layer", "step", "time").values
        picked = np.take_along_axis(a, k[:, None, :], axis=1)[:, 0]
        out[v] = (("layer", "time"), np.where(any_step, picked, np.nan))
    out["step"] = (("layer", "time"), np.where(any_step, ds["step"].values[k], -1))
    return xr.Dataset(out, coords={"layer": ds["layer"].values, "time": ds["time"].values})
