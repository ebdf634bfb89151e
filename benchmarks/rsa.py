"""RSA speed: vectorised RDMs and cross-temporal bootstrap against rsatoolbox.

1. correlation RDMs for 1000 stimuli x 8 steps x 2048 units: ``rsa.rdm`` (one batched
   product, float64) vs rsatoolbox's ``calc_rdm`` called per step; values must agree;
   target >= 5x faster;
2. the same for euclidean (rsatoolbox's squared distance / units); target: no slower;
3. a cross-temporal comparison of 8 model steps x 50 recording bins on 92 stimuli with
   1000 bootstrap samples of the stimuli, spearman (``rsa.bootstrap``); target < 10 s.
   For scale, rsatoolbox's ``compare`` on the materialised resampled RDMs is timed on a
   few samples and extrapolated to 1000.

    python benchmarks/rsa.py            # prints; --write replaces the "## RSA" section of RESULTS.md
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from importlib.metadata import version
from pathlib import Path

from _results import write_section

import numpy as np
import xarray as xr

HERE = Path(__file__).parent


def best_of(fn, repeats):
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def bench_rdm(method: str, n=1000, steps=8, units=2048, repeats=3) -> dict:
    import rsatoolbox

    from vision_rnn.analysis import rsa

    rng = np.random.default_rng(0)
    x = xr.DataArray(rng.normal(size=(n, steps, units)), dims=("stimulus", "time", "unit"),
                     coords={"stimulus": [f"s{i:04d}" for i in range(n)], "time": np.arange(steps)})
    t_ours, ours = best_of(lambda: rsa.rdm(x, method), repeats)
    arr = x.values

    def reference():
        return [rsatoolbox.rdm.calc_rdm(rsatoolbox.data.Dataset(arr[:, t, :]), method=method).get_matrices()[0]
                for t in range(steps)]

    t_ref, ref = best_of(reference, repeats)
    err = max(float(np.abs(ours.values[t] - ref[t]).max()) for t in range(steps))
    return dict(method=method, t_ours=t_ours, t_ref=t_ref, speedup=t_ref / t_ours, max_abs_diff=err)


def bench_bootstrap(n_stim=92, steps=8, bins=50, n_boot=1000, repeats=2) -> dict:
    import rsatoolbox

    from vision_rnn.analysis import rsa

    rng = np.random.default_rng(1)
    ids = [f"img_{i:02d}" for i in range(1, n_stim + 1)]
    model = xr.DataArray(rng.normal(size=(n_stim, steps, 512)), dims=("stimulus", "time", "unit"),
                         coords={"stimulus": ids, "time": np.arange(steps)})
    rec = xr.DataArray(rng.normal(size=(n_stim, bins, 100)), dims=("stimulus", "time", "neuroid"),
                       coords={"stimulus": ids, "time": -100 + 10.0 * np.arange(bins) + 5})
    ra, rb = rsa.rdm(model), rsa.rdm(rec)
    t_ours, bs = best_of(lambda: rsa.bootstrap(ra, rb, "spearman", n=n_boot, seed=0), repeats)
    # reference: rsatoolbox compare on materialised resampled RDMs, a few samples
    iu = np.triu_indices(n_stim, 1)
    k = 5
    t = time.perf_counter()
    err = 0.0
    for s in range(k):
        idx = bs["draws"].values[s]
        keep = (idx[:, None] != idx[None, :])[iu]

        def vec(square):
            return square[..., idx[:, None], idx[None, :]][..., iu[0], iu[1]][..., keep]

        ref = rsatoolbox.rdm.compare(rsatoolbox.rdm.RDMs(vec(ra.values)), rsatoolbox.rdm.RDMs(vec(rb.values)),
                                     method="spearman")
        err = max(err, float(np.abs(bs["samples"].isel(bootstrap=s).values - ref).max()))
    t_ref = (time.perf_counter() - t) / k * n_boot
    return dict(t_ours=t_ours, t_ref_extrapolated=t_ref, speedup=t_ref / t_ours, max_abs_diff=err,
                n_boot=n_boot, steps=steps, bins=bins, n_stim=n_stim)




def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3, help="best of N for every timing")
    ap.add_argument("--write", action="store_true", help="replace the '## RSA' section of benchmarks/RESULTS.md")
    args = ap.parse_args()
    load = os.getloadavg()[0]
    corr = bench_rdm("correlation", repeats=args.repeats)
    print(corr)
    eucl = bench_rdm("euclidean", repeats=args.repeats)
    print(eucl)
    boot = bench_bootstrap(repeats=max(1, args.repeats - 1))
    print(boot)
    text = f"""## RSA

Command: `python benchmarks/rsa.py --write` ({platform.machine()}, {os.cpu_count()} cores, CPU only;
1-minute load average {load:.1f} at the start: other jobs shared the cores; best of {args.repeats} runs
for the RDMs, best of {max(1, args.repeats - 1)} for the bootstrap; rsatoolbox {version('rsatoolbox')},
numpy {version('numpy')}).

RDMs for 1000 stimuli x 8 steps x 2048 units (float64 in, float64 out, for both):

| method | `rsa.rdm` (all steps, one pass) | rsatoolbox `calc_rdm` per step | speed-up | max abs difference |
| --- | --- | --- | --- | --- |
| correlation | {corr['t_ours']:.2f} s | {corr['t_ref']:.2f} s | **{corr['speedup']:.1f}x** (target >= 5x) | {corr['max_abs_diff']:.1e} |
| euclidean | {eucl['t_ours']:.2f} s | {eucl['t_ref']:.2f} s | **{eucl['speedup']:.1f}x** (target >= 1x) | {eucl['max_abs_diff']:.1e} |

Cross-temporal comparison, {boot['steps']} model steps x {boot['bins']} recording bins on {boot['n_stim']} stimuli,
spearman, {boot['n_boot']} bootstrap samples of the stimuli (one draw for all cells, self-pairs dropped):

| | time |
| --- | --- |
| `rsa.bootstrap(..., n={boot['n_boot']})` (estimate, samples, 95% intervals) | **{boot['t_ours']:.1f} s** (target < 10 s) |
| rsatoolbox `compare` on materialised resampled RDMs, timed on 5 samples, x {boot['n_boot'] // 5} | {boot['t_ref_extrapolated']:.0f} s |
| speed-up | {boot['speedup']:.0f}x |
| max abs difference of the 5 checked samples | {boot['max_abs_diff']:.1e} |

The RDMs are one batched BLAS product over all steps (rsatoolbox's correlation RDM is
an `einsum` without BLAS, once per step; its euclidean RDM uses BLAS as well, so there
the gain is the per-step overhead); a bootstrap sample is a set of weights on the original stimulus
pairs (a pair drawn c_i and c_j times counts c_i * c_j times), so ranks are updated by
cumulative sums instead of re-sorting resampled RDMs, and every cell of the 8 x 50
matrix comes out of one batched product per chunk of samples.
"""
    print(text)
    if args.write:
        write_section("## RSA", text)


if __name__ == "__main__":
    main()
