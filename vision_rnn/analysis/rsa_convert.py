"""Conversion between labelled arrays and rsatoolbox objects, and crossnobis RDMs through rsatoolbox.

- activations or a recording (stimulus, unit) -> ``rsatoolbox.data.Dataset``;
  with a ``time`` dim -> ``TemporalDataset`` (n_obs x n_channel x n_time); a
  ``repetition`` dim becomes one observation per trial (descriptor ``repetition``);
- RDMs (..., stimulus, stimulus_) -> ``rsatoolbox.rdm.RDMs``, leading dims as
  rdm descriptors, stimulus ids (and their coords) as pattern descriptors;

and back with :func:`from_rsatoolbox`.
"""

from __future__ import annotations

import warnings

import numpy as np
import xarray as xr

from ..errors import AnalysisError
from ._rsaxr import check_rdms, feature_dim

__all__ = ["to_rsatoolbox", "from_rsatoolbox"]


def _stim_coords(da) -> dict:
    return {k: np.asarray(c.values) for k, c in da.coords.items()
            if c.dims == ("stimulus",) and k != "stimulus"}


def to_rsatoolbox(da: xr.DataArray, feature: str | None = None):
    """An RDM array -> ``RDMs``; a (stimulus, [repetition,] [time,] unit) array -> ``Dataset`` /
    ``TemporalDataset``.

    >>> import numpy as np, xarray as xr
    >>> x = xr.DataArray(np.zeros((4, 3, 5)), dims=("stimulus", "time", "unit"),
    ...                  coords={"stimulus": list("abcd")})
    >>> type(to_rsatoolbox(x)).__name__
    'TemporalDataset'
    """
    import rsatoolbox

    if "stimulus_" in da.dims:
        check_rdms(da, "to_rsatoolbox")
        lead = [d for d in da.dims if d not in ("stimulus", "stimulus_")]
        da = da.transpose(*lead, "stimulus", "stimulus_")
        n = da.sizes["stimulus"]
        mats = np.asarray(da.values, dtype=np.float64).reshape(-1, n, n)
        rdm_desc = {}
        if lead:
            grid = np.meshgrid(*[np.arange(da.sizes[d]) for d in lead], indexing="ij")
            for k, c in da.coords.items():
                if c.dims and set(c.dims) <= set(lead) and len(c.dims) == 1:
                    rdm_desc[k] = np.asarray(c.values)[grid[lead.index(c.dims[0])].ravel()]
            for d, g in zip(lead, grid):
                rdm_desc.setdefault(d, g.ravel())
        patt = {"stimulus": [str(s) for s in da["stimulus"].values]}
        patt.update({k: list(v) for k, v in _stim_coords(da).items()})
        return rsatoolbox.rdm.RDMs(mats, dissimilarity_measure=da.attrs.get("method"),
                                   descriptors={"vrnn_dims": ",".join(map(str, lead))},
                                   rdm_descriptors=rdm_desc, pattern_descriptors=patt)
    feat = feature_dim(da, feature)
    extra = [d for d in da.dims if d not in ("stimulus", "repetition", "time", feat)]
    if extra:
        raise AnalysisError(f"to_rsatoolbox: select one value of {', '.join(extra)} first (a Dataset holds "
                        "stimulus, repetition, time and units only)")
    has_rep = "repetition" in da.dims
    obs_dims = ["stimulus", "repetition"] if has_rep else ["stimulus"]
    timed = "time" in da.dims
    da = da.transpose(*obs_dims, feat, *(["time"] if timed else []))
    x = np.asarray(da.values, dtype=np.float64)
    x = x.reshape((-1,) + x.shape[len(obs_dims):])
    stim_idx = np.repeat(np.arange(da.sizes["stimulus"]), da.sizes["repetition"] if has_rep else 1)
    obs = {"stimulus": np.array([str(s) for s in da["stimulus"].values])[stim_idx]}
    if has_rep:
        obs["repetition"] = np.tile(np.arange(da.sizes["repetition"]), da.sizes["stimulus"])
    for k, v in _stim_coords(da).items():
        obs[k] = v[stim_idx]
    keep = ~np.all(np.isnan(x.reshape(len(x), -1)), axis=1)     # missing trials
    x = x[keep]
    obs = {k: np.asarray(v)[keep] for k, v in obs.items()}
    chan = {feat: np.asarray(da[feat].values) if feat in da.coords else np.arange(da.sizes[feat])}
    chan.update({k: np.asarray(c.values) for k, c in da.coords.items() if c.dims == (feat,) and k != feat})
    desc = {"vrnn_feature_dim": feat}
    if timed:
        tdesc = {"time": np.asarray(da["time"].values)}
        tdesc.update({k: np.asarray(c.values) for k, c in da.coords.items() if c.dims == ("time",) and k != "time"})
        return rsatoolbox.data.TemporalDataset(x, descriptors=desc, obs_descriptors=obs,
                                               channel_descriptors=chan, time_descriptors=tdesc)
    return rsatoolbox.data.Dataset(x, descriptors=desc, obs_descriptors=obs, channel_descriptors=chan)


def from_rsatoolbox(obj) -> xr.DataArray:
    """``RDMs`` -> (…, stimulus, stimulus_); ``Dataset`` -> (stimulus, [repetition,] unit);
    ``TemporalDataset`` -> (stimulus, [repetition,] time, unit)."""
    import rsatoolbox

    if isinstance(obj, rsatoolbox.rdm.RDMs):
        mats = obj.get_matrices()
        ids = [str(s) for s in obj.pattern_descriptors.get("stimulus", obj.pattern_descriptors["index"])]
        coords = {"stimulus": ids, "stimulus_": ids}
        for k, v in obj.pattern_descriptors.items():
            if k not in ("stimulus", "index"):
                coords[k] = ("stimulus", np.asarray(v))
        dims_desc = str((obj.descriptors or {}).get("vrnn_dims", "") or "")
        lead = [d for d in dims_desc.split(",") if d]
        desc = {k: np.asarray(v) for k, v in obj.rdm_descriptors.items() if k != "index"}
        attrs = {"method": obj.dissimilarity_measure} if obj.dissimilarity_measure else {}
        if not lead and obj.n_rdm == 1:
            scalars = {k: v[0] for k, v in desc.items() if np.ndim(v[0]) == 0}
            return xr.DataArray(mats[0], dims=("stimulus", "stimulus_"), coords={**coords, **scalars}, attrs=attrs)
        da = xr.DataArray(mats, dims=("rdm", "stimulus", "stimulus_"), coords=coords, attrs=attrs)
        da = da.assign_coords({k: ("rdm", v) for k, v in desc.items()})
        if lead and all(d in desc for d in lead):
            if len(lead) == 1:          # one leading dim: rename, since a one-level set_index makes no MultiIndex
                da = da.swap_dims({"rdm": lead[0]}).drop_vars("rdm", errors="ignore")
            else:
                da = da.set_index(rdm=lead).unstack("rdm")
                import pandas as pd
                da = da.reindex({d: pd.unique(desc[d]) for d in lead})   # unstack sorts; keep the RDMs' order
            other = [k for k in desc if k not in lead]
            for k in other:   # coords of one leading dim (e.g. time_ms on time) back to that dim
                for d in lead:
                    reduced = da[k].isel({x: 0 for x in lead if x != d})
                    if (da[k] == reduced).all():
                        da = da.assign_coords({k: reduced.drop_vars([x for x in lead if x != d], errors="ignore")})
                        break
            da = da.transpose(*lead, "stimulus", "stimulus_")
        return da
    if isinstance(obj, rsatoolbox.data.Dataset):   # TemporalDataset is a Dataset
        x = obj.measurements
        feat = str((obj.descriptors or {}).get("vrnn_feature_dim", "unit"))
        obs = obj.obs_descriptors
        stim = np.array([str(s) for s in obs.get("stimulus", np.arange(obj.n_obs))])
        timed = x.ndim == 3
        dims = ("obs", feat, "time") if timed else ("obs", feat)
        da = xr.DataArray(x, dims=dims)
        if feat in obj.channel_descriptors:
            da = da.assign_coords({feat: np.asarray(obj.channel_descriptors[feat])})
        for k, v in obj.channel_descriptors.items():
            if k != feat:
                da = da.assign_coords({k: (feat, np.asarray(v))})
        if timed:
            for k, v in obj.time_descriptors.items():
                da = da.assign_coords({k: ("time", np.asarray(v))} if k != "time" else {"time": np.asarray(v)})
        index = ["stimulus", "repetition"] if "repetition" in obs else ["stimulus"]
        da = da.assign_coords(stimulus=("obs", stim))
        if "repetition" in obs:
            da = da.assign_coords(repetition=("obs", np.asarray(obs["repetition"])))
        _, first = np.unique(stim, return_index=True)
        order = stim[np.sort(first)]
        if len(index) > 1:
            da = da.set_index(obs=index).unstack("obs")
        else:
            da = da.swap_dims(obs="stimulus")
        da = da.reindex(stimulus=order)
        for k, v in obs.items():
            if k in ("stimulus", "repetition", "index"):
                continue
            vals = dict(zip(stim, np.asarray(v)))
            da = da.assign_coords({k: ("stimulus", np.array([vals[s] for s in order]))})
        return da.transpose("stimulus", *(["repetition"] if "repetition" in obs else []),
                            *(["time"] if timed else []), feat)
    raise AnalysisError(f"from_rsatoolbox takes rsatoolbox RDMs, Dataset or TemporalDataset, not {type(obj).__name__}")


def crossnobis(da: xr.DataArray, feat: str, over) -> xr.DataArray:
    """Crossnobis RDMs through rsatoolbox, one per index of the leading dims (see ``rsa.rdm``)."""
    import rsatoolbox
    from rsatoolbox.data.noise import prec_from_measurements

    if "repetition" not in da.dims or da.sizes["repetition"] < 2:
        raise AnalysisError("method='crossnobis' needs a 'repetition' dim with at least 2 trials; "
                        "load the recording with average=False")
    lead = [d for d in da.dims if d not in ("stimulus", "repetition", feat)]
    da = da.transpose(*lead, "stimulus", "repetition", feat)
    x = np.asarray(da.values, dtype=np.float64)
    if np.isnan(x).any():
        raise AnalysisError("method='crossnobis' needs every stimulus on every repetition; missing trials (NaN) "
                        "found: keep complete repetitions (e.g. .dropna('repetition')) or average first")
    n_s, n_r, n_f = x.shape[-3:]
    flat = x.reshape(-1, n_s * n_r, n_f)
    labels = np.repeat([f"{i:06d}" for i in range(n_s)], n_r)      # sorts like the stimulus order
    reps = np.tile(np.arange(n_r), n_s)
    out = np.empty((flat.shape[0], n_s, n_s))
    for i, m in enumerate(flat):
        ds = rsatoolbox.data.Dataset(m, obs_descriptors={"stimulus": labels, "repetition": reps})
        noise = prec_from_measurements(ds, obs_desc="stimulus", method="shrinkage_diag")
        with warnings.catch_warnings():   # rsatoolbox fills a NaN into an int array of its descriptors
            warnings.filterwarnings("ignore", "invalid value encountered in cast", RuntimeWarning)
            r = rsatoolbox.rdm.calc_rdm(ds, method="crossnobis", descriptor="stimulus", noise=noise,
                                        cv_descriptor="repetition")
        out[i] = r.get_matrices()[0]
    coords = {k: v for k, v in da.coords.items() if not ({feat, "repetition"} & set(v.dims))}
    res = xr.DataArray(out.reshape(x.shape[:-3] + (n_s, n_s)), dims=(*lead, "stimulus", "stimulus_"),
                       coords=coords, name=f"rdm_{da.name}" if da.name else "rdm")
    res = res.assign_coords(stimulus_=("stimulus_", da["stimulus"].values))
    res.attrs = {"method": "crossnobis", "feature_dim": feat, "n_features": n_f,
                 "noise": "precision from residuals across repetitions (shrinkage_diag)"}
    return res
