"""Reports: the CCN23 analyses of one activation file as figures, ``summary.json`` and ``summary.md``.

:func:`analyze` is ``vrnn analyze`` and :func:`demo` is ``vrnn demo``;
:func:`network_table` writes the paper's table across networks (see
``examples/reproduce_ccn23.py``). Analysing never imports torch: only
:func:`demo`, which runs a model, does.

>>> from vision_rnn.report import analyze                              # doctest: +SKIP
>>> s = analyze("acts.nc", "report/")                                  # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from .atomic import check_set_folder, file_set
from .errors import AnalysisError, VRNNError

FIGURES = ("accuracy", "stability", "drift", "norm", "peripherality", "zones", "dendrogram", "halting")
REPORT_FILES = tuple(f"{name}.png" for name in FIGURES) + ("summary.json", "summary.md")


def _figures(s, m):
    from . import plotting as p

    makers = {"accuracy": lambda: p.plot_accuracy(s), "stability": lambda: p.plot_stability(s),
              "drift": lambda: p.plot_drift(s), "norm": lambda: p.plot_norm(s),
              "peripherality": lambda: p.plot_peripherality(s), "zones": lambda: p.plot_zones(m),
              "dendrogram": lambda: p.plot_dendrogram(m["readout_weight"], source=m),
              "halting": lambda: p.plot_halting(s)}
    return makers


def jsonable(x):
    """Plain JSON values: numpy scalars and arrays as Python numbers and lists, NaN/inf as null."""
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return jsonable(x.tolist())
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def summary_dict(s) -> dict:
    """The summary Dataset's ``to_dict()`` with NaN as None (valid JSON)."""
    return jsonable(s.to_dict())


def _fmt(x, digits=3):
    x = float(x)
    return "-" if not math.isfinite(x) else f"{x:.{digits}g}"


def _pct(x) -> str:
    x = float(x)
    return "-" if not math.isfinite(x) else f"{100 * x:.1f}"


def _readout_sentence(s) -> str:
    a = s.attrs
    own = a.get("readout_layer", "gap")
    text = (f"Accuracy and the stability categories come from the network's own readout ({own}), the "
            "paper's definition.")
    if "layer_accuracy" in s:
        text += (f" Readout zones, norm, peripherality and heading use layer {a.get('layer')} with a readout fitted "
                 "to it (its accuracy on these stimuli, and cross-validated, in the rows above).")
    return text


def summary_markdown(s) -> str:
    """``summary.md``: accuracy per step, stability categories and the CCN23 table of one network."""
    a = s.attrs
    times = s["time"].values
    free = bool(a.get("label_free"))
    who = (f"{a.get('n_stimuli')} stimuli without labels (label-free: the last step's prediction stands in "
           "for the label, so 'correct' means 'the final class', 'accuracy' is the agreement with the last "
           "step, and the categories are stable / unstable)") if free else \
        f"{a.get('n_labelled')} labelled stimuli (of {a.get('n_stimuli')})"
    lines = [f"# {a.get('model', 'network')}: layer {a.get('layer')}, {a.get('readout')} readout", "",
             f"{who}, {len(times)} steps, "
             f"{a.get('n_classes')} classes; weights: {a.get('weights')}. Step means cover steps before the "
             f"settling cutoff t = {a.get('settling_cutoff')} (the first t_stable group under 1% of "
             "t_stable = 0).", "",
             "## Agreement with the last step's prediction per step (%)" if free else "## Accuracy per step (%)", "",
             "| step | " + " | ".join(str(t) for t in times) + " |",
             "|---|" + "---|" * len(times),
             f"| network readout ({a.get('readout_layer', 'gap')}) | " +
             " | ".join(_ci(s, "accuracy", 100, time=t) for t in times) + " |"]
    if "layer_accuracy" in s:
        lines += [f"| fitted {a.get('layer')} readout | " +
                  " | ".join(f"{100 * x:.1f}" for x in s["layer_accuracy"].values) + " |",
                  f"| fitted {a.get('layer')} readout, cross-validated | " +
                  " | ".join(_pct(x) for x in s["layer_cv_accuracy"].values) + " |"]
    lines += ["", _readout_sentence(s), "",
              "## Stability of the prediction sequence", "", "| category | share (%) | count |", "|---|---|---|"]
    for c, n in zip(s["category"].values, s["category_count"].values):
        lines.append(f"| {c} | {_ci(s, 'category_share', 100, category=c)} | {n} |")
    sc, done, yet = ("Stable", "already settled", "not yet settled") if free else \
        ("Stable-correct", "already correct", "not yet correct")
    lines += ["", f"{sc} stimuli by t_stable: " +
              ", ".join(f"{t}: {n}" for t, n in zip(s["t_stable"].values, s["t_stable_count"].values)), "",
              f"## The CCN23 table ({sc.lower()} stimuli, mean over steps)", "",
              f"| measure | {done} | {yet} |", "|---|---|---|",
              f"| L2 norm | {_ci(s, 'norm_mean', status='correct')} | {_ci(s, 'norm_mean', status='not_yet')} |",
              f"| peripherality (cosine to current zone's readout vector) | "
              f"{_ci(s, 'peripherality_mean', status='correct')} | {_ci(s, 'peripherality_mean', status='not_yet')} |",
              f"| stimuli (n) | {int(s['t_stable_count'].sum())} | "
              f"{int(s['t_stable_count'].values[1:].sum())} ({_status_n(s)}) |", "",
              f"| {yet}: cosine with | eventual class | other stimuli's eventual classes |",
              "|---|---|---|",
              f"| heading | {_ci(s, 'heading', target='eventual')} | {_ci(s, 'heading', target='others')} |", ""]
    if "n_bootstrap" in a:
        lines += [f"Brackets: 95% bootstrap intervals over stimuli ({a['n_bootstrap']} samples, seed "
                  f"{a.get('bootstrap_seed')}; the settling cutoff fixed from the full sample).", ""]
    return "\n".join(lines + _claim_lines(s))


def _ci(s, name, scale=1.0, **where) -> str:
    """``value [low, high]`` of ``name`` at ``where`` (scale 100: percentages with one decimal); the
    value alone without intervals."""
    fmt = (lambda x: _pct(x / 100)) if scale == 100 else _fmt
    value = fmt(scale * float(s[name].sel(where)))
    if f"{name}_ci_low" not in s:
        return value
    low, high = (scale * float(s[f"{name}_ci_{b}"].sel(where)) for b in ("low", "high"))
    return f"{value} [{fmt(low)}, {fmt(high)}]"


def _status_n(s) -> str:
    """The not-yet stimuli per step before the cutoff, e.g. '12 to 3 per step'."""
    cutoff = int(s.attrs.get("settling_cutoff", 0))
    n = s["status_count"].sel(status="not_yet").values[:max(cutoff, 0)]
    n = n[n > 0]
    if not n.size:
        return "none before the cutoff"
    return f"{n.max()} per step" if n.max() == n.min() else f"{n.max()} to {n.min()} per step"


def _claim_lines(s) -> list:
    """summary.md: how far representations move after settling (claim 1), and halting."""
    lines = []
    if "settled_n" in s:
        after = s["after"].values
        rows = ["| mean move | " + " | ".join(_fmt(x) for x in s["settled_distance"].values) + " |",
                "| relative move (%) | " + " | ".join(_ci(s, "settled_relative", 100, after=k) for k in after) + " |",
                "| stimuli | " + " | ".join(str(int(x)) for x in s["settled_n"].values) + " |"]
        still = [f"Still moving at the last step (move > 0.1% of the norm): {_ci(s, 'still_moving', 100)}% of the "
                 f"{int(s['settled_n'].values[0]) if after.size else 0} "
                 f"{'stable' if s.attrs.get('label_free') else 'stable-correct'} stimuli."]
        if "baseline_settled_relative" in s:
            twin = s.attrs.get("baseline", "baseline")
            rows.append(f"| baseline {twin}: relative move (%) | " +
                        " | ".join(_pct(x) for x in s["baseline_settled_relative"].values) + " |")
            still.append(f"Baseline {twin}, the same stimuli and steps: {_pct(s['baseline_still_moving'])}% "
                         "still moving at the last step.")
        lines += ["## After the prediction settles (claim 1)", "",
                  f"{'Stable' if s.attrs.get('label_free') else 'Stable-correct'} stimuli, k steps after their "
                  "prediction settled (t_stable): the mean move "
                  "||a(t_stable + k) - a(t_stable + k - 1)||, and that move relative to the norm before it.", "",
                  "| k | " + " | ".join(str(k) for k in after) + " |", "|---|" + "---|" * len(after),
                  *rows, "", " ".join(still), ""]
    if "halting_accuracy" in s:
        th = s["threshold"].values
        lines += ["## When could it stop?", "",
                  "Each stimulus stops at the first step whose largest softmax probability reaches the threshold "
                  "(else at the last step); accuracy of the prediction there, and the mean stopping step "
                  "(0-based). Stopping every stimulus at step t gives the accuracy per step above.", "",
                  "| threshold | " + " | ".join(f"{x:g}" for x in th) + " |", "|---|" + "---|" * len(th),
                  "| accuracy (%) | " + " | ".join(_ci(s, "halting_accuracy", 100, threshold=x) for x in th) + " |",
                  "| mean step | " + " | ".join(_ci(s, "halting_mean_step", threshold=x) for x in th) + " |", ""]
    return lines


def network_table(summaries: dict) -> str:
    """The paper's table across networks (markdown): one row per name -> summary Dataset.

    Each number carries its 95% bootstrap interval in brackets where the summary has them
    (:func:`~vision_rnn.analysis.summarize` with ``n_bootstrap``); ``n`` counts the stimuli and the
    stable-correct ones."""
    head = ("| network | n (stable-correct) | accuracy, last step (%) | stable-correct (%) | norm: correct "
            "| norm: not yet | peripherality: correct | peripherality: not yet | heading: eventual "
            "| heading: others |")
    lines = [head, "|---" * 10 + "|"]
    for name, s in summaries.items():
        first = s["category"].values[0]                      # stable-correct (label-free: stable)
        last = s["time"].values[-1]
        row = [name, f"{int(s['category_count'].sum())} ({int(s['category_count'].values[0])})",
               _ci(s, "accuracy", 100, time=last), _ci(s, "category_share", 100, category=first),
               _ci(s, "norm_mean", status="correct"), _ci(s, "norm_mean", status="not_yet"),
               _ci(s, "peripherality_mean", status="correct"), _ci(s, "peripherality_mean", status="not_yet"),
               _ci(s, "heading", target="eventual"), _ci(s, "heading", target="others")]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n" + _claims_table(summaries)


HALT_SHOWN = 0.9             # the threshold the cross-network table reports


def _claims_table(summaries: dict) -> str:
    """Claim (1) and halting across networks (markdown), for summaries that have them; '' if none."""
    rows = []
    for name, s in summaries.items():
        if "settled_n" not in s:
            continue
        n = s["settled_n"].values
        last = int(np.flatnonzero(n > 0)[-1]) if (n > 0).any() else 0
        k1, kl = s["after"].values[0], s["after"].values[last]
        row = [name, _ci(s, "settled_relative", 100, after=k1), f"{_ci(s, 'settled_relative', 100, after=kl)} (k={kl})",
               _ci(s, "still_moving", 100)]
        if "baseline_settled_relative" in s:
            row += [_pct(s["baseline_settled_relative"].values[0]), _pct(s["baseline_settled_relative"].values[last]),
                    _pct(s["baseline_still_moving"])]
        else:
            row += ["-"] * 3
        if "halting_accuracy" in s and HALT_SHOWN in s["threshold"].values:
            row += [_ci(s, "halting_accuracy", 100, threshold=HALT_SHOWN), _ci(s, "halting_mean_step",
                                                                                 threshold=HALT_SHOWN)]
        else:
            row += ["-"] * 2
        rows.append("| " + " | ".join(row) + " |")
    if not rows:
        return ""
    head = ("| network | moved at k=1 (% of norm) | moved at the last k | still moving at the last step (%) "
            "| twin: k=1 | twin: last k | twin: still moving | halting at 0.9: accuracy (%) | mean step |")
    return "\n" + "\n".join([head, "|---" * 9 + "|"] + rows) + "\n"


def analyze(path, out, layer=None, *, baseline=None, n_bootstrap: int = 1000, seed: int = 0, overwrite=False,
            progress=False, **fit_options):
    """Analyse one activation file; write every figure (PNG), summary.json and summary.md to ``out``.

    The report's files are written as a set (see :func:`vision_rnn.atomic.file_set`): an
    interrupted run leaves ``out`` as it was, other files in ``out`` stay, and replacing
    an earlier report needs ``overwrite=True``.

    Reads only the logits and ``layer``, chunk by chunk; a layer other than the
    readout layer gets a fitted readout (see :func:`vision_rnn.analysis.fit_readout`).

    Parameters
    ----------
    path : str or os.PathLike
        The activation file (written by :func:`vision_rnn.extract`).
    out : str or os.PathLike
        The report's folder.
    layer : str, optional
        The layer to analyse; default the readout layer.
    baseline : str or os.PathLike, optional
        A baseline network's activation file over the same stimuli (e.g. the
        random-weights twin): claim (1) is reported for it beside this network
        (see :func:`vision_rnn.analysis.summary.add_baseline`).
    n_bootstrap : int, optional
        Bootstrap samples over stimuli for the 95% intervals of the table
        (``<name>_ci_low``/``<name>_ci_high``; see
        :func:`vision_rnn.analysis.summarize`); 0 for none.
    seed : int, optional
        Seed of the bootstrap.
    overwrite : bool, optional
        Replace an earlier report in ``out``.
    progress : bool, optional
        Show progress bars.
    **fit_options
        Passed to :func:`vision_rnn.analysis.fit_readout` for a layer other than
        the readout layer.

    Returns
    -------
    xarray.Dataset
        The summary (:func:`vision_rnn.analysis.summarize`), with ``attrs['source']``
        the activation file.

    Examples
    --------
    >>> analyze("acts.nc", "report/", layer="v4")                    # doctest: +SKIP
    """
    from tqdm.auto import tqdm

    from .analysis._chunks import small_chunk_cache
    from .analysis.summary import readout_measures, summarize
    from .store import open_activations, refuse_damaged

    path, out = Path(path), Path(out)
    check_set_folder(out, REPORT_FILES, overwrite)
    with small_chunk_cache():
        tree = open_activations(path)
    try:
        if layer is not None and layer not in tree.children:
            raise VRNNError(f"`layer={layer}`: not in {path}; it has {', '.join(tree.children)}")
        with refuse_damaged(path):
            m = readout_measures(tree, layer, progress=progress, **fit_options)
    except AnalysisError as e:
        raise AnalysisError(f"{path}: {e}") from None
    finally:
        tree.close()
    s = summarize(m, n_bootstrap, seed, baseline)
    s.attrs["source"] = str(path)
    with file_set(out, owns=REPORT_FILES) as tmp:      # the old report or the whole new one, never a mix
        for name, make in tqdm(_figures(s, m).items(), desc="figures", unit="fig", disable=not progress):
            make().savefig(tmp / f"{name}.png", dpi=110, format="png")
        (tmp / "summary.json").write_text(json.dumps(summary_dict(s), indent=1))
        (tmp / "summary.md").write_text(summary_markdown(s))
    return s


def accuracy_line(s) -> str:
    """'accuracy per step (%): 12.0 15.5 ...' for printing; with a fitted readout, one line more for it."""
    what = "agreement with the last step per step (%, label-free)" if s.attrs.get("label_free") else \
        "accuracy per step (%)"
    line = f"{what}: " + " ".join(f"{100 * x:.1f}" for x in s["accuracy"].values)
    if "layer_accuracy" not in s:
        return line
    layer = s.attrs.get("layer")
    return (f"{line}  (network readout {s.attrs.get('readout_layer', 'gap')})\n"
            f"fitted {layer} readout, cross-validated accuracy per step (%): " +
            " ".join(_pct(x) for x in s["layer_cv_accuracy"].values))


def demo(weights: str = "pretrained", out="vrnn-demo", limit: int | None = None, *, n_bootstrap: int = 1000,
         overwrite=False, progress=False, model: str = "lateral"):
    """The default end to end: extract Fashion-MNIST with a shipped tiny model (``lateral``), analyse it.

    Writes ``<model>_fashion-mnist.nc`` (every layer at every step) and the report to
    ``out``. An earlier demo in ``out`` is replaced only with ``overwrite=True``.

    Parameters
    ----------
    weights : str, optional
        Weights of the model (see :func:`vision_rnn.load_model`):
        ``"pretrained"``, ``"random"`` or a weights file.
    out : str or os.PathLike, optional
        The folder for the activation file and the report.
    limit : int, optional
        Take that many evenly spaced images of the 500 (at least 2); default all.
    n_bootstrap : int, optional
        Bootstrap samples for the table's 95% intervals (see :func:`analyze`).
    overwrite : bool, optional
        Replace an earlier demo in ``out``.
    progress : bool, optional
        Show progress bars.
    model : str, optional
        A ``tiny`` model name (the Fashion-MNIST networks: ``vrnn models``), e.g.
        ``"cornet-rt"``.

    Returns
    -------
    xarray.Dataset
        The summary Dataset, as :func:`analyze` returns it.

    Examples
    --------
    >>> s = demo(weights="random", out="demo", limit=50)              # doctest: +SKIP
    """
    from .extract import extract
    from .models import load_model
    from .models.registry import DEFAULT_PRESET, split_name
    from .stimuli import load_stimuli

    preset, variant = split_name(model)
    if preset != DEFAULT_PRESET:
        raise VRNNError(f"`model={model}`: the demo runs the {DEFAULT_PRESET} Fashion-MNIST networks; for "
                        f"{preset} use vrnn extract on its own stimuli, then vrnn analyze")
    out = Path(out)
    check_set_folder(out, REPORT_FILES, overwrite)
    acts = out / f"{variant}_fashion-mnist.nc"
    for left in (acts, acts.with_name(acts.name + ".partial")):
        if left.exists() and not overwrite:
            raise VRNNError(f"`out={out}`: holds {left.name} from an earlier demo; pass `overwrite=True` to replace it "
                            "or choose another `out`")
    net = load_model(variant, weights=weights)
    stim = load_stimuli("builtin:fashion-mnist")
    if limit is not None:
        if limit < 2:
            raise VRNNError(f"`limit={limit}`: needs at least 2 images")
        stim = stim.subset(np.unique(np.linspace(0, len(stim) - 1, min(limit, len(stim))).round().astype(int)))
    out.mkdir(exist_ok=True)
    extract(net, stim, out=acts, overwrite=overwrite, progress=progress).close()
    return analyze(acts, out, n_bootstrap=n_bootstrap, overwrite=overwrite, progress=progress)
