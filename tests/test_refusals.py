"""Bad input gets one line naming the file or option and the fix: exit 2 on the command line, the
package's own error in Python, and nothing left on disk. One test per case found by hand; the
property-based tests in test_properties.py cover the same boundaries at random."""

import json
import os
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest
import torch
import xarray as xr
from safetensors.torch import save_file

import vision_rnn as vrnn
from vision_rnn.cli import as_flags
from vision_rnn.errors import AnalysisError, DataError, ModelError, StimuliError, VRNNError
from vision_rnn.recordings import load_recording, save_recording
from clirun import run, error_line


def refused(result, *words, folder=None, before=None):
    """Exit 2, one line holding ``words``; ``folder`` holds only the names in ``before``."""
    assert result.exit_code == 2, result.output
    line = error_line(result)
    for w in words:
        assert w in line, line
    if folder is not None:
        assert sorted(p.name for p in folder.iterdir()) == sorted(before)
    return line


@pytest.fixture(scope="module")
def acts(tmp_path_factory):
    folder = tmp_path_factory.mktemp("acts")
    stim = vrnn.load_stimuli("builtin:fashion-mnist").subset(range(0, 500, 25))
    vrnn.extract(vrnn.load_model("lateral"), stim, out=folder / "a.nc", layers=["it", "gap"], pool="mean").close()
    return {"path": folder / "a.nc", "ids": stim.ids}


def recording(ids, values=None, times=(100.0,), **coords):
    values = np.random.default_rng(0).normal(size=(len(ids), len(times), 6)) if values is None else values
    c = {"stimulus": list(ids), "time": list(times),
         "time_bin_start": ("time", [t - 50 for t in times]), "time_bin_end": ("time", [t + 50 for t in times])}
    c.update(coords)
    return xr.DataArray(values, dims=("stimulus", "time", "neuroid"), coords=c, name="response")


# -- 1. HDF5 stimuli -------------------------------------------------------------------------------
def _h5(path, data, labels):
    with h5py.File(path, "w") as f:
        f["test/data"] = data
        f["test/labels"] = labels
    return path


@pytest.mark.parametrize("case, data, labels, words", [
    ("empty", np.zeros((0, 8, 8, 3), np.uint8), np.zeros(0, int), ["holds no images"]),
    ("labels", np.zeros((4, 8, 8, 3), np.uint8), np.zeros(2, int), ["4 integer class indices", "(2,)"]),
    ("strings", np.zeros((4, 8, 8, 3), np.uint8), np.array([b"a", b"b", b"c", b"d"]), ["integer class indices"]),
    ("float", np.zeros((4, 8, 8, 3)), np.zeros(4, int), ["uint8", "float64"]),
])
def test_bad_hdf5_stimuli(case, data, labels, words, tmp_path):
    path = _h5(tmp_path / f"{case}.h5", data, labels)
    r = run("extract", "--model", "lateral", "--stimuli", f"{path}:test", "-o", tmp_path / "o.nc")
    refused(r, f"{case}.h5:test", *words, folder=tmp_path, before=[path.name])
    with pytest.raises(StimuliError):
        vrnn.load_stimuli(f"{path}:test")


# -- 2. weights ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def state():
    m = vrnn.load_model("lateral", weights="random")
    return m, {k: v.contiguous() for k, v in m.state_dict().items()}


def _config(model, **change):
    c = json.loads(model.config.to_json())
    c.update(change)
    return json.dumps(c)


@pytest.mark.parametrize("case, meta, words", [
    ("config-not-json", lambda m: {"config": "{not json"}, ["metadata 'config' is not JSON"]),
    ("seed-not-json", lambda m: {"config": m.config.to_json(), "seed": "x{"}, ["metadata 'seed'", "not an integer"]),
    ("negative-size", lambda m: {"config": _config(m, input_size=-5)}, ["input_size", "-5"]),
    ("list", lambda m: {"config": "[1, 2, 3]"}, ["a JSON object"]),
    ("unknown-keys", lambda m: {"config": _config(m, bogus=1)}, ["unknown fields ['bogus']"]),
    ("zero-steps", lambda m: {"config": _config(m, timesteps=0)}, ["timesteps", "at least 1"]),
    ("string-channels", lambda m: {"config": _config(m, channels="abcd")}, ["channels"]),
    ("bool-size", lambda m: {"config": _config(m, input_size=True)}, ["input_size"]),
])
def test_bad_weights_metadata_names_the_file(case, meta, words, state, tmp_path):
    model, tensors = state
    path = tmp_path / f"{case}.safetensors"
    save_file(tensors, str(path), metadata=meta(model))
    with pytest.raises(ModelError) as e:
        vrnn.load_model(path)
    assert str(path) in str(e.value) and "\n" not in str(e.value)
    r = run("extract", "--model", path, "--stimuli", "builtin:fashion-mnist", "-o", tmp_path / "o.nc")
    refused(r, f"{case}.safetensors", *words, folder=tmp_path, before=[path.name])


# -- 3. vrnn train --resume ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    from vision_rnn.datasets import write_hdf5

    folder = tmp_path_factory.mktemp("train")
    rng = np.random.default_rng(0)
    x = rng.integers(0, 255, (12, 32, 32, 3)).astype(np.uint8)
    y = np.repeat(np.arange(3), 4)
    data = write_hdf5(folder / "mini.h5", {"train": (x, y), "val": (x[:6], y[:6])}, ["r", "g", "b"])
    r = run("train", "--model", "lateral", "--data", data, "--out", folder / "run", "--epochs", 1,
            "--timesteps", 2, "--batch-size", 6, "--device", "cpu")
    assert r.exit_code == 0, r.output
    return folder / "run"


class _Code:
    def __reduce__(self):
        return (os.system, ("echo this must never run > /dev/null",))


@pytest.mark.parametrize("case", ["truncated", "list", "empty", "code", "no-epoch"])
def test_bad_resume_checkpoints(case, trained_run, tmp_path):
    import shutil

    run_dir = tmp_path / "run"
    shutil.copytree(trained_run, run_dir)
    if case == "truncated":
        (run_dir / "optimizer.pt").write_bytes((trained_run / "optimizer.pt").read_bytes()[:100])
        words = ["optimizer.pt: unreadable", "damaged"]
    elif case == "list":
        (run_dir / "config.json").write_text("[1, 2, 3]")
        words = ["config.json: is not a run record"]
    elif case == "empty":
        (run_dir / "config.json").write_text("{}")
        words = ["config.json: lacks model"]
    elif case == "code":
        torch.save({"epoch": 1, "optimizer": _Code()}, run_dir / "optimizer.pt")
        words = ["optimizer.pt: refused", "ran nothing from it"]
    else:
        torch.save({"optimizer": {}}, run_dir / "optimizer.pt")
        words = ["not an optimizer checkpoint"]
    before = sorted(p.name for p in run_dir.iterdir())
    r = run("train", "--out", run_dir, "--resume", "--epochs", 2)
    line = refused(r, *words, "--out", folder=run_dir, before=before)
    assert "weights_only=False" not in line and "weights_only" not in line.replace("weights_only=True", "")


# -- 4. vrnn compare --------------------------------------------------------------------------------
def test_non_utf8_id_map(acts, tmp_path):
    save_recording(recording(acts["ids"]), tmp_path / "rec.nc")
    (tmp_path / "map.csv").write_bytes(b"a,b\n\xff\xfe,\xff\n")
    r = run("compare", acts["path"], tmp_path / "rec.nc", "-o", tmp_path / "rep", "--id-map", tmp_path / "map.csv",
            "--bootstrap", "0")
    refused(r, "map.csv", "not UTF-8", folder=tmp_path, before=["rec.nc", "map.csv"])


def _assembly(ids, values, dims, **coords):
    c = {"stimulus_id": ("presentation", list(ids)), "neuroid_id": ("neuroid", [f"n{i}" for i in range(5)])}
    c.update(coords)
    return xr.DataArray(values, dims=dims, coords=c)


@pytest.mark.parametrize("case", ["extra-dim", "bins-on-neuroid", "strings", "nan-time", "no-bins"])
def test_bad_recordings(case, acts, tmp_path):
    ids, n = acts["ids"], len(acts["ids"])
    rng = np.random.default_rng(0)
    path = tmp_path / f"{case}.nc"
    if case == "extra-dim":
        _assembly(ids, rng.normal(size=(n, 5, 2, 3)), ("presentation", "neuroid", "time_bin", "extra"),
                  time_bin_start=("time_bin", [0, 10]), time_bin_end=("time_bin", [10, 20])).to_netcdf(path)
        words = ["also has extra"]
    elif case == "bins-on-neuroid":
        _assembly(ids, rng.normal(size=(n, 5, 2)), ("presentation", "neuroid", "time_bin"),
                  time_bin_start=("neuroid", np.arange(5)), time_bin_end=("neuroid", np.arange(5) + 1)).to_netcdf(path)
        words = ["time_bin_start must be on the time_bin dim"]
    elif case == "strings":
        _assembly(ids, np.full((n, 5), "x"), ("presentation", "neuroid")).to_netcdf(path)
        words = ["must hold numbers"]
    elif case == "nan-time":
        rec = recording(ids, rng.normal(size=(n, 3, 6)), times=(0.0, 10.0, 20.0))
        save_recording(rec.assign_coords(time=[np.nan, 10.0, 20.0]), path)
        words = ["distinct, finite bin centres", "nan"]
    else:
        recording(ids, rng.normal(size=(n, 3, 6)), times=(0.0, 10.0, 20.0)).drop_vars(
            ["time_bin_start", "time_bin_end"]).to_netcdf(path)
        words = ["needs time_bin_start and time_bin_end"]
    r = run("compare", acts["path"], path, "-o", tmp_path / "rep", "--bootstrap", "0")
    refused(r, path.name, *words, folder=tmp_path, before=[path.name])
    with pytest.raises(DataError):
        load_recording(path)


def test_a_static_recording_without_bins_still_compares(acts, tmp_path):
    from vision_rnn.compare import run_comparison

    rec = recording(acts["ids"]).drop_vars(["time_bin_start", "time_bin_end"])
    c = run_comparison(acts["path"], rec, n_bootstrap=0)
    assert c.results["recording"].sizes["time"] == 1 and np.isnan(c.results["recording"]["time_bin_start"]).all()


def test_crafted_and_damaged_activation_files(acts, tmp_path):
    crafted = tmp_path / "crafted.nc"
    xr.Dataset(attrs={"vision_rnn_version": "0.1.0", "layers": "gap", "complete": 1}).to_netcdf(crafted)
    save_recording(recording(acts["ids"]), tmp_path / "rec.nc")
    for args in (("info", crafted), ("analyze", crafted, "-o", tmp_path / "r1"),
                 ("compare", crafted, tmp_path / "rec.nc", "-o", tmp_path / "r2")):
        refused(run(*args), "crafted.nc: not an activation file written by vrnn extract",
                folder=tmp_path, before=["crafted.nc", "rec.nc"])
    # a data chunk of gap overwritten on disk
    damaged = tmp_path / "damaged.nc"
    damaged.write_bytes(acts["path"].read_bytes())
    with h5py.File(damaged, "r") as f:
        info = f["gap/activation"].id.get_chunk_info(0)
    raw = bytearray(damaged.read_bytes())
    for i in range(info.byte_offset + 8, info.byte_offset + info.size - 8):
        raw[i] ^= 0x5A
    damaged.write_bytes(bytes(raw))
    before = ["crafted.nc", "damaged.nc", "rec.nc"]
    refused(run("analyze", damaged, "-o", tmp_path / "r3"), "damaged.nc: damaged data", "extract it again",
            folder=tmp_path, before=before)
    refused(run("compare", damaged, tmp_path / "rec.nc", "-o", tmp_path / "r4", "--bootstrap", "0"),
            "damaged.nc: damaged data", folder=tmp_path, before=before)


# -- 5. the Python API -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def model():
    return vrnn.load_model("lateral", weights="random")


@pytest.mark.parametrize("call, error, words", [
    (lambda m: vrnn.extract(m, np.zeros((0, 8, 8, 3), np.uint8)), StimuliError, ["holds no images"]),
    (lambda m: vrnn.extract(m, np.zeros((2, 0, 0, 3), np.uint8)), StimuliError, ["no pixels"]),
    (lambda m: vrnn.extract(m, vrnn.load_stimuli(np.zeros((2, 8, 8, 3), np.uint8), labels=["a"])),
     StimuliError, ["`labels`: 1 labels for 2 images"]),
    (lambda m: vrnn.extract(m, np.zeros((2, 8, 8, 3), np.uint8), timesteps=0), VRNNError, ["`timesteps=0`"]),
    (lambda m: vrnn.extract(m, np.zeros((2, 8, 8, 3), np.uint8), timesteps=2.7), VRNNError, ["`timesteps=2.7`"]),
    (lambda m: vrnn.extract(m, np.zeros((2, 8, 8, 3), np.uint8), layers=[]), VRNNError, ["names no layer"]),
    (lambda m: vrnn.extract(m, np.zeros((2, 8, 8, 3), np.uint8), batch_size=2.5), VRNNError, ["`batch_size=2.5`"]),
])
def test_bad_python_arguments(call, error, words, model):
    with pytest.raises(error) as e:
        call(model)
    for w in words:
        assert w in str(e.value)
    assert "\n" not in str(e.value)


def test_layers_as_one_name(model):
    tree = vrnn.extract(model, np.zeros((2, 8, 8, 3), np.uint8), layers="gap")
    assert list(tree.children) == ["gap"]
    tree = vrnn.extract(model, np.zeros((2, 8, 8, 3), np.uint8), layers=["gap"], timesteps=3)
    assert tree.sizes["time"] == 3


def test_save_recording_attributes_and_folder(tmp_path):
    rec = recording(["a", "b", "c"])
    rec.attrs = {"bins": np.arange(3), "note": b"utf-8 text", "flag": True, "meta": {"lab": "x", "n": 2}}
    path = save_recording(rec, tmp_path / "r.nc")
    back = load_recording(path)
    assert list(back.attrs["bins"]) == [0, 1, 2] and back.attrs["note"] == "utf-8 text"
    assert back.attrs["flag"] == 1 and json.loads(back.attrs["meta"]) == {"lab": "x", "n": 2}
    rec.attrs = {"bad": b"\xff\xfe"}
    with pytest.raises(DataError, match="attribute 'bad' holds bytes that are not UTF-8"):
        save_recording(rec, tmp_path / "r2.nc")
    rec.attrs = {"obj": object()}
    with pytest.raises(DataError, match="attribute 'obj'"):
        save_recording(rec, tmp_path / "r3.nc")
    (tmp_path / "folder").mkdir()
    rec.attrs = {}
    with pytest.raises(DataError, match="is a folder"):
        save_recording(rec, tmp_path / "folder")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder", "r.nc"]


def test_stability_on_nan_logits():
    from vision_rnn.analysis import stability

    lg = xr.DataArray(np.full((3, 4, 5), np.nan), dims=("stimulus", "time", "class"),
                      coords={"stimulus": ["a", "b", "c"], "label": ("stimulus", [0, 1, 2])})
    with pytest.raises(AnalysisError, match="hold NaN at 12 .* e.g. stimulus a at step 0"):
        stability(lg)


# -- messages -----------------------------------------------------------------------------------------
def test_constant_and_single_neuroid_recordings_name_what_is_constant(acts, tmp_path):
    from vision_rnn.compare import CompareError, run_comparison

    rng = np.random.default_rng(1)
    n = len(acts["ids"])
    values = np.concatenate([rng.normal(size=(n, 1, 4)), np.ones((n, 1, 4))], axis=1)
    with pytest.raises(CompareError) as e:
        run_comparison(acts["path"], recording(acts["ids"], values, times=(100.0, 200.0)), n_bootstrap=0)
    assert "target 'recording'" in str(e.value) and "time 200 ms" in str(e.value)
    one = recording(acts["ids"], rng.normal(size=(n, 1, 1)))
    with pytest.raises(CompareError, match="single neuroid is undefined: pass `rdm_method=euclidean`"):
        run_comparison(acts["path"], one, n_bootstrap=0)
    save_recording(one, tmp_path / "one.nc")
    refused(run("compare", acts["path"], tmp_path / "one.nc", "-o", tmp_path / "rep", "--bootstrap", "0"),
            "pass --rdm euclidean")
    c = run_comparison(acts["path"], one, n_bootstrap=0, rdm_method="euclidean")
    assert np.isfinite(c.results["recording"]["value"]).all()


def test_one_shared_stimulus_says_how_many_matched(acts):
    from vision_rnn.compare import CompareError, run_comparison

    with pytest.raises(CompareError, match="share only 1 stimuli .1 by id"):
        run_comparison(acts["path"], recording(acts["ids"][:1]), n_bootstrap=0, shared_only=True)


def test_info_on_a_partial_being_written_names_the_writer(tmp_path):
    out = tmp_path / "big.nc"
    p = subprocess.Popen([sys.executable, "-m", "vision_rnn", "extract", "--model", "lateral", "--stimuli",
                          "builtin:fashion-mnist", "--timesteps", "60", "--batch-size", "8", "-o", str(out)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        lock = tmp_path / "big.nc.partial.lock"
        deadline = time.time() + 60
        while not lock.exists() and time.time() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)
        r = run("info", tmp_path / "big.nc.partial")
        assert p.poll() is None, "the extraction ended before the test could look at it"
        if r.exit_code == 2:
            refused(r, "being written by process", str(p.pid))
        else:
            assert f"being written by process {p.pid}" in r.output
        refused(run("extract", "--model", "lateral", "--stimuli", "builtin:fashion-mnist", "--timesteps", "60",
                    "--batch-size", "8", "-o", out, "--resume"), f"being written by process {p.pid}")
        refused(run("extract", "--model", "lateral", "--stimuli", "builtin:fashion-mnist", "-o", out,
                    "--overwrite"), f"being written by process {p.pid}")
        # 10. asking for the final name points to the .partial
        refused(run("info", out), "big.nc.partial is there", "vrnn info")
    finally:
        p.kill()
        p.wait()
    # the killed extraction's writer process finishes its batch and exits; until then it is named
    deadline = time.time() + 30
    while time.time() < deadline:
        r = run("info", tmp_path / "big.nc.partial")
        if r.exit_code == 0:
            break
        refused(r, "being written by process")
        time.sleep(0.2)
    assert r.exit_code == 0 and "complete  no:" in r.output     # then the file is described,
    assert not (tmp_path / "big.nc.partial.lock").exists()    # and the dead run's lock is gone


def test_resume_on_a_complete_file_says_it_is_complete(acts, tmp_path):
    out = tmp_path / "a.nc"
    out.write_bytes(acts["path"].read_bytes())
    r = run("extract", "--model", "lateral", "--stimuli", "builtin:fashion-mnist", "-o", out, "--resume")
    line = refused(r, "a.nc is complete", "nothing to resume", folder=tmp_path, before=["a.nc"])
    assert "--overwrite" not in line


@pytest.mark.parametrize("value", [",", " , ,", ""])
def test_layers_naming_nothing_is_refused(value, tmp_path):
    r = run("extract", "--model", "lateral", "--stimuli", "builtin:fashion-mnist", "--layers", value,
            "-o", tmp_path / "o.nc")
    refused(r, "--layers", "names nothing", folder=tmp_path, before=[])


def test_the_command_line_never_shows_python_arguments(acts, tmp_path):
    out = tmp_path / "o.nc"
    out.write_text("x")
    line = refused(run("extract", "--model", "lateral", "--stimuli", "builtin:fashion-mnist", "-o", out),
                   "pass --overwrite")
    assert "overwrite=True" not in line and "`" not in line
    assert as_flags("`layers`: g; `overwrite=True`; `method=corr`; `vrnn models`") == \
        "--layers: g; --overwrite; --method corr; `vrnn models`"


@pytest.mark.parametrize("args, words", [
    (["extract", "--stimuli", "x"], ["Missing option '--model'", "extract --help"]),
    (["extract", "--model", "lateral", "--stimuli", "x", "--pool", "max"], ["'--pool'", "'max'"]),
    (["nonsense"], ["No such command 'nonsense'"]),
    (["compare", "a.nc"], ["Missing argument 'RECORDING'"]),
])
def test_usage_errors_are_one_line(args, words):
    r = subprocess.run([sys.executable, "-m", "vision_rnn", *args], capture_output=True, text=True)
    assert r.returncode == 2
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("vrnn: error: "), r.stderr
    for w in words:
        assert w in lines[0]


@pytest.mark.parametrize("parent", ["missing", "a_file"])
def test_an_output_folder_that_does_not_exist_is_refused(parent, tmp_path):
    (tmp_path / "a_file").write_text("x")
    r = run("extract", "--model", "lateral", "--stimuli", "builtin:fashion-mnist", "-o", tmp_path / parent / "o.nc")
    refused(r, f"output folder {tmp_path / parent} does not exist", folder=tmp_path, before=["a_file"])
