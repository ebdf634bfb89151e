"""`vrnn analyze` with a 2-worker dask.distributed LocalCluster against the run without one.

Writes the synthetic activation file of ``analyze_memory.py`` (N stimuli x 8 steps, v1 of 16384
units, gap of 128), then runs ``vision_rnn.report.analyze`` on it twice in this process, for the
stored readout (gap) and for v1 (a fitted readout): once with no client (local chunked loop), once
inside ``with Client(LocalCluster(n_workers=2, threads_per_worker=1))`` (the layer's blocks read and
reduced by the workers, which open the file by path). Every variable of the two summaries must agree
to 1e-10.

    python benchmarks/analyze_distributed.py            # prints; --write updates RESULTS.md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

from _results import write_section
from analyze_memory import write_file

import numpy as np

HERE = Path(__file__).parent


def max_difference(a, b) -> float:
    """Largest absolute difference over every float variable; inf if the variables or integers differ."""
    if set(a.data_vars) != set(b.data_vars):
        return float("inf")
    worst = 0.0
    for v in a.data_vars:
        x, y = np.asarray(a[v].values), np.asarray(b[v].values)
        if x.dtype.kind == "f":
            if not np.array_equal(np.isnan(x), np.isnan(y)):
                return float("inf")
            worst = max(worst, float(np.nanmax(np.abs(x - y), initial=0.0)))
        elif not np.array_equal(x, y):
            return float("inf")
    return worst


def main():
    from distributed import Client, LocalCluster

    from vision_rnn.report import analyze

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stimuli", type=int, default=2000, help="stimuli in the file (2000: v1 = 1.05 GB)")
    ap.add_argument("--workdir", default=None, help="where to write the file (default: a temporary folder)")
    ap.add_argument("--write", action="store_true", help="update benchmarks/RESULTS.md")
    args = ap.parse_args()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="vrnn-analyze-dist-"))
    work.mkdir(parents=True, exist_ok=True)
    path = work / "big.nc"
    rows = []
    try:
        v1_bytes = write_file(path, args.stimuli)
        for layer in (None, "v1"):
            name = layer or "gap"
            t0 = time.perf_counter()
            here = analyze(path, work / f"here_{name}", layer=layer)
            t_here = time.perf_counter() - t0
            with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                              silence_logs=40) as cluster, Client(cluster) as client:
                client.run(lambda: None)                          # workers up before the clock starts
                t0 = time.perf_counter()
                there = analyze(path, work / f"workers_{name}", layer=layer)
                t_there = time.perf_counter() - t0
            rows.append(dict(layer=name, here_s=t_here, workers_s=t_there, max_abs_diff=max_difference(here, there)))
            print(json.dumps(rows[-1]), flush=True)
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    ok = all(r["max_abs_diff"] <= 1e-10 for r in rows)
    table = "\n".join(f"| {r['layer']} | {r['here_s']:.1f} | {r['workers_s']:.1f} | {r['max_abs_diff']:.1e} |"
                      for r in rows)
    text = f"""## Analyze on dask.distributed workers

`python benchmarks/analyze_distributed.py --write` ({platform.machine()}, {os.cpu_count()} cores,
Python {platform.python_version()}). The synthetic file of the memory benchmark with {args.stimuli} stimuli
(v1 {v1_bytes / 1e9:.2f} GB, 16384 units; gap 128 units), `vision_rnn.report.analyze` without a client and
inside `Client(LocalCluster(n_workers=2, threads_per_worker=1))`:

| layer | no client (s) | 2 workers (s) | largest difference |
|---|---|---|---|
{table}

Every variable of the summary agrees to 1e-10: **{"met" if ok else "NOT met"}**. With a client the layer's
blocks (a storage chunk of stimuli, every step) are read and reduced by the workers, which open the file
by path; their sums are added in the order of the local loop (what differs, in the last bits, is BLAS
running on one thread in each worker). On this 2-core machine the workers share the
cores with the client, so the timing shows the cost of the transfers, not a speed-up; on a cluster each
worker reads its own blocks.
"""
    if args.write:
        write_section("## Analyze on dask.distributed workers", text)
        print(f"updated {HERE / 'RESULTS.md'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
