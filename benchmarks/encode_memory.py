"""Peak memory of `encode` on the shared rows of a layer read from an activation file.

Writes a synthetic activation file in the store's layout (``analyze_memory.write_file``): N stimuli
x 8 steps x 16384 units of v1, float32. A recording (3 repetitions x 2 time bins x ``--neuroids``
neuroids) shares ``--shared`` randomly chosen stimuli. Each in a fresh process, peak RSS (VmHWM) and
wall time of:

  (a) baseline: the interpreter with the modules encoding imports (scikit-learn included), the
      file opened, the recording made;
  (b) ``encode(layer(tree, "v1").isel(stimulus=shared rows), recording)`` (PCA to 1000
      dimensions inside each of 5 folds, ridge per neuroid).

Target: (b) - (a) < 2 x the float32 size of the shared rows (shared x 8 x 16384 x 4 bytes).

    python benchmarks/encode_memory.py            # prints; --write updates RESULTS.md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
from pathlib import Path

from _results import write_section
from analyze_memory import measured, write_file

import numpy as np

HERE = Path(__file__).parent
SETUP = """
import numpy as np, xarray as xr
import sklearn.linear_model, sklearn.decomposition
import vision_rnn as vrnn
from vision_rnn.analysis.encoding import encode
rows = np.load({rows!r})
tree = vrnn.open_activations({path!r})
ids = tree["stimulus"].values[rows]
rng = np.random.default_rng(1)
rec = xr.DataArray(rng.normal(size=(len(ids), 3, 2, {neuroids})), dims=("stimulus", "repetition", "time", "neuroid"),
                   coords={{"stimulus": ids, "time": [50.0, 100.0]}}, name="response")
"""
ENCODE = """
t0 = time.perf_counter()
ds = encode(vrnn.layer(tree, "v1").isel(stimulus=rows), rec)
print("WALL", time.perf_counter() - t0)
print("FINITE", int(np.isfinite(ds["r"].values).all()))
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stimuli", type=int, default=1200, help="stimuli in the file")
    ap.add_argument("--shared", type=int, default=600, help="stimuli the recording shares with the file")
    ap.add_argument("--neuroids", type=int, default=300)
    ap.add_argument("--workdir", default=None, help="where to write the file (default: a temporary folder)")
    ap.add_argument("--write", action="store_true", help="update benchmarks/RESULTS.md")
    args = ap.parse_args()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="vrnn-encode-mem-"))
    work.mkdir(parents=True, exist_ok=True)
    path, rows_file = work / "big.nc", work / "rows.npy"
    try:
        write_file(path, args.stimuli)
        rows = np.sort(np.random.default_rng(0).choice(args.stimuli, args.shared, replace=False))
        np.save(rows_file, rows)
        setup = SETUP.format(path=str(path), rows=str(rows_file), neuroids=args.neuroids)
        base = min(measured(setup)[0] for _ in range(3))
        rss, _, out = measured(setup + ENCODE)
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    lines = dict(l.split() for l in out.splitlines() if len(l.split()) == 2)
    wall, finite = float(lines["WALL"]), lines["FINITE"] == "1"
    rows_bytes = args.shared * 8 * 16384 * 4
    mib = 2 ** 20
    rise = rss - base
    res = dict(shared_rows_mib=rows_bytes / mib, base_mib=base / mib, encode_mib=rss / mib, rise_mib=rise / mib,
               rise_x=rise / rows_bytes, wall_s=wall, finite=finite)
    print(json.dumps(res, indent=1))
    ok = rise < 2 * rows_bytes and finite
    text = f"""## Encode: peak memory on the shared rows

`python benchmarks/encode_memory.py --write` ({platform.machine()}, {os.cpu_count()} cores,
Python {platform.python_version()}). A synthetic activation file ({args.stimuli} stimuli x 8 steps x
16384 units of v1, float32); a recording of {args.shared} of those stimuli (3 repetitions x 2 bins x
{args.neuroids} neuroids). The shared rows of v1 are **{rows_bytes / mib:.0f} MiB** in float32. Fresh
processes, peak RSS = VmHWM:

| run | peak RSS (MiB) | rise (MiB) | wall (s) |
|---|---|---|---|
| baseline: imports (scikit-learn too), file opened, recording made | {base / mib:.0f} | - | - |
| `encode(layer(tree, "v1").isel(stimulus=rows), recording)` | {rss / mib:.0f} | {rise / mib:.0f} | {wall:.1f} |

- The rise is {rise / rows_bytes:.2f} x the float32 size of the shared rows (target < 2):
  **{"met" if ok else "NOT met"}**.

How: the steps run on a pool of as many threads as cores (BLAS one thread each). Each step's shared
rows are read a block of whole storage chunks at a time (at most 32 MiB) into the Gram matrix of the
stimuli (float64, units centred); each fold's PCA comes from the training block of that matrix
(`vision_rnn.analysis.encoding.pca_from_gram`, equal to scikit-learn's PCA on the training rows),
and the ridge models are fitted on 256 neuroids at a time. Before this, each step's rows were read
whole and reduced by scikit-learn inside each fold: the same run rose by 710 MiB (2.37 x) in 49.6 s.
"""
    if args.write:
        write_section("## Encode: peak memory on the shared rows", text)
        print(f"updated {HERE / 'RESULTS.md'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
