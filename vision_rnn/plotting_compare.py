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

import warnings

import numpy as np

from .plotting import _figure

__all__ = ["plot_cross_temporal", "plot_steps", "plot_ms", "plot_encoding", "plot_model_grid", "METHOD_LABEL"]

METHOD_LABEL = {"spearman": "Spearman ρ", "corr": "Pearson r", "cosine": "cosine similarity",
                "tau-a": "Kendall τ-a", "rho-a": "Spearman ρ-a"}
CEILING_STYLE = dict(color="#9a9a9a", alpha=0.3, lw=0)


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


def _band_text(ds):
    n = ds.attrs.get("n_bootstrap", 0)
    return f"band: 95% bootstrap interval over stimuli ({n} samples)" if n else "no bootstrap"


def plot_cross_temporal(ds, title: str = ""):
    """Cross-temporal matrix: every model step against every recording bin, one panel per layer.

    A static target (one bin) is drawn as one layer x step matrix with the values written in.
    Dots mark the cells the time mapping selects (the step active in each bin).
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
        return fig
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
        ax.axvline(0, color="grey", lw=0.8, ls=":")
        ax.set_title(f"layer {layers[i]}", fontsize=10)
        ax.set_xlabel("recording time (ms)")
        ax.set_yticks(steps if len(steps) <= 12 else steps[::2])
        if i % ncols == 0:
            ax.set_ylabel("model step t")
    if "mapped" in ds:
        axes[0].legend(fontsize=7, loc="upper left", framealpha=0.8)
    fig.colorbar(im, ax=list(axes), label=label, shrink=0.8)
    fig.suptitle(f"{title}: cross-temporal RDM similarity", fontsize=10)
    return fig


def plot_steps(ds, title: str = ""):
    """Similarity per layer over model steps with bootstrap bands (and the noise ceiling)."""
    from .compare_report import step_curve

    fig, ax = _figure(6.8, 4.4)
    curve = step_curve(ds)
    steps = curve["step"].values
    for color, l in zip(_colors(curve["layer"].values), curve["layer"].values):
        c = curve.sel(layer=l)
        ax.plot(steps, c["value"], "o-", color=color, lw=2, ms=4, label=str(l))
        if np.isfinite(c["low"].values).any():
            ax.fill_between(steps, c["low"], c["high"], color=color, alpha=0.15, lw=0)
    if "ceiling_lower" in ds and ds.sizes["time"] == 1:
        ax.axhspan(float(ds["ceiling_lower"][0]), float(ds["ceiling_upper"][0]), **CEILING_STYLE,
                   label=f"noise ceiling ({ds.attrs.get('subjects')} subjects)")
    ax.axhline(0, color="black", lw=0.6)
    ax.set_xticks(steps)
    ax.set_xlabel("model step t" + ("" if ds.sizes["time"] == 1 else " (recording bin at the step's mapped time)"))
    ax.set_ylabel(_ylabel(ds))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, title="layer", title_fontsize=8, loc="best", ncols=2)
    ax.set_title(f"{title}\n{_band_text(ds)}", fontsize=9)
    return fig


def plot_ms(ds, title: str = ""):
    """Similarity per layer over recording time, each bin compared with the step active in it."""
    from .compare_report import ms_curve

    fig, ax = _figure(6.8, 4.4)
    curve = ms_curve(ds)
    t = curve["time"].values
    for color, l in zip(_colors(curve["layer"].values), curve["layer"].values):
        c = curve.sel(layer=l)
        if not np.isfinite(c["value"].values).any():
            continue
        ax.plot(t, c["value"], "o-", color=color, lw=2, ms=3, label=str(l))
        ax.fill_between(t, c["low"], c["high"], color=color, alpha=0.15, lw=0)
    if "ceiling_lower" in ds:
        ax.fill_between(t, ds["ceiling_lower"], ds["ceiling_upper"], **CEILING_STYLE,
                        label=f"noise ceiling ({ds.attrs.get('subjects')} subjects)")
    if not ax.lines:
        ax.text(0.5, 0.5, "no recording bin falls within a mapped step of these layers",
                transform=ax.transAxes, ha="center", va="center", color="grey")
    ax.axhline(0, color="black", lw=0.6)
    ax.axvline(0, color="grey", lw=0.8, ls=":")
    ax.set_xlabel("recording time (ms after stimulus onset)")
    ax.set_ylabel(_ylabel(ds))
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, title="layer", title_fontsize=8, loc="best")
    ax.set_title(f"{title}\neach bin vs the model step active in it (time mapping)\n{_band_text(ds)}", fontsize=9)
    return fig


def plot_encoding(ds, title: str = ""):
    """Median encoding score over neuroids: per layer over steps (static) or step x time (time-resolved)."""
    var = "r_corrected" if "r_corrected" in ds else "r"
    label = "median noise-corrected r" if var == "r_corrected" else "median held-out r"
    with warnings.catch_warnings():                      # bins where every neuroid is unreliable
        warnings.simplefilter("ignore", RuntimeWarning)
        med = ds[var].median("neuroid").transpose("layer", "step", "time")
    steps = ds["step"].values
    if ds.sizes["time"] == 1:
        fig, ax = _figure(6.4, 4.2)
        for color, l in zip(_colors(ds["layer"].values), ds["layer"].values):
            ax.plot(steps, med.sel(layer=l).values[:, 0], "o-", color=color, lw=2, label=str(l))
        ax.set_xticks(steps)
        ax.set_xlabel("model step t")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, title="layer", title_fontsize=8)
        ax.set_title(f"{title}\nridge encoding, {ds.attrs.get('folds')}-fold cross-validated", fontsize=9)
        return fig
    start, end = ds["time_bin_start"].values, ds["time_bin_end"].values
    layers = [str(l) for l in ds["layer"].values]
    fig, axes, ncols = _panels(len(layers))
    vmax = float(np.nanmax(med.values)) if np.isfinite(med.values).any() else 1.0
    for i, ax in enumerate(axes):
        im = ax.imshow(med.values[i], cmap="magma", vmin=0, vmax=max(vmax, 1e-6), aspect="auto", origin="lower",
                       extent=(float(start[0]), float(end[-1]), steps[0] - 0.5, steps[-1] + 0.5),
                       interpolation="nearest")
        ax.set_title(f"layer {layers[i]}", fontsize=10)
        ax.set_xlabel("recording time (ms)")
        if i % ncols == 0:
            ax.set_ylabel("model step t")
    fig.colorbar(im, ax=list(axes), label=label, shrink=0.8)
    fig.suptitle(f"{title}: ridge encoding of each bin from each step", fontsize=10)
    return fig


def plot_model_grid(results: dict, targets=None, title: str = ""):
    """Curves over steps for several models (columns) against several targets (rows).

    ``results`` maps a model name to a :class:`~vision_rnn.compare.Comparison`; ``targets``
    (default: those of the first) picks and orders the rows. Bands are bootstrap intervals;
    the grey band is the noise ceiling where a target has subjects.
    """
    from matplotlib.figure import Figure

    from .compare_report import step_curve

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
            for color, l in zip(_colors(curve["layer"].values), curve["layer"].values):
                cv = curve.sel(layer=l)
                ax.plot(steps, cv["value"], "-", color=color, lw=1.8, label=str(l))
                ax.fill_between(steps, cv["low"], cv["high"], color=color, alpha=0.15, lw=0)
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
    fig.suptitle(f"{title}\nbands: 95% bootstrap intervals over stimuli ({n_boot} samples)", fontsize=10)
    return fig
