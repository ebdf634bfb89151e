"""Readout analyses: predictions, accuracy, stability, readout zones, peripherality, heading.

A network's readout maps the representation ``a`` of its readout layer
(``attrs['readout_layer']``, ``gap`` for the BLT family) to class scores
``w_k . a + b_k``; the *readout zone* of ``a`` is the class with the highest
score. The definitions follow the CCN23 analysis notebook (Thorat, Doerig &
Kietzmann 2023, ``BLT_analyse/analysis.ipynb`` of KietzmannLab/BLT-pytorch-CCN23);
each function says which cell it follows, counting every cell from 0 (markdown
cells included) in the version of 30 April 2023 (commit d07efb4).

All functions take DataArrays with the dimension names of the activation file
(``stimulus``, ``time``, ``unit``, ``class``), work on lazily opened files
one storage chunk at a time (bounded memory whatever the layer's size), and
return small in-memory results that keep the stimulus coordinates.

>>> import numpy as np, xarray as xr
>>> logits = xr.DataArray(np.eye(3)[[[0, 1, 1], [2, 2, 2]]], dims=("stimulus", "time", "class"),
...                       coords={"label": ("stimulus", [1, 0])})
>>> stability(logits)["category"].values.tolist()
['stable-correct', 'stable-incorrect']
"""

from __future__ import annotations

import numpy as np

from ..errors import AnalysisError
from . import _validate as v
from ._chunks import layer_pass
from ._fit import fit_readout

__all__ = ["CATEGORIES", "HALT_THRESHOLDS", "accuracy", "fit_readout", "halting", "heading", "peripherality",
           "predictions", "readout_dendrogram", "readout_zone", "stability"]

CATEGORIES = ("stable-correct", "stable-incorrect", "unstable-correct", "unstable-incorrect")
LOGITS = ("stimulus", "time", "class")
ACT = ("stimulus", "time", "unit")
HALT_THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99)


# -- from the logits ---------------------------------------------------------------------------
def predictions(logits):
    """The predicted class index at every step: argmax over ``class`` -> (stimulus, time).

    Ties go to the lowest class index (numpy's argmax).

    Parameters
    ----------
    logits : xarray.DataArray
        The network's output, dims (stimulus, time, class) in any order, e.g.
        ``tree['logits']`` of an activation file; it may be lazily opened.

    Returns
    -------
    xarray.DataArray
        ``prediction`` (stimulus, time), in memory: the index of the highest logit.

    Raises
    ------
    AnalysisError
        Where the logits hold NaN at some (stimulus, time): no prediction exists there.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> lg = xr.DataArray(np.eye(2)[[[0, 1]]], dims=("stimulus", "time", "class"))
    >>> predictions(lg).values.tolist()
    [[0, 1]]
    """
    logits = v.check_dims(logits, LOGITS, "logits", "predictions")
    bad = logits.isnull().any("class").compute()
    if bool(bad.any()):
        s, t = (int(i[0]) for i in np.nonzero(bad.transpose("stimulus", "time").values))
        who = logits["stimulus"].values[s] if "stimulus" in logits.coords else s
        raise AnalysisError(f"`logits` hold NaN at {int(bad.sum())} (stimulus, time) pairs, e.g. stimulus {who} at "
                            f"step {t}: no prediction can be read there; the network's output is undefined "
                            "(check its weights and inputs)")
    out = logits.argmax("class").compute()
    out.name = "prediction"
    out.attrs = {"long_name": "predicted class index (argmax of the logits)"}
    return out


def accuracy(logits, labels=None):
    """Fraction of labelled stimuli predicted correctly at each step -> (time).

    Stimuli with label -1 are left out (notebook cell 9:
    ``mean(argmax(outputs[t]) == labels)``).

    Parameters
    ----------
    logits : xarray.DataArray
        The network's output, dims (stimulus, time, class).
    labels : array-like or xarray.DataArray, optional
        Class index per stimulus, -1 if unknown; defaults to the ``label``
        coordinate of ``logits``.

    Returns
    -------
    xarray.DataArray
        ``accuracy`` (time), a fraction; ``attrs['n_stimuli']`` counts the labelled
        stimuli it is over.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> lg = xr.DataArray(np.eye(2)[[[0, 1], [1, 1]]], dims=("stimulus", "time", "class"))
    >>> accuracy(lg, labels=[1, 1]).values.tolist()
    [0.5, 1.0]
    """
    pred = predictions(logits)
    labels = v.labels_for(pred, labels, "accuracy")
    keep = v.labelled(labels, "accuracy")
    correct = pred.isel(stimulus=keep) == labels[keep][:, None]
    out = correct.mean("stimulus")
    out = out.drop_vars([c for c in out.coords if c != "time"])
    out.name = "accuracy"
    out.attrs = {"long_name": "accuracy", "units": "fraction", "n_stimuli": int(keep.sum())}
    return out


def stability(logits, labels=None):
    """Stability of each labelled stimulus's prediction sequence -> Dataset over stimulus.

    Following the notebook (cell 14, "Extracting the splits based on
    classification dynamics"): the sequence is *stable* when it holds one class
    from step ``t_stable`` to the last step and that class never appears before
    ``t_stable``; a constant sequence is stable with ``t_stable = 0``. The final
    class must be held for at least the last two steps: a sequence that changes
    at the last step is unstable (the notebook's scan starts from the last pair
    of steps), so ``t_stable`` is at most T-2. Stable sequences are
    stable-correct when the class is the label; unstable ones are
    unstable-correct when the label appears at any step. ``t_stable`` is -1 for
    unstable sequences.

    Parameters
    ----------
    logits : xarray.DataArray
        The network's output, dims (stimulus, time, class), at least 2 steps.
    labels : array-like or xarray.DataArray, optional
        Class index per stimulus, -1 if unknown; defaults to the ``label``
        coordinate of ``logits``.

    Returns
    -------
    xarray.Dataset
        Over the labelled stimuli (label -1 left out), with variables
        ``category`` (one of :data:`CATEGORIES`), ``t_stable``,
        ``t_first_correct`` (the first step predicting the label, -1 if none:
        for unstable-correct stimuli the first correct step, for stable-correct
        ones ``t_stable``), ``final`` (last prediction) and the coordinate
        ``label``; ``attrs['timesteps']`` is the number of steps.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> seqs = [[0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 1, 2]]   # class per step
    >>> lg = xr.DataArray(np.eye(3)[seqs], dims=("stimulus", "time", "class"))
    >>> st = stability(lg, labels=[0, 0, 0, 0])
    >>> st["category"].values.tolist(), st["t_stable"].values.tolist()
    (['stable-correct', 'stable-correct', 'unstable-correct', 'unstable-incorrect'], [0, 1, -1, -1])
    """
    pred = predictions(logits)
    labels = v.labels_for(pred, labels, "stability")
    keep = v.labelled(labels, "stability")
    n_t = pred.sizes["time"]
    if n_t < 2:
        raise AnalysisError("stability: needs at least 2 time steps (the final class must be held "
                            f"for two steps), the logits have {n_t}")
    pred = pred.isel(stimulus=keep)
    labels = labels[keep]
    p = pred.values
    final = p[:, -1]
    same = p == final[:, None]
    run = np.cumprod(same[:, ::-1], axis=1).sum(axis=1)       # length of the final run
    start = n_t - run
    first = same.argmax(axis=1)                                 # first step showing the final class
    stable = (run >= 2) & (first == start)
    hit = p == labels[:, None]                                   # steps showing the label
    correct = np.where(stable, final == labels, hit.any(axis=1))
    category = np.where(stable, np.where(correct, CATEGORIES[0], CATEGORIES[1]),
                        np.where(correct, CATEGORIES[2], CATEGORIES[3]))
    made = ("category", "t_stable", "t_first_correct", "final")     # a metadata column so named gives way
    coords = {c: pred.coords[c].variable for c in pred.coords if pred.coords[c].dims == ("stimulus",) and c not in made}
    import xarray as xr

    ds = xr.Dataset(
        {"category": ("stimulus", category.astype(object).astype(str)),
         "t_stable": ("stimulus", np.where(stable, start, -1).astype(np.int64)),
         "t_first_correct": ("stimulus", np.where(hit.any(axis=1), hit.argmax(axis=1), -1).astype(np.int64)),
         "final": ("stimulus", final.astype(np.int64))},
        coords=coords)
    ds = ds.assign_coords(label=("stimulus", labels))
    ds["t_stable"].attrs = {"long_name": "first step of the final, never-seen-before class (-1: unstable)"}
    ds["t_first_correct"].attrs = {"long_name": "first step predicting the label (-1: never); for "
                                                "stable-correct stimuli it is t_stable"}
    ds.attrs = {"timesteps": n_t, "definition": "CCN23 analysis notebook, cell 14"}
    return ds


# -- from a layer and a readout ------------------------------------------------------------------
def halting(logits, labels=None, thresholds=HALT_THRESHOLDS):
    """When could the network stop? Accuracy and mean steps of halting at a softmax confidence.

    With ``p`` the softmax over classes at each step, stimulus s halts at
    ``h_s(theta)``, the first step t (0-based) with ``max_c p[s, t, c] >= theta``,
    else at the last step; its prediction is the argmax there (ties to the
    lowest class index, as :func:`predictions`). Beyond the CCN23 paper: it
    asks how much of the recurrent computation a confidence-based halting
    policy would need.

    Parameters
    ----------
    logits : xarray.DataArray
        The network's output, dims (stimulus, time, class).
    labels : array-like or xarray.DataArray, optional
        Class index per stimulus, -1 if unknown; defaults to the ``label``
        coordinate of ``logits``. Without labels (none given and no ``label``
        coordinate, or every label -1) the halted prediction is scored by its
        agreement with the last step's prediction instead.
    thresholds : sequence of float, optional
        Confidences in (0, 1], distinct (default :data:`HALT_THRESHOLDS`).

    Returns
    -------
    xarray.Dataset
        Over ``threshold``: ``accuracy`` (fraction of the labelled stimuli whose
        prediction at ``h_s`` is the label) and ``mean_step`` (mean of ``h_s`` over
        the same stimuli); over ``time``: ``accuracy_at_step``, the fixed-step
        curve. Label-free, ``agreement`` and ``agreement_at_step`` (with the last
        step's prediction, over every stimulus) replace the accuracies.
        ``attrs``: ``n_stimuli``, ``label_free`` (0 or 1), ``definition``.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> lg = xr.DataArray(np.log([[[0.6, 0.4], [0.1, 0.9]]]), dims=("stimulus", "time", "class"))
    >>> h = halting(lg, labels=[1], thresholds=[0.5, 0.8])
    >>> h["mean_step"].values.tolist(), h["accuracy"].values.tolist()
    ([0.0, 1.0], [0.0, 1.0])
    """
    theta = _thresholds(thresholds)
    pred = predictions(logits)
    conf = max_softmax(logits.transpose(*LOGITS).values)
    p = pred.transpose("stimulus", "time").values
    if labels is None and "label" not in logits.coords:
        lab = np.full(p.shape[0], -1)
    else:
        lab = v.labels_for(pred, labels, "halting")
    times = pred["time"].values if "time" in pred.coords else np.arange(p.shape[1])
    return halting_from(conf, p, lab, theta, times)


def max_softmax(logits) -> np.ndarray:
    """The largest softmax probability over the last axis (classes), float64; AnalysisError where
    the logits are not finite."""
    x = np.asarray(logits, dtype=np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        conf = 1.0 / np.exp(x - x.max(axis=-1, keepdims=True)).sum(axis=-1)
    if not np.isfinite(conf).all():
        raise AnalysisError("halting: the logits hold NaN or infinite values; no softmax can be taken there")
    return conf


def halting_from(conf, pred, labels, theta, times):
    """:func:`halting` from the confidences and predictions (stimulus, time) and the labels (-1: none)."""
    import xarray as xr

    label_free = not (labels >= 0).any()
    keep = np.ones(pred.shape[0], bool) if label_free else labels >= 0
    target = pred[keep, -1] if label_free else labels[keep]
    reached = conf[keep][:, :, None] >= np.asarray(theta)[None, None, :]     # (stimulus, time, threshold)
    n_t = pred.shape[1]
    halt = np.where(reached.any(axis=1), reached.argmax(axis=1), n_t - 1)
    at_halt = np.take_along_axis(pred[keep], halt, axis=1)
    score = "agreement" if label_free else "accuracy"
    return xr.Dataset(
        {score: ("threshold", (at_halt == target[:, None]).mean(axis=0),
                 {"long_name": f"{score} of the prediction at the halting step", "units": "fraction"}),
         "mean_step": ("threshold", halt.mean(axis=0),
                       {"long_name": "mean halting step (0-based)", "units": "steps"}),
         f"{score}_at_step": ("time", (pred[keep] == target[:, None]).mean(axis=0),
                              {"long_name": f"{score} at a fixed step", "units": "fraction"})},
        coords={"threshold": np.asarray(theta, dtype=np.float64), "time": times},
        attrs={"n_stimuli": int(keep.sum()), "label_free": int(label_free),
               "definition": "halt at the first step whose largest softmax probability reaches the "
                             "threshold, else at the last step" +
                             ("; scored against the last step's prediction" if label_free else "")})


def _thresholds(thresholds) -> np.ndarray:
    """``thresholds`` as a float64 array of distinct values in (0, 1]; AnalysisError otherwise."""
    try:
        theta = np.asarray(thresholds, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        theta = np.array([np.nan])
    if theta.size == 0 or not np.all((theta > 0) & (theta <= 1)) or np.unique(theta).size != theta.size:
        raise AnalysisError(f"halting: thresholds={list(np.atleast_1d(thresholds)) if thresholds is not None else None} "
                            "must be distinct softmax confidences in (0, 1], e.g. (0.5, 0.9, 0.99)")
    return theta


def _prepare(act, weight, bias, func):
    act = v.check_dims(act, ACT, "the activation", func)
    w = v.readout_matrix(weight, act.sizes["unit"], func)
    b = v.readout_bias(bias, w.shape[0], func)
    return act, w, b


def st_array(act, values, name, attrs):
    """A (stimulus, time) DataArray with the stimulus and time coordinates of ``act``."""
    import xarray as xr

    coords = {c: act.coords[c] for c in act.coords if set(act.coords[c].dims) <= {"stimulus", "time"}}
    return xr.DataArray(values, dims=("stimulus", "time"), coords=coords, name=name, attrs=attrs)


def zone_from_scores(scores, b):
    """argmax_k (scores_k + b_k) over the last axis (float64 numpy)."""
    return np.argmax(np.asarray(scores) + b, axis=-1)


def cosines(scores, norm, w):
    """Cosine of every representation with every readout vector: scores / (|a| |w_k|); NaN for a = 0."""
    wn = np.linalg.norm(w, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = np.asarray(scores) / (np.asarray(norm)[..., None] * wn)
    cos[~np.isfinite(cos)] = np.nan
    return cos


def readout_zone(act, weight, bias=None):
    """The readout zone each representation lies in: argmax_k (w_k . a + b_k) -> (stimulus, time).

    Computed in float64. Without a bias the zones are cones through the origin:
    scaling ``a`` by a positive factor never changes its zone. On the readout
    layer with the stored readout this equals :func:`predictions` of the stored
    logits.

    Parameters
    ----------
    act : xarray.DataArray
        A layer's activations, dims (stimulus, time, unit), e.g.
        ``vrnn.layer(tree, "gap")``; read one storage chunk at a time.
    weight : xarray.DataArray or array-like
        The readout, (class, feature): a DataArray as stored in the file
        (``tree['readout_weight']``), one from :func:`fit_readout`, or a plain
        array; its features must be the activation's units.
    bias : array-like, optional
        One value per class (``tree['readout_bias']``); default none (zero).

    Returns
    -------
    xarray.DataArray
        ``zone`` (stimulus, time): the class index of the highest readout score,
        with the stimulus and time coordinates of ``act``.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> act = xr.DataArray([[[2.0, 1.0], [0.5, 3.0]]], dims=("stimulus", "time", "unit"))
    >>> readout_zone(act, np.eye(2)).values.tolist()
    [[0, 1]]
    """
    act, w, b = _prepare(act, weight, bias, "readout_zone")
    scores, _, _ = layer_pass(act, w)
    return st_array(act, zone_from_scores(scores, b), "zone",
                    {"long_name": "readout zone (class index of the highest readout score)"})


def peripherality(act, weight, bias=None):
    """Cosine between each representation and the readout vector of its zone -> (stimulus, time).

    Lower means nearer the zone's boundary, higher means deeper inside it
    (notebook cells 23-25, "Are the stable now repr. closer to current readout
    vector?": ``cos_sim(a, w[:, argmax(outputs)])``). The zone is taken with
    the bias, as the network decides; the cosine is with the weight vector
    ``w_k`` alone. Without a bias the zones are cones and the cosine measures
    exactly how central ``a`` is in its cone; with a bias the zone boundaries
    are shifted hyperplanes, and the cosine still measures the angle to the
    zone's readout direction but no longer the distance to the boundary.

    Parameters
    ----------
    act : xarray.DataArray
        A layer's activations, dims (stimulus, time, unit).
    weight : xarray.DataArray or array-like
        The readout, (class, feature), as for :func:`readout_zone`.
    bias : array-like, optional
        One value per class, used only to choose the zone; default none (zero).

    Returns
    -------
    xarray.DataArray
        ``peripherality`` (stimulus, time), a cosine; NaN where the
        representation is all zeros.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> act = xr.DataArray([[[1.0, 1.0], [1.0, 0.0]]], dims=("stimulus", "time", "unit"))
    >>> peripherality(act, np.eye(2)).values.round(3).tolist()
    [[0.707, 1.0]]
    """
    act, w, b = _prepare(act, weight, bias, "peripherality")
    scores, norm, _ = layer_pass(act, w)
    cos = cosines(scores, norm, w)
    zone = zone_from_scores(scores, b)
    return st_array(act, np.take_along_axis(cos, zone[..., None], axis=-1)[..., 0], "peripherality",
                    {"long_name": "cosine with the readout vector of the current zone", "units": "cosine"})


def heading_from(cos, zone, labels, t_stable, times):
    """:func:`heading` from cosines (n, T, K) and zones (n, T) of stable-correct stimuli."""
    import xarray as xr

    n_t = len(times)
    k = cos.shape[-1]
    out = np.full((2, n_t), np.nan)
    n_h = np.zeros(n_t, dtype=np.int64)
    n_pairs = np.zeros(n_t, dtype=np.int64)
    onehot_label = np.eye(k)[labels]                       # (n, K)
    for t in range(n_t):
        h = np.flatnonzero(t_stable > t)
        n_h[t] = h.size
        if h.size == 0:
            continue
        c = cos[h, t, :]
        out[0, t] = np.nanmean(c[np.arange(h.size), labels[h]])
        z = zone[h, t]
        per_zone = np.zeros((max(k, z.max() + 1), k))
        np.add.at(per_zone, z, onehot_label[h])            # stimuli per (current zone, label)
        others = per_zone[z]                               # for each stimulus: labels sharing its zone
        others[np.arange(h.size), labels[h]] = 0           # ...with a label other than its own
        pairs = others.sum()
        n_pairs[t] = int(pairs)
        if pairs > 0:
            out[1, t] = np.nansum(others * c) / pairs
    return xr.DataArray(out, dims=("target", "time"),
                        coords={"target": ["eventual", "others"], "time": times,
                                "n_not_yet": ("time", n_h), "n_pairs": ("time", n_pairs)},
                        name="heading",
                        attrs={"long_name": "cosine with readout vectors of eventual classes",
                               "units": "cosine"})


def heading(act, weight, stab, bias=None):
    """Are representations not yet in their final zone heading for it? -> (target, time).

    For the stable-correct stimuli not yet in their final zone at step t
    (``t_stable > t``): ``eventual`` is the mean cosine of the representation
    with the readout vector of its eventual class (its label); ``others`` the
    mean cosine with the eventual classes of the other such stimuli that share
    its current zone and have a different label, averaged over all such pairs.
    This follows the notebook (cells 26-28, "Are the stable-after repr. close to
    their final class?").

    Parameters
    ----------
    act : xarray.DataArray
        A layer's activations, dims (stimulus, time, unit).
    weight : xarray.DataArray or array-like
        The readout, (class, feature), as for :func:`readout_zone`.
    stab : xarray.Dataset
        The :func:`stability` of the network's predictions; its stimuli select
        (and order) those of ``act``.
    bias : array-like, optional
        One value per class, used only to choose the current zone; default none (zero).

    Returns
    -------
    xarray.DataArray
        ``heading`` (target, time) with targets ``eventual`` and ``others``;
        coords ``n_not_yet`` and ``n_pairs`` count what each mean is over (NaN
        where there is nothing to average).

    Examples
    --------
    >>> import vision_rnn as vrnn                                   # doctest: +SKIP
    >>> tree = vrnn.open_activations("acts.nc")                     # doctest: +SKIP
    >>> stab = stability(tree["logits"])                            # doctest: +SKIP
    >>> heading(vrnn.layer(tree, "gap"), tree["readout_weight"], stab)  # doctest: +SKIP
    """
    act, w, b = _prepare(act, weight, bias, "heading")
    act = v.align_to_stability(act, stab, "heading")
    pick = np.flatnonzero((stab["category"].values == CATEGORIES[0]) & (stab["t_stable"].values > 0))
    times = act["time"].values if "time" in act.coords else np.arange(act.sizes["time"])
    labels = stab["label"].values[pick]
    if labels.size and labels.max() >= w.shape[0]:
        raise AnalysisError(f"heading: label {labels.max()} has no readout vector (the readout has "
                            f"{w.shape[0]} classes)")
    if pick.size == 0:
        cos = np.zeros((0, len(times), w.shape[0]))
        zone = np.zeros((0, len(times)), dtype=np.int64)
    else:
        scores, norm, _ = layer_pass(act.isel(stimulus=pick), w)
        cos = cosines(scores, norm, w)
        zone = zone_from_scores(scores, b)
    return heading_from(cos, zone, labels, stab["t_stable"].values[pick], times)


def readout_dendrogram(weight):
    """Hierarchy of the classes' readout vectors -> Dataset.

    Distance ``(1 - cos(w_i, w_j)) / 2`` between class readout vectors and
    Ward linkage (scipy), as in the notebook (cells 10-12, "Dendrogram of
    readout vectors").

    Parameters
    ----------
    weight : xarray.DataArray or array-like
        The readout, (class, feature), at least two classes and no all-zero
        row; the ``class`` coordinate of a DataArray names the classes.

    Returns
    -------
    xarray.Dataset
        Variables ``distance (class, class_)``, ``linkage (merge, field)`` with
        fields left, right, height, size (scipy's linkage matrix) and
        ``leaf_order (leaf)``, the class indices in dendrogram order.

    Examples
    --------
    >>> import numpy as np
    >>> d = readout_dendrogram(np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]]))
    >>> d["leaf_order"].values.tolist()
    [2, 0, 1]
    """
    import xarray as xr
    from scipy.cluster.hierarchy import dendrogram, linkage
    from scipy.spatial.distance import squareform

    w = v.readout_matrix(weight, np.shape(getattr(weight, "values", weight))[-1], "readout_dendrogram")
    if w.shape[0] < 2:
        raise AnalysisError("readout_dendrogram: needs at least two classes")
    wn = np.linalg.norm(w, axis=1)
    if (wn == 0).any():
        raise AnalysisError(f"readout_dendrogram: class {int(np.flatnonzero(wn == 0)[0])} has an all-zero "
                            "readout vector (no direction)")
    cos = (w @ w.T) / np.outer(wn, wn)
    dist = (1 - cos) / 2
    dist = (dist + dist.T) / 2
    np.fill_diagonal(dist, 0)
    dist = np.clip(dist, 0, None)
    link = linkage(squareform(dist, checks=False), method="ward")
    leaves = dendrogram(link, no_plot=True)["leaves"]
    classes = getattr(weight, "coords", {}).get("class") if hasattr(weight, "coords") else None
    names = classes.values if classes is not None else np.arange(w.shape[0])
    return xr.Dataset(
        {"distance": (("class", "class_"), dist),
         "linkage": (("merge", "field"), link),
         "leaf_order": ("leaf", np.asarray(leaves, dtype=np.int64))},
        coords={"class": names, "class_": names, "field": ["left", "right", "height", "size"]},
        attrs={"distance": "(1 - cosine) / 2", "method": "ward"})
