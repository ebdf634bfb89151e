"""Recordings: BrainIO assemblies, our netCDF layout, the 92-image data, MEG RDMs, simulation."""

import json
import os
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from scipy.spatial.distance import squareform

import vision_rnn as vrnn
from vision_rnn import recordings
from vision_rnn.stimulus_ids import match_stimuli
from vision_rnn.errors import DataError

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ["VRNN_DATA"]) if os.environ.get("VRNN_DATA") else ROOT.parent / "shared" / "data"
BRAINIO = DATA / "brainio_examples"
K92 = DATA / "kriegeskorte2008"
needs_brainio = pytest.mark.skipif(not BRAINIO.is_dir(), reason=f"BrainIO examples not found at {BRAINIO} "
                                   "(set VRNN_DATA to the shared data folder)")
needs_k92 = pytest.mark.skipif(not K92.is_dir(), reason=f"92-image data not found at {K92} "
                               "(set VRNN_DATA to the shared data folder)")


# -- BrainIO and our layout ----------------------------------------------------------------------
@needs_brainio
def test_brainio_presentations_become_repetitions_in_order_of_appearance():
    rec = recordings.load_recording(BRAINIO / "assy_test_TestMe.nc")
    assert rec.name == "response"
    assert rec.dims == ("stimulus", "repetition", "time", "neuroid")
    assert list(rec["stimulus"].values) == ["n0", "n1", "n4", "n9"]
    assert list(rec["neuroid"].values) == ["alpha", "beta", "gamma"]
    assert list(rec["foo"].values) == [1, 2, 5]
    assert rec.sizes["time"] == 1                       # static assembly: one bin
    x = rec.isel(time=0)
    # the file has (n0, repetition 1) twice: numbered 0 and 1 by order of appearance
    np.testing.assert_array_equal(x.sel(stimulus="n0").values, [[1, 2, 3], [10, 11, 12]])
    np.testing.assert_array_equal(x.sel(stimulus="n1").values, [[4, 5, 6], [7, 8, 9]])
    np.testing.assert_array_equal(x.sel(stimulus="n4", repetition=0).values, [13, 14, 15])
    assert np.isnan(x.sel(stimulus="n9", repetition=1).values).all()
    assert rec["brainio_repetition"].sel(stimulus="n1").values.tolist() == [1, 2]
    avg = recordings.load_recording(BRAINIO / "assy_test_TestMe.nc", average=True)
    assert avg.dims == ("stimulus", "time", "neuroid")
    np.testing.assert_array_equal(avg.isel(time=0).values, [[5.5, 6.5, 7.5], [5.5, 6.5, 7.5],
                                                             [13, 14, 15], [16, 17, 18]])


@needs_brainio
def test_brainio_time_bins_and_image_id():
    rec = recordings.load_recording(BRAINIO / "assy_test_package_assembly.nc")
    assert rec.dims == ("stimulus", "time", "neuroid")       # every stimulus once: no repetition dim
    assert list(rec["stimulus"].values) == ["n0", "n1", "n2", "n3", "n4", "n5"]
    assert rec["time"].values.tolist() == [5.0]
    assert rec["time_bin_start"].values.tolist() == [0] and rec["time_bin_end"].values.tolist() == [10]
    np.testing.assert_array_equal(rec.isel(time=0).values, np.arange(1, 19).reshape(6, 3))
    assert list(rec["image_type"].values) == ["foo"] * 6
    assert list(rec["neuroid_type"].values) == ["bar"] * 3
    assert rec.attrs["stimulus_id_from"] == "image_id"


@needs_brainio
def test_save_and_load_round_trip(tmp_path):
    for name in ["assy_test_TestMe.nc", "assy_test_package_assembly.nc"]:
        rec = recordings.load_recording(BRAINIO / name)
        out = recordings.save_recording(rec, tmp_path / f"ours_{name}")
        assert not (tmp_path / f"ours_{name}.partial").exists()
        back = recordings.load_recording(out)
        xr.testing.assert_identical(back.drop_attrs(), rec.drop_attrs())
        assert back.attrs["Conventions"] == recordings.netcdf.CONVENTIONS


def test_foreign_and_missing_files_raise_data_errors(tmp_path):
    foreign = tmp_path / "weights.nc"
    xr.Dataset({"w": (("a", "b"), np.zeros((2, 3)))}).to_netcdf(foreign)
    with pytest.raises(DataError, match="weights.nc: not a recording"):
        recordings.load_recording(foreign)
    junk = tmp_path / "junk.nc"
    junk.write_text("hello")
    with pytest.raises(DataError, match="junk.nc: not a readable netCDF"):
        recordings.load_recording(junk)
    with pytest.raises(DataError, match="does not exist"):
        recordings.load_recording(tmp_path / "nope.nc")
    with pytest.raises(DataError, match="stimulus, time, neuroid"):
        recordings.save_recording(xr.DataArray(np.zeros(3), dims="x"), tmp_path / "x.nc")


def test_match_stimuli_by_id_stem_and_csv(tmp_path):
    m = match_stimuli(["a/x.png", "b/y.png", "z"], ["y", "x.jpg", "q"])
    assert list(m.a) == [0, 1] and list(m.b) == [1, 0]
    assert str(m) == "2 stimuli matched (2 by stem) of 3 and 3"
    csv = tmp_path / "map.csv"
    csv.write_text("model,recording\nz,q\n")
    m = match_stimuli(["a/x.png", "b/y.png", "z"], ["y", "x.jpg", "q"], id_map=csv)
    assert list(m.b) == [1, 0, 2] and m.by == {"id": 0, "stem": 2, "id_map": 1}
    exact = match_stimuli(["a", "b"], ["b", "a"])
    assert list(exact.b) == [1, 0] and exact.by["id"] == 2
    # an ambiguous stem (two files named x) is not matched
    assert match_stimuli(["d1/x.png", "d2/x.png"], ["x"]).n_matched == 0
    with pytest.raises(DataError, match="does not exist"):
        match_stimuli(["a"], ["b"], id_map=tmp_path / "none.csv")


# -- the 92 images -----------------------------------------------------------------------------------
@needs_k92
def test_kriegeskorte92_stimuli_and_rdms():
    ds = recordings.kriegeskorte92(K92)
    stim = ds.stimuli
    assert len(stim) == 92 and stim.ids[0] == "img_01" and stim.ids[-1] == "img_92"
    img = stim.load([0])[0]
    assert img.shape == (175, 175, 3) and img.dtype == np.uint8
    meta = stim.metadata
    assert list(meta.columns) == ["category", "human", "face", "animal", "natural"]
    assert meta.loc["img_01", "category"] == "human bodypart" and stim.label_names[0] == "human bodypart"
    assert meta["face"].sum() == 24 and meta["animal"].sum() == 48    # 24 faces, 48 animate images
    r = ds.rdms
    assert r["human_it_sessions"].dims == ("subject", "session", "stimulus", "stimulus_")
    assert list(r["subject"].values) == ["BE", "KO", "SN", "TI"]
    for name in ["monkey_it", "human_it"]:
        m = r[name].values
        np.testing.assert_array_equal(m, m.T)
        assert (np.diag(m) == 0).all()
    # the Figure 1 human RDM is the mean of the 8 full session matrices, condensed in scipy's
    # squareform order (= MATLAB's column order below the diagonal), not row order below it
    full = r["human_it_sessions"].mean(("subject", "session")).values
    np.testing.assert_allclose(r["human_it"].values, full, atol=1e-12)
    import scipy.io
    fig1 = scipy.io.loadmat(K92 / "Kriegeskorte_Neuron2008_supplementalData.mat")["RDMs_mIT_hIT_fig1"][0]
    raw = np.asarray(fig1[1]["RDM"], dtype=np.float64).ravel()
    assert str(fig1[1]["name"][0]) == "hITvisStim_316vx"
    np.testing.assert_allclose(raw, squareform(full, checks=False), atol=1e-12)
    assert not np.allclose(raw, full[np.tril_indices(92, -1)])
    # monkey and human IT agree (Kriegeskorte et al. 2008: clearly above zero)
    from vision_rnn.analysis import rsa
    assert rsa.compare(r["monkey_it"], r["human_it"], "spearman").item() > 0.3


@needs_k92
def test_kriegeskorte92_default_folder():
    # $VRNN_DATA/kriegeskorte2008, else ../shared/data/kriegeskorte2008 next to the project
    assert recordings.kriegeskorte92().path.resolve() == K92.resolve()


@needs_k92
def test_kriegeskorte92_through_load_stimuli_and_extraction():
    stim = vrnn.load_stimuli(f"kriegeskorte92:{K92}")
    assert len(stim) == 92 and stim.source.startswith("kriegeskorte92:")
    sub = stim.subset([0, 30, 60, 91])
    tree = vrnn.extract(vrnn.load_model("lateral", weights="random", seed=0), sub, layers=["it"], pool="mean")
    it = vrnn.layer(tree, "it")
    assert list(it["category"].values) == list(sub.metadata["category"])
    assert list(it["face"].values) == list(sub.metadata["face"])


def test_kriegeskorte92_missing_folder_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="missing Kriegeskorte_Neuron2008_supplementalData.mat"):
        recordings.kriegeskorte92(tmp_path)


# -- MEG RDMs (Cichy et al. 2014), in a generated file of the published layout ----------------------
def write_v73(path, name, matlab_array):
    """A MATLAB v7.3 MAT-file: HDF5 with a 512-byte user block holding MATLAB's header."""
    import h5py

    with h5py.File(path, "w", userblock_size=512) as f:
        d = f.create_dataset(name, data=np.ascontiguousarray(matlab_array.transpose()))   # h5 sees reversed axes
        d.attrs["MATLAB_class"] = np.bytes_("double")
    header = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  6 10:00:00 2014 HDF5 schema 1.00 ."
    header = header.ljust(116, b" ") + b"\x00" * 8 + b"\x00\x02" + b"IM"
    with open(path, "r+b") as fh:
        fh.write(header.ljust(512, b"\x00"))


def meg_truth(subjects=3, times=24, n=92, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(40, 90, size=(subjects, 2, times, n, n))     # MATLAB order: subject, session, time, i, j
    i = np.arange(n)
    x[..., i, i] = np.nan
    return x


def test_cichy2014_meg_reads_the_published_layout_lazily(tmp_path):
    import scipy.io

    truth = meg_truth()
    path = tmp_path / "MEG_decoding_RDMs.mat"
    write_v73(path, "MEG_decoding_RDMs", truth)
    assert scipy.io.matlab.matfile_version(str(path))[0] == 2       # scipy sees a v7.3 MAT-file
    da = recordings.cichy2014_meg(tmp_path)                              # the folder works as well as the file
    assert da.dims == ("subject", "session", "time", "stimulus", "stimulus_")
    assert da.chunks is not None                                     # dask: nothing read yet
    assert da.sizes == {"subject": 3, "session": 2, "time": 24, "stimulus": 92, "stimulus_": 92}
    assert da["time"].values[0] == -100 and da["time"].values[-1] == -77
    np.testing.assert_array_equal(da.values, truth)                 # i and j not swapped
    assert float(da.sel(stimulus="img_05", stimulus_="img_07").isel(subject=2, session=1, time=3)) == \
        truth[2, 1, 3, 4, 6]
    binned = recordings.cichy2014_meg(path, bin_ms=10)
    assert binned.sizes["time"] == 2                                 # 24 samples: 2 whole bins
    np.testing.assert_allclose(binned.values[:, :, 1], truth[:, :, 10:20].mean(axis=2))
    assert binned["time"].values.tolist() == [-95.5, -85.5]
    assert binned["time_bin_start"].values.tolist() == [-100.5, -90.5]
    assert binned["time_bin_end"].values.tolist() == [-90.5, -80.5]
    # the diagonal stays undefined and RSA skips it
    from vision_rnn.analysis import rsa
    c = rsa.compare(binned.isel(subject=0, session=0), binned.isel(subject=1, session=0), "spearman")
    assert c.dims == ("time_a", "time_b") and np.isfinite(c.values).all()


def test_cichy2014_meg_other_name_and_errors(tmp_path):
    truth = meg_truth(subjects=1, times=5, n=4)
    p = tmp_path / "renamed.mat"
    write_v73(p, "RDMs", truth)
    np.testing.assert_array_equal(recordings.cichy2014_meg(p).values, truth)
    bad = tmp_path / "bad.mat"
    write_v73(bad, "x", np.zeros((3, 4)))
    with pytest.raises(DataError, match="bad.mat: no variable 'MEG_decoding_RDMs'"):
        recordings.cichy2014_meg(bad)
    with pytest.raises(DataError, match="does not exist"):
        recordings.cichy2014_meg(tmp_path / "none.mat")
    txt = tmp_path / "text.mat"
    txt.write_text("not hdf5")
    with pytest.raises(DataError, match="text.mat: not a MATLAB v7.3"):
        recordings.cichy2014_meg(txt)


# -- simulation ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def small_tree():
    stim = vrnn.load_stimuli("builtin:fashion-mnist").subset(range(0, 500, 42))
    return vrnn.extract(vrnn.load_model("lateral", weights="random", seed=0), stim, layers=["v1", "it"],
                        pool="mean")


def test_simulated_recording_follows_the_planted_steps(small_tree):
    rec = recordings.simulate_recording(small_tree, onset_ms={"v1": 40, "it": 80}, step_ms=20, noise=0.0,
                                    smooth_ms=0, repetitions=2, n_neuroids=8, t_start_ms=0, t_stop_ms=300)
    assert rec.dims == ("stimulus", "repetition", "time", "neuroid")
    assert rec.sizes["neuroid"] == 16 and sorted(set(rec["region"].values)) == ["IT", "V1"]
    assert json.loads(rec.attrs["planted_onset_ms"]) == {"v1": 40.0, "it": 80.0}
    assert rec.attrs["planted_step_ms"] == 20.0
    mapping = vrnn.analysis.timeaxis.TimeMapping.from_json(rec.attrs["time_mapping"])
    assert mapping.onset_ms == {"v1": 40.0, "it": 80.0} and mapping.step_ms == 20.0
    v1 = rec.isel(repetition=0).sel(neuroid=rec["region"] == "V1")
    at = {float(t): v1.sel(time=t).values for t in v1["time"].values}
    assert not np.any(at[35.0]) and np.any(at[45.0])                  # nothing before the onset
    np.testing.assert_array_equal(at[45.0], at[55.0])                 # one step spans two 10 ms bins
    assert not np.allclose(at[55.0], at[65.0])                        # the next step starts at 60 ms
    np.testing.assert_array_equal(at[205.0], at[295.0])               # the last step (7) holds
    # the planted V1 response is a linear map of the model's v1 units: same rank as the units
    assert np.linalg.matrix_rank(np.concatenate([at[45.0], vrnn.layer(small_tree, "v1").isel(time=0).values],
                                                axis=1), tol=1e-8) <= 16


def test_simulation_is_seeded_and_noisy(small_tree):
    a = recordings.simulate_recording(small_tree, noise=0.5, seed=3)
    b = recordings.simulate_recording(small_tree, noise=0.5, seed=3)
    c = recordings.simulate_recording(small_tree, noise=0.5, seed=4)
    xr.testing.assert_identical(a, b)
    assert not np.allclose(a.values, c.values)
    trial_sd = a.std("repetition").mean().item()
    assert 0.3 < trial_sd < 0.6                                       # noise is in units of the signal's sd
    with pytest.raises(DataError, match="no onset"):
        recordings.simulate_recording(small_tree, regions={"v1": "V1"}, onset_ms={"v1": np.nan})
