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


def layer_pass(act, w=None, progress=False):
    """One pass over a layer: readout scores ``w_k . a`` (no bias), ``|a|`` and ``|a(t+1) - a(t)|``.

    Returns float64 numpy arrays (stimulus, time, class) (None without ``w``),
    (stimulus, time) and (stimulus, time - 1). The layer is read one storage
    chunk at a time and converted to float64 in slices of units, so memory
    stays near one chunk whatever the layer's size; ``progress`` shows a bar.
    """
    from tqdm.auto import tqdm

    act = act.transpose("stimulus", "time", "unit")
    n_s, n_t, n_u = act.shape
    k = 0 if w is None else w.shape[0]
    scores = np.zeros((n_s, n_t, k))
    norm2 = np.zeros((n_s, n_t))
    step2 = np.zeros((n_s, max(n_t - 1, 0)))
    bar = tqdm(total=n_blocks(act), desc=f"read {act.name or 'layer'}", unit="chunk", disable=not progress)
    with bar:
        for lo, hi, ulo, uhi, block in blocks(act, progress=bar.update):
            step = max(1, SLICE_BYTES // max(1, block.shape[0] * n_t * 8))
            for u in range(0, uhi - ulo, step):
                a = block[:, :, u:u + step].astype(np.float64)
                if k:
                    scores[lo:hi] += a @ w[:, ulo + u:ulo + u + a.shape[2]].T
                norm2[lo:hi] += np.einsum("stu,stu->st", a, a)
                d = np.diff(a, axis=1)
                step2[lo:hi] += np.einsum("stu,stu->st", d, d)
    return (scores if k else None), np.sqrt(norm2), np.sqrt(step2)
