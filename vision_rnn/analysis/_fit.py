"""A linear readout fitted to any layer, so that readout zones exist for every layer.

Re-exported by :mod:`vision_rnn.analysis.readout` as ``fit_readout``.
"""

from __future__ import annotations

import warnings

import numpy as np

from ..errors import AnalysisError
from . import _validate as v
from ._chunks import blocks

MAX_BYTES = 64 * 2**20


def _sample_rows(act, labels, max_bytes, seed):
    """A seeded random subset of labelled (stimulus, time) rows, at most ``max_bytes`` of float32.

    Read chunk by chunk: only one storage chunk is in memory besides the rows.
    """
    keep = np.flatnonzero(labels >= 0)
    n_t, n_u = act.sizes["time"], act.sizes["unit"]
    total = keep.size * n_t
    n_rows = int(min(total, max(1, max_bytes // (4 * n_u))))
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(total, size=n_rows, replace=False))
    s, t = keep[pick // n_t], pick % n_t                      # sorted by stimulus
    x = np.empty((n_rows, n_u), dtype=np.float32)
    for lo, hi, ulo, uhi, block in blocks(act, stimuli=s):
        r0, r1 = np.searchsorted(s, lo), np.searchsorted(s, hi)
        x[r0:r1, ulo:uhi] = block[s[r0:r1] - lo, t[r0:r1]]
    return x, labels[s], s, t, total


def _folds(y, groups, cv, seed):
    from sklearn.model_selection import GroupKFold, StratifiedGroupKFold

    n_groups_per_class = min(np.unique(groups[y == c]).size for c in np.unique(y))
    if n_groups_per_class >= cv:
        splitter = StratifiedGroupKFold(n_splits=cv, shuffle=True, random_state=seed)
    else:
        splitter = GroupKFold(n_splits=cv)
    return list(splitter.split(np.zeros(y.size), y, groups))


def _logreg(c, max_iter, warm_start=False):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=c, fit_intercept=False, max_iter=max_iter, warm_start=warm_start)


def fit_readout(act, labels=None, *, classes=None, max_bytes: int = MAX_BYTES, cv: int = 3,
                Cs=(0.01, 0.1, 1.0, 10.0), seed: int = 0, max_iter: int = 300):
    """Fit a linear readout without bias to any layer -> weight DataArray (class, feature).

    The network's own readout reads only its readout layer (``gap``); this
    gives every other layer (v1, v4, ...) readout zones of its own: a
    multinomial logistic regression without intercept (scikit-learn, lbfgs,
    L2), shared across time steps like the network's readout, fitted on
    (stimulus, time) rows with the label of the stimulus. The inverse
    regularisation ``C`` is chosen from ``Cs`` by ``cv``-fold cross-validation
    that keeps all steps of a stimulus in one fold (held-out rows get sample
    weight 0 rather than being copied out; the C path is warm-started); the
    result is refitted on all sampled rows with the best ``C``.

    Memory stays bounded whatever the layer's size: at most ``max_bytes``
    of float32 rows are read, a seeded random subset of the labelled
    (stimulus, time) rows drawn chunk by chunk from the file. Features are
    divided by their root mean square before fitting (and the weights by the
    same factor after), so ``Cs`` mean the same for every layer.

    Parameters
    ----------
    act : xarray.DataArray
        A layer's activations, dims (stimulus, time, unit), e.g.
        ``vrnn.layer(tree, "v4")``; it may be lazily opened.
    labels : array-like or xarray.DataArray, optional
        Class index per stimulus, -1 if unknown (left out); defaults to the
        ``label`` coordinate of ``act``.
    classes : sequence, optional
        Class names; sets the class axis, default ``0 .. max(label)``. A class
        with no labelled row gets an all-zero readout vector.
    max_bytes : int, optional
        The most float32 rows to read, in bytes (64 MiB by default).
    cv : int, optional
        Folds of the cross-validation, at least 2 (default 3).
    Cs : sequence of float, optional
        The inverse regularisations to choose from.
    seed : int, optional
        Seeds the row sample and the folds.
    max_iter : int, optional
        Iterations of lbfgs per fit.

    Returns
    -------
    xarray.DataArray
        ``readout_weight`` (class, feature), in float64, applying to the unscaled
        activations. Attributes record the chosen ``C``, ``cv_accuracy`` (the mean
        over folds of the held-out accuracy of the chosen ``C``),
        ``cv_accuracy_per_step`` (each step's held-out rows pooled over the
        folds), ``cv_folds``, the rows used (``n_rows``, ``n_rows_available``,
        ``n_stimuli``), ``absent_classes``, ``seed`` and ``layer``.

    Examples
    --------
    >>> import vision_rnn as vrnn                                     # doctest: +SKIP
    >>> tree = vrnn.open_activations("acts.nc")                       # doctest: +SKIP
    >>> w = fit_readout(vrnn.layer(tree, "v4"))                       # doctest: +SKIP
    >>> zones = readout_zone(vrnn.layer(tree, "v4"), w)               # doctest: +SKIP
    """
    import xarray as xr

    func = "fit_readout"
    act = v.check_dims(act, ("stimulus", "time", "unit"), "the activation", func)
    labels = v.labels_for(act, labels, func)
    v.labelled(labels, func)
    n_classes = len(classes) if classes is not None else int(labels.max()) + 1
    if labels.max() >= n_classes:
        raise AnalysisError(f"{func}: label {labels.max()} but only {n_classes} classes were given")
    if cv < 2:
        raise AnalysisError(f"{func}: cv must be at least 2 (got {cv})")
    Cs = sorted(float(c) for c in Cs)
    x, y, groups, steps, total = _sample_rows(act, labels, max_bytes, seed)
    present = np.unique(y)
    if present.size < 2:
        raise AnalysisError(f"{func}: the labelled stimuli cover {present.size} class; a readout needs two")
    if np.unique(groups).size < cv:
        raise AnalysisError(f"{func}: {np.unique(groups).size} labelled stimuli are too few for {cv}-fold "
                            "cross-validation")
    scale = _rms(x, func)
    x /= scale
    scores, held, best, model = _cross_validate(x, y, groups, Cs, cv, seed, max_iter)
    per_step = _per_step_accuracy(held[best], y, steps, act.sizes["time"])
    w = _weights(model, n_classes, x.shape[1], scale)
    names = list(classes) if classes is not None else list(range(n_classes))
    return xr.DataArray(
        w, dims=("class", "feature"), coords={"class": names}, name="readout_weight",
        attrs={"fitted": 1, "method": "multinomial logistic regression, no intercept (scikit-learn lbfgs, L2)",
               "C": float(Cs[best]), "cv_accuracy": float(scores[best]), "cv_folds": int(cv),
               "cv_accuracy_per_step": [float(a) for a in per_step],
               "n_rows": int(y.size), "n_rows_available": int(total), "n_stimuli": int(np.unique(groups).size),
               "absent_classes": [int(k) for k in sorted(set(range(n_classes)) - set(model.classes_))],
               "seed": int(seed), "layer": str(act.name) if act.name is not None else ""})


def _rms(x, func) -> float:
    """The root mean square of ``x``, summed in float64 without a float64 copy; refuses zero or not finite."""
    parts = np.array_split(x, 1 + x.size // 2**22)          # float64 sums without a float64 copy
    sq = sum(float(np.einsum("ij,ij->", part, part, dtype=np.float64)) for part in parts)
    scale = float(np.sqrt(sq / x.size))
    if scale == 0 or not np.isfinite(scale):
        raise AnalysisError(f"{func}: the sampled activations are all zero (or not finite); nothing to fit")
    return scale


def _cross_validate(x, y, groups, Cs, cv, seed, max_iter):
    """Choose C by cross-validation over stimulus-grouped folds, then refit on all rows with it.

    Returns (scores, held, best, model): the mean held-out accuracy of each C, each
    row's held-out prediction per C (C, rows), the index of the best C and the
    readout refitted with it.
    """
    folds = _folds(y, groups, cv, seed)
    from sklearn.exceptions import ConvergenceWarning

    from threadpoolctl import threadpool_limits

    scores = []
    held = np.full((len(Cs), y.size), -1)        # each row's held-out prediction, per C
    # one BLAS thread: L-BFGS's many small products lose far more to thread start-up and
    # contention than the large ones gain
    with warnings.catch_warnings(), threadpool_limits(limits=1, user_api="blas"):
        warnings.simplefilter("ignore", ConvergenceWarning)
        for train, test in folds:                 # held-out rows get weight 0: no copies of x
            weight = np.zeros(y.size)
            weight[train] = 1.0
            model = _logreg(Cs[0], max_iter, warm_start=True)
            fold = []
            for c in Cs:                          # warm start along the C path
                model.set_params(C=c).fit(x, y, sample_weight=weight)
                dec = x @ model.coef_.T                       # (rows, classes): small, no copy of x
                pred = model.classes_[np.argmax(dec, axis=1) if dec.shape[1] > 1 else (dec[:, 0] > 0).astype(int)]
                held[len(fold), test] = pred[test]
                fold.append(float(np.mean(pred[test] == y[test])))
            scores.append(fold)
        scores = list(np.mean(scores, axis=0))
        best = int(np.argmax(scores))
        model = _logreg(Cs[best], max_iter).fit(x, y)
    return scores, held, best, model


def _per_step_accuracy(held, y, steps, n_t):
    """The held-out accuracy at each step, pooled over folds (NaN at a step without rows)."""
    hits = np.bincount(steps, weights=(held == y), minlength=n_t)
    rows = np.bincount(steps, minlength=n_t)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(rows > 0, hits / rows, np.nan)


def _weights(model, n_classes, n_features, scale):
    """The fitted readout as a (class, feature) matrix over all ``n_classes`` (zero rows for absent ones),
    divided by the features' ``scale`` so that it applies to the unscaled activations."""
    coef = np.asarray(model.coef_, dtype=np.float64)
    if coef.shape[0] == 1:                      # two classes: sklearn keeps one row (w1 - w0)
        coef = np.vstack([-coef[0] / 2, coef[0] / 2])
    w = np.zeros((n_classes, n_features))
    w[model.classes_] = coef / scale
    return w
