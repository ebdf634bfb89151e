"""Encoding models: ridge scores on recordings generated from known linear weights plus noise."""

import subprocess
import sys

import numpy as np
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

from vision_rnn.analysis import encode, split_half_reliability
from vision_rnn.errors import VRNNError


def planted(n=200, steps=3, units=20, neuroids=30, reps=4, noise=1.0, noise_neuroids=0, seed=0, features=None):
    """Bin j of the recording is a fixed linear map of model step j plus Gaussian noise per trial."""
    rng = np.random.default_rng(seed)
    if features is None:
        x = rng.normal(size=(n, steps, units))
        latent = x
    else:                                       # a wide layer whose units span a `units`-dim subspace
        latent = rng.normal(size=(n, steps, units))
        x = latent @ rng.normal(size=(units, features))
    w = rng.normal(size=(units, neuroids)) / np.sqrt(units)
    signal = np.einsum("nsu,uk->nsk", latent, w)                      # (stimulus, bin, neuroid)
    signal = np.concatenate([signal, np.zeros((n, steps, noise_neuroids))], axis=2)
    y = signal[:, None] + noise * rng.normal(size=(n, reps, steps, neuroids + noise_neuroids))
    ids = [f"img/{i:03d}.png" for i in range(n)]
    model = xr.DataArray(x, dims=("stimulus", "time", "unit"), name="it",
                         coords={"stimulus": ids, "time": np.arange(steps)})
    rec = xr.DataArray(y, dims=("stimulus", "repetition", "time", "neuroid"), name="response",
                       coords={"stimulus": [f"{i:03d}" for i in range(n)], "time": 95.0 + 10 * np.arange(steps),
                               "neuroid": [f"n{i}" for i in range(neuroids + noise_neuroids)],
                               "region": ("neuroid", ["IT"] * (neuroids + noise_neuroids))})
    theory = (w ** 2).sum(axis=0) / ((w ** 2).sum(axis=0) + noise ** 2 / reps)     # reliability of the mean
    return model, rec, theory


def test_noise_corrected_score_approaches_one():
    model, rec, theory = planted()
    ds = encode(model, rec)
    assert ds["r"].dims == ("step", "time", "neuroid")
    assert ds.attrs["stimulus_match"].startswith("200 stimuli matched (200 by stem)")
    diag_r = np.stack([ds["r"].isel(step=j, time=j).values for j in range(3)])
    diag_c = np.stack([ds["r_corrected"].isel(step=j, time=j).values for j in range(3)])
    off = np.stack([ds["r"].isel(step=j, time=k).values for j in range(3) for k in range(3) if j != k])
    assert 0.95 < np.median(diag_c) < 1.05                       # noise-corrected: the model is the truth
    assert np.median(diag_r) < 0.9                               # raw r is held down by the noise
    assert abs(np.median(off)) < 0.05                            # other steps carry nothing about this bin
    # the split-half estimate agrees with the reliability the generator implies
    np.testing.assert_allclose(np.median(ds["reliability"].values, axis=0), theory, atol=0.12)
    assert abs(np.median(ds["reliability"].values) - np.median(theory)) < 0.03
    assert ds.attrs["n_unreliable"] == 0 and not ds["unreliable"].values.any()


def test_more_noise_lowers_raw_r_but_not_the_corrected_score():
    low = encode(*planted(noise=0.5)[:2])
    high = encode(*planted(noise=2.0)[:2], min_reliability=0.05)     # every neuroid corrected, none left out
    assert not high["unreliable"].values.any()
    med = lambda ds, v: float(np.median([ds[v].isel(step=j, time=j).values for j in range(3)]))
    assert med(high, "r") < med(low, "r") - 0.2
    assert abs(med(high, "r_corrected") - 1) < 0.1 and abs(med(low, "r_corrected") - 1) < 0.05


def test_unreliable_neuroids_are_reported_not_divided_by():
    model, rec, _ = planted(noise_neuroids=12)
    ds = encode(model, rec)
    rel = ds["reliability"].values
    bad = ds["unreliable"].values
    assert bad.sum() > 0 and ds.attrs["n_unreliable"] == int(bad.sum())
    np.testing.assert_array_equal(bad, ~(rel >= 0.3))                 # the default threshold
    assert bad[:, :30].sum() == 0                                # the planted neuroids are all reliable
    assert np.isnan(ds["r_corrected"].values[:, bad]).all()
    ok = ~bad
    np.testing.assert_allclose(ds["r_corrected"].values[:, ok], (ds["r"].values / np.sqrt(np.abs(rel)))[:, ok])


def test_split_half_reliability_definition_and_missing_trials():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(40, 4, 2, 3)) + rng.normal(size=(40, 1, 2, 3)) * 2
    rec = xr.DataArray(x, dims=("stimulus", "repetition", "time", "neuroid"),
                       coords={"stimulus": np.arange(40), "time": [5.0, 15.0], "neuroid": ["a", "b", "c"]})
    rel = split_half_reliability(rec, n_splits=1, seed=7)
    perm = np.random.default_rng(7).permutation(4)
    a, b = x[:, perm[:2]].mean(1), x[:, perm[2:]].mean(1)
    for t in range(2):
        for k in range(3):
            r = np.corrcoef(a[:, t, k], b[:, t, k])[0, 1]
            assert rel.values[t, k] == pytest.approx(2 * r / (1 + r), abs=1e-12)
    x[0, 0] = np.nan                                             # a missing trial is left out of its half
    rel_nan = split_half_reliability(rec.copy(data=x), n_splits=50)
    assert np.isfinite(rel_nan.values).all()
    with pytest.raises(VRNNError, match="at least 2 repetitions"):
        split_half_reliability(rec.isel(repetition=[0]))


def reference_r(model, rec, step, reducer, folds=5, seed=0):
    """Mean held-out r per (bin, neuroid) of one step, by scikit-learn alone: the reduction
    ``reducer(n_train)`` fitted on each training fold, RidgeCV per target, the same folds."""
    from sklearn.linear_model import RidgeCV
    from sklearn.model_selection import KFold

    x = model.isel(time=step).values
    y = rec.mean("repetition").transpose("stimulus", "time", "neuroid").values.reshape(len(x), -1)
    r = []
    for train, test in KFold(n_splits=folds, shuffle=True, random_state=seed).split(x):
        red = reducer(len(train))
        fit = RidgeCV(alphas=np.logspace(-3, 7, 21), alpha_per_target=True).fit(red.fit_transform(x[train]), y[train])
        p, t = fit.predict(red.transform(x[test])), y[test]
        p, t = p - p.mean(0), t - t.mean(0)
        r.append((p * t).sum(0) / np.sqrt((p * p).sum(0) * (t * t).sum(0)))
    return np.mean(r, axis=0).reshape(rec.sizes["time"], rec.sizes["neuroid"])


def test_wide_layers_are_reduced_on_the_training_folds_as_scikit_learn_does():
    from sklearn.decomposition import PCA
    from sklearn.random_projection import GaussianRandomProjection

    model, rec, _ = planted(n=150, units=8, features=400)          # more units than stimuli: from the Gram matrix
    ds = encode(model, rec, max_features=50, folds=5)
    assert ds.attrs["reduce"] == "pca to 50" and ds.attrs["n_features"] == 400
    assert np.median([ds["r_corrected"].isel(step=j, time=j).values for j in range(3)]) > 0.95
    for step in range(3):
        ref = reference_r(model, rec, step, lambda n: PCA(n_components=min(50, n), svd_solver="full"))
        np.testing.assert_allclose(ds["r"].isel(step=step).values, ref, atol=1e-8)
    rp = encode(model, rec, max_features=50, reduce="random", n_components=60)
    assert rp.attrs["reduce"] == "random to 60"
    assert np.median([rp["r_corrected"].isel(step=j, time=j).values for j in range(3)]) > 0.9
    ref = reference_r(model, rec, 1, lambda n: GaussianRandomProjection(n_components=60, random_state=0))
    np.testing.assert_allclose(rp["r"].isel(step=1).values, ref, atol=1e-8)


class SpyPCA:
    """Records how many stimuli each reduction was fitted on."""

    fitted = []
    from sklearn.decomposition import PCA as real

    def __init__(self, **kw):
        self.pca = SpyPCA.real(**kw)

    def fit_transform(self, x):
        SpyPCA.fitted.append(len(x))
        return self.pca.fit_transform(x)

    def transform(self, x):
        return self.pca.transform(x)


def test_more_stimuli_than_units_are_reduced_by_scikit_learn_on_the_training_folds(monkeypatch):
    import sklearn.decomposition

    model, rec, _ = planted(n=150, units=8, features=100)
    monkeypatch.setattr(sklearn.decomposition, "PCA", SpyPCA)
    SpyPCA.fitted.clear()
    ds = encode(model, rec, max_features=50, folds=5)
    assert SpyPCA.fitted == [120] * 15                           # 5 folds x 3 steps, never the held-out 30
    assert np.median([ds["r_corrected"].isel(step=j, time=j).values for j in range(3)]) > 0.95


@settings(max_examples=40, deadline=None)
@given(n=st.integers(8, 40), p=st.integers(1, 60), k=st.integers(1, 60), seed=st.integers(0, 2**16),
       offset=st.floats(-1e3, 1e3), rank=st.integers(1, 60), data=st.data())
def test_pca_from_the_gram_matrix_is_scikit_learns_pca_on_the_training_rows(n, p, k, seed, offset, rank, data):
    from sklearn.decomposition import PCA

    from vision_rnn.analysis.encoding import centred_gram, pca_from_gram

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, min(rank, p))) @ rng.normal(size=(min(rank, p), p)) + offset
    test = np.sort(data.draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=n - 3, unique=True)))
    train = np.setdiff1d(np.arange(n), test)
    k = min(k, len(train))
    z_train, z_test = pca_from_gram(centred_gram(x), train, test, k)
    pca = PCA(n_components=min(k, p), svd_solver="full").fit(x[train])
    ref_train, ref_test = pca.transform(x[train]), pca.transform(x[test])
    keep = z_train.shape[1]
    scale = max(1.0, np.abs(ref_train).max())
    if np.abs(ref_train).max() < 1e-6 * max(1.0, abs(offset)):  # a single training row, or constant rows
        assert not z_train.any() and not z_test.any()
        return
    sv = pca.singular_values_
    assert abs(keep - int((sv[:k] ** 2 > sv[0] ** 2 * 1e-9).sum())) <= 1   # the same components, but at the cut
    for j in range(keep):
        if j + 1 < len(sv) and abs(sv[j] - sv[j + 1]) < 1e-6 * sv[0]:
            continue                                             # a repeated eigenvalue: any basis of its space
        sign = np.sign(ref_train[:, j] @ z_train[:, j]) or 1.0
        np.testing.assert_allclose(sign * z_train[:, j], ref_train[:, j], atol=1e-7 * scale)
        np.testing.assert_allclose(sign * z_test[:, j], ref_test[:, j], atol=1e-6 * scale)
    # what is dropped carries (numerically) nothing on the training rows
    assert np.abs(ref_train[:, keep:]).max(initial=0) <= 1e-3 * scale


@pytest.mark.parametrize("units,reduce", [(400, "pca"), (400, "random"), (20, "pca")])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_activations_are_refused_naming_the_step(units, reduce, bad):
    model, rec, _ = planted(n=60, units=units)
    x = model.values.copy()
    x[7, 1, 3] = bad
    with pytest.raises(VRNNError, match=r"layer it has NaN or infinite activations at step 1"):
        encode(model.copy(data=x), rec, max_features=50, reduce=reduce)


def test_a_constant_layer_gives_zero_features():
    from vision_rnn.analysis.encoding import centred_gram, pca_from_gram

    x = np.full((12, 30), 3.5)
    z_train, z_test = pca_from_gram(centred_gram(x), np.arange(9), np.arange(9, 12), 5)
    assert z_train.shape == (9, 1) and z_test.shape == (3, 1) and not z_train.any() and not z_test.any()


def test_static_recording_without_repetitions_and_errors():
    model, rec, _ = planted(n=60)
    static = rec.isel(time=[1]).mean("repetition")
    ds = encode(model, static)
    assert ds.sizes["time"] == 1 and "r_corrected" not in ds
    assert float(ds["r"].isel(step=1, time=0).median()) > 0.7
    with pytest.raises(VRNNError, match="at least 10 stimuli"):
        encode(model.isel(stimulus=slice(0, 5)), rec)
    with pytest.raises(VRNNError, match="reduce='svd'"):
        encode(model, rec, reduce="svd")
    with pytest.raises(VRNNError, match="folds=40"):
        encode(model, rec, folds=40)
    with pytest.raises(VRNNError, match="no neuroid dim"):
        encode(model, rec.rename(neuroid="unit"))


def test_encoding_does_not_import_torch():
    code = ("import sys, numpy as np, xarray as xr\n"
            "from vision_rnn.analysis import encode\n"
            "x = xr.DataArray(np.random.default_rng(0).normal(size=(30, 2, 5)), dims=('stimulus', 'time', 'unit'),"
            " coords={'stimulus': np.arange(30), 'time': [0, 1]})\n"
            "y = xr.DataArray(np.random.default_rng(1).normal(size=(30, 2, 1, 4)), "
            "dims=('stimulus', 'repetition', 'time', 'neuroid'), coords={'stimulus': np.arange(30), 'time': [5.0]})\n"
            "encode(x, y)\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\nprint('ok')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def graded(n=300, reps=4, seed=5):
    """Three bins, 30 neuroids whose reliability is known by construction.

    Bin 0 is pure trial noise for every neuroid (before any response); in bins 1 and 2, ten
    neuroids carry a strong signal (reliability of the mean about 4 / (4 + 1/4) = 0.94), ten a weak
    one (0.25 / (0.25 + 1/4) = 0.5) and ten none. The model's unit 0 is each bin's latent signal."""
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=(n, 3))
    latent[:, 0] = 0.0
    scale = np.repeat([2.0, 0.5, 0.0], 10)
    signal = latent[:, :, None] * scale                          # (stimulus, bin, neuroid)
    y = signal[:, None] + rng.normal(size=(n, reps, 3, 30))
    x = np.concatenate([latent[..., None], rng.normal(size=(n, 3, 4))], axis=2)
    model = xr.DataArray(x, dims=("stimulus", "time", "unit"), name="it",
                         coords={"stimulus": np.arange(n), "time": [0, 1, 2]})
    rec = xr.DataArray(y, dims=("stimulus", "repetition", "time", "neuroid"),
                       coords={"stimulus": np.arange(n), "time": [-5.0, 105.0, 115.0],
                               "neuroid": [f"n{i}" for i in range(30)]})
    return model, rec


def test_min_reliability_masks_exactly_the_neuroid_bins_below_it():
    model, rec = graded()
    masks = {}
    for t in (0.05, 0.3, 0.8, 1.0):
        ds = encode(model, rec, min_reliability=t)
        rel, bad = ds["reliability"].values, ds["unreliable"].values
        np.testing.assert_array_equal(bad, ~(rel >= t))          # exactly the neuroid-bins below the threshold
        assert np.isnan(ds["r_corrected"].values[:, bad]).all()
        np.testing.assert_allclose(ds["r_corrected"].values[:, ~bad], ds["r"].values[:, ~bad] / np.sqrt(rel[~bad]))
        assert ds.attrs["min_reliability"] == t and ds.attrs["n_unreliable"] == int(bad.sum())
        assert f"below {t:g}" in ds.attrs["noise_correction"]
        masks[t] = bad
    # the reliabilities the generator implies (at 300 stimuli the estimates lie 0.07 or more from the
    # thresholds): noise everywhere in bin 0, strong / weak / none in bins 1-2
    assert masks[0.3][0].all()                                   # the pre-response bin: no neuroid left
    assert not masks[0.3][1:, :20].any() and masks[0.3][1:, 20:].all()
    assert not masks[0.8][1:, :10].any() and masks[0.8][1:, 10:20].all()
    assert masks[1.0].all()
    # a higher threshold never unmasks a neuroid-bin
    for lo, hi in zip(sorted(masks), sorted(masks)[1:]):
        assert not (masks[lo] & ~masks[hi]).any(), (lo, hi)


@pytest.mark.parametrize("value", [0, -0.2, 1.5, float("nan"), "high"])
def test_min_reliability_outside_0_1_is_refused(value):
    model, rec = graded(n=40)
    with pytest.raises(VRNNError, match=r"`min_reliability=.*`: must be a number in \(0, 1\]"):
        encode(model, rec, min_reliability=value)
