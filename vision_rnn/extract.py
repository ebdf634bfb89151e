"""Model x stimuli -> every layer at every step, streamed into an activation file.

Three kinds of process share the work. Worker processes (a torch DataLoader) decode,
resize and normalise whole batches ahead of the model, a large JPEG decoding at a
reduced scale (:func:`vision_rnn.stimuli.decode_image`), so memory stays bounded
whatever the image resolution. The model runs in this process. A writer process
compresses and writes the finished batches (netCDF4 holds the GIL while it writes, so
a writer thread would not overlap with the forward pass); batches travel to it through
a small ring of shared-memory slots (one copy, no pickling).

After every batch the writer syncs the file and updates ``batches_done``, so an
interrupted run loses at most the batches in flight: a full disk, a killed writer, an
unreadable image or Ctrl-C keep ``<out>.partial`` with its finished batches, and
``resume=True`` continues it (only a run that wrote nothing leaves nothing). Beside
the partial file, ``<out>.partial.sources`` records each written image file's size,
modification time and content hash, so a resume refuses images that changed after
they were written; images not yet written may change (a bad file fixed, removed or
skipped), and the written batches are then carried into a file for the new stimulus
list. The file is ``<out>.partial`` until complete, then renamed.
"""

from __future__ import annotations

import math
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

from . import _locks, atomic, store
from ._inputs import SOURCE, batches, decoded, file_hash, scan_all
from ._writer import Writer, slot_views, sources_path
from ._zarr import is_zarr
from ._zarr import require as _zarr_check
from .errors import BadImages, StoreError, VRNNError, WriteFailed
from .stimuli import unreadable


def default_workers() -> int:
    """Decoding processes by default: one per core beyond the two the model and the writer use, 1 to 8."""
    return max(1, min(8, (os.cpu_count() or 2) - 2))


def extract(model, stimuli, layers=None, timesteps=None, batch_size: int = 64, device="auto", out=None,
            pool=None, dtype: str = "float32", compression: str = "zstd", resume: bool = False,
            overwrite: bool = False, skip_bad: bool = False, workers: int | None = None, shard=None,
            progress: bool = False):
    """Run ``model`` over ``stimuli``; return every layer at every step as an ``xarray.DataTree``.

    With ``out=`` the activations stream into that netCDF file (a Zarr v3 store for a
    name ending in ``.zarr``) and the result is the file opened lazily; without it
    they are returned in memory.

    Parameters
    ----------
    model : BLTNet or Recorded
        A model from :func:`vision_rnn.load_model` or :func:`vision_rnn.record`, or any
        object with the model protocol (DESIGN.md section 3).
    stimuli : Stimuli or str or os.PathLike or numpy.ndarray
        A :class:`~vision_rnn.stimuli.Stimuli` or anything :func:`load_stimuli` takes.
    layers : str or sequence of str, optional
        Layers to store (default: the model's default layers; v1, v2, v4, it, gap for
        the BLT family, "retina" on request).
    timesteps : int, optional
        Steps to unroll (default: the model's).
    batch_size : int, optional
        Stimuli per forward pass.
    device : str or torch.device, optional
        ``"auto"`` (CUDA when available, else the CPU), ``"cpu"``, ``"cuda[:N]"`` or ``"mps"``.
    out : str or os.PathLike, optional
        The file to write (NAME.nc, or a Zarr store NAME.zarr); it is
        ``<out>.partial`` until complete. Default: none, in memory.
    pool : {None, "none", "mean"}, optional
        ``"mean"`` stores the spatial mean per channel of convolutional layers.
    dtype : {"float32", "float16"}, optional
        float16 rounds layer activations to float16 precision (netCDF has no
        16-bit float: they are stored as float32 with the low mantissa bits
        zeroed, BitRound, so compression about halves the file); logits stay float32.
    compression : {"zstd", "zlib", "none"}, optional
        ``"zstd"`` (level 1), ``"zlib"`` (for readers without the zstd plugin) or ``"none"``.
    resume : bool, optional
        Continue an interrupted ``<out>.partial`` (provenance must match; image files
        already written must be unchanged).
    overwrite : bool, optional
        Replace an existing ``out`` (or ``<out>.partial``) instead of refusing.
    skip_bad : bool, optional
        Leave out unreadable images (their ids kept in the ``skipped`` attribute)
        instead of stopping.
    workers : int, optional
        Processes that decode and prepare batches ahead of the model (default
        :func:`default_workers`; 0: in this process).
    shard : tuple of int or str, optional
        ``(I, N)`` or ``"I/N"``: extract only the I-th of N contiguous blocks of the
        stimuli (``numpy.array_split``) into ``<out>.shards/``; ``open_activations(out)``
        opens the complete set as one, :func:`vision_rnn.merge` writes it as one file.
    progress : bool, optional
        Show a progress bar and the size to be written.

    Returns
    -------
    xarray.DataTree
        The logits (stimulus, time, class) at the root and one group per layer
        (stimulus, time, unit), with the readout, labels, metadata and provenance:
        the written file (with ``shard``, this shard's file) opened lazily, or,
        without ``out``, loaded into memory.

    Examples
    --------
    >>> import vision_rnn as vrnn
    >>> model = vrnn.load_model("lateral", weights="random")
    >>> tree = vrnn.extract(model, "builtin:fashion-mnist", layers=["it"], pool="mean")
    >>> vrnn.layer(tree, "it").sizes
    Frozen({'stimulus': 500, 'time': 8, 'unit': 128})
    """
    stim, steps, layers, pool, out = _checked_options(model, stimuli, layers, timesteps, batch_size, pool,
                                                      dtype, compression, out, workers)
    from .devices import resolve_device

    device = resolve_device(device)
    stim, out, shard_attrs = _take_shard(shard, stim, out)
    stim = stim.check(skip_bad=skip_bad, size=model.input_size)
    layout = _layout(model, len(stim), steps, batch_size, layers, pool, dtype)
    attrs = store.base_attrs(model, stim, layout, layers=layers, pool=pool, dtype=dtype,
                             compression=compression, skipped=stim.skipped)
    attrs.update(shard_attrs)
    return _store_run(model, stim, layout, layers, pool, steps, device, out, attrs, resume, overwrite,
                      workers, progress)


def _checked_options(model, stimuli, layers, timesteps, batch_size, pool, dtype, compression, out, workers):
    """Load the stimuli and check :func:`extract`'s options in order -> (stim, steps, layers, pool, out)."""
    from .stimuli import load_stimuli

    stim = load_stimuli(stimuli)
    if not _is_int(batch_size) or batch_size < 1:
        raise VRNNError(f"`batch_size={batch_size}`: must be a whole number of at least 1")
    if timesteps is not None and (not _is_int(timesteps) or timesteps < 1):
        raise VRNNError(f"`timesteps={timesteps}`: must be a whole number of at least 1 (or None for the "
                        f"model's {model.timesteps})")
    steps = int(model.timesteps if timesteps is None else timesteps)
    layers = _checked_layers(layers, model)
    if stim.metadata is not None:
        store.check_metadata_names(list(stim.metadata.columns), list(model.layer_names),
                                   where=stim.metadata_source)
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
    if workers is not None and (not _is_int(workers) or workers < 0):
        raise VRNNError(f"`workers={workers}`: must be a whole number of at least 0 (0: decode in this process)")
    if out is not None:
        out = Path(out)
        if out.is_dir() and not is_zarr(out):
            raise VRNNError(f"`out={out}` is a folder; name a file (NAME.nc) or a Zarr store (NAME.zarr)")
        if is_zarr(out):
            _zarr_check()
    return stim, steps, layers, pool, out


def _checked_layers(layers, model) -> list:
    """``layers`` of :func:`extract` as a checked list of ``model``'s layer names (None: its default layers)."""
    known, default = list(model.layer_names), list(model.default_layers)
    if isinstance(layers, str):
        layers = [layers]                           # one layer by name, not its letters
    if layers is not None:
        layers = list(layers)
        if not layers:
            raise VRNNError("`layers` names no layer; pass layer names, or None for the default "
                            f"({', '.join(default)})")
    layers = layers if layers is not None else default
    unknown = [str(l) for l in layers if l not in known]
    if unknown:
        raise VRNNError(f"`layers`: {', '.join(unknown)} not in this model; it has {', '.join(known)}")
    if len(set(layers)) != len(layers):
        raise VRNNError(f"`layers`: a layer is named twice ({','.join(layers)})")
    return layers


def _take_shard(shard, stim, out):
    """The stimuli and output file of one shard, and the shard's attributes -> (stim, out, shard_attrs).

    Without ``shard``: ``stim`` and ``out`` unchanged, and no attributes.
    """
    if shard is None:
        return stim, out, {}
    from . import _shards

    if out is None:
        raise VRNNError("`shard` needs `out`, the name of the whole data set (e.g. out='acts.nc')")
    index, count = _shards.parse(shard)
    rows = _shards.block(len(stim), index, count)
    shard_attrs = {"shard_index": index, "shard_count": count, "shard_start": int(rows[0]),
                   "set_n_stimuli": len(stim), "set_fingerprint": stim.fingerprint()}
    _check_folder(Path(out))
    out = _shards.shard_path(out, index, count)
    out.parent.mkdir(exist_ok=True)
    return stim.subset(rows), out, shard_attrs


def _layout(model, n: int, steps: int, batch_size: int, layers, pool, dtype):
    """The file's layout: the logits, then each layer (its spatial mean per channel with ``pool="mean"``)."""
    specs = [store.VarSpec("logits", None, len(model.classes), "float32")]
    for name in layers:
        shape = model.layer_shape(name)
        if pool == "mean" and len(shape) == 3:
            specs.append(store.VarSpec(name, name, shape[0], dtype))
        else:
            specs.append(store.VarSpec(name, name, int(np.prod(shape)), dtype,
                                       spatial=shape if len(shape) == 3 else None))
    return store.Layout(n, steps, min(batch_size, n), specs)


def _store_run(model, stim, layout, layers, pool, steps, device, out, attrs, resume, overwrite, workers,
               progress):
    """Write the activations into ``out`` and open it lazily; without ``out``, into a temporary file
    that is loaded into memory and then removed."""
    in_memory = out is None
    if in_memory:
        out = Path(tempfile.mkdtemp(prefix="vrnn-")) / "activations.nc"
        attrs["compression"] = "none"
    out = Path(out)
    partial = out.with_name(out.name + ".partial")
    try:
        _check_folder(out)                          # before the lock, which lives in that folder
        with _locks.writing(partial):
            _check_output(out, partial, resume, overwrite)
            _write(model, stim, layout, layers, pool, steps, device, out, partial, attrs, resume,
                   default_workers() if workers is None else int(workers), progress)
        if in_memory:
            with store.open_activations(out) as tree:
                return tree.load()
    finally:
        if in_memory:
            shutil.rmtree(out.parent, ignore_errors=True)
    return store.open_activations(out)


def _is_int(x) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, bool)


def _write(model, stim, layout, layers, pool, steps, device, out, partial, attrs, resume, workers,
           progress) -> None:
    """Create (or continue) ``partial``, run every batch into it, then mark it complete as ``out``."""
    start_batch = 0
    created_now = False
    sources = sources_path(partial)
    if resume and partial.exists():
        store.check_not_open(partial)
        start_batch = _resume_point(partial, stim, layout, attrs, model, progress)
    else:
        _check_space(out, layout, progress)
        _create(partial, stim, layout, model, attrs)
        sources.unlink(missing_ok=True)
        created_now = True
    model = model.to(device).eval()
    done = [start_batch]               # batches in the file, as the writer confirms them
    try:
        _run(model, stim, layout, layers, pool, steps, device, partial, start_batch, workers, done, progress)
    except BaseException as e:
        kept = done[0] > 0
        if created_now and not kept and not isinstance(e, KeyboardInterrupt):
            atomic.remove(partial)                    # nothing written: nothing left behind
            sources.unlink(missing_ok=True)
            if isinstance(e, BadImages):
                raise BadImages(scan_all(stim, e.found, model.input_size)) from None
            if isinstance(e, WriteFailed):
                raise StoreError(f"{e}; nothing was written: {e.fix}, then run it again") from None
            raise
        if isinstance(e, BadImages):
            raise BadImages(f"{e}; {_kept(partial, done[0], layout)}: fix or remove them (or add "
                             "`skip_bad=True`), then run it again with `resume=True`") from None
        if isinstance(e, WriteFailed):
            raise StoreError(f"{e}; {_kept(partial, done[0], layout)}: {e.fix}, then run it again with "
                             "`resume=True`") from None
        raise
    store.finish(partial, out)
    sources.unlink(missing_ok=True)


def _kept(partial: Path, done: int, layout) -> str:
    total = math.ceil(layout.n_stimuli / layout.batch_size)
    return f"{partial.name} keeps the {done} of {total} batches written"


def _create(partial: Path, stim, layout, model, attrs) -> None:
    readout = model.readout_parameters() if getattr(model, "readout_layer", None) else None
    weight, bias = readout if readout is not None else (None, None)
    try:
        store.create(partial, layout, stimuli_ids=stim.ids, labels=stim.labels_for(model.classes),
                     label_names=stim.label_names, metadata=stim.metadata, classes=model.classes,
                     readout_weight=weight, readout_bias=bias, attrs=attrs, compression=attrs["compression"])
    except BaseException:
        atomic.remove(partial)
        raise


# -- resuming -----------------------------------------------------------------------------------
def _resume_point(partial: Path, stim, layout, attrs, model, progress) -> int:
    """Check that ``partial`` can continue with ``stim`` and return the batch to start from.

    Everything but the stimuli must match. The stimuli already written must be the same
    (ids, labels, and for image files the size, mtime and content hash recorded while
    writing); the rest may differ (a bad image fixed, removed or skipped): then the
    written batches are carried into a new partial file laid out for ``stim``.
    """
    fixed = [k for k in store.PROVENANCE if k not in ("stimuli_fingerprint", "n_stimuli")]
    old = store.read_attrs(partial)
    bad = [k for k in fixed if str(old.get(k)) != str(attrs.get(k))]
    if bad:
        raise StoreError(f"{partial}: cannot resume, it was written with different {', '.join(bad)}; "
                         "rerun with the same options, or start again with `overwrite=True`")
    done = store.resume_point(partial)
    same_set = str(old.get("stimuli_fingerprint")) == str(attrs.get("stimuli_fingerprint")) and \
        int(old.get("n_stimuli", -1)) == layout.n_stimuli
    old_n = int(old.get("n_stimuli", 0))
    written = min(done * layout.batch_size, old_n)
    ids, labels = store.written_ids(partial, written)
    if stim.files is None:
        if not same_set:
            raise StoreError(f"{partial}: cannot resume, the stimuli differ from those it was started with "
                             "(stimuli_fingerprint); rerun with the same stimuli, or start again with `overwrite=True`")
        return done
    if written > len(stim) or list(stim.ids[:written]) != ids or \
            list(stim.labels_for(model.classes)[:written]) != labels:
        raise StoreError(f"{partial}: cannot resume, the first {written} stimuli (already written) are not the "
                         "same ids and labels as now; restore them, or start again with `overwrite=True`")
    _check_sources(partial, stim, written)
    if not same_set:
        _carry_over(partial, stim, layout, model, attrs, done, written, progress)
    return done


def _check_sources(partial: Path, stim, written: int) -> None:
    """Refuse a resume where an image file already written has changed since."""
    path = sources_path(partial)
    if written == 0:
        return
    if not path.exists():
        raise StoreError(f"{path.name} is missing, so the {written} images already written in {partial.name} "
                         "cannot be checked; start again with `overwrite=True`")
    rec = np.fromfile(path, dtype=SOURCE, count=path.stat().st_size // SOURCE.itemsize)
    known = {int(r["index"]): r for r in rec}
    changed = []
    for i in range(written):
        r = known.get(i)
        if r is None:
            raise StoreError(f"{path.name} has no record of {stim.ids[i]}, already written in {partial.name}; "
                             "start again with `overwrite=True`")
        f = stim.files[i]
        try:
            st = os.stat(f)
        except OSError:
            changed.append(f"{stim.ids[i]} (missing)")
            continue
        if st.st_size == int(r["size"]) and st.st_mtime_ns == int(r["mtime_ns"]):
            continue                                     # unchanged: no need to read it
        if st.st_size != int(r["size"]) or file_hash(f) != int(r["hash"]):
            changed.append(stim.ids[i])
    if changed:
        shown = ", ".join(changed[:5]) + (f" and {len(changed) - 5} more" if len(changed) > 5 else "")
        raise StoreError(f"{partial}: cannot resume, {len(changed)} image(s) already written have changed since "
                         f"({shown}); restore them, or start again with `overwrite=True`")


def _carry_over(partial: Path, stim, layout, model, attrs, done: int, written: int, progress: bool) -> None:
    """Lay ``partial`` out anew for ``stim``, carrying over its ``written`` stimuli (``done`` batches)."""
    if progress:
        print(f"vrnn: the stimuli after the {written} written changed; carrying those into a file for the "
              f"{layout.n_stimuli} stimuli now", file=sys.stderr)
    tmp = partial.with_name(partial.name + ".carry")
    atomic.remove(tmp)
    _create(tmp, stim, layout, model, attrs)
    try:
        store.copy_batches(partial, tmp, layout, written, done)
    except BaseException:
        atomic.remove(tmp)
        raise
    atomic.replace(tmp, partial)


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
        atomic.remove(partial)


def _check_space(out: Path, layout, progress: bool) -> None:
    need = layout.nbytes()
    free = shutil.disk_usage(out.parent).free
    if progress:
        print(f"vrnn: writing at most {need / 2**20:.1f} MiB (uncompressed) to {out}", file=sys.stderr)
    if need > free:
        raise VRNNError(f"{out.parent}: {free / 2**20:.0f} MiB free but the file may need up to "
                        f"{need / 2**20:.0f} MiB; free space, or store less (`pool=mean`, `dtype=float16`, fewer `layers`)")


def _run(model, stim, layout, layers, pool, steps, device, partial, start_batch, workers, done, progress):
    import torch
    from tqdm.auto import tqdm

    n, bs = layout.n_stimuli, layout.batch_size
    total = math.ceil(n / bs)
    if start_batch >= total:
        return
    writer = Writer(partial, layout, done)
    bar = tqdm(total=n, initial=start_batch * bs, unit="img", disable=not progress, desc="extract")
    # leave a core to the writer: compute threads preempted by it stall each other at every barrier
    threads = torch.get_num_threads()
    if device.type == "cpu":
        torch.set_num_threads(max(1, min(threads, (os.cpu_count() or 2) - 1)))
    cuda = device.type == "cuda"
    try:
        with torch.inference_mode():
            for b, x, bad, sources in decoded(batches(stim, layout, model, start_batch, workers, device)):
                if bad:
                    raise BadImages(unreadable(stim, bad), bad)
                lo = b * bs
                k = x.shape[0]
                if k < bs:      # every batch of full size: an image's numbers never depend on its batch
                    x = torch.cat([x, x.new_zeros((bs - k,) + tuple(x.shape[1:]))])
                states = model.run(x.to(device, non_blocking=cuda), timesteps=steps, layers=layers)
                states = {name: v[:k] for name, v in states.items()}
                slot = writer.slot()
                views = slot_views(writer.buf, slot * writer.slot_bytes, layout)
                np.copyto(views["logits"][:k], states["logits"].float().cpu().numpy())
                for name in layers:
                    a = states[name]
                    if pool == "mean" and a.dim() == 5:
                        a = a.mean(dim=(3, 4))
                    np.copyto(views[name][:k], a.reshape(k, steps, -1).cpu().numpy(), casting="same_kind")
                writer.work.put((slot, lo, k, b, sources))
                writer.poll()
                bar.update(k)
        writer.finish()
    except KeyboardInterrupt:
        writer.stop(gently=True)
        raise
    except (BadImages, WriteFailed):
        writer.stop(gently=writer.proc.is_alive())       # a live writer writes the batches handed to it
        raise
    except BaseException:
        writer.stop(gently=False)
        raise
    finally:
        torch.set_num_threads(threads)
        bar.close()


def summary_line(tree, out) -> str:
    out = Path(out)
    n = tree.sizes["stimulus"]
    t = tree.sizes["time"]
    parts = [f"{name} {tree[name].sizes['unit']}" for name in tree.children]
    size = store.size_on_disk(out) / 2**20
    return (f"wrote {out}: {n} stimuli x {t} steps; layers {', '.join(parts)} units; "
            f"{size:.1f} MiB")
