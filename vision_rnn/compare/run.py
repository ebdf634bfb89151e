"""Comparing a model's activations with a recording (``vrnn compare``): RDMs over steps and time bins.

RECORDING resolves to targets (:mod:`vision_rnn.compare.targets`), each a set of RDMs.
The stimuli are matched first and only the shared rows of each layer are read.

Every layer at every step is compared with every bin of every target
(:func:`vision_rnn.analysis.rsa.bootstrap`: one bootstrap over stimuli for the
whole cross-temporal matrix). For targets with subjects the value is the mean
over subjects of the similarity with each subject's RDM, the quantity
rsatoolbox's noise ceiling bounds (:func:`~vision_rnn.analysis.rsa.noise_ceiling`,
per bin). A :class:`~vision_rnn.analysis.timeaxis.TimeMapping` (default, fitted
or from a file) says which step of a layer is active in which bin; it only
selects cells of the matrix for the curves over ms and never changes a value.

>>> from vision_rnn.compare import run_comparison                         # doctest: +SKIP
>>> c = run_comparison("k92.nc", "kriegeskorte92:data/kriegeskorte2008")  # doctest: +SKIP
>>> c.table().query("target == 'monkey_it' and layer == 'gap'")           # doctest: +SKIP
"""

from __future__ import annotations

import os

import numpy as np
import xarray as xr

from ..errors import CompareError
from ..analysis._chunks import small_chunk_cache
from ..store import open_activations, refuse_damaged
from .result import Comparison

__all__ = ["run_comparison", "resolve_mapping", "mapped_cells"]
from .targets import Source, Target, load_source, source_subset


def _match(model_ids, source: Source, acts_name: str, id_map, shared_only: bool):
    from ..stimulus_ids import match_stimuli

    m = match_stimuli(model_ids, source.ids, id_map)
    how = f"{m.by['id']} by id, {m.by['stem']} by stem, {m.by['id_map']} by id map"
    if m.n_matched == 0:
        raise CompareError(f"{acts_name} and {source.spec} share no stimuli: 0 of {m.n_a} ids matched ({how}); "
                           "pass an `id_map` CSV (columns: activation id, recording id)")
    if m.n_matched < 3:
        raise CompareError(f"{acts_name} and {source.spec} share only {m.n_matched} stimuli ({how}); "
                           "RDM comparisons need at least 3: check the ids or pass an `id_map` CSV")
    if not shared_only and (m.n_matched < m.n_a or m.n_matched < m.n_b):
        raise CompareError(f"RDM sizes differ: {acts_name} has {m.n_a} stimuli and {source.spec} {m.n_b}, "
                           f"{m.n_matched} matched ({how}); pass `shared_only=True` to compare on the "
                           f"{m.n_matched} shared stimuli, or an `id_map` CSV")
    return m


def resolve_mapping(mapping, tree, source: Source, ids, timed: bool, n_boot: int, seed: int):
    """``"default"``, ``"fit"``, a JSON file or a TimeMapping -> (TimeMapping or None, TimeFit or None).

    ``tree`` and ``source`` hold the matched stimuli in the same order; ``ids`` are the
    tree's ids for them. A static recording has no mapping (None)."""
    from ..analysis.timeaxis import TimeMapping, fit_time_mapping

    if isinstance(mapping, (str, os.PathLike)) and str(mapping) not in ("default", "fit"):
        mapping = TimeMapping.load(mapping)             # a bad file is an error even where it is not used
    if not timed:
        if mapping == "fit":
            raise CompareError("`mapping=fit` needs a time-resolved recording (at least 3 time bins); "
                               "this one is static")
        return None, None
    if isinstance(mapping, TimeMapping):
        return mapping, None
    if mapping in (None, "default"):
        return TimeMapping(), None
    if source.recording is None:
        raise CompareError(f"`mapping=fit` needs a recording with neuroids; {source.spec} holds RDMs only: "
                           "pass `mapping=default` or a TimeMapping JSON file")
    layers = {c.lower(): c for c in tree.children}
    regions = {layers[t.name.lower()]: t.name for t in source.targets if t.name.lower() in layers}
    if not regions:
        raise CompareError(f"`mapping=fit`: no region of the recording ({', '.join(t.name for t in source.targets)}) "
                           f"names a layer of the activations ({', '.join(tree.children)}); give neuroids a "
                           "'region' coordinate named after a layer (e.g. IT for it) or pass `mapping` a TimeMapping JSON file")
    rec = source.recording.assign_coords(stimulus=ids)
    fit = fit_time_mapping(tree, rec, regions=regions, n_boot=max(int(n_boot), 20), seed=seed)
    return fit.mapping, fit


def mapped_cells(mapping, layers, steps, times) -> xr.DataArray:
    """(layer, step, time) True where the mapping makes that step of the layer active in that bin."""
    out = np.zeros((len(layers), len(steps), len(times)), dtype=bool)
    t = np.asarray(times, dtype=np.float64)
    for i, name in enumerate(layers):
        if mapping is None or name not in mapping.onset_ms:
            continue
        lo = mapping.time_ms(name, steps)
        out[i] = (t[None] >= lo[:, None]) & (t[None] < lo[:, None] + mapping.step_ms)
    return xr.DataArray(out, dims=("layer", "step", "time"))


def _compare_target(model_rdms: xr.DataArray, target: Target, method: str, n_boot: int, seed: int) -> xr.Dataset:
    """value, low, high (step, time) for one layer against one target."""
    from ..analysis import rsa

    if n_boot > 0:
        b = rsa.bootstrap(model_rdms, target.rdms, method=method, n=n_boot, seed=seed)
        est, samples = b["estimate"], b["samples"]
    else:
        est, samples = rsa.compare(model_rdms, target.rdms, method=method), None
    ren = {"time_a": "step", "time_b": "time"}
    if target.subjects:
        est = est.mean("subject")
        samples = samples.mean("subject") if samples is not None else None
    out = xr.Dataset({"value": est.rename(ren).transpose("step", "time")})
    if samples is not None:
        q = samples.rename(ren).quantile([0.025, 0.975], dim="bootstrap", skipna=True)
        out["low"] = q.isel(quantile=0, drop=True).transpose("step", "time")
        out["high"] = q.isel(quantile=1, drop=True).transpose("step", "time")
    else:
        out["low"] = out["high"] = xr.full_like(out["value"], np.nan)
    return out.drop_vars([c for c in out.coords if c not in ("step", "time")])


def run_comparison(acts, recording, *, layers=None, rdm_method: str = "correlation", method: str = "spearman",
                   n_bootstrap: int = 1000, mapping="default", id_map=None, encoding: bool = False,
                   min_reliability: float | None = None, shared_only: bool = False, seed: int = 0,
                   progress: bool = False) -> Comparison:
    """Compare every layer at every step of ``acts`` with every bin of ``recording``.

    ``acts``: an activation file or DataTree; ``recording``: see the module docstring (or a
    recording DataArray). ``layers`` defaults to every layer of the file. ``n_bootstrap``
    samples of the stimuli give 95% percentile intervals (0: none). ``mapping``:
    ``"default"``, ``"fit"`` (:func:`~vision_rnn.analysis.timeaxis.fit_time_mapping` on the
    regions named after layers), a JSON file or a TimeMapping. ``encoding=True`` adds
    :func:`~vision_rnn.analysis.encoding.encode` for every layer and target with neuroids;
    ``min_reliability`` is its threshold on the split-half reliability of a neuroid at a bin
    below which the noise-corrected score is NaN (in (0, 1]; default
    :data:`~vision_rnn.analysis.encoding.MIN_RELIABILITY`).
    Refuses (:class:`CompareError`) inputs that share no stimuli, or only some of them
    unless ``shared_only``.
    """
    from ..analysis.rsa import COMPARE_METHODS

    if method not in COMPARE_METHODS:
        raise CompareError(f"`method={method}`: not one of {', '.join(COMPARE_METHODS)}")
    if n_bootstrap < 0:
        raise CompareError(f"`n_bootstrap={n_bootstrap}`: must be 0 (no intervals) or more")
    if encoding:
        from ..analysis.encoding import MIN_RELIABILITY, check_min_reliability

        min_reliability = check_min_reliability(MIN_RELIABILITY if min_reliability is None else min_reliability)
    opts = dict(rdm_method=rdm_method, method=method, n_bootstrap=n_bootstrap, mapping=mapping,
                id_map=id_map, encoding=encoding, min_reliability=min_reliability, shared_only=shared_only,
                seed=seed, progress=progress)
    if isinstance(acts, xr.DataTree):
        return _run(acts, str(acts.attrs.get("model", "activations")), recording, layers=layers, **opts)
    with small_chunk_cache():              # each chunk is read once: HDF5's cache would only add memory
        tree = open_activations(acts)
    try:
        with refuse_damaged(acts):
            return _run(tree, str(acts), recording, layers=layers, **opts)
    finally:
        tree.close()


def _run(tree, acts_name, recording, *, layers, rdm_method, method, n_bootstrap, mapping, id_map, encoding,
         min_reliability, shared_only, seed, progress) -> Comparison:
    from tqdm.auto import tqdm

    from ..analysis import rsa
    from ..store import layer

    if isinstance(layers, str):
        layers = [layers]
    if layers is not None and not list(layers):
        raise CompareError("`layers` names no layer; pass layer names, or None for every layer of the file")
    layers = list(layers) if layers is not None else list(tree.children)
    unknown = [l for l in layers if l not in tree.children]
    if unknown:
        raise CompareError(f"`layers={','.join(unknown)}`: not in {acts_name}; it has {', '.join(tree.children)}")
    source = load_source(recording, rdm_method)
    if encoding and source.recording is None:
        raise CompareError(f"`encoding=True` needs a recording with neuroids; {source.spec} holds RDMs only")
    model_ids = [str(s) for s in tree["stimulus"].values]
    m = _match(model_ids, source, acts_name, id_map, shared_only)
    ids = [source.ids[j] for j in m.b]
    timed = any(not t.static for t in source.targets)
    mapping_obj, fit = resolve_mapping(mapping, tree.isel(stimulus=m.a) if timed and mapping == "fit" else tree,
                                       source_subset(source, m.b), [model_ids[i] for i in m.a], timed,
                                       min(n_bootstrap, 200), seed)
    with np.errstate(invalid="ignore"):
        model_rdms = {l: rsa.rdm(layer(tree, l).isel(stimulus=m.a).assign_coords(stimulus=ids), rdm_method)
                      for l in layers}
    for l in layers:
        _refuse_undefined(model_rdms[l], f"layer {l}", "step", "", rdm_method)
    steps = tree["time"].values
    results, encoded = {}, {}
    work = [(t, l) for t in source.targets for l in layers]
    bar = tqdm(total=len(work) * (2 if encoding else 1), desc="compare", unit="layer", disable=not progress)
    for target in source.targets:
        t_rdms = target.rdms.isel(stimulus=m.b, stimulus_=m.b).load()     # MEG: read the file once
        sub = Target(target.name, t_rdms, target.responses, target.description)
        parts = []
        single = target.responses is not None and target.responses.sizes.get("neuroid", 2) < 2
        _refuse_undefined(t_rdms, f"target {target.name!r} of {source.spec}", "time", " ms", rdm_method,
                          single_neuroid=single)
        for l in layers:
            parts.append(_compare_target(model_rdms[l], sub, method, n_bootstrap, seed))
            bar.update()
        ds = xr.concat(parts, dim=xr.DataArray(layers, dims="layer", name="layer"))
        ds = ds.assign_coords(step=steps, time=t_rdms["time"].values,
                              time_bin_start=("time", t_rdms["time_bin_start"].values),
                              time_bin_end=("time", t_rdms["time_bin_end"].values))
        if target.subjects >= 2:
            nc = rsa.noise_ceiling(t_rdms, method=method)
            ds["ceiling_lower"] = ("time", np.asarray(nc["lower"].transpose("time").values))
            ds["ceiling_upper"] = ("time", np.asarray(nc["upper"].transpose("time").values))
        if not target.static and mapping_obj is not None:
            ds["mapped"] = mapped_cells(mapping_obj, layers, steps, ds["time"].values)
        ds.attrs = {"target": target.name, "description": target.description, "method": method,
                    "rdm": rdm_method, "n_bootstrap": int(n_bootstrap), "seed": int(seed), "ci": 0.95,
                    "n_stimuli": int(m.n_matched), "subjects": int(target.subjects),
                    "value": "mean over subjects of the similarity with each subject's RDM" if target.subjects
                    else "similarity of the model RDM with the recording RDM"}
        if "mapped" in ds:
            ds.attrs["time_mapping"] = mapping_obj.to_json()     # which layers it places, for the figures
        results[target.name] = ds
        if encoding and target.responses is not None:
            encoded[target.name] = _encode_target(tree, layers, m, target, ids, seed, min_reliability, bar)
    bar.close()
    settings = {"acts": acts_name, "recording": source.spec, "layers": layers, "rdm": rdm_method, "method": method,
                "n_bootstrap": int(n_bootstrap), "seed": int(seed), "shared_only": bool(shared_only),
                "mapping": str(mapping) if isinstance(mapping, (str, os.PathLike)) else "object",
                "stimulus_match": str(m),
                **({"min_reliability": float(min_reliability)} if encoding else {}),
                "n_matched": int(m.n_matched), "matched_by": dict(m.by), "model": str(tree.attrs.get("model", "")),
                "weights": str(tree.attrs.get("weights", ""))}
    return Comparison.from_parts(results, {t.name: t for t in source.targets}, mapping_obj, fit, encoded, settings)


def undefined_rdm(rdms: xr.DataArray, what: str, over: str, unit: str) -> str:
    """'<what> at <over> <value>' for the first RDM in ``rdms`` whose dissimilarities are all NaN, else ''."""
    n = rdms.sizes["stimulus"]
    iu = np.triu_indices(n, 1)
    lead = [d for d in rdms.dims if d not in ("stimulus", "stimulus_")]
    a = np.asarray(rdms.transpose(*lead, "stimulus", "stimulus_").values)[..., iu[0], iu[1]]
    bad = ~np.isfinite(a).any(axis=-1)
    if not bad.any():
        return ""
    where = np.argwhere(bad)[0]
    parts = []
    for d, i in zip(lead, where):
        value = rdms[d].values[i] if d in rdms.coords else i
        parts.append(f"{d} {value:g}{unit}" if d == over and isinstance(value, (float, np.floating))
                     else f"{d} {value}")
    return f"{what} at {', '.join(parts) or 'every step'}"


def _refuse_undefined(rdms, what: str, over: str, unit: str, rdm_method: str, single_neuroid=False) -> None:
    problem = undefined_rdm(rdms, what, over, unit)
    if problem:
        hint = ("; a correlation RDM of a single neuroid is undefined: pass `rdm_method=euclidean`"
                if single_neuroid and rdm_method == "correlation" else "")
        raise CompareError(f"{problem}: its RDM has no defined dissimilarity there ({rdm_method} distance of "
                           f"responses that are constant or missing), so nothing can be compared{hint}")


def _encode_target(tree, layers, m, target: Target, ids, seed, min_reliability, bar) -> xr.Dataset:
    from ..analysis.encoding import encode
    from ..store import layer

    resp = target.responses.isel(stimulus=m.b).assign_coords(stimulus=ids)
    if "layer" in resp.coords:                     # e.g. the planted layer of a simulated recording
        resp = resp.rename({"layer": "recording_layer"})
    parts = []
    for l in layers:
        parts.append(encode(layer(tree, l).isel(stimulus=m.a).assign_coords(stimulus=ids), resp, seed=seed,
                            min_reliability=min_reliability))
        bar.update()
    per_layer = [v for v in ("r", "alpha", "r_corrected") if v in parts[0]]
    ds = xr.concat(parts, dim=xr.DataArray(layers, dims="layer", name="layer"), data_vars=per_layer,
                   coords="minimal", compat="override", combine_attrs="override")
    ds.attrs.pop("layer", None)
    return ds
