"""Regenerate the README figures docs/accuracy.png, docs/zones.png and docs/k92_models.png.

With pretrained ``lateral`` weights shipped, the first two come from ``vrnn demo``
(Fashion-MNIST); otherwise from the synthetic network of ``tests/synthetic.py``
(readout-layer activations with planted settling dynamics), and the figure
titles say so. ``k92_models.png`` is the main figure of the notebook
``comparisons/kriegeskorte92.py`` (the shipped networks against monkey and human
IT; networks without pretrained weights run with random weights, as their
titles say); it needs the 92-image data (``$VRNN_DATA`` or ``../shared/data``).

    python docs/make_figures.py              # all three
    python docs/make_figures.py compare      # only k92_models.png
"""

from __future__ import annotations

import os
import runpy
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).parent


def compare_figure() -> None:
    """Run comparisons/kriegeskorte92.py with 1000 bootstrap samples; keep its grid figure."""
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.update(VRNN_FIGURES=tmp, VRNN_BOOTSTRAP="1000")
        runpy.run_path(str(HERE.parent / "comparisons" / "kriegeskorte92.py"), run_name="__main__")
        shutil.copy(Path(tmp) / "k92_models.png", HERE / "k92_models.png")
    print(f"{HERE / 'k92_models.png'}: {(HERE / 'k92_models.png').stat().st_size / 1024:.0f} kB")


def main() -> None:
    if sys.argv[1:] == ["compare"]:
        return compare_figure()
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
    compare_figure()


if __name__ == "__main__":
    main()
