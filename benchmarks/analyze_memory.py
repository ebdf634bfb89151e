"""Peak memory of `vrnn analyze --layer v1` on an activation file whose v1 is over 2 GB.

Writes a synthetic activation file in the store's layout (`vision_rnn.store.create`
then netCDF4 writes, batch by batch): N stimuli x 8 steps of the tiny model's v1
(16 x 32 x 32 = 16384 units, float32, uncompressed) with class structure, plus gap
and logits. Then, each in a fresh process, measures peak RSS (VmHWM, see peak_rss):

  (a) baseline: the interpreter with every module `vrnn analyze` imports;
  (b) `vrnn analyze FILE --layer v1` (a fitted readout: v1 is not the readout layer);
  (c) `vrnn analyze FILE` on gap, for comparison.

Target: (b) - (a) < v1's size / 4.

    python benchmarks/analyze_memory.py            # prints; --write updates RESULTS.md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _results import write_section

import numpy as np

HERE = Path(__file__).parent
T, V1_SHAPE, GAP, K = 8, (16, 32, 32), 128, 10
IMPORTS = ("vision_rnn.cli", "vision_rnn.report", "vision_rnn.analysis", "vision_rnn.plotting", "vision_rnn.store",
           "xarray", "dask.array", "netCDF4", "sklearn.linear_model", "sklearn.model_selection",
           "scipy.cluster.hierarchy", "matplotlib.figure", "matplotlib.backends.backend_agg", "tqdm.dask")


def write_file(path: Path, n: int, seed: int = 0, batch: int = 64) -> int:
    """A complete activation file with v1 (n x T x 16384) and gap; returns v1's size in bytes."""
    from vision_rnn import store

    rng = np.random.default_rng(seed)
    n_v1 = int(np.prod(V1_SHAPE))
    labels = np.arange(n) % K
    proto_v1 = rng.random((K, n_v1), dtype=np.float32)
    proto_gap = rng.random((K, GAP), dtype=np.float32)
    weight = (proto_gap - proto_gap.mean(0)).astype(np.float32)
    specs = [store.VarSpec("logits", None, K, "float32"),
             store.VarSpec("v1", "v1", n_v1, "float32", spatial=V1_SHAPE),
             store.VarSpec("gap", "gap", GAP, "float32")]
    layout = store.Layout(n, T, batch, specs)
    classes = [f"class_{k}" for k in range(K)]
    attrs = {"model": "synthetic-tiny", "model_config": "{}", "weights": "synthetic", "weights_sha256": "",
             "seed": seed, "vision_rnn_version": "0.1.0", "created": "", "stimuli_source": "synthetic",
             "stimuli_fingerprint": "", "n_stimuli": n, "input_size": 32, "readout_layer": "gap",
             "layers": "v1,gap", "timesteps": T, "batch_size": batch, "pool": "none", "dtype": "float32",
             "compression": "none", "skipped": "[]"}
    store.create(path, layout, stimuli_ids=[f"{classes[l]}/{i:06d}" for i, l in enumerate(labels)],
                 labels=labels, label_names=[classes[l] for l in labels], metadata=None, classes=classes,
                 readout_weight=weight, readout_bias=None, attrs=attrs, compression="none")
    mix = np.linspace(0.2, 1.0, T, dtype=np.float32)[None, :, None]
    with store.appending(path) as ds:
        v1 = ds.groups["v1"].variables["activation"]
        gap = ds.groups["gap"].variables["activation"]
        for lo in range(0, n, batch):
            lab = labels[lo:lo + batch]
            m = lab.size
            wrong = (lab + 1 + rng.integers(0, K - 1, m)) % K
            a = mix * proto_v1[lab][:, None] + (1 - mix) * proto_v1[wrong][:, None]
            a += rng.standard_normal(a.shape, dtype=np.float32)
            np.maximum(a, 0, out=a)
            v1[lo:lo + m] = a
            g = mix * proto_gap[lab][:, None] + (1 - mix) * proto_gap[wrong][:, None]
            g = np.maximum(g + 0.3 * rng.standard_normal(g.shape, dtype=np.float32), 0)
            gap[lo:lo + m] = g
            ds.variables["logits"][lo:lo + m] = g @ weight.T
        ds.setncattr("complete", 1)
        ds.setncattr("batches_done", -(-n // batch))
    return n * T * n_v1 * 4


def peak_rss(code: str) -> tuple[int, float]:
    """Run ``code`` in a fresh interpreter; its peak RSS in bytes and wall time (see :func:`measured`)."""
    rss, wall, _ = measured(code)
    return rss, wall


def measured(code: str) -> tuple[int, float, str]:
    """Run ``code`` in a fresh interpreter; its peak RSS in bytes, wall time and stdout.

    The peak is the process's own high-water mark, VmHWM of /proc/self/status:
    on Linux ru_maxrss of a child also counts the RSS its parent had when it
    started (the high-water mark of the address space replaced at exec), so it
    would hide anything below the parent's size. Without /proc, ru_maxrss.
    """
    code += ("\nimport resource\ntry:\n"
             "    kb = [int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM:')][0]\n"
             "except OSError:\n    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
             "print('MAXRSS', kb)\n")
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        raise RuntimeError(r.stderr[-3000:])
    kb = int([l for l in r.stdout.splitlines() if l.startswith("MAXRSS")][-1].split()[1])
    return kb * 1024, wall, r.stdout


def analyze_code(path: Path, out: Path, layer: str | None) -> str:
    args = ["analyze", str(path), "-o", str(out)] + (["--layer", layer] if layer else [])
    return ("import sys\nfrom vision_rnn.cli import main\n"
            f"try:\n    main({args!r})\nexcept SystemExit as e:\n"
            "    if e.code not in (0, None): raise\n")




def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stimuli", type=int, default=4200, help="stimuli in the file (4200: v1 = 2.2 GB)")
    ap.add_argument("--workdir", default=None, help="where to write the file (default: a temporary folder)")
    ap.add_argument("--write", action="store_true", help="update benchmarks/RESULTS.md")
    args = ap.parse_args()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="vrnn-analyze-mem-"))
    work.mkdir(parents=True, exist_ok=True)
    path = work / "big.nc"
    try:
        t0 = time.perf_counter()
        v1_bytes = write_file(path, args.stimuli)
        t_write = time.perf_counter() - t0
        print(f"wrote {path}: v1 {v1_bytes / 1e9:.2f} GB in {t_write:.0f} s", flush=True)
        bases = [peak_rss("\n".join(f"import {m}" for m in IMPORTS))[0] for _ in range(3)]
        base = min(bases)                          # the smallest baseline: the largest rise
        v1_rss, v1_wall = peak_rss(analyze_code(path, work / "report_v1", "v1"))
        gap_rss, gap_wall = peak_rss(analyze_code(path, work / "report_gap", None))
        summary = json.loads((work / "report_v1" / "summary.json").read_text())["attrs"]
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    rise = v1_rss - base
    mib = 2 ** 20
    res = dict(v1_gb=v1_bytes / 1e9, baseline_mib=[b / mib for b in bases], v1_mib=v1_rss / mib, gap_mib=gap_rss / mib,
               rise_mib=rise / mib, limit_mib=v1_bytes / 4 / mib, ok=rise < v1_bytes / 4,
               v1_wall=v1_wall, gap_wall=gap_wall)
    print(json.dumps(res, indent=1))
    text = f"""## Analyze memory

`python benchmarks/analyze_memory.py --write` ({platform.machine()}, {os.cpu_count()} cores,
Python {platform.python_version()}). A synthetic activation file in the store's layout: {args.stimuli}
stimuli x {T} steps, v1 = 16384 units (the tiny model's 16 x 32 x 32), float32, uncompressed, chunks of
64 stimuli: **v1 is {v1_bytes / 1e9:.2f} GB**. Peak RSS (VmHWM, the process's own high-water mark; ru_maxrss
of a child would also count its parent's size) of fresh processes:

| run | peak RSS (MiB) | rise over baseline (MiB) | wall (s) |
|---|---|---|---|
| baseline: interpreter + every module `vrnn analyze` imports | {base / mib:.0f} | - | - |
| `vrnn analyze big.nc --layer v1` (fitted readout) | {v1_rss / mib:.0f} | {rise / mib:.0f} | {v1_wall:.0f} |
| `vrnn analyze big.nc` (gap, stored readout) | {gap_rss / mib:.0f} | {(gap_rss - base) / mib:.0f} | {gap_wall:.0f} |

Target: the rise for v1 under a quarter of v1's size ({v1_bytes / 4 / mib:.0f} MiB):
**{"met" if rise < v1_bytes / 4 else "NOT met"}** ({rise / mib:.0f} MiB, {100 * rise / v1_bytes:.1f}% of v1).
Baseline runs: {", ".join(f"{b / mib:.0f}" for b in bases)} MiB (the smallest is used). The layer is read one
storage chunk at a time (one pass for readout scores, norms and step distances, float64 in 8 MB slices;
HDF5 chunk cache 1 MiB); the v1 readout is fitted on a seeded random subset of (stimulus, time) rows,
at most 64 MiB of float32 ({summary.get("fit_n_rows")} rows here; cross-validated accuracy
{summary.get("fit_cv_accuracy", float("nan")):.3f}), with held-out folds given sample weight 0 instead of copies.
"""
    if args.write:
        write_section("## Analyze memory", text)
        print(f"updated {HERE / 'RESULTS.md'}")
    return 0 if res["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
