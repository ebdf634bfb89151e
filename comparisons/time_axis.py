# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # One time axis: a synthetic time-resolved recording, another network, and the mapping between them
#
# A network's `time` is a step; a recording's is milliseconds. This notebook
# makes a realistic time-resolved recording whose dynamics are those of one
# network (`lateral`), with a planted step -> ms mapping, and compares a
# *different* network (`topdown`) with it:
#
# 1. the recording: the 92 images, 6 repetitions, 10 ms bins from -50 to 220 ms
#    (27 bins), 40 V1 and 40 IT neuroids, each a fixed random linear read-out of
#    layer `v1` or `it`, responding from the planted onset of its area, with trial
#    noise (`vrnn.recordings.simulate_recording`);
# 2. the cross-temporal matrix: every layer at every step of `topdown` against
#    every 10 ms bin of the recording, with bootstrap intervals;
# 3. the mapping recovered by `fit_time_mapping` with its interval, from the
#    other network and, as a check, from the network that made the recording.
#
# Settings: `VRNN_DATA`, `VRNN_FIGURES`, `VRNN_BOOTSTRAP` (default 1000), as in
# `kriegeskorte92.py`. From the command line the comparison is
# `vrnn compare topdown.nc recording.nc -o report/ --mapping fit`.

# %%
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

import vision_rnn as vrnn
from vision_rnn.compare import figures as pc
from vision_rnn.plotting import show
from vision_rnn.analysis import TimeMapping, fit_time_mapping
from vision_rnn.compare import run_comparison

DATA = vrnn.data_dir("kriegeskorte2008")
FIGURES = Path(os.environ.get("VRNN_FIGURES") or tempfile.mkdtemp(prefix="vrnn-figures-"))
FIGURES.mkdir(parents=True, exist_ok=True)
N_BOOT = int(os.environ.get("VRNN_BOOTSTRAP", "1000"))
WORK = Path(tempfile.mkdtemp(prefix="vrnn-timeaxis-"))
PLANTED = TimeMapping(onset_ms={"v1": 50.0, "it": 95.0}, step_ms=12.0)
print(f"data: {DATA}\nfigures: {FIGURES}\nbootstrap samples: {N_BOOT}\nplanted mapping: {PLANTED.to_json()}")




# %%
def load(name):
    if name in {m.name for m in vrnn.list_models() if m.pretrained}:
        return vrnn.load_model(name), "pretrained"
    print(f"note: no pretrained weights ship for {name!r} yet: using random weights (seed 0)")
    return vrnn.load_model(name, weights="random", seed=0), "random"


stimuli = vrnn.load_stimuli(f"kriegeskorte92:{DATA}")
weights = {}
for name in ("lateral", "topdown"):
    model, weights[name] = load(name)
    vrnn.extract(model, stimuli, out=WORK / f"{name}.nc", pool="mean", progress=False).close()
with vrnn.open_activations(WORK / "lateral.nc") as tree:
    source = tree.load()                                 # in memory; the file is closed

# %% [markdown]
# ## The recording

# %%
recording = vrnn.recordings.simulate_recording(source, regions={"v1": "V1", "it": "IT"}, onset_ms=PLANTED.onset_ms,
                                           step_ms=PLANTED.step_ms, n_neuroids=40, repetitions=6, noise=1.0,
                                           bin_ms=10.0, t_start_ms=-50.0, t_stop_ms=220.0, seed=1)
vrnn.recordings.save_recording(recording, WORK / "recording.nc")
print(dict(recording.sizes))
print("bins (ms):", recording["time_bin_start"].values[0], "...", recording["time_bin_end"].values[-1])

# %% [markdown]
# ## `topdown` against the recording: the cross-temporal matrix
#
# The mapping is fitted to the recording (`mapping="fit"`): onsets of `v1` and
# `it` (the layers the regions are named after) and one step duration. Dots mark
# the step each bin is assigned to; the curves over ms follow those cells.

# %%
c = run_comparison(WORK / "topdown.nc", WORK / "recording.nc", n_bootstrap=N_BOOT, mapping="fit",
                   layers=["v1", "v4", "it"])
who = f"topdown ({weights['topdown']})"
for target in ("V1", "IT"):
    ds = c.results[target]
    for kind, fig in (("matrix", pc.plot_cross_temporal(ds, f"{who} vs simulated {target}")),
                      ("ms", pc.plot_ms(ds, f"{who} vs simulated {target}"))):
        fig.savefig(FIGURES / f"time_axis_{kind}_{target}.png", dpi=100)
        show(fig)
it = c.results["IT"]["value"].sel(layer="it")
k, t = np.unravel_index(int(np.nanargmax(it.values)), it.shape)
print(f"IT: best cell step {int(it['step'][k])} at {float(it['time'][t]):.0f} ms, rho {float(it.values[k, t]):.3f}; "
      f"before 50 ms the median |rho| is {float(np.nanmedian(np.abs(it.where(it['time'] < 50).values))):.3f}")

# %% [markdown]
# ## The recovered mapping and its interval
#
# `fit_time_mapping` scores each candidate mapping by how well the step it
# assigns to each bin matches that bin's RDM and how well it predicts the
# recording's own bin-to-bin similarity. Intervals combine a bootstrap over
# images with the 10 ms resolution of the bins. Fitted with `topdown`, the
# network compared above, and with `lateral`, the network that made the
# recording, which should recover the planted values.

# %%
fits = {"topdown (another network)": c.fit,
        "lateral (the source network)": fit_time_mapping(source, recording, regions={"v1": "V1", "it": "IT"},
                                                         n_boot=max(20, min(N_BOOT, 200)), seed=0)}
for label, fit in fits.items():
    print(f"{label}:\n{fit!r}")
    low, high = fit.settings["step_range"]
    if fit.mapping.step_ms in (low, high):
        print(f"  note: the step lies at the edge of the searched range ({low:g}-{high:g} ms): this network's "
              "steps do not pin it down")

fig = Figure(figsize=(8.4, 3.4), layout="constrained")
ax_on, ax_step = fig.subplots(1, 2, width_ratios=(2, 1))
for i, (label, fit) in enumerate(fits.items()):
    color = ("#b33c3c", "#1f5fbf")[i]
    for j, layer in enumerate(("v1", "it")):
        lo, hi = fit.ci["onset_ms"][layer]
        y = j + (i - 0.5) * 0.25
        ax_on.errorbar(fit.mapping.onset_ms[layer], y, xerr=[[fit.mapping.onset_ms[layer] - lo],
                       [hi - fit.mapping.onset_ms[layer]]], fmt="o", color=color, capsize=4,
                       label=label if j == 0 else None)
    lo, hi = fit.ci["step_ms"]
    ax_step.errorbar(i, fit.mapping.step_ms, yerr=[[fit.mapping.step_ms - lo], [hi - fit.mapping.step_ms]],
                     fmt="o", color=color, capsize=4)
for j, layer in enumerate(("v1", "it")):
    ax_on.plot(PLANTED.onset_ms[layer], j, "k*", ms=12, label="planted" if j == 0 else None)
ax_on.set_yticks([0, 1], ["v1 -> V1", "it -> IT"])
ax_on.set_xlabel("onset (ms after stimulus onset)")
ax_on.grid(alpha=0.3)
ax_on.legend(fontsize=8, loc="lower right")
ax_on.set_title("layer onsets, 95% intervals", fontsize=10)
ax_step.axhline(PLANTED.step_ms, color="black", ls="--", lw=1, label="planted")
ax_step.set_xticks([0, 1], ["topdown", "lateral"])
ax_step.set_xlim(-0.6, 1.6)
ax_step.set_ylabel("ms per model step")
ax_step.grid(alpha=0.3)
ax_step.legend(fontsize=8)
ax_step.set_title("step duration", fontsize=10)
fig.suptitle("Time mapping recovered from the simulated recording", fontsize=10)
fig.savefig(FIGURES / "time_axis_mapping.png", dpi=100)
show(fig)

# %% [markdown]
# The network that made the recording recovers the planted onsets and step
# within the intervals. Another network recovers the onsets (when stimulus
# information appears is a property of the recording) but its step duration can
# differ, because its representations change over steps at another pace: the
# step duration is a statement about a network and a recording together.

# %%
shutil.rmtree(WORK, ignore_errors=True)
print(f"figures written to {FIGURES}")
