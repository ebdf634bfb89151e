"""The activation-file layer: incomplete files are never read as data, and one handle per file and process.

The crash tests run in subprocesses, so a regression fails one test, not the run.
"""

import itertools
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import vision_rnn as vrnn
from vision_rnn import _handles, store
from vision_rnn.errors import StoreError
from vision_rnn.recordings import save_recording
from vision_rnn.stimuli import Stimuli
from clirun import run, error_line

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
K92 = DATA / "kriegeskorte2008"
BATCH = 8
STOP_AT = 24           # the interrupted extraction writes 3 of the 6 batches of 42 stimuli


@pytest.fixture(scope="module")
def model():
    return vrnn.load_model("lateral")


@pytest.fixture(scope="module")
def stim():
    return vrnn.load_stimuli("builtin:fashion-mnist").subset(range(0, 500, 12))      # 42 labelled images


def interrupted_at(stim, index):
    """The same stimuli, but decoding image ``index`` raises KeyboardInterrupt (Ctrl-C mid-extraction)."""
    def loader(idx):
        if max(idx) >= index:
            raise KeyboardInterrupt
        return stim.load(idx)

    return Stimuli(stim.ids, loader, stim.label_names, source=stim.source, name=stim.name)


@pytest.fixture(scope="module")
def files(model, stim, tmp_path_factory):
    """A complete extraction, the .partial of the same extraction interrupted after 3 batches, and a recording."""
    folder = tmp_path_factory.mktemp("store")
    full = folder / "full.nc"
    vrnn.extract(model, stim, out=full, batch_size=BATCH, layers=["it", "gap"]).close()
    with pytest.raises(KeyboardInterrupt):
        vrnn.extract(model, interrupted_at(stim, STOP_AT), out=folder / "k.nc", batch_size=BATCH,
                     layers=["it", "gap"], workers=0)          # the interrupt raised in this process
    partial = folder / "k.nc.partial"
    assert partial.exists() and not (folder / "k.nc").exists()
    rng = np.random.default_rng(0)
    rec = xr.DataArray(rng.normal(size=(len(stim), 1, 12)), dims=("stimulus", "time", "neuroid"),
                       coords={"stimulus": stim.ids, "time": [100.0], "time_bin_start": ("time", [70.0]),
                               "time_bin_end": ("time", [170.0])}, name="response")
    save_recording(rec, folder / "rec.nc")
    return {"full": full, "partial": partial, "rec": folder / "rec.nc", "folder": folder}


# -- incomplete files ----------------------------------------------------------------------------
def test_the_interrupted_file_is_what_the_tests_assume(files):
    attrs = store.read_attrs(files["partial"])
    assert attrs["complete"] == 0 and attrs["batches_done"] == STOP_AT // BATCH
    assert not store.is_open(files["partial"])


def test_open_activations_refuses_an_incomplete_file(files):
    with pytest.raises(StoreError) as e:
        vrnn.open_activations(files["partial"])
    msg = str(e.value)
    assert "\n" not in msg and "k.nc.partial" in msg and "3 of 6 batches" in msg and "`resume=True`" in msg
    assert "allow_incomplete=True" in msg and "the 24 stimuli written so far" in msg
    # renamed to look finished, it is still refused
    fake = files["folder"] / "renamed.nc"
    fake.write_bytes(files["partial"].read_bytes())
    with pytest.raises(StoreError, match="incomplete activation file"):
        vrnn.open_activations(fake)
    assert not store.is_open(files["partial"]) and not store.is_open(fake)


def test_allow_incomplete_returns_only_the_written_stimuli(files, stim):
    with vrnn.open_activations(files["partial"], allow_incomplete=True) as part, \
            vrnn.open_activations(files["full"]) as full:
        assert part.sizes["stimulus"] == STOP_AT
        assert list(part["stimulus"].values) == stim.ids[:STOP_AT]
        for name in ("it", "gap"):
            a = vrnn.layer(part, name)
            assert a.sizes["stimulus"] == STOP_AT and float(abs(a).max()) < 1e6       # no fill values
            np.testing.assert_array_equal(a.values, vrnn.layer(full, name).values[:STOP_AT])
        np.testing.assert_array_equal(part["logits"].values, full["logits"].values[:STOP_AT])
        np.testing.assert_array_equal(part["label"].values, full["label"].values[:STOP_AT])
    assert not store.is_open(files["partial"])


def test_every_command_refuses_an_incomplete_file(files, tmp_path):
    r = run("analyze", files["partial"], "-o", tmp_path / "rep")
    assert r.exit_code == 2 and "3 of 6 batches" in error_line(r) and "--resume" in error_line(r)
    r = run("compare", files["partial"], files["rec"], "-o", tmp_path / "cmp", "--bootstrap", "0")
    assert r.exit_code == 2 and "incomplete activation file" in error_line(r)
    assert not (tmp_path / "rep").exists() and not (tmp_path / "cmp").exists()
    r = run("info", files["partial"])
    assert r.exit_code == 0 and "no: 24 of 42 stimuli written" in r.output and "(3/6 batches done)" in r.output


def test_resume_after_the_interrupt_equals_the_uninterrupted_file(files, model, stim, tmp_path):
    partial = tmp_path / "k.nc.partial"
    partial.write_bytes(files["partial"].read_bytes())
    vrnn.extract(model, stim, out=tmp_path / "k.nc", batch_size=BATCH, layers=["it", "gap"], resume=True).close()
    with vrnn.open_activations(tmp_path / "k.nc") as a, vrnn.open_activations(files["full"]) as b:
        for name in ("logits", "label"):
            np.testing.assert_array_equal(a[name].values, b[name].values)
        for name in ("it", "gap"):
            np.testing.assert_array_equal(vrnn.layer(a, name).values, vrnn.layer(b, name).values)


def test_a_file_without_the_complete_attribute_is_refused(files, tmp_path):
    path = tmp_path / "crafted.nc"
    path.write_bytes(files["full"].read_bytes())
    with store.appending(path) as ds:
        ds.delncattr("complete")
    with pytest.raises(StoreError, match="no 'complete' attribute"):
        vrnn.open_activations(path)


def test_a_file_with_only_the_vision_rnn_attributes_is_refused(tmp_path):
    path = tmp_path / "crafted.nc"
    xr.Dataset(attrs={"vision_rnn_version": "0.1.0", "layers": "gap", "complete": 1}).to_netcdf(path)
    for read in (vrnn.open_activations, store.describe):
        with pytest.raises(StoreError, match="not an activation file written by vrnn extract") as e:
            read(path)
        assert "no 'stimulus' dimension" in str(e.value) and "\n" not in str(e.value)
    r = run("info", path)
    assert r.exit_code == 2 and "not an activation file" in error_line(r)


# -- one handle per file and process -------------------------------------------------------------
def test_readers_share_one_handle_and_release_it(files):
    path = files["full"]
    a = vrnn.open_activations(path)
    b = vrnn.open_activations(path)
    assert store.is_open(path) and len([h for h in _handles._HANDLES.values() if Path(h.path) == path]) == 1
    assert store.read_attrs(path)["complete"] == 1            # borrows the same handle
    a.close()
    a.close()                                                   # closing twice gives back one reference
    assert store.is_open(path)
    assert float(vrnn.layer(b, "gap").sum()) > 0
    b.close()
    assert not store.is_open(path)
    # a closed tree reopens on demand, as xarray's own file manager does, until it is collected
    assert float(vrnn.layer(a, "gap").sum()) > 0
    assert store.is_open(path)
    del a, b
    import gc
    gc.collect()
    assert not store.is_open(path)


def test_a_collected_tree_gives_its_handle_back(files):
    import gc

    vrnn.open_activations(files["full"])
    gc.collect()
    assert not store.is_open(files["full"])                    # released at the next safe point


def test_writing_a_file_open_for_reading_is_refused(files, model, stim, tmp_path):
    partial = tmp_path / "k.nc.partial"
    partial.write_bytes(files["partial"].read_bytes())
    tree = vrnn.open_activations(partial, allow_incomplete=True)
    with pytest.raises(StoreError, match="open for reading in this process"):
        vrnn.extract(model, stim, out=tmp_path / "k.nc", batch_size=BATCH, layers=["it", "gap"], resume=True)
    tree.close()
    assert store.read_attrs(partial)["batches_done"] == 3      # untouched


def test_a_recording_path_that_is_an_open_activation_file_is_refused(files):
    from vision_rnn.errors import DataError
    from vision_rnn.recordings import load_recording

    with vrnn.open_activations(files["full"]):
        with pytest.raises(DataError, match="activation file open in this process"):
            load_recording(files["full"])


# -- the crash: open, extract, analyze and compare of one file in one process --------------------
def _python(code: str, *args, timeout=600):
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code), *map(str, args)],
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.skipif(not K92.is_dir(), reason=f"92-image data not found at {K92}")
def test_open_then_compare_the_92_images_in_one_process(tmp_path):
    code = """
    import sys
    import vision_rnn as vrnn
    from vision_rnn.compare import run_comparison
    data, out = sys.argv[1], sys.argv[2]
    tree = vrnn.extract(vrnn.load_model("lateral"), f"kriegeskorte92:{data}", out=out, pool="mean")
    c = run_comparison(out, f"kriegeskorte92:{data}", n_bootstrap=10)              # extract, then compare
    t = vrnn.open_activations(out)
    c = run_comparison(out, f"kriegeskorte92:{data}", n_bootstrap=10)              # the reported repro
    print("ok", sorted(c.results), float(vrnn.layer(t, "it").sum()) > 0)
    """
    r = _python(code, K92, tmp_path / "k92.nc")
    assert r.returncode == 0, f"exit {r.returncode}: {r.stderr[-2000:]}"
    assert "ok ['human_it', 'monkey_it'] True" in r.stdout


ORDERS_SCRIPT = """
import sys
import vision_rnn as vrnn
from vision_rnn.compare import run_comparison
from vision_rnn.report import analyze

folder, rec, first = sys.argv[1], sys.argv[2], sys.argv[3]
model = vrnn.load_model("lateral", weights="random", seed=0)
stim = vrnn.load_stimuli("builtin:fashion-mnist").subset(range(0, 500, 25))
path = f"{folder}/k.nc"
kept = [vrnn.extract(model, stim, out=path, layers=["it", "gap"], pool="mean", batch_size=8)]   # left open
ops = ["open", "extract", "analyze", "compare"]
rest = [o for o in ops if o != first]
import itertools
for n, tail in enumerate(itertools.permutations(rest)):
    for op in (first, *tail):
        if op == "open":
            t = vrnn.open_activations(path)
            kept.append(t)
            assert float(vrnn.layer(t, "gap").sum()) > 0
        elif op == "extract":
            kept.append(vrnn.extract(model, stim, out=path, layers=["it", "gap"], pool="mean", batch_size=8,
                                     overwrite=True))
        elif op == "analyze":
            analyze(path, f"{folder}/report_{n}", n_bootstrap=0)
        elif op == "compare":
            c = run_comparison(path, rec, n_bootstrap=5)
            assert c.results["recording"]["value"].notnull().all()
    print("ok", first, *tail, flush=True)
for t in kept[::2]:
    t.close()
print("done", flush=True)
"""


@pytest.mark.slow                       # about 18 s each
@pytest.mark.parametrize("first", ["open", "extract", "analyze", "compare"])
def test_one_file_in_one_process_in_every_order(first, tmp_path):
    stim = vrnn.load_stimuli("builtin:fashion-mnist").subset(range(0, 500, 25))
    rng = np.random.default_rng(1)
    rec = xr.DataArray(rng.normal(size=(len(stim), 1, 8)), dims=("stimulus", "time", "neuroid"),
                       coords={"stimulus": stim.ids, "time": [100.0], "time_bin_start": ("time", [70.0]),
                               "time_bin_end": ("time", [170.0])}, name="response")
    save_recording(rec, tmp_path / "rec.nc")
    r = _python(ORDERS_SCRIPT, tmp_path, tmp_path / "rec.nc", first)
    done = [l for l in r.stdout.splitlines() if l.startswith("ok")]
    assert r.returncode == 0, f"exit {r.returncode} after {done}: {r.stderr[-2000:]}"
    assert len(done) == len(list(itertools.permutations(range(3)))) and r.stdout.strip().endswith("done")
