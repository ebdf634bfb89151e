"""Figures of the CCN23 analyses, one function per figure; each returns a matplotlib Figure.

Figures are built with :class:`matplotlib.figure.Figure` (rendered by Agg
when saved), so nothing here touches pyplot's global state or needs a display.
Most take the Dataset of :func:`vision_rnn.analysis.summary`; the zone
trajectories take :func:`vision_rnn.analysis.readout_measures`.

>>> import vision_rnn as vrnn                                          # doctest: +SKIP
>>> s = vrnn.analysis.summary("acts.nc")                               # doctest: +SKIP
>>> vrnn.plotting.plot_accuracy(s).savefig("accuracy.png")             # doctest: +SKIP
"""

from __future__ import annotations

import numpy as np

__all__ = ["show", "plot_accuracy", "plot_dendrogram", "plot_drift", "plot_norm", "plot_peripherality",
           "plot_stability", "plot_zones"]

STATUS_STYLE = {"correct": dict(color="#1f5fbf", marker="^", label="already in final zone (correct)"),
                "not_yet": dict(color="#2a9d3a", marker="o", label="not yet in final zone (incorrect)")}
CATEGORY_COLORS = ("#1f5fbf", "#7aa6e0", "#e07a1f", "#b33c3c")


def _figure(width=6.4, height=4.2, ncols=1):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    axes = fig.subplots(1, ncols)
    return fig, axes


def _who(ds) -> str:
    model = ds.attrs.get("model") or "network"
    weights = ds.attrs.get("weights")
    layer = ds.attrs.get("layer", "")
    extra = f", {weights} weights" if weights and weights != "pretrained" and "/" not in weights else ""
    return f"{model}{extra}, layer {layer}" if layer else f"{model}{extra}"


def _steps(ax, times):
    ax.set_xticks(times)
    ax.set_xlabel("model step t")
    ax.grid(alpha=0.3)


def plot_accuracy(s):
    """Accuracy (% of labelled stimuli) at every model step, with chance level."""
    fig, ax = _figure()
    times = s["time"].values
    acc = s["accuracy"].values * 100
    ax.plot(times, acc, "o-", color="#1f5fbf", lw=2, label="accuracy")
    k = s.attrs.get("n_classes")
    if k:
        ax.axhline(100 / k, color="grey", ls="--", lw=1, label=f"chance (1/{k})")
    best = int(np.nanargmax(acc))
    ax.plot(times[best], acc[best], "o", ms=12, mfc="none", mec="black",
            label=f"max {acc[best]:.1f}% at t = {times[best]}")
    _steps(ax, times)
    ax.set_ylabel("accuracy (% of labelled stimuli)")
    ax.set_ylim(0, 105)
    ax.legend(loc="lower right")
    ax.set_title(f"Categorisation accuracy over steps\n{_who(s)}", fontsize=11)
    return fig


def plot_stability(s):
    """Share of each stability category, and at which step stable-correct stimuli settle."""
    fig, (a1, a2) = _figure(10, 4.2, ncols=2)
    cats = [str(c) for c in s["category"].values]
    share = s["category_share"].values * 100
    counts = s["category_count"].values
    bars = a1.bar(range(len(cats)), share, color=CATEGORY_COLORS)
    for bar, n, p in zip(bars, counts, share):
        a1.text(bar.get_x() + bar.get_width() / 2, p + 1, f"{p:.1f}%\n(n={n})", ha="center", va="bottom", fontsize=9)
    a1.set_xticks(range(len(cats)), [c.replace("-", "\n") for c in cats])
    a1.set_xlabel("category of the prediction sequence")
    a1.set_ylabel("share of labelled stimuli (%)")
    a1.set_ylim(0, min(115, max(share) * 1.3 + 5))
    a1.set_title("Stability of the prediction sequence", fontsize=11)
    ts = s["t_stable"].values
    cnt = s["t_stable_count"].values
    cutoff = int(s.attrs.get("settling_cutoff", len(ts)))
    from matplotlib.patches import Patch

    colors = ["#1f5fbf" if t < cutoff else "#b0b0b0" for t in ts]
    bars = a2.bar(ts, cnt, color=colors)
    for bar, n in zip(bars, cnt):
        a2.text(bar.get_x() + bar.get_width() / 2, n * 1.05, str(n), ha="center", va="bottom", fontsize=8)
    a2.set_xticks(ts)
    a2.set_xlabel("t_stable: step from which the correct class holds")
    a2.set_ylabel("stable-correct stimuli (count, log scale)")
    a2.set_yscale("symlog", linthresh=1)
    a2.set_ylim(0, max(10, cnt.max()) * 4)
    a2.legend(handles=[Patch(color="#1f5fbf", label="analysed: groups before the first with\n"
                             "< 1% of the t_stable = 0 count"), Patch(color="#b0b0b0", label="left out")],
              fontsize=8, loc="upper right")
    a2.set_title("When stable-correct stimuli settle", fontsize=11)
    fig.suptitle(_who(s), fontsize=10)
    return fig


def plot_drift(s):
    """Distance moved per step, per t_stable group: representations keep moving after settling."""
    fig, ax = _figure()
    drift = s["drift"]
    times = s["time"].values
    groups = [t for t in drift["t_stable"].values if np.isfinite(drift.sel(t_stable=t).values).any()]
    cmap = __import__("matplotlib").colormaps["viridis"]
    for i, t in enumerate(groups):
        y = drift.sel(t_stable=t).values[:-1]
        color = cmap(i / max(1, len(groups) - 1))
        n = int(s["t_stable_count"].sel(t_stable=t))
        ax.plot(times[1:], y, "-", lw=2, color=color, label=f"t_stable = {t} (n={n})")
        if t >= 1:
            ax.plot(t, y[t - 1], "o", ms=7, mfc="white", mec=color, mew=2)
    _steps(ax, times[1:])
    ax.set_xlabel("model step t (distance moved from step t-1)")
    ax.set_ylabel("||a(t) - a(t-1)||  (activation units)")
    if groups:
        ax.legend(fontsize=8, title="stable-correct, settled at", title_fontsize=8)
    ax.set_title(f"Representations keep moving after the prediction settles\n{_who(s)}  "
                 "(circle: step of settling)", fontsize=10)
    return fig


def _status_plot(s, var, ylabel, title):
    fig, ax = _figure()
    da = s[var]
    times = s["time"].values
    mean = s[f"{var}_mean"]
    for status, style in STATUS_STYLE.items():
        y = da.sel(status=status).values
        ok = np.isfinite(y)
        ax.plot(times[ok], y[ok], "-", lw=2, ms=8, marker=style["marker"], color=style["color"],
                label=f"{style['label']}; step mean {float(mean.sel(status=status)):.3g}")
    cutoff = int(s.attrs.get("settling_cutoff", len(times)))
    if cutoff < len(times):
        ax.axvspan(cutoff - 0.5, times[-1] + 0.5, color="grey", alpha=0.12, lw=0,
                   label="not in the step mean (settling cutoff)")
    _steps(ax, times)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8)
    ax.set_title(f"{title}\nstable-correct stimuli, {_who(s)}", fontsize=10)
    return fig


def plot_norm(s):
    """Mean L2 norm of stable-correct stimuli already in their final zone vs not yet, per step."""
    return _status_plot(s, "norm", "mean L2 norm of the representation (activation units)",
                        "Norm: representations already correct vs not yet")


def plot_peripherality(s):
    """Mean cosine with the current zone's readout vector, already correct vs not yet, per step."""
    return _status_plot(s, "peripherality", "cosine with the current zone's readout vector",
                        "Peripherality: lower = nearer the zone boundary")


def _plane(si, sj, gii, gjj, gij):
    """Coordinates in the plane of w_i, w_j from scores s_i = a.w_i, s_j = a.w_j and their Gram entries."""
    n1 = np.sqrt(max(gii + gjj - 2 * gij, 1e-300))
    x = (si - sj) / n1
    vu = (gii - gjj) / n1                       # (w_i + w_j) . u1
    n2sq = gii + gjj + 2 * gij - vu ** 2
    y = (si + sj - vu * x) / np.sqrt(n2sq) if n2sq > 1e-12 else np.zeros_like(x)
    return x, y, n1


def _pick_pair(m):
    sc = (m["category"].values == "stable-correct") & (m["t_stable"].values > 0)
    labels = m["label"].values
    start = m["zone"].values[:, 0]
    movers = sc & (start != labels)
    if movers.any():
        pairs, n = np.unique(np.stack([labels[movers], start[movers]], 1), axis=0, return_counts=True)
        i, j = pairs[np.argmax(n)]
        return int(i), int(j), movers & (labels == i) & (start == j)
    common = np.bincount(labels[labels >= 0]).argsort()[::-1]
    i, j = int(common[0]), int(common[1] if common.size > 1 else (common[0] + 1) % m.sizes["class"])
    return i, j, np.zeros(labels.size, bool)


def plot_zones(m, n_max: int = 12):
    """Readout-zone trajectories in the plane of two classes' readout vectors.

    The plane is spanned by the readout vectors ``w_i`` and ``w_j`` of the most
    common (eventual class i, starting zone j) pair among stable-correct stimuli
    that start misclassified. x runs along ``w_i - w_j``, so the i-vs-j
    boundary ``(w_i - w_j) . a + b_i - b_j = 0`` is exactly the vertical line:
    the plane shows the i-vs-j decision exactly (another class may still win
    elsewhere, and steps spent in a third class's zone are marked x). Up to
    ``n_max`` such stimuli are drawn as trajectories over the steps; grey
    points are the last-step positions of the other stimuli of classes i and j.
    """
    from matplotlib.collections import LineCollection

    fig, ax = _figure(7, 5.4)
    i, j, movers = _pick_pair(m)
    names = [str(c) for c in m["class"].values]
    w = m["readout_weight"].values
    b = m["readout_bias"].values
    g = w[[i, j]] @ w[[i, j]].T
    sc = m["scores"].values
    x, y, n1 = _plane(sc[..., i], sc[..., j], g[0, 0], g[1, 1], g[0, 1])
    boundary = -(b[i] - b[j]) / n1
    labels = m["label"].values
    rest = np.isin(labels, [i, j]) & ~movers
    ax.scatter(x[rest, -1], y[rest, -1], s=10, color="#9a9a9a", alpha=0.6, lw=0,
               label=f"other '{names[i]}' / '{names[j]}' stimuli (last step)")
    show = np.flatnonzero(movers)[:n_max]
    cmap = __import__("matplotlib").colormaps["viridis"]
    n_t = x.shape[1]
    for k in show:
        pts = np.stack([x[k], y[k]], 1)
        segs = np.stack([pts[:-1], pts[1:]], 1)
        ax.add_collection(LineCollection(segs, colors=cmap(np.linspace(0, 1, n_t - 1)), lw=1.6))
        ax.scatter(x[k], y[k], c=np.arange(n_t), cmap=cmap, vmin=0, vmax=n_t - 1, s=18, zorder=3)
        ax.plot(x[k, 0], y[k, 0], "o", ms=8, mfc="none", mec="black", zorder=4)
    zone = m["zone"].values
    elsewhere = [(k, t) for k in show for t in range(n_t) if zone[k, t] not in (i, j)]
    if elsewhere:
        ks, ts = np.array(elsewhere).T
        ax.plot(x[ks, ts], y[ks, ts], "x", ms=7, color="#444444", zorder=5, ls="none",
                label="step spent in a third class's zone")
    allx = np.concatenate([x[show].ravel(), x[rest, -1], [boundary]])
    ally = np.concatenate([y[show].ravel(), y[rest, -1]])
    if allx.size and ally.size:
        pad_x = 0.1 * (np.ptp(allx) or 1)
        pad_y = 0.1 * (np.ptp(ally) or 1)
        ax.set_xlim(allx.min() - pad_x, allx.max() + pad_x)
        ax.set_ylim(ally.min() - pad_y, ally.max() + pad_y)
    lo, hi = ax.get_xlim()
    ax.axvspan(boundary, hi, color="#2a9d3a", alpha=0.08, lw=0)
    ax.axvspan(lo, boundary, color="#b33c3c", alpha=0.08, lw=0)
    ax.axvline(boundary, color="black", lw=1.2, ls="--", label=f"'{names[i]}' vs '{names[j]}' boundary")
    ax.text(0.98, 0.97, f"zone '{names[i]}'\n(correct)", transform=ax.transAxes, ha="right", va="top",
            color="#2a9d3a", fontsize=10, weight="bold")
    ax.text(0.02, 0.97, f"zone '{names[j]}'\n(start)", transform=ax.transAxes, ha="left", va="top",
            color="#b33c3c", fontsize=10, weight="bold")
    ax.plot([], [], "o", ms=8, mfc="none", mec="black", label="step 0 of a trajectory")
    sm = __import__("matplotlib").cm.ScalarMappable(cmap=cmap)
    sm.set_clim(0, n_t - 1)
    fig.colorbar(sm, ax=ax, label="model step t", ticks=range(n_t))
    ax.set_xlabel(f"along w['{names[i]}'] - w['{names[j]}']  (activation units)")
    ax.set_ylabel("orthogonal direction in the plane (activation units)")
    ax.legend(fontsize=8, loc="best", framealpha=0.9)
    n_movers = int(movers.sum())
    ax.set_title(f"{len(show)} of {n_movers} '{names[i]}' stimuli that start in the '{names[j]}' zone "
                 f"move into their own\n{_who(m)}", fontsize=10)
    return fig


def plot_dendrogram(weight, classes=None):
    """Ward dendrogram of the class readout vectors, distance (1 - cos) / 2."""
    from scipy.cluster.hierarchy import dendrogram

    from .analysis.readout import readout_dendrogram

    d = readout_dendrogram(weight)
    names = [str(c) for c in (classes if classes is not None else d["class"].values)]
    k = len(names)
    fig, ax = _figure(max(6.4, 0.28 * k), 4.4)
    dendrogram(d["linkage"].values, labels=names, ax=ax, leaf_rotation=90, color_threshold=None)
    ax.set_ylabel("Ward linkage height\n(on (1 - cos) / 2 between readout vectors)")
    ax.set_xlabel("class")
    ax.set_title(f"Similarity of the classes' readout vectors ({k} classes)", fontsize=11)
    return fig


def show(fig) -> None:
    """Display a figure inline under Jupyter; elsewhere (a plain Python run) do nothing."""
    try:
        from IPython import get_ipython
        from IPython.display import Image, display
    except ImportError:
        return
    if get_ipython() is not None:
        import io

        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=90)
        display(Image(data=buffer.getvalue()))
