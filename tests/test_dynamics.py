"""Norms, step distances and settling groups on activations with planted norms and steps."""

import numpy as np
import pytest
import xarray as xr

import vision_rnn as vrnn
from vision_rnn.analysis import (drift_by_settling, l2_norm, mean_by_status, norm_by_status, settled_motion,
                                 settling_groups, stability, step_distance)
from vision_rnn.errors import AnalysisError

from synthetic import write_activations


def unit_vectors(rng, shape, units):
    v = rng.normal(size=shape + (units,))
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def act_of(a, ids=None):
    ids = ids if ids is not None else [f"s{i}" for i in range(a.shape[0])]
    return xr.DataArray(a, dims=("stimulus", "time", "unit"),
                        coords={"stimulus": ids, "time": np.arange(a.shape[1])})


def stab_of(t_stable, categories=None, timesteps=5):
    n = len(t_stable)
    cats = categories if categories is not None else ["stable-correct"] * n
    return xr.Dataset({"category": ("stimulus", cats), "t_stable": ("stimulus", np.asarray(t_stable))},
                      coords={"stimulus": [f"s{i}" for i in range(n)], "label": ("stimulus", np.zeros(n, int))},
                      attrs={"timesteps": timesteps})


def test_l2_norm_recovers_planted_norms():
    rng = np.random.default_rng(0)
    r = rng.uniform(0.5, 20, size=(6, 4))
    act = act_of(r[..., None] * unit_vectors(rng, (6, 4), 30))
    n = l2_norm(act)
    assert n.dims == ("stimulus", "time") and list(n["stimulus"].values) == list(act["stimulus"].values)
    np.testing.assert_allclose(n.values, r, rtol=1e-12)


def test_step_distance_recovers_planted_steps():
    rng = np.random.default_rng(1)
    d = rng.uniform(0.1, 5, size=(5, 3))
    a = np.zeros((5, 4, 12))
    a[:, 0] = rng.normal(size=(5, 12))
    for t in range(3):
        a[:, t + 1] = a[:, t] + d[:, t, None] * unit_vectors(rng, (5,), 12)
    s = step_distance(act_of(a))
    assert s["time"].values.tolist() == [0, 1, 2]                     # the move from t to t+1
    np.testing.assert_allclose(s.values, d, rtol=1e-12)
    with pytest.raises(AnalysisError, match="at least 2 time steps"):
        step_distance(act_of(a[:, :1]))


def test_settling_groups_follow_the_one_percent_rule():
    # 200 at t=0; 1% is 2: t=1 (3) kept, t=2 (1) is the first below and cuts off, t=3 (5) dropped too
    ts = [0] * 200 + [1] * 3 + [2] * 1 + [3] * 5
    g = settling_groups(stab_of(ts))
    assert g["t_stable"].values.tolist() == [0, 1] and g.values.tolist() == [200, 3]
    assert g.attrs["cutoff"] == 2
    # groups of exactly 1% are kept; empty groups never are
    g = settling_groups(stab_of([0] * 100 + [1] * 1 + [3] * 2))
    assert g["t_stable"].values.tolist() == [0, 1] and g.attrs["cutoff"] == 2


def test_drift_by_settling_averages_planted_steps_per_group():
    rng = np.random.default_rng(2)
    ts = np.array([0] * 150 + [1] * 4 + [2] * 3 + [3] * 1)           # t=3 falls under 1% (1.5)
    cats = ["stable-correct"] * ts.size
    n = ts.size + 2
    step = np.where(ts[:, None] == np.arange(4)[None, :], 4.0, 1.0)    # a big move into the final zone
    step = np.vstack([step, np.full((2, 4), 50.0)])                    # two stable-incorrect: ignored
    a = np.zeros((n, 5, 8))
    for t in range(4):
        a[:, t + 1] = a[:, t] + step[:, t, None] * unit_vectors(rng, (n,), 8)
    stab = stab_of(np.r_[ts, 0, 0], cats + ["stable-incorrect"] * 2)
    drift = drift_by_settling(act_of(a), stab)
    assert drift.dims == ("t_stable", "time")
    # every group 0 .. T-2 with stimuli, the one under 1% too, marked as after the cutoff
    assert drift["t_stable"].values.tolist() == [0, 1, 2, 3] and drift["n"].values.tolist() == [150, 4, 3, 1]
    assert drift["before_cutoff"].values.tolist() == [True, True, True, False] and drift.attrs["cutoff"] == 3
    expected = np.where(np.arange(4)[:, None] == np.arange(4)[None, :], 4.0, 1.0)
    np.testing.assert_allclose(drift.values, expected, rtol=1e-12)


def test_drift_has_every_settling_group_with_stimuli_and_only_those():
    rng = np.random.default_rng(4)
    # T = 6: groups 0..4 can drift; 1 and 3 are empty, 5 (settled at the last step) has no group
    ts = np.array([0] * 10 + [2] * 3 + [4] * 2 + [5] * 4)
    a = rng.normal(size=(ts.size, 6, 5))
    drift = drift_by_settling(act_of(a), stab_of(ts, ["stable-correct"] * ts.size, timesteps=6))
    assert drift["t_stable"].values.tolist() == [0, 2, 4] and drift["n"].values.tolist() == [10, 3, 2]
    assert drift["before_cutoff"].values.tolist() == [True, False, False]    # group 1 is empty: the cutoff
    steps = np.linalg.norm(np.diff(a, axis=1), axis=-1)
    for t in (0, 2, 4):
        np.testing.assert_allclose(drift.sel(t_stable=t).values, steps[ts == t].mean(axis=0), rtol=1e-12)


def test_norm_by_status_separates_already_correct_from_not_yet():
    rng = np.random.default_rng(3)
    ts = np.array([0, 1, 1, 2, 3])
    cats = ["stable-correct"] * 5 + ["unstable-incorrect"]
    r = np.where(ts[:, None] <= np.arange(5)[None, :], 10.0, 5.0)      # 10 once correct, 5 before
    r = np.vstack([r, np.full((1, 5), 99.0)])
    act = act_of(r[..., None] * unit_vectors(rng, (6, 5), 16))
    nb = norm_by_status(act, stab_of(np.r_[ts, -1], cats))
    assert nb.dims == ("status", "time") and nb["status"].values.tolist() == ["correct", "not_yet"]
    np.testing.assert_allclose(nb.sel(status="correct").values, 10.0)
    np.testing.assert_allclose(nb.sel(status="not_yet").values[:3], 5.0)
    assert np.isnan(nb.sel(status="not_yet", time=[3, 4])).all()     # every stimulus settled by t=3
    assert nb["count"].sel(status="not_yet").values.tolist() == [4, 2, 1, 0, 0]


def test_mean_by_status_skips_nan_values():
    vals = xr.DataArray([[np.nan, 2.0], [4.0, 6.0]], dims=("stimulus", "time"),
                        coords={"stimulus": ["s0", "s1"]})
    m = mean_by_status(vals, stab_of([0, 1]))
    np.testing.assert_allclose(m.values, [[np.nan, 4.0], [4.0, np.nan]])


def test_mismatched_stimuli_are_named():
    act = act_of(np.ones((2, 5, 3)), ids=["a", "b"])
    with pytest.raises(AnalysisError, match=r"2 of the 2 stimuli of stab are not in the activation \(e.g. 's0'\)"):
        norm_by_status(act, stab_of([0, 1]))
    with pytest.raises(AnalysisError, match="stab must be the Dataset returned by stability"):
        drift_by_settling(act, xr.Dataset())
    with pytest.raises(AnalysisError, match="no stimulus is stable-correct"):
        norm_by_status(act_of(np.ones((1, 5, 3))), stab_of([-1], ["unstable-correct"]))


def test_lazy_file_gives_the_same_numbers_chunk_by_chunk(tmp_path):
    rng = np.random.default_rng(4)
    n, t, k = 40, 5, 3
    gap = np.abs(rng.normal(size=(n, t, 6))).astype(np.float32)
    labels = rng.integers(0, k, n)
    w = rng.normal(size=(k, 6))
    tree = vrnn.open_activations(write_activations(tmp_path / "a.nc", {"gap": gap}, labels, w, batch_size=7))
    lazy = vrnn.layer(tree, "gap")
    assert lazy.chunks is not None                                     # dask-backed, several chunks
    np.testing.assert_allclose(l2_norm(lazy).values, np.linalg.norm(gap.astype(float), axis=-1), rtol=1e-6)
    np.testing.assert_allclose(step_distance(lazy).values,
                               np.linalg.norm(np.diff(gap.astype(float), axis=1), axis=-1), rtol=1e-6)
    stab = stability(tree["logits"])
    if (stab["category"] == "stable-correct").any():
        eager = norm_by_status(lazy.load(), stab)
        xr.testing.assert_allclose(norm_by_status(lazy, stab), eager)


def orthogonal_path(r):
    """x[s, t] = r[s, t] * e_t: norms r, and the move t -> t+1 is sqrt(r[t]^2 + r[t+1]^2)."""
    n, n_t = r.shape
    return r[..., None] * np.eye(n_t)[None]


def test_settled_motion_of_planted_moves_after_settling():
    ts = np.array([0, 0, 1, 2, 3])
    cats = ["stable-correct"] * 5 + ["stable-incorrect"]
    r = np.array([[1.0, 2, 3, 4, 5], [2, 2, 2, 2, 2], [1, 1, 4, 4, 4], [3, 1, 2, 2, 1], [1, 2, 3, 4, 5],
                  [9, 9, 9, 9, 9]])
    x = orthogonal_path(r)
    x[1, 4] = x[1, 3]                                  # stimulus 1 stops before the last step
    m = settled_motion(act_of(x), stab_of(np.r_[ts, 0], cats))
    assert m["after"].values.tolist() == [1, 2, 3, 4]
    move = np.sqrt(r[:, :-1] ** 2 + r[:, 1:] ** 2)
    move[1, 3] = 0.0
    # k steps after settling: stimuli with t_s + k <= 4
    for k in range(1, 5):
        ok = [s for s in range(5) if ts[s] + k <= 4]
        assert m["n"].sel(after=k) == len(ok)
        d = [move[s, ts[s] + k - 1] for s in ok]
        rel = [move[s, ts[s] + k - 1] / r[s, ts[s] + k - 1] for s in ok]
        np.testing.assert_allclose(m["distance"].sel(after=k), np.mean(d), rtol=1e-12)
        np.testing.assert_allclose(m["relative"].sel(after=k), np.mean(rel), rtol=1e-12)
    assert float(m["still_moving"]) == pytest.approx(4 / 5)     # all but stimulus 1; stable-incorrect ignored
    assert m.attrs["n_stable_correct"] == 5
    # k = 1 is the step distance at t_stable
    sd = step_distance(act_of(x)).values
    np.testing.assert_allclose(m["distance"].sel(after=1), np.mean([sd[s, ts[s]] for s in range(5)]), rtol=1e-12)


def test_settled_motion_leaves_zero_norms_out_of_the_relative_mean():
    r = np.array([[0.0, 2, 2], [1, 1, 1]])
    m = settled_motion(act_of(orthogonal_path(r)), stab_of([0, 0], timesteps=3))
    np.testing.assert_allclose(m["distance"].sel(after=1), (2 + np.sqrt(2)) / 2)
    np.testing.assert_allclose(m["relative"].sel(after=1), np.sqrt(2))      # the zero norm left out


def test_settled_motion_on_another_networks_activations_matched_by_id():
    rng = np.random.default_rng(5)
    ts = np.array([0, 1, 0, 2])
    x = rng.normal(size=(4, 4, 6))
    stab = stab_of(ts, timesteps=4)
    own = settled_motion(act_of(x), stab)
    twin = act_of(x).isel(stimulus=[2, 0, 3, 1])                       # the same stimuli in another order
    xr.testing.assert_allclose(settled_motion(twin, stab), own)
    with pytest.raises(AnalysisError, match="1 of the 4 stimuli of stab are not in the activation"):
        settled_motion(act_of(x).isel(stimulus=[0, 1, 2]), stab)
    with pytest.raises(AnalysisError, match="stab covers 5 steps but the activation has 4"):
        settled_motion(act_of(x), stab_of(ts))
    with pytest.raises(AnalysisError, match="no stimulus is stable-correct"):
        settled_motion(act_of(x), stab_of(ts, ["stable-incorrect"] * 4, timesteps=4))
