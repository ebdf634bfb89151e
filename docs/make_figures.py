"""Regenerate the README figures docs/accuracy.png and docs/zones.png.

With pretrained ``lateral`` weights shipped, they come from ``vrnn demo``
(Fashion-MNIST); otherwise from the synthetic network of ``tests/synthetic.py``
(readout-layer activations with planted settling dynamics), and the figure
titles say so.

    python docs/make_figures.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).parent


def main() -> None:
    import vision_rnn as vrnn
    from vision_rnn import plotting
    from vision_rnn.analysis import readout_measures, summarize

    with tempfile.TemporaryDirectory() as tmp:
        if any(m.name == "lateral" and m.pretrained for m in vrnn.list_models()):
            from vision_rnn.report import demo

            demo(out=tmp)
            path = Path(tmp) / "lateral_fashion-mnist.nc"
        else:
            sys.path.insert(0, str(HERE.parent / "tests"))
            from synthetic import settling_network, write_activations

            gap, labels, w = settling_network(n_per_class=60, n_classes=6, timesteps=8, units=32)
            path = write_activations(Path(tmp) / "acts.nc", {"gap": gap}, labels, w,
                                     classes=["shirt", "coat", "bag", "sandal", "dress", "boot"])
        m = readout_measures(path)
        s = summarize(m)
        plotting.plot_accuracy(s).savefig(HERE / "accuracy.png", dpi=90)
        plotting.plot_zones(m).savefig(HERE / "zones.png", dpi=90)
    for name in ("accuracy.png", "zones.png"):
        print(f"{HERE / name}: {(HERE / name).stat().st_size / 1024:.0f} kB")


if __name__ == "__main__":
    main()
