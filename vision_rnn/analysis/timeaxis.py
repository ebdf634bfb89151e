"""One time axis: model steps to milliseconds, alignment with recordings, fitting the mapping.

A model's ``time`` is an integer step; a recording's ``time`` is milliseconds.
They meet only here: a :class:`TimeMapping` gives every layer an onset and all
layers one step duration, step k of a layer being active during
``[onset + k * step_ms, onset + (k + 1) * step_ms)``. :func:`assign_time` adds
that as a ``time_ms`` coordinate, :func:`align` resamples model data onto a
recording's bins (and refuses data without ``time_ms``), and
:func:`fit_time_mapping` estimates onsets and step from the data.

Default values (conventions, not measurements of any model): the onset of a
layer is a typical visual response latency in the macaque for the area the
layer stands for. In anaesthetised macaques, flash-evoked responses start first
in V1, then in V3, MT, MST and FEF, with V2 and V4 progressively later and more
spread out (Schmolesky et al. 1998, J Neurophysiol 79:3272-3278); reviews put
the earliest V1 responses near 40 ms and add roughly 10 ms per processing stage
(Nowak & Bullier 1997, in Cerebral Cortex vol. 12, Extrastriate Cortex in
Primates, pp. 205-241); IT responses to images start near 80-100 ms (Brain-Score's
IT data of Majaj et al. 2015 are averaged over 70-170 ms). The defaults are V1
45 ms, V2 57 ms, V4 70 ms, IT 90 ms (the global-average-pool readout ``gap``
with IT), and 30 ms for the model's ``retina`` (standing in for the LGN). One
step is 10 ms, the order of the delay one synaptic stage or one local recurrent
loop adds. Latencies depend on the stimulus, contrast, anaesthesia and the
criterion used, so fit the mapping (:func:`fit_time_mapping`) or set it from the
recording at hand before drawing conclusions from it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import xarray as xr

from ..errors import TimeAxisError

__all__ = ["TimeMapping", "assign_time", "align", "fit_time_mapping", "TimeFit", "DEFAULT_ONSET_MS",
           "DEFAULT_STEP_MS"]

DEFAULT_ONSET_MS = {"retina": 30.0, "v1": 45.0, "v2": 57.0, "v4": 70.0, "it": 90.0, "gap": 90.0}
DEFAULT_STEP_MS = 10.0



@dataclass
class TimeMapping:
    """Onset per layer (ms after stimulus onset) and one step duration (ms).

    Step k of a layer is active during ``[onset + k * step_ms, onset + (k + 1) * step_ms)``.

    Parameters
    ----------
    onset_ms : dict, optional
        {layer: onset in ms}, finite numbers; default :data:`DEFAULT_ONSET_MS`.
    step_ms : float, optional
        The duration of one step in ms, positive; default :data:`DEFAULT_STEP_MS`.

    Examples
    --------
    >>> m = TimeMapping(onset_ms={"v1": 45, "it": 90}, step_ms=10)
    >>> m.time_ms("it", [0, 1, 2]).tolist()
    [90.0, 100.0, 110.0]
    >>> TimeMapping.from_json(m.to_json()) == m
    True
    """

    onset_ms: dict = field(default_factory=lambda: dict(DEFAULT_ONSET_MS))
    step_ms: float = DEFAULT_STEP_MS

    def __post_init__(self):
        self.onset_ms = {str(k): float(v) for k, v in dict(self.onset_ms).items()}
        self.step_ms = float(self.step_ms)
        if not np.isfinite(self.step_ms) or self.step_ms <= 0:
            raise TimeAxisError(f"step_ms must be a positive number of milliseconds (got {self.step_ms})")
        bad = [k for k, v in self.onset_ms.items() if not np.isfinite(v)]
        if bad:
            raise TimeAxisError(f"onset_ms of {', '.join(bad)} is not a finite number")

    def time_ms(self, layer: str, steps) -> np.ndarray:
        """Milliseconds at which each step of ``layer`` becomes active.

        Parameters
        ----------
        layer : str
            A layer with an onset in this mapping.
        steps : array-like of int
            Model steps (0 is the first).

        Returns
        -------
        numpy.ndarray
            ``onset_ms[layer] + step_ms * steps``, float64, the shape of ``steps``.
        """
        if layer not in self.onset_ms:
            raise TimeAxisError(f"this TimeMapping has no onset for layer {layer!r} "
                                f"(it has {', '.join(self.onset_ms)}); add onset_ms[{layer!r}]")
        return self.onset_ms[layer] + self.step_ms * np.asarray(steps, dtype=np.float64)

    def to_json(self) -> str:
        """The mapping as a JSON string.

        Returns
        -------
        str
            ``{"onset_ms": {...}, "step_ms": ...}`` with sorted keys.
        """
        return json.dumps({"onset_ms": self.onset_ms, "step_ms": self.step_ms}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "TimeMapping":
        """A mapping from the JSON string of :meth:`to_json`.

        Parameters
        ----------
        text : str
            ``{"onset_ms": {...}, "step_ms": ...}``.

        Returns
        -------
        TimeMapping
            The mapping it describes.
        """
        try:
            d = json.loads(text)
            return cls(onset_ms=d["onset_ms"], step_ms=d["step_ms"])
        except (ValueError, KeyError, TypeError) as e:
            raise TimeAxisError(f"not a TimeMapping JSON ({e}); expected {{\"onset_ms\": {{...}}, \"step_ms\": ...}}") \
                from None

    def save(self, path) -> Path:
        """Write the mapping as JSON (:meth:`to_json`) to ``path``.

        Parameters
        ----------
        path : str or os.PathLike
            The file to write (replaced if it exists).

        Returns
        -------
        pathlib.Path
            ``path``.
        """
        path = Path(path)
        path.write_text(self.to_json() + "\n")
        return path

    @classmethod
    def load(cls, path) -> "TimeMapping":
        """Read a mapping written by :meth:`save`.

        Parameters
        ----------
        path : str or os.PathLike
            A JSON file of :meth:`save`.

        Returns
        -------
        TimeMapping
            The mapping it holds.
        """
        path = Path(path)
        if not path.exists():
            raise TimeAxisError(f"time mapping file {path} does not exist")
        try:
            return cls.from_json(path.read_text())
        except TimeAxisError as e:
            raise TimeAxisError(f"{path}: {e}") from None


def assign_time(tree, mapping: TimeMapping):
    """A copy of ``tree`` whose mapped layer groups carry ``time_ms (time)``; ``vrnn.layer`` keeps it.

    Parameters
    ----------
    tree : xarray.DataTree
        Activations, e.g. from :func:`vision_rnn.open_activations`.
    mapping : TimeMapping
        Onsets and step duration; it must give an onset to at least one layer of ``tree``.

    Returns
    -------
    xarray.DataTree
        A copy of ``tree`` in which each layer with an onset in ``mapping`` has the
        coordinate ``time_ms (time)`` (units ms) and the attribute ``time_mapping``
        (the mapping's JSON); other layers are unchanged.
    """
    if not isinstance(mapping, TimeMapping):
        raise TimeAxisError(f"assign_time needs a TimeMapping, not {type(mapping).__name__}")
    layers = [c for c in tree.children if c in mapping.onset_ms]
    if not layers:
        raise TimeAxisError(f"no layer of this tree ({', '.join(tree.children)}) has an onset in the mapping "
                            f"({', '.join(mapping.onset_ms)})")
    new = tree.copy()
    steps = np.asarray(tree["time"].values)
    for name in layers:
        ds = new[name].to_dataset(inherit=False)
        ds = ds.assign_coords(time_ms=("time", mapping.time_ms(name, steps),
                                       {"units": "ms", "long_name": f"onset of each step of {name} after "
                                                                   "stimulus onset (TimeMapping)"}))
        ds.attrs["time_mapping"] = mapping.to_json()
        new[name] = ds
    return new


# -- alignment -------------------------------------------------------------------------------
def bin_edges(recording, one_bin: str = "refuse") -> tuple[np.ndarray, np.ndarray]:
    """(start, end) of each recording bin in ms: ``time_bin_start``/``end``, else from the centres.

    Centres ``t`` give edges ``t -/+ half`` the median spacing. A single bin without edges
    has no spacing: ``one_bin="refuse"`` raises TimeAxisError, ``"point"`` returns (t, t).
    """
    t = np.asarray(recording["time"].values, dtype=np.float64)
    if "time_bin_start" in recording.coords and "time_bin_end" in recording.coords:
        return (np.asarray(recording["time_bin_start"].values, dtype=np.float64),
                np.asarray(recording["time_bin_end"].values, dtype=np.float64))
    if len(t) < 2:
        if one_bin == "point":
            return t.copy(), t.copy()
        raise TimeAxisError("a recording with one time bin needs time_bin_start and time_bin_end coordinates")
    half = np.median(np.diff(t)) / 2
    return t - half, t + half


def _step_intervals(model_da) -> tuple[np.ndarray, np.ndarray]:
    if "time_ms" not in model_da.coords:
        raise TimeAxisError("model data has no 'time_ms' coordinate: its time is a step, not milliseconds, and "
                            "will not be lined up with a recording's ms; first run tree = assign_time(tree, "
                            "TimeMapping(...)) and take the layer from that tree")
    t = np.asarray(model_da["time_ms"].values, dtype=np.float64)
    if len(t) > 1:
        step = float(np.median(np.diff(t)))
    else:
        attrs = model_da.attrs.get("time_mapping")
        step = TimeMapping.from_json(attrs).step_ms if attrs else np.inf
    return t, t + step


def align(model_da, recording, how: str = "nearest", id_map=None):
    """Put model data on a recording's time bins and stimuli: returns (model, recording).

    ``how="nearest"``: each bin takes the model step active at its centre (the step whose
    interval [time_ms, time_ms + step) holds it). ``how="overlap"``: each bin takes the mean
    of the steps active during it, weighted by their overlap with the bin, and only bins the
    model covers completely are kept. Bins outside the model's steps are dropped (the last step
    lasts one step duration). Stimuli are matched (``vision_rnn.stimulus_ids.match_stimuli``) and
    both outputs hold the matched ones in the model's order.

    Parameters
    ----------
    model_da : xarray.DataArray
        Model data with a ``time`` dim; refused unless it carries the ``time_ms``
        coordinate (see :func:`assign_time`).
    recording : xarray.DataArray
        A recording with ``time`` (ms) and ``stimulus`` dims; its bins are
        ``time_bin_start``/``time_bin_end``, else half the median spacing around
        each centre.
    how : {"nearest", "overlap"}, optional
        How model steps become recording bins.
    id_map : dict or str or os.PathLike, optional
        Extra stimulus id pairs for ``match_stimuli`` (a dict, or a CSV file of
        two columns).

    Returns
    -------
    model : xarray.DataArray
        The model data on the kept bins (``time`` in ms, with ``time_bin_start``,
        ``time_bin_end`` and the model ``step`` as coordinates) and the matched
        stimuli.
    recording : xarray.DataArray
        The recording on the same bins and stimuli, with the model's stimulus ids.
        Both carry the attributes ``alignment`` and ``stimulus_match``.
    """
    from ..stimulus_ids import match_stimuli

    if how not in ("nearest", "overlap"):
        raise TimeAxisError(f"align: how={how!r} is not 'nearest' or 'overlap'")
    lo, hi = _step_intervals(model_da)
    if "time" not in recording.dims:
        raise TimeAxisError("align: the recording has no 'time' dim (milliseconds)")
    b0, b1 = bin_edges(recording)
    centre = np.asarray(recording["time"].values, dtype=np.float64)
    if how == "nearest":
        inside = (centre[:, None] >= lo[None]) & (centre[:, None] < hi[None])
        keep = inside.any(axis=1)
        k = inside[keep].argmax(axis=1)
        m = model_da.isel(time=k)
        step_coord = ("time", np.asarray(model_da["time"].values)[k])
    else:
        over = np.clip(np.minimum(b1[:, None], hi[None]) - np.maximum(b0[:, None], lo[None]), 0, None)
        cover = over.sum(axis=1) / (b1 - b0)
        keep = cover > 1 - 1e-9
        w = over[keep] / over[keep].sum(axis=1, keepdims=True)
        wd = xr.DataArray(w, dims=("_bin", "time"))
        m = xr.dot(wd, model_da.drop_vars([c for c in model_da.coords if "time" in model_da[c].dims]), dim="time")
        m = m.rename({"_bin": "time"}).transpose(*model_da.dims)
        step_coord = ("time", w @ np.asarray(model_da["time"].values, dtype=np.float64))
    if not keep.any():
        raise TimeAxisError(f"align: no recording bin ({b0.min():g}-{b1.max():g} ms) falls in the model's steps "
                            f"({lo.min():g}-{hi.max():g} ms); check the TimeMapping")
    m = m.drop_vars([c for c in m.coords if "time" in m[c].dims], errors="ignore")
    m = m.assign_coords(time=centre[keep], time_bin_start=("time", b0[keep]), time_bin_end=("time", b1[keep]),
                        step=step_coord)
    rec = recording.isel(time=np.flatnonzero(keep))
    match = match_stimuli(m["stimulus"].values, rec["stimulus"].values, id_map)
    if match.n_matched == 0:
        raise TimeAxisError(f"align: no stimulus of the model data matches the recording ({match}); pass id_map=")
    m = m.isel(stimulus=match.a)
    rec = rec.isel(stimulus=match.b).assign_coords(stimulus=m["stimulus"].values)
    m.attrs = dict(model_da.attrs, alignment=how, stimulus_match=str(match))
    rec.attrs = dict(recording.attrs, alignment=how, stimulus_match=str(match))
    return m, rec



# -- fitting ---------------------------------------------------------------------------------
@dataclass
class TimeFit:
    """Result of :func:`fit_time_mapping`: the mapping, its confidence intervals and checks.

    Attributes
    ----------
    mapping : TimeMapping
        The fitted onsets and step.
    ci : dict
        ``{"step_ms": (lo, hi), "onset_ms": {layer: (lo, hi)}}``, the time
        resolution of the recording included.
    ci_bootstrap : dict
        The bootstrap percentile intervals alone, laid out as ``ci``.
    score : float
        Summed (match + timing) score of the mapping on all stimuli.
    cv : xarray.Dataset
        Per fold: fitted ``step_ms``, ``onset_ms (layer)`` and held-out ``score``.
    bootstrap : xarray.Dataset
        Per sample: ``step_ms``, ``onset_ms (layer)``.
    settings : dict
        The arguments of the fit.
    """

    mapping: TimeMapping
    ci: dict                 # {"step_ms": (lo, hi), "onset_ms": {layer: (lo, hi)}}, resolution included
    ci_bootstrap: dict       # the bootstrap percentile intervals alone
    score: float             # summed (match + timing) score of the mapping on all stimuli
    cv: xr.Dataset           # per fold: fitted step_ms, onset_ms (layer), held-out score
    bootstrap: xr.Dataset    # per sample: step_ms, onset_ms (layer)
    settings: dict

    @property
    def cv_score(self) -> float:
        """Mean held-out score of the mappings fitted on the other folds."""
        return float(self.cv["score"].mean())

    def __repr__(self):
        lo, hi = self.ci["step_ms"]
        lines = [f"TimeFit: step {self.mapping.step_ms:.2f} ms [{lo:.2f}, {hi:.2f}]"]
        for name, (a, b) in self.ci["onset_ms"].items():
            lines.append(f"  onset {name}: {self.mapping.onset_ms[name]:.2f} ms [{a:.2f}, {b:.2f}]")
        lines.append(f"  score {self.score:.3f}, cross-validated {self.cv_score:.3f}")
        return "\n".join(lines)


def _layer_data(tree, recording, regions, method_rdm: str):
    from ..stimulus_ids import match_stimuli
    from ..store import layer
    from . import _rsacore as core
    from ._timefit import LayerData
    from .rsa import rdm

    rec = recording
    if "time" not in rec.dims or "stimulus" not in rec.dims or "neuroid" not in rec.dims:
        raise TimeAxisError(f"fit_time_mapping: the recording must be (stimulus, [repetition,] time, neuroid); "
                            f"got {rec.dims}")
    finite_bins = np.isfinite(np.asarray(rec["time"].values, dtype=np.float64)).sum()
    if finite_bins < 3:
        raise TimeAxisError(f"fit_time_mapping needs a time-resolved recording (at least 3 time bins in ms); "
                            f"this one has {finite_bins}")
    first = layer(tree, next(iter(regions)))
    match = match_stimuli(first["stimulus"].values, rec["stimulus"].values)
    if match.n_matched < 6:
        raise TimeAxisError(f"fit_time_mapping: {match}; at least 6 shared stimuli are needed")
    rec = rec.isel(stimulus=match.b)
    out, bins = [], []
    edges = bin_edges(rec)
    for name, region in regions.items():
        model = layer(tree, name).isel(stimulus=match.a)
        if "region" in rec.coords:
            sel = np.asarray(rec["region"].values) == region
            if not sel.any():
                raise TimeAxisError(f"fit_time_mapping: no neuroid of region {region!r} in the recording "
                                    f"(regions: {', '.join(sorted(set(map(str, rec['region'].values))))})")
            r = rec.isel(neuroid=np.flatnonzero(sel))
        elif len(regions) == 1:
            r = rec
        else:
            raise TimeAxisError("fit_time_mapping: the recording has no 'region' coordinate on neuroid to split "
                                "it between layers; fit one layer at a time")
        m_vec = core.condensed(rdm(model, method_rdm).transpose("time", ...).values)
        r_vec = core.condensed(rdm(r, method_rdm).transpose("time", ...).values)
        ha = hb = None
        if "repetition" in r.dims and r.sizes["repetition"] >= 2:
            ha = core.condensed(rdm(r.isel(repetition=slice(0, None, 2)), method_rdm).transpose("time", ...).values)
            hb = core.condensed(rdm(r.isel(repetition=slice(1, None, 2)), method_rdm).transpose("time", ...).values)
        out.append(LayerData(m_vec, r_vec, ha, hb))
        bins.append(edges)
    return out, bins, match


def _tables(data, weights, method):
    from ._timefit import tables

    per_layer = [tables(d, weights, method) for d in data]
    return [list(t) for t in zip(*per_layer)]          # [sample][layer]


def fit_time_mapping(tree, recording, regions: dict | None = None, method: str = "spearman",
                     onset_range: tuple | None = None, step_range: tuple = (4.0, 30.0),
                     coarse: tuple = (5.0, 1.0), fine: tuple = (0.5, 0.25), folds: int = 5,
                     n_boot: int = 200, ci: float = 0.95, seed: int = 0) -> TimeFit:
    """Fit each layer's onset and the shared step duration to a recording by RSA.

    Every layer of ``regions`` is compared with the neuroids of its ``region``. A
    mapping is scored per layer by two correlations (details in
    :mod:`vision_rnn.analysis._timefit`): *match*, between the RDM similarity of
    each model step with each recording bin and the mapping's assignment of steps
    to bins (so the step active at a bin should be the most similar one, and bins
    before the onset should show no stimulus structure), and *timing*, between the
    recording's own bin-by-bin RDM similarity (from two halves of the repetitions
    when there are any) and the one the mapping predicts from the model's
    step-by-step similarity. Onsets are chosen by *match*, the shared step by the
    sum of both terms over layers, on a coarse grid over the step and each layer's
    onset, then on a fine grid around the best point. RDMs are 1 - Pearson r.

    Uncertainty: ``n_boot`` bootstrap samples of the stimuli (the same draw for model and
    recording, self-pairs dropped, as :func:`rsa.bootstrap`) are each refitted; their
    percentile intervals at ``ci`` are ``TimeFit.ci_bootstrap``. ``TimeFit.ci`` adds the time
    resolution of the recording: RDM comparisons are blind to the scale of a response, so a
    bin that holds a response for a fraction of its width looks almost like a full one and
    where inside a bin a change happens is not identified. Onset intervals are therefore
    widened by one bin width on each side, and the step interval by one bin width spread
    over the model's step transitions (bin / (T - 1)). Cross-validation over ``folds`` folds of
    stimuli fits on the other folds and scores the fitted mapping on the held-out stimuli:
    the mapping has no weights, so this does not change which mapping wins; it tells how well
    the timing found on some stimuli predicts the dynamics of others (``TimeFit.cv``).

    Parameters
    ----------
    tree : xarray.DataTree
        Activations, e.g. from :func:`vision_rnn.open_activations`.
    recording : xarray.DataArray
        A time-resolved recording (stimulus, [repetition,] time, neuroid), at
        least 3 bins in ms and 6 stimuli shared with ``tree``; a ``region``
        coordinate on neuroid splits it between layers.
    regions : dict, optional
        {layer: region}, default ``{"v1": "V1", "it": "IT"}``.
    method : str, optional
        How RDMs are compared (a :func:`rsa.compare` method: spearman, corr,
        cosine or rho-a).
    onset_range : tuple, optional
        (lo, hi) onsets to search in ms; default from the recording's bins.
    step_range : tuple, optional
        (lo, hi) step durations to search in ms.
    coarse : tuple, optional
        Onset and step spacing of the coarse grid in ms.
    fine : tuple, optional
        Onset and step spacing of the fine grid in ms.
    folds : int, optional
        Cross-validation folds of stimuli.
    n_boot : int, optional
        Bootstrap samples (0: none, and NaN intervals).
    ci : float, optional
        Coverage of the confidence intervals.
    seed : int, optional
        Seeds the folds and the bootstrap.

    Returns
    -------
    TimeFit
        The fitted mapping (``TimeFit.mapping``), its intervals, score,
        cross-validation and bootstrap samples.
    """
    from ._timefit import Grid
    from . import _rsacore as core

    regions = dict(regions or {"v1": "V1", "it": "IT"})
    if method not in core.COMPARE_METHODS or method == "tau-a":
        raise TimeAxisError(f"fit_time_mapping: method {method!r} is not one of spearman, corr, cosine, rho-a")
    data, bins, match = _layer_data(tree, recording, regions, "correlation")
    b0, b1 = bins[0]
    if onset_range is None:
        onset_range = (max(float(np.floor(b0.min())), 0.0), float(np.ceil(b1.max() - 2 * np.median(b1 - b0))))
    grid = Grid(tuple(map(float, onset_range)), tuple(map(float, step_range)), tuple(coarse), tuple(fine))
    if grid.step_range[0] <= 0 or grid.step_range[1] < grid.step_range[0] or grid.onset_range[1] < grid.onset_range[0]:
        raise TimeAxisError(f"fit_time_mapping: bad ranges onset {onset_range}, step {step_range}")
    with core.one_blas_thread():   # thousands of small products
        return _fit(data, bins, match, list(regions), grid, method, folds, n_boot, ci, seed, regions)


def _fit(data, bins, match, names, grid, method, folds, n_boot, ci, seed, regions) -> TimeFit:
    from ._timefit import evaluate, fit
    from . import _rsacore as core

    b0, b1 = bins[0]
    n = match.n_matched
    ones = np.ones((1, n))
    full = _tables(data, core.pair_weights(ones), method)[0]
    step, onsets, best = fit(full, bins, grid)

    rng = np.random.default_rng(seed)
    folds = int(min(max(folds, 2), n // 3))
    fold_of = rng.permutation(np.arange(n) % folds)
    cv_rows = []
    for f in range(folds):
        train = core.pair_weights((fold_of != f)[None].astype(float))
        test = core.pair_weights((fold_of == f)[None].astype(float))
        s_f, o_f, _ = fit(_tables(data, train, method)[0], bins, grid)
        cv_rows.append((s_f, o_f, evaluate(_tables(data, test, method)[0], bins, s_f, o_f)))
    draws = rng.integers(0, n, size=(n_boot, n))
    counts = np.stack([np.bincount(d, minlength=n) for d in draws]) if n_boot else np.zeros((0, n))
    boot = [fit(t, bins, grid)[:2] for t in _tables(data, core.pair_weights(counts), method)] if n_boot else []
    alpha = (1 - ci) / 2
    b_steps = np.array([b[0] for b in boot])
    b_on = np.array([b[1] for b in boot]).reshape(len(boot), len(names))

    def interval(v):
        return (float(np.quantile(v, alpha)), float(np.quantile(v, 1 - alpha))) if len(v) else (np.nan, np.nan)

    mapping = TimeMapping(onset_ms=dict(zip(names, map(float, onsets))), step_ms=step)
    cv = xr.Dataset({"step_ms": ("fold", [r[0] for r in cv_rows]),
                     "onset_ms": (("fold", "layer"), np.array([r[1] for r in cv_rows])),
                     "score": ("fold", [r[2] for r in cv_rows])},
                    coords={"fold": np.arange(folds), "layer": names})
    bs = xr.Dataset({"step_ms": ("sample", b_steps), "onset_ms": (("sample", "layer"), b_on)},
                    coords={"sample": np.arange(len(boot)), "layer": names})
    boot_ci = {"step_ms": interval(b_steps), "onset_ms": {k: interval(b_on[:, i]) for i, k in enumerate(names)}}
    width = float(np.median(b1 - b0))             # resolution: see the docstring
    n_steps = data[0].model.shape[0]
    pad = width / max(n_steps - 1, 1)
    cis = {"step_ms": (max(boot_ci["step_ms"][0] - pad, 0.0), boot_ci["step_ms"][1] + pad),
           "onset_ms": {k: (lo - width, hi + width) for k, (lo, hi) in boot_ci["onset_ms"].items()}}
    settings = {"regions": regions, "method": method, "onset_range": grid.onset_range,
                "step_range": grid.step_range, "coarse": grid.coarse, "fine": grid.fine, "folds": folds,
                "n_boot": n_boot, "ci": ci, "seed": seed, "stimulus_match": str(match)}
    return TimeFit(mapping, cis, boot_ci, best, cv, bs, settings)
