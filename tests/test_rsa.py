"""RSA over time: RDMs, comparisons, noise ceilings and bootstrap against rsatoolbox / scipy."""

import subprocess
import sys

import numpy as np
import pytest
import rsatoolbox
import xarray as xr
from scipy.spatial.distance import pdist, squareform

from vision_rnn.analysis import rsa
from vision_rnn.errors import VRNNError

IDS = [f"img/{i:02d}.png" for i in range(14)]


def acts(seed=0, n=14, t=4, units=9, layers=None):
    rng = np.random.default_rng(seed)
    shape = ((len(layers),) if layers else ()) + (n, t, units)
    dims = (("layer",) if layers else ()) + ("stimulus", "time", "unit")
    coords = {"stimulus": IDS[:n], "time": np.arange(t), "time_ms": ("time", 50.0 + 10 * np.arange(t)),
              "label": ("stimulus", np.arange(n) % 3)}
    if layers:
        coords["layer"] = layers
    return xr.DataArray(rng.normal(size=shape), dims=dims, coords=coords, name="it")


def recording(seed=1, n=14, bins=6, neuroids=7, subjects=None):
    rng = np.random.default_rng(seed)
    shape = ((len(subjects),) if subjects else ()) + (n, bins, neuroids)
    dims = (("subject",) if subjects else ()) + ("stimulus", "time", "neuroid")
    coords = {"stimulus": IDS[:n], "time": 5.0 + 10 * np.arange(bins)}
    if subjects:
        coords["subject"] = subjects
    return xr.DataArray(rng.normal(size=shape), dims=dims, coords=coords, name="response")


def ref_rdms(vectors):
    return rsatoolbox.rdm.RDMs(np.atleast_2d(vectors))


def cond(square):
    return squareform(np.asarray(square), checks=False)


# -- rdm ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["correlation", "euclidean"])
def test_rdm_equals_rsatoolbox_per_step(method):
    x = acts()
    d = rsa.rdm(x, method)
    assert d.dims == ("time", "stimulus", "stimulus_") and d.dtype == np.float64
    for t in range(x.sizes["time"]):
        ds = rsatoolbox.data.Dataset(x.isel(time=t).values)
        ref = rsatoolbox.rdm.calc_rdm(ds, method=method).get_matrices()[0]
        np.testing.assert_allclose(d.isel(time=t).values, ref, atol=1e-10, rtol=0)


def test_cosine_equals_scipy_pdist():
    x = acts()
    d = rsa.rdm(x, "cosine")
    for t in range(x.sizes["time"]):
        np.testing.assert_allclose(d.isel(time=t).values, squareform(pdist(x.isel(time=t).values, "cosine")),
                                   atol=1e-12)


def test_rdm_keeps_coords_and_leading_dims():
    x = acts(layers=["v1", "it"])
    d = rsa.rdm(x)
    assert d.dims == ("layer", "time", "stimulus", "stimulus_")
    assert list(d["layer"].values) == ["v1", "it"]
    np.testing.assert_array_equal(d["time_ms"].values, x["time_ms"].values)
    np.testing.assert_array_equal(d["label"].values, x["label"].values)
    assert list(d["stimulus_"].values) == IDS
    one = rsa.rdm(x.sel(layer="it").isel(time=2))
    np.testing.assert_allclose(d.sel(layer="it").isel(time=2).values, one.values, atol=1e-13)


def test_rdm_of_known_structure():
    # two perfectly correlated patterns and one anti-correlated: distances 0 and 2
    p = np.array([1.0, 2.0, 3.0, 4.0])
    x = xr.DataArray(np.stack([p, 2 * p + 1, -p]), dims=("stimulus", "unit"), coords={"stimulus": ["a", "b", "c"]})
    d = rsa.rdm(x, over=None)
    np.testing.assert_allclose(d.values, [[0, 0, 2], [0, 0, 2], [2, 2, 0]], atol=1e-12)
    e = rsa.rdm(x, "euclidean", over=None)
    assert e.sel(stimulus="a", stimulus_="c").item() == pytest.approx(np.sum((2 * p) ** 2) / 4)


def test_rdm_on_dask_input_equals_numpy():
    x = acts(t=6)
    lazy = x.chunk({"time": 2})
    np.testing.assert_allclose(rsa.rdm(lazy).values, rsa.rdm(x).values, atol=1e-14)


def test_crossnobis_through_rsatoolbox_with_noise_from_residuals():
    from rsatoolbox.data.noise import prec_from_measurements

    rng = np.random.default_rng(3)
    n, reps, units = 6, 4, 5
    x = xr.DataArray(rng.normal(size=(n, reps, 2, units)), dims=("stimulus", "repetition", "time", "unit"),
                     coords={"stimulus": list("abcdef")})
    d = rsa.rdm(x, "crossnobis")
    assert d.dims == ("time", "stimulus", "stimulus_")
    for t in range(2):
        m = x.isel(time=t).values.reshape(n * reps, units)
        ds = rsatoolbox.data.Dataset(m, obs_descriptors={"stim": np.repeat(list("abcdef"), reps),
                                                          "run": np.tile(np.arange(reps), n)})
        noise = prec_from_measurements(ds, obs_desc="stim", method="shrinkage_diag")
        ref = rsatoolbox.rdm.calc_rdm(ds, method="crossnobis", descriptor="stim", noise=noise,
                                      cv_descriptor="run").get_matrices()[0]
        np.testing.assert_allclose(d.isel(time=t).values, ref, atol=1e-10)
    with pytest.raises(VRNNError, match="repetition"):
        rsa.rdm(x.isel(repetition=0), "crossnobis")


def test_rdm_errors_are_one_line():
    with pytest.raises(VRNNError, match="not one of"):
        rsa.rdm(acts(), "manhattan")
    with pytest.raises(VRNNError, match="stimulus"):
        rsa.rdm(xr.DataArray(np.zeros((3, 4)), dims=("x", "unit")))


# -- compare -----------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["spearman", "corr", "cosine", "tau-a", "rho-a"])
def test_compare_equals_rsatoolbox(method):
    a = rsa.rdm(acts())
    b = rsa.rdm(recording(), "euclidean")
    b[{"time": 0}] = b.isel(time=0).round(1)          # ties, which spearman/tau-a must handle as rsatoolbox
    c = rsa.compare(a, b, method)
    assert c.dims == ("time_a", "time_b")
    va = np.stack([cond(m) for m in a.values])
    vb = np.stack([cond(m) for m in b.values])
    ref = rsatoolbox.rdm.compare(ref_rdms(va), ref_rdms(vb), method=method)
    np.testing.assert_allclose(c.values, ref, atol=1e-10)


def test_compare_carries_leading_dims_and_pairs_shared_ones():
    a = rsa.rdm(acts(layers=["v1", "it"]))
    b = rsa.rdm(recording(subjects=["s1", "s2", "s3"]))
    c = rsa.compare(a, b)
    assert c.dims == ("layer", "time_a", "subject", "time_b")
    np.testing.assert_array_equal(c["time_b"].values, b["time"].values)      # ms on one side,
    np.testing.assert_array_equal(c["time_a"].values, a["time"].values)      # steps on the other
    assert "time_ms" in c.coords and c["time_ms"].dims == ("time_a",)
    one = rsa.compare(a.sel(layer="it").isel(time=1), b.sel(subject="s2").isel(time=3))
    assert c.sel(layer="it", subject="s2").isel(time_a=1, time_b=3).item() == pytest.approx(one.item(), abs=1e-12)
    # a dim both sides have is paired, not crossed
    s = rsa.compare(b, b)
    assert s.dims == ("subject", "time_a", "time_b")
    np.testing.assert_allclose(np.diagonal(s.values, axis1=1, axis2=2), 1.0)


def test_compare_matches_stimuli_by_stem_and_reports():
    a = rsa.rdm(acts())
    rec = recording()
    shuffled = rec.isel(stimulus=np.random.default_rng(0).permutation(14))
    shuffled = shuffled.assign_coords(stimulus=[s.split("/")[1].split(".")[0] for s in shuffled["stimulus"].values])
    c1 = rsa.compare(a, rsa.rdm(rec))
    c2 = rsa.compare(a, rsa.rdm(shuffled.isel(stimulus=slice(0, 10))))
    assert "10 stimuli matched (10 by stem)" in c2.attrs["stimulus_match"]
    assert "14 stimuli matched (14 by id)" in c1.attrs["stimulus_match"]
    sub = [s for s in IDS if s.split("/")[1].split(".")[0] in set(shuffled["stimulus"].values[:10])]
    c3 = rsa.compare(a.sel(stimulus=sub, stimulus_=sub), rsa.rdm(rec.sel(stimulus=sub)))
    np.testing.assert_allclose(c2.values, c3.values, atol=1e-12)


def test_compare_finds_the_planted_step():
    # the recording at bin k carries the model's step (k + 2) // 2: the best step for each bin is known
    model = acts(t=5, units=30)
    steps = [0, 0, 1, 2, 3, 4]
    rec = model.isel(time=steps).drop_vars(["time", "time_ms"]).rename(unit="neuroid")
    rec = rec.assign_coords(time=5.0 + 10 * np.arange(6)) + 0.01 * np.random.default_rng(1).normal(size=rec.shape)
    c = rsa.compare(rsa.rdm(model), rsa.rdm(rec))
    assert list(c.argmax("time_a").values) == steps


def test_noise_ceiling_equals_rsatoolbox():
    subj = rsa.rdm(recording(subjects=["s1", "s2", "s3", "s4"], bins=3))
    for method in ["spearman", "corr", "cosine", "rho-a", "tau-a"]:
        nc = rsa.noise_ceiling(subj, method)
        assert nc["lower"].dims == ("time",)
        for t in range(3):
            vec = np.stack([cond(m) for m in subj.isel(time=t).values])
            ref = rsatoolbox.rdm.RDMs(vec, rdm_descriptors={"subject": ["s1", "s2", "s3", "s4"]})
            lo, hi = rsatoolbox.inference.boot_noise_ceiling(ref, method=method, rdm_descriptor="subject")
            assert nc["lower"].isel(time=t).item() == pytest.approx(lo, abs=1e-10)
            assert nc["upper"].isel(time=t).item() == pytest.approx(hi, abs=1e-10)
    # identical subjects: both bounds are 1
    same = xr.concat([subj.isel(subject=0)] * 3, dim="subject")
    np.testing.assert_allclose(rsa.noise_ceiling(same, "corr")["lower"].values, 1.0)


def test_bootstrap_samples_equal_compare_on_resampled_rdms():
    a = rsa.rdm(acts(layers=["v1", "it"]))
    b = rsa.rdm(recording())
    for method in ["spearman", "corr", "cosine", "rho-a", "tau-a"]:
        bs = rsa.bootstrap(a, b, method, n=6 if method != "tau-a" else 2, seed=4)
        assert bs["samples"].dims == ("bootstrap", "layer", "time_a", "time_b")
        for s in range(bs.sizes["bootstrap"]):
            idx = bs["draws"].values[s]
            keep = idx[:, None] != idx[None, :]
            iu = np.triu_indices(len(idx), 1)
            pairs = keep[iu]

            def vec(square):
                return square[..., idx[:, None], idx[None, :]][..., iu[0], iu[1]][..., pairs]

            va = vec(a.sel(layer="it").values)
            vb = vec(b.values)
            ref = rsatoolbox.rdm.compare(ref_rdms(va), ref_rdms(vb), method=method)
            np.testing.assert_allclose(bs["samples"].isel(bootstrap=s).sel(layer="it").values, ref, atol=1e-9)
    again = rsa.bootstrap(a, b, n=6, seed=4)
    np.testing.assert_array_equal(again["samples"].values, rsa.bootstrap(a, b, n=6, seed=4)["samples"].values)


def test_bootstrap_interval_covers_truth_of_a_noisy_copy():
    rng = np.random.default_rng(5)
    x = xr.DataArray(rng.normal(size=(40, 2, 20)), dims=("stimulus", "time", "unit"),
                     coords={"stimulus": [f"s{i}" for i in range(40)]})
    y = (x + 1.0 * rng.normal(size=x.shape)).rename(unit="neuroid")
    bs = rsa.bootstrap(rsa.rdm(x), rsa.rdm(y), "corr", n=200, seed=0)
    est, lo, hi = bs["estimate"], bs["low"], bs["high"]
    assert ((lo <= est) & (est <= hi)).all()
    assert (hi - lo).min() > 0.01
    # matching steps are clearly more similar than non-matching ones
    assert (lo.values.diagonal() > hi.values[0, 1]).all()


# -- rsatoolbox objects ------------------------------------------------------------------------
def test_round_trip_rsatoolbox_objects():
    x = acts()
    td = rsa.to_rsatoolbox(x)
    assert isinstance(td, rsatoolbox.data.TemporalDataset) and td.measurements.shape == (14, 9, 4)
    back = rsa.from_rsatoolbox(td)
    xr.testing.assert_allclose(back.drop_vars(back.coords), x.transpose("stimulus", "time", "unit").drop_vars(x.coords))
    assert list(back["stimulus"].values) == IDS and list(back["label"].values) == list(x["label"].values)
    ds = rsa.to_rsatoolbox(x.isel(time=0))
    assert type(ds) is rsatoolbox.data.Dataset
    rsa_rdm = rsatoolbox.rdm.calc_rdm(ds, method="correlation", descriptor="stimulus")
    mine = rsa.rdm(x.isel(time=0))
    # rsatoolbox sorts conditions by the descriptor: compare by id
    conv = rsa.from_rsatoolbox(rsa_rdm).sel(stimulus=IDS, stimulus_=IDS)
    np.testing.assert_allclose(conv.values, mine.values, atol=1e-10)
    # repetitions become observations
    reps = xr.concat([x, x + 1], dim="repetition").transpose("stimulus", "repetition", "time", "unit")
    rt = rsa.to_rsatoolbox(reps)
    assert rt.measurements.shape == (28, 9, 4) and set(rt.obs_descriptors["repetition"]) == {0, 1}
    np.testing.assert_allclose(rsa.from_rsatoolbox(rt).values, reps.values)
    # RDMs with leading dims
    d = rsa.rdm(acts(layers=["v1", "it"]))
    r = rsa.to_rsatoolbox(d)
    assert r.n_rdm == 8 and list(r.pattern_descriptors["stimulus"]) == IDS
    back = rsa.from_rsatoolbox(r)
    assert back.dims == d.dims
    np.testing.assert_allclose(back.sel(layer=["v1", "it"]).values, d.values)
    np.testing.assert_array_equal(back["time_ms"].values, d["time_ms"].values)


def test_rsa_recordings_compare_do_not_import_torch():
    code = ("import sys; import vision_rnn.analysis.rsa, vision_rnn.analysis.timeaxis, vision_rnn.recordings, vision_rnn.compare; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", out.stderr
