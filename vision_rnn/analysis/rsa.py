"""Representational similarity analysis over time: RDMs, comparisons, noise ceilings, bootstrap.

RDMs are square DataArrays ``(..., stimulus, stimulus_)``; leading dims such as
``time``, ``layer``, ``subject`` are carried through every function.
Definitions follow rsatoolbox (its "euclidean" is the squared distance divided
by the number of units; "correlation" is 1 - Pearson r); cosine, which
rsatoolbox lacks, follows scipy's ``pdist(metric="cosine")``. RDMs for every
step are computed in one batched matrix product, and comparisons rank each RDM
once and then use matrix products, so a cross-temporal comparison costs one
product instead of one rsatoolbox call per pair.

>>> import numpy as np, xarray as xr
>>> from vision_rnn.analysis import rsa
>>> x = xr.DataArray(np.random.default_rng(0).normal(size=(6, 3, 10)), dims=("stimulus", "time", "unit"),
...                  coords={"stimulus": [f"s{i}" for i in range(6)], "time": [0, 1, 2]})
>>> d = rsa.rdm(x)
>>> d.dims
('time', 'stimulus', 'stimulus_')
>>> rsa.compare(d, d).sel(time_a=1, time_b=1).item()
1.0
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from . import _rsacore as core
from ._rsaxr import condensed_pairs, feature_dim, outer_result, rename_time
from .rsa_convert import from_rsatoolbox, to_rsatoolbox
from ..errors import RSAError

__all__ = ["rdm", "compare", "noise_ceiling", "bootstrap", "to_rsatoolbox", "from_rsatoolbox"]

RDM_METHODS = core.RDM_METHODS + ("crossnobis",)
COMPARE_METHODS = core.COMPARE_METHODS



def _check_method(method, allowed, what):
    if method not in allowed:
        raise RSAError(f"{what} method {method!r} is not one of {', '.join(allowed)}")


# -- RDMs ------------------------------------------------------------------------------------
def rdm(da: xr.DataArray, method: str = "correlation", over: str | None = "time", feature: str | None = None,
        dtype="float64") -> xr.DataArray:
    """RDMs of ``da`` (stimulus, [time,] unit) for every step at once -> (time, stimulus, stimulus_).

    Parameters
    ----------
    da : activations (``vrnn.layer(tree, "it")``) or a recording (stimulus, time, neuroid);
        every dim other than stimulus, the feature dim and ``repetition`` is carried through
        (``time``, ``layer``, ...). Dask-backed input (a layer of an activation file, possibly
        larger than memory) is computed one chunk of ``over`` at a time, accumulating the Gram
        matrix over blocks of units (:func:`gram_rdms`), so memory grows with the stimuli
        squared, not with the units.
    method : ``"correlation"`` (1 - Pearson r), ``"euclidean"`` (squared distance / number of
        features, as rsatoolbox), ``"cosine"`` (1 - cosine similarity, as scipy ``pdist``), or
        ``"crossnobis"`` (needs a ``repetition`` dim: rsatoolbox's cross-validated Mahalanobis
        distance with leave-one-repetition-out folds; the noise precision is estimated from the
        residuals of the repetitions around each stimulus' mean, shrunk towards the diagonal,
        rsatoolbox ``prec_from_measurements(method="shrinkage_diag")``, separately per step).
        The other methods average over ``repetition`` first (ignoring missing trials).
    over : the dim RDMs are computed separately for (also the one dask chunks are walked along).
    feature : the units dim (default ``unit``, else ``neuroid``, else ``channel``).
    dtype : precision of the computation and result (float64 by default).
    """
    _check_method(method, RDM_METHODS, "rdm")
    if "stimulus" not in da.dims:
        raise RSAError(f"rdm needs a 'stimulus' dim; this array has {da.dims}")
    feat = feature_dim(da, feature)
    if over is not None and over not in da.dims and over != "time":
        raise RSAError(f"over={over!r} is not a dim of this array ({', '.join(map(str, da.dims))})")
    if da.sizes["stimulus"] < 2:
        raise RSAError(f"rdm needs at least 2 stimuli; this array has {da.sizes['stimulus']}")
    if method == "crossnobis":
        from .rsa_convert import crossnobis

        return crossnobis(da, feat, over)
    if "repetition" in da.dims:
        da = da.mean("repetition", skipna=True)
    lead = [d for d in da.dims if d not in ("stimulus", feat)]
    da = da.transpose(*lead, "stimulus", feat)
    if da.chunks is not None and over in lead:
        bounds = np.cumsum((0,) + da.chunksizes[over])
        axis = lead.index(over)
        n = da.sizes["stimulus"]
        values = np.empty([da.sizes[d] for d in lead] + [n, n], dtype=dtype)
        for a, b in zip(bounds[:-1], bounds[1:]):            # filled in place: no second copy of the RDMs
            index = (slice(None),) * axis + (slice(int(a), int(b)),)
            values[index] = gram_rdms(da.isel({over: slice(a, b)}).data, method, dtype)
    elif da.chunks is not None:
        values = gram_rdms(da.data, method, dtype)
    else:
        values = core.rdms(da.values, method, dtype)
    coords = {k: v for k, v in da.coords.items() if feat not in v.dims}
    out = xr.DataArray(values, dims=(*lead, "stimulus", "stimulus_"), coords=coords,
                       name=f"rdm_{da.name}" if da.name else "rdm")
    out = out.assign_coords(stimulus_=("stimulus_", da["stimulus"].values))
    out.attrs = {"method": method, "feature_dim": feat, "n_features": int(da.sizes[feat])}
    return out


GRAM_BLOCK_BYTES = 32 * 2**20     # bytes of one block of units read at once in the Gram accumulation


def unit_blocks(chunks, width: int) -> list:
    """(start, stop) blocks of features: whole storage chunks (``chunks``, their sizes) joined while
    they fit in ``width`` features, a chunk wider than ``width`` cut into pieces of ``width``."""
    out, lo, hi = [], 0, 0
    for size in chunks:
        if hi > lo and hi + size - lo > width:
            out.append((lo, hi))
            lo = hi
        if size > width:
            out += [(a, min(a + width, hi + size)) for a in range(hi, hi + size, width)]
            lo = hi = hi + size
            continue
        hi += size
    if hi > lo:
        out.append((lo, hi))
    return out


def gram_rdms(x, method: str, dtype="float64") -> np.ndarray:
    """RDMs (..., n, n) of a dask array ``x`` (..., n stimuli, p features), larger than memory if need be.

    The features are read a block at a time (whole storage chunks, about
    :data:`GRAM_BLOCK_BYTES` of them); each block gives its features' count, the patterns' means
    and their centred Gram matrix in float64, and blocks are added with the stable pairwise
    update of :func:`~vision_rnn.analysis._rsacore.add_moments`; correlation, cosine and
    euclidean follow (:func:`~vision_rnn.analysis._rsacore.rdms_from_moments`). Memory: one
    block and a few (..., n, n) matrices, whatever the number of features; every storage
    chunk is read once. With an active ``dask.distributed`` client the blocks are read and
    reduced on its workers (a balanced tree of pairwise sums), else here, one after another.
    """
    import dask

    from ._chunks import active_client

    *lead, n, p = x.shape
    per_unit = max(1, x.dtype.itemsize * n * int(np.prod(lead, dtype=np.int64)))
    blocks = unit_blocks(x.chunks[-1], max(1, GRAM_BLOCK_BYTES // per_unit))
    if active_client() is not None:
        parts = [dask.delayed(core.moments)(x[..., lo:hi]) for lo, hi in blocks]
        while len(parts) > 1:
            parts = [dask.delayed(core.add_moments)(a, b) for a, b in zip(parts[::2], parts[1::2])] + \
                (parts[-1:] if len(parts) % 2 else [])
        total = dask.compute(parts[0])[0]
    else:
        total = None
        for lo, hi in blocks:
            part = core.moments(x[..., lo:hi].compute(scheduler="sync"))   # one thread: no stray malloc arenas
            total = part if total is None else core.add_moments(total, part)
    return core.rdms_from_moments(*total, method).astype(dtype, copy=False)


# -- comparisons -----------------------------------------------------------------------------
def compare(rdms_a: xr.DataArray, rdms_b: xr.DataArray, method: str = "spearman", id_map=None) -> xr.DataArray:
    """Similarity of every RDM of ``rdms_a`` with every RDM of ``rdms_b``: (..., time_a, time_b).

    Equal to rsatoolbox's ``compare`` for ``spearman``, ``corr``, ``cosine``, ``tau-a``,
    ``rho-a``. ``time`` of ``rdms_a`` becomes ``time_a`` and of ``rdms_b`` ``time_b`` (model
    steps against recording milliseconds is fine: RDMs are compared, not aligned); other
    leading dims are carried through (shared ones, e.g. ``subject`` in both, are paired).
    Stimuli are matched by id, else file stem, else ``id_map`` (see
    :func:`vision_rnn.stimulus_ids.match_stimuli`); the count is in ``attrs["stimulus_match"]``.
    Dissimilarities that are NaN in any RDM are left out of every comparison.
    """
    _check_method(method, COMPARE_METHODS, "compare")
    va, vb, match = condensed_pairs(rdms_a, rdms_b, id_map)
    a2, b2, a_dims, b_dims = rename_time(va, vb)
    flat_a = a2.stack(_row_a=a_dims) if a_dims else a2.expand_dims("_row_a")
    flat_b = b2.stack(_row_b=b_dims) if b_dims else b2.expand_dims("_row_b")
    sims = core.cross(flat_a.transpose("_row_a", "pair").values, flat_b.transpose("_row_b", "pair").values,
                      method)
    out = outer_result(sims, a2, b2, a_dims, b_dims)
    out.name = "similarity"
    out.attrs = {"method": method, "stimulus_match": str(match), "n_pairs": int(va.sizes["pair"])}
    return out


def noise_ceiling(subject_rdms: xr.DataArray, method: str = "spearman", dim: str = "subject") -> xr.Dataset:
    """Lower and upper bound of the noise ceiling across ``dim``, as rsatoolbox defines them.

    Upper: mean similarity of each subject's RDM with the RDM pooled over all subjects;
    lower: with the RDM pooled over the other subjects (leave one out). Pooling follows
    rsatoolbox's ``pool_rdm`` for the method, so the result equals
    ``rsatoolbox.inference.boot_noise_ceiling(rdms, method, rdm_descriptor=dim)`` on every
    slice of the other leading dims (e.g. every time bin), computed for all at once.
    """
    _check_method(method, COMPARE_METHODS, "noise_ceiling")
    if dim not in subject_rdms.dims:
        raise RSAError(f"noise_ceiling: {dim!r} is not a dim of the RDMs ({', '.join(map(str, subject_rdms.dims))}); "
                       "pass dim= the subjects' dim")
    n = subject_rdms.sizes[dim]
    if n < 2:
        raise RSAError(f"noise_ceiling needs at least 2 along {dim!r} (got {n})")
    v, _, _ = condensed_pairs(subject_rdms, None, None)
    v = v.transpose(..., dim, "pair")
    x = v.values
    t = core.pool_transform(x, method)
    total = t.sum(axis=-2, keepdims=True)
    upper = core.paired(total / n, x, method).mean(axis=-1)
    lower = core.paired((total - t) / (n - 1), x, method).mean(axis=-1)
    dims = v.dims[:-2]
    coords = {k: c for k, c in v.coords.items() if set(c.dims) <= set(dims)}
    return xr.Dataset({"lower": (dims, lower), "upper": (dims, upper)}, coords=coords,
                      attrs={"method": method, "dim": dim, "n": n})


def bootstrap(rdms_a: xr.DataArray, rdms_b: xr.DataArray, method: str = "spearman", n: int = 1000,
              seed: int = 0, ci: float = 0.95, id_map=None) -> xr.Dataset:
    """Bootstrap over stimuli of :func:`compare`: confidence intervals on every cell.

    Each sample draws the matched stimuli with replacement, once for all time points and
    both sides, so the whole cross-temporal matrix is resampled jointly. Pairs of a stimulus
    with its own duplicate are dropped (their dissimilarity would be 0 by construction);
    a pair of two distinct stimuli drawn ``c_i`` and ``c_j`` times enters ``c_i * c_j``
    times. Returns ``estimate`` (on all stimuli), ``samples`` (``bootstrap``, ...), ``low``
    and ``high`` (percentile interval at ``ci``) and ``draws`` (the drawn stimulus indices,
    into the matched stimuli, for reproducing a sample).
    """
    _check_method(method, COMPARE_METHODS, "bootstrap")
    if n < 1:
        raise RSAError(f"bootstrap: n must be at least 1 (got {n})")
    if not 0 < ci < 1:
        raise RSAError(f"bootstrap: ci must be between 0 and 1 (got {ci})")
    estimate = compare(rdms_a, rdms_b, method, id_map)
    va, vb, match = condensed_pairs(rdms_a, rdms_b, id_map)
    a2, b2, a_dims, b_dims = rename_time(va, vb)
    flat_a = (a2.stack(_row_a=a_dims) if a_dims else a2.expand_dims("_row_a")).transpose("_row_a", "pair")
    flat_b = (b2.stack(_row_b=b_dims) if b_dims else b2.expand_dims("_row_b")).transpose("_row_b", "pair")
    n_stim = match.n_matched
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n_stim, size=(n, n_stim))
    counts = np.stack([np.bincount(d, minlength=n_stim) for d in draws])
    weights = core.pair_weights(counts)[:, va.attrs["pair_mask"]]
    with core.one_blas_thread():
        samples = core.weighted_cross(flat_a.values, flat_b.values, weights, method)
    samples_da = outer_result(samples, a2, b2, a_dims, b_dims, lead="bootstrap")
    alpha = (1 - ci) / 2
    q = samples_da.quantile([alpha, 1 - alpha], dim="bootstrap", skipna=True)
    ds = xr.Dataset({"estimate": estimate, "samples": samples_da,
                     "low": q.isel(quantile=0, drop=True), "high": q.isel(quantile=1, drop=True),
                     "draws": (("bootstrap", "draw"), draws)})
    ds.attrs = {"method": method, "n": n, "seed": seed, "ci": ci, "stimulus_match": str(match)}
    return ds
