"""Array kernels behind :mod:`vision_rnn.analysis.rsa`: plain NumPy, no xarray.

RDMs are computed for all leading indices at once (one batched matrix
product), and RDM comparisons are turned into matrix products: each vector is
transformed once (ranked, centred, scaled) so that the similarity of every pair
is an inner product. Bootstrap samples of stimuli become weights on the
original stimulus pairs (a pair (i, j) drawn ``c_i * c_j`` times), so no
resampled RDM is ever built.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

RDM_METHODS = ("correlation", "euclidean", "cosine")
CONSTANT = 1e-20   # a pattern whose centred sum of squares is below this fraction of its raw one is constant


def one_blas_thread():
    """Context: BLAS on one thread, for loops of many small products (threads cost more there,
    and much more when other processes share the cores)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:                                     # pragma: no cover
        import contextlib
        return contextlib.nullcontext()
    return threadpool_limits(1, user_api="blas")
COMPARE_METHODS = ("spearman", "corr", "cosine", "tau-a", "rho-a")


def rdms(x: np.ndarray, method: str, dtype=np.float64) -> np.ndarray:
    """(..., n, features) -> (..., n, n) dissimilarities, rsatoolbox's definitions.

    correlation: 1 - Pearson r of the patterns (rsatoolbox ``calc_rdm``);
    euclidean: squared distance / number of features (rsatoolbox ``calc_rdm``);
    cosine: 1 - cosine similarity (scipy ``pdist(metric="cosine")``).
    One batched matrix product for all leading indices; ``x`` is not modified.
    """
    x = np.array(x, dtype=dtype)                       # a private copy, changed in place below
    n_feat = x.shape[-1]
    if method == "correlation":
        mean = x.mean(axis=-1, keepdims=True)
        x -= mean
    if method in ("correlation", "cosine"):
        sq = np.einsum("...ij,...ij->...i", x, x)
        if method == "correlation":                    # a constant pattern: correlation undefined
            sq[sq <= CONSTANT * n_feat * mean[..., 0] ** 2] = 0.0
        with np.errstate(invalid="ignore", divide="ignore"):
            x /= np.sqrt(sq)[..., None]
        d = np.matmul(x, np.swapaxes(x, -1, -2))
        np.subtract(1.0, d, out=d)
    elif method == "euclidean":
        sq = np.einsum("...ij,...ij->...i", x, x)
        d = np.matmul(x, np.swapaxes(x, -1, -2))
        d *= -2.0
        d += sq[..., :, None]
        d += sq[..., None, :]
        d /= n_feat
        np.maximum(d, 0.0, out=d)
    else:  # pragma: no cover - checked by the caller
        raise ValueError(method)
    del x
    d += np.swapaxes(d, -1, -2).copy()                 # exact symmetry despite rounding
    d *= 0.5
    i = np.arange(d.shape[-1])
    d[..., i, i] = 0.0
    return d


SLICE_BYTES = 8 * 2**20      # float64 bytes converted at once by :func:`moments`


def moments(block: np.ndarray) -> tuple:
    """(features, mean, centred Gram) of a block of features (..., n, b), float64.

    The block is converted to float64 a slice of features at a time (about
    :data:`SLICE_BYTES`), the slices added with :func:`add_moments`."""
    block = np.asarray(block)
    width = max(1, SLICE_BYTES // max(1, 8 * block[..., :1].size))
    total = None
    for lo in range(0, block.shape[-1], width):
        x = np.array(block[..., lo:lo + width], dtype=np.float64)
        mean = x.mean(axis=-1)
        x -= mean[..., None]
        part = (x.shape[-1], mean, np.matmul(x, np.swapaxes(x, -1, -2)))
        total = part if total is None else add_moments(total, part)
    return total


def add_moments(a: tuple, b: tuple) -> tuple:
    """The moments of two blocks of features together (Chan, Golub & LeVeque's pairwise update):
    no catastrophic cancellation, however large the patterns' means."""
    na, ma, ca = a
    nb, mb, cb = b
    n = na + nb
    d = mb - ma
    return n, ma + d * (nb / n), ca + cb + (na * nb / n) * (d[..., :, None] * d[..., None, :])


def rdms_from_moments(n_feat: int, mean: np.ndarray, centred: np.ndarray, method: str) -> np.ndarray:
    """The RDMs of :func:`rdms` from the moments of the patterns over all features (:func:`moments`,
    :func:`add_moments`), so a layer can be read in blocks of units.

    correlation: 1 - C_ij / sqrt(C_ii C_jj); cosine: the same of the raw Gram C + p m m^T;
    euclidean: (C_ii + C_jj - 2 C_ij + p (m_i - m_j)^2) / p.
    """
    c = np.array(centred, dtype=np.float64)
    m = np.asarray(mean, dtype=np.float64)
    if method == "cosine":
        c += n_feat * (m[..., :, None] * m[..., None, :])
    sq = np.diagonal(c, axis1=-2, axis2=-1).copy()
    if method == "correlation":
        sq[sq <= CONSTANT * n_feat * m ** 2] = 0.0     # a constant pattern: correlation undefined
    if method in ("correlation", "cosine"):
        with np.errstate(invalid="ignore", divide="ignore"):
            norm = np.sqrt(sq)
            c /= norm[..., :, None]
            c /= norm[..., None, :]
        np.subtract(1.0, c, out=c)
    elif method == "euclidean":
        d = m[..., :, None] - m[..., None, :]
        c *= -2.0
        c += sq[..., :, None]
        c += sq[..., None, :]
        c += n_feat * d * d
        c /= n_feat
        np.maximum(c, 0.0, out=c)
    else:  # pragma: no cover - checked by the caller
        raise ValueError(method)
    c += np.swapaxes(c, -1, -2).copy()                 # exact symmetry despite rounding
    c *= 0.5
    i = np.arange(c.shape[-1])
    c[..., i, i] = 0.0
    return c


def condensed(square: np.ndarray) -> np.ndarray:
    """(..., n, n) -> (..., n(n-1)/2): the upper triangle row by row (scipy/rsatoolbox order)."""
    n = square.shape[-1]
    iu = np.triu_indices(n, 1)
    return square[..., iu[0], iu[1]]


def transform(v: np.ndarray, method: str) -> np.ndarray:
    """Per-vector transform so that ``transform(a) @ transform(b).T`` is rsatoolbox's compare.

    Computed into one new array, a vector at a time for the ranks, so a stack of large
    RDMs costs one copy of itself; ``v`` is not modified."""
    v = np.asarray(v)
    out = np.empty(v.shape, dtype=np.float64)
    rows, flat = v.reshape(-1, v.shape[-1]), out.reshape(-1, v.shape[-1])
    for i in range(rows.shape[0]):
        flat[i] = rankdata(rows[i]) if method in ("spearman", "rho-a") else rows[i]
    if method in ("spearman", "corr", "rho-a"):
        out -= out.mean(axis=-1, keepdims=True)
    if method == "rho-a":
        n = out.shape[-1]
        out *= np.sqrt(12.0 / (n ** 3 - n))
        return out
    norm = np.sqrt(np.einsum("...i,...i->...", out, out))[..., None]
    with np.errstate(invalid="ignore", divide="ignore"):
        out /= np.where(norm > 0, norm, 1.0)
    out[~(norm[..., 0] > 0)] = 0.0
    return out


def tau_a(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Kendall's tau-a of every row of ``a`` with every row of ``b`` (rsatoolbox, pair by pair)."""
    from rsatoolbox.rdm.compare import compare_kendall_tau_a

    return compare_kendall_tau_a(np.atleast_2d(a), np.atleast_2d(b))


def cross(a: np.ndarray, b: np.ndarray, method: str) -> np.ndarray:
    """Similarity of every row of ``a`` (..., Na, P) with every row of ``b`` (..., Nb, P)."""
    if method == "tau-a":
        a, b = np.broadcast_arrays(a[..., :, None, :], b[..., None, :, :])
        out = np.empty(a.shape[:-1])
        flat_a = a.reshape(-1, a.shape[-3], a.shape[-2], a.shape[-1])
        flat_b = b.reshape(flat_a.shape)
        res = out.reshape(-1, a.shape[-3], a.shape[-2])
        for k in range(flat_a.shape[0]):
            res[k] = tau_a(flat_a[k][:, 0], flat_b[k][0])
        return out
    return np.matmul(transform(a, method), np.swapaxes(transform(b, method), -1, -2))


def paired(a: np.ndarray, b: np.ndarray, method: str) -> np.ndarray:
    """Similarity of matching rows of ``a`` and ``b`` (broadcast), (..., P) -> (...)."""
    if method == "tau-a":
        a, b = np.broadcast_arrays(a, b)
        flat_a, flat_b = a.reshape(-1, a.shape[-1]), b.reshape(-1, b.shape[-1])
        vals = [tau_a(x, y)[0, 0] for x, y in zip(flat_a, flat_b)]
        return np.asarray(vals).reshape(a.shape[:-1])
    return np.einsum("...i,...i->...", transform(a, method), transform(b, method))


def pool_transform(v: np.ndarray, method: str) -> np.ndarray:
    """The per-RDM transform of rsatoolbox's ``pool_rdm``; its mean over RDMs is the pooled RDM."""
    if method == "cosine":
        return v / np.sqrt(np.mean(v ** 2, axis=-1, keepdims=True))
    if method == "corr":
        v = v - v.mean(axis=-1, keepdims=True)
        return v / v.std(axis=-1, keepdims=True)
    return rankdata(v, axis=-1)      # spearman, rho-a, tau-a: mean of the ranks


# -- bootstrap over stimuli ---------------------------------------------------------------
def pair_weights(counts: np.ndarray) -> np.ndarray:
    """(S, n) draw counts per stimulus -> (S, P) weights of the original pairs (self-pairs dropped)."""
    n = counts.shape[-1]
    iu = np.triu_indices(n, 1)
    return counts[:, iu[0]].astype(np.float64) * counts[:, iu[1]]


class _Ranker:
    """Weighted average ranks of a set of vectors (N, P) under many integer weightings (S, P).

    The rank of entry p in the multiset where entry q appears w[s, q] times is the weight
    strictly below it plus (weight of its tie group + 1) / 2: equal to ``rankdata`` of the
    materialised resampled vector. The sort order is computed once; each weighting then
    costs a gather, a cumulative sum and a gather back. Returned as exact integers: twice
    the rank minus (W + 1), i.e. doubled and centred on the mean rank.
    """

    def __init__(self, v: np.ndarray):
        n, p = v.shape
        self.order = np.argsort(v, axis=1, kind="stable")
        self.flat_inverse = (np.argsort(self.order, axis=1) + p * np.arange(n)[:, None]).ravel()
        sv = np.take_along_axis(v, self.order, axis=1)
        self.tied = [i for i in range(n) if np.any(sv[i, 1:] == sv[i, :-1])]
        self.groups = {i: (np.flatnonzero(np.r_[True, sv[i, 1:] != sv[i, :-1]]),
                           np.cumsum(np.r_[True, sv[i, 1:] != sv[i, :-1]]) - 1) for i in self.tied}

    def __call__(self, ws: np.ndarray) -> np.ndarray:
        wsort = ws[:, self.order]                                       # (S, N, P) int
        total = ws.sum(axis=1, dtype=np.int64).astype(ws.dtype)[:, None, None]
        rank = np.cumsum(wsort, axis=2, dtype=ws.dtype)
        rank *= 2
        rank -= wsort
        rank -= total                                                   # 2 * rank - (W + 1)
        for i in self.tied:                                             # tie groups share their mean rank
            starts, group = self.groups[i]
            gw = np.add.reduceat(wsort[:, i], starts, axis=1)
            before = np.cumsum(gw, axis=1) - gw
            rank[:, i] = (2 * before + gw - total[:, 0])[:, group]
        return rank.reshape(len(ws), -1)[:, self.flat_inverse].reshape(rank.shape)


def weighted_cross(a: np.ndarray, b: np.ndarray, w: np.ndarray, method: str,
                   chunk: int = 50) -> np.ndarray:
    """``cross`` on every bootstrap sample: a (Na, P), b (Nb, P), w (S, P) -> (S, Na, Nb).

    Each sample is the comparison of the resampled RDMs in which pair p appears
    w[s, p] times, computed without building them.
    """
    s_total = w.shape[0]
    out = np.empty((s_total, a.shape[0], b.shape[0]))
    if method == "tau-a":
        for s in range(s_total):
            keep = w[s] > 0
            reps = w[s, keep].astype(np.int64)
            out[s] = tau_a(np.repeat(a[:, keep], reps, axis=1), np.repeat(b[:, keep], reps, axis=1))
        return out
    if method in ("corr", "cosine"):
        if method == "corr":   # centring first keeps the sums small; it does not change r
            a = a - a.mean(axis=1, keepdims=True)
            b = b - b.mean(axis=1, keepdims=True)
        for lo in range(0, s_total, chunk):
            ws = w[lo:lo + chunk]
            n_s = ws.shape[0]
            sxy = ((ws[:, None, :] * a[None]).reshape(n_s * a.shape[0], -1) @ b.T).reshape(n_s, a.shape[0], -1)
            sxx, syy = ws @ (a * a).T, ws @ (b * b).T
            if method == "corr":
                tw = ws.sum(axis=1)
                sx, sy = ws @ a.T, ws @ b.T
                sxy = sxy - sx[:, :, None] * sy[:, None, :] / tw[:, None, None]
                sxx = sxx - sx ** 2 / tw[:, None]
                syy = syy - sy ** 2 / tw[:, None]
            with np.errstate(invalid="ignore", divide="ignore"):
                out[lo:lo + n_s] = sxy / np.sqrt(sxx[:, :, None] * syy[:, None, :])
        return out
    # spearman, rho-a: weighted ranks of every vector in every sample
    same = b is a
    both = a if same else np.concatenate([a, b])
    ranker = _Ranker(both)
    chunk = max(1, min(chunk, int(4e6 // both.size)))                  # about 32 MB per block
    wint = np.rint(w).astype(np.int32)
    if not np.array_equal(wint, w):
        raise ValueError("rank-based bootstrap comparisons need integer pair weights")
    for lo in range(0, s_total, chunk):
        ws = w[lo:lo + chunk]
        r = ranker(wint[lo:lo + chunk])                 # doubled centred ranks
        ra = r[:, :len(a)].astype(np.float64)
        rb = ra if same else r[:, len(a):].astype(np.float64)
        sxy = np.matmul(ra * ws[:, None, :], np.swapaxes(rb, 1, 2))
        if method == "rho-a":
            tw = ws.sum(axis=1)
            out[lo:lo + len(ws)] = 3.0 * sxy / (tw ** 3 - tw)[:, None, None]     # 12 / 2**2
        else:
            sxx = np.einsum("sap,sap,sp->sa", ra, ra, ws)
            syy = np.einsum("sbp,sbp,sp->sb", rb, rb, ws)
            with np.errstate(invalid="ignore", divide="ignore"):
                out[lo:lo + len(ws)] = sxy / np.sqrt(sxx[:, :, None] * syy[:, None, :])
    return out
