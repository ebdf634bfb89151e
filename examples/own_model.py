"""A lab's own recurrent network through extract, analyze and compare.

The network below is not one vision-rnn knows: a two-block convolutional GRU
whose time loop runs inside ``forward`` and whose decoder is called once, on the
last step. ``vrnn.record`` names its layers; the result is a model like any
other: every layer at every step is extracted for the 92 images, analysed
(label-free: the 92 images are not the model's classes, so the final
prediction stands in for the label), and compared with the monkey and human IT
RDMs.

    python examples/own_model.py -o own_model
    python examples/own_model.py --weights my_trained.safetensors   # your trained state dict

The 92-image set is read from ``$VRNN_DATA/kriegeskorte2008`` (default
``../shared/data``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

import vision_rnn as vrnn
from vision_rnn.compare import run_comparison, write_report
from vision_rnn.report import analyze


class ConvGRUCell(nn.Module):
    """One convolutional GRU cell; returns ``(h, h)`` (output and state, as CORnet's blocks do)."""

    def __init__(self, cin: int, c: int):
        super().__init__()
        self.gates = nn.Conv2d(cin + c, 2 * c, 3, padding=1)
        self.cand = nn.Conv2d(cin + c, c, 3, padding=1)

    def forward(self, x, h):
        z, r = torch.sigmoid(self.gates(torch.cat([x, h], 1))).chunk(2, 1)
        n = torch.tanh(self.cand(torch.cat([x, r * h], 1)))
        h = (1 - z) * h + z * n
        return h, h


class SpatialMean(nn.Module):
    def forward(self, x):
        return x.mean(dim=(2, 3))


class TwoBlockGRU(nn.Module):
    """Image -> GRU block (32 px) -> pool -> GRU block (16 px) -> spatial mean -> decoder, for ``steps`` steps."""

    def __init__(self, steps: int = 6, classes: int = 10):
        super().__init__()
        self.steps = steps
        self.stem = nn.Conv2d(3, 16, 3, padding=1)
        self.block1 = ConvGRUCell(16, 16)
        self.block2 = ConvGRUCell(16, 32)
        self.pool = SpatialMean()
        self.decoder = nn.Linear(32, classes)

    def forward(self, x):
        s = F.relu(self.stem(x))
        h1 = s.new_zeros(len(x), 16, x.shape[2], x.shape[3])
        h2 = s.new_zeros(len(x), 32, x.shape[2] // 2, x.shape[3] // 2)
        for _ in range(self.steps):
            a1, h1 = self.block1(s, h1)
            a2, h2 = self.block2(F.max_pool2d(a1, 2), h2)
            g = self.pool(a2)
        return self.decoder(g)                   # once, on the last step


def build(weights: str | None = None):
    """The network wrapped by ``vrnn.record``: layers block1, block2, pool; the decoder read at every step."""
    torch.manual_seed(0)
    net = TwoBlockGRU()
    if weights:
        from safetensors.torch import load_file

        state = load_file(weights) if weights.endswith(".safetensors") else torch.load(weights, weights_only=True)
        net.load_state_dict(state)
    classes = vrnn.load_model("lateral", weights="random").classes       # Fashion-MNIST's ten classes
    return vrnn.record(net, layers=["block1", "block2", "pool"], timesteps=net.steps,
                       readout="decoder", readout_from="pool",          # decoder(pool) at every step
                       input_size=32, mean=(0.286,) * 3, std=(0.353,) * 3, classes=classes, name="two-block-gru")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-o", "--out", default="own_model", help="output folder")
    ap.add_argument("--weights", default=None, help="a state dict for TwoBlockGRU (safetensors or .pth)")
    ap.add_argument("--bootstrap", type=int, default=100, help="bootstrap samples of the analyses and comparison")
    args = ap.parse_args(argv)
    data = vrnn.data_dir("kriegeskorte2008")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    model = build(args.weights)
    print(f"{model.name}: layers {', '.join(model.layer_names)}, {model.timesteps} steps, "
          f"readout {model.readout_layer}")
    acts = out / "k92.nc"
    with vrnn.extract(model, f"kriegeskorte92:{data}", out=acts, overwrite=True, pool="mean") as tree:
        print(f"extracted {acts}: {tree.sizes['stimulus']} stimuli x {tree.sizes['time']} steps")
    s = analyze(acts, out / "analysis", overwrite=True, n_bootstrap=args.bootstrap)
    print(f"analysis ({'label-free' if s.attrs.get('label_free') else 'labelled'}): {out / 'analysis'}/")
    comparison = run_comparison(acts, f"kriegeskorte92:{data}", n_bootstrap=args.bootstrap)
    write_report(comparison, out / "comparison", overwrite=True)
    for line in comparison.best_lines():
        print(line)
    print(f"comparison: {out / 'comparison'}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
