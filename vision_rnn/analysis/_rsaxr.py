"""xarray plumbing shared by the RSA functions: checks, condensed vectors, result assembly."""

from __future__ import annotations

import numpy as np
import xarray as xr

from ..errors import AnalysisError

FEATURE_DIMS = ("unit", "neuroid", "channel")


def feature_dim(da: xr.DataArray, feature: str | None) -> str:
    """The units dim of an activation or recording array."""
    if feature is not None:
        if feature not in da.dims:
            raise AnalysisError(f"feature={feature!r} is not a dim of this array ({', '.join(map(str, da.dims))})")
        return feature
    for name in FEATURE_DIMS:
        if name in da.dims:
            return name
    raise AnalysisError(f"no units dim ({', '.join(FEATURE_DIMS)}) in this array ({', '.join(map(str, da.dims))}); "
                    "pass feature= the dim that holds units or neuroids")


def check_rdms(da, what: str) -> None:
    if not isinstance(da, xr.DataArray) or "stimulus" not in da.dims or "stimulus_" not in da.dims:
        dims = getattr(da, "dims", type(da).__name__)
        raise AnalysisError(f"{what} must be RDMs, a DataArray (..., stimulus, stimulus_) from rsa.rdm; got {dims}")
    if da.sizes["stimulus"] != da.sizes["stimulus_"]:
        raise AnalysisError(f"{what}: stimulus and stimulus_ differ in length "
                        f"({da.sizes['stimulus']} vs {da.sizes['stimulus_']})")
    if da.sizes["stimulus"] < 3:
        raise AnalysisError(f"{what}: RDMs need at least 3 stimuli to compare (got {da.sizes['stimulus']})")


def _ids(da) -> list[str]:
    return [str(s) for s in da["stimulus"].values]


def _square_in_order(da: xr.DataArray, index) -> xr.DataArray:
    """Rows and columns ``index`` (positions along stimulus), stimulus_ put in stimulus order."""
    if "stimulus_" in da.coords and not np.array_equal(da["stimulus_"].values, da["stimulus"].values):
        da = da.sel(stimulus_=da["stimulus"].values)
    index = np.asarray(index)
    if np.array_equal(index, np.arange(da.sizes["stimulus"])):
        return da                                      # already in order: no copy of a large RDM stack
    return da.isel(stimulus=index, stimulus_=index)


def _condense(da: xr.DataArray) -> xr.DataArray:
    lead = [d for d in da.dims if d not in ("stimulus", "stimulus_")]
    da = da.transpose(*lead, "stimulus", "stimulus_")
    n = da.sizes["stimulus"]
    iu = np.triu_indices(n, 1)
    values = np.asarray(da.values, dtype=np.float64)[..., iu[0], iu[1]]
    coords = {k: c for k, c in da.coords.items() if not ({"stimulus", "stimulus_"} & set(c.dims))}
    return xr.DataArray(values, dims=(*lead, "pair"), coords=coords)


def condensed_pairs(a, b, id_map):
    """Match stimuli of two RDM sets and return their condensed vectors (..., pair).

    Dissimilarities that are NaN in any RDM of either set are dropped; the boolean mask over
    the matched set's pairs is kept in ``attrs["pair_mask"]`` of the first result.
    """
    from ..stimulus_ids import match_stimuli

    check_rdms(a, "rdms_a" if b is not None else "RDMs")
    if b is None:
        va = _condense(_square_in_order(a, np.arange(a.sizes["stimulus"])))
        vb, match = None, None
    else:
        check_rdms(b, "rdms_b")
        match = match_stimuli(_ids(a), _ids(b), id_map)
        if match.n_matched < 3:
            raise AnalysisError(f"only {match.n_matched} stimuli shared by the two RDM sets ({match}); "
                            "at least 3 are needed: check the ids or pass id_map=")
        va = _condense(_square_in_order(a, match.a))
        vb = _condense(_square_in_order(b, match.b))
    finite = np.isfinite(va.values).reshape(-1, va.sizes["pair"]).all(axis=0)
    if vb is not None:
        finite &= np.isfinite(vb.values).reshape(-1, vb.sizes["pair"]).all(axis=0)
    if not finite.any():
        raise AnalysisError("every dissimilarity is NaN in some RDM: nothing left to compare")
    if finite.sum() < 3:
        raise AnalysisError(f"only {int(finite.sum())} of {finite.size} dissimilarities are defined (not NaN) in "
                            "every RDM; comparing RDMs needs at least 3: drop the stimuli or bins with missing "
                            "responses")
    if not finite.all():
        va = va.isel(pair=finite)
        vb = vb.isel(pair=finite) if vb is not None else None
    va.attrs["pair_mask"] = finite
    return va, vb, match


def rename_time(va, vb):
    """``time`` -> ``time_a`` / ``time_b``; coords on it that both sides have get the same suffix."""
    va = va.rename({"time": "time_a"}) if "time" in va.dims else va
    vb = vb.rename({"time": "time_b"}) if "time" in vb.dims else vb
    clash = [c for c in va.coords if c in vb.coords and c not in va.dims
             and ("time_a" in va[c].dims or "time_b" in vb[c].dims)]
    if clash:
        va = va.rename({c: c + "_a" for c in clash})
        vb = vb.rename({c: c + "_b" for c in clash})
    a_dims = [d for d in va.dims if d != "pair"]
    b_dims = [d for d in vb.dims if d != "pair"]
    return va, vb, a_dims, b_dims


def outer_result(values: np.ndarray, va, vb, a_dims, b_dims, lead: str | None = None) -> xr.DataArray:
    """(…lead, Na, Nb) -> DataArray (lead, *a_dims, *b_dims); dims both sides share are paired."""
    shape_a = [va.sizes[d] for d in a_dims]
    shape_b = [vb.sizes[d] for d in b_dims]
    prefix = list(values.shape[:-2])
    values = values.reshape(prefix + shape_a + shape_b)
    shared = [d for d in b_dims if d in a_dims]
    b_names = [d + "__b" if d in shared else d for d in b_dims]
    dims = ([lead] if lead else []) + list(a_dims) + b_names
    coords = {}
    for v, ds, names in ((va, a_dims, a_dims), (vb, b_dims, b_names)):
        ren = dict(zip(ds, names))
        for k, c in v.coords.items():
            if k in ("pair",) or not set(c.dims) <= set(ds):
                continue
            new_dims = tuple(ren[d] for d in c.dims)
            coords[ren.get(k, k)] = (new_dims, c.values)
    out = xr.DataArray(values, dims=dims, coords=coords)
    for d in shared:
        a_lab, b_lab = va[d].values if d in va.coords else np.arange(va.sizes[d]), \
            vb[d].values if d in vb.coords else np.arange(vb.sizes[d])
        where = {lab: i for i, lab in enumerate(b_lab.tolist())}
        missing = [lab for lab in a_lab.tolist() if lab not in where]
        if missing:
            raise AnalysisError(f"dim {d!r} is in both RDM sets but {missing[:3]} of the first are not in the second")
        idx = xr.DataArray([where[lab] for lab in a_lab.tolist()], dims=d)
        out = out.isel({d + "__b": idx}).drop_vars(d + "__b", errors="ignore")
    return out
