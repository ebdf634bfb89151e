"""Encoding models: cross-validated ridge regression from one layer at each step to every neuroid.

For every model step, the layer's units predict every neuroid at every time bin
of a recording (repetitions averaged). Stimuli are split into ``folds``
(shuffled, seeded); for each fold a :class:`sklearn.linear_model.RidgeCV` is
fitted on the other folds, choosing its penalty per target from ``alphas`` by
efficient leave-one-out on those training stimuli only, and predicts the
held-out stimuli. The score of a neuroid at a (step, time bin) is the Pearson
r between its predictions and its responses over the held-out stimuli of a
fold, averaged over folds (as Brain-Score's regression scores: a correlation
over predictions pooled across folds would be biased below zero, because each
fold's intercept is the mean of the other folds).

Default penalty grid :data:`ENCODING_ALPHAS`: 1e-3 .. 1e7 in half-decade steps (21
values). Features are used as they are (the ridge fits an intercept, nothing is
standardised); a layer wider than ``max_features`` is reduced first, inside each
fold: ``reduce="pca"`` fits a PCA (``n_components``, default ``max_features``,
at most the number of training stimuli) on the training stimuli only and
applies it to the held-out ones, ``reduce="random"`` uses a seeded Gaussian
random projection to ``n_components`` dimensions (the same projection for every
fold; it depends on no data).

Memory: a step's rows are read a block of units at a time. When the layer has at
least as many units as stimuli (the usual case for a convolutional layer), the
PCA is computed from the Gram matrix of the rows (stimulus x stimulus, float64,
units centred; :func:`pca_from_gram`) and the random projection is accumulated
block by block, so memory grows with the stimuli, not the units; the steps run
on as many threads as cores. Otherwise (more stimuli than units) the step's rows
are read whole in float32 and reduced by scikit-learn.

Where the recording has a ``repetition`` dim, each neuroid's reliability at
each time bin is the split-half correlation of its repetition-averaged
responses over stimuli, Spearman-Brown corrected (``2 r / (1 + r)``), the
median over ``n_splits`` random splits of the repetitions into two halves
(:func:`split_half_reliability`). The noise-corrected score is
``r / sqrt(reliability)``; where the reliability is below ``min_reliability``
(default :data:`MIN_RELIABILITY`, 0.3) or undefined, the neuroid is flagged in
``unreliable`` at that bin and its corrected score is NaN: dividing by a small
reliability (e.g. in bins before the response starts) would inflate chance
correlations.

>>> import vision_rnn as vrnn                                            # doctest: +SKIP
>>> from vision_rnn.analysis import encode                               # doctest: +SKIP
>>> scores = encode(vrnn.layer(tree, "it"), recording)                  # doctest: +SKIP
>>> scores["r_corrected"].median("neuroid").sel(step=7)                 # doctest: +SKIP
"""

from __future__ import annotations

import os
from multiprocessing.pool import ThreadPool

import numpy as np
import xarray as xr

from ..errors import EncodingError
from ._rsacore import one_blas_thread

__all__ = ["encode", "median_score", "split_half_reliability", "ENCODING_ALPHAS", "MIN_RELIABILITY",
           "MIN_RELIABLE_SHARE"]

ENCODING_ALPHAS = np.logspace(-3, 7, 21)
MIN_STIMULI = 10
MIN_RELIABILITY = 0.3
MIN_RELIABLE_SHARE = 0.25



# -- reliability -----------------------------------------------------------------------------
def _pearson(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson r along axis 0, leaving out rows where either value is NaN; NaN without variance."""
    ok = np.isfinite(a) & np.isfinite(b)
    n = ok.sum(axis=0)
    a = np.where(ok, a, 0.0)
    b = np.where(ok, b, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        ma = a.sum(axis=0) / n
        mb = b.sum(axis=0) / n
        da = np.where(ok, a - ma, 0.0)
        db = np.where(ok, b - mb, 0.0)
        r = (da * db).sum(axis=0) / np.sqrt((da * da).sum(axis=0) * (db * db).sum(axis=0))
    return np.where(n >= 3, r, np.nan)


def split_half_reliability(recording: xr.DataArray, n_splits: int = 100, seed: int = 0) -> xr.DataArray:
    """Spearman-Brown corrected split-half reliability of every neuroid at every time bin.

    Each of ``n_splits`` random splits puts half of the repetitions (the first
    ``R // 2`` of a seeded permutation) in one half and the rest in the other; both
    halves are averaged (ignoring missing trials) and correlated over stimuli (Pearson,
    stimuli with a missing half left out); ``r`` becomes ``2 r / (1 + r)``. Returns the
    median over splits, ``(time, neuroid)``, with the recording's time and neuroid coords.
    """
    if "repetition" not in recording.dims or recording.sizes["repetition"] < 2:
        raise EncodingError("split_half_reliability needs a 'repetition' dim with at least 2 repetitions; "
                            f"this recording has {dict(recording.sizes)}")
    if n_splits < 1:
        raise EncodingError(f"split_half_reliability: n_splits must be at least 1 (got {n_splits})")
    has_time = "time" in recording.dims
    rec = recording if has_time else recording.expand_dims("time")
    x = np.asarray(rec.transpose("stimulus", "repetition", "time", "neuroid").values, dtype=np.float64)
    n_rep = x.shape[1]
    rng = np.random.default_rng(seed)
    out = np.empty((n_splits,) + x.shape[2:])
    with np.errstate(invalid="ignore"):
        for s in range(n_splits):
            perm = rng.permutation(n_rep)
            half_a = np.nanmean(x[:, perm[: n_rep // 2]], axis=1)
            half_b = np.nanmean(x[:, perm[n_rep // 2:]], axis=1)
            r = np.clip(_pearson(half_a, half_b), -1 + 1e-12, 1.0)
            out[s] = 2 * r / (1 + r)
        rel = np.nanmedian(out, axis=0) if np.isfinite(out).any() else np.full(out.shape[1:], np.nan)
    coords = {k: c for k, c in rec.coords.items() if set(c.dims) <= {"time", "neuroid"}}
    da = xr.DataArray(rel, dims=("time", "neuroid"), coords=coords, name="reliability",
                      attrs={"n_splits": n_splits, "seed": seed, "n_repetitions": n_rep,
                             "definition": "median over random splits of the Spearman-Brown corrected "
                                           "split-half Pearson r over stimuli"})
    return da if has_time else da.isel(time=0, drop=True)


def median_score(scores: xr.Dataset, min_reliable_share: float = MIN_RELIABLE_SHARE) -> xr.DataArray:
    """The median over neuroids of an :func:`encode` result, as reports and figures show it.

    Without repetitions: the median held-out ``r`` over every neuroid. With them: the
    median noise-corrected ``r_corrected`` over the neuroids that are reliable at the bin
    (not ``unreliable``), NaN at bins where fewer than ``min_reliable_share`` of the
    neuroids (and at least one) are: in a bin without signal (e.g. before stimulus onset)
    a few neuroids pass any threshold by chance, and the median of those few means
    nothing. The name says which score it is (``r`` or ``r_corrected``).
    """
    import warnings

    if "r_corrected" not in scores:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return scores["r"].median("neuroid").rename("r")
    reliable = ~scores["unreliable"].astype(bool)
    n_reliable = reliable.sum("neuroid")
    enough = (n_reliable >= max(1.0, min_reliable_share * scores.sizes["neuroid"]))
    with warnings.catch_warnings():                      # all-NaN slices: no reliable neuroid
        warnings.simplefilter("ignore", RuntimeWarning)
        med = scores["r_corrected"].where(reliable).median("neuroid")
    return med.where(enough).rename("r_corrected").assign_attrs(min_reliable_share=min_reliable_share)


# -- encoding --------------------------------------------------------------------------------
def check_min_reliability(value) -> float:
    """``value`` as a float in (0, 1]; EncodingError naming ``min_reliability`` otherwise."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = np.nan
    if not 0 < number <= 1:
        raise EncodingError(f"`min_reliability={value}`: must be a number in (0, 1] (a split-half "
                            "reliability, e.g. 0.3)")
    return number


def _reducer(reduce: str, n_features: int, max_features: int, n_components: int | None, n_train: int,
             seed: int):
    if n_features <= max_features:
        return None
    k = int(n_components or max_features)
    if reduce == "pca":
        from sklearn.decomposition import PCA

        return PCA(n_components=min(k, n_train), random_state=seed)
    from sklearn.random_projection import GaussianRandomProjection

    return GaussianRandomProjection(n_components=k, random_state=seed)


NEUROID_CHUNK = 256          # targets fitted together by one RidgeCV
SLICE_BYTES = 8 * 2**20      # float64 bytes of units converted at once
EIG_TOL = 1e-9               # principal components with variance below this share of the largest are dropped


def _ridge_scores(features, y, folds, alphas):
    """Held-out Pearson r of every target in every fold and the penalty each fold chose (fold, target).

    ``features(train, test)`` gives the fold's (training, held-out) feature rows; the ridge
    models are fitted on :data:`NEUROID_CHUNK` targets at a time."""
    from sklearn.linear_model import RidgeCV

    scores = np.empty((len(folds), y.shape[1]))
    chosen = np.empty((len(folds), y.shape[1]))
    for f, (train, test) in enumerate(folds):
        x_train, x_test = features(train, test)
        for lo in range(0, y.shape[1], NEUROID_CHUNK):
            cols = slice(lo, lo + NEUROID_CHUNK)
            model = RidgeCV(alphas=alphas, alpha_per_target=True).fit(x_train, y[train, cols])
            scores[f, cols] = _pearson(model.predict(x_test), y[test, cols])
            chosen[f, cols] = np.broadcast_to(model.alpha_, (scores[f, cols].shape[0],))
    return scores, chosen


def _column_blocks(data):
    """Blocks (stimulus, units) of a step's rows ``data`` (numpy or dask), whole storage chunks
    of at most :data:`~vision_rnn.analysis.rsa.GRAM_BLOCK_BYTES` each, read one at a time."""
    from .rsa import GRAM_BLOCK_BYTES, unit_blocks

    n, p = data.shape
    chunks = data.chunks[-1] if getattr(data, "chunks", None) is not None else (p,)
    width = max(1, GRAM_BLOCK_BYTES // max(1, data.dtype.itemsize * n))
    for lo, hi in unit_blocks(chunks, width):
        block = data[:, lo:hi]
        yield lo, hi, np.asarray(block.compute(scheduler="sync") if hasattr(block, "compute") else block)


def _float64_slices(block):
    """``block`` (n, units) in float64, a slice of about :data:`SLICE_BYTES` at a time: (start, slice)."""
    width = max(1, SLICE_BYTES // (8 * max(1, block.shape[0])))
    for lo in range(0, block.shape[1], width):
        yield lo, np.array(block[:, lo:lo + width], dtype=np.float64)


def centred_gram(data) -> np.ndarray:
    """The Gram matrix (n, n), float64, of a step's rows ``data`` (stimulus, unit) with every unit
    centred over the stimuli, accumulated over blocks of units: memory n x n, whatever the units."""
    n = data.shape[0]
    gram = np.zeros((n, n))
    with np.errstate(invalid="ignore", over="ignore"):           # non-finite rows are refused by the caller
        for _, _, block in _column_blocks(data):
            for _, x in _float64_slices(block):
                x -= x.mean(axis=0)
                gram += x @ x.T
    return gram


def pca_from_gram(gram: np.ndarray, train, test, k: int) -> tuple:
    """PCA fitted on the ``train`` rows, from the Gram matrix of all rows: the (training, held-out)
    scores on the first ``k`` principal components.

    With the training rows centred by their mean, ``Xc = U S V'``: the training scores are
    ``U S`` and a held-out row ``x`` scores ``(x - mean) Xc' U / S``; both need only inner
    products of rows. Components with a variance below :data:`EIG_TOL` of the largest
    (numerically zero) are dropped: their training scores are zero, so a ridge gives them no weight.
    Equal to :class:`sklearn.decomposition.PCA` on the training rows up to each component's sign."""
    k_tt = gram[np.ix_(train, train)]
    k_st = gram[np.ix_(test, train)]
    row = k_tt.mean(axis=0)
    grand = row.mean()
    k_tt -= row[:, None]
    k_tt -= row[None, :]
    k_tt += grand
    k_st -= k_st.mean(axis=1, keepdims=True)
    k_st -= row[None, :]
    k_st += grand
    lam, u = np.linalg.eigh(k_tt)
    lam, u = lam[::-1], u[:, ::-1]
    keep = min(int(k), int((lam > lam[0] * EIG_TOL).sum())) if lam[0] > 0 else 0
    if keep == 0:                                   # a constant layer: nothing to predict with
        return np.zeros((len(train), 1)), np.zeros((len(test), 1))
    s = np.sqrt(lam[:keep])
    u = u[:, :keep]
    return u * s, (k_st @ u) / s


def projected(data, components: np.ndarray) -> np.ndarray:
    """``data @ components.T`` (stimulus, k) in float64, accumulated over blocks of units."""
    out = np.zeros((data.shape[0], components.shape[0]))
    with np.errstate(invalid="ignore", over="ignore"):
        for lo, _, block in _column_blocks(data):
            for a, x in _float64_slices(block):
                out += x @ components[:, lo + a:lo + a + x.shape[1]].T.astype(np.float64)
    return out


def _step_features(step, folds, reduce, max_features, n_components, seed):
    """``features(train, test)`` for one model step (stimulus, unit), reading its rows here.

    A layer wider than ``max_features`` with no more stimuli than units (the usual case) is
    read a block of units at a time into its Gram matrix (``pca``) or its projection
    (``random``): memory grows with the stimuli, not the units. Otherwise the rows are read
    whole in float32 and reduced inside each fold by scikit-learn."""
    data = step.data
    n, p = data.shape
    k = int(n_components or max_features)
    if p > max_features and reduce == "pca" and n <= p:
        gram = _finite(centred_gram(data), step)
        return lambda train, test: pca_from_gram(gram, train, test, min(k, len(train)))
    if p > max_features and reduce == "random":
        from sklearn.random_projection import GaussianRandomProjection

        rp = GaussianRandomProjection(n_components=k, random_state=seed).fit(np.zeros((2, p), np.float32))
        z = _finite(projected(data, rp.components_), step)
        return lambda train, test: (z[train], z[test])
    x = _finite(np.asarray(step.values, dtype=np.float32), step)

    def features(train, test):
        x_train, x_test = x[train], x[test]
        red = _reducer(reduce, p, max_features, n_components, len(train), seed)
        if red is None:
            return x_train, x_test
        return red.fit_transform(x_train), red.transform(x_test)
    return features


def _finite(values: np.ndarray, step) -> np.ndarray:
    """``values`` computed from a step's rows; EncodingError if the rows hold NaN or infinite activations."""
    if not np.isfinite(values).all():
        when = step["time"].item() if "time" in step.coords else "?"
        raise EncodingError(f"encode: layer {step.name or ''!s} has NaN or infinite activations at step {when} "
                            "on the shared stimuli; drop those stimuli or units first")
    return values


def _step_scores(step, y, folds, alphas, reduce, max_features, n_components, seed):
    """(r, alpha) over targets for one model step."""
    features = _step_features(step, folds, reduce, max_features, n_components, seed)
    scores, chosen = _ridge_scores(features, y, folds, alphas)
    return scores.mean(axis=0), np.exp(np.log(chosen).mean(axis=0))


def _matched(model: xr.DataArray, recording: xr.DataArray, id_map):
    from ..stimulus_ids import match_stimuli

    match = match_stimuli(model["stimulus"].values, recording["stimulus"].values, id_map)
    if match.n_matched < MIN_STIMULI:
        raise EncodingError(f"encoding needs at least {MIN_STIMULI} stimuli shared by the layer and the "
                            f"recording; {match}: check the ids or pass id_map=")
    return model.isel(stimulus=match.a), recording.isel(stimulus=match.b), match


def encode(model: xr.DataArray, recording: xr.DataArray, *, alphas=ENCODING_ALPHAS, folds: int = 5,
           max_features: int = 1000, reduce: str = "pca", n_components: int | None = None,
           n_splits: int = 100, min_reliability: float = MIN_RELIABILITY, seed: int = 0, id_map=None,
           progress: bool = False) -> xr.Dataset:
    """Cross-validated ridge encoding of every neuroid at every time bin from each model step.

    Parameters
    ----------
    model : one layer, (stimulus, time, unit) with ``time`` the model step (``vrnn.layer``).
    recording : (stimulus, [repetition,] time, neuroid), ``time`` in ms; repetitions are
        averaged (ignoring missing trials) for fitting and scoring.
    alphas : ridge penalties searched per target on the training stimuli (default :data:`ENCODING_ALPHAS`).
    folds : number of folds over stimuli (shuffled with ``seed``); the same folds for every step.
    max_features, reduce, n_components : a layer with more than ``max_features`` units is
        reduced inside each fold, ``"pca"`` (fitted on the training stimuli) or ``"random"``
        (seeded Gaussian projection) to ``n_components`` (default ``max_features``) dimensions.
    n_splits : random repetition splits for :func:`split_half_reliability`.
    min_reliability : in (0, 1]; a neuroid whose split-half reliability at a bin is below
        it (or undefined) is flagged ``unreliable`` there and gets no noise-corrected score.
    id_map : stimulus id map (see :func:`vision_rnn.stimulus_ids.match_stimuli`).

    Returns an ``xarray.Dataset`` over ``(step, time, neuroid)``: ``r`` (held-out Pearson r,
    mean over folds), ``alpha`` (geometric mean over folds of the chosen penalty),
    and where repetitions exist ``reliability`` and ``unreliable`` (time, neuroid;
    reliability below ``min_reliability`` or undefined) and ``r_corrected``
    (``r / sqrt(reliability)``, NaN where unreliable). ``step`` carries the
    model's steps (and ``step_time_ms`` when the layer has ``time_ms``), ``time`` the
    recording's bins with their edges, ``neuroid`` its coordinates.
    """
    from sklearn.model_selection import KFold

    feat, alphas, min_reliability = _check(model, recording, reduce, alphas, min_reliability)
    model, rec, match = _matched(model, recording, id_map)
    if "time" not in rec.dims:
        rec = rec.expand_dims(time=[np.nan])
    mean, y3 = _mean_responses(rec)
    n, n_time, n_neuroid = y3.shape
    n_folds = int(folds)
    if not 2 <= n_folds <= n // 3:
        raise EncodingError(f"encode: folds={folds} must be between 2 and a third of the {n} stimuli "
                            "(each held-out fold needs at least 3 stimuli for a correlation)")
    split = list(KFold(n_splits=n_folds, shuffle=True, random_state=seed).split(np.arange(n)))
    layer = model.transpose("stimulus", "time", feat)
    r, alpha = _all_steps(layer, dict(y=y3.reshape(n, -1), folds=split, alphas=alphas, reduce=reduce,
                                      max_features=max_features, n_components=n_components, seed=seed), progress)
    r, alpha = r.reshape(-1, n_time, n_neuroid), alpha.reshape(-1, n_time, n_neuroid)
    coords = {"step": model["time"].values}
    if "time_ms" in model.coords:
        coords["step_time_ms"] = ("step", np.asarray(model["time_ms"].values, dtype=np.float64))
    coords.update({k: c for k, c in mean.coords.items() if set(c.dims) <= {"time", "neuroid"} and c.dims})
    coords["time"] = mean["time"].values
    dims = ("step", "time", "neuroid")
    ds = xr.Dataset({"r": (dims, r), "alpha": (dims, alpha)}, coords=coords)
    n_features = layer.sizes[feat]
    ds.attrs = {"layer": str(model.name or ""), "n_stimuli": int(n), "n_features": int(n_features),
                "reduce": (f"{reduce} to {n_components or max_features}" if n_features > max_features else "none"),
                "folds": n_folds, "alphas": alphas.tolist(), "seed": int(seed),
                "stimulus_match": str(match), "score": "held-out Pearson r of ridge predictions, mean over folds"}
    if "repetition" in rec.dims and rec.sizes["repetition"] >= 2:
        _add_noise_correction(ds, rec, n_splits, min_reliability, seed)
    return ds


def _check(model, recording, reduce, alphas, min_reliability):
    """(feature dim, alphas as an array, min_reliability) of valid inputs; EncodingError otherwise."""
    if reduce not in ("pca", "random"):
        raise EncodingError(f"encode: reduce={reduce!r} is not 'pca' or 'random'")
    min_reliability = check_min_reliability(min_reliability)
    for da, dims, what in ((model, ("stimulus", "time"), "model"), (recording, ("stimulus", "neuroid"), "recording")):
        missing = [d for d in dims if d not in da.dims]
        if missing:
            raise EncodingError(f"encode: the {what} has no {', '.join(missing)} dim ({', '.join(map(str, da.dims))})")
    feat = next((d for d in model.dims if d not in ("stimulus", "time")), None)
    if feat is None or model.ndim != 3:
        raise EncodingError(f"encode: the model must be (stimulus, time, unit); got {model.dims}")
    alphas = np.asarray(alphas, dtype=np.float64).ravel()
    if alphas.size == 0 or (alphas <= 0).any():
        raise EncodingError("encode: alphas must be positive numbers")
    return feat, alphas, min_reliability


def _mean_responses(rec):
    """The repetition-averaged recording and its values (stimulus, time, neuroid), all finite."""
    mean = rec.mean("repetition", skipna=True) if "repetition" in rec.dims else rec
    y3 = np.asarray(mean.transpose("stimulus", "time", "neuroid").values, dtype=np.float64)
    if not np.isfinite(y3).all():
        raise EncodingError("encode: the recording has missing (NaN) responses after averaging repetitions; "
                            "drop those stimuli or neuroids first")
    return mean, y3


def _all_steps(layer, fit: dict, progress: bool):
    """(r, alpha) (step, target) of every step; the steps run on a pool of threads, each reading its
    own step's rows (:func:`_step_features`), never the whole layer at once."""
    from tqdm.auto import tqdm

    n_steps = layer.sizes["time"]
    r = np.empty((n_steps, fit["y"].shape[1]))
    alpha = np.empty_like(r)
    with one_blas_thread(), ThreadPool(min(n_steps, os.cpu_count() or 1)) as pool, \
            tqdm(total=n_steps, desc="encoding", unit="step", disable=not progress) as bar:
        for k, (rk, ak) in enumerate(pool.imap(lambda k: _step_scores(layer.isel(time=k), **fit), range(n_steps))):
            r[k], alpha[k] = rk, ak
            bar.update()
    return r, alpha


def _add_noise_correction(ds, rec, n_splits, min_reliability, seed) -> None:
    """``reliability``, ``unreliable`` and ``r_corrected`` from the repetitions of ``rec``."""
    rel = split_half_reliability(rec, n_splits=n_splits, seed=seed)
    bad = ~(rel.values >= min_reliability)
    r = ds["r"].values
    ds["reliability"] = (("time", "neuroid"), rel.values)
    ds["unreliable"] = (("time", "neuroid"), bad)
    ds["r_corrected"] = (("step", "time", "neuroid"),
                         np.where(bad[None], np.nan, r / np.sqrt(np.where(bad, 1.0, rel.values))[None]))
    ds.attrs.update(n_unreliable=int(bad.sum()), n_splits=int(n_splits), min_reliability=min_reliability,
                    noise_correction="r / sqrt(Spearman-Brown split-half reliability); NaN where "
                                     f"the reliability is below {min_reliability:g} or undefined")
