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
# # The shipped networks against monkey and human IT (the 92-image set)
#
# Every layer at every step of the five shipped networks is compared with the
# representational dissimilarity matrices (RDMs) that the 92 object images of
# Kriegeskorte et al. (2008) evoke in monkey IT (674 neurons, Kiani et al. 2007)
# and in human IT (fMRI, 4 subjects, each subject's two sessions averaged).
# Model RDMs are 1 - Pearson r between the spatially pooled activations of two
# images; RDMs are compared with Spearman's rho; the bands are 95% bootstrap
# intervals over images; the grey band is the noise ceiling of the human data
# (rsatoolbox's lower and upper bound across the 4 subjects). The monkey RDM is a
# single matrix, so it has no ceiling.
#
# Settings come from the environment: `VRNN_DATA` (the shared data folder, else
# `../shared/data`), `VRNN_FIGURES` (where figures go, else a new temporary
# folder) and `VRNN_BOOTSTRAP` (bootstrap samples, default 1000).
# The same numbers come from the command line:
#
# ```bash
# vrnn extract --model lateral --stimuli kriegeskorte92:$VRNN_DATA/kriegeskorte2008 --pool mean -o k92.nc
# vrnn compare k92.nc kriegeskorte92:$VRNN_DATA/kriegeskorte2008 -o k92_report/
# ```

# %%
import os
import shutil
import tempfile
from pathlib import Path

import vision_rnn as vrnn
from vision_rnn.compare import figures as pc
from vision_rnn.plotting import show
from vision_rnn.compare import run_comparison
from vision_rnn.compare import step_curve

DATA = vrnn.data_dir("kriegeskorte2008")
FIGURES = Path(os.environ.get("VRNN_FIGURES") or tempfile.mkdtemp(prefix="vrnn-figures-"))
FIGURES.mkdir(parents=True, exist_ok=True)
N_BOOT = int(os.environ.get("VRNN_BOOTSTRAP", "1000"))
WORK = Path(tempfile.mkdtemp(prefix="vrnn-k92-"))
MODELS = ["feedforward", "lateral", "topdown", "lateral-mult", "topdown-mult"]
print(f"data: {DATA}\nfigures: {FIGURES}\nbootstrap samples: {N_BOOT}")




# %% [markdown]
# ## Activations of every network for the 92 images
#
# Pretrained weights are used where `vrnn.list_models()` lists them; otherwise the
# network runs with random weights (seed 0) and the output says so.

# %%
def load(name):
    pretrained = {m.name for m in vrnn.list_models() if m.pretrained}
    if name in pretrained:
        return vrnn.load_model(name), "pretrained"
    print(f"note: no pretrained weights ship for {name!r} yet: using random weights (seed 0)")
    return vrnn.load_model(name, weights="random", seed=0), "random"


stimuli = vrnn.load_stimuli(f"kriegeskorte92:{DATA}")
weights = {}
for name in MODELS:
    model, weights[name] = load(name)
    tree = vrnn.extract(model, stimuli, out=WORK / f"{name}.nc", pool="mean", progress=False)
    print(f"{name}: {len(stimuli)} images, layers {', '.join(tree.children)}, {tree.sizes['time']} steps")
    tree.close()
    del tree

# %% [markdown]
# ## Every layer at every step against monkey and human IT

# %%
results = {name: run_comparison(WORK / f"{name}.nc", f"kriegeskorte92:{DATA}", n_bootstrap=N_BOOT)
           for name in MODELS}
labels = {name: f"{name} ({weights[name]})" for name in MODELS}
grid = pc.plot_model_grid({labels[n]: results[n] for n in MODELS},
                          title="Shipped networks vs IT of the 92-image set (Spearman ρ of RDMs)")
grid.savefig(FIGURES / "k92_models.png", dpi=90)
show(grid)

# %%
first = results["lateral"]
matrix = pc.plot_cross_temporal(first.results["monkey_it"], f"lateral ({weights['lateral']}) vs monkey IT")
matrix.savefig(FIGURES / "k92_lateral_monkey_matrix.png", dpi=100)
show(matrix)
steps = pc.plot_steps(first.results["human_it"], f"lateral ({weights['lateral']}) vs human IT")
steps.savefig(FIGURES / "k92_lateral_human_steps.png", dpi=100)
show(steps)

# %% [markdown]
# The best cell of every network for each target, with its interval, and the
# human noise ceiling:

# %%
import pandas as pd  # noqa: E402

rows = []
for name, c in results.items():
    df = c.table()
    for target, part in df.groupby("target"):
        best = part.loc[part["value"].idxmax()]
        rows.append({"network": labels[name], "target": target, "layer": best["layer"], "step": best["step"],
                     "rho": round(best["value"], 3), "95% interval": f"[{best['ci_low']:.3f}, {best['ci_high']:.3f}]",
                     "gap, last step": round(part.query("layer == 'gap'")["value"].iloc[-1], 3)})
best = pd.DataFrame(rows)
ceiling = first.results["human_it"][["ceiling_lower", "ceiling_upper"]].isel(time=0)
print(best.to_string(index=False))
print(f"human IT noise ceiling: lower {float(ceiling['ceiling_lower']):.3f}, "
      f"upper {float(ceiling['ceiling_upper']):.3f}")
last = step_curve(first.results["monkey_it"])["value"].isel(step=-1)
print("lateral vs monkey IT at the last step:",
      {str(l): round(float(v), 3) for l, v in zip(last["layer"].values, last.values)})

# %% [markdown]
# ## What the numbers mean
#
# The shipped networks are small (32 px input, 16-128 channels) and were trained
# on Fashion-MNIST: grey pictures of clothing on black. The 92 images are colour
# photographs of faces, bodies, animals and objects that such a network has never
# seen a category of, so expect low values: RDM correlations near 0.05-0.15 with
# either IT, far below the human noise ceiling (about 0.37-0.67 here). At that
# level a network mostly shares low-level image structure (size, contrast,
# silhouette) with IT, not the animate / inanimate and face / body distinctions
# that dominate both IT RDMs; random weights give values of the same order. The
# intervals are wide because 92 images give 4,186 dissimilarities that are far
# from independent. Differences between steps and networks are meaningful only
# where their bootstrap bands separate.
#
# A network trained on natural images is the right comparison: the published
# CCN23 BLT networks (64 or 128 px, 100 MiniEcoset classes) load exactly with
# `vrnn.load_model(path_to_pth)`. Set `VRNN_CCN23_CHECKPOINT` to one of their
# `.pth` files to run the same analysis on it here:

# %%
checkpoint = os.environ.get("VRNN_CCN23_CHECKPOINT")
if checkpoint:
    ccn = vrnn.load_model(checkpoint)
    vrnn.extract(ccn, stimuli, out=WORK / "ccn23.nc", pool="mean", progress=False)
    ccn_result = run_comparison(WORK / "ccn23.nc", f"kriegeskorte92:{DATA}", n_bootstrap=N_BOOT)
    pc.plot_steps(ccn_result.results["human_it"], f"{Path(checkpoint).name} vs human IT").savefig(
        FIGURES / "k92_ccn23_human_steps.png", dpi=100)
    print(ccn_result.table().groupby("target")["value"].max())
else:
    print("VRNN_CCN23_CHECKPOINT is not set: skipping the CCN23 network. From the command line:\n"
          "  vrnn extract --model b64_l_1_t_0_ltinteract_additive_T_10_ltposition_all_num_1.pth "
          f"--stimuli kriegeskorte92:{DATA} --pool mean -o ccn23_k92.nc\n"
          f"  vrnn compare ccn23_k92.nc kriegeskorte92:{DATA} -o ccn23_k92_report/")
shutil.rmtree(WORK, ignore_errors=True)
print(f"figures written to {FIGURES}")
