"""Figures of model-recording comparisons, one function per figure; each returns a matplotlib Figure.

The counterpart of :mod:`vision_rnn.plotting` for ``vrnn compare``: they take
the per-target Datasets of :func:`vision_rnn.compare.run_comparison`
(``value``, ``low``, ``high`` over layer, step, time) and draw with
:class:`matplotlib.figure.Figure`, without pyplot's global state.

>>> from vision_rnn.compare import run_comparison                     # doctest: +SKIP
>>> c = run_comparison("k92.nc", "kriegeskorte92:data/kriegeskorte2008")   # doctest: +SKIP
>>> plot_steps(c.results["monkey_it"]).savefig("steps.png")           # doctest: +SKIP
"""

from __future__ import annotations

import numpy as np

from ..plotting import _figure, fit_titles

__all__ = ["plot_cross_temporal", "plot_steps", "plot_ms", "plot_encoding", "plot_model_grid", "METHOD_LABEL"]

METHOD_LABEL = {"spearman": "Spearman ρ", "corr": "Pearson r", "cosine": "cosine similarity",
                "tau-a": "Kendall τ-a", "rho-a": "Spearman ρ-a"}
CEILING_STYLE = dict(color="#9a9a9a", alpha=0.3, lw=0)
ONSET_STYLE = dict(color="#444444", lw=0.9, ls="--")
UNRELIABLE_COLOR = "#c8c8c8"
INTERVAL_STYLE = dict(fmt="none", elinewidth=0.9, capsize=2.0, capthick=0.9)


LAYER_COLORS = {"retina": "#6b6b6b", "v1": "#1b3a8c", "v2": "#6a3d9a", "v4": "#c2306b", "it": "#e8741c",
                "gap": "#8a6d00"}


def _colors(layers):
    """One fixed colour per known layer name (the same in every figure), tab10 for others."""
    import matplotlib

    other = matplotlib.colormaps["tab10"]
    names = [str(l) for l in layers]
    return [LAYER_COLORS.get(n.lower(), other(i % 10)) for i, n in enumerate(names)]


def _panels(n):
    """A grid of at most 3 columns for ``n`` layer panels; unused axes are hidden."""
    from matplotlib.figure import Figure

    ncols = min(n, 3)
    nrows = -(-n // ncols)
    fig = Figure(figsize=(3.5 * ncols + 1.3, 2.9 * nrows + 0.7), layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False).ravel())
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, axes[:n], ncols


RDM_TEXT = {"correlation": "1 - Pearson r", "euclidean": "squared distance / units", "cosine": "1 - cosine"}


def _ylabel(ds):
    method = METHOD_LABEL.get(ds.attrs.get("method"), ds.attrs.get("method", "similarity"))
    rdm = RDM_TEXT.get(ds.attrs.get("rdm"), ds.attrs.get("rdm", ""))
    return f"{method} between RDMs\n(model RDM: {rdm})"


def _band_text(ds, what="band"):
    n = ds.attrs.get("n_bootstrap", 0)
    return f"{what}: 95% bootstrap interval over stimuli ({n} samples)" if n else "no bootstrap"


def _intervals(ax, x, low, high, color, **style):
    """Vertical bars with caps from ``low`` to ``high`` at ``x`` (where both are defined)."""
    low, high = np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)
    ok = np.isfinite(low) & np.isfinite(high)
    if ok.any():
        ax.errorbar(np.asarray(x)[ok], (low[ok] + high[ok]) / 2, yerr=(high[ok] - low[ok]) / 2, color=color,
                    **{**INTERVAL_STYLE, **style})


def _dodge(n, steps, width=0.45):
    """x offsets spreading ``n`` layers over ``width`` of the spacing between steps."""
    spacing = float(np.min(np.diff(steps))) if len(steps) > 1 else 1.0
    return (np.arange(n) - (n - 1) / 2) * (width * spacing / max(n - 1, 1))


def _unmapped_text(ds, layer, named=True) -> str:
    """Why no step of ``layer`` is active in any recording bin, from the TimeMapping the result carries
    (``ds.attrs["time_mapping"]``); ``named``: the text names the layer."""
    from ..analysis.timeaxis import TimeAxisError, TimeMapping

    try:
        m = TimeMapping.from_json(ds.attrs["time_mapping"])
    except (KeyError, TimeAxisError):
        return "no step of this layer is mapped to a recording bin"
    onsets, step_ms = {str(k): float(v) for k, v in m.onset_ms.items()}, float(m.step_ms)
    if layer not in onsets:
        placed = ", ".join(sorted(onsets, key=onsets.get)) or "no layer"
        return f"no time mapping{f' for layer {layer}' if named else ''}\n(the mapping places {placed})"
    end = onsets[layer] + step_ms * ds.sizes["step"]
    return (f"the mapping puts {f'layer {layer}' if named else 'its'} steps at\n{onsets[layer]:g}-{end:g} ms, "
            "outside the recording's bins")


def _onset(ax, start, end, label=None):
    """A dashed line at stimulus onset (0 ms) where 0 lies within the recording's bins."""
    if float(start) <= 0 <= float(end):
        ax.axvline(0, label=label, **ONSET_STYLE)


def plot_cross_temporal(ds, title: str = ""):
    """Cross-temporal matrix: every model step against every recording bin, one panel per layer.

    A static target (one bin) is drawn as one layer x step matrix with the values written in.
    Dots mark the cells the time mapping selects (the step active in each bin); a panel of a
    layer the mapping does not place says so; a dashed line marks stimulus onset.
    """
    layers = [str(l) for l in ds["layer"].values]
    steps = ds["step"].values
    value = ds["value"].transpose("layer", "step", "time").values
    lim = float(np.nanmax(np.abs(value))) if np.isfinite(value).any() else 1.0
    label = METHOD_LABEL.get(ds.attrs.get("method"), "similarity")
    if ds.sizes["time"] == 1:
        fig, ax = _figure(1.2 + 0.75 * len(steps), 1.6 + 0.5 * len(layers))
        im = ax.imshow(value[:, :, 0], cmap="RdBu_r", vmin=-lim, vmax=lim, aspect="auto")
        for (i, k), v in np.ndenumerate(value[:, :, 0]):
            ax.text(k, i, f"{v:.2f}", ha="center", va="center", fontsize=8,
                    color="white" if abs(v) > 0.6 * lim else "black")
        ax.set_xticks(range(len(steps)), steps)
        ax.set_yticks(range(len(layers)), layers)
        ax.set_xlabel("model step t")
        ax.set_ylabel("layer")
        fig.colorbar(im, ax=ax, label=label)
        ax.set_title(f"{title}\nmodel RDM vs recording RDM, every layer and step", fontsize=10)
        return fit_titles(fig)
    start, end = ds["time_bin_start"].values, ds["time_bin_end"].values
    fig, axes, ncols = _panels(len(layers))
    for i, ax in enumerate(axes):
        im = ax.imshow(value[i], cmap="RdBu_r", vmin=-lim, vmax=lim, aspect="auto", origin="lower",
                       extent=(float(start[0]), float(end[-1]), steps[0] - 0.5, steps[-1] + 0.5),
                       interpolation="nearest")
        if "mapped" in ds:
            k, t = np.nonzero(ds["mapped"].transpose("layer", "step", "time").values[i])
            ax.plot(ds["time"].values[t], steps[k], ".", color="black", ms=3,
                    label="step active in the bin\n(time mapping)" if i == 0 else None)
            if not k.size:
                ax.text(0.5, 0.5, _unmapped_text(ds, layers[i]), transform=ax.transAxes, ha="center",
                        va="center", fontsize=8, bbox=dict(boxstyle="round", fc="white", ec="grey", alpha=0.9))
        _onset(ax, start[0], end[-1], "stimulus onset" if i == 0 else None)
        ax.set_title(f"layer {layers[i]}", fontsize=10)
        ax.set_xlabel("recording time (ms after stimulus onset)")
        ax.set_yticks(steps if len(steps) <= 12 else steps[::2])
        if i % ncols == 0:
            ax.set_ylabel("model step t")
    if axes[0].get_legend_handles_labels()[0]:
        axes[0].legend(fontsize=7, loc="upper left", framealpha=0.8)
    fig.colorbar(im, ax=list(axes), label=label, shrink=0.8)
    fig.suptitle(f"{title}: cross-temporal RDM similarity", fontsize=10)
    return fit_titles(fig)


def plot_steps(ds, title: str = ""):
    """Similarity per layer over model steps with bootstrap intervals (and the noise ceiling).

    Each layer's points are shifted a little along x so that the interval bars do not overlap;
    the legend lies beside the axes and says why a layer without a mapped step has no curve.
    """
    from .curves import step_curve

    fig, ax = _figure(7.6, 4.4)
    curve = step_curve(ds)
    steps = curve["step"].values
    layers = [str(l) for l in curve["layer"].values]
    drawn = [l for l in layers if np.isfinite(curve["value"].sel(layer=l).values).any()]
    offset = dict(zip(drawn, _dodge(len(drawn), steps)))
    for color, l in zip(_colors(layers), layers):
        if l not in offset:
            continue
        c = curve.sel(layer=l)
        ax.plot(steps + offset[l], c["value"], "o-", color=color, lw=1.4, ms=3.5, label=l)
        _intervals(ax, steps + offset[l], c["low"].values, c["high"].values, color)
    if "ceiling_lower" in ds and ds.sizes["time"] == 1:
        ax.axhspan(float(ds["ceiling_lower"][0]), float(ds["ceiling_upper"][0]), **CEILING_STYLE,
                   label=f"noise ceiling ({ds.attrs.get('subjects')} subjects)")
    ax.axhline(0, color="black", lw=0.6)
    ax.set_xticks(steps)
    ax.set_xlabel("model step t" + ("" if ds.sizes["time"] == 1 else " (recording bin at the step's mapped time)"))
    ax.set_ylabel(_ylabel(ds))
    ax.grid(alpha=0.3)
    _side_legend(ax, ds, [l for l in layers if l not in offset])
    fig.suptitle(f"{title}\n{_band_text(ds, 'bars')}", fontsize=9)
    return fit_titles(fig)


def plot_ms(ds, title: str = ""):
    """Similarity per layer over recording time, each bin compared with the model step active during it.

    A layer without a mapped step gets a legend entry saying why it has no curve; a dashed
    line marks stimulus onset.
    """
    from .curves import ms_curve

    fig, ax = _figure(7.6, 4.4)
    curve = ms_curve(ds)
    t = curve["time"].values
    unmapped = []
    for color, l in zip(_colors(curve["layer"].values), curve["layer"].values):
        c = curve.sel(layer=l)
        if not np.isfinite(c["value"].values).any():
            unmapped.append(str(l))
            continue
        ax.plot(t, c["value"], "o-", color=color, lw=2, ms=3, label=str(l))
        ax.fill_between(t, c["low"], c["high"], color=color, alpha=0.15, lw=0)
    if not ax.lines:
        ax.text(0.5, 0.5, "no recording bin falls within a mapped step of these layers",
                transform=ax.transAxes, ha="center", va="center", color="grey")
    if "ceiling_lower" in ds:
        ax.fill_between(t, ds["ceiling_lower"], ds["ceiling_upper"], **CEILING_STYLE,
                        label=f"noise ceiling ({ds.attrs.get('subjects')} subjects)")
    ax.axhline(0, color="black", lw=0.6)
    ax.axvline(0, label="stimulus onset", **ONSET_STYLE)
    ax.set_xlabel("recording time (ms after stimulus onset)")
    ax.set_ylabel(_ylabel(ds))
    ax.grid(alpha=0.3)
    _side_legend(ax, ds, unmapped)
    fig.suptitle(f"{title}\neach recording bin vs the model step active during that bin (time mapping)\n"
                 f"{_band_text(ds)}", fontsize=9)
    return fit_titles(fig)


def _side_legend(ax, ds, unmapped, width=30):
    """The legend beside ``ax`` (under the figure's title), with a grey entry without a mark for each
    layer of ``unmapped`` saying why it has no curve; entries wrapped to ``width`` characters."""
    import textwrap

    from matplotlib.lines import Line2D

    handles, labels = ax.get_legend_handles_labels()
    for l in unmapped:
        handles.append(Line2D([], [], lw=0))
        labels.append(f"{l}: " + _unmapped_text(ds, l, named=False).replace("\n", " "))
    labels = ["\n".join(textwrap.wrap(lab, width)) for lab in labels]
    legend = ax.legend(handles, labels, fontsize=8, title="layer", title_fontsize=8, loc="upper left",
                       bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
    for text in legend.get_texts()[len(labels) - len(unmapped):]:
        text.set_color("#555555")
    return legend


def plot_encoding(ds, title: str = ""):
    """Median encoding score over neuroids: per layer over steps (static) or step x time (time-resolved).

    With repetitions the score is the noise-corrected r, its median over the neuroids whose
    split-half reliability at the bin reaches the threshold the scores were made with
    (``min_reliability``); bins where too few neuroids reach it are drawn grey (see
    :func:`vision_rnn.analysis.encoding.median_score`). The colour scale
    is symmetric about 0; a dashed line marks stimulus onset.
    """
    import matplotlib
    from matplotlib.patches import Patch

    from ..analysis.encoding import median_score

    var = "r_corrected" if "r_corrected" in ds else "r"
    label = "median noise-corrected r" if var == "r_corrected" else "median held-out r"
    med = median_score(ds).transpose("layer", "step", "time")
    share = med.attrs.get("min_reliable_share", 0)
    steps = ds["step"].values
    threshold = ds.attrs.get("min_reliability")
    criterion = f"with split-half reliability ≥ {threshold:g}" if threshold is not None else "that is reliable"
    what = "" if ds.sizes["time"] == 1 else " of each recording bin from each model step"
    how = f"ridge encoding{what}, {ds.attrs.get('folds')}-fold cross-validated"
    if var == "r_corrected":
        how += f"; median over the neuroids {criterion}"
    if ds.sizes["time"] == 1:
        fig, ax = _figure(6.4, 4.2)
        for color, l in zip(_colors(ds["layer"].values), ds["layer"].values):
            ax.plot(steps, med.sel(layer=l).values[:, 0], "o-", color=color, lw=2, label=str(l))
        ax.set_xticks(steps)
        ax.set_xlabel("model step t")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, title="layer", title_fontsize=8)
        ax.set_title(f"{title}\n{how}", fontsize=9)
        return fit_titles(fig)
    start, end = ds["time_bin_start"].values, ds["time_bin_end"].values
    layers = [str(l) for l in ds["layer"].values]
    fig, axes, ncols = _panels(len(layers))
    values = med.values
    lim = float(np.nanmax(np.abs(values))) if np.isfinite(values).any() else 1.0
    cmap = matplotlib.colormaps["RdBu_r"].with_extremes(bad=UNRELIABLE_COLOR)
    for i, ax in enumerate(axes):
        im = ax.imshow(np.ma.masked_invalid(values[i]), cmap=cmap, vmin=-max(lim, 1e-6), vmax=max(lim, 1e-6),
                       aspect="auto", origin="lower", interpolation="nearest",
                       extent=(float(start[0]), float(end[-1]), steps[0] - 0.5, steps[-1] + 0.5))
        _onset(ax, start[0], end[-1], "stimulus onset")
        ax.set_title(f"layer {layers[i]}", fontsize=10)
        ax.set_xlabel("recording time (ms after stimulus onset)")
        if i % ncols == 0:
            ax.set_ylabel("model step t")
    fig.colorbar(im, ax=list(axes), label=label, shrink=0.8)
    handles, labels = axes[0].get_legend_handles_labels()
    if not np.isfinite(values).all():
        handles.append(Patch(color=UNRELIABLE_COLOR))
        labels.append(f"grey: fewer than {share:.0%} of the neuroids {criterion}" if var == "r_corrected"
                      else "grey: undefined score")
    if handles:
        fig.legend(handles, labels, fontsize=8, loc="outside lower center", ncols=len(handles))
    fig.suptitle(f"{title}\n{how}", fontsize=10)
    return fit_titles(fig)


def plot_model_grid(results: dict, targets=None, title: str = ""):
    """Curves over steps for several models (columns) against several targets (rows).

    ``results`` maps a model name to a :class:`~vision_rnn.compare.Comparison`; ``targets``
    (default: those of the first) picks and orders the rows. Bars are bootstrap intervals (each
    layer's points shifted a little along x); the grey band is the noise ceiling where a target
    has subjects.
    """
    from matplotlib.figure import Figure

    from .curves import step_curve

    names = list(results)
    first = results[names[0]]
    targets = list(targets or first.results)
    fig = Figure(figsize=(2.7 * len(names) + 1.4, 2.6 * len(targets) + 0.8), layout="constrained")
    axes = np.atleast_2d(fig.subplots(len(targets), len(names), sharex=True, sharey=True, squeeze=False))
    for r, target in enumerate(targets):
        for c, model in enumerate(names):
            ax = axes[r, c]
            ds = results[model].results[target]
            curve = step_curve(ds)
            steps = curve["step"].values
            layers = curve["layer"].values
            for color, l, dx in zip(_colors(layers), layers, _dodge(len(layers), steps)):
                cv = curve.sel(layer=l)
                ax.plot(steps + dx, cv["value"], "o-", color=color, lw=1.2, ms=2.5, label=str(l))
                _intervals(ax, steps + dx, cv["low"].values, cv["high"].values, color, elinewidth=0.8, capsize=1.5)
            if "ceiling_lower" in ds and ds.sizes["time"] == 1:
                ax.axhspan(float(ds["ceiling_lower"][0]), float(ds["ceiling_upper"][0]), **CEILING_STYLE,
                           label="noise ceiling")
            ax.axhline(0, color="black", lw=0.6)
            ax.grid(alpha=0.3)
            ax.set_xticks(steps if len(steps) <= 10 else steps[::2])
            if r == 0:
                ax.set_title(model, fontsize=10)
            if r == len(targets) - 1:
                ax.set_xlabel("model step t")
            if c == 0:
                ax.set_ylabel(f"{first.targets[target].description.split(',')[0]}\n"
                              f"{METHOD_LABEL.get(ds.attrs.get('method'), 'similarity')}", fontsize=9)
    handles, labels = axes[-1, 0].get_legend_handles_labels()
    for ax in axes.ravel():
        h, lab = ax.get_legend_handles_labels()
        for hh, ll in zip(h, lab):
            if ll not in labels:
                handles.append(hh)
                labels.append(ll)
    fig.legend(handles, labels, loc="outside right center", fontsize=8, title="layer", title_fontsize=8)
    n_boot = first.results[targets[0]].attrs.get("n_bootstrap", 0)
    fig.suptitle(f"{title}\nbars: 95% bootstrap intervals over stimuli ({n_boot} samples)", fontsize=10)
    return fit_titles(fig)
