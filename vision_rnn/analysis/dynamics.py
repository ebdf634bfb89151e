"""Representation dynamics: L2 norm, step distance ("drift"), and both grouped by settling.

Definitions follow the CCN23 analysis notebook (Thorat, Doerig & Kietzmann
2023, ``BLT_analyse/analysis.ipynb``): the drift of cell 17, the 1 % rule of
cell 18 and the norms of cells 20-22. ``stab`` is the Dataset returned by
:func:`vision_rnn.analysis.stability`.

>>> import numpy as np, xarray as xr
>>> act = xr.DataArray([[[3.0, 4.0], [0.0, 0.0]]], dims=("stimulus", "time", "unit"))
>>> l2_norm(act).values.tolist(), step_distance(act).values.tolist()
([[5.0, 0.0]], [[5.0]])
"""

from __future__ import annotations

import numpy as np

from ..errors import AnalysisError
from . import _validate as v
from ._chunks import layer_pass
from .readout import st_array

__all__ = ["STATUSES", "drift_by_settling", "l2_norm", "mean_by_status", "norm_by_status",
           "settled_motion", "settling_groups", "step_distance"]

STATUSES = ("correct", "not_yet")
STILL = 1e-3                 # a last step shorter than this share of the norm counts as having stopped
ACT = ("stimulus", "time", "unit")


def l2_norm(act):
    """Euclidean norm of each representation over its units -> (stimulus, time), in float64.

    Parameters
    ----------
    act : xarray.DataArray
        A layer's activations, dims (stimulus, time, unit); read one storage
        chunk at a time.

    Returns
    -------
    xarray.DataArray
        ``norm`` (stimulus, time), with the stimulus and time coordinates of ``act``.

    Examples
    --------
    >>> import xarray as xr
    >>> l2_norm(xr.DataArray([[[1.0, 2.0, 2.0]]], dims=("stimulus", "time", "unit"))).item()
    3.0
    """
    act = v.check_dims(act, ACT, "the activation", "l2_norm")
    _, norm, _ = layer_pass(act)
    return st_array(act, norm, "norm", {"long_name": "L2 norm of the representation", "units": "activation units"})


def step_distance(act):
    """How far each representation moves per step: ||a(t+1) - a(t)||_2 -> (stimulus, time).

    The value at ``t`` is the move from step t to t+1 (the notebook's
    ``norm(a[t+1] - a[t])``, cell 17, "representations keep moving").

    Parameters
    ----------
    act : xarray.DataArray
        A layer's activations, dims (stimulus, time, unit), at least 2 steps.

    Returns
    -------
    xarray.DataArray
        ``step_distance`` (stimulus, time), in float64, with ``time`` running
        over 0 .. T-2.

    Examples
    --------
    >>> import xarray as xr
    >>> a = xr.DataArray([[[0.0], [1.0], [3.0]]], dims=("stimulus", "time", "unit"))
    >>> step_distance(a).values.tolist()
    [[1.0, 2.0]]
    """
    act = v.check_dims(act, ACT, "the activation", "step_distance")
    if act.sizes["time"] < 2:
        raise AnalysisError(f"step_distance: needs at least 2 time steps, the activation has {act.sizes['time']}")
    _, _, step = layer_pass(act)
    return st_array(act.isel(time=slice(0, -1)), step, "step_distance",
                    {"long_name": "distance moved to the next step, ||a(t+1) - a(t)||", "units": "activation units"})


def settling_groups(stab):
    """The t_stable groups the notebook analyses further, with their sizes -> DataArray (t_stable).

    Counts of stable-correct stimuli per ``t_stable`` for t = 0 .. T-1 (cell 15);
    the kept groups are those before the first group with fewer than 1 % of the
    ``t_stable = 0`` count (cell 18: ``np.where(counts < counts[0] / 100)[0][0]``),
    leaving out empty groups.

    Parameters
    ----------
    stab : xarray.Dataset
        The Dataset returned by :func:`~vision_rnn.analysis.stability`.

    Returns
    -------
    xarray.DataArray
        ``count`` (t_stable) over the kept groups: the stable-correct stimuli in
        each. Attribute ``cutoff`` is the first step left out (T if none).

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> stab = xr.Dataset({"category": ("stimulus", ["stable-correct"] * 3),
    ...                    "t_stable": ("stimulus", [0, 0, 1])}, attrs={"timesteps": 3})
    >>> settling_groups(stab).values.tolist()
    [2, 1]
    """
    if "category" not in stab or "t_stable" not in stab:
        raise AnalysisError("settling_groups: stab must be the Dataset returned by stability(logits)")
    import xarray as xr

    n_t = int(stab.attrs.get("timesteps", stab["t_stable"].max().item() + 2))
    sc = stab["t_stable"].values[stab["category"].values == "stable-correct"]
    counts = np.bincount(sc, minlength=n_t)[:n_t] if sc.size else np.zeros(n_t, dtype=np.int64)
    below = np.flatnonzero(counts < counts[0] / 100)
    cutoff = int(below[0]) if below.size else n_t
    keep = [t for t in range(cutoff) if counts[t] > 0]
    return xr.DataArray(counts[keep], dims="t_stable", coords={"t_stable": keep}, name="count",
                        attrs={"cutoff": cutoff, "rule": "groups before the first with < 1% of the t_stable=0 count"})


def _stable_correct(stab, func):
    sc = stab["category"].values == "stable-correct"
    if not sc.any():
        raise AnalysisError(f"{func}: no stimulus is stable-correct, so there is nothing to group by settling")
    return sc


def drift_by_settling(act, stab):
    """Mean step distance of stable-correct stimuli per t_stable group -> (t_stable, time).

    Every group t_stable = 0 .. T-2 that has stimuli, as the notebook plots them
    (cell 17); coordinate ``before_cutoff`` marks the groups the 1 % rule of
    :func:`settling_groups` keeps (cell 18), the only ones the summary means use.
    ``time`` is that of :func:`step_distance` (the move from t to t+1).

    Parameters
    ----------
    act : xarray.DataArray
        A layer's activations, dims (stimulus, time, unit).
    stab : xarray.Dataset
        The :func:`~vision_rnn.analysis.stability` of the network's predictions;
        its stimuli select (and order) those of ``act``.

    Returns
    -------
    xarray.DataArray
        ``drift`` (t_stable, time); coordinates ``n`` (the stable-correct stimuli
        in each group) and ``before_cutoff`` (bool), attribute ``cutoff`` that of
        :func:`settling_groups`.

    Examples
    --------
    >>> import vision_rnn as vrnn                                      # doctest: +SKIP
    >>> tree = vrnn.open_activations("acts.nc")                        # doctest: +SKIP
    >>> stab = vrnn.analysis.stability(tree["logits"])                 # doctest: +SKIP
    >>> drift_by_settling(vrnn.layer(tree, "gap"), stab)               # doctest: +SKIP
    """
    act = v.check_dims(act, ACT, "the activation", "drift_by_settling")
    act = v.align_to_stability(act, stab, "drift_by_settling")
    sc = _stable_correct(stab, "drift_by_settling")
    cutoff = settling_groups(stab).attrs["cutoff"]
    step = step_distance(act.isel(stimulus=np.flatnonzero(sc)))
    return drift_from(step.values, stab["t_stable"].values[sc], cutoff, step["time"].values)


def drift_from(step, t_stable, cutoff: int, times):
    """:func:`drift_by_settling` from step distances (n, T-1) of the stable-correct stimuli, their
    ``t_stable`` and the 1 % rule's ``cutoff``: every group 0 .. T-2 with stimuli."""
    import xarray as xr

    groups = [t for t in range(len(times)) if (t_stable == t).any()]
    n = np.array([(t_stable == t).sum() for t in groups], dtype=np.int64)
    out = np.array([step[t_stable == t].mean(axis=0) for t in groups]).reshape(len(groups), len(times))
    return xr.DataArray(out, dims=("t_stable", "time"),
                        coords={"t_stable": groups, "time": times, "n": ("t_stable", n),
                                "before_cutoff": ("t_stable", np.array([t < cutoff for t in groups], dtype=bool))},
                        name="drift", attrs={"long_name": "mean distance moved to the next step",
                                             "units": "activation units", "cutoff": int(cutoff)})


def settled_motion(act, stab):
    """How far stable-correct representations keep moving after their prediction settled -> Dataset.

    The paper's claim (1): representations keep evolving after the classification
    is correct. For a stable-correct stimulus s settled at ``t_s`` (``t_stable``),
    the move ``k`` steps after settling is ``||x_s[t_s + k] - x_s[t_s + k - 1]||``
    (k = 1 is :func:`step_distance` at ``t_s``).

    Parameters
    ----------
    act : xarray.DataArray
        A layer's activations, dims (stimulus, time, unit); read one storage
        chunk at a time. It may come from another network over the same
        stimuli, matched by id (e.g. the random-weights twin, the notebook's
        baseline), with the same number of steps.
    stab : xarray.Dataset
        The :func:`~vision_rnn.analysis.stability` of the network's predictions
        over the same steps as ``act``.

    Returns
    -------
    xarray.Dataset
        Over ``after`` = k = 1 .. T-1, among the stable-correct stimuli with
        ``t_s + k <= T-1``: ``distance`` (mean move), ``relative`` (mean of the move
        over ``||x_s[t_s + k - 1]||``, stimuli with a zero norm there left out), ``n``
        (those stimuli); and the scalar ``still_moving``: the fraction of
        stable-correct stimuli whose last move ``||x[T-1] - x[T-2]||`` exceeds
        :data:`STILL` times ``||x[T-2]||``. ``attrs['n_stable_correct']`` counts them.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> act = xr.DataArray([[[1.0], [2.0], [4.0]]], dims=("stimulus", "time", "unit"))
    >>> stab = xr.Dataset({"category": ("stimulus", ["stable-correct"]), "t_stable": ("stimulus", [0])},
    ...                   attrs={"timesteps": 3})
    >>> m = settled_motion(act, stab)
    >>> m["distance"].values.tolist(), m["relative"].values.tolist(), float(m["still_moving"])
    ([1.0, 2.0], [1.0, 1.0], 1.0)
    """
    act = v.check_dims(act, ACT, "the activation", "settled_motion")
    if "category" not in stab or "t_stable" not in stab:
        raise AnalysisError("settled_motion: stab must be the Dataset returned by stability(logits)")
    n_t = act.sizes["time"]
    steps = stab.attrs.get("timesteps")
    if steps is None or int(steps) != n_t:
        raise AnalysisError(f"settled_motion: stab covers {steps} steps but the activation has {n_t}; "
                            "compute stability over the activation's steps")
    act = v.align_to_stability(act, stab, "settled_motion")
    sc = _stable_correct(stab, "settled_motion")
    _, norm, step = layer_pass(act.isel(stimulus=np.flatnonzero(sc)))
    return settled_motion_from(step, norm, stab["t_stable"].values[sc])


def settled_motion_from(step, norm, t_stable):
    """:func:`settled_motion` from the step distances (n, T-1) and norms (n, T) of the
    stable-correct stimuli and their ``t_stable``."""
    import xarray as xr

    n_t = norm.shape[1]
    after = np.arange(1, n_t)
    distance, relative = np.full(after.size, np.nan), np.full(after.size, np.nan)
    count = np.zeros(after.size, dtype=np.int64)
    for i, k in enumerate(after):
        ok = np.flatnonzero(t_stable + k <= n_t - 1)
        count[i] = ok.size
        if not ok.size:
            continue
        move = step[ok, t_stable[ok] + k - 1]
        base = norm[ok, t_stable[ok] + k - 1]
        distance[i] = move.mean()
        if (base > 0).any():
            relative[i] = (move[base > 0] / base[base > 0]).mean()
    still = float(np.mean(step[:, -1] > STILL * norm[:, -2])) if t_stable.size else np.nan
    return xr.Dataset(
        {"distance": ("after", distance, {"long_name": "mean move k steps after settling", "units": "activation units"}),
         "relative": ("after", relative, {"long_name": "mean move over the norm before it", "units": "fraction"}),
         "n": ("after", count, {"long_name": "stable-correct stimuli with t_stable + k <= T-1", "units": "stimuli"}),
         "still_moving": ((), still, {"long_name": f"share whose last move exceeds {STILL:g} of the norm",
                                      "units": "fraction"})},
        coords={"after": after}, attrs={"n_stable_correct": int(t_stable.size)})


def mean_by_status(values, stab):
    """Mean of a (stimulus, time) measure over stable-correct stimuli by status -> (status, time).

    ``correct``: already in the final zone (``t_stable <= t``); ``not_yet``:
    not yet (``t_stable > t``), i.e. currently predicted wrongly (notebook
    cells 21 and 24).

    Parameters
    ----------
    values : xarray.DataArray
        The measure, dims (stimulus, time), e.g. :func:`l2_norm` or
        :func:`~vision_rnn.analysis.peripherality`.
    stab : xarray.Dataset
        The :func:`~vision_rnn.analysis.stability` of the network's predictions;
        its stimuli select (and order) those of ``values``.

    Returns
    -------
    xarray.DataArray
        (status, time), named and with the attributes of ``values``; coordinate
        ``count`` (status, time) gives the stimuli in each status. NaN where a
        status has no stimulus; NaN values (e.g. the cosine of an all-zero
        representation) are left out of the mean.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> stab = xr.Dataset({"category": ("stimulus", ["stable-correct"] * 2),
    ...                    "t_stable": ("stimulus", [0, 1])})
    >>> vals = xr.DataArray([[1.0, 1.0], [3.0, 5.0]], dims=("stimulus", "time"))
    >>> mean_by_status(vals, stab).values.tolist()
    [[1.0, 3.0], [3.0, nan]]
    """
    values = v.check_dims(values, ("stimulus", "time"), "the values", "mean_by_status")
    values = v.align_to_stability(values, stab, "mean_by_status")
    sc = _stable_correct(stab, "mean_by_status")
    vals = np.asarray(values.values, dtype=np.float64)[sc]
    ts = stab["t_stable"].values[sc]
    times = values["time"].values if "time" in values.coords else np.arange(values.sizes["time"])
    return mean_by_status_from(vals, ts, times, name=values.name, attrs=values.attrs)


def mean_by_status_from(vals, t_stable, times, name=None, attrs=None):
    """:func:`mean_by_status` from a numpy (n, T) array of stable-correct stimuli."""
    import warnings

    import xarray as xr

    idx = np.arange(vals.shape[1])
    now = t_stable[:, None] <= idx[None, :]
    out = np.full((2, vals.shape[1]), np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for i, mask in enumerate((now, ~now)):
            m = mask & np.isfinite(vals)
            cnt = m.sum(axis=0)
            out[i] = np.where(cnt > 0, np.where(m, vals, 0).sum(axis=0) / np.maximum(cnt, 1), np.nan)
    counts = np.stack([now.sum(axis=0), (~now).sum(axis=0)])
    return xr.DataArray(out, dims=("status", "time"),
                        coords={"status": list(STATUSES), "time": times, "count": (("status", "time"), counts)},
                        name=name, attrs=dict(attrs or {}))


def norm_by_status(act, stab):
    """Mean L2 norm at each step of stable-correct stimuli, already correct vs not yet -> (status, time).

    The notebook's "Are the norms between stable now vs stable later
    representations different?" (cells 20-22); see :func:`mean_by_status`.

    Parameters
    ----------
    act : xarray.DataArray
        A layer's activations, dims (stimulus, time, unit).
    stab : xarray.Dataset
        The :func:`~vision_rnn.analysis.stability` of the network's predictions.

    Returns
    -------
    xarray.DataArray
        ``norm`` (status, time), as :func:`mean_by_status` of :func:`l2_norm`.

    Examples
    --------
    >>> import vision_rnn as vrnn                                      # doctest: +SKIP
    >>> norm_by_status(vrnn.layer(tree, "gap"), stab).sel(status="not_yet")  # doctest: +SKIP
    """
    act = v.check_dims(act, ACT, "the activation", "norm_by_status")
    act = v.align_to_stability(act, stab, "norm_by_status")
    sc = _stable_correct(stab, "norm_by_status")
    norms = l2_norm(act.isel(stimulus=np.flatnonzero(sc)))
    times = norms["time"].values if "time" in norms.coords else np.arange(norms.sizes["time"])
    return mean_by_status_from(norms.values, stab["t_stable"].values[sc], times, name="norm",
                               attrs={"long_name": "mean L2 norm", "units": "activation units"})
