"""The one-network table on a planted file whose every entry is known in advance."""

import json

import numpy as np
import pytest
import xarray as xr

import vision_rnn as vrnn
from vision_rnn.analysis import readout_measures, summary
from vision_rnn.errors import AnalysisError
from vision_rnn.report import FIGURES

from synthetic import settling_network, write_activations

E = np.eye(4)


def v(**parts):
    """A 4-unit vector from named components e0..e3."""
    return sum(c * E[int(k[1])] for k, c in parts.items())


# readout = identity (4 classes, 4 units): the zone is the largest component.
# Already-correct representations have norm 10 and cosine 0.9 with their zone's vector;
# not-yet ones norm 5 and cosine 0.8.
SIN9 = np.sqrt(1 - 0.81)
GROUPS = [  # (count, label, vectors at t = 0..3)
    (10, 0, [10 * v(e0=0.9, e1=SIN9)] * 4),                                    # stable-correct, t_stable 0
    (3, 1, [5 * v(e2=0.8, e1=0.48, e3=0.36)] + [10 * v(e1=0.9, e3=SIN9)] * 3),  # stable-correct, t_stable 1
    (2, 3, [5 * v(e2=0.8, e3=0.6)] * 2 + [10 * v(e3=0.9, e0=SIN9)] * 2),        # stable-correct, t_stable 2
    (4, 0, [10 * v(e1=0.9, e2=SIN9)] * 4),                                    # stable-incorrect
    (1, 0, [10 * v(e0=0.9, e1=SIN9), 10 * v(e1=0.9, e0=SIN9)] * 2),          # unstable-correct
    (1, -1, [10 * v(e0=1.0)] * 4),                                            # unlabelled: left out
]


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    gap = np.concatenate([np.repeat(np.array(vecs)[None], n, axis=0) for n, _, vecs in GROUPS])
    labels = np.concatenate([[lab] * n for n, lab, _ in GROUPS])
    rng = np.random.default_rng(0)
    v1 = np.maximum(np.einsum("stu,uv->stv", gap, rng.normal(size=(4, 60))), 0) + rng.random((gap.shape[0], 4, 60))
    path = tmp_path_factory.mktemp("planted") / "acts.nc"
    return write_activations(path, {"v1": v1, "gap": gap}, labels, np.eye(4), batch_size=8,
                             classes=["cat", "dog", "car", "van"])


def test_summary_of_a_planted_network(planted):
    s = summary(vrnn.open_activations(planted))
    assert s.attrs["n_labelled"] == 20 and s.attrs["n_stimuli"] == 21 and s.attrs["readout"] == "stored"
    np.testing.assert_allclose(s["accuracy"].values, [11 / 20, 13 / 20, 16 / 20, 15 / 20])
    np.testing.assert_allclose(s["category_share"].values, [15 / 20, 4 / 20, 1 / 20, 0])
    assert s["category"].values.tolist() == ["stable-correct", "stable-incorrect", "unstable-correct",
                                             "unstable-incorrect"]
    assert s["t_stable_count"].values.tolist() == [10, 3, 2, 0]
    assert s.attrs["settling_cutoff"] == 3
    # norm: already correct 10 at every step; not yet 5 while any is left (t = 0, 1)
    np.testing.assert_allclose(s["norm"].sel(status="correct").values, 10)
    np.testing.assert_allclose(s["norm"].sel(status="not_yet").values[:2], 5)
    assert np.isnan(s["norm"].sel(status="not_yet").values[2:]).all()
    np.testing.assert_allclose(s["norm_mean"].values, [10, 5])
    np.testing.assert_allclose(s["peripherality"].sel(status="correct").values, 0.9)
    np.testing.assert_allclose(s["peripherality_mean"].values, [0.9, 0.8])
    # heading at t = 0: 3 stimuli labelled dog and 2 labelled van share the car zone
    eventual = (3 * 0.48 + 2 * 0.6) / 5
    others = (3 * 2 * 0.36 + 2 * 3 * 0.0) / 12     # dog stimuli towards van's vector, van towards dog's
    np.testing.assert_allclose(s["heading_over_time"].sel(time=0).values, [eventual, others])
    np.testing.assert_allclose(s["heading_over_time"].sel(time=1, target="eventual"), 0.6)
    assert np.isnan(s["heading_over_time"].sel(time=1, target="others"))
    np.testing.assert_allclose(s["heading"].values, [eventual, others])   # steps where both exist
    # drift: the t_stable 1 group moves only from step 0 to 1; t_stable 0 never moves
    move = np.linalg.norm(GROUPS[1][2][1] - GROUPS[1][2][0])
    np.testing.assert_allclose(s["drift"].sel(t_stable=1).values[:3], [move, 0, 0], atol=1e-5)
    np.testing.assert_allclose(s["drift"].sel(t_stable=0).values[:3], 0, atol=1e-5)
    move2 = np.linalg.norm(GROUPS[2][2][2] - GROUPS[2][2][1])
    np.testing.assert_allclose(s["drift"].sel(t_stable=2).values[:3], [0, move2, 0], atol=1e-5)
    assert np.isnan(s["drift"].sel(t_stable=3)).all() and np.isnan(s["drift"].sel(time=3)).all()
    assert s["before_cutoff"].values.tolist() == [True, True, True, False]
    # claim (1): here nothing moves once settled; k steps after settling leaves fewer stimuli
    assert s["settled_n"].values.tolist() == [15, 13, 10]
    np.testing.assert_allclose(s["settled_distance"].values, 0, atol=1e-5)
    assert float(s["still_moving"]) == 0.0
    # halting reads the network's logits, over the labelled stimuli
    tree = vrnn.open_activations(planted)
    h = vrnn.analysis.halting(tree["logits"])
    np.testing.assert_allclose(s["halting_accuracy"].values, h["accuracy"].values)
    np.testing.assert_allclose(s["halting_mean_step"].values, h["mean_step"].values)


def test_summary_is_json_ready_and_round_trips(planted):
    from vision_rnn.report import summary_dict

    s = summary(planted)                                   # a path works too
    d = json.loads(json.dumps(summary_dict(s), allow_nan=False))
    assert set(d["data_vars"]) >= {"accuracy", "category_share", "t_stable_count", "norm", "norm_mean",
                                   "peripherality", "peripherality_mean", "heading"}
    assert d["data_vars"]["norm"]["data"][1][2] is None    # NaN becomes null
    np.testing.assert_allclose(d["data_vars"]["accuracy"]["data"], s["accuracy"].values)


def test_other_layers_get_a_fitted_readout(planted):
    m = readout_measures(vrnn.open_activations(planted), "v1", cv=2)
    assert m.attrs["layer"] == "v1" and m.attrs["readout"].startswith("fitted")
    assert m["readout_weight"].shape == (4, 60)
    last = m.isel(time=-1)
    settled = last["category"] == "stable-correct"
    assert (last["zone"] == last["label"])[settled].mean() > 0.9


def test_measures_equal_the_single_analyses(planted):
    from vision_rnn.analysis import l2_norm, peripherality, readout_zone, stability, step_distance

    tree = vrnn.open_activations(planted)
    m = readout_measures(tree)
    gap = vrnn.layer(tree, "gap").sel(stimulus=m["stimulus"])
    np.testing.assert_array_equal(m["zone"].values, readout_zone(gap, tree["readout_weight"]).values)
    np.testing.assert_allclose(m["norm"].values, l2_norm(gap).values, rtol=1e-12)
    np.testing.assert_allclose(m["step"].values[:, :-1], step_distance(gap).values, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(m["scores"].values.max(-1) / m["norm"].values,
                               peripherality(gap, tree["readout_weight"]).values, rtol=1e-9)
    assert (m["category"] == stability(tree["logits"])["category"]).all()


def test_without_labels_the_final_prediction_stands_in_for_the_label(tmp_path):
    from vision_rnn.report import analyze

    gap, labels, w = settling_network(n_per_class=20, n_classes=3, timesteps=5, units=8)
    final = np.argmax(np.einsum("stu,ku->stk", gap, w)[:, -1], axis=-1)
    free = summary(write_activations(tmp_path / "free.nc", {"gap": gap}, np.full(labels.size, -1), w))
    same = summary(write_activations(tmp_path / "final.nc", {"gap": gap}, final, w))
    assert free.attrs["label_free"] == 1 and same.attrs["label_free"] == 0
    # the known answer: every number equals that of the file labelled with its final predictions
    assert free["category"].values.tolist() == ["stable", "unstable"]
    np.testing.assert_array_equal(free["category_share"].values, same["category_share"].sel(
        category=["stable-correct", "unstable-correct"]).values)
    assert same["category_share"].sel(category=["stable-incorrect", "unstable-incorrect"]).sum() == 0
    for name in ("accuracy", "t_stable_count", "drift", "norm", "peripherality", "heading", "settled_relative",
                 "still_moving", "halting_accuracy", "halting_mean_step"):
        xr.testing.assert_allclose(free[name], same[name])
    assert free["accuracy"].values[-1] == 1.0 and 0 < free["category_share"].sel(category="unstable") < 1
    out = analyze(tmp_path / "free.nc", tmp_path / "report", n_bootstrap=0)
    text = (tmp_path / "report" / "summary.md").read_text()
    assert "label-free" in text and "## Agreement with the last step's prediction per step (%)" in text
    assert json.loads((tmp_path / "report" / "summary.json").read_text())["attrs"]["label_free"] == 1
    assert out.attrs["label_free"] == 1 and all((tmp_path / "report" / f"{f}.png").exists() for f in FIGURES)


def test_a_baseline_network_is_measured_with_this_networks_settling(planted, tmp_path):
    from click.testing import CliRunner

    from vision_rnn.cli import main
    from vision_rnn.report import analyze

    labels = np.concatenate([[lab] * n for n, lab, _ in GROUPS])
    n = labels.size
    # the twin moves by 1 every step along e0: norm t + 1 at step t, so the move k steps after t_s,
    # relative to the norm before it, is 1 / (t_s + k)
    gap = (np.arange(4)[None, :, None] + 1.0) * np.repeat(E[0][None, None], n, axis=0)
    twin = write_activations(tmp_path / "twin.nc", {"gap": gap}, labels, np.eye(4), batch_size=8,
                             classes=["cat", "dog", "car", "van"])
    s = summary(planted, baseline=twin)
    ts = np.array([0] * 10 + [1] * 3 + [2] * 2)
    for k in (1, 2, 3):
        ok = ts + k <= 3
        np.testing.assert_allclose(s["baseline_settled_relative"].sel(after=k), np.mean(1 / (ts[ok] + k)), rtol=1e-6)
        np.testing.assert_allclose(s["baseline_settled_distance"].sel(after=k), 1.0, rtol=1e-6)
    assert s["baseline_settled_n"].values.tolist() == s["settled_n"].values.tolist() == [15, 13, 10]
    assert float(s["baseline_still_moving"]) == 1.0 and float(s["still_moving"]) == 0.0
    assert s.attrs["baseline"] == "synthetic (planted weights)"
    out = analyze(planted, tmp_path / "report", baseline=twin, n_bootstrap=0)
    text = (tmp_path / "report" / "summary.md").read_text()
    rel = [100 * np.mean(1 / (ts[ts + k <= 3] + k)) for k in (1, 2, 3)]          # 81.1, 46.2, 33.3
    assert ("| baseline synthetic (planted weights): relative move (%) | " +
            " | ".join(f"{x:.1f}" for x in rel) + " |") in text
    assert json.loads((tmp_path / "report" / "summary.json").read_text())["data_vars"]["baseline_still_moving"]
    assert float(out["baseline_still_moving"]) == 1.0
    # other stimuli, another layer, a missing file: refused, naming the baseline
    other = write_activations(tmp_path / "other.nc", {"gap": gap[1:]}, labels[1:], np.eye(4),
                              classes=["cat", "dog", "car", "van"])                # other stimulus ids
    with pytest.raises(AnalysisError, match=r"other.nc: \d+ of the 20 stimuli analysed are not in it; extract the baseline from the same stimuli"):
        summary(planted, baseline=other)
    with pytest.raises(AnalysisError, match=r"twin.nc: has no layer 'v1'"):
        summary(planted, "v1", baseline=twin)
    r = CliRunner().invoke(main, ["analyze", str(planted), "-o", str(tmp_path / "r2"), "--baseline",
                                  str(tmp_path / "missing.nc")])
    assert r.exit_code == 2 and "missing.nc" in r.output and not (tmp_path / "r2").exists()


def test_bootstrap_intervals_resample_stimuli_with_the_cutoff_of_the_full_sample(planted, tmp_path):
    from click.testing import CliRunner

    from vision_rnn.analysis.summary import BOOTSTRAPPED, summarize
    from vision_rnn.cli import main

    m = readout_measures(planted)
    s = summarize(m, n_bootstrap=100, seed=3)
    assert s.attrs["n_bootstrap"] == 100 and s.attrs["bootstrap_seed"] == 3
    for name in BOOTSTRAPPED:
        if name in s:
            low, high = s[f"{name}_ci_low"], s[f"{name}_ci_high"]
            assert low.dims == s[name].dims
            ok = np.isfinite(low.values)
            assert (low.values[ok] <= high.values[ok]).all()
    # the known answer for accuracy: percentiles of the same resamples, computed here by hand
    rng = np.random.default_rng(3)
    correct = (m["prediction"] == m["label"]).values
    reps = np.array([correct[rng.integers(0, correct.shape[0], correct.shape[0])].mean(axis=0) for _ in range(100)])
    np.testing.assert_allclose(s["accuracy_ci_low"].values, np.percentile(reps, 2.5, axis=0))
    np.testing.assert_allclose(s["accuracy_ci_high"].values, np.percentile(reps, 97.5, axis=0))
    # every stable-correct stimulus has norm 10 once correct: no resample can move that mean
    np.testing.assert_allclose(s["norm_mean_ci_low"].sel(status="correct"), 10, rtol=1e-6)
    np.testing.assert_allclose(s["norm_mean_ci_high"].sel(status="correct"), 10, rtol=1e-6)
    xr.testing.assert_identical(summarize(m, n_bootstrap=100, seed=3), s)       # seeded
    other = summarize(m, n_bootstrap=100, seed=4)
    assert not (other["accuracy_ci_low"].equals(s["accuracy_ci_low"]) and
                other["accuracy_ci_high"].equals(s["accuracy_ci_high"]))
    assert "accuracy_ci_low" not in summarize(m)
    with pytest.raises(AnalysisError, match="`n_bootstrap=-1`"):
        summarize(m, n_bootstrap=-1)
    r = CliRunner().invoke(main, ["analyze", str(planted), "-o", str(tmp_path / "r"), "--bootstrap", "-1"])
    assert r.exit_code == 2 and "--bootstrap" in r.output and not (tmp_path / "r").exists()
    r = CliRunner().invoke(main, ["analyze", str(planted), "-o", str(tmp_path / "r"), "--bootstrap", "50",
                                  "--seed", "1"])
    assert r.exit_code == 0, r.output
    text = (tmp_path / "r" / "summary.md").read_text()
    assert "95% bootstrap intervals over stimuli (50 samples, seed 1" in text
    assert "| L2 norm | 10 [10, 10] |" in text
