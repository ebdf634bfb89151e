"""The numbers behind :func:`vision_rnn.analysis.timeaxis.fit_time_mapping` (plain NumPy).

A candidate mapping (onset, step) of a layer assigns every recording bin a mix
of model steps: ``A[k, t]`` is the fraction of bin t during which step k is
active (step k spans ``[onset + k * step, onset + (k + 1) * step)``, the last
step holds). It is scored by two terms, each a correlation:

- **match**: between ``A`` and ``S[k, t]``, the similarity of the model RDM at step k
  with the recording RDM at bin t (first order: the step active at a bin should be the
  model RDM most like the recording there; bins before the onset should show no
  stimulus structure);
- **timing**: between the recording's own cross-temporal RDM similarity ``C[t, t']``
  (from two halves of the repetitions, so noise does not inflate it) and the one the
  mapping predicts from the model's cross-step similarity ``M``:
  ``P[t, t'] = sum A[k, t] M[k, k'] A[k', t']`` (0 where a bin is before the onset).
  Bins that fall in one step should look alike, bins in different steps as different as
  the model's steps are. ``C`` is divided by the bins' split-half reliabilities (its
  diagonal) and every pair of bins weighted by the product of those, so bins without
  stimulus structure (before any response) carry no weight whatever the mapping.

For each step the onset of each layer is the one with the best *match*; the step is
the one with the best sum over layers of (match + timing) at those onsets. (The
timing term alone can be fooled by an onset moved by one whole step, so it only
chooses the step.)

Every table is computed from condensed RDMs under pair weights, so the full
data (weights 1), a cross-validation fold (weights 1 within the training
stimuli, 0 elsewhere) and a bootstrap sample (weights ``c_i * c_j``) go through
the same code.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import _rsacore as core


@dataclass
class LayerData:
    """Condensed RDMs of one layer and its region: model (T, P), recording mean and halves (nb, P)."""

    model: np.ndarray
    rec: np.ndarray
    half_a: np.ndarray | None
    half_b: np.ndarray | None


@dataclass
class Tables:
    S: np.ndarray   # (T, nb) model step vs recording bin
    M: np.ndarray   # (T, T)  model step vs model step
    C: np.ndarray   # (nb, nb) recording bin vs recording bin


def tables(data: LayerData, weights: np.ndarray, method: str) -> list[Tables]:
    """The similarity tables under each row of pair weights (S, P) -> one Tables per row."""
    S = core.weighted_cross(data.model, data.rec, weights, method)
    M = core.weighted_cross(data.model, data.model, weights, method)
    if data.half_a is not None:
        C = core.weighted_cross(data.half_a, data.half_b, weights, method)
        C = (C + np.swapaxes(C, 1, 2)) / 2
    else:   # no repetitions: a bin's reliability is taken from its similarity with its neighbours
        C = core.weighted_cross(data.rec, data.rec, weights, method)
        nb = C.shape[1]
        near = np.zeros((len(C), nb))
        near[:, 1:] += np.diagonal(C, 1, 1, 2)
        near[:, :-1] += np.diagonal(C, 1, 1, 2)
        near /= np.r_[1, np.full(nb - 2, 2), 1] if nb > 1 else 1
        C[:, np.arange(nb), np.arange(nb)] = near
    return [Tables(S[i], M[i], C[i]) for i in range(len(weights))]


def assignment(onsets: np.ndarray, steps: np.ndarray, n_steps: int, bin_start: np.ndarray,
               bin_end: np.ndarray) -> np.ndarray:
    """A (n_cand, T, nb): fraction of each bin during which each model step is active."""
    k = np.arange(n_steps)
    lo = onsets[:, None] + k[None, :] * steps[:, None]
    hi = lo + steps[:, None]
    hi[:, -1] = np.inf
    width = (bin_end - bin_start)[None, None, :]
    over = np.minimum(hi[:, :, None], bin_end[None, None, :]) - np.maximum(lo[:, :, None], bin_start[None, None, :])
    return np.clip(over, 0.0, None) / width


def score(tab: Tables, A: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(match, timing) for every candidate assignment A (n_cand, T, nb)."""
    n_cand = A.shape[0]
    a = A.reshape(n_cand, -1)
    a = a - a.mean(axis=1, keepdims=True)
    s = tab.S.ravel() - tab.S.mean()
    with np.errstate(invalid="ignore", divide="ignore"):
        match = (a @ s) / np.sqrt((a * a).sum(axis=1) * (s @ s))
    pred = np.matmul(np.swapaxes(A, 1, 2) @ tab.M, A)              # (n_cand, nb, nb)
    rel = np.clip(np.diag(tab.C), 0.0, None)                       # split-half reliability per bin
    nb = A.shape[2]
    w = np.outer(rel, rel) * np.triu(np.ones((nb, nb)), 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        c = np.where(w > 0, tab.C / np.sqrt(np.where(w > 0, np.outer(rel, rel), 1.0)), 0.0)
        sw = w.sum()
        dc = c - (w * c).sum() / sw
        pf = pred.reshape(n_cand, -1)
        mp = pf @ w.ravel() / sw
        spp = (pf * pf) @ w.ravel() - sw * mp ** 2                  # sum w (pred - mp)^2
        cov = pf @ (w * dc).ravel()                                 # sum w (pred - mp)(c - mc)
        timing = cov / np.sqrt(spp * (w * dc * dc).sum())
    return np.nan_to_num(match, nan=-1.0), np.nan_to_num(timing, nan=-1.0)


@dataclass
class Grid:
    onset_range: tuple
    step_range: tuple
    coarse: tuple = (5.0, 1.0)     # onset, step spacing of the first pass
    fine: tuple = (0.5, 0.25)      # spacing of the refinement around the best coarse point


def _best_onsets(tabs: list[Tables], layers_bins, onsets: np.ndarray, steps: np.ndarray):
    """For every step: the best onset of every layer and the summed score."""
    total = np.zeros(len(steps))
    best = np.zeros((len(tabs), len(steps)))
    for li, (tab, (bs, be)) in enumerate(zip(tabs, layers_bins)):
        oo, ss = np.meshgrid(onsets[li], steps, indexing="xy")       # (n_steps, n_onsets)
        A = assignment(oo.ravel(), ss.ravel(), tab.S.shape[0], bs, be)
        m, t = score(tab, A)
        m, t = m.reshape(ss.shape), t.reshape(ss.shape)
        idx = m.argmax(axis=1)                     # onset: the match term
        rows = np.arange(len(steps))
        best[li] = oo[rows, idx]
        total += m[rows, idx] + t[rows, idx]       # step: both terms at those onsets
    return total, best


def fit(tabs: list[Tables], layers_bins, grid: Grid):
    """Coarse grid over step and each layer's onset, then a fine grid around the best point.

    Returns (step, onsets per layer, score)."""
    co, cs = grid.coarse
    fo, fs = grid.fine
    steps = np.arange(grid.step_range[0], grid.step_range[1] + 1e-9, cs)
    base = np.arange(grid.onset_range[0], grid.onset_range[1] + 1e-9, co)
    total, best = _best_onsets(tabs, layers_bins, [base] * len(tabs), steps)
    i = int(np.argmax(total))
    step0, on0 = steps[i], best[:, i]
    fine_steps = np.arange(max(step0 - cs, grid.step_range[0]), min(step0 + cs, grid.step_range[1]) + 1e-9, fs)
    fine_on = [np.arange(max(o - co, grid.onset_range[0]), min(o + co, grid.onset_range[1]) + 1e-9, fo)
               for o in on0]
    total, best = _best_onsets(tabs, layers_bins, fine_on, fine_steps)
    i = int(np.argmax(total))
    return float(fine_steps[i]), best[:, i].astype(float), float(total[i])


def evaluate(tabs: list[Tables], layers_bins, step: float, onsets) -> float:
    """Score of one mapping (summed over layers)."""
    out = 0.0
    for tab, (bs, be), o in zip(tabs, layers_bins, onsets):
        m, t = score(tab, assignment(np.array([o]), np.array([step]), tab.S.shape[0], bs, be))
        out += float(m[0] + t[0])
    return out
