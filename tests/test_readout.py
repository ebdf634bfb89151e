"""Readout analyses on hand-built data whose answers are known, and on real extractions."""

import numpy as np
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

import vision_rnn as vrnn
from vision_rnn.analysis import (CATEGORIES, HALT_THRESHOLDS, accuracy, fit_readout, halting, heading, peripherality,
                                 predictions, readout_dendrogram, readout_zone, stability)
from vision_rnn.errors import AnalysisError, VRNNError

from synthetic import settling_network


def logits_of(seqs, n_classes=4, labels=None):
    """Logits whose argmax follows the given class sequences (stimulus x step)."""
    seqs = np.asarray(seqs)
    lg = np.eye(n_classes)[seqs] * 2.0 + 0.1
    coords = {"stimulus": [f"s{i}" for i in range(len(seqs))], "time": np.arange(seqs.shape[1])}
    if labels is not None:
        coords["label"] = ("stimulus", np.asarray(labels))
    return xr.DataArray(lg, dims=("stimulus", "time", "class"), coords=coords)


def act_of(a):
    a = np.asarray(a, dtype=float)
    return xr.DataArray(a, dims=("stimulus", "time", "unit"),
                        coords={"stimulus": [f"s{i}" for i in range(a.shape[0])], "time": np.arange(a.shape[1])})


# -- predictions, accuracy -------------------------------------------------------------------------
def test_predictions_and_accuracy_leave_out_unlabelled():
    lg = logits_of([[0, 1, 1], [2, 2, 1], [3, 3, 3]], labels=[1, 2, -1])
    assert predictions(lg).values.tolist() == [[0, 1, 1], [2, 2, 1], [3, 3, 3]]
    assert predictions(lg).dims == ("stimulus", "time")
    assert list(predictions(lg)["label"].values) == [1, 2, -1]           # coordinates kept
    acc = accuracy(lg)
    assert acc.dims == ("time",)
    np.testing.assert_allclose(acc.values, [0.5, 1.0, 0.5])              # the label -1 stimulus is out
    np.testing.assert_allclose(accuracy(lg, labels=[0, 2, 3]).values, [1.0, 2 / 3, 1 / 3])


def test_accuracy_without_any_label_says_so():
    lg = logits_of([[0, 1]], labels=[-1])
    with pytest.raises(AnalysisError, match="no stimulus has a label"):
        accuracy(lg)


def test_wrong_dims_and_types_are_refused_with_one_line():
    lg = logits_of([[0, 1]], labels=[0])
    with pytest.raises(AnalysisError, match=r"needs \('stimulus', 'time', 'class'\)"):
        predictions(lg.rename({"class": "unit"}))
    with pytest.raises(AnalysisError, match="must be an xarray.DataArray"):
        predictions(lg.values)
    with pytest.raises(AnalysisError, match="2 labels for 1 stimuli"):
        accuracy(lg, labels=[0, 1])
    assert issubclass(AnalysisError, VRNNError)


# -- stability ---------------------------------------------------------------------------------------
CASES = [  # (sequence, label, category, t_stable); T = 5
    ([0, 0, 0, 0, 0], 0, "stable-correct", 0),
    ([1, 0, 0, 0, 0], 0, "stable-correct", 1),
    ([1, 1, 0, 0, 0], 0, "stable-correct", 2),
    ([2, 1, 1, 0, 0], 0, "stable-correct", 3),          # t_stable = T-2: the latest possible
    ([3, 3, 3, 3, 3], 0, "stable-incorrect", 0),
    ([0, 2, 2, 2, 2], 0, "stable-incorrect", 1),
    ([1, 3, 1, 2, 2], 0, "stable-incorrect", 3),
    ([1, 1, 1, 1, 0], 0, "unstable-correct", -1),       # changes at the last step: unstable
    ([0, 1, 0, 0, 0], 0, "unstable-correct", -1),       # the final class was seen before the final run
    ([1, 1, 1, 1, 2], 0, "unstable-incorrect", -1),
    ([2, 1, 2, 2, 2], 0, "unstable-incorrect", -1),
]


def test_stability_covers_every_category_and_t_stable():
    seqs = [c[0] for c in CASES] + [[0, 0, 0, 0, 0]]
    labels = [c[1] for c in CASES] + [-1]
    st = stability(logits_of(seqs, labels=labels))
    assert st.sizes["stimulus"] == len(CASES)                        # label -1 is left out
    assert st["category"].values.tolist() == [c[2] for c in CASES]
    assert st["t_stable"].values.tolist() == [c[3] for c in CASES]
    assert set(st["category"].values) == set(CATEGORIES)
    assert set(st["t_stable"].values[st["category"].values == "stable-correct"]) == {0, 1, 2, 3}
    assert st["final"].values.tolist() == [c[0][-1] for c in CASES]
    assert list(st["stimulus"].values) == [f"s{i}" for i in range(len(CASES))]


def test_stability_beside_metadata_named_like_its_variables():
    """The 92-image set has a metadata column `category`: the stability's own variables keep their values."""
    seqs = [c[0] for c in CASES]
    lg = logits_of(seqs, labels=[c[1] for c in CASES])
    lg = lg.assign_coords(category=("stimulus", ["animal"] * len(CASES)), final=("stimulus", [9] * len(CASES)))
    st = stability(lg)
    assert st["category"].values.tolist() == [c[2] for c in CASES]
    assert st["final"].values.tolist() == [c[0][-1] for c in CASES]


def _by_definition(seq, label):
    """The notebook's definition, written out step by step."""
    t_n = len(seq)
    start = t_n - 1
    while start > 0 and seq[start - 1] == seq[-1]:
        start -= 1
    stable = start <= t_n - 2 and seq[-1] not in seq[:start]
    correct = seq[-1] == label if stable else label in seq
    return ("stable" if stable else "unstable") + ("-correct" if correct else "-incorrect"), start if stable else -1


def test_stability_matches_the_definition_on_random_sequences():
    rng = np.random.default_rng(3)
    seqs = rng.integers(0, 3, size=(400, 6))
    seqs[::3, 2:] = seqs[::3, 2:3]                                   # plenty of settling sequences
    labels = rng.integers(0, 3, size=400)
    st = stability(logits_of(seqs, n_classes=3, labels=labels))
    expected = [_by_definition(list(s), l) for s, l in zip(seqs, labels)]
    assert st["category"].values.tolist() == [e[0] for e in expected]
    assert st["t_stable"].values.tolist() == [e[1] for e in expected]


def test_stability_needs_two_steps():
    with pytest.raises(AnalysisError, match="at least 2 time steps"):
        stability(logits_of([[1]], labels=[1]))


# -- readout zones --------------------------------------------------------------------------------
def test_readout_zone_is_the_argmax_of_the_scores():
    w = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 2.0]])
    act = act_of([[[3, 1, 1], [1, 3, 1], [1, 1, 1]]])                 # 2 wins the last by its longer vector
    assert readout_zone(act, w).values.tolist() == [[0, 1, 2]]
    assert readout_zone(act, w, bias=[0, 0, -5]).values.tolist() == [[0, 1, 0]]
    w_da = xr.DataArray(w, dims=("class", "feature"), coords={"class": ["a", "b", "c"]})
    assert (readout_zone(act, w_da) == readout_zone(act, w)).all()
    assert readout_zone(act, w)["stimulus"].values.tolist() == ["s0"]


def test_zones_without_bias_are_cones_scaling_never_changes_the_zone():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(7, 20))
    act = act_of(rng.normal(size=(50, 4, 20)))
    zone = readout_zone(act, w)
    for c in (1e-3, 0.3, 1.0, 7.0, 1e4):
        assert (readout_zone(act * c, w) == zone).all()
    # a per-representation positive factor too
    factors = xr.DataArray(rng.uniform(0.01, 100, size=(50, 4)), dims=("stimulus", "time"))
    assert (readout_zone(act * factors, w) == zone).all()
    # with a bias, zones are shifted half-spaces: shrinking towards the origin lets the bias win
    biased = readout_zone(act * 1e-6, w, bias=np.arange(7.0))
    assert (biased == 6).all()


def test_readout_weight_must_fit_the_layer():
    act = act_of(np.ones((2, 3, 5)))
    with pytest.raises(AnalysisError, match="4 features but the activation has 5 units.*fit_readout"):
        readout_zone(act, np.ones((3, 4)))
    with pytest.raises(AnalysisError, match="bias has 2 values for 3 classes"):
        readout_zone(act, np.ones((3, 5)), bias=[0, 1])
    with pytest.raises(AnalysisError, match=r"needs \('stimulus', 'time', 'unit'\)"):
        readout_zone(act.rename({"unit": "neuroid"}), np.ones((3, 5)))


def _planted_angle(u, other, theta, r):
    return r * (np.cos(theta) * u + np.sin(theta) * other)


def test_peripherality_is_the_cosine_with_the_zone_vector():
    w = np.diag([1.0, 2.0, 0.5])                       # orthogonal readout vectors of different lengths
    e = np.eye(3)
    thetas = np.array([[0.1, 0.5], [0.3, 0.7]])        # all < pi/4: the planted class keeps its zone
    act = np.stack([[_planted_angle(e[0], e[2], thetas[0, 0], 3.0), _planted_angle(e[0], e[2], thetas[0, 1], 9.0)],
                    [_planted_angle(e[1], e[2], thetas[1, 0], 1.0), _planted_angle(e[1], e[0], thetas[1, 1], 0.1)]])
    p = peripherality(act_of(act), w)
    assert readout_zone(act_of(act), w).values.tolist() == [[0, 0], [1, 1]]
    np.testing.assert_allclose(p.values, np.cos(thetas), rtol=1e-12)
    # a bias moves a representation into another zone: the cosine is then with that zone's vector
    pb = peripherality(act_of(act), w, bias=[0, 0, 100])
    np.testing.assert_allclose(pb.values, np.sin(thetas) * [[1, 1], [1, 0]], atol=1e-12)


def test_peripherality_of_a_zero_vector_is_nan():
    p = peripherality(act_of(np.zeros((1, 2, 3))), np.eye(3))
    assert np.isnan(p.values).all()


# -- heading ------------------------------------------------------------------------------------------
def _unit(v):
    v = np.asarray(v, dtype=float)
    return v / np.linalg.norm(v)


def test_heading_compares_the_eventual_class_with_other_stimuli_classes():
    w = np.eye(4)
    # zone = largest component; each stimulus ends in the zone of its label
    a = _unit([0.5, 0.1, 0.8, 0.2])        # label 0, in zone 2 until t=2
    b = _unit([0.3, 0.4, 0.9, 0.0])        # label 1, in zone 2 until t=1
    c = _unit([0.0, 0.2, 0.9, 0.3])        # label 0 (same as a), in zone 2 until t=1
    d = _unit([0.9, 0.1, 0.0, 0.4])        # label 2, in zone 0 until t=1: another zone
    final = {0: _unit([1, 0.1, 0, 0]), 1: _unit([0, 1, 0.1, 0]), 2: _unit([0.1, 0, 1, 0])}
    vec = np.array([[a, a, final[0], final[0]], [b, final[1], final[1], final[1]],
                    [c, final[0], final[0], final[0]], [d, final[2], final[2], final[2]],
                    [final[2]] * 4])
    labels = [0, 1, 0, 2, 2]
    seqs = np.argmax(vec, axis=-1)
    stab = stability(logits_of(seqs, labels=labels))
    assert stab["t_stable"].values.tolist() == [2, 1, 1, 1, 0]
    h = heading(act_of(vec), w, stab)
    assert h.dims == ("target", "time")
    # t = 0: a, b, c share zone 2; d is alone in zone 0
    eventual0 = np.mean([a[0], b[1], c[0], d[2]])
    pairs0 = [a[1], b[0], b[0], c[1]]      # (a,b) (b,a) (b,c) (c,b); a and c share a label
    np.testing.assert_allclose(h.sel(time=0).values, [eventual0, np.mean(pairs0)])
    assert h["n_not_yet"].values.tolist() == [4, 1, 0, 0]
    assert h["n_pairs"].values.tolist() == [4, 0, 0, 0]
    np.testing.assert_allclose(h.sel(time=1, target="eventual"), a[0])
    assert np.isnan(h.sel(time=1, target="others")) and np.isnan(h.sel(time=[2, 3])).all()


def test_heading_needs_matching_stimuli():
    stab = stability(logits_of([[0, 1, 1]], labels=[1]))
    act = act_of(np.ones((1, 3, 4))).assign_coords(stimulus=["other"])
    with pytest.raises(AnalysisError, match="not in the activation"):
        heading(act, np.eye(4), stab)


# -- dendrogram, fitted readout -------------------------------------------------------------------------
def test_readout_dendrogram_distances_and_ward_merges():
    w = xr.DataArray([[1.0, 0.0, 0.0], [0.9, 0.1, 0.0], [0.0, 0.0, 1.0], [0.0, 0.2, 1.0]],
                     dims=("class", "feature"), coords={"class": ["cat", "lynx", "car", "van"]})
    d = readout_dendrogram(w)
    cos01 = 0.9 / np.hypot(0.9, 0.1)
    np.testing.assert_allclose(d["distance"].sel({"class": "cat", "class_": "lynx"}), (1 - cos01) / 2)
    np.testing.assert_allclose(d["distance"].sel({"class": "cat", "class_": "car"}), 0.5)
    np.testing.assert_allclose(np.diag(d["distance"].values), 0)
    first_two = {tuple(sorted(d["linkage"].values[i, :2].astype(int))) for i in range(2)}
    assert first_two == {(0, 1), (2, 3)}                              # cat+lynx, car+van merge first
    assert d["linkage"].values[-1, 3] == 4


def test_fit_readout_makes_zones_for_any_layer():
    gap, labels, _ = settling_network(n_per_class=20, n_classes=4, timesteps=5, units=16, seed=2)
    rng = np.random.default_rng(0)
    mix = rng.normal(size=(16, 40))
    v4 = act_of(np.maximum(gap @ mix, 0)).assign_coords(label=("stimulus", labels))
    v4 = v4.where(v4.stimulus != "s0", 0)                             # a zero row does no harm
    w = fit_readout(v4, classes=["a", "b", "c", "d"])
    assert w.dims == ("class", "feature") and w.shape == (4, 40)
    assert w.attrs["cv_accuracy"] > 0.7 and w.attrs["n_rows"] == 80 * 5
    zone = readout_zone(v4, w)
    assert (zone.isel(time=-1) == labels).mean() > 0.9
    small = fit_readout(v4, max_bytes=40 * 4 * 60)                    # room for 60 rows only
    assert small.attrs["n_rows"] == 60 and small.shape == (4, 40)
    with pytest.raises(AnalysisError, match="no stimulus has a label"):
        fit_readout(v4, labels=np.full(80, -1))


# -- acceptance: logits' argmax == readout zone of gap with the stored readout ---------------------------
def _check_zones_match(tree):
    logits = tree["logits"]
    zone = readout_zone(vrnn.layer(tree, tree.attrs["readout_layer"]), tree["readout_weight"],
                        tree["readout_bias"] if "readout_bias" in tree else None)
    pred = predictions(logits)
    top2 = np.sort(logits.values.astype(np.float64), axis=-1)[..., -2:]
    clear = (top2[..., 1] - top2[..., 0]) > 1e-6
    assert clear.mean() > 0.9
    assert (pred.values == zone.values)[clear].all()


@pytest.fixture(scope="module")
def few_images():
    return vrnn.load_stimuli("builtin:fashion-mnist").subset(list(range(0, 500, 125)))


@pytest.mark.parametrize("name", ["lateral", "topdown-mult", "lateral-topdown"])
def test_predictions_equal_zones_tiny_models(name, few_images, tmp_path):
    model = vrnn.load_model(name, weights="random", seed=1)
    tree = vrnn.extract(model, few_images, layers=["gap"], out=tmp_path / "a.nc")   # lazily opened
    _check_zones_match(tree)


def test_predictions_equal_zones_ccn23_format_with_bias(few_images, tmp_path):
    import torch

    from vision_rnn.models.ccn23 import ccn23_state_dict

    model = vrnn.load_model("ccn23-64/lateral", weights="random", seed=0)
    tree = vrnn.extract(model, few_images, layers=["gap"], timesteps=4, out=tmp_path / "a.nc")
    _check_zones_match(tree)
    state = ccn23_state_dict(model)
    state["readout.bias"] = torch.linspace(-2, 2, state["readout.weight"].shape[0])
    path = tmp_path / "b64_l_1_t_0_ltinteract_additive_T_4_ltposition_all_num_1.pth"
    torch.save(state, path)
    tree = vrnn.extract(vrnn.load_model(path), few_images, layers=["gap"], out=tmp_path / "b.nc")
    assert "readout_bias" in tree
    _check_zones_match(tree)


PRETRAINED = [m.name for m in vrnn.list_models() if m.pretrained]


@pytest.mark.skipif(not PRETRAINED, reason="no pretrained weights ship yet (vrnn.list_models())")
@pytest.mark.parametrize("name", PRETRAINED or ["none"])
def test_predictions_equal_zones_pretrained(name, few_images, tmp_path):
    model = vrnn.load_model(name)
    stim = few_images if model.input_size == 32 else vrnn.load_stimuli(
        np.zeros((2, 64, 64, 3), dtype=np.uint8) + np.arange(2)[:, None, None, None] * 100)
    tree = vrnn.extract(model, stim, layers=["gap"], out=tmp_path / "a.nc")
    _check_zones_match(tree)


# -- halting ------------------------------------------------------------------------------------
def two_class(q, winner):
    """Logits (stimulus, time, 2) whose softmax gives class ``winner`` probability ``q`` (> 0.5)."""
    q, winner = np.asarray(q, float), np.asarray(winner)
    logit = np.log(q / (1 - q))
    x = np.zeros(q.shape + (2,))
    x[..., 1] = np.where(winner == 1, logit, -logit)
    return xr.DataArray(x, dims=("stimulus", "time", "class"), coords={"time": np.arange(q.shape[1])})


def test_halting_of_planted_confidences():
    # confidences of the winning class per step, and which class wins
    q = np.array([[0.55, 0.75, 0.96],      # halts at 0 (0.5), 1 (0.6, 0.7), 2 (0.8, 0.9, 0.95), last (0.99)
                  [0.995, 0.995, 0.995],   # always at step 0
                  [0.65, 0.65, 0.65]])     # 0 up to 0.6, then never: the last step
    winner = np.array([[0, 1, 1], [1, 1, 1], [0, 0, 1]])
    labels = [1, 1, 0]
    h = halting(two_class(q, winner), labels=labels)
    assert h["threshold"].values.tolist() == list(HALT_THRESHOLDS)
    steps = np.array([[0, 1, 1, 2, 2, 2, 2],
                      [0, 0, 0, 0, 0, 0, 0],
                      [0, 0, 2, 2, 2, 2, 2]])
    pred = np.take_along_axis(winner, steps, axis=1)
    np.testing.assert_allclose(h["mean_step"].values, steps.mean(axis=0))
    np.testing.assert_allclose(h["accuracy"].values, (pred == np.array(labels)[:, None]).mean(axis=0))
    np.testing.assert_allclose(h["accuracy_at_step"].values, [2 / 3, 1, 2 / 3])
    xr.testing.assert_allclose(h["accuracy_at_step"].drop_vars("time"),
                               accuracy(two_class(q, winner), labels=labels).drop_vars("time"))
    assert h.attrs["n_stimuli"] == 3 and h.attrs["label_free"] == 0


def test_halting_leaves_unlabelled_stimuli_out_and_is_label_free_without_labels():
    q = np.array([[0.7, 0.9], [0.95, 0.95], [0.6, 0.99]])
    winner = np.array([[0, 1], [1, 1], [1, 0]])
    lg = two_class(q, winner)
    h = halting(lg, labels=[1, -1, 0], thresholds=[0.8])
    assert h.attrs["n_stimuli"] == 2
    assert h["mean_step"].values.tolist() == [1.0] and h["accuracy"].values.tolist() == [1.0]
    free = halting(lg, thresholds=[0.5, 0.8])                      # no labels: agreement with the last step
    assert "accuracy" not in free and free.attrs["label_free"] == 1 and free.attrs["n_stimuli"] == 3
    np.testing.assert_allclose(free["agreement"].values, [1 / 3, 1.0])
    np.testing.assert_allclose(free["mean_step"].values, [0, 2 / 3])
    np.testing.assert_allclose(free["agreement_at_step"].values, [1 / 3, 1.0])
    xr.testing.assert_identical(halting(lg, labels=[-1, -1, -1], thresholds=[0.5, 0.8]), free)


@pytest.mark.parametrize("bad", [[], [0.0], [1.5], [0.5, 0.5], [float("nan")], "high", None])
def test_halting_refuses_thresholds_outside_0_1(bad):
    with pytest.raises(AnalysisError, match=r"halting: thresholds=.* must be distinct softmax confidences in \(0, 1\]"):
        halting(two_class(np.full((2, 2), 0.7), np.zeros((2, 2), int)), labels=[0, 1], thresholds=bad)


def test_halting_refuses_infinite_logits():
    lg = two_class(np.full((2, 2), 0.7), np.zeros((2, 2), int))
    lg[0, 1, 0] = np.inf
    with pytest.raises(AnalysisError, match="infinite"):
        halting(lg, labels=[0, 1])


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 12), n_t=st.integers(1, 6), k=st.integers(2, 5), seed=st.integers(0, 2**16),
       theta=st.lists(st.floats(0.01, 1.0), min_size=1, max_size=5, unique=True))
def test_halting_equals_a_loop_over_stimuli(n, n_t, k, seed, theta):
    rng = np.random.default_rng(seed)
    x = rng.normal(scale=3, size=(n, n_t, k)).round(1)             # rounding makes ties happen
    labels = rng.integers(-1, k, n)
    lg = xr.DataArray(x, dims=("stimulus", "time", "class"))
    p = np.exp(x) / np.exp(x).sum(-1, keepdims=True)
    acc, steps = [], []
    for th in theta:
        hits, hs = [], []
        for s in range(n):
            h = next((t for t in range(n_t) if p[s, t].max() >= th), n_t - 1)
            target = labels[s] if (labels >= 0).any() else np.argmax(x[s, -1])
            if (labels >= 0).any() and labels[s] < 0:
                continue
            hits.append(np.argmax(x[s, h]) == target)
            hs.append(h)
        acc.append(np.mean(hits))
        steps.append(np.mean(hs))
    h = halting(lg, labels=labels, thresholds=theta)
    score = "accuracy" if (labels >= 0).any() else "agreement"
    np.testing.assert_allclose(h[score].values, acc)
    np.testing.assert_allclose(h["mean_step"].values, steps)


def test_t_first_correct_is_the_first_step_showing_the_label():
    seqs = [[0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 1, 2], [2, 0, 1], [1, 2, 2]]    # class per step
    lg = xr.DataArray(np.eye(3)[seqs], dims=("stimulus", "time", "class"))
    st = stability(lg, labels=[0, 0, 0, 0, 0, 2])
    assert st["category"].values.tolist() == ["stable-correct", "stable-correct", "unstable-correct",
                                              "unstable-incorrect", "unstable-correct", "stable-correct"]
    assert st["t_first_correct"].values.tolist() == [0, 1, 0, -1, 1, 1]
    assert st["t_stable"].values.tolist() == [0, 1, -1, -1, -1, 1]
    sc = st["category"].values == "stable-correct"
    np.testing.assert_array_equal(st["t_first_correct"].values[sc], st["t_stable"].values[sc])

