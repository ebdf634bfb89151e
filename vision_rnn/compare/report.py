"""The report folder of ``vrnn compare``: a CSV, netCDF files, figures and a JSON summary.

Written as one set (:func:`vision_rnn.atomic.file_set`): into a temporary folder
beside ``out``, moved in at the end, so ``out`` holds the old report or the whole
new one; other files in ``out`` stay. Files:

- ``comparison.csv``: one row per (target, layer, step, recording bin): ``value``,
  ``ci_low``/``ci_high`` (bootstrap percentile interval), the noise ceiling where the
  target has subjects, ``mapped`` (1 if the time mapping makes the step active in the bin);
- ``comparison.nc``: the comparison's DataTree (:mod:`vision_rnn.compare.result`): one
  netCDF group per target with ``value``, ``low``, ``high`` (layer, step, time),
  ``ceiling_lower``/``ceiling_upper`` (time) and ``mapped`` (with the TimeMapping as JSON in
  the attribute ``time_mapping``), its ``encoding`` group with ``--encoding``, and the
  settings as root attributes (JSON where they are not numbers or text);
- ``cross_temporal_<target>.png``, ``steps_<target>.png`` and, for time-resolved
  targets, ``ms_<target>.png`` (curves over recording time at the mapped step);
- ``mapping.json`` for time-resolved targets (the TimeMapping; with ``--mapping fit``
  also its intervals); ``encoding.csv`` (median scores per layer, step and
  bin; ``min_reliability``, ``n_reliable``/``n_unreliable`` neuroids per bin) and
  ``encoding_<target>.png`` with ``--encoding``; ``summary.json`` (settings, stimulus
  match, best cell per layer).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import xarray as xr

from ..atomic import check_set_folder, file_set, safe_name
from ..report import jsonable

__all__ = ["REPORT_FILES", "check_out", "figure_title", "netcdf_ready", "write_report"]


def _attr(value):
    """An attribute netCDF stores: text and numbers as they are, booleans as 0/1, anything else as JSON."""
    value = jsonable(value)
    if isinstance(value, bool):
        return int(value)
    return value if isinstance(value, (str, int, float)) else json.dumps(value)


def _netcdf_group(ds: xr.Dataset) -> xr.Dataset:
    ds = ds.copy()
    for v in list(ds.data_vars):
        if ds[v].dtype == bool:
            ds[v] = ds[v].astype(np.int8)
    for c in list(ds.coords):
        if ds[c].dtype == object:
            ds = ds.assign_coords({c: ds[c].astype(str)})
    ds.attrs = {k: _attr(v) for k, v in ds.attrs.items()}
    return ds


def netcdf_ready(tree: xr.DataTree) -> xr.DataTree:
    """The tree with what netCDF cannot hold made storable: booleans as int8, object
    coordinates as text, attributes that are not numbers or text as JSON."""
    return tree.map_over_datasets(_netcdf_group)


def figure_title(comparison, target: str) -> str:
    """'<model> (<weights> weights) vs <target description>'."""
    st = comparison.settings
    weights = st.get("weights") or ""
    who = st.get("model") or "model"
    if weights and "/" not in weights and weights != "pretrained":
        who += f" ({weights} weights)"
    return f"{who} vs {comparison.targets[target].description}"


REPORT_FILES = ("comparison.csv", "comparison.nc", "cross_temporal_*.png", "steps_*.png", "ms_*.png",
                "mapping.json", "encoding.csv", "encoding_*.png", "summary.json",
                "cross_temporal.nc", "encoding.nc")     # the last two: names of older reports, replaced


def check_out(out, overwrite: bool = False) -> Path:
    """Refuse an ``out`` that is a file, whose parent is missing, or that holds a comparison report
    without ``overwrite`` (other files may be there: they stay)."""
    return check_set_folder(out, REPORT_FILES, overwrite, "a comparison report")


def write_report(comparison, out, overwrite: bool = False) -> Path:
    """Write every file of the report into ``out`` (see the module docstring), as one set.

    Parameters
    ----------
    comparison : Comparison
        The result of :func:`~vision_rnn.compare.run_comparison`.
    out : path
        The report folder (created; other files in it stay).
    overwrite : bool
        Replace the files of an earlier comparison report in ``out``.

    Returns
    -------
    Path
        ``out``.
    """
    from . import figures as pc

    out = check_out(out, overwrite)
    with file_set(out, owns=REPORT_FILES) as tmp:
        comparison.table().to_csv(tmp / "comparison.csv", index=False, na_rep="")
        netcdf_ready(comparison.tree).to_netcdf(tmp / "comparison.nc", engine="netcdf4")
        for name, ds in comparison.results.items():
            title = figure_title(comparison, name)
            figs = {"cross_temporal": pc.plot_cross_temporal(ds, title), "steps": pc.plot_steps(ds, title)}
            if "mapped" in ds:
                figs["ms"] = pc.plot_ms(ds, title)
            for kind, fig in figs.items():
                fig.savefig(tmp / f"{kind}_{safe_name(name)}.png", dpi=110)
        if comparison.mapping is not None:
            (tmp / "mapping.json").write_text(json.dumps(comparison.mapping_summary(), indent=1) + "\n")
        encoding = comparison.encoding
        if encoding:
            comparison.encoding_table().to_csv(tmp / "encoding.csv", index=False, na_rep="")
            for name, ds in encoding.items():
                pc.plot_encoding(ds, figure_title(comparison, name)).savefig(
                    tmp / f"encoding_{safe_name(name)}.png", dpi=110)
        (tmp / "summary.json").write_text(json.dumps(comparison.summary_dict(), indent=1) + "\n")
    return out
