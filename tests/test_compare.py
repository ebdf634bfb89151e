"""`vrnn compare`: the 92-image set and BrainIO assemblies end to end, values against rsatoolbox, refusals."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rsatoolbox
import xarray as xr
from PIL import Image

import vision_rnn as vrnn
from vision_rnn import recordings
from vision_rnn.recordings.brainio import save_brainio, to_brainio
from clirun import run, error_line

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ["VRNN_DATA"]) if os.environ.get("VRNN_DATA") else ROOT.parent / "shared" / "data"
K92 = DATA / "kriegeskorte2008"
BRAINIO = DATA / "brainio_examples"
pytestmark = pytest.mark.skipif(not K92.is_dir(), reason=f"92-image data not found at {K92} "
                                "(set VRNN_DATA to the shared data folder)")


def extract_cli(stimuli, out, *extra):
    """`vrnn extract` in a separate process, as a lab would run it."""
    cmd = [sys.executable, "-m", "vision_rnn", "extract", "--model", "lateral", "--weights", "random",
           "--stimuli", str(stimuli), "--pool", "mean", "-o", str(out), *extra]
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    return out


@pytest.fixture(scope="module")
def k92(tmp_path_factory):
    """The 92 images through the random-weight lateral network (pooled), and a simulated recording.

    The activations are loaded into memory and the file closed.
    """
    folder = tmp_path_factory.mktemp("k92")
    acts = extract_cli(f"kriegeskorte92:{K92}", folder / "k92.nc")
    with vrnn.open_activations(acts) as tree:
        tree.load()                                              # in memory, file closed
    rec = recordings.simulate_recording(tree, regions={"v1": "V1", "it": "IT"}, n_neuroids=20, repetitions=4,
                                    t_start_ms=40.0, t_stop_ms=200.0, seed=3)
    return {"acts": acts, "tree": tree, "rec": rec, "folder": folder}


def model_rdm(tree, layer, step):
    # float64, as vrnn computes RDMs (rsatoolbox keeps float32 input in float32: ~1e-7 apart)
    x = vrnn.layer(tree, layer).isel(time=step).values.astype(np.float64)
    return rsatoolbox.rdm.calc_rdm(rsatoolbox.data.Dataset(x), method="correlation")


def spearman(a, b):
    return float(rsatoolbox.rdm.compare(a, b, method="spearman")[0, 0])


def test_k92_end_to_end_equals_rsatoolbox(k92, tmp_path):
    out = tmp_path / "report"
    r = run("compare", k92["acts"], f"kriegeskorte92:{K92}", "-o", out, "--bootstrap", "100")
    assert r.exit_code == 0, r.output
    assert "92 stimuli matched (92 by id)" in r.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]          # no partial folder left
    files = sorted(p.name for p in out.iterdir())
    assert files == ["comparison.csv", "comparison.nc", "cross_temporal_human_it.png",
                     "cross_temporal_monkey_it.png", "steps_human_it.png", "steps_monkey_it.png", "summary.json"]
    df = pd.read_csv(out / "comparison.csv")
    assert len(df) == 2 * 5 * 8 and df["time_ms"].isna().all()                # static: one row per layer, step
    k = recordings.kriegeskorte92(K92)
    tree = k92["tree"]
    last = int(tree["time"].values[-1])
    row = df.query("target == 'monkey_it' and layer == 'gap' and step == @last").iloc[0]
    monkey = rsatoolbox.rdm.RDMs(k.rdms["monkey_it"].values[None])
    assert row["value"] == pytest.approx(spearman(model_rdm(tree, "gap", last), monkey), abs=1e-10)
    assert row["ci_low"] < row["value"] < row["ci_high"]
    # human IT: mean over the 4 subjects (sessions averaged) of the per-subject similarity, with the ceiling
    subj = k.rdms["human_it_sessions"].mean("session").values
    hrow = df.query("target == 'human_it' and layer == 'it' and step == 2").iloc[0]
    expect = np.mean([spearman(model_rdm(tree, "it", 2), rsatoolbox.rdm.RDMs(s[None])) for s in subj])
    assert hrow["value"] == pytest.approx(expect, abs=1e-10)
    ceiling = vrnn.analysis.noise_ceiling(k.rdms["human_it_sessions"].mean("session"))
    assert hrow["noise_ceiling_lower"] == pytest.approx(float(ceiling["lower"]))
    assert hrow["noise_ceiling_upper"] == pytest.approx(float(ceiling["upper"]))
    assert df.query("target == 'monkey_it'")["noise_ceiling_lower"].isna().all()
    with xr.open_datatree(out / "comparison.nc") as nc:             # DataTrees are closed, never left to
        assert nc["monkey_it"]["value"].dims == ("layer", "step", "time")   # the garbage collector (see k92)
        np.testing.assert_allclose(nc["monkey_it"]["value"].sel(layer="gap").values[:, 0],
                                   df.query("target == 'monkey_it' and layer == 'gap'")["value"].values)
        assert nc.attrs["n_matched"] == 92 and nc.attrs["recording"] == f"kriegeskorte92:{K92}"
        assert json.loads(nc.attrs["matched_by"]) == {"id": 92, "stem": 0, "id_map": 0}
        assert nc["human_it"].attrs["subjects"] == 4 and "ceiling_lower" in nc["human_it"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["settings"]["n_matched"] == 92 and summary["targets"]["human_it"]["subjects"] == 4


def test_brainio_assembly_end_to_end(k92, tmp_path):
    path = save_brainio(k92["rec"], tmp_path / "assembly.nc")            # as Brain-Score would ship it
    with xr.open_dataset(path) as raw:
        assert raw["__xarray_dataarray_variable__"].dims == ("presentation", "neuroid", "time_bin")
        assert raw.sizes["presentation"] == 92 * 4 and "stimulus_id" in raw.coords
    out = tmp_path / "report"
    r = run("compare", k92["acts"], path, "-o", out, "--bootstrap", "50", "--layers", "v1,it", "--encoding")
    assert r.exit_code == 0, r.output
    df = pd.read_csv(out / "comparison.csv")
    n_bins = k92["rec"].sizes["time"]
    assert set(df["target"]) == {"V1", "IT"} and len(df) == 2 * 2 * 8 * n_bins
    # one cell against rsatoolbox: IT at 125 ms vs layer it at step 3
    loaded = recordings.load_recording(path, average=True)
    it = loaded.isel(neuroid=loaded["region"].values == "IT").sel(time=125.0)
    rec_rdm = rsatoolbox.rdm.calc_rdm(rsatoolbox.data.Dataset(it.values), method="correlation")
    row = df.query("target == 'IT' and layer == 'it' and step == 3 and time_ms == 125").iloc[0]
    assert row["value"] == pytest.approx(spearman(model_rdm(k92["tree"], "it", 3), rec_rdm), abs=1e-10)
    # the default mapping puts step k of `it` at 90 + 10 k ms: the 125 ms bin holds step 3
    assert row["mapped"] == 1
    assert df.query("target == 'IT' and layer == 'it' and time_ms == 125 and mapped == 1")["step"].tolist() == [3]
    assert {"ms_IT.png", "ms_V1.png", "mapping.json", "encoding.csv", "comparison.nc"} <= {p.name for p in out.iterdir()}
    enc = pd.read_csv(out / "encoding.csv")
    assert set(enc.columns) >= {"median_r", "median_r_corrected", "n_unreliable"}
    # the simulated IT neuroids are a linear map of layer it: well predicted late in the trial
    late = enc.query("target == 'IT' and layer == 'it' and time_ms >= 175")["median_r_corrected"]
    assert late.max() > 0.6


def test_min_reliability_reaches_encoding_csv(k92, tmp_path):
    rec_path = recordings.save_recording(k92["rec"], tmp_path / "rec.nc")
    out = tmp_path / "report"
    r = run("compare", k92["acts"], rec_path, "-o", out, "--bootstrap", "0", "--layers", "it", "--encoding",
            "--min-reliability", "0.6")
    assert r.exit_code == 0, r.output
    enc = pd.read_csv(out / "encoding.csv")
    assert (enc["min_reliability"] == 0.6).all() and (enc["min_reliable_share"] == 0.25).all()
    assert (enc["n_reliable"] + enc["n_unreliable"] == enc["n_neuroids"]).all()
    with xr.open_datatree(out / "comparison.nc") as nc:
        it = nc["IT/encoding"].to_dataset().load()
    assert it.attrs["min_reliability"] == 0.6
    # n_reliable per bin counts the neuroids whose split-half reliability reaches 0.6, and only they
    # enter the median of the noise-corrected score
    reliable = it["reliability"].values >= 0.6
    rows = enc.query("target == 'IT' and step == 3").sort_values("time_ms")
    np.testing.assert_array_equal(rows["n_reliable"], reliable.sum(axis=1))
    assert 0 < reliable.sum() < reliable.size                    # the threshold splits this recording
    corrected = it["r_corrected"].sel(layer="it", step=3).values
    for (_, row), ok, c in zip(rows.iterrows(), reliable, corrected):
        if ok.sum() >= max(1, 0.25 * ok.size):                  # the median needs a quarter of the neuroids
            assert row["median_r_corrected"] == pytest.approx(np.median(c[ok]))
        else:
            assert np.isnan(row["median_r_corrected"])
    assert json.loads((out / "summary.json").read_text())["settings"]["min_reliability"] == 0.6


def test_mapping_file_selects_the_mapped_cells(k92, tmp_path):
    from vision_rnn.analysis import TimeMapping

    rec_path = recordings.save_recording(k92["rec"], tmp_path / "rec.nc")
    mapping = TimeMapping(onset_ms={"it": 100.0}, step_ms=20.0).save(tmp_path / "mapping.json")
    r = run("compare", k92["acts"], rec_path, "-o", tmp_path / "report", "--bootstrap", "0", "--layers", "it,v1",
            "--mapping", mapping)
    assert r.exit_code == 0, r.output
    df = pd.read_csv(tmp_path / "report" / "comparison.csv").query("target == 'IT'")
    on = df.query("mapped == 1")
    assert set(on["layer"]) == {"it"}                            # v1 has no onset in this mapping
    expect = {t: int((t - 100) // 20) for t in df["time_ms"].unique() if 100 <= t < 100 + 20 * 8}
    assert dict(zip(on["time_ms"], on["step"])) == expect
    saved = json.loads((tmp_path / "report" / "mapping.json").read_text())
    assert saved["onset_ms"] == {"it": 100.0} and saved["step_ms"] == 20.0


def test_real_brainio_example_matches_by_stem(tmp_path):
    if not BRAINIO.is_dir():
        pytest.skip(f"BrainIO examples not found at {BRAINIO}")
    stim = tmp_path / "stim"
    stim.mkdir()
    rng = np.random.default_rng(0)
    for i in range(6):
        Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(stim / f"n{i}.png")
    acts = extract_cli(stim, tmp_path / "acts.nc", "--layers", "it")
    out = tmp_path / "report"
    r = run("compare", acts, BRAINIO / "assy_test_package_assembly.nc", "-o", out, "--rdm", "euclidean",
            "--bootstrap", "20")
    assert r.exit_code == 0, r.output
    assert "6 stimuli matched (6 by stem)" in r.output
    df = pd.read_csv(out / "comparison.csv")
    assert (df["time_ms"] == 5.0).all() and len(df) == 8                     # one 0-10 ms bin: static
    rec = recordings.load_recording(BRAINIO / "assy_test_package_assembly.nc").isel(time=0)
    x = vrnn.layer(vrnn.open_activations(acts), "it").isel(time=7).values.astype(np.float64)
    ref = rsatoolbox.rdm.compare(rsatoolbox.rdm.calc_rdm(rsatoolbox.data.Dataset(x), method="euclidean"),
                                 rsatoolbox.rdm.calc_rdm(rsatoolbox.data.Dataset(rec.values.astype(float)),
                                                         method="euclidean"), method="spearman")[0, 0]
    assert df.query("step == 7")["value"].iloc[0] == pytest.approx(ref, abs=1e-10)


def renamed(rec, ids):
    return rec.assign_coords(stimulus=ids)


def test_no_shared_stimuli_exit_2_with_counts(k92, tmp_path):
    rec_path = recordings.save_recording(renamed(k92["rec"], [f"zz_{i}" for i in range(92)]), tmp_path / "rec.nc")
    out = tmp_path / "report"
    r = run("compare", k92["acts"], rec_path, "-o", out)
    assert r.exit_code == 2
    line = error_line(r)
    assert "share no stimuli" in line and "0 of 92 ids matched (0 by id, 0 by stem, 0 by id map)" in line
    assert "--id-map" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rec.nc"]            # nothing written


def test_partial_match_refused_unless_shared_only(k92, tmp_path):
    rec_path = recordings.save_recording(k92["rec"].isel(stimulus=slice(0, 50)), tmp_path / "rec.nc")
    r = run("compare", k92["acts"], rec_path, "-o", tmp_path / "report")
    assert r.exit_code == 2
    line = error_line(r)
    assert "RDM sizes differ" in line and "92 stimuli" in line
    assert "50 matched (50 by id, 0 by stem, 0 by id map)" in line
    r = run("compare", k92["acts"], rec_path, "-o", tmp_path / "report", "--shared-only", "--bootstrap", "0",
            "--layers", "it")
    assert r.exit_code == 0, r.output
    df = pd.read_csv(tmp_path / "report" / "comparison.csv")
    assert (df["n_stimuli"] == 50).all() and df["ci_low"].isna().all()


def test_id_map_matches_renamed_stimuli(k92, tmp_path):
    ids = [str(s) for s in k92["rec"]["stimulus"].values]
    rec_path = recordings.save_recording(renamed(k92["rec"], [f"stim-{i}" for i in range(92)]), tmp_path / "rec.nc")
    id_map = tmp_path / "map.csv"
    id_map.write_text("model,recording\n" + "".join(f"{a},stim-{i}\n" for i, a in enumerate(ids)))
    direct = recordings.save_recording(k92["rec"], tmp_path / "direct.nc")
    args = ["--bootstrap", "0", "--layers", "it"]
    r = run("compare", k92["acts"], rec_path, "-o", tmp_path / "a", "--id-map", id_map, *args)
    assert r.exit_code == 0, r.output
    assert "92 by id_map" in r.output
    assert run("compare", k92["acts"], direct, "-o", tmp_path / "b", *args).exit_code == 0
    a, b = (pd.read_csv(tmp_path / f / "comparison.csv") for f in "ab")
    np.testing.assert_allclose(a["value"], b["value"])


@pytest.mark.parametrize("extra, message", [
    (["--layers", "v1,nope"], "--layers nope: not in"),
    (["--mapping", "missing.json"], "missing.json does not exist"),
    (["--mapping", "fit"], "--mapping fit needs a time-resolved recording"),
    (["--encoding"], "--encoding needs a recording with neuroids"),
    (["--encoding", "--min-reliability", "1.5"], "--min-reliability 1.5: must be a number in (0, 1]"),
    (["--min-reliability", "0.5"], "--min-reliability applies to the encoding scores: add --encoding"),
])
def test_bad_options_exit_2(k92, tmp_path, extra, message):
    r = run("compare", k92["acts"], f"kriegeskorte92:{K92}", "-o", tmp_path / "report", "--bootstrap", "0", *extra)
    assert r.exit_code == 2
    assert message in error_line(r)
    assert not (tmp_path / "report").exists()


def test_existing_report_and_bad_recording_exit_2(k92, tmp_path):
    report = tmp_path / "report"
    report.mkdir()
    (report / "keep.txt").write_text("x")
    # other files may share the folder: the report is written beside them, they stay
    r = run("compare", k92["acts"], f"kriegeskorte92:{K92}", "-o", report, "--bootstrap", "0", "--layers", "it")
    assert r.exit_code == 0, r.output
    assert (report / "keep.txt").read_text() == "x" and (report / "comparison.csv").exists()
    before = sorted(p.name for p in report.iterdir())
    # an earlier report is replaced only with --overwrite
    r = run("compare", k92["acts"], f"kriegeskorte92:{K92}", "-o", report, "--bootstrap", "0", "--layers", "it")
    assert r.exit_code == 2 and "--overwrite" in error_line(r) and "comparison.csv" in error_line(r)
    assert sorted(p.name for p in report.iterdir()) == before
    r = run("compare", k92["acts"], tmp_path / "nothing.nc", "-o", tmp_path / "r2")
    assert r.exit_code == 2 and "nothing.nc does not exist" in error_line(r)
    r = run("compare", k92["acts"], "cichy2014:" + str(tmp_path), "-o", tmp_path / "r2")
    assert r.exit_code == 2 and "MEG_decoding_RDMs.mat" in error_line(r)


def test_cichy2014_meg_rdms_in_the_published_layout(k92, tmp_path):
    from test_recordings import meg_truth, write_v73

    truth = meg_truth(subjects=3, times=30)                      # 3 bins of 10 ms from -100 ms
    write_v73(tmp_path / "MEG_decoding_RDMs.mat", "MEG_decoding_RDMs", truth)
    out = tmp_path / "report"
    r = run("compare", k92["acts"], f"cichy2014:{tmp_path}", "-o", out, "--bootstrap", "20", "--layers", "it")
    assert r.exit_code == 0, r.output
    df = pd.read_csv(out / "comparison.csv")
    assert set(df["target"]) == {"meg"} and df["time_ms"].unique().tolist() == [-95.5, -85.5, -75.5]
    assert df["noise_ceiling_upper"].notna().all()
    row = df.query("step == 4 and time_ms == -85.5").iloc[0]
    iu = np.triu_indices(92, 1)
    meg = truth[:, :, 10:20].mean(axis=2).mean(axis=1)           # bin 2, sessions averaged: (subject, i, j)
    expect = np.mean([spearman(model_rdm(k92["tree"], "it", 4), rsatoolbox.rdm.RDMs(m[iu][None])) for m in meg])
    assert row["value"] == pytest.approx(expect, abs=1e-10)


def test_help_has_an_example():
    r = run("compare", "--help")
    assert r.exit_code == 0 and "Example:" in r.output and "vrnn compare k92.nc" in r.output
    from vision_rnn.analysis.encoding import MIN_RELIABILITY

    assert f"[default: {MIN_RELIABILITY:g}]" in " ".join(r.output.split())    # the help states the real default


def test_brainio_writer_round_trip(k92, tmp_path):
    rec = k92["rec"].copy()
    rec[5, 2] = np.nan                                           # a missing trial is not written
    assembly = to_brainio(rec)
    assert assembly.sizes["presentation"] == 92 * 4 - 1
    first, second = (str(s) for s in k92["rec"]["stimulus"].values[:2])
    assert list(assembly["stimulus_id"].values[:5]) == [first] * 4 + [second]
    assert list(assembly["repetition"].values[:5]) == [0, 1, 2, 3, 0]
    back = recordings.load_recording(save_brainio(rec, tmp_path / "a.nc")).transpose(*rec.dims)
    same = np.ones(92, bool)
    same[5] = False
    np.testing.assert_array_equal(back.values[same], rec.values[same])
    # BrainIO numbers a stimulus' presentations in order of appearance: trial 3 becomes the third one
    np.testing.assert_array_equal(back.values[5, 2], rec.values[5, 3])
    assert np.isnan(back.values[5, 3]).all()
    np.testing.assert_array_equal(back["brainio_repetition"].values[5], [0, 1, 3, np.nan])
    assert list(back["region"].values) == list(rec["region"].values)
    np.testing.assert_array_equal(back["time_bin_start"].values, rec["time_bin_start"].values)


def test_compare_does_not_import_torch(k92, tmp_path):
    rec_path = recordings.save_recording(k92["rec"], tmp_path / "rec.nc")
    args = ["compare", str(k92["acts"]), str(rec_path), "-o", str(tmp_path / "r"), "--bootstrap", "5",
            "--layers", "it", "--encoding"]
    code = ("import sys\nfrom vision_rnn.cli import main\n"
            f"main({args!r}, prog_name='vrnn', standalone_mode=False)\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\nprint('ok')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().endswith("ok")
    assert (tmp_path / "r" / "encoding.csv").exists()


@pytest.mark.parametrize("empty", ["neuroid", "presentation"])
def test_an_assembly_with_no_responses_is_refused(k92, tmp_path, empty):
    ids = [str(s) for s in k92["tree"]["stimulus"].values]
    n_p, n_n = (len(ids), 0) if empty == "neuroid" else (0, 5)
    assembly = xr.DataArray(np.zeros((n_p, n_n, 1)), dims=("presentation", "neuroid", "time_bin"),
                            coords={"stimulus_id": ("presentation", ids[:n_p]),
                                    "neuroid_id": ("neuroid", [f"n{i}" for i in range(n_n)]),
                                    "time_bin_start": ("time_bin", [70]), "time_bin_end": ("time_bin", [170])})
    path = tmp_path / f"no_{empty}.nc"
    assembly.to_netcdf(path)
    with pytest.raises(vrnn.VRNNError) as e:
        recordings.load_recording(path)
    assert str(path) in str(e.value) and "nothing to compare" in str(e.value)
    r = run("compare", k92["acts"], path, "-o", tmp_path / "report", "--bootstrap", "0")
    assert r.exit_code == 2 and str(path) in error_line(r)
    assert not (tmp_path / "report").exists()
    # an in-memory recording without neuroids is refused the same way
    rec = k92["rec"].isel(neuroid=slice(0, 0))
    with pytest.raises(vrnn.VRNNError, match="0 neuroids"):
        from vision_rnn.compare import run_comparison
        run_comparison(k92["acts"], rec, n_bootstrap=0)
