"""Extraction throughput and memory: does writing overlap with the forward pass?

On the tiny model and N generated stimuli (Fashion-MNIST images saved as PNG,
flipped/shifted copies to reach N), time

  (a) the bare forward pass ``model.run`` over the decoded, prepared images;
  (b) writing the same bytes with the same compression and chunking, one write
      call per batch, in this process;
  (c) ``vrnn.extract(..., out=...)`` from the image files;

and report t_extract / max(t_forward, t_write) (target <= 1.15: the two
overlap) next to t_forward + t_write (what a pipeline without overlap pays).
Then peak RSS of ``vrnn extract`` for 500 and 2000 stimuli, each in a fresh
process (target: within 15%).

    python benchmarks/extract.py            # prints, and with --write updates RESULTS.md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _results import write_section

import numpy as np

HERE = Path(__file__).parent


def make_stimuli(folder: Path, n: int) -> Path:
    from PIL import Image

    import vision_rnn as vrnn

    base = vrnn.load_stimuli("builtin:fashion-mnist")
    imgs = base.load(range(len(base)))
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        im = imgs[i % len(imgs)]
        k = i // len(imgs)
        if k % 2:
            im = im[:, ::-1]
        im = np.roll(im, k // 2, axis=0)
        cls = base.label_names[i % len(imgs)]
        (folder / cls).mkdir(exist_ok=True)
        Image.fromarray(np.ascontiguousarray(im[:, :, 0])).save(folder / cls / f"{i:05d}.png")
    return folder


def bench_overlap(n: int, batch_size: int, compression: str, repeats: int) -> dict:
    import torch

    import vision_rnn as vrnn
    from vision_rnn import store
    from vision_rnn.extract import extract
    from vision_rnn.stimuli import prepare

    tmp = Path(tempfile.mkdtemp(prefix="vrnn-bench-"))
    folder = make_stimuli(tmp / "stim", n)
    model = vrnn.load_model("lateral", weights="random", seed=0)
    stim = vrnn.load_stimuli(folder)
    images = stim.load(range(n))
    batches = [prepare(images[i:i + batch_size], model.input_size, model.mean, model.std)
               for i in range(0, n, batch_size)]
    layers = ["v1", "v2", "v4", "it", "gap"]

    def forward():
        outs = []
        with torch.inference_mode():
            for x in batches:
                s = model.run(x, layers=layers)
                outs.append({k: v.reshape(v.shape[0], v.shape[1], -1).numpy() for k, v in s.items()})
        return outs

    def best(fn):
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            r = fn()
            times.append(time.perf_counter() - t0)
        return min(times), r

    forward()  # warm-up
    t_fwd, outs = best(forward)

    def write():
        path = tmp / "write.nc"
        path.unlink(missing_ok=True)
        specs = [store.VarSpec("logits", None, 10, "float32")]
        specs += [store.VarSpec(l, l, outs[0][l].shape[2], "float32",
                                spatial=model.layer_shape(l) if l != "gap" else None) for l in layers]
        layout = store.Layout(n, model.timesteps, batch_size, specs)
        store.create(path, layout, stimuli_ids=stim.ids, labels=np.zeros(n, int), label_names=stim.label_names,
                     metadata=None, classes=model.classes, readout_weight=np.zeros((10, 128), np.float32),
                     readout_bias=None, attrs={"x": 1}, compression=compression)
        with store.appending(path) as ds:
            targets = {"logits": ds["logits"], **{l: ds[l]["activation"] for l in layers}}
            for b, o in enumerate(outs):
                lo = b * batch_size
                for k, v in targets.items():
                    v[lo:lo + o[k].shape[0]] = o[k]
                ds.setncattr("batches_done", b + 1)
                ds.sync()
        return path.stat().st_size

    t_write, size = best(write)

    def run_extract():
        out = tmp / "extract.nc"
        out.unlink(missing_ok=True)
        extract(model, stim, layers=layers, batch_size=batch_size, out=out, compression=compression)
        return out.stat().st_size

    t_ext, size_ext = best(run_extract)
    raw = sum(o[k].nbytes for o in outs for k in o)
    return dict(n=n, batch_size=batch_size, compression=compression, t_forward=t_fwd, t_write=t_write,
                t_extract=t_ext, ratio=t_ext / max(t_fwd, t_write), sum_ratio=(t_fwd + t_write) / max(t_fwd, t_write),
                raw_mib=raw / 2**20, file_mib=size_ext / 2**20)


def peak_rss(n: int) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="vrnn-rss-"))
    folder = make_stimuli(tmp / "stim", n)
    code = (
        "import vision_rnn as vrnn\n"
        "m = vrnn.load_model('lateral', weights='random', seed=0)\n"
        f"vrnn.extract(m, {str(folder)!r}, out={str(tmp / 'a.nc')!r})\n"
        "status = dict(l.split(':', 1) for l in open('/proc/self/status'))\n"
        "print(status['VmHWM'].split()[0])\n"
    )
    # VmHWM: this process's own high-water mark (ru_maxrss of a child also counts
    # what its parent held when it was forked)
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    return dict(n=n, main_mib=int(out.split()[-1]) / 1024)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--compression", default="zstd")
    ap.add_argument("--write", action="store_true", help="update benchmarks/RESULTS.md")
    args = ap.parse_args()
    r = bench_overlap(args.n, args.batch_size, args.compression, args.repeats)
    print(json.dumps(r, indent=1))
    rss = [peak_rss(500), peak_rss(2000)]
    print(json.dumps(rss, indent=1))
    growth = rss[1]["main_mib"] / rss[0]["main_mib"] - 1
    text = f"""## Extraction: overlap of compute and writing, memory

Command: `python benchmarks/extract.py --write` ({platform.machine()}, {os.cpu_count()} cores, CPU only;
tiny `lateral` with random weights, {r['n']} PNG stimuli, batch {r['batch_size']}, all five layers,
float32, {r['compression']}; best of {args.repeats}).

| measure | value |
| --- | --- |
| (a) forward pass `model.run` | {r['t_forward']:.2f} s |
| (b) writing the same bytes, same compression and chunks | {r['t_write']:.2f} s |
| (c) `vrnn.extract(..., out=...)` from the image files | {r['t_extract']:.2f} s |
| **t_extract / max(t_forward, t_write)** (target <= 1.15) | **{r['ratio']:.2f}** |
| (t_forward + t_write) / max(...), a pipeline without overlap | {r['sum_ratio']:.2f} |
| activations, uncompressed / file | {r['raw_mib']:.0f} MiB / {r['file_mib']:.0f} MiB |

On {os.cpu_count()} cores the forward pass alone already uses every core, so compute and
compression share them: even a perfect pipeline needs about (cores x t_forward + t_write) / cores
= {(os.cpu_count() * r['t_forward'] + r['t_write']) / os.cpu_count():.2f} s, a ratio of
{(os.cpu_count() * r['t_forward'] + r['t_write']) / os.cpu_count() / max(r['t_forward'], r['t_write']):.2f}
here. Extraction gives the model all cores but one and the writer process the last one.

Peak RSS (VmHWM) of a fresh process running `vrnn.extract` on all five layers (the
interpreter with torch and the other imports holds about 500 MiB of it):

| stimuli | peak RSS |
| --- | --- |
| 500 | {rss[0]['main_mib']:.0f} MiB |
| 2000 | {rss[1]['main_mib']:.0f} MiB |

**Growth of the peak from 500 to 2000 stimuli: {growth * 100:+.1f}%** (target: within 15%).
"""
    print(text)
    if args.write:
        write_section("## Extraction", text)




if __name__ == "__main__":
    main()
