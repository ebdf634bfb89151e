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
# # From a BrainIO assembly to a comparison, end to end
#
# Brain-Score distributes neural recordings as BrainIO *assemblies*: netCDF
# files holding one array `presentation x neuroid x time_bin`, with the stimulus
# of each presentation in `stimulus_id` (older files: `image_id`) and the bins in
# `time_bin_start` / `time_bin_end` (ms). This notebook writes the synthetic
# time-resolved recording of `time_axis.py` in that layout, shows what is in the
# file, loads it back with `vrnn.recordings.load_recording` and runs `vrnn compare`
# on it, so a lab with Brain-Score data can follow the same path with its own
# assembly (fetched with `brainio` / `brainscore_vision` and saved with
# `assembly.to_netcdf(...)`; vision-rnn itself never downloads anything).
#
# Settings: `VRNN_DATA`, `VRNN_FIGURES`, `VRNN_BOOTSTRAP` (default 1000).

# %%
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

import vision_rnn as vrnn
from vision_rnn.compare import figures as pc
from vision_rnn.plotting import show
from vision_rnn.recordings.brainio import save_brainio

DATA = vrnn.data_dir("kriegeskorte2008")
FIGURES = Path(os.environ.get("VRNN_FIGURES") or tempfile.mkdtemp(prefix="vrnn-figures-"))
FIGURES.mkdir(parents=True, exist_ok=True)
N_BOOT = int(os.environ.get("VRNN_BOOTSTRAP", "1000"))
WORK = Path(tempfile.mkdtemp(prefix="vrnn-brainio-"))
print(f"data: {DATA}\nfigures: {FIGURES}\nbootstrap samples: {N_BOOT}")




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
recording = vrnn.recordings.simulate_recording(source, regions={"v1": "V1", "it": "IT"}, onset_ms={"v1": 50, "it": 95},
                                           step_ms=12.0, n_neuroids=40, repetitions=6, bin_ms=10.0,
                                           t_start_ms=-50.0, t_stop_ms=220.0, seed=1)

# %% [markdown]
# ## Writing the assembly
#
# `vision_rnn.recordings.save_brainio` turns the recording (stimulus, repetition,
# time, neuroid) into presentations: one per stimulus and repetition, each with
# its `stimulus_id` and `repetition`; neuroids keep `region`.

# %%
assembly_path = save_brainio(recording, WORK / "simulated_assembly.nc")
with xr.open_dataset(assembly_path) as raw:
    print(raw)
    print("first presentations:", list(zip(raw["stimulus_id"].values[:3].tolist(),
                                           raw["repetition"].values[:3].tolist())))

# %% [markdown]
# ## Loading it back
#
# `load_recording` numbers the presentations of each stimulus 0, 1, ... in order
# of appearance into a `repetition` dim and turns the bin edges into `time`
# (bin centres, ms). The round trip gives back the recording value for value.

# %%
loaded = vrnn.recordings.load_recording(assembly_path)
print(dict(loaded.sizes), "| source format:", loaded.attrs["source_format"])
np.testing.assert_array_equal(loaded.transpose(*recording.dims).values, recording.values)
np.testing.assert_array_equal(loaded["time"].values, recording["time"].values)
print("round trip: identical values, stimuli, bins and regions")

# %% [markdown]
# ## The same comparison, from the command line
#
# `vrnn compare` reads the assembly directly. `--mapping fit` fits the onsets of
# `v1` and `it` (named like the regions V1 and IT) and the step duration;
# `--encoding` adds cross-validated ridge encoding models of every neuroid.

# %%
report = FIGURES / "brainio_report"
cmd = [sys.executable, "-m", "vision_rnn", "compare", str(WORK / "topdown.nc"), str(assembly_path), "-o", str(report),
       "--layers", "v1,it", "--bootstrap", str(N_BOOT), "--mapping", "fit", "--encoding", "--overwrite"]
print("$ vrnn " + " ".join(cmd[3:]))
done = subprocess.run(cmd, capture_output=True, text=True)
print(done.stdout.strip() or done.stderr.strip().splitlines()[-1])
assert done.returncode == 0, done.stderr
print(sorted(p.name for p in report.iterdir()))

# %%
table = pd.read_csv(report / "comparison.csv")
print(table.query("target == 'IT' and layer == 'it' and mapped == 1")[
    ["time_ms", "step", "value", "ci_low", "ci_high"]].round(3).to_string(index=False))
encoding = pd.read_csv(report / "encoding.csv")
late = encoding.query("target == 'IT' and time_ms >= 150").groupby("layer")["median_r_corrected"].max()
print("best median noise-corrected encoding score of IT neuroids after 150 ms:", late.round(3).to_dict())

# %% [markdown]
# The report's `comparison.nc` holds the whole comparison as one DataTree: a
# group per target with its cross-temporal matrix (and an `encoding` group),
# the settings in the root's attributes, ready for further analysis or plotting:

# %%
tree = xr.open_datatree(report / "comparison.nc")
print("settings:", {k: tree.attrs[k] for k in ("recording", "rdm", "method", "n_matched")})
it = tree["IT"].to_dataset().load()
tree.close()
it.attrs = dict(it.attrs, n_bootstrap=int(it.attrs["n_bootstrap"]))
fig = pc.plot_ms(it, f"topdown ({weights['topdown']}) vs the BrainIO assembly, IT")
fig.savefig(FIGURES / "brainio_ms_IT.png", dpi=100)
show(fig)
print(f"{int(it['mapped'].sum())} mapped cells; report and figures in {FIGURES}")
shutil.rmtree(WORK, ignore_errors=True)
