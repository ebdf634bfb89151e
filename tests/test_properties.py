"""Property-based tests over the input boundaries.

The property, everywhere: a correct result, or the package's own error (a VRNNError) in one
line, never another exception, and nothing left on disk. Inputs are random images and byte
corruptions of real image files, metadata tables, recordings, and activation files with
random attributes or truncated. The "ci" profile (tests/conftest.py) runs 100 fixed examples
per property; VRNN_HYPOTHESIS=long runs many more.
"""

import io
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from hypothesis import assume, event, given
from hypothesis import strategies as st
from PIL import Image

import vision_rnn as vrnn
from vision_rnn import store
from vision_rnn.errors import VRNNError, VRNNWarning
from vision_rnn.recordings import load_recording, save_recording
from vision_rnn.stimuli import load_stimuli, prepare


def one_line(e: Exception) -> str:
    text = str(e)
    assert isinstance(e, VRNNError), f"{type(e).__name__}: {text}"
    assert text and "\n" not in text, text
    event(f"refused ({type(e).__name__})")
    return text


# -- image files ------------------------------------------------------------------------------------
def _image_bytes(fmt: str) -> bytes:
    rng = np.random.default_rng(0)
    im = Image.fromarray(rng.integers(0, 255, (12, 16, 3), dtype=np.uint8))
    if fmt == "GIF":
        im = im.quantize(8)
    buf = io.BytesIO()
    im.save(buf, format=fmt)
    return buf.getvalue()


FORMATS = {"png": "PNG", "jpg": "JPEG", "gif": "GIF", "tif": "TIFF", "bmp": "BMP", "webp": "WEBP"}
ORIGINALS = {ext: _image_bytes(fmt) for ext, fmt in FORMATS.items()}


@st.composite
def damaged_image(draw):
    ext = draw(st.sampled_from(sorted(ORIGINALS)))
    data = bytearray(ORIGINALS[ext])
    how = draw(st.sampled_from(["truncate", "flip", "random", "intact"]))
    if how == "truncate":
        data = data[:draw(st.integers(0, len(data) - 1))]
    elif how == "flip":
        for i in draw(st.lists(st.integers(0, len(data) - 1), min_size=1, max_size=8)):
            data[i] = draw(st.integers(0, 255))
    elif how == "random":
        data = bytearray(draw(st.binary(min_size=0, max_size=256)))
    return ext, bytes(data), how


@given(image=damaged_image(), skip_bad=st.booleans())
def test_damaged_image_files(image, skip_bad):
    ext, data, how = image
    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "cls").mkdir()
        (Path(d) / "cls" / f"a.{ext}").write_bytes(data)
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(Path(d) / "cls" / "ok.png")
        try:
            stim = load_stimuli(d).check(skip_bad=skip_bad)
            images = stim.load(range(len(stim)))
            x = prepare(images, 32, (0.5,) * 3, (0.5,) * 3)
        except Exception as e:
            one_line(e)
            assert how != "intact"
            return
        event("decoded")
        assert x.shape == (len(stim), 3, 32, 32) and bool(x.isfinite().all())
        if how == "intact":
            assert len(stim) == 2


# -- arrays through extraction --------------------------------------------------------------------
@given(n=st.sampled_from([1, 1, 2, 3, 0]), h=st.sampled_from([1, 5, 16, 32, 40, 0]), w=st.sampled_from([2, 16, 33, 0]),
       grey=st.booleans(), timesteps=st.sampled_from([None, None, None, 1, 3, 0, -1, 2.5, True]),
       layers=st.sampled_from([None, "gap", ["gap"], ["it", "gap"], ["v1"], [], ["x"], ["gap", "gap"], "v1,it"]))
def test_arrays_through_extraction(model, n, h, w, grey, timesteps, layers):
    rng = np.random.default_rng(n * 1000 + h * 10 + w)
    images = rng.integers(0, 255, (n, h, w) if grey else (n, h, w, 3), dtype=np.uint8)
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "o.nc"
        try:
            tree = vrnn.extract(model, images, timesteps=timesteps, layers=layers, out=out, batch_size=2)
        except Exception as e:
            one_line(e)
            assert os.listdir(d) == []
            return
        event("extracted")
        with tree:
            chosen = [layers] if isinstance(layers, str) else (layers or ["v1", "v2", "v4", "it", "gap"])
            assert list(tree.children) == chosen and tree.sizes["stimulus"] == n
            assert tree.sizes["time"] == (model.timesteps if timesteps is None else timesteps)
            assert np.isfinite(tree["logits"].values).all()
        assert os.listdir(d) == ["o.nc"]


# -- metadata tables ------------------------------------------------------------------------------
IDS = ["cat/a.png", "cat/b.png", "dog/a.jpg", "dog/c.png"]
GOOD_KEYS = ["cat/a.png", "cat/b.png", "dog/a.jpg", "dog/c.png", "b", "c"]


@st.composite
def metadata_table(draw):
    """(header, rows, encoding): a valid table, or one with one defect."""
    keys = draw(st.lists(st.sampled_from(GOOD_KEYS), min_size=1, max_size=4, unique=True))
    columns = draw(st.lists(st.sampled_from(["size", "rating", "animate", "Größe", "_x"]), max_size=2, unique=True))
    encoding = "utf-8"
    header = ["stimulus", *columns]
    defect = draw(st.sampled_from([None] * 5 + ["stem-of-two", "two-rows-one-stimulus", "duplicate", "unknown-key",
                                                "random-key", "layout-name", "random-name", "no-stimulus-column",
                                                "encoding", "empty"]))
    if defect == "stem-of-two":
        keys.append("a")
    elif defect == "two-rows-one-stimulus":
        keys += [k for k in ("cat/b.png", "b") if k not in keys]
    elif defect == "duplicate":
        keys.append(keys[0])
    elif defect == "unknown-key":
        keys.append("zebra")
    elif defect == "random-key":
        keys.append(draw(st.text(max_size=6)))
    elif defect == "layout-name":
        header.append(draw(st.sampled_from(["label", "unit", "gap", "time_ms", "logits", "channel"])))
    elif defect == "random-name":
        header.append(draw(st.text(max_size=6)))
    elif defect == "no-stimulus-column":
        header[0] = "image"
    elif defect == "encoding":
        encoding = draw(st.sampled_from(["utf-16", "latin-1", "utf-8-sig"]))
    elif defect == "empty":
        keys = []
    event(f"defect {defect}")
    rows = [[k] + [f"{k}-{j}" for j in range(len(header) - 1)] for k in keys]
    return header, rows, encoding


@given(table=metadata_table())
def test_metadata_tables(table):
    header, rows, encoding = table
    with tempfile.TemporaryDirectory() as d:
        root = Path(d) / "stim"
        for i in IDS:
            (root / i).parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(root / i)
        stim = load_stimuli(root)
        text = "\n".join(",".join('"' + str(c).replace('"', '""') + '"' for c in r) for r in [header, *rows])
        csv = Path(d) / "m.csv"
        try:
            csv.write_bytes(text.encode(encoding))
        except UnicodeEncodeError:
            assume(False)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", VRNNWarning)
                out = stim.with_metadata(csv, layers=MODEL_LAYERS)
        except Exception as e:
            assert "m.csv" in one_line(e)
            return
        event("matched")
        meta = out.metadata
        assert list(meta.index) == stim.ids and len(meta.columns) == len(header) - 1
        store.check_metadata_names(list(meta.columns), MODEL_LAYERS)
        for col in meta.columns:                 # every value sits at the stimulus its row names, never guessed
            for sid, value in zip(stim.ids, meta[col]):
                if value not in ("", None) and not (isinstance(value, float) and np.isnan(value)):
                    key = str(value).rsplit("-", 1)[0]
                    assert key == sid or (key == Path(sid).stem and key not in IDS
                                          and [Path(i).stem for i in IDS].count(key) == 1)


MODEL_LAYERS = ("retina", "v1", "v2", "v4", "it", "gap")

COLUMN_TYPES = {
    "bool": lambda r, n: r.random(n) < 0.5, "int8": lambda r, n: r.integers(-5, 5, n).astype(np.int8),
    "uint64": lambda r, n: r.integers(0, 2**40, n).astype(np.uint64), "float16": lambda r, n: r.normal(size=n).astype(np.float16),
    "float64": lambda r, n: r.normal(size=n), "nan": lambda r, n: np.where(r.random(n) < 0.5, np.nan, 1.0),
    "text": lambda r, n: np.array([f"é{i}" for i in r.integers(0, 9, n)]),
    "nullable": lambda r, n: pd.array([1, None] * (n // 2) + [3] * (n % 2), dtype="Int64"),
    "datetime": lambda r, n: pd.date_range("2020-01-01", periods=n).to_numpy(),
    "mixed": lambda r, n: np.array([1, "a", 2.5, None] * n, dtype=object)[:n],
}


@pytest.mark.slow
@given(kinds=st.lists(st.sampled_from(sorted(COLUMN_TYPES)), min_size=1, max_size=3, unique=True),
       suffix=st.sampled_from([".nc", ".zarr"]))
def test_metadata_value_types_through_extraction(model, kinds, suffix):
    """Any column a DataFrame holds is stored (in a netCDF file or a Zarr store), and read back
    equal (or as its text), or refused in one line leaving nothing behind."""
    stim = vrnn.load_stimuli("builtin:fashion-mnist").subset(range(3))
    rng = np.random.default_rng(len(kinds))
    stim.metadata = pd.DataFrame({k: COLUMN_TYPES[k](rng, 3) for k in kinds}, index=stim.ids)
    with tempfile.TemporaryDirectory() as d:
        try:
            tree = vrnn.extract(model, stim, layers=["gap"], out=Path(d) / f"o{suffix}")
        except Exception as e:
            one_line(e)
            assert os.listdir(d) == []
            return
        event("stored")
        with tree:
            gap = vrnn.layer(tree, "gap")
            for k in kinds:
                want, got = stim.metadata[k].to_numpy(), gap[k].values
                if want.dtype.kind in "biuf":
                    np.testing.assert_array_equal(got.astype(want.dtype), want)
                    assert got.dtype.kind == want.dtype.kind
                else:
                    assert [str(v) for v in got] == [str(v) for v in want]


# -- recordings -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def small_tree(model):
    stim = vrnn.load_stimuli("builtin:fashion-mnist").subset(range(0, 500, 100))
    return vrnn.extract(model, stim, layers=["gap"])


DEFECTS = ["duplicate-id", "foreign-ids", "one-stimulus", "no-neuroid", "one-neuroid", "no-time", "nan-time",
           "repeated-time", "no-bins", "constant", "nan", "inf", "some-nan", "int", "bool", "transposed",
           "extra-dim", "no-stimulus", "strings", "repetition"]


@st.composite
def recordings(draw, ids):
    """A plausible recording over ``ids`` (random order, 1-3 bins, 2-4 neuroids), or one with a defect."""
    sid = list(draw(st.permutations(ids)))
    n_t, n_n = draw(st.integers(1, 3)), draw(st.integers(2, 4))
    times = sorted(draw(st.lists(st.integers(-100, 300), min_size=n_t, max_size=n_t, unique=True)))
    times = [float(t) for t in times]
    defect = draw(st.sampled_from([None] * len(DEFECTS) + DEFECTS))
    event(f"defect {defect}")
    rng = np.random.default_rng(draw(st.integers(0, 1000)))
    if defect == "duplicate-id":
        sid[-1] = sid[0]
    elif defect == "foreign-ids":
        sid[: len(sid) // 2] = [f"other_{i}" for i in range(len(sid) // 2)]
    elif defect == "one-stimulus":
        sid = sid[:1]
    elif defect == "no-stimulus":
        sid = []
    elif defect == "no-neuroid":
        n_n = 0
    elif defect == "one-neuroid":
        n_n = 1
    elif defect == "no-time":
        n_t, times = 0, []
    elif defect == "nan-time":
        times[0] = float("nan")
    elif defect == "repeated-time" and n_t > 1:
        times[1] = times[0]
    shape = (len(sid), n_t, n_n)
    x = rng.normal(size=shape)
    x = {"constant": np.ones(shape), "nan": np.full(shape, np.nan),
         "inf": np.where(rng.random(shape) < 0.3, np.inf, x), "some-nan": np.where(rng.random(shape) < 0.2, np.nan, x),
         "int": rng.integers(0, 5, shape), "bool": rng.random(shape) < 0.5,
         "strings": np.full(shape, "x")}.get(defect, x)
    coords = {"stimulus": sid, "time": times}
    if defect != "no-bins":
        coords["time_bin_start"] = ("time", [t - 5 for t in times])
        coords["time_bin_end"] = ("time", [t + 5 for t in times])
    da = xr.DataArray(x, dims=("stimulus", "time", "neuroid"), coords=coords, name="response")
    if defect == "transposed":
        da = da.transpose("neuroid", "stimulus", "time")
    elif defect == "extra-dim":
        da = da.expand_dims(extra=2)
    elif defect == "repetition":
        da = xr.concat([da, da + rng.normal(size=shape)], dim="repetition")
    return da


@given(data=st.data(), rdm=st.sampled_from(["correlation", "euclidean", "cosine"]),
       method=st.sampled_from(["spearman", "corr", "cosine", "tau-a", "rho-a"]))
def test_random_recordings_in_compare(small_tree, data, rdm, method):
    from vision_rnn.compare import run_comparison

    ids = [str(s) for s in small_tree["stimulus"].values]
    rec = data.draw(recordings(ids))
    try:
        c = run_comparison(small_tree, rec, n_bootstrap=0, rdm_method=rdm, method=method, shared_only=True)
    except Exception as e:
        one_line(e)
        return
    event("compared")
    value = c.results["recording"]["value"].values
    assert np.isfinite(value).all() and (np.abs(value) <= 1 + 1e-9).all()


@given(data=st.data())
def test_recordings_save_and_load(small_tree, data):
    ids = [str(s) for s in small_tree["stimulus"].values]
    rec = data.draw(recordings(ids))
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "r.nc"
        try:
            save_recording(rec, path)
            back = load_recording(path)
        except Exception as e:
            one_line(e)
            assert not [p for p in os.listdir(d) if p != "r.nc"]
            return
        event("round trip")
        assert os.listdir(d) == ["r.nc"]
        np.testing.assert_array_equal(back.transpose(*rec.dims).values, rec.values)


# -- activation files -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def acts_bytes(model, tmp_path_factory):
    path = tmp_path_factory.mktemp("p") / "a.nc"
    stim = vrnn.load_stimuli("builtin:fashion-mnist").subset(range(0, 500, 50))
    vrnn.extract(model, stim, out=path, layers=["it", "gap"], pool="mean", batch_size=4).close()
    with vrnn.open_activations(path) as t:
        t.load()
        reference = t
    return path.read_bytes(), reference


ATTRS = ["vision_rnn_version", "layers", "complete", "batches_done", "batch_size", "n_stimuli", "readout_layer",
         "timesteps", "model"]
attr_values = st.one_of(st.integers(-3, 10**12), st.floats(allow_nan=True), st.text(max_size=8),
                        st.lists(st.integers(-2, 5), min_size=1, max_size=3), st.none())


@given(changes=st.dictionaries(st.sampled_from(ATTRS), attr_values, max_size=3),
       cut=st.one_of(st.none(), st.integers(0, 300_000)))
def test_activation_files_with_random_attributes_or_truncated(acts_bytes, changes, cut):
    raw, reference = acts_bytes
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "a.nc"
        path.write_bytes(raw if cut is None else raw[:cut])
        if cut is None:
            with store.appending(path) as ds:
                for k, v in changes.items():
                    if v is None:
                        if k in ds.ncattrs():
                            ds.delncattr(k)
                    else:
                        ds.setncattr(k, np.asarray(v) if isinstance(v, list) else v)
        try:
            store.describe(path)
        except Exception as e:
            one_line(e)
        try:
            tree = vrnn.open_activations(path)
        except Exception as e:
            one_line(e)
            assert not store.is_open(path)
            return
        event("opened")
        with tree:
            assert tree.attrs["complete"] == 1
            n = tree.sizes["stimulus"]
            np.testing.assert_array_equal(tree["logits"].values, reference["logits"].values[:n])
            np.testing.assert_array_equal(vrnn.layer(tree, "gap").values, vrnn.layer(reference, "gap").values[:n])
        assert not store.is_open(path)


# -- figures and reported medians -------------------------------------------------------------
@given(st.integers(1, 10_000), st.data())
def test_wilson_interval_holds_the_observed_proportion(n, data):
    from vision_rnn.plotting import wilson_interval

    k = data.draw(st.integers(0, n))
    low, high = wilson_interval(k / n, n)
    assert 0.0 <= low <= k / n + 1e-12 and k / n - 1e-12 <= high <= 1.0
    assert high - low > 0


@given(st.integers(1, 12), st.integers(1, 4), st.floats(0.01, 1.0), st.data())
def test_median_score_uses_only_reliable_neuroids_and_enough_of_them(n_neuroids, n_time, share, data):
    from vision_rnn.analysis.encoding import median_score

    r = np.array(data.draw(st.lists(st.floats(-1, 1), min_size=n_time * n_neuroids,
                                    max_size=n_time * n_neuroids))).reshape(1, n_time, n_neuroids)
    bad = np.array(data.draw(st.lists(st.booleans(), min_size=n_time * n_neuroids,
                                      max_size=n_time * n_neuroids))).reshape(n_time, n_neuroids)
    ds = xr.Dataset({"r": (("step", "time", "neuroid"), r),
                     "r_corrected": (("step", "time", "neuroid"), np.where(bad, np.nan, r)),
                     "unreliable": (("time", "neuroid"), bad)})
    med = median_score(ds, min_reliable_share=share).values[0]
    for t in range(n_time):
        ok = ~bad[t]
        if ok.sum() >= max(1, share * n_neuroids):
            assert med[t] == pytest.approx(np.median(r[0, t, ok]))
        else:
            assert np.isnan(med[t])


# -- shard specs ----------------------------------------------------------------------------------
@given(st.integers(1, 5000), st.integers(1, 64))
def test_shard_blocks_cover_every_stimulus_once_in_order(n, count):
    from vision_rnn import _shards

    if count > n:
        with pytest.raises(VRNNError, match="shards for"):
            _shards.block(n, 0, count)
        return
    blocks = [_shards.block(n, i, count) for i in range(count)]
    np.testing.assert_array_equal(np.concatenate(blocks), np.arange(n))
    assert max(b.size for b in blocks) - min(b.size for b in blocks) <= 1


@given(st.text(max_size=12))
def test_any_shard_spec_is_parsed_or_refused_in_one_line(text):
    from vision_rnn import _shards

    try:
        i, n = _shards.parse(text)
    except VRNNError as e:
        assert "\n" not in str(e) and str(e).startswith("`shard=")
        return
    assert 0 <= i < n and _shards.parse(f"{i}/{n}") == (i, n)
    assert [int(p) for p in text.split("/")] == [i, n]
