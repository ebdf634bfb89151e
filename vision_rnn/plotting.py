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

__all__ = ["show", "fit_titles", "pick_zone_pair", "wilson_interval", "plot_accuracy", "plot_dendrogram", "plot_drift",
           "plot_halting", "plot_norm", "plot_peripherality",
           "plot_stability", "plot_zones"]

STATUS_STYLE = {"correct": dict(color="#1f5fbf", marker="^", label="already in final zone (correct)"),
                "not_yet": dict(color="#2a9d3a", marker="o", label="not yet in final zone (incorrect)")}
CATEGORY_COLORS = ("#1f5fbf", "#7aa6e0", "#e07a1f", "#b33c3c")


def fit_titles(fig, margin: float = 3.0):
    """Wrap the figure's and the axes' titles at word boundaries until each lies inside the canvas.

    Constrained layout makes room for titles vertically but never shortens one
    that is wider than the figure; this measures every title as drawn (after
    layout) and rewraps the lines that would be cut at the left or right edge.
    Returns ``fig``. Every figure function of :mod:`vision_rnn.plotting` and
    :mod:`vision_rnn.compare.figures` ends with it.
    """
    import textwrap

    from matplotlib.backends.backend_agg import FigureCanvasAgg

    if not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)
    renderer = fig.canvas.get_renderer()
    titles = [getattr(fig, "_suptitle", None)]
    for ax in fig.axes:
        titles += [ax.title, getattr(ax, "_left_title", None), getattr(ax, "_right_title", None)]
    titles = [t for t in titles if t is not None]
    for _ in range(8):
        fig.draw_without_rendering()
        width = fig.bbox.width
        changed = False
        for t in titles:
            if not t.get_visible() or not t.get_text().strip():
                continue
            box = t.get_window_extent(renderer)
            if box.x0 >= margin and box.x1 <= width - margin:
                continue
            align = t.get_horizontalalignment()
            if align == "left":
                room = width - margin - box.x0
            elif align == "right":
                room = box.x1 - margin
            else:
                centre = (box.x0 + box.x1) / 2
                room = 2 * (min(centre, width - centre) - margin)
            lines = t.get_text().split("\n")
            longest = max(len(line) for line in lines)
            chars = max(8, min(longest - 1, int(longest * room / max(box.width, 1.0) * 0.97)))
            t.set_text("\n".join(textwrap.fill(line, chars, break_on_hyphens=False) if len(line) > chars
                                 else line for line in lines))
            changed = True
        if not changed:
            break
    return fig


def _figure(width=6.4, height=4.2, ncols=1):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    axes = fig.subplots(1, ncols)
    return fig, axes


def _who(ds, categories=False) -> str:
    """'<model>[, <weights> weights], layer <layer>'; with ``categories`` the readout that defines them."""
    model = ds.attrs.get("model") or "network"
    weights = ds.attrs.get("weights")
    layer = ds.attrs.get("layer", "")
    extra = f", {weights} weights" if weights and weights != "pretrained" and "/" not in weights else ""
    if categories:
        return f"{model}{extra}: categories from the network's readout ({ds.attrs.get('readout_layer', 'gap')})"
    return f"{model}{extra}, layer {layer}" if layer else f"{model}{extra}"


def _fitted(ds) -> bool:
    return str(ds.attrs.get("readout", "stored")) != "stored"


def _legend_below(fig, ax, ncols=2, **kwargs):
    """The axes' legend below the axes, outside the data (constrained layout makes room for it)."""
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncols=ncols, fontsize=8, frameon=False, **kwargs)


def _steps(ax, times):
    ax.set_xticks(times)
    ax.set_xlabel("model step t")
    ax.grid(alpha=0.3)


def wilson_interval(p, n: int, z: float = 1.96):
    """Wilson score interval of binomial proportions ``p`` observed on ``n`` trials -> (low, high)."""
    p = np.asarray(p, dtype=np.float64)
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return np.clip(centre - half, 0.0, 1.0), np.clip(centre + half, 0.0, 1.0)      # 0 and 1 exactly at the ends


def plot_accuracy(s):
    """Accuracy at every model step with its 95% interval, on an axis scaled to the data; chance marked.

    The network's own readout gives the accuracy and the stability categories (the
    paper's definition). For a layer analysed with a fitted readout, that readout's
    accuracy per step (the zones of the other figures) and its cross-validated
    accuracy are drawn as separate curves.
    """
    fig, ax = _figure(6.4, 4.8)
    times = s["time"].values
    n = int(s.attrs.get("n_labelled") or 0)
    acc = s["accuracy"].values * 100
    readout_layer = s.attrs.get("readout_layer", "gap")
    fitted = "layer_accuracy" in s
    label = f"network's readout ({readout_layer})" + (": defines the stability categories" if fitted else "")
    ax.plot(times, acc, "o-", color="#1f5fbf", lw=2, label=label)
    shown = [acc]
    if n:
        low, high = (100 * b for b in wilson_interval(s["accuracy"].values, n))
        ax.fill_between(times, low, high, color="#1f5fbf", alpha=0.15, lw=0,
                        label=f"95% binomial (Wilson) interval, n = {n}")
        shown += [low, high]
    if fitted:
        layer = s.attrs.get("layer")
        folds = s.attrs.get("fit_cv_folds")
        ax.plot(times, s["layer_accuracy"].values * 100, "s-", color="#c2306b", lw=1.8, ms=5,
                label=f"fitted {layer} readout (its zones in these figures)")
        ax.plot(times, s["layer_cv_accuracy"].values * 100, "s--", color="#c2306b", lw=1.5, ms=5, mfc="white",
                label=f"fitted {layer} readout, cross-validated" + (f" ({folds}-fold)" if folds else ""))
        shown += [s["layer_accuracy"].values * 100, s["layer_cv_accuracy"].values * 100]
    best = int(np.nanargmax(acc))
    ax.plot(times[best], acc[best], "o", ms=12, mfc="none", mec="black",
            label=f"max {acc[best]:.1f}% at t = {times[best]}")
    values = np.concatenate([np.ravel(v) for v in shown])
    values = values[np.isfinite(values)]
    lo, hi = (values.min(), values.max()) if values.size else (0.0, 100.0)
    pad = max(0.12 * (hi - lo), 0.5)
    bottom, top = max(-1.0, lo - pad), min(101.0, hi + pad)      # markers at 0% or 100% stay whole
    ax.set_ylim(bottom, top)
    k = s.attrs.get("n_classes")
    if k:
        chance = 100 / k
        if bottom <= chance <= top:
            ax.axhline(chance, color="grey", ls="--", lw=1, label=f"chance {chance:.3g}% (1/{k})")
        else:
            where = "below" if chance < bottom else "above"
            ax.plot([], [], color="grey", ls="--", lw=1, label=f"chance {chance:.3g}% (1/{k}), {where} the axis")
    _steps(ax, times)
    ax.set_ylabel(f"accuracy (% of {n} labelled stimuli)" if n else "accuracy (% of labelled stimuli)")
    if s.attrs.get("label_free"):
        ax.set_ylabel(f"agreement with the last step (% of {n}, no labels)")
    _legend_below(fig, ax)
    what = f"network readout {readout_layer} and fitted {s.attrs.get('layer')} readout" if fitted else \
        f"layer {s.attrs.get('layer', readout_layer)}"
    who = _who(s).rsplit(", layer ", 1)[0]
    head = "Agreement with the final prediction over steps (no labels)" if s.attrs.get("label_free") else \
        "Categorisation accuracy over steps"
    ax.set_title(f"{head}\n{who}, {what}", fontsize=10)
    return fit_titles(fig)


def plot_halting(s):
    """When could the network stop? Halting at a softmax confidence against a fixed number of steps.

    Each threshold theta gives one point: the accuracy of the predictions at each
    stimulus's halting step (the first step whose largest softmax probability
    reaches theta) against the mean halting step; the fixed-step accuracy curve
    is drawn on the same axes, so a point above the curve is a better trade of
    accuracy for steps than stopping every stimulus at one step.
    """
    fig, ax = _figure(6.8, 4.6)
    times = s["time"].values
    n = int(s.attrs.get("n_labelled") or 0)
    ax.plot(times, s["accuracy"].values * 100, "o-", color="#1f5fbf", lw=2, label="every stimulus stops at step t")
    if "halting_accuracy" in s:
        x, y = s["halting_mean_step"].values, s["halting_accuracy"].values * 100
        ax.plot(x, y, "D-", color="#d95f02", lw=1.8, ms=6,
                label="each stimulus stops once max softmax >= theta\n(x: its mean stopping step)")
        for th, xi, yi in zip(s["threshold"].values, x, y):
            ax.annotate(f"{th:g}", (xi, yi), textcoords="offset points", xytext=(4, -11), fontsize=7.5,
                        color="#d95f02")
    else:
        ax.text(0.5, 0.5, "no halting results in this summary", transform=ax.transAxes, ha="center",
                va="center", color="grey")
    _steps(ax, times)
    ax.set_xlabel("model steps taken (0-based step index)")
    ax.set_ylabel(f"accuracy (% of {n} labelled stimuli)" if n else "accuracy (% of labelled stimuli)")
    if s.attrs.get("label_free"):
        ax.set_ylabel(f"agreement with the last step (% of {n}, no labels)")
    _legend_below(fig, ax)
    who = _who(s).rsplit(", layer ", 1)[0]
    ax.set_title(f"When could it stop? Confidence-based halting vs a fixed number of steps\n{who}", fontsize=10)
    return fit_titles(fig)


def plot_stability(s):
    """Share of each stability category, and at which step stable-correct stimuli settle."""
    fig, (a1, a2) = _figure(10, 4.4, ncols=2)
    cats = [str(c) for c in s["category"].values]
    share = s["category_share"].values * 100
    counts = s["category_count"].values
    bars = a1.bar(range(len(cats)), share, color=CATEGORY_COLORS)
    for bar, n, p in zip(bars, counts, share):
        a1.text(bar.get_x() + bar.get_width() / 2, p + 1, f"{p:.1f}%\n(n={n})", ha="center", va="bottom", fontsize=9)
    a1.set_xticks(range(len(cats)), [c.replace("-", "\n") for c in cats])
    a1.set_xlabel("category of the prediction sequence")
    free = bool(s.attrs.get("label_free"))
    which = "stimuli, no labels" if free else "labelled stimuli"
    a1.set_ylabel(f"share of {which.split(',')[0]} (%)")
    a1.set_ylim(0, min(115, max(share) * 1.3 + 5))
    a1.set_title(f"Stability of the prediction sequence ({int(counts.sum())} {which})", fontsize=11)
    ts = s["t_stable"].values
    cnt = s["t_stable_count"].values
    cutoff = int(s.attrs.get("settling_cutoff", len(ts)))
    from matplotlib.patches import Patch

    colors = ["#1f5fbf" if t < cutoff else "#b0b0b0" for t in ts]
    bars = a2.bar(ts, cnt, color=colors)
    for bar, n in zip(bars, cnt):
        a2.text(bar.get_x() + bar.get_width() / 2, n * 1.05, str(n), ha="center", va="bottom", fontsize=8)
    a2.set_xticks(ts)
    a2.set_xlabel("t_stable: step from which the final class holds" if free else
                  "t_stable: step from which the correct class holds")
    a2.set_ylabel(f"{'stable' if free else 'stable-correct'} stimuli (count, log scale)")
    a2.set_yscale("symlog", linthresh=1)
    a2.set_ylim(0, max(10, cnt.max()) * 4)
    a2.legend(handles=[Patch(color="#1f5fbf", label="analysed: groups before the first with\n"
                             "< 1% of the t_stable = 0 count"), Patch(color="#b0b0b0", label="left out")],
              fontsize=8, loc="upper right")
    a2.set_title("When stable stimuli settle" if free else "When stable-correct stimuli settle", fontsize=11)
    fig.suptitle(_who(s, categories=True), fontsize=10)
    return fit_titles(fig)


def plot_drift(s):
    """Distance moved per step, per t_stable group: representations keep moving after settling."""
    fig, ax = _figure(7.2, 4.4)
    drift = s["drift"]
    times = s["time"].values
    groups = [t for t in drift["t_stable"].values if np.isfinite(drift.sel(t_stable=t).values).any()]
    cmap = __import__("matplotlib").colormaps["viridis"]
    circles = False
    kept = s["before_cutoff"] if "before_cutoff" in s.coords else None
    for i, t in enumerate(groups):
        y = drift.sel(t_stable=t).values[:-1]
        color = cmap(i / max(1, len(groups) - 1))
        n = int(s["t_stable_count"].sel(t_stable=t))
        before = kept is None or bool(kept.sel(t_stable=t))
        ax.plot(times[1:], y, "-" if before else "--", lw=2 if before else 1.4, color=color,
                label=f"t_stable = {t} (n={n})" + ("" if before else ", after the 1% cutoff"))
        if t >= 1:
            ax.plot(t, y[t - 1], "o", ms=7, mfc="white", mec=color, mew=2)
            circles = True
    if circles:
        ax.plot([], [], "o", ms=7, mfc="white", mec="black", mew=2, ls="none",
                label="move into the step of settling")
    _steps(ax, times[1:])
    ax.set_xlabel("model step t (distance moved from step t-1)")
    ax.set_ylabel("||a(t) - a(t-1)||  (activation units)")
    if groups:
        handles, labels = ax.get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside right upper", fontsize=8, frameon=False,
                   title=("stable" if s.attrs.get("label_free") else "stable-correct") + " stimuli\nsettled at", title_fontsize=8)
    else:
        ax.text(0.5, 0.5, "no stable-correct stimulus settles before the last step", transform=ax.transAxes,
                ha="center", va="center", color="grey")
    ax.set_title(f"Representations keep moving after the prediction settles\n{_who(s)}", fontsize=10)
    return fit_titles(fig)


def _status_plot(s, var, ylabel, title):
    fig, ax = _figure(6.8, 4.8)
    da = s[var]
    times = s["time"].values
    mean = s[f"{var}_mean"]
    counts = s["status_count"] if "status_count" in s else None
    biggest = max(1, int(counts.max())) if counts is not None else 1
    for status, style in STATUS_STYLE.items():
        y = da.sel(status=status).values
        ok = np.isfinite(y)
        ax.plot(times[ok], y[ok], "-", lw=1.8, color=style["color"])
        ax.plot([], [], "-", lw=1.8, color=style["color"], marker=style["marker"], ms=7,
                label=f"{style['label']}; step mean {float(mean.sel(status=status)):.3g}")
        if counts is None:
            continue
        n = counts.sel(status=status).values
        for t, yy, nn in zip(times[ok], y[ok], n[ok]):
            size = 4 + 8 * np.sqrt(nn / biggest)
            ax.plot(t, yy, marker=style["marker"], ms=size, color=style["color"],
                    mfc=style["color"] if nn >= 10 else "white", mew=1.5)
            lift = size / 2 + 4
            ax.annotate(str(int(nn)), (t, yy), textcoords="offset points", fontsize=7, color=style["color"],
                        xytext=(0, lift if status == "correct" else -lift), ha="center",
                        va="bottom" if status == "correct" else "top")
    if counts is not None:
        ax.plot([], [], "o", ms=6, mfc="white", mec="grey", mew=1.5, ls="none",
                label="numbers: stimuli in the group at the step (marker area ~ n; open: n < 10)")
    cutoff = int(s.attrs.get("settling_cutoff", len(times)))
    if cutoff < len(times):
        ax.axvspan(cutoff - 0.5, times[-1] + 0.5, color="grey", alpha=0.12, lw=0,
                   label="not in the step mean (settling cutoff)")
    _steps(ax, times)
    ax.margins(y=0.15)
    ax.set_ylabel(ylabel)
    _legend_below(fig, ax, ncols=1)
    ax.set_title(f"{title}\nstable-correct stimuli, {_who(s)}", fontsize=10)
    return fit_titles(fig)


def plot_norm(s):
    """Mean L2 norm of stable-correct stimuli already in their final zone vs not yet, per step."""
    return _status_plot(s, "norm", "mean L2 norm of the representation\n(activation units)",
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


def pick_zone_pair(m):
    """The (eventual class i, starting zone j) pair of the zone figure -> (i, j, movers, pool).

    Movers are labelled stimuli that start outside their class's zone (in the
    layer's readout) and end in it. Stable-correct movers are preferred (``pool``
    ``"stable-correct"``), then any labelled ones (``"labelled"``); the pair is the
    most common (class, starting zone) among them. Without any mover (``pool`` None)
    the two most common classes are returned with no movers.
    """
    labels = m["label"].values
    zone = m["zone"].values
    start, end = zone[:, 0], zone[:, -1]
    moves = (labels >= 0) & (start != labels) & (end == labels)
    sc = m["category"].values == "stable-correct"
    for pool, name in ((moves & sc, "stable-correct"), (moves, "labelled")):
        if pool.any():
            pairs, n = np.unique(np.stack([labels[pool], start[pool]], 1), axis=0, return_counts=True)
            i, j = pairs[np.argmax(n)]
            return int(i), int(j), pool & (labels == i) & (start == j), name
    common = np.bincount(labels[labels >= 0]).argsort()[::-1]
    i, j = int(common[0]), int(common[1] if common.size > 1 else (common[0] + 1) % m.sizes["class"])
    return i, j, np.zeros(labels.size, bool), None


def plot_zones(m, n_max: int = 12):
    """Readout-zone trajectories in the plane of two classes' readout vectors.

    The plane is spanned by the readout vectors ``w_i`` and ``w_j`` of the most
    common (eventual class i, starting zone j) pair among stimuli that start
    outside their class's zone and end in it (stable-correct ones first; see
    :func:`pick_zone_pair`). x runs along ``w_i - w_j``, so the i-vs-j
    boundary ``(w_i - w_j) . a + b_i - b_j = 0`` is exactly the vertical line:
    the plane shows the i-vs-j decision exactly (another class may still win
    elsewhere, and steps spent in a third class's zone are marked x). Up to
    ``n_max`` such stimuli are drawn as trajectories over the steps; grey
    points are the last-step positions of the other stimuli of classes i and j.
    Without any such stimulus the figure says so and shows those positions only.
    """
    from matplotlib.collections import LineCollection

    fig, ax = _figure(7, 5.8)
    i, j, movers, pool = pick_zone_pair(m)
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
               label=("other " if movers.any() else "") + f"'{names[i]}' / '{names[j]}' stimuli (last step)")
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
    ax.set_title(f"zone '{names[j]}'" + (" (start)" if show.size else ""), loc="left", color="#b33c3c",
                 fontsize=10, weight="bold")
    ax.set_title(f"zone '{names[i]}'" + (" (correct)" if show.size else ""), loc="right", color="#2a9d3a",
                 fontsize=10, weight="bold")
    if show.size:
        ax.plot([], [], "o", ms=8, mfc="none", mec="black", ls="none", label="step 0 of a trajectory")
        sm = __import__("matplotlib").cm.ScalarMappable(cmap=cmap)
        sm.set_clim(0, n_t - 1)
        fig.colorbar(sm, ax=ax, label="model step t", ticks=range(n_t))
    ax.set_xlabel(f"along w['{names[i]}'] - w['{names[j]}']  (activation units)")
    ax.set_ylabel("orthogonal direction in the plane (activation units)")
    _legend_below(fig, ax)
    readout = "fitted readout" if _fitted(m) else "readout"
    if pool is None:
        what = (f"No labelled stimulus starts outside its class's zone and ends in it ({readout} of layer "
                f"{m.attrs.get('layer', '')}): last-step positions of '{names[i]}' and '{names[j]}'")
    else:
        which = "stable-correct " if pool == "stable-correct" else ""
        what = (f"{len(show)} of {int(movers.sum())} {which}'{names[i]}' stimuli start in the '{names[j]}' zone "
                f"and move into their own")
        if pool == "labelled":
            what += " (no stable-correct stimulus does)"
    fig.suptitle(f"{what}\n{_who(m)}", fontsize=10)
    return fit_titles(fig)


def plot_dendrogram(weight, classes=None, *, source=None):
    """Ward dendrogram of the class readout vectors, distance (1 - cos) / 2.

    ``source`` (the Dataset of :func:`~vision_rnn.analysis.readout_measures`, or
    any Dataset with ``model``, ``layer`` and ``readout`` attributes) names the
    network, the layer and the readout in the title.
    """
    from scipy.cluster.hierarchy import dendrogram

    from .analysis.readout import readout_dendrogram

    w = np.asarray(weight.values if hasattr(weight, "values") else weight, dtype=np.float64)
    names = [str(c) for c in (classes if classes is not None else
                              (weight["class"].values if hasattr(weight, "coords") and "class" in weight.coords
                               else range(w.shape[0])))]
    kept = np.flatnonzero(np.abs(w).sum(axis=1) > 0) if w.ndim == 2 else np.arange(len(names))
    left_out = len(names) - kept.size          # classes a fitted readout never saw: no direction to compare
    if w.ndim == 2 and left_out and kept.size >= 2:
        w, names = w[kept], [names[i] for i in kept]
    d = readout_dendrogram(w if w.ndim == 2 else weight)
    k = len(names)
    fig, ax = _figure(max(6.4, 0.28 * k), 4.6)
    dendrogram(d["linkage"].values, labels=names, ax=ax, leaf_rotation=90, color_threshold=None)
    ax.set_ylabel("Ward linkage height\n(on (1 - cos) / 2 between readout vectors)")
    ax.set_xlabel("class")
    title = f"Similarity of the classes' readout vectors ({k} classes" + \
        (f"; {left_out} without stimuli left out)" if left_out else ")")
    if source is not None:
        readout = str(source.attrs.get("readout", "stored"))
        layer = source.attrs.get("layer", "")
        how = (f"the network's readout of layer {layer}" if readout == "stored"
               else "readout " + readout.replace("fitted", f"fitted to layer {layer}", 1))
        title += f"\n{_who(source).rsplit(', layer ', 1)[0]}: {how}"
    ax.set_title(title, fontsize=10)
    return fit_titles(fig)


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
