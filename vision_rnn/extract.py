"""Model x stimuli -> every layer at every step, streamed into an activation file.

The model runs batch by batch in this process while a writer process
compresses and writes the previous batches: netCDF4 holds the GIL while it
writes, so a writer thread would not overlap with the forward pass. Batches
travel through a small ring of shared-memory slots (one copy, no pickling).
After every batch the writer syncs the file and updates ``batches_done``, so an
interrupted run loses at most the batch in flight and ``resume=True`` continues
it. The file is ``<out>.partial`` until complete, then renamed.
"""

from __future__ import annotations

import math
import mmap
import multiprocessing as mp
import os
import queue
import shutil
import sys
import tempfile
import traceback
from pathlib import Path

import numpy as np

from . import store
from .errors import StoreError, VRNNError

SLOTS = 3


def extract(model, stimuli, layers=None, timesteps=None, batch_size: int = 64, device=None, out=None,
            pool=None, dtype: str = "float32", compression: str = "zstd", resume: bool = False,
            overwrite: bool = False, skip_bad: bool = False, progress: bool = False):
    """Run ``model`` over ``stimuli``; return every layer at every step as an ``xarray.DataTree``.

    With ``out=`` the activations stream into that netCDF file and the result is
    the file opened lazily; without it they are returned in memory.

    Parameters
    ----------
    model : a model from :func:`vision_rnn.load_model`.
    stimuli : a :class:`~vision_rnn.stimuli.Stimuli` or anything :func:`load_stimuli` takes.
    layers : layers to store (default v1, v2, v4, it, gap; "retina" on request).
    timesteps : steps to unroll (default: the model's).
    pool : ``"mean"`` stores the spatial mean per channel of convolutional layers.
    dtype : ``"float32"`` or ``"float16"``: float16 rounds layer activations to float16
        precision (netCDF has no 16-bit float: they are stored as float32 with the
        low mantissa bits zeroed, BitRound, so compression about halves the file);
        logits stay float32.
    compression : ``"zstd"`` (level 1), ``"zlib"`` (for readers without the zstd plugin) or ``"none"``.
    resume : continue an interrupted ``<out>.partial`` (provenance must match).

    >>> import vision_rnn as vrnn
    >>> model = vrnn.load_model("lateral", weights="random")
    >>> tree = vrnn.extract(model, "builtin:fashion-mnist", layers=["it"], pool="mean")
    >>> vrnn.layer(tree, "it").sizes
    Frozen({'stimulus': 500, 'time': 8, 'unit': 128})
    """
    from .models.blt import DEFAULT_LAYERS, LAYERS
    from .stimuli import load_stimuli

    stim = load_stimuli(stimuli)
    if not _is_int(batch_size) or batch_size < 1:
        raise VRNNError(f"`batch_size={batch_size}`: must be a whole number of at least 1")
    if timesteps is not None and (not _is_int(timesteps) or timesteps < 1):
        raise VRNNError(f"`timesteps={timesteps}`: must be a whole number of at least 1 (or None for the "
                        f"model's {model.timesteps})")
    steps = int(model.timesteps if timesteps is None else timesteps)
    if isinstance(layers, str):
        layers = [layers]                           # one layer by name, not its letters
    if layers is not None:
        layers = list(layers)
        if not layers:
            raise VRNNError("`layers` names no layer; pass layer names, or None for the default "
                            f"({', '.join(DEFAULT_LAYERS)})")
    layers = layers if layers is not None else list(DEFAULT_LAYERS)
    unknown = [str(l) for l in layers if l not in LAYERS]
    if unknown:
        raise VRNNError(f"`layers`: {', '.join(unknown)} not in this model; it has {', '.join(LAYERS)}")
    if len(set(layers)) != len(layers):
        raise VRNNError(f"`layers`: a layer is named twice ({','.join(layers)})")
    if stim.metadata is not None:
        store.check_metadata_names(list(stim.metadata.columns), LAYERS, where=stim.metadata_source)
    if pool not in (None, "none", "mean"):
        raise VRNNError(f"`pool={pool}`: not mean or None")
    pool = None if pool == "none" else pool
    if dtype not in ("float32", "float16"):
        raise VRNNError(f"`dtype={dtype}`: not float32 or float16")
    if compression not in store.COMPRESSIONS:
        raise VRNNError(f"`compression={compression}`: not one of {', '.join(store.COMPRESSIONS)}")
    if dtype == "float16" and compression == "none" and out is not None:
        raise VRNNError("`dtype=float16` saves space only with compression (zstd or zlib): netCDF stores "
                        "float16-rounded values as float32 and compression packs them")
    stim = stim.check(skip_bad=skip_bad)
    n = len(stim)
    specs = [store.VarSpec("logits", None, len(model.classes), "float32")]
    for name in layers:
        shape = model.layer_shape(name)
        if pool == "mean" and len(shape) == 3:
            specs.append(store.VarSpec(name, name, shape[0], dtype))
        else:
            specs.append(store.VarSpec(name, name, int(np.prod(shape)), dtype,
                                       spatial=shape if len(shape) == 3 else None))
    layout = store.Layout(n, steps, min(batch_size, n), specs)
    attrs = store.base_attrs(model, stim, layout, layers=layers, pool=pool, dtype=dtype,
                             compression=compression, skipped=stim.skipped)

    in_memory = out is None
    if in_memory:
        out = Path(tempfile.mkdtemp(prefix="vrnn-")) / "activations.nc"
        compression = attrs["compression"] = "none"
    out = Path(out)
    partial = out.with_name(out.name + ".partial")
    try:
        _check_folder(out)                          # before the lock, which lives in that folder
        with store.writing(partial):
            _check_output(out, partial, resume, overwrite)
            _write(model, stim, layout, layers, pool, steps, device, out, partial, attrs, resume, progress)
        if in_memory:
            with store.open_activations(out) as tree:
                return tree.load()
    finally:
        if in_memory:
            shutil.rmtree(out.parent, ignore_errors=True)
    return store.open_activations(out)


def _is_int(x) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, bool)


def _write(model, stim, layout, layers, pool, steps, device, out, partial, attrs, resume, progress) -> None:
    """Create (or continue) ``partial``, run every batch into it, then mark it complete as ``out``."""
    import torch

    start_batch = 0
    created_now = False
    if resume and partial.exists():
        store.check_not_open(partial)
        bad = store.provenance_mismatch(partial, attrs)
        if bad:
            raise StoreError(f"{partial}: cannot resume, it was written with different {', '.join(bad)}; "
                             "rerun with the same options, or start again with `overwrite=True`")
        start_batch = store.resume_point(partial)
    else:
        _check_space(out, layout, progress)
        weight = model.readout.weight.detach().cpu().numpy()
        bias = model.readout.bias.detach().cpu().numpy() if model.readout.bias is not None else None
        try:
            store.create(partial, layout, stimuli_ids=stim.ids, labels=stim.labels_for(model.classes),
                         label_names=stim.label_names, metadata=stim.metadata, classes=model.classes,
                         readout_weight=weight, readout_bias=bias, attrs=attrs,
                         compression=attrs["compression"])
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        created_now = True
    device = torch.device(device) if device else next(model.parameters()).device
    model = model.to(device).eval()
    try:
        _run(model, stim, layout, layers, pool, steps, device, partial, start_batch, progress)
    except BaseException:
        if created_now and not isinstance(sys.exc_info()[1], KeyboardInterrupt):
            partial.unlink(missing_ok=True)
        raise
    store.finish(partial, out)


def _check_folder(out: Path) -> None:
    if not out.parent.is_dir():
        raise VRNNError(f"output folder {out.parent} does not exist; create it or choose another `out`")
    if not os.access(out.parent, os.W_OK):
        raise VRNNError(f"output folder {out.parent} is not writable; choose another `out`")


def _check_output(out: Path, partial: Path, resume: bool, overwrite: bool) -> None:
    """Refuse an output that would be lost without ``overwrite``, or a resume with nothing to resume;
    with ``overwrite``, remove what is in the way (the caller holds the partial's writing lock)."""
    if resume and not partial.exists():
        if out.exists():
            raise VRNNError(f"{out} is complete: every batch is written, nothing to resume")
        return                                      # nothing to resume: start from the beginning
    if out.exists() and not overwrite:
        if resume:
            raise VRNNError(f"{out} is complete, and resuming {partial.name} would replace it; move one of "
                            "them away, or pass `overwrite=True` to replace the complete file")
        raise VRNNError(f"{out} exists; pass `overwrite=True` to replace it")
    if partial.exists() and not resume:
        if not overwrite:
            raise VRNNError(f"{partial} exists from an interrupted run; pass `resume=True` to continue it "
                            "or `overwrite=True` to start again")
        partial.unlink()


def _check_space(out: Path, layout, progress: bool) -> None:
    need = layout.nbytes()
    free = shutil.disk_usage(out.parent).free
    if progress:
        print(f"vrnn: writing at most {need / 2**20:.1f} MiB (uncompressed) to {out}", file=sys.stderr)
    if need > free:
        raise VRNNError(f"{out.parent}: {free / 2**20:.0f} MiB free but the file may need up to "
                        f"{need / 2**20:.0f} MiB; free space, or store less (`pool=mean`, `dtype=float16`, fewer `layers`)")


# -- the pipeline ------------------------------------------------------------------------------
def _slot_views(buf, offset0: int, layout) -> dict:
    views, off = {}, offset0
    for s in layout.specs:
        shape = (layout.batch_size, layout.timesteps, s.n)
        views[s.name] = np.ndarray(shape, dtype=s.stored, buffer=buf, offset=off)
        off += int(np.prod(shape)) * np.dtype(s.stored).itemsize
    return views


def _run(model, stim, layout, layers, pool, steps, device, partial, start_batch, progress):
    import torch
    from tqdm.auto import tqdm

    n, bs = layout.n_stimuli, layout.batch_size
    total = math.ceil(n / bs)
    if start_batch >= total:
        return
    slot_bytes = layout.batch_nbytes()
    ctx = mp.get_context("fork")
    buf = mmap.mmap(-1, slot_bytes * SLOTS)  # shared with the forked writer
    work, free, result = ctx.Queue(), ctx.Queue(), ctx.Queue()
    for s in range(SLOTS):
        free.put(s)
    writer = ctx.Process(target=_writer, args=(str(partial), buf, slot_bytes, layout, work, free, result,
                                               os.getpid()), daemon=True)
    writer.start()
    store.note_writer(partial, writer.pid)
    bar = tqdm(total=n, initial=start_batch * bs, unit="img", disable=not progress, desc="extract")
    # leave a core to the writer: compute threads preempted by it stall each other at every barrier
    threads = torch.get_num_threads()
    if device.type == "cpu":
        torch.set_num_threads(max(1, min(threads, (os.cpu_count() or 2) - 1)))
    try:
        with torch.inference_mode():
            for b in range(start_batch, total):
                lo = b * bs
                idx = range(lo, min(lo + bs, n))
                x = _prepare(stim, idx, model).to(device)
                states = model.run(x, timesteps=steps, layers=layers)
                slot = _get_slot(free, result, writer)
                views = _slot_views(buf, slot * slot_bytes, layout)
                k = len(idx)
                np.copyto(views["logits"][:k], states["logits"].float().cpu().numpy())
                for name in layers:
                    a = states[name]
                    if pool == "mean" and a.dim() == 5:
                        a = a.mean(dim=(3, 4))
                    a = a.reshape(k, steps, -1).cpu().numpy()
                    np.copyto(views[name][:k], a, casting="same_kind")
                work.put((slot, lo, k, b))
                bar.update(k)
        work.put(None)
        _wait(writer, result)
    except KeyboardInterrupt:
        # Ctrl-C: the writer finishes the batches already handed to it, so --resume loses none of them
        work.put(None)
        writer.join(timeout=60)
        if writer.is_alive():
            writer.terminate()
            writer.join()
        raise
    except BaseException:
        if writer.is_alive():
            writer.terminate()
        writer.join()
        raise
    finally:
        torch.set_num_threads(threads)
        bar.close()
        buf.close()


def _prepare(stim, idx, model):
    from .stimuli import prepare

    return prepare(stim.load(idx), model.input_size, model.mean, model.std)


def _check_writer(result, writer):
    try:
        status = result.get_nowait()
    except queue.Empty:
        if not writer.is_alive():
            raise RuntimeError(f"the writer process died (exit code {writer.exitcode})")
        return
    if status[0] == "error":
        raise _writer_error(status[1])


def _writer_error(msg: str):
    if msg.startswith("OSError") or "No space left" in msg:
        return StoreError(f"writing the activation file failed: {msg.strip().splitlines()[-1]}")
    return RuntimeError(f"the writer process failed:\n{msg}")


def _get_slot(free, result, writer) -> int:
    while True:
        try:
            return free.get(timeout=0.2)
        except queue.Empty:
            _check_writer(result, writer)


def _wait(writer, result):
    while True:
        try:
            status = result.get(timeout=0.5)
            break
        except queue.Empty:
            if not writer.is_alive():
                raise RuntimeError(f"the writer process died (exit code {writer.exitcode})")
    writer.join()
    if status[0] == "error":
        raise _writer_error(status[1])


def _writer(path, buf, slot_bytes, layout, work, free, result, parent_pid):
    """Writer process: take filled slots, write them, sync, free the slot."""
    try:
        with store.appending(path, check=False) as ds:
            targets = {s.name: (ds.variables[s.name] if s.group is None else ds.groups[s.group].variables["activation"])
                       for s in layout.specs}
            for v in targets.values():
                v.set_auto_maskandscale(False)
            while True:
                try:
                    item = work.get(timeout=0.5)
                except queue.Empty:
                    if os.getppid() != parent_pid:  # the extraction was killed: stop cleanly
                        break
                    continue
                if item is None:
                    break
                slot, lo, k, b = item
                views = _slot_views(buf, slot * slot_bytes, layout)
                for name, var in targets.items():
                    var[lo:lo + k] = views[name][:k]
                ds.setncattr("batches_done", b + 1)
                ds.sync()
                free.put(slot)
        result.put(("ok", ""))
    except BaseException:
        result.put(("error", traceback.format_exc()))


def summary_line(tree, out) -> str:
    out = Path(out)
    n = tree.sizes["stimulus"]
    t = tree.sizes["time"]
    parts = [f"{name} {tree[name].sizes['unit']}" for name in tree.children]
    size = out.stat().st_size / 2**20
    return (f"wrote {out}: {n} stimuli x {t} steps; layers {', '.join(parts)} units; "
            f"{size:.1f} MiB")
