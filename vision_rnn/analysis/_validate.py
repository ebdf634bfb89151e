"""Checks shared by the readout and dynamics analyses: dimensions, weights, labels, stimuli.

Every failure raises :class:`~vision_rnn.errors.AnalysisError` with one line
that names the function, what it got and what it needs.
"""

from __future__ import annotations

import numpy as np

from ..errors import AnalysisError


def check_dims(da, dims: tuple, what: str, func: str):
    """``da`` must be a DataArray with exactly ``dims`` (in any order); returned transposed to ``dims``."""
    import xarray as xr

    if not isinstance(da, xr.DataArray):
        raise AnalysisError(f"{func}: {what} must be an xarray.DataArray with dims {dims} "
                            f"(e.g. vrnn.layer(tree, 'gap')), got {type(da).__name__}")
    if set(da.dims) != set(dims):
        raise AnalysisError(f"{func}: {what} has dims {da.dims} but needs {dims}")
    if "time" in dims and da.sizes["time"] < 1:
        raise AnalysisError(f"{func}: {what} has no time steps")
    return da.transpose(*dims)


def readout_matrix(weight, n_units: int, func: str) -> np.ndarray:
    """The readout as a float64 array (class, feature), checked against ``n_units``."""
    import xarray as xr

    if isinstance(weight, xr.DataArray):
        if weight.ndim != 2 or "class" not in weight.dims:
            raise AnalysisError(f"{func}: the readout weight has dims {weight.dims}; it needs "
                                "(class, feature) as stored in the file's readout_weight")
        other = [d for d in weight.dims if d != "class"][0]
        w = np.asarray(weight.transpose("class", other).values, dtype=np.float64)
    else:
        w = np.asarray(weight, dtype=np.float64)
        if w.ndim != 2:
            raise AnalysisError(f"{func}: the readout weight has shape {w.shape}; it needs (class, feature)")
    if w.shape[1] != n_units:
        raise AnalysisError(
            f"{func}: the readout has {w.shape[1]} features but the activation has {n_units} units; "
            "the stored readout reads only the readout layer (attrs['readout_layer'], 'gap' for BLT): "
            "for another layer fit one with vrnn.analysis.fit_readout(act)")
    if not np.all(np.isfinite(w)):
        raise AnalysisError(f"{func}: the readout weight holds NaN or infinite values")
    return w


def readout_bias(bias, n_classes: int, func: str) -> np.ndarray:
    """The bias as float64 (class,), zeros when ``bias`` is None."""
    if bias is None:
        return np.zeros(n_classes)
    b = np.asarray(getattr(bias, "values", bias), dtype=np.float64).reshape(-1)
    if b.shape != (n_classes,):
        raise AnalysisError(f"{func}: the readout bias has {b.size} values for {n_classes} classes")
    return b


def labels_for(da, labels, func: str) -> np.ndarray:
    """Integer labels aligned with ``da``'s stimuli: ``labels`` or the ``label`` coordinate."""
    import xarray as xr

    n = da.sizes["stimulus"]
    if labels is None:
        if "label" not in da.coords:
            raise AnalysisError(f"{func}: no labels given and the data has no 'label' coordinate; "
                                "pass labels= (class index per stimulus, -1 if unknown)")
        labels = da.coords["label"]
    if isinstance(labels, xr.DataArray):
        if labels.dims != ("stimulus",):
            raise AnalysisError(f"{func}: labels have dims {labels.dims}; they need ('stimulus',)")
        if "stimulus" in labels.indexes and "stimulus" in da.indexes:
            missing = ~np.isin(da.indexes["stimulus"], labels.indexes["stimulus"])
            if missing.any():
                raise AnalysisError(f"{func}: {missing.sum()} stimuli have no label "
                                    f"(e.g. {da.indexes['stimulus'][missing][0]!r})")
            labels = labels.sel(stimulus=da.indexes["stimulus"])
        labels = labels.values
    labels = np.asarray(labels)
    if labels.shape != (n,):
        raise AnalysisError(f"{func}: {labels.size} labels for {n} stimuli")
    if labels.dtype.kind not in "iu":
        if labels.dtype.kind == "f" and np.all(labels == np.round(labels)):
            labels = labels.astype(np.int64)
        else:
            raise AnalysisError(f"{func}: labels must be class indices (integers, -1 if unknown), "
                                f"got {labels.dtype}")
    return labels.astype(np.int64)


def labelled(labels: np.ndarray, func: str) -> np.ndarray:
    """The mask of labelled stimuli (label >= 0); an error if there is none."""
    mask = labels >= 0
    if not mask.any():
        raise AnalysisError(f"{func}: no stimulus has a label (all {labels.size} are -1): the analysis "
                            "needs the true class of each stimulus; use stimuli whose folder names "
                            "are the model's classes")
    return mask


def align_to_stability(da, stab, func: str):
    """``da`` restricted (and ordered) to the stimuli of the stability Dataset ``stab``."""
    import xarray as xr

    if not isinstance(stab, xr.Dataset) or "category" not in stab or "t_stable" not in stab:
        raise AnalysisError(f"{func}: stab must be the Dataset returned by stability(logits)")
    ids = stab.indexes.get("stimulus")
    if ids is None or "stimulus" not in da.indexes:
        if da.sizes["stimulus"] != stab.sizes["stimulus"]:
            raise AnalysisError(f"{func}: stab has {stab.sizes['stimulus']} stimuli, the activation "
                                f"{da.sizes['stimulus']}")
        return da
    have = da.indexes["stimulus"]
    missing = ids[~ids.isin(have)]
    if len(missing):
        raise AnalysisError(f"{func}: {len(missing)} of the {len(ids)} stimuli of stab are not in the "
                            f"activation (e.g. {missing[0]!r}); compute both from the same file")
    if len(ids) == len(have) and (ids == have).all():
        return da
    return da.sel(stimulus=ids)
