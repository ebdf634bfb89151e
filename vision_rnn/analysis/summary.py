"""The paper's table for one network: every readout and dynamics measure from one pass over a layer.

:func:`readout_measures` reads the layer once, chunk by chunk, and keeps per
(stimulus, time) only what the analyses need (the readout scores of every
class, the L2 norm and the step distance); :func:`summarize` reduces that to
the CCN23 table; :func:`summary` does both. Definitions are those of
:mod:`~vision_rnn.analysis.readout` and :mod:`~vision_rnn.analysis.dynamics`
(the CCN23 analysis notebook); the step means follow its cells 22, 25 and 28:
the mean over the steps before the settling cutoff (the 1 % rule of cell 18)
at which both statuses have stimuli.

>>> import vision_rnn as vrnn                                          # doctest: +SKIP
>>> s = vrnn.analysis.summary(vrnn.open_activations("acts.nc"))        # doctest: +SKIP
>>> s["norm_mean"].sel(status="not_yet").item()                        # doctest: +SKIP
"""

from __future__ import annotations

import numpy as np

from ..errors import AnalysisError
from . import _validate as v
from ._chunks import layer_pass, small_chunk_cache
from .dynamics import STATUSES, drift_from, mean_by_status_from, settled_motion_from, settling_groups
from .readout import (CATEGORIES, HALT_THRESHOLDS, cosines, fit_readout, halting_from, heading_from, max_softmax,
                      predictions, stability, zone_from_scores)

__all__ = ["readout_measures", "summarize", "summary"]

def _root(tree):
    return tree.to_dataset(inherit=False) if hasattr(tree, "to_dataset") else tree


def readout_measures(tree, layer=None, *, progress=False, **fit_options):
    """Per-stimulus measures of one layer against a readout -> in-memory Dataset.

    ``layer`` defaults to the readout layer (``attrs['readout_layer']``), read
    with the stored readout; any other layer, or any layer of a file without a
    stored readout (a recorded model whose logits are no linear map of a stored
    layer; the default is then its last layer), gets a readout fitted by
    :func:`~vision_rnn.analysis.fit_readout`. Only that layer and the logits are
    read, chunk by chunk. Stimuli with label -1 are left out.

    Parameters
    ----------
    tree : str, os.PathLike or xarray.DataTree
        An activation file: its path, or the DataTree of
        :func:`vision_rnn.open_activations`.
    layer : str, optional
        The layer to measure; default the readout layer.
    progress : bool, optional
        Show a progress bar while the layer is read.
    **fit_options
        Passed to :func:`~vision_rnn.analysis.fit_readout` for a layer other
        than the readout layer.

    Returns
    -------
    xarray.Dataset
        Variables ``prediction``, ``zone``, ``norm``, ``step`` (stimulus, time;
        ``step`` at t is the move to t+1, NaN at the last step), ``scores``
        (stimulus, time, class: ``w_k . a`` without bias), ``category``,
        ``t_stable``, ``readout_weight``, ``readout_bias``; with a fitted readout
        also ``cv_accuracy`` (time), its cross-validated accuracy at each step.
        ``prediction``, ``category`` and ``t_stable`` always come from the
        network's own readout (the logits); ``zone`` from the layer's readout.
        Attributes name the model, weights, layer and readout, and count the
        stimuli, steps and classes.

    Examples
    --------
    >>> m = readout_measures("acts.nc", "v4")                          # doctest: +SKIP
    """
    from ..store import layer as get_layer

    tree, root, source = _open_checked(tree)
    attrs = dict(tree.attrs)
    readout_layer = str(attrs.get("readout_layer", "gap"))
    if not readout_layer and not layer:         # logits with no linear map of a stored layer: fit to the last
        layer = list(tree.children)[-1] if tree.children else None
    layer = layer or readout_layer
    logits = root["logits"].load()              # small; read once for predictions, stability and confidence
    label_free = "label" not in root.coords or not (np.asarray(root["label"].values) >= 0).any()
    if label_free:                     # the final prediction stands in for the label
        if logits.sizes["time"] < 2:
            raise AnalysisError(f"{source}a label-free analysis needs at least 2 steps")
        logits = logits.assign_coords(label=("stimulus", predictions(logits).isel(time=-1).values))
    stab = stability(logits)
    pred = v.align_to_stability(predictions(logits), stab, "readout_measures")
    act = get_layer(tree, layer)
    act = v.align_to_stability(act, stab, "readout_measures")
    classes = list(root["class"].values) if "class" in root.coords else None
    weight, bias, how, classes = _layer_readout(root, act, stab, classes,
                                                layer == readout_layer and "readout_weight" in root, source,
                                                fit_options)
    w = v.readout_matrix(weight, act.sizes["unit"], "readout_measures")
    b = v.readout_bias(bias, w.shape[0], "readout_measures")
    if int(stab["label"].max()) >= w.shape[0]:
        raise AnalysisError(f"{source}label {int(stab['label'].max())} but the readout has {w.shape[0]} classes")
    scores, norm, step = layer_pass(act, w, progress=progress)
    ds = _measures_dataset(act, stab, pred, scores, norm, step, w, b, classes)
    lg = v.align_to_stability(logits, stab, "readout_measures").transpose("stimulus", "time", "class")
    ds["confidence"] = (("stimulus", "time"), max_softmax(lg.values))
    fit_attrs = {f"fit_{k_}": v_ for k_, v_ in weight.attrs.items() if k_ in ("C", "cv_accuracy", "cv_folds", "n_rows")} \
        if how != "stored" else {}
    if how != "stored":
        ds["cv_accuracy"] = ("time", np.asarray(weight.attrs["cv_accuracy_per_step"], dtype=np.float64))
    ds.attrs = {"model": str(attrs.get("model", "")), "weights": str(attrs.get("weights", "")),
                "layer": layer, "readout_layer": readout_layer or "logits", "readout": how,
                "n_stimuli": int(root.sizes["stimulus"]), "n_labelled": int(stab.sizes["stimulus"]),
                "timesteps": int(stab.attrs["timesteps"]), "n_classes": int(w.shape[0]),
                "label_free": int(label_free), **fit_attrs}
    return ds


def _open_checked(tree):
    """Open an activation file (a path) and refuse one without logits -> (tree, root, source).

    ``source`` prefixes messages: the path and ": " for a path, empty for a DataTree.
    """
    from ..store import open_activations

    source = ""
    if not hasattr(tree, "children"):
        source = f"{tree}: "
        with small_chunk_cache():
            tree = open_activations(tree)
    root = _root(tree)
    if "logits" not in root:
        raise AnalysisError(f"{source}the file has no logits (stimulus, time, class); "
                            "analyse a file written by vrnn extract")
    return tree, root, source


def _layer_readout(root, act, stab, classes, stored, source, fit_options):
    """The readout of the layer -> (weight, bias, how, classes).

    ``stored``: the file's own readout (of the readout layer); otherwise one fitted by
    :func:`fit_readout` on ``act`` (``classes`` then defaults to ``0 .. max(label)``).
    """
    if stored:
        weight = root["readout_weight"].load()
        bias = root["readout_bias"].values if "readout_bias" in root else None
        return weight, bias, "stored", classes
    if classes is None:
        classes = list(range(int(root["label"].max()) + 1))
    weight = fit_readout(act, stab["label"], classes=classes, **fit_options)
    return weight, None, f"fitted (cross-validated accuracy {weight.attrs['cv_accuracy']:.3f})", classes


def _measures_dataset(act, stab, pred, scores, norm, step, w, b, classes):
    """The per-(stimulus, time) measures as a Dataset, without attributes (see :func:`readout_measures`)."""
    import xarray as xr

    k = w.shape[0]
    step = np.concatenate([step, np.full((step.shape[0], 1), np.nan)], axis=1)
    dims = ("stimulus", "time")
    class_names = classes if classes is not None and len(classes) == k else list(range(k))
    return xr.Dataset(
        {"prediction": (dims, pred.values), "zone": (dims, zone_from_scores(scores, b)),
         "norm": (dims, norm), "step": (dims, step), "scores": (dims + ("class",), scores),
         "category": stab["category"], "t_stable": stab["t_stable"],
         "readout_weight": (("class", "feature"), w), "readout_bias": ("class", b)},
        coords=dict(stab.coords, time=act["time"].values if "time" in act.coords else np.arange(act.sizes["time"]),
                    **{"class": class_names}))


def _step_mean(da, cutoff):
    """Mean over steps before ``cutoff`` where every entry along the first dim is finite (NaN if none)."""
    sub = da.isel(time=slice(0, max(cutoff, 0)))
    ok = np.isfinite(sub.values).all(axis=0)
    if not ok.any():
        return da.isel(time=0) * np.nan
    return sub.isel(time=np.flatnonzero(ok)).mean("time")


BOOTSTRAPPED = ("accuracy", "category_share", "norm_mean", "peripherality_mean", "heading", "settled_distance",
                "settled_relative", "still_moving", "halting_accuracy", "halting_mean_step", "layer_accuracy")


def summarize(m, n_bootstrap: int = 0, seed: int = 0, baseline=None):
    """The CCN23 table of one network from :func:`readout_measures` -> Dataset.

    ``accuracy`` and the stability categories are those of the network's own
    readout (the paper's definition).

    Parameters
    ----------
    m : xarray.Dataset
        The result of :func:`readout_measures`.
    n_bootstrap : int, optional
        Bootstrap samples over stimuli (resampled with replacement, seeded by
        ``seed``) for a 95% percentile interval of every number of the table
        (:data:`BOOTSTRAPPED`): ``<name>_ci_low`` and ``<name>_ci_high``. The
        settling cutoff stays the one of the full sample. 0: none.
    seed : int, optional
        Seed of the bootstrap.
    baseline : str, os.PathLike or xarray.DataTree, optional
        Another network's activation file over the same stimuli and steps
        (e.g. the random-weights twin): claim (1) on its layer too, with this
        network's settling (:func:`add_baseline`).

    Returns
    -------
    xarray.Dataset
        Variables ``accuracy (time)``, ``category_share (category)`` (with
        ``count``), ``t_stable_count (t_stable)`` of stable-correct stimuli,
        ``drift (t_stable, time)`` (every group 0 .. T-2 with stimuli, NaN for
        the others; coordinate ``before_cutoff`` marks the groups of the 1 % rule),
        ``norm`` and ``peripherality (status, time)`` with their step means
        ``norm_mean`` and ``peripherality_mean (status)`` and the stimuli in each
        status at each step ``status_count (status, time)``, ``heading (target)``
        and ``heading_over_time (target, time)``; claim (1) of the paper
        (:func:`~vision_rnn.analysis.settled_motion`): ``settled_distance``,
        ``settled_relative`` and ``settled_n (after)``, ``still_moving``; the
        :func:`~vision_rnn.analysis.halting` policy at its default thresholds:
        ``halting_accuracy`` and ``halting_mean_step (threshold)``; for a layer with a fitted
        readout also ``layer_accuracy (time)``, that readout's accuracy on these
        stimuli (the zones of the figures), and ``layer_cv_accuracy (time)``, its
        cross-validated accuracy. Every variable has a ``units`` attribute; the
        Dataset's attributes are those of ``m`` with ``settling_cutoff``.

    Examples
    --------
    >>> s = summarize(readout_measures("acts.nc"), n_bootstrap=1000)   # doctest: +SKIP
    """
    out = _table(m)
    if baseline is not None:                       # before the bootstrap: a bad baseline fails fast
        add_baseline(out, m, baseline)
    if int(n_bootstrap):
        add_intervals(out, m, n_bootstrap, seed)
    return out


def add_intervals(out, m, n_bootstrap: int, seed: int = 0) -> None:
    """Add to the summary ``out`` (of ``m``) the 95% percentile bootstrap intervals over stimuli of
    the :data:`BOOTSTRAPPED` numbers: ``<name>_ci_low`` / ``<name>_ci_high`` (see :func:`summarize`)."""
    import warnings

    if int(n_bootstrap) < 0:
        raise AnalysisError(f"`n_bootstrap={n_bootstrap}`: must be 0 (no intervals) or a positive number of samples")
    n_bootstrap = int(n_bootstrap)
    rng = np.random.default_rng(seed)
    n = m.sizes["stimulus"]
    names = [name for name in BOOTSTRAPPED if name in out]
    reps = {name: np.full((n_bootstrap,) + out[name].shape, np.nan) for name in names}
    cutoff = int(out.attrs["settling_cutoff"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)         # a sample may leave a group empty: NaN
        for b in range(n_bootstrap):
            r = _table(m.isel(stimulus=rng.integers(0, n, n)), cutoff)
            for name in names:
                reps[name][b] = r[name].values
        for name in names:
            low, high = np.nanpercentile(reps[name], [2.5, 97.5], axis=0)
            for bound, vals in (("low", low), ("high", high)):
                out[f"{name}_ci_{bound}"] = (out[name].dims, vals, {"units": out[name].attrs.get("units", ""),
                                                                    "long_name": f"95% bootstrap interval of {name}"})
    out.attrs.update(n_bootstrap=n_bootstrap, bootstrap_seed=int(seed),
                     interval="95% percentile bootstrap over stimuli (resampled with replacement); the "
                              "settling cutoff fixed from the full sample")


def _table(m, cutoff=None):
    """:func:`summarize` without intervals; ``cutoff``: the settling cutoff (default: m's own)."""
    import xarray as xr

    stab = m[["category", "t_stable"]].assign_attrs(timesteps=m.attrs["timesteps"])
    times = m["time"].values
    n_t = times.size
    acc = (m["prediction"] == m["label"]).mean("stimulus").values
    cats = m["category"].values
    counts = np.array([(cats == c).sum() for c in CATEGORIES])
    sc = cats == CATEGORIES[0]
    ts = m["t_stable"].values[sc]
    groups = settling_groups(stab)
    cutoff = groups.attrs["cutoff"] if cutoff is None else int(cutoff)
    w = m["readout_weight"].values
    cos = cosines(m["scores"].values, m["norm"].values, w)
    zone = m["zone"].values
    periph = np.take_along_axis(cos, zone[..., None], axis=-1)[..., 0]
    status = {}
    for name, vals in (("norm", m["norm"].values), ("peripherality", periph)):
        status[name] = mean_by_status_from(vals[sc], ts, times, name=name) if sc.any() else \
            xr.DataArray(np.full((2, n_t), np.nan), dims=("status", "time"),
                         coords={"status": list(STATUSES), "time": times})
    if sc.any():
        drift = drift_from(m["step"].values[sc][:, :-1], ts, cutoff, times[:-1])
        drift = drift.drop_vars(["n", "before_cutoff"]).reindex(t_stable=np.arange(n_t), time=times)
    else:
        drift = xr.DataArray(np.full((n_t, n_t), np.nan), dims=("t_stable", "time"),
                             coords={"t_stable": np.arange(n_t), "time": times})
    halt = halting_from(m["confidence"].values, m["prediction"].values, m["label"].values,
                        np.asarray(HALT_THRESHOLDS), times) if "confidence" in m else None
    moved = settled_motion_from(m["step"].values[sc][:, :-1], m["norm"].values[sc], ts)
    pick = sc & (m["t_stable"].values > 0)
    head = heading_from(cos[pick], zone[pick], m["label"].values[pick], m["t_stable"].values[pick], times)
    out = xr.Dataset(
        {"accuracy": ("time", acc),
         "category_share": ("category", counts / max(1, cats.size)),
         "t_stable_count": ("t_stable", np.bincount(ts, minlength=n_t)[:n_t]),
         "drift": drift.drop_vars([c for c in drift.coords if c not in ("t_stable", "time")]),
         "norm": status["norm"].drop_vars("count", errors="ignore"),
         "norm_mean": _step_mean(status["norm"].drop_vars("count", errors="ignore"), cutoff),
         "peripherality": status["peripherality"].drop_vars("count", errors="ignore"),
         "peripherality_mean": _step_mean(status["peripherality"].drop_vars("count", errors="ignore"), cutoff),
         "heading": _step_mean(head.drop_vars(["n_not_yet", "n_pairs"]), cutoff),
         "status_count": (("status", "time"), status["norm"]["count"].values
                          if "count" in status["norm"].coords else np.zeros((2, n_t), dtype=np.int64)),
         "heading_over_time": head.drop_vars(["n_not_yet", "n_pairs"])},
        coords={"time": times, "category": list(CATEGORIES), "category_count": ("category", counts),
                "t_stable": np.arange(n_t), "before_cutoff": ("t_stable", np.arange(n_t) < cutoff),
                "status": list(STATUSES), "target": ["eventual", "others"]})
    units = {"accuracy": "fraction", "category_share": "fraction", "t_stable_count": "stimuli",
             "drift": "activation units", "norm": "activation units", "norm_mean": "activation units",
             "peripherality": "cosine", "peripherality_mean": "cosine", "heading": "cosine",
             "heading_over_time": "cosine", "status_count": "stimuli"}
    for name in ("distance", "relative", "n"):
        out[f"settled_{name}"] = moved[name]
    out["still_moving"] = moved["still_moving"]
    units.update(settled_distance="activation units", settled_relative="fraction", settled_n="stimuli",
                 still_moving="fraction")
    if halt is not None:
        out["halting_accuracy"] = halt["accuracy"]
        out["halting_mean_step"] = halt["mean_step"]
        units.update(halting_accuracy="fraction", halting_mean_step="steps")
    if "cv_accuracy" in m:                     # a fitted readout: its own accuracy, beside the network's
        out["layer_accuracy"] = ("time", (m["zone"] == m["label"]).mean("stimulus").values)
        out["layer_cv_accuracy"] = ("time", m["cv_accuracy"].values)
        units.update(layer_accuracy="fraction", layer_cv_accuracy="fraction")
    for name, unit in units.items():
        out[name].attrs = {"units": unit}
    if m.attrs.get("label_free"):         # labels were the final predictions: nothing can be incorrect
        free = {CATEGORIES[0]: "stable", CATEGORIES[2]: "unstable"}
        keep = [c for c in CATEGORIES if c in free]
        out = out.sel(category=keep).assign_coords(category=[free[c] for c in keep])
        out["accuracy"].attrs["long_name"] = "agreement with the last step's prediction"
    out.attrs = dict(m.attrs, settling_cutoff=int(cutoff),
                     definitions="CCN23 analysis notebook (Thorat, Doerig & Kietzmann 2023), cells 9-28")
    return out


def summary(tree, layer=None, *, baseline=None, n_bootstrap: int = 0, seed: int = 0, progress=False,
            **fit_options):
    """The paper's table for one network from an activation file -> ``xarray.Dataset``.

    ``summarize(readout_measures(tree, layer))``: by default on the readout
    layer (``attrs['readout_layer']``, ``gap`` for the BLT family) with the
    stored readout; any other layer with a fitted readout. ``summary.json`` of
    ``vrnn analyze`` is this Dataset's ``to_dict()``.

    Parameters
    ----------
    tree : str, os.PathLike or xarray.DataTree
        An activation file: its path, or the DataTree of
        :func:`vision_rnn.open_activations`.
    layer : str, optional
        The layer to analyse; default the readout layer.
    baseline : str, os.PathLike or xarray.DataTree, optional
        Another network's activation file over the same stimuli and steps,
        e.g. the random-weights twin (the notebook's baseline): claim (1) is
        measured on its layer too, with this network's settling
        (:func:`add_baseline`).
    n_bootstrap, seed : int, optional
        Bootstrap samples (and their seed) for the 95% intervals of the table
        (see :func:`summarize`); 0: none.
    progress : bool, optional
        Show a progress bar while the layer is read.
    **fit_options
        Passed to :func:`~vision_rnn.analysis.fit_readout` for a layer other
        than the readout layer.

    Returns
    -------
    xarray.Dataset
        The table of :func:`summarize`, with the ``baseline_*`` variables of
        :func:`add_baseline` when ``baseline`` is given.

    Examples
    --------
    >>> import vision_rnn as vrnn                                          # doctest: +SKIP
    >>> s = vrnn.analysis.summary("acts.nc")                               # doctest: +SKIP
    >>> s["accuracy"].values                                               # doctest: +SKIP
    """
    return summarize(readout_measures(tree, layer, progress=progress, **fit_options), n_bootstrap, seed, baseline)


def add_baseline(s, m, baseline) -> None:
    """Add claim (1) of a baseline network to the summary ``s`` (from ``m``): the same layer of
    ``baseline`` (an activation file or its DataTree over the same stimuli and steps, e.g. the
    random-weights twin), measured with this network's settling (:func:`settled_motion`).

    Adds ``baseline_settled_distance``, ``baseline_settled_relative``, ``baseline_settled_n``
    (after) and ``baseline_still_moving``; ``attrs['baseline']`` names it."""
    from ..store import layer as get_layer
    from .dynamics import settled_motion

    opened = not hasattr(baseline, "children")
    source = f"{baseline}: " if opened else "baseline: "
    twin, _, _ = _open_checked(baseline)
    who = f"{twin.attrs.get('model', '')} ({twin.attrs.get('weights', '')} weights)"
    try:
        name = s.attrs["layer"]
        if name not in twin.children:
            raise AnalysisError(f"has no layer {name!r} (it has {', '.join(twin.children)}); "
                                "extract the baseline with the same layers")
        stab = m[["category", "t_stable"]].assign_attrs(timesteps=m.attrs["timesteps"])
        act = get_layer(twin, name)
        missing = int((~np.isin(stab["stimulus"].values, act["stimulus"].values)).sum())
        if missing:
            raise AnalysisError(f"{missing} of the {stab.sizes['stimulus']} stimuli analysed are not in it; "
                                "extract the baseline from the same stimuli")
        moved = settled_motion(act, stab)
    except AnalysisError as e:
        raise AnalysisError(f"{source}{e}") from None
    finally:
        if opened:
            twin.close()
    for var in ("distance", "relative", "n"):
        s[f"baseline_settled_{var}"] = moved[var]
    s["baseline_still_moving"] = moved["still_moving"]
    s.attrs["baseline"] = who

