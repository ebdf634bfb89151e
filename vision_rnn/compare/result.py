"""The result of a comparison: a labelled DataTree, and the tables read from it.

:class:`Comparison` holds one ``xarray.DataTree``: the root's ``attrs`` are the
settings (activation file, recording, methods, stimulus match), and each target
is a group (named after the target, made safe for file names) with

- ``value``, ``low``, ``high`` (layer, step, time): similarity of each layer's RDM at
  each model step with the target's RDM at each recording bin, and its 95% bootstrap
  interval; ``time`` is the bin centre in ms with ``time_bin_start``/``time_bin_end``;
- ``ceiling_lower``/``ceiling_upper`` (time) where the target has subjects;
- ``mapped`` (layer, step, time) where a TimeMapping places the steps in the bins;
- a child group ``encoding`` with the encoding scores (``--encoding``).

>>> c = vrnn.compare.run_comparison("k92.nc", "kriegeskorte92:")       # doctest: +SKIP
>>> c.tree["monkey_it"]["value"].sel(layer="gap")                      # doctest: +SKIP
>>> c.table().query("target == 'monkey_it'")                            # doctest: +SKIP
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import xarray as xr

from ..analysis.encoding import MIN_RELIABLE_SHARE, median_score
from ..atomic import safe_name
from ..report import jsonable

__all__ = ["Comparison", "best_cell", "best_lines", "encoding_table", "summary_dict", "table"]


@dataclass
class Comparison:
    """Result of :func:`~vision_rnn.compare.run_comparison`.

    Attributes
    ----------
    tree : xarray.DataTree
        One group per target (see the module docstring); settings in ``tree.attrs``.
    targets : dict
        Target name -> :class:`~vision_rnn.compare.targets.Target` (the recorded RDMs compared).
    mapping : TimeMapping or None
        The step -> ms mapping used for time-resolved targets.
    fit : TimeFit or None
        The fitted mapping with its intervals (``mapping="fit"``).
    """

    tree: xr.DataTree
    targets: dict
    mapping: object = None
    fit: object = None

    @classmethod
    def from_parts(cls, results: dict, targets: dict, mapping=None, fit=None, encoding=None, settings=None):
        """Build the tree from per-target Datasets (and their encoding Datasets)."""
        groups = {"/": xr.Dataset(attrs=dict(settings or {}))}
        for name, ds in results.items():
            groups[f"/{safe_name(name)}"] = ds
            if encoding and name in encoding:
                groups[f"/{safe_name(name)}/encoding"] = encoding[name]
        return cls(xr.DataTree.from_dict(groups), targets, mapping, fit)

    @property
    def settings(self) -> dict:
        """The comparison's settings (the tree's root attributes; editable)."""
        return self.tree.attrs

    def _groups(self) -> list:
        return [g for g in self.tree.children.values() if "target" in g.attrs]

    @property
    def results(self) -> dict:
        """Target name -> Dataset (layer, step, time) of its group."""
        return {g.attrs["target"]: g.to_dataset(inherit=False) for g in self._groups()}

    @property
    def encoding(self) -> dict:
        """Target name -> encoding Dataset, for targets that have one."""
        return {g.attrs["target"]: g["encoding"].to_dataset() for g in self._groups()
                if "encoding" in g.children}

    def table(self):
        """One row per (target, layer, step, recording bin): value and its interval (a DataFrame, as the CSV)."""
        return table(self)

    def encoding_table(self):
        """Median encoding scores, one row per (target, layer, step, recording bin); None without encoding."""
        return encoding_table(self)

    def best_lines(self) -> list:
        """One line per target: the layer and step most similar to it."""
        return best_lines(self)

    def mapping_summary(self) -> dict:
        """The TimeMapping (and, when fitted, its intervals) as ``mapping.json`` holds it."""
        return mapping_dict(self)

    def summary_dict(self) -> dict:
        """Settings, stimulus match, the mapping and the best cell per layer (``summary.json``)."""
        return summary_dict(self)

    def write(self, out, overwrite: bool = False):
        """Write the report folder (see :func:`vision_rnn.compare.report.write_report`)."""
        from .report import write_report

        return write_report(self, out, overwrite=overwrite)


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


def summary_dict(comparison) -> dict:
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
