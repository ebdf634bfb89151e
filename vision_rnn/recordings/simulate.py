"""Synthetic time-resolved recordings generated from model activations, with a known time mapping.

Used to check that analyses recover what was planted (see
:func:`vision_rnn.analysis.timeaxis.fit_time_mapping`).
"""

from __future__ import annotations

import json

import numpy as np

from ..errors import DataError

__all__ = ["simulate_recording"]


def simulate_recording(tree, regions: dict | None = None, onset_ms: dict | None = None,
                       step_ms: float | None = None, bin_ms: float = 10.0, t_start_ms: float = -50.0,
                       t_stop_ms: float | None = None, noise: float = 1.0, n_neuroids: int = 50,
                       repetitions: int = 4, smooth_ms: float = 4.0, seed: int = 0):
    """A recording (stimulus, repetition, time, neuroid) whose dynamics follow the model's steps.

    For every layer -> region of ``regions``:

    1. a random linear map (Gaussian, seeded) takes the layer's units at each step to
       ``n_neuroids`` neuroids; each neuroid is centred and scaled to unit standard deviation
       over stimuli and steps (so ``noise`` is in units of the signal's spread);
    2. time runs in 0.5 ms samples: before ``onset_ms[layer]`` the response is 0 (baseline);
       from ``onset + k * step_ms`` it is the response to step k; after the last step the last
       step's response holds;
    3. the time course is smoothed with a Gaussian of standard deviation ``smooth_ms``,
       averaged into bins of ``bin_ms`` from ``t_start_ms``;
    4. each of ``repetitions`` trials adds independent Gaussian noise (sd ``noise``) per
       stimulus, bin and neuroid.

    Parameters
    ----------
    tree : xarray.DataTree
        Activations, e.g. from :func:`vision_rnn.open_activations`.
    regions : dict, optional
        {layer: region}, default ``{"v1": "V1", "it": "IT"}``.
    onset_ms : dict, optional
        {layer: onset in ms}; a layer not in it gets :class:`TimeMapping`'s default.
    step_ms : float, optional
        Duration of one model step in ms; default :class:`TimeMapping`'s.
    bin_ms : float, optional
        Width of the recording's bins in ms, a multiple of 0.5.
    t_start_ms : float, optional
        Start of the first bin in ms.
    t_stop_ms : float, optional
        End of the recording in ms; default 50 ms after the last step of the
        latest layer.
    noise : float, optional
        Standard deviation of the trial noise, non-negative.
    n_neuroids : int, optional
        Neuroids per region.
    repetitions : int, optional
        Trials per stimulus.
    smooth_ms : float, optional
        Standard deviation of the Gaussian smoothing in ms (0: none).
    seed : int, optional
        Seeds the linear maps and the noise.

    Returns
    -------
    xarray.DataArray
        ``response`` (stimulus, repetition, time, neuroid), ``time`` the bin centres
        in ms with ``time_bin_start``/``time_bin_end``, and ``region`` and ``layer``
        on neuroid. The planted mapping is in ``attrs`` (``planted_onset_ms`` as
        JSON {layer: ms}, ``planted_step_ms``, ``time_mapping`` as TimeMapping JSON,
        ``regions``), with the seed and settings.
    """
    import xarray as xr
    from scipy.ndimage import gaussian_filter1d

    from ..analysis.timeaxis import TimeMapping
    from ..store import layer

    regions = dict(regions or {"v1": "V1", "it": "IT"})
    default = TimeMapping()
    onsets = {l: float((onset_ms or {}).get(l, default.onset_ms.get(l, np.nan))) for l in regions}
    missing = [l for l, v in onsets.items() if not np.isfinite(v)]
    if missing:
        raise DataError(f"simulate_recording: no onset for layer(s) {', '.join(missing)}; pass onset_ms=")
    step = float(step_ms if step_ms is not None else default.step_ms)
    if step <= 0 or bin_ms <= 0 or n_neuroids < 1 or repetitions < 1 or noise < 0:
        raise DataError("simulate_recording: step_ms, bin_ms, n_neuroids and repetitions must be positive, "
                        "noise non-negative")
    dt = 0.5
    per_bin = int(round(bin_ms / dt))
    if abs(per_bin * dt - bin_ms) > 1e-9:
        raise DataError(f"simulate_recording: bin_ms={bin_ms} must be a multiple of {dt} ms")
    acts = {}
    for name in regions:
        da = layer(tree, name)
        acts[name] = np.asarray(da.transpose("stimulus", "time", ...).values, dtype=np.float64)
    n_steps = next(iter(acts.values())).shape[1]
    if t_stop_ms is None:
        t_stop_ms = max(onsets.values()) + n_steps * step + 50.0
    n_bins = int(np.ceil((t_stop_ms - t_start_ms) / bin_ms))
    samples = t_start_ms + dt * (np.arange(n_bins * per_bin) + 0.5)
    rng = np.random.default_rng(seed)
    blocks, region_of, layer_of = [], [], []
    for name, region in regions.items():
        a = acts[name]
        n_stim, _, n_units = a.shape
        w = rng.normal(size=(n_units, n_neuroids)) / np.sqrt(n_units)
        r = a @ w                                           # (stimulus, step, neuroid)
        r -= r.mean(axis=(0, 1))
        r /= np.where(r.std(axis=(0, 1)) > 0, r.std(axis=(0, 1)), 1.0)
        k = np.floor((samples - onsets[name]) / step).astype(int)
        signal = np.where((k >= 0)[None, :, None], r[:, np.clip(k, 0, n_steps - 1)], 0.0)
        if smooth_ms > 0:
            signal = gaussian_filter1d(signal, smooth_ms / dt, axis=1, mode="nearest")
        binned = signal.reshape(n_stim, n_bins, per_bin, n_neuroids).mean(axis=2)
        trials = binned[:, None] + noise * rng.normal(size=(n_stim, repetitions, n_bins, n_neuroids))
        blocks.append(trials)
        region_of += [region] * n_neuroids
        layer_of += [name] * n_neuroids
    starts = t_start_ms + bin_ms * np.arange(n_bins)
    ref = layer(tree, next(iter(regions)))
    stim_coords = {k: ("stimulus", ref[k].values) for k in ref.coords
                   if ref[k].dims == ("stimulus",) and k != "stimulus"}
    planted = TimeMapping(onset_ms=onsets, step_ms=step)
    rec = xr.DataArray(
        np.concatenate(blocks, axis=-1), dims=("stimulus", "repetition", "time", "neuroid"), name="response",
        coords={"stimulus": ref["stimulus"].values, **stim_coords, "repetition": np.arange(repetitions),
                "time": starts + bin_ms / 2, "time_bin_start": ("time", starts),
                "time_bin_end": ("time", starts + bin_ms),
                "neuroid": [f"{r}_{i % n_neuroids:03d}" for i, r in enumerate(region_of)],
                "region": ("neuroid", region_of), "layer": ("neuroid", layer_of)},
        attrs={"simulated": 1, "planted_onset_ms": json.dumps(onsets), "planted_step_ms": step,
               "time_mapping": planted.to_json(), "regions": json.dumps(regions), "seed": int(seed),
               "noise": float(noise), "smooth_ms": float(smooth_ms), "bin_ms": float(bin_ms),
               "model": str(tree.attrs.get("model", "")), "model_seed": int(tree.attrs.get("seed", -1))})
    return rec
