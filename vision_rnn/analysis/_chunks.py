"""Reading a (stimulus, time, unit) layer one storage chunk at a time, so memory stays bounded."""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np

BLOCK_BYTES = 16 * 2**20
SLICE_BYTES = 8 * 2**20


def block_edges(act):
    """(stimulus edges, unit edges) of the blocks: the dask chunks, else ~16 MB slabs of stimuli."""
    n_s, n_t, n_u = (act.sizes[d] for d in ("stimulus", "time", "unit"))
    if act.chunks is not None:
        ax = act.get_axis_num
        s_chunks, u_chunks = act.chunks[ax("stimulus")], act.chunks[ax("unit")]
    else:
        step = max(1, BLOCK_BYTES // max(1, n_t * n_u * act.dtype.itemsize))
        s_chunks = [min(step, n_s - lo) for lo in range(0, n_s, step)]
        u_chunks = [n_u]
    return np.r_[0, np.cumsum(s_chunks)].astype(int), np.r_[0, np.cumsum(u_chunks)].astype(int)


def blocks(act, stimuli=None, progress=None):
    """Yield (s_lo, s_hi, u_lo, u_hi, numpy array (s, time, u)) over the layer's storage chunks.

    ``act`` must be transposed to (stimulus, time, unit). With ``stimuli`` (sorted
    indices), only the stimulus chunks holding one of them are read. ``progress``
    is a callable taking the number of blocks done.
    """
    s_edges, u_edges = block_edges(act)
    for i in range(len(s_edges) - 1):
        lo, hi = int(s_edges[i]), int(s_edges[i + 1])
        if stimuli is not None and not np.any((stimuli >= lo) & (stimuli < hi)):
            if progress:
                progress(len(u_edges) - 1)
            continue
        for j in range(len(u_edges) - 1):
            ulo, uhi = int(u_edges[j]), int(u_edges[j + 1])
            data = act.data[lo:hi, :, ulo:uhi]
            data = data.compute() if hasattr(data, "compute") else data
            yield lo, hi, ulo, uhi, np.asarray(data)
            if progress:
                progress(1)


def n_blocks(act) -> int:
    s_edges, u_edges = block_edges(act)
    return (len(s_edges) - 1) * (len(u_edges) - 1)


@contextmanager
def small_chunk_cache(size: int = 2**20):
    """Open netCDF files inside this block with a small HDF5 chunk cache.

    The analyses read every chunk once, in order, so the default cache (64 MiB
    per variable) only adds to the peak memory; files opened here keep the
    small cache for as long as they stay open.
    """
    import netCDF4

    old = netCDF4.get_chunk_cache()
    netCDF4.set_chunk_cache(size, 1009, 1.0)
    try:
        yield
    finally:
        netCDF4.set_chunk_cache(*old)


def active_client():
    """The active ``dask.distributed`` client (``Client(...)`` made in this process), or None."""
    try:
        from distributed import default_client
    except ImportError:
        return None
    try:
        return default_client()
    except ValueError:
        return None


def _block_pass(block, w, n_t: int, units=None):
    """Scores, squared norms and squared step distances of one block (s, time, u), summed over its units
    in slices of :data:`SLICE_BYTES` of float64; ``units`` = (lo, hi) selects the block's columns of ``w``."""
    if w is not None and units is not None:
        w = w[:, units[0]:units[1]]
    k = 0 if w is None else w.shape[0]
    n_s = block.shape[0]
    scores, norm2, step2 = np.zeros((n_s, n_t, k)), np.zeros((n_s, n_t)), np.zeros((n_s, max(n_t - 1, 0)))
    step = max(1, SLICE_BYTES // max(1, n_s * n_t * 8))
    for u in range(0, block.shape[2], step):
        a = np.asarray(block[:, :, u:u + step], dtype=np.float64)
        if k:
            scores += a @ w[:, u:u + a.shape[2]].T
        norm2 += np.einsum("stu,stu->st", a, a)
        d = np.diff(a, axis=1)
        step2 += np.einsum("stu,stu->st", d, d)
    return scores, norm2, step2


def _add_blocks(parts):
    """The sums of a stimulus block's unit blocks, added in order (as the loop over blocks adds them)."""
    scores, norm2, step2 = (np.array(x) for x in parts[0])
    for s, n, d in parts[1:]:
        scores += s
        norm2 += n
        step2 += d
    return scores, norm2, step2


def layer_pass(act, w=None, progress=False):
    """One pass over a layer: readout scores ``w_k . a`` (no bias), ``|a|`` and ``|a(t+1) - a(t)|``.

    Returns float64 numpy arrays (stimulus, time, class) (None without ``w``),
    (stimulus, time) and (stimulus, time - 1). The layer is read one storage
    chunk at a time and converted to float64 in slices of units, so memory
    stays near one chunk whatever the layer's size; ``progress`` shows a bar.
    With an active ``dask.distributed`` client (:func:`active_client`) the blocks
    are read and reduced on its workers; the sums are added in the same order,
    so the result is the same.
    """
    from tqdm.auto import tqdm

    act = act.transpose("stimulus", "time", "unit")
    n_s, n_t, n_u = act.shape
    k = 0 if w is None else w.shape[0]
    scores = np.zeros((n_s, n_t, k))
    norm2 = np.zeros((n_s, n_t))
    step2 = np.zeros((n_s, max(n_t - 1, 0)))
    client = active_client() if act.chunks is not None else None
    if client is not None:
        import dask

        s_edges, u_edges = block_edges(act)
        spans, tasks = [], []
        weight = None if w is None else dask.delayed(w)       # sent to the workers once, not per block
        for lo, hi in zip(s_edges[:-1], s_edges[1:]):
            parts = [dask.delayed(_block_pass)(act.data[lo:hi, :, ulo:uhi], weight, n_t, (int(ulo), int(uhi)))
                     for ulo, uhi in zip(u_edges[:-1], u_edges[1:])]
            spans.append((lo, hi))
            tasks.append(dask.delayed(_add_blocks)(parts))
        for (lo, hi), (s, n, d) in zip(spans, dask.compute(*tasks)):
            scores[lo:hi], norm2[lo:hi], step2[lo:hi] = s, n, d
        return (scores if k else None), np.sqrt(norm2), np.sqrt(step2)
    bar = tqdm(total=n_blocks(act), desc=f"read {act.name or 'layer'}", unit="chunk", disable=not progress)
    with bar:
        for lo, hi, ulo, uhi, block in blocks(act, progress=bar.update):
            s, n, d = _block_pass(block, None if w is None else w[:, ulo:uhi], n_t)
            scores[lo:hi] += s
            norm2[lo:hi] += n
            step2[lo:hi] += d
    return (scores if k else None), np.sqrt(norm2), np.sqrt(step2)
