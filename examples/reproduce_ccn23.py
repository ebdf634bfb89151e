"""The CCN23 table for every shipped recurrent network (Thorat, Doerig & Kietzmann 2023).

For each recurrent model that ships pretrained weights (``vrnn.list_models()``,
feedforward left out) this extracts the readout layer on test images, runs the
analyses of the paper and writes one report per network plus the paper's table
across networks (accuracy, stability, and for stable-correct images already
correct vs not yet: L2 norm, cosine to the current readout vector, and cosine
to the eventual vs other classes' readout vectors), then claim (1) against each
network's random-weights twin and the halting summary.

    python examples/reproduce_ccn23.py                                    # Fashion-MNIST models
    python examples/reproduce_ccn23.py --miniecoset miniecoset_64px.h5:test  # also the CCN23 presets
    python examples/reproduce_ccn23.py --weights random --limit 100       # try the pipeline

Copy it and change STIMULI or the model list to run it on your own networks.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import vision_rnn as vrnn
from vision_rnn.report import analyze, network_table

STIMULI = {"tiny": "builtin:fashion-mnist"}        # preset -> test images; CCN23 presets need MiniEcoset


def recurrent_models(weights: str) -> list[str]:
    names = [m.name for m in vrnn.list_models() if (m.pretrained or weights == "random")]
    return [n for n in names if not n.endswith("feedforward")]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-o", "--out", default="ccn23_reproduction", help="output folder")
    ap.add_argument("--miniecoset", default=None, help="MiniEcoset test split (FILE.h5:test) for ccn23-* models")
    ap.add_argument("--weights", choices=["pretrained", "random"], default="pretrained")
    ap.add_argument("--limit", type=int, default=None, help="use this many evenly spaced images per set")
    args = ap.parse_args(argv)
    stimuli = dict(STIMULI)
    if args.miniecoset:
        stimuli.update({"ccn23-64": args.miniecoset, "ccn23-128": args.miniecoset})
    names = recurrent_models(args.weights)
    runnable = [n for n in names if (n.rpartition("/")[0] or "tiny") in stimuli]
    if not runnable:
        print("no pretrained recurrent model to analyse (see `vrnn models`); "
              "--weights random runs the pipeline on randomly initialised networks", file=sys.stderr)
        return 1
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    summaries = {}
    for name in runnable:
        preset = name.rpartition("/")[0] or "tiny"
        stim = vrnn.load_stimuli(stimuli[preset])
        if args.limit:
            stim = stim.subset(range(0, len(stim), max(1, len(stim) // args.limit))[:args.limit])
        folder = out / name.replace("/", "_")
        folder.mkdir(exist_ok=True)
        print(f"{name}: extracting {len(stim)} images", flush=True)
        model = vrnn.load_model(name, weights=args.weights)
        acts = vrnn.extract(model, stim, layers=["gap"], out=folder / "acts.nc", overwrite=True, progress=True)
        acts.close()
        # the notebook's baseline: the same architecture with random weights, on the same images
        twin = vrnn.extract(vrnn.load_model(name, weights="random", seed=0), stim, layers=["gap"],
                            out=folder / "twin.nc", overwrite=True, progress=True)
        twin.close()
        summaries[name] = analyze(folder / "acts.nc", folder, baseline=folder / "twin.nc", overwrite=True)
    table = network_table(summaries)
    (out / "ccn23_table.md").write_text(
        f"# CCN23 table ({args.weights} weights)\n\nMeans over steps before the settling cutoff; "
        "norm in activation units, the others are cosines. Second table: how far stable-correct "
        "representations move k steps after their prediction settled, relative to their norm (claim 1), "
        "against the random-weights twin on the same images and steps; and halting each image at the "
        "first step whose softmax confidence reaches 0.9.\n\n" + table)
    print(table)
    print(f"reports in {out}/<network>/, table in {out / 'ccn23_table.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
