#!/usr/bin/env python
"""Training speed: images per second of one training step (forward over every step,
backward, Adam step) of the tiny and the ccn23-64 presets (``lateral`` variant).

The step is :func:`vision_rnn.train.train_step`, the one ``vrnn train`` runs,
on a batch already prepared (uint8 images through ``prepare``) and on the
device; bfloat16 autocast on CUDA as in training. Timing starts after warm-up
steps; CUDA is synchronised around the timed steps.

Usage:
  python benchmarks/train_speed.py --device cpu [--batch-size 64] [--write]

``--write`` puts the rows into the "Training speed" section of
benchmarks/RESULTS.md (created if absent), replacing rows of the same preset,
device and batch size and leaving other sections alone.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import time
from pathlib import Path

import numpy as np
import torch

from vision_rnn.models import build, get_config
from vision_rnn.stimuli import prepare
from vision_rnn.train import train_step

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
SECTION = "## Training speed"
COMMANDS = ("    python benchmarks/train_speed.py --device cpu --write     # 2-core CPU, 2 threads\n"
            "    python benchmarks/train_speed.py --device cuda --write    # one GPU\n"
            "    python benchmarks/train_speed.py --device cuda --batch-size 256 --presets tiny --write")
HEADER = ("| preset | device | batch | steps unrolled | images/s | ms/step | torch | CPU load |\n"
          "| --- | --- | --- | --- | --- | --- | --- | --- |")


def device_name(dev: torch.device) -> str:
    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    return f"CPU ({os.cpu_count()} cores, {torch.get_num_threads()} threads, {platform.machine()})"


def measure(preset: str, dev: torch.device, batch_size: int, warmup: int, repeats: int) -> dict:
    config = get_config(f"{preset}/lateral")
    model = build(config, seed=0).to(dev).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (batch_size, config.input_size, config.input_size, 3), dtype=np.uint8)
    x = prepare(images, config.input_size, config.mean, config.std).to(dev)
    y = torch.as_tensor(rng.integers(0, config.num_classes, batch_size)).to(dev)
    weights = torch.ones(config.timesteps, device=dev)
    amp = dev.type == "cuda"
    load = os.getloadavg()[0]  # other processes on the machine slow a CPU measurement down
    for _ in range(warmup):
        train_step(model, opt, x, y, weights, amp)
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    t0 = time.perf_counter()
    for _ in range(repeats):
        loss = train_step(model, opt, x, y, weights, amp)[0]
    loss.item()
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    seconds = (time.perf_counter() - t0) / repeats
    return {"preset": preset, "device": device_name(dev), "batch": batch_size, "steps": config.timesteps,
            "images_per_s": batch_size / seconds, "ms_per_step": seconds * 1000, "load": load}


def row(r: dict) -> str:
    return (f"| {r['preset']} | {r['device']} | {r['batch']} | {r['steps']} | {r['images_per_s']:.1f} "
            f"| {r['ms_per_step']:.1f} | {torch.__version__} | {r['load']:.1f} |")


def write_section(rows: list[str], command: str) -> None:
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    m = re.search(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", text, flags=re.S | re.M)
    old_rows = [l for l in (m.group(0) if m else "").splitlines()
                if l.startswith("| ") and not l.startswith("| preset") and not l.startswith("| ---")]
    keys = {tuple(c.strip() for c in r.split("|")[1:4]) for r in rows}
    kept = [r for r in old_rows if tuple(c.strip() for c in r.split("|")[1:4]) not in keys]
    body = (f"{SECTION}\n\n"
            "Images per second of one training step (forward through every step, backward,\n"
            "Adam step) of the `lateral` variant, batch already prepared and on the device,\n"
            "after warm-up; bfloat16 autocast on CUDA. Higher is better. \"CPU load\" is the\n"
            "1-minute load average when the measurement started: on a shared machine, a load\n"
            "above the core count means other work slowed the CPU rows down. Produced by\n\n"
            f"{command}\n\n"
            "Each run replaces the rows of its own preset, device and batch size. On a GPU the\n"
            "tiny preset is bound by kernel launches (small layers, 8 steps), so images/s grows\n"
            "almost in proportion to the batch size.\n\n"
            f"{HEADER}\n" + "\n".join(kept + rows) + "\n\n")
    text = text[:m.start()] + body + text[m.end():] if m else text.rstrip("\n") + "\n\n" + body
    RESULTS.write_text(text.rstrip("\n") + "\n")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--presets", default="tiny,ccn23-64")
    p.add_argument("--warmup", type=int, default=None, help="warm-up steps (default: 2 on CPU, 10 on CUDA)")
    p.add_argument("--repeats", type=int, default=None, help="timed steps (default: 5 on CPU, 50 on CUDA)")
    p.add_argument("--write", action="store_true", help="update the Training speed section of RESULTS.md")
    a = p.parse_args(argv)
    dev = torch.device(a.device)
    cuda = dev.type == "cuda"
    warmup = a.warmup if a.warmup is not None else (10 if cuda else 2)
    repeats = a.repeats if a.repeats is not None else (50 if cuda else 5)
    rows = []
    print(HEADER)
    for preset in a.presets.split(","):
        r = row(measure(preset, dev, a.batch_size, warmup, repeats))
        print(r, flush=True)
        rows.append(r)
    if a.write:
        write_section(rows, COMMANDS)
        print(f"updated {RESULTS}")


if __name__ == "__main__":
    main()
