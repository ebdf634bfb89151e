"""Zarr v3 stores (-o NAME.zarr): the same numbers as netCDF, read by plain xarray, sharded,
resumed, merged, described, analysed and compared through the same commands."""

import json
import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image

import vision_rnn as vrnn
from clirun import error_line, run
from vision_rnn._zarr import bitround, is_zarr

ROOT = Path(__file__).resolve().parents[1]
K92 = (Path(os.environ["VRNN_DATA"]) if os.environ.get("VRNN_DATA") else ROOT.parent / "shared" / "data") \
    / "kriegeskorte2008"
LAYERS = ["v1", "it", "gap"]
N = 43                                       # 3 shards: 15 + 14 + 14


@pytest.fixture(scope="module")
def single(model, stim, tmp_path_factory):
    """The netCDF run every store is compared with."""
    return vrnn.extract(model, stim, out=tmp_path_factory.mktemp("nc") / "one.nc", batch_size=8, layers=LAYERS)


def assert_equal(tree, ref, layers=LAYERS):
    assert list(tree["stimulus"].values) == list(ref["stimulus"].values)
    for c in ("label", "label_name", "class"):
        np.testing.assert_array_equal(tree[c].values, ref[c].values)
    np.testing.assert_array_equal(tree["logits"].values, ref["logits"].values)
    np.testing.assert_array_equal(tree["readout_weight"].values, ref["readout_weight"].values)
    assert list(tree.children) == list(ref.children) == list(layers)          # model order
    for name in layers:
        a, b = vrnn.layer(tree, name), vrnn.layer(ref, name)
        np.testing.assert_array_equal(a.values, b.values)
        for c in ("channel", "row", "col"):
            if c in b.coords:
                np.testing.assert_array_equal(a[c].values, b[c].values)


@pytest.mark.parametrize("dtype,pool", [("float32", None), ("float16", "mean")])
def test_a_store_holds_the_numbers_of_a_netcdf_file(model, stim, tmp_path, dtype, pool):
    csv = tmp_path / "meta.csv"                      # metadata of every kind becomes the same coordinates
    pd.DataFrame({"stimulus": stim.ids, "odd": [i % 2 == 1 for i in range(N)], "size": np.arange(N) * 3,
                  "score": np.linspace(-1, 1, N), "note": [f"n{i} é" for i in range(N)]}).to_csv(csv, index=False)
    stim = stim.with_metadata(csv)
    ref = vrnn.extract(model, stim, out=tmp_path / "ref.nc", batch_size=8, layers=LAYERS, dtype=dtype, pool=pool)
    tree = vrnn.extract(model, stim, out=tmp_path / "acts.zarr", batch_size=8, layers=LAYERS, dtype=dtype, pool=pool)
    assert (tmp_path / "acts.zarr").is_dir() and not (tmp_path / "acts.zarr.partial").exists()
    assert_equal(tree, ref)
    for c in ("odd", "size", "score", "note"):
        assert tree[c].dtype == ref[c].dtype and tree[c].dims == ("stimulus",)
        np.testing.assert_array_equal(vrnn.layer(tree, "gap")[c].values, vrnn.layer(ref, "gap")[c].values)
    assert tree.attrs["complete"] == 1 and tree.attrs["dtype"] == dtype
    if dtype == "float16":                       # 10 mantissa bits kept, as netCDF's BitRound keeps them
        v = vrnn.layer(tree, "it").values
        assert np.count_nonzero(v) > 0 and np.count_nonzero(v.view(np.uint32) & 0x1FFF) == 0
    # plain xarray reads it without vision-rnn, and without a warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with xr.open_datatree(tmp_path / "acts.zarr", engine="zarr") as plain:
            np.testing.assert_array_equal(plain["it"]["activation"].values, vrnn.layer(ref, "it").values)
            np.testing.assert_array_equal(plain["logits"].values, ref["logits"].values)
            assert plain.attrs["model"] == ref.attrs["model"] and plain.attrs["layers"] == ",".join(LAYERS)
            assert plain["label"].dims == ("stimulus",)
    r = run("info", tmp_path / "acts.zarr")
    assert r.exit_code == 0 and "complete  yes (6/6 batches done)" in r.stdout and "Zarr v3" in r.stdout
    ref.close()


def test_sharded_stores_open_and_merge_equal_to_one_run(model, stim, single, tmp_path):
    out = tmp_path / "acts.zarr"
    for i in range(3):
        vrnn.extract(model, stim, out=out, batch_size=8, layers=LAYERS, shard=(i, 3)).close()
    assert sorted(p.name for p in (tmp_path / "acts.zarr.shards").iterdir()) == [
        f"shard-0000{i}-of-00003.zarr" for i in range(3)]
    with vrnn.open_activations(out) as tree:
        assert_equal(tree, single)
        assert tree.attrs["n_stimuli"] == N
    r = run("info", out)
    assert r.exit_code == 0 and "3 of 3 shards complete" in r.stdout
    r = run("merge", out)
    assert r.exit_code == 0 and "merged 3 shards into" in r.stdout
    assert out.is_dir() and is_zarr(out)
    with vrnn.open_activations(out) as merged:
        assert_equal(merged, single)
        assert merged.attrs["complete"] == 1 and "shard_index" not in merged.attrs
    r = run("merge", out, "--overwrite", "--delete-shards")
    assert r.exit_code == 0 and "shards deleted" in r.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["acts.zarr"]          # nothing aside left behind
    r = run("merge", out)
    assert r.exit_code == 0 and "already a single activation" in r.stdout
    with vrnn.open_activations(out) as merged:
        assert_equal(merged, single)


def images(folder: Path, n: int = 24) -> Path:
    rng = np.random.default_rng(1)
    for i in range(n):
        d = folder / ("coat" if i % 2 else "bag")
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(d / f"{i:02d}.jpg")
    return folder


@pytest.mark.parametrize("fix", ["restore", "remove"])
def test_an_interrupted_store_resumes_to_the_numbers_of_one_run(tmp_path, fix):
    folder = images(tmp_path / "imgs")
    ids = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.jpg"))
    args = ["extract", "--model", "lateral", "--weights", "random", "--stimuli", folder, "--batch-size", "4",
            "--layers", "v4,gap", "-q", "--workers", "0"]
    victim = folder / ids[13]                                   # batch 3 stops on a truncated JPEG
    ref = tmp_path / "ref.nc"
    if fix == "remove":                                         # the store is carried over to 23 stimuli
        shutil.move(victim, tmp_path / "aside.jpg")
    assert run(*args, "-o", ref).exit_code == 0
    if fix == "remove":
        shutil.move(tmp_path / "aside.jpg", victim)
    original = victim.read_bytes()
    victim.write_bytes(original[: len(original) // 2])
    out = tmp_path / "acts.zarr"
    r = run(*args, "-o", out)
    assert r.exit_code == 2 and "--resume" in error_line(r)
    partial = tmp_path / "acts.zarr.partial"
    assert partial.is_dir() and not out.exists()
    r = run("info", partial)
    assert r.exit_code == 0 and "no: 12 of 24 stimuli written" in r.stdout
    with pytest.raises(vrnn.VRNNError, match="incomplete activation file"):
        vrnn.open_activations(partial)
    with vrnn.open_activations(partial, allow_incomplete=True) as part, vrnn.open_activations(ref) as whole:
        assert part.sizes["stimulus"] == 12
        np.testing.assert_array_equal(vrnn.layer(part, "v4").values, vrnn.layer(whole, "v4").values[:12])
    if fix == "restore":
        victim.write_bytes(original)
    else:
        victim.unlink()
    r = run(*args, "-o", out, "--resume")
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["acts.zarr", "imgs", "ref.nc"]
    with vrnn.open_activations(out) as a, vrnn.open_activations(ref) as b:
        assert_equal(a, b, ["v4", "gap"])
    # a complete store is replaced only with --overwrite, and then whole
    r = run(*args, "-o", out)
    assert r.exit_code == 2 and "--overwrite" in error_line(r)
    assert run(*args, "-o", out, "--overwrite", "--layers", "gap").exit_code == 0
    with vrnn.open_activations(out) as a:
        assert list(a.children) == ["gap"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["acts.zarr", "imgs", "ref.nc"]


@pytest.mark.slow
def test_analyze_reads_a_store_as_it_reads_a_file(model, stim, single, tmp_path):
    vrnn.extract(model, stim, out=tmp_path / "acts.zarr", batch_size=8, layers=LAYERS).close()
    with vrnn.open_activations(tmp_path / "acts.zarr") as tree:
        a = vrnn.analysis.summary(tree)
    b = vrnn.analysis.summary(single)
    xr.testing.assert_identical(a.drop_attrs(), b.drop_attrs())
    r = run("analyze", tmp_path / "acts.zarr", "-o", tmp_path / "report", "--bootstrap", "0")
    assert r.exit_code == 0, r.output
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    assert summary["data_vars"]["accuracy"]["data"] == pytest.approx(b["accuracy"].values.tolist())


@pytest.mark.slow
def test_compare_reads_a_store_as_it_reads_a_file(tmp_path):
    k92 = f"kriegeskorte92:{K92}"
    tables = []
    for name in ("k92.nc", "k92.zarr"):
        r = run("extract", "--model", "lateral", "--weights", "random", "--stimuli", k92, "--pool", "mean",
                "-o", tmp_path / name, "-q")
        assert r.exit_code == 0, r.output
        r = run("compare", tmp_path / name, k92, "-o", tmp_path / f"report_{name}", "--bootstrap", "20")
        assert r.exit_code == 0, r.output
        tables.append(pd.read_csv(tmp_path / f"report_{name}" / "comparison.csv"))
    pd.testing.assert_frame_equal(tables[0], tables[1])


@pytest.mark.parametrize("what", ["folder", "empty store", "file"])
def test_what_is_not_a_store_is_refused_in_one_line(tmp_path, what):
    if what == "folder":
        path = tmp_path / "plain"
        path.mkdir()
        expect = "is a folder"
    elif what == "empty store":
        path = tmp_path / "x.zarr"
        path.mkdir()
        expect = "not a readable Zarr v3 store"
    else:
        path = tmp_path / "x.zarr"
        path.write_text("not a store")
        expect = "not a Zarr store"
    for cmd in (("info", path), ("analyze", path, "-o", tmp_path / "rep")):
        r = run(*cmd)
        assert r.exit_code == 2 and expect in error_line(r), r.output
    if what == "folder":
        r = run("extract", "--model", "lateral", "--weights", "random", "--stimuli", "builtin:fashion-mnist",
                "-o", path, "-q")
        assert r.exit_code == 2 and "is a folder; name a file (NAME.nc) or a Zarr store (NAME.zarr)" in error_line(r)
    assert not (tmp_path / "rep").exists()


@pytest.mark.parametrize("name,expect", [("a.zarr", True), ("a.zarr.partial", True), ("a.zarr.partial.carry", True),
                                         (".merging-12.a.zarr", True), ("a.nc", False), ("a.nc.partial", False),
                                         ("zarr", False), ("a.zarr.nc", False)])
def test_which_names_are_stores(name, expect):
    assert is_zarr(name) is expect


float32s = arrays(np.float32, st.integers(1, 64),
                  elements=st.floats(width=32, allow_nan=True, allow_infinity=True, allow_subnormal=True))


@settings(max_examples=40, deadline=None)
@given(values=float32s)
def test_bitround_is_netcdf_bitround(tmp_path_factory, values):
    """float16 stores round as netCDF-C's BitRound quantizer rounds, for any float32."""
    import netCDF4

    path = tmp_path_factory.mktemp("q") / "q.nc"
    with netCDF4.Dataset(path, "w") as ds:
        ds.createDimension("n", values.size)
        v = ds.createVariable("x", "f4", ("n",), significant_digits=10, quantize_mode="BitRound", fill_value=False)
        v.set_auto_maskandscale(False)
        v[:] = values
    with netCDF4.Dataset(path) as ds:
        ds["x"].set_auto_maskandscale(False)
        expect = np.asarray(ds["x"][:])
    got = bitround(values)
    np.testing.assert_array_equal(got.view(np.uint32), expect.view(np.uint32))
    shutil.rmtree(path.parent)
