"""Extraction throughput and memory.

Six parts (``--part``, default all), each a section of RESULTS.md:

- ``overlap``: on the tiny model and N generated PNG stimuli (Fashion-MNIST images,
  flipped/shifted copies to reach N), (a) the bare forward pass ``model.run`` over the
  prepared images, (b) writing the same bytes with the same compression and chunking,
  (c) ``vrnn.extract(..., out=...)`` from the files: t_extract / max(t_forward, t_write)
  (target <= 1.15), and peak RSS for 500 and 2000 stimuli (target: within 15%).
- ``input``: 300 natural JPEG photos (crops of scikit-learn's sample photos with colour
  shifts, 400-640 px), ``--layers gap``: extraction / forward-only, where forward-only is
  ``model.run`` on the already-prepared tensors with the same batch size, layers and
  threads extraction gives the model; in one process after a warm-up, and for the
  command line. Targets: <= 1.5 for the tiny ``lateral`` network (input-bound), <= 1.1
  for ``ccn23-64/lateral`` (compute-bound).
- ``resume``: what recording and checking each image file's size, mtime and hash costs
  (stated for 1M files).
- ``shards``: one run vs 2 shards at once vs torchrun with 2 ranks (wall time).
- ``zarr``: netCDF vs Zarr on the overlap part's stimuli and layers: write throughput (the
  same forward-pass batches written in one process, no model running) and size on disk,
  then the wall time of ``vrnn.extract`` into each.
- ``memory``: 64 photos of 4000x3000 (JPEG), default batch, tiny ``lateral``,
  ``--layers gap``: the sum over every process of the run (main, writer, decoding
  workers) of its peak PSS (psutil, sampled every 20 ms). Target <= 3 GiB.

    python benchmarks/extract.py --write                 # all parts, updates RESULTS.md
    python benchmarks/extract.py --part input --write
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


def make_photos(folder: Path, n: int, size=None, quality: int = 90) -> Path:
    """``n`` natural JPEG photos: seeded crops of scikit-learn's two sample photos (427 x 640) with
    colour shifts, 400-640 px wide; with ``size`` (w, h) every photo is resized to it."""
    from PIL import Image
    from sklearn.datasets import load_sample_images

    photos = load_sample_images().images
    rng = np.random.default_rng(0)
    for i in range(n):
        im = photos[i % 2].astype(np.float32)
        h, w = im.shape[:2]
        cw = int(rng.integers(400, w + 1))
        ch = min(h, int(cw * 0.75))
        y, x = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
        crop = im[y:y + ch, x:x + cw] * rng.uniform(0.8, 1.2, 3) + rng.uniform(-20, 20, 3)
        pic = Image.fromarray(np.clip(crop, 0, 255).astype(np.uint8))
        if size is not None:
            pic = pic.resize(size, Image.BICUBIC)
        d = folder / ("china" if i % 2 == 0 else "flower")
        d.mkdir(parents=True, exist_ok=True)
        pic.save(d / f"{i:04d}.jpg", quality=quality)
    return folder


def bench_input(model_name: str, folder: Path, batch_size: int, repeats: int) -> dict:
    """Extraction / forward-only for ``--layers gap`` on the photos of ``folder``."""
    import torch

    import vision_rnn as vrnn
    from vision_rnn.extract import default_workers

    model = vrnn.load_model(model_name, weights="random", seed=0)
    stim = vrnn.load_stimuli(folder)
    n = len(stim)
    batches = [x for _, x in stim.batches(batch_size, model.input_size, model.mean, model.std)]
    threads = torch.get_num_threads()
    torch.set_num_threads(max(1, min(threads, (os.cpu_count() or 2) - 1)))     # as extraction does

    def forward():
        with torch.inference_mode():
            for x in batches:
                model.run(x, layers=["gap"])

    forward()
    t_fwd = min(_timed(forward) for _ in range(repeats))
    torch.set_num_threads(threads)
    tmp = Path(tempfile.mkdtemp(prefix="vrnn-input-"))

    def run():
        out = tmp / "a.nc"
        out.unlink(missing_ok=True)
        vrnn.extract(model, stim, layers=["gap"], batch_size=batch_size, out=out).close()

    run()                                             # warm-up
    t_ext = min(_timed(run) for _ in range(repeats))
    cmd = [sys.executable, "-m", "vision_rnn", "extract", "--model", model_name, "--weights", "random",
           "--stimuli", str(folder), "--layers", "gap", "--batch-size", str(batch_size), "-q", "--overwrite",
           "-o", str(tmp / "cli.nc")]
    t_cli = min(_timed(lambda: subprocess.run(cmd, check=True, capture_output=True)) for _ in range(repeats))
    return dict(model=model_name, n=n, batch_size=batch_size, workers=default_workers(),
                model_threads=max(1, min(threads, (os.cpu_count() or 2) - 1)), t_forward=t_fwd,
                t_extract=t_ext, ratio=t_ext / t_fwd, t_cli=t_cli, cli_ratio=t_cli / t_fwd)


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def bench_memory(folder: Path) -> dict:
    """Sum over the processes of one `vrnn extract` run of their peak PSS."""
    import psutil

    out = folder.parent / "mem.nc"
    out.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "vision_rnn", "extract", "--model", "lateral", "--weights", "random",
           "--stimuli", str(folder), "--layers", "gap", "-q", "-o", str(out)]
    t0 = time.perf_counter()
    proc = psutil.Popen(cmd)
    peak: dict = {}
    while proc.poll() is None:
        try:
            procs = [proc] + proc.children(recursive=True)
        except psutil.Error:
            procs = [proc]
        for p in procs:
            try:
                pss = p.memory_full_info().pss
            except psutil.Error:
                continue
            key = (p.pid, p.create_time())
            peak[key] = max(peak.get(key, 0), pss)
        time.sleep(0.02)
    if proc.returncode != 0:
        raise SystemExit(f"vrnn extract failed ({proc.returncode})")
    top = sorted(peak.values(), reverse=True)
    return dict(n=len(list(folder.rglob("*.jpg"))), seconds=time.perf_counter() - t0, processes=len(peak),
                sum_peak_pss_mib=sum(top) / 2**20, largest_mib=[v / 2**20 for v in top[:4]])


def overlap_section(args) -> str:
    r = bench_overlap(args.n, args.batch_size, args.compression, args.repeats)
    print(json.dumps(r, indent=1))
    rss = [peak_rss(500), peak_rss(2000)]
    print(json.dumps(rss, indent=1))
    growth = rss[1]["main_mib"] / rss[0]["main_mib"] - 1
    return f"""## Extraction: overlap of compute and writing, memory

Command: `python benchmarks/extract.py --part overlap --write` ({platform.machine()}, {os.cpu_count()} cores,
CPU only; tiny `lateral` with random weights, {r['n']} PNG stimuli, batch {r['batch_size']}, all five layers,
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


def input_section(args) -> str:
    tmp = Path(tempfile.mkdtemp(prefix="vrnn-photos-"))
    folder = make_photos(tmp / "photos", 300)
    tiny = bench_input("lateral", folder, args.batch_size, args.repeats)
    print(json.dumps(tiny, indent=1))
    ccn = bench_input("ccn23-64/lateral", folder, args.batch_size, args.repeats)
    print(json.dumps(ccn, indent=1))
    rows = "\n".join(
        f"| {r['model']} | {r['t_forward']:.2f} s | {r['t_extract']:.2f} s | **{r['ratio']:.2f}** (<= {target}) "
        f"| {r['t_cli']:.2f} s ({r['cli_ratio']:.1f}x) |"
        for r, target in ((tiny, 1.5), (ccn, 1.1)))
    return f"""## Extraction: input pipeline

Command: `python benchmarks/extract.py --part input --write` ({platform.machine()}, {os.cpu_count()} cores,
CPU only). {tiny['n']} natural JPEG photos (crops of scikit-learn's sample photos, 400-640 px
wide, colour-shifted), random weights, `--layers gap`, batch {tiny['batch_size']}, default
workers ({tiny['workers']} decoding process(es)), the model on {tiny['model_threads']} thread(s) (all cores
but the writer's); best of {args.repeats} after a warm-up, in one process.
Forward-only is `model.run` on the already-prepared tensors with the same batch size,
layers and threads.

| model | forward-only | `vrnn.extract` | ratio (target) | `vrnn extract` command (incl. start-up) |
| --- | --- | --- | --- | --- |
{rows}

The command line pays the interpreter, torch and the model's start-up once per run
(no torchvision import on the extraction path).
"""


def memory_section(args) -> str:
    tmp = Path(tempfile.mkdtemp(prefix="vrnn-big-"))
    folder = make_photos(tmp / "big", 64, size=(4000, 3000))
    r = bench_memory(folder)
    print(json.dumps(r, indent=1))
    return f"""## Extraction: memory with 12-megapixel photos

Command: `python benchmarks/extract.py --part memory --write` ({platform.machine()}, {os.cpu_count()} cores).
`vrnn extract --model lateral --weights random --layers gap` over {r['n']} JPEG photos of
4000 x 3000, default batch (64) and workers; every process of the run (main, writer, decoding
workers; {r['processes']} processes) sampled with psutil every 20 ms.

| measure | value |
| --- | --- |
| **sum over the processes of their peak PSS** (target <= 3 GiB) | **{r['sum_peak_pss_mib']:.0f} MiB** |
| largest peaks | {', '.join(f'{v:.0f}' for v in r['largest_mib'])} MiB |
| wall time | {r['seconds']:.1f} s |

JPEG files decode at the largest DCT scale (1/2, 1/4, 1/8) that keeps both sides at least
twice the model input, then resize with antialiasing, one image at a time in the decoding
processes: no full-resolution float batch exists.
"""


def resume_section(args) -> str:
    """What the per-image change check costs: hashing while writing, stat (and rarely hashing) on resume."""
    from vision_rnn.extract import SOURCE, _check_sources, file_hash, sources_path
    from vision_rnn.stimuli import decode_image, load_stimuli

    tmp = Path(tempfile.mkdtemp(prefix="vrnn-sources-"))
    folder = make_photos(tmp / "photos", 2000)
    stim = load_stimuli(folder)
    n = len(stim)
    mean_bytes = sum(os.path.getsize(f) for f in stim.files) / n
    t0 = time.perf_counter()
    rec = np.zeros(n, dtype=SOURCE)
    for i, f in enumerate(stim.files):
        st = os.stat(f)
        rec[i] = (i, st.st_size, st.st_mtime_ns, file_hash(f))
    t_record = time.perf_counter() - t0
    partial = tmp / "x.nc.partial"
    rec.tofile(sources_path(partial))
    t_check = min(_timed(lambda: _check_sources(partial, stim, n)) for _ in range(3))
    t0 = time.perf_counter()
    for f in stim.files[:200]:
        decode_image(f, 64)
    t_decode = (time.perf_counter() - t0) / 200
    per_record, per_check = t_record / n, t_check / n
    million = 1_000_000
    return f"""## Extraction: checking images on resume

Command: `python benchmarks/extract.py --part resume --write` ({platform.machine()}, {os.cpu_count()} cores,
files in the page cache). While writing, each image file's size, mtime and 64-bit BLAKE2b
content hash go to `<out>.partial.sources` (32 bytes an image); a resume stats every image
already written and reads (hashes) only those whose size or mtime changed.

| measure ({n} JPEG photos, {mean_bytes / 1024:.0f} KiB on average) | per image | 1M images |
| --- | --- | --- |
| recording (stat + hash, in the decoding workers) | {per_record * 1e6:.0f} us | {per_record * million:.0f} s of worker time |
| decoding the same image for a 64-px model, for comparison | {t_decode * 1e6:.0f} us | {t_decode * million:.0f} s |
| resume check, nothing changed (stat only) | {per_check * 1e6:.1f} us | {per_check * million:.1f} s |
| the record on disk | 32 B | {32 * million / 2**20:.0f} MiB |

On a network file system a stat costs more (often 0.1-1 ms: 2-17 minutes for 1M files);
a touched file (new mtime, same bytes) costs one read and hash.
"""


def shards_section(args) -> str:
    """Wall time of one run vs 2 shards at once vs torchrun with 2 ranks (command line, photos)."""
    import shutil as sh

    tmp = Path(tempfile.mkdtemp(prefix="vrnn-shards-"))
    folder = make_photos(tmp / "photos", 600)
    base = [sys.executable, "-m", "vision_rnn", "extract", "--model", "lateral", "--weights", "random",
            "--stimuli", str(folder), "--layers", "it,gap", "-q"]

    def one():
        subprocess.run(base + ["-o", str(tmp / "one.nc"), "--overwrite"], check=True)

    def two():
        sh.rmtree(tmp / "two.nc.shards", ignore_errors=True)
        procs = [subprocess.Popen(base + ["-o", str(tmp / "two.nc"), "--shard", f"{i}/2"]) for i in range(2)]
        assert all(p.wait() == 0 for p in procs)

    def merge():
        subprocess.run([sys.executable, "-m", "vision_rnn", "merge", str(tmp / "two.nc"), "--overwrite"],
                       check=True, capture_output=True)

    torchrun = sh.which("torchrun", path=str(Path(sys.executable).parent)) or sh.which("torchrun")

    def ranks():
        sh.rmtree(tmp / "tr.nc.shards", ignore_errors=True)
        subprocess.run([torchrun, "--standalone", "--nproc_per_node", "2", "-m"] + base[2:] +
                       ["-o", str(tmp / "tr.nc")], check=True, capture_output=True)

    t = {name: min(_timed(fn) for _ in range(args.repeats)) for name, fn in
         (("one", one), ("two", two), ("merge", merge), ("torchrun", ranks))}
    print(json.dumps(t, indent=1))
    return f"""## Extraction: shards and torchrun

Command: `python benchmarks/extract.py --part shards --write` ({platform.machine()}, {os.cpu_count()} cores,
CPU only). `vrnn extract --model lateral --weights random --layers it,gap` over 600 JPEG photos
(as in the input-pipeline section), best of {args.repeats}, wall time including start-up.

| run | wall time | speed-up over one process |
| --- | --- | --- |
| one process | {t['one']:.2f} s | 1.00 |
| 2 shards at once (`--shard 0/2`, `--shard 1/2`) | {t['two']:.2f} s | {t['one'] / t['two']:.2f} |
| then `vrnn merge` | {t['merge']:.2f} s | |
| `torchrun --nproc_per_node 2` | {t['torchrun']:.2f} s | {t['one'] / t['torchrun']:.2f} |

Little or no gain is expected on {os.cpu_count()} cores: one run already keeps both busy (the model on
one thread, a decoding process and the writer on the rest), so two runs share the same two
cores and each also pays its own start-up (interpreter, torch, model: about 2.5 s; torchrun adds
its own launcher and rendezvous on top). Shards
pay off across machines or GPUs, where each shard brings its own cores.
"""


def zarr_section(args) -> str:
    """netCDF file vs Zarr store: write throughput, size on disk and extraction wall time."""
    import torch

    import vision_rnn as vrnn
    from vision_rnn import atomic, store
    from vision_rnn.extract import extract
    from vision_rnn.stimuli import prepare

    n, bs = args.n, args.batch_size
    tmp = Path(tempfile.mkdtemp(prefix="vrnn-zarr-"))
    folder = make_stimuli(tmp / "stim", n)
    model = vrnn.load_model("lateral", weights="random", seed=0)
    stim = vrnn.load_stimuli(folder)
    images = stim.load(range(n))
    layers = ["v1", "v2", "v4", "it", "gap"]
    outs = []
    with torch.inference_mode():
        for i in range(0, n, bs):
            s = model.run(prepare(images[i:i + bs], model.input_size, model.mean, model.std), layers=layers)
            outs.append({k: v.reshape(v.shape[0], v.shape[1], -1).numpy() for k, v in s.items()})
    raw = sum(o[k].nbytes for o in outs for k in o)
    specs = [store.VarSpec("logits", None, 10, "float32")]
    specs += [store.VarSpec(l, l, outs[0][l].shape[2], "float32",
                            spatial=model.layer_shape(l) if l != "gap" else None) for l in layers]
    layout = store.Layout(n, model.timesteps, bs, specs)

    def best(fn):
        times, r = [], None
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            r = fn()
            times.append(time.perf_counter() - t0)
        return min(times), r

    import zarr

    rows = []
    for suffix, compression, threads in ((".nc", "zstd", None), (".zarr", "zstd", None), (".zarr", "zstd", 1),
                                         (".nc", "none", None), (".zarr", "none", None)):
        with zarr.config.set({"threading.max_workers": threads}):
            def write():
                path = tmp / f"write{suffix}"
                atomic.remove(path)
                store.create(path, layout, stimuli_ids=stim.ids, labels=np.zeros(n, int),
                             label_names=stim.label_names, metadata=None, classes=model.classes,
                             readout_weight=np.zeros((10, 128), np.float32), readout_bias=None,
                             attrs={"x": 1}, compression=compression)
                with store.appending(path) as ds:
                    targets = {"logits": ds.variables["logits"],
                               **{l: ds.groups[l].variables["activation"] for l in layers}}
                    for b, o in enumerate(outs):
                        store.write_rows(ds, targets, b * bs, o, o["logits"].shape[0])
                        ds.setncattr("batches_done", b + 1)
                        ds.sync()
                return store.size_on_disk(path)

            def run_extract():
                out = tmp / f"extract{suffix}"
                atomic.remove(out)
                extract(model, stim, layers=layers, batch_size=bs, out=out, compression=compression).close()

            t_write, size = best(write)
            t_ext, _ = best(run_extract)
        fmt = "netCDF-4" if suffix == ".nc" else "Zarr v3" + (", 1 encoding thread" if threads else "")
        rows.append(dict(fmt=fmt, compression=compression, t_write=t_write, mib_s=raw / 2**20 / t_write,
                         size=size / 2**20, t_extract=t_ext))
    print(json.dumps(rows, indent=1))
    table = "\n".join(f"| {r['fmt']} | {r['compression']} | {r['t_write']:.2f} s | {r['mib_s']:.0f} MiB/s | "
                      f"{r['size']:.0f} MiB | {r['t_extract']:.2f} s |" for r in rows)
    return f"""## Extraction: Zarr vs netCDF

Command: `python benchmarks/extract.py --part zarr --write` ({platform.machine()}, {os.cpu_count()} cores,
CPU only). {n} Fashion-MNIST PNG stimuli through the tiny random-weight `lateral` network, every
layer unpooled (v1, v2, v4, it, gap and the logits: {raw / 2**20:.0f} MiB of float32), batch {bs}, best
of {args.repeats}. *Write*: the same forward-pass batches written into a new file or store in one
process (no model running), as the extraction's writer process writes them; *extract*:
`vrnn.extract(..., out=...)` from the image files, writer process and model overlapping.

| format | compression | write | write throughput (uncompressed) | size on disk | extract |
| --- | --- | --- | --- | --- | --- |
{table}

netCDF-4 compresses each chunk with zstd (level 1, shuffle) on one thread, inside HDF5; the
Zarr store compresses with Blosc-zstd (level 1, byte shuffle, 1 MiB blocks), and zarr encodes the chunks of
a batch's variables in parallel threads (the row with one encoding thread,
`zarr.config.set({{"threading.max_workers": 1}})`, shows what the threads add), so its write
throughput grows with cores where netCDF's does not. Uncompressed, Zarr pays for one file per
chunk. In an extraction the writer shares the machine with the model and the decoding
workers: on {os.cpu_count()} cores Zarr's encoding threads and per-chunk files take CPU time from
the model, and the extraction into a store is slower than into a netCDF file, which stays the
default; Zarr is for object stores, file systems where HDF5 locking fails, and readers that
want chunk files.
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--part", default="overlap,input,memory,resume,shards,zarr",
                    help="comma-separated: overlap, input, memory, resume, shards, zarr")
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--compression", default="zstd")
    ap.add_argument("--write", action="store_true", help="update benchmarks/RESULTS.md")
    args = ap.parse_args()
    parts = {"overlap": overlap_section, "input": input_section, "memory": memory_section,
             "resume": resume_section, "shards": shards_section, "zarr": zarr_section}
    for name in args.part.split(","):
        text = parts[name](args)
        print(text)
        if args.write:
            write_section(text.splitlines()[0], text)


if __name__ == "__main__":
    main()
