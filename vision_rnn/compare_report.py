"""The report folder of ``vrnn compare``: a CSV, netCDF files, figures and a JSON summary.

Written as one set (:func:`vision_rnn.atomic.file_set`): into a temporary folder
beside ``out``, moved in at the end, so ``out`` holds the old report or the whole
new one; other files in ``out`` stay. Files:

- ``comparison.csv``: one row per (target, layer, step, recording bin): ``value``,
  ``ci_low``/``ci_high`` (bootstrap percentile interval), the noise ceiling where the
  target has subjects, ``mapped`` (1 if the time mapping makes the step active in the bin);
- ``cross_temporal.nc``: one netCDF group per target with ``value``, ``low``, ``high``
  (layer, step, time), ``ceiling_lower``/``ceiling_upper`` (time) and ``mapped`` (with the
  TimeMapping as JSON in the attribute ``time_mapping``);
- ``cross_temporal_<target>.png``, ``steps_<target>.png`` and, for time-resolved
  targets, ``ms_<target>.png`` (curves over recording time at the mapped step);
- ``mapping.json`` for time-resolved targets (the TimeMapping; with ``--mapping fit``
  also its intervals); ``encoding.nc``, ``encoding.csv`` (median scores per layer, step and
  bin; ``min_reliability``, ``n_reliable``/``n_unreliable`` neuroids per bin) and
  ``encoding_<target>.png`` with ``--encoding``; ``summary.json`` (settings, stimulus
  match, best cell per layer).
"""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import numpy as np
import xarray as xr

from .analysis.encoding import MIN_RELIABLE_SHARE, median_score
from .atomic import check_set_folder, file_set
from .errors import VRNNError
from .report import jsonable


def step_curve(ds: xr.Dataset) -> xr.Dataset:
    """(layer, step) curves: the only bin of a static target; else the bin at each step's mapped centre."""
    if ds.sizes["time"] == 1:
        return ds[["value", "low", "high"]].isel(time=0, drop=True)
    if "mapped" not in ds:
        raise VRNNError("step_curve: a time-resolved result needs a 'mapped' variable (a TimeMapping)")
    mapped = ds["mapped"].values.astype(bool)
    idx = np.full(mapped.shape[:2], -1)
    for (i, k), _ in np.ndenumerate(idx):
        hits = np.flatnonzero(mapped[i, k])
        if hits.size:
            idx[i, k] = hits[hits.size // 2]
    out = {}
    for v in ("value", "low", "high"):
        a = ds[v].transpose("layer", "step", "time").values
        picked = np.take_along_axis(a, np.clip(idx, 0, None)[..., None], axis=2)[..., 0]
        out[v] = (("layer", "step"), np.where(idx >= 0, picked, np.nan))
    time_of = np.where(idx >= 0, ds["time"].values[np.clip(idx, 0, None)], np.nan)
    return xr.Dataset(out, coords={"layer": ds["layer"].values, "step": ds["step"].values,
                                   "time_ms": (("layer", "step"), time_of)})


def ms_curve(ds: xr.Dataset) -> xr.Dataset:
    """(layer, time) curves over recording time: the value of the step the mapping makes active."""
    if "mapped" not in ds:
        raise VRNNError("ms_curve: needs a time-resolved result with a 'mapped' variable")
    mapped = ds["mapped"].transpose("layer", "step", "time").values.astype(bool)
    any_step = mapped.any(axis=1)
    k = mapped.argmax(axis=1)
    out = {}
    for v in ("value", "low", "high"):
        a = ds[v].transpose("layer", "step", "time").values
        picked = np.take_along_axis(a, k[:, None, :], axis=1)[:, 0]
        out[v] = (("layer", "time"), np.where(any_step, picked, np.nan))
    out["step"] = (("layer", "time"), np.where(any_step, ds["step"].values[k], -1))
    return xr.Dataset(out, coords={"layer": ds["layer"].values, "time": ds["time"].values})


def table(comparison):
    """The CSV as a pandas DataFrame: one row per (target, layer, step, recording bin)."""
    import pandas as pd

    frames = []
    for name, ds in comparison.results.items():
        n_l, n_s, n_t = ds.sizes["layer"], ds.sizes["step"], ds.sizes["time"]
        grid = {"layer": np.repeat(ds["layer"].values, n_s * n_t),
                "step": np.tile(np.repeat(ds["step"].values, n_t), n_l),
                "time_ms": np.tile(ds["time"].values, n_l * n_s),
                "time_bin_start": np.tile(ds["time_bin_start"].values, n_l * n_s),
                "time_bin_end": np.tile(ds["time_bin_end"].values, n_l * n_s)}
        cols = {v: ds[v].transpose("layer", "step", "time").values.ravel() for v in ("value", "low", "high")}
        df = pd.DataFrame({"target": name, **grid, "value": cols["value"], "ci_low": cols["low"],
                           "ci_high": cols["high"]})
        for c in ("ceiling_lower", "ceiling_upper"):
            df["noise_" + c] = np.tile(ds[c].values, n_l * n_s) if c in ds else np.nan
        df["mapped"] = (ds["mapped"].transpose("layer", "step", "time").values.ravel().astype(int)
                        if "mapped" in ds else pd.NA)
        df["n_stimuli"] = ds.attrs["n_stimuli"]
        df["method"] = ds.attrs["method"]
        df["rdm"] = ds.attrs["rdm"]
        frames.append(df)
    return pd.concat(frames, ignore_index=True)


def encoding_table(comparison):
    """Median encoding scores over neuroids, one row per (target, layer, step, recording bin).

    ``median_r`` is over every neuroid; ``median_r_corrected`` over the reliable ones only
    (``n_reliable`` of them at that bin, split-half reliability at least ``min_reliability``;
    NaN where fewer than ``min_reliable_share`` of the neuroids are reliable, see
    :func:`vision_rnn.analysis.encoding.median_score`). Without repetitions the reliability
    columns are empty."""
    import pandas as pd

    frames = []
    for name, ds in comparison.encoding.items():
        has_corr = "r_corrected" in ds
        reliable = ~ds["unreliable"].astype(bool) if has_corr else None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            med = ds["r"].median("neuroid").transpose("layer", "step", "time")
        medc = median_score(ds).transpose("layer", "step", "time") if has_corr else None
        n_l, n_s, n_t = med.shape
        per_bin = lambda v: np.tile(np.asarray(v), n_l * n_s)
        df = pd.DataFrame({"target": name, "layer": np.repeat(ds["layer"].values, n_s * n_t),
                           "step": np.tile(np.repeat(ds["step"].values, n_t), n_l),
                           "time_ms": np.tile(ds["time"].values, n_l * n_s),
                           "median_r": med.values.ravel(),
                           "median_r_corrected": medc.values.ravel() if has_corr else np.nan,
                           "n_neuroids": ds.sizes["neuroid"],
                           "min_reliability": ds.attrs.get("min_reliability", np.nan) if has_corr else np.nan,
                           "min_reliable_share": MIN_RELIABLE_SHARE if has_corr else np.nan,
                           "n_reliable": per_bin(reliable.sum("neuroid").values) if has_corr else pd.NA,
                           "n_unreliable": (per_bin(ds["unreliable"].sum("neuroid").values)
                                            if has_corr else pd.NA)})
        frames.append(df)
    return pd.concat(frames, ignore_index=True) if frames else None


def safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", str(name))


def _netcdf_ready(ds: xr.Dataset) -> xr.Dataset:
    ds = ds.copy()
    for v in list(ds.data_vars):
        if ds[v].dtype == bool:
            ds[v] = ds[v].astype(np.int8)
    for c in list(ds.coords):
        if ds[c].dtype == object:
            ds = ds.assign_coords({c: ds[c].astype(str)})
    ds.attrs = {k: (v if isinstance(v, (str, int, float)) else json.dumps(v)) for k, v in ds.attrs.items()}
    return ds




def summary(comparison) -> dict:
    """Settings, stimulus match, the mapping and the best cell of every layer for every target."""
    best = {}
    for name, ds in comparison.results.items():
        cells = {str(l): best_cell(ds, l) for l in ds["layer"].values}
        best[name] = {l: {k: c[k] for k in ("step", "time_ms", "value", "ci")} for l, c in cells.items() if c}
    out = {"settings": comparison.settings,
           "targets": {n: {"description": t.description, "static": t.static, "subjects": t.subjects,
                           "n_bins": int(t.rdms.sizes["time"])} for n, t in comparison.targets.items()},
           "best": best}
    if comparison.mapping is not None:
        out["mapping"] = mapping_dict(comparison)
    return jsonable(out)


def best_cell(ds: xr.Dataset, layer=None) -> dict | None:
    """The (step, bin) of highest value, over every layer or within ``layer``; None if no value is defined."""
    part = ds if layer is None else ds.sel(layer=[layer])
    v = part["value"].transpose("layer", "step", "time").values
    if not np.isfinite(v).any():
        return None
    i, k, t = np.unravel_index(np.nanargmax(v), v.shape)
    pick = {"layer": i, "step": k, "time": t}
    return {"layer": str(part["layer"].values[i]), "step": int(part["step"].values[k]),
            "time_ms": float(part["time"].values[t]), "bin": int(t), "value": float(v[i, k, t]),
            "ci": [float(part["low"].isel(pick)), float(part["high"].isel(pick))]}


def best_lines(comparison) -> list[str]:
    """One line per target: the layer and step most similar to it, with the interval and noise ceiling.

    For a time-resolved target the cell is the best (layer, step, bin)."""
    lines = []
    for name, ds in comparison.results.items():
        b = best_cell(ds)
        if b is None:
            lines.append(f"{name}: no defined value")
            continue
        ci = f" [{b['ci'][0]:.3f}, {b['ci'][1]:.3f}]" if np.isfinite(b["ci"]).all() else ""
        where = f"layer {b['layer']} at step {b['step']}"
        if ds.sizes["time"] > 1:
            where += f", recording bin {b['time_ms']:g} ms"
        ceiling = ""
        if "ceiling_lower" in ds:
            ceiling = (f"; noise ceiling {float(ds['ceiling_lower'].values[b['bin']]):.3f}-"
                       f"{float(ds['ceiling_upper'].values[b['bin']]):.3f}")
        lines.append(f"{name}: best {where}, {ds.attrs.get('method', '')} {b['value']:.3f}{ci}{ceiling}")
    return lines


def mapping_dict(comparison) -> dict:
    m = comparison.mapping
    d = {"onset_ms": m.onset_ms, "step_ms": m.step_ms, "source": comparison.settings.get("mapping")}
    if comparison.fit is not None:
        d["ci"] = comparison.fit.ci
        d["ci_bootstrap"] = comparison.fit.ci_bootstrap
        d["cv_score"] = comparison.fit.cv_score
        d["settings"] = comparison.fit.settings
    return jsonable(d)


def figure_title(comparison, target: str) -> str:
    """'<model> (<weights> weights) vs <target description>'."""
    st = comparison.settings
    weights = st.get("weights") or ""
    who = st.get("model") or "model"
    if weights and "/" not in weights and weights != "pretrained":
        who += f" ({weights} weights)"
    return f"{who} vs {comparison.targets[target].description}"


REPORT_FILES = ("comparison.csv", "cross_temporal.nc", "cross_temporal_*.png", "steps_*.png", "ms_*.png",
                "mapping.json", "encoding.nc", "encoding.csv", "encoding_*.png", "summary.json")


def check_out(out, overwrite: bool = False) -> Path:
    """Refuse an ``out`` that is a file, whose parent is missing, or that holds a comparison report
    without ``overwrite`` (other files may be there: they stay)."""
    return check_set_folder(out, REPORT_FILES, overwrite, "a comparison report")


def write_report(comparison, out, overwrite: bool = False) -> Path:
    """Write every file of the report into ``out`` (see the module docstring), as one set."""
    from . import plotting_compare as pc

    out = check_out(out, overwrite)
    with file_set(out, owns=REPORT_FILES) as tmp:
        table(comparison).to_csv(tmp / "comparison.csv", index=False, na_rep="")
        tree = xr.DataTree.from_dict({f"/{safe_name(n)}": _netcdf_ready(ds) for n, ds in comparison.results.items()})
        tree.to_netcdf(tmp / "cross_temporal.nc", engine="netcdf4")
        for name, ds in comparison.results.items():
            title = figure_title(comparison, name)
            figs = {"cross_temporal": pc.plot_cross_temporal(ds, title), "steps": pc.plot_steps(ds, title)}
            if "mapped" in ds:
                figs["ms"] = pc.plot_ms(ds, title)
            for kind, fig in figs.items():
                fig.savefig(tmp / f"{kind}_{safe_name(name)}.png", dpi=110)
        if comparison.mapping is not None:
            (tmp / "mapping.json").write_text(json.dumps(mapping_dict(comparison), indent=1) + "\n")
        if comparison.encoding:
            enc = xr.DataTree.from_dict({f"/{safe_name(n)}": _netcdf_ready(ds)
                                         for n, ds in comparison.encoding.items()})
            enc.to_netcdf(tmp / "encoding.nc", engine="netcdf4")
            encoding_table(comparison).to_csv(tmp / "encoding.csv", index=False, na_rep="")
            for name, ds in comparison.encoding.items():
                pc.plot_encoding(ds, figure_title(comparison, name)).savefig(
                    tmp / f"encoding_{safe_name(name)}.png", dpi=110)
        (tmp / "summary.json").write_text(json.dumps(summary(comparison), indent=1) + "\n")
    return out
