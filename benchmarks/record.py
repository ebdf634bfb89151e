#!/usr/bin/env python
"""What recording every step costs: ``vrnn.record`` against a plain forward of the same module.

For the tiny ``cornet-rt`` and ``convgru`` networks (random weights, batch 64,
8 steps) this times, in inference mode:

- plain: ``module(x)``, the logits only;
- record: ``vrnn.record(module, layers=[v1, v2, v4, it, gap], readout="readout").run(x)``,
  forward hooks that copy every layer at every step (target: at most 1.2x plain);
- torchlens (from PyPI, when installed): ``torchlens.trace(module, x, save=in_module(v1) |
  ... | in_module(gap))``, which logs every operation and keeps those inside the five modules.

Each is run ``--warmup`` times, then timed ``--repeats`` times; the median is reported.

Usage:
  python benchmarks/record.py [--repeats 20] [--write]

``--write`` puts the table into the "Recording any module" section of
benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import torch

import vision_rnn as vrnn

LAYERS = ["v1", "v2", "v4", "it", "gap"]


def timed(fn, warmup: int, repeats: int) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def measure(name: str, batch: int, warmup: int, repeats: int) -> dict:
    model = vrnn.load_model(name, weights="random", seed=0).eval()
    rec = vrnn.record(model, layers=LAYERS, timesteps=model.timesteps, readout="readout",
                      input_size=model.input_size, mean=model.mean, std=model.std, classes=model.classes)
    x = torch.randn(batch, 3, model.input_size, model.input_size)
    with torch.inference_mode():
        want, got = model.run(x), rec.run(x)
        assert all(torch.equal(want[k], got[k]) for k in want), "record differs from run"
        plain = timed(lambda: model(x), warmup, repeats)
        recorded = timed(lambda: rec.run(x), warmup, repeats)
    row = {"model": name, "plain": plain, "record": recorded, "torchlens": None}
    try:
        import torchlens as tl
    except ImportError:
        return row
    select = tl.in_module(LAYERS[0])
    for n in LAYERS[1:]:
        select = select | tl.in_module(n)                  # the operations inside the five modules
    with torch.no_grad():
        tl.trace(model, x, save=select)                     # once untimed: torchlens wraps torch on first use
        row["torchlens"] = timed(lambda: tl.trace(model, x, save=select), max(1, warmup // 2),
                                 max(3, repeats // 4))
        row["torchlens_version"] = tl.__version__
    return row


def table(rows, batch) -> str:
    cpu = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, " \
          f"{torch.get_num_threads()} threads"
    lines = ["## Recording any module", "",
             f"`python benchmarks/record.py --write` ({cpu}; batch {batch}, 8 steps, random weights, "
             "inference mode; medians). record: forward hooks on v1, v2, v4, it, gap and the readout, every "
             "step copied; target at most 1.2x the plain forward. torchlens: `torchlens.trace(module, x, "
             "save=tl.in_module('v1') | ... | tl.in_module('gap'))`, which logs every operation and keeps "
             "those inside the five modules.", "",
             "| model | plain forward (ms) | record (ms) | record / plain | torchlens (ms) | torchlens / plain |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        tl = "-" if r["torchlens"] is None else f"{1000 * r['torchlens']:.0f}"
        tlr = "-" if r["torchlens"] is None else f"{r['torchlens'] / r['plain']:.1f}x"
        lines.append(f"| {r['model']} | {1000 * r['plain']:.1f} | {1000 * r['record']:.1f} | "
                     f"{r['record'] / r['plain']:.2f}x | {tl} | {tlr} |")
    versions = {r.get("torchlens_version") for r in rows if r.get("torchlens_version")}
    if versions:
        lines += ["", f"torchlens {', '.join(sorted(versions))}."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--write", action="store_true", help="write the table into benchmarks/RESULTS.md")
    args = ap.parse_args(argv)
    rows = [measure(n, args.batch_size, args.warmup, args.repeats) for n in ("cornet-rt", "convgru")]
    text = table(rows, args.batch_size)
    print(text)
    if args.write:
        from _results import write_section

        write_section("## Recording any module", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
