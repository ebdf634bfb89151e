"""Extraction into the DataTree layout and the streaming netCDF store."""

import math
import os
import signal
import subprocess
import sys
import time

import netCDF4
import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
import xarray as xr
from PIL import Image

import vision_rnn as vrnn
from vision_rnn.store import LAYER_CHUNK_BYTES, VarSpec, read_attrs
from vision_rnn.stimuli import prepare


@pytest.fixture(scope="module")
def photo_folder(tmp_path_factory):
    """Photos of mixed sizes and modes, in class folders; pairs that must agree."""
    root = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:48, 0:64]
    base = np.stack([xx * 4, yy * 5, (xx + yy) * 2], axis=2).clip(0, 255).astype(np.uint8)
    base[10:30, 20:40] = rng.integers(0, 255, (20, 20, 3))
    for d in ("trouser", "bag", "misc"):
        (root / d).mkdir()
    Image.fromarray(base).save(root / "trouser" / "rgb.png")
    Image.fromarray(base).convert("RGBA").save(root / "trouser" / "rgba.png")
    grey = np.asarray(Image.fromarray(base).convert("L"))
    Image.fromarray(grey).save(root / "bag" / "grey8.png")
    Image.fromarray(grey.astype(np.uint16) * 257).save(root / "bag" / "grey16.png")
    Image.fromarray(rng.integers(0, 255, (90, 40, 3), dtype=np.uint8)).save(root / "misc" / "tall.jpg", quality=95)
    Image.fromarray(base).quantize(16).save(root / "misc" / "palette.gif")
    Image.fromarray(base).save(root / "top.bmp")
    return root


def test_in_memory_layout_and_values(model):
    stim = vrnn.load_stimuli("builtin:fashion-mnist").subset(range(0, 500, 50))
    tree = vrnn.extract(model, stim, batch_size=4)
    assert isinstance(tree, xr.DataTree)
    assert list(tree.children) == ["v1", "v2", "v4", "it", "gap"]
    assert list(tree["stimulus"].values) == stim.ids
    assert list(tree["time"].values) == list(range(8))
    assert list(tree["class"].values) == model.classes
    assert list(tree["label"].values) == list(range(10))  # one per class, folder names resolved
    for key in ("model", "model_config", "weights", "weights_sha256", "seed", "vision_rnn_version", "created",
                "stimuli_source", "input_size", "readout_layer", "pool", "dtype", "compression", "complete",
                "batches_done"):
        assert key in tree.attrs, key
    assert tree.attrs["complete"] == 1 and tree.attrs["readout_layer"] == "gap"
    x = prepare(stim.load(range(len(stim))), 32, model.mean, model.std)
    with torch.no_grad():
        ref = model.run(x)
    np.testing.assert_allclose(tree["logits"].values, ref["logits"].numpy(), atol=1e-5)
    v1 = vrnn.layer(tree, "v1")
    assert v1.dims == ("stimulus", "time", "unit") and v1.sizes["unit"] == 16 * 32 * 32
    assert "label" in v1.coords and "label_name" in v1.coords
    np.testing.assert_allclose(v1.values, ref["v1"].reshape(10, 8, -1).numpy(), atol=1e-5)
    u = 5 * 1024 + 7 * 32 + 9  # channel 5, row 7, col 9
    assert (int(v1.channel[u]), int(v1.row[u]), int(v1.col[u])) == (5, 7, 9)
    np.testing.assert_array_equal(tree["readout_weight"].values, model.readout.weight.detach().numpy())
    assert "readout_bias" not in tree


def test_folder_to_netcdf(model, photo_folder, tmp_path):
    out = tmp_path / "acts.nc"
    vrnn.extract(model, photo_folder, out=out, batch_size=3)
    assert out.exists() and not (tmp_path / "acts.nc.partial").exists()
    tree = xr.open_datatree(out)  # plain xarray reads it
    ids = [str(s) for s in tree["stimulus"].values]
    assert ids == ["bag/grey16.png", "bag/grey8.png", "misc/palette.gif", "misc/tall.jpg", "top.bmp",
                   "trouser/rgb.png", "trouser/rgba.png"]
    labels = dict(zip(ids, tree["label"].values.tolist()))
    assert labels["trouser/rgb.png"] == 1 and labels["bag/grey8.png"] == 8
    assert labels["misc/tall.jpg"] == -1 and labels["top.bmp"] == -1
    lazy = vrnn.open_activations(out)
    for name in lazy.children:
        a = vrnn.layer(lazy, name)
        assert a.chunks is not None  # dask-backed
        assert not np.isnan(a.values).any()
    v2 = vrnn.layer(lazy, "v2")
    # same pixels -> same activations (up to float rounding of different batch positions)
    same = dict(atol=1e-5, rtol=0)
    np.testing.assert_allclose(v2.sel(stimulus="trouser/rgb.png").values, v2.sel(stimulus="trouser/rgba.png").values, **same)
    np.testing.assert_allclose(v2.sel(stimulus="bag/grey8.png").values, v2.sel(stimulus="bag/grey16.png").values, **same)
    assert np.abs(v2.sel(stimulus="trouser/rgb.png").values - v2.sel(stimulus="bag/grey8.png").values).max() > 0.1
    lazy.close()
    tree.close()


def test_options_pool_dtype_compression(model, tmp_path):
    stim = vrnn.load_stimuli("builtin:fashion-mnist").subset(range(20))
    ref = vrnn.extract(model, stim, layers=["v4", "it"])
    pooled = vrnn.extract(model, stim, layers=["v4", "it"], pool="mean", dtype="float16",
                          compression="zlib", out=tmp_path / "p.nc", timesteps=10)
    assert pooled.sizes["time"] == 10
    it = vrnn.layer(pooled, "it")
    assert it.sizes["unit"] == 128
    assert not (it.values.view(np.uint32) & 0x1FFF).any()  # float16 precision: 10 mantissa bits kept
    full = vrnn.layer(ref, "it").values.reshape(20, 8, 128, 16).mean(axis=3)
    np.testing.assert_allclose(it.values[:, :8].astype(np.float32), full, rtol=2e-3, atol=2e-3)
    assert pooled.attrs["pool"] == "mean" and pooled.attrs["compression"] == "zlib"
    with netCDF4.Dataset(tmp_path / "p.nc") as ds:
        assert ds["it"]["activation"].filters()["zlib"]
    retina = vrnn.extract(model, stim.subset(range(2)), layers=["retina"])
    assert vrnn.layer(retina, "retina").sizes["unit"] == 16 * 32 * 32


def test_chunks_are_one_step_of_a_batch_capped_near_2mib():
    spec = VarSpec("v1", "v1", 128 * 64 * 64, "float32", spatial=(128, 64, 64))
    b, t, u = spec.chunks(64, 10)
    assert b == 64 and t == 1
    assert b * t * u * 4 <= LAYER_CHUNK_BYTES * 1.01 and u * math.ceil(spec.n / u) >= spec.n
    assert VarSpec("gap", "gap", 512, "float32").chunks(64, 10) == (64, 1, 512)
    assert VarSpec("v1", "v1", 16384, "float32").chunks(64, 8) == (64, 1, 8192)     # 2 MiB: two chunks a step
    assert VarSpec("logits", None, 10, "float32").chunks(64, 10) == (64, 10, 10)   # all steps of a batch


LAYOUT_COLLISIONS = ["channel", "unit", "row", "col", "time_ms", "logits", "gap", "v1", "retina",
                     "readout_weight", "readout_bias", "activation", "label", "class", "feature", "time"]
BAD_NAMES = ["a/b", "with space", "tab\there", ".hidden", "-dash", "trailing "]


@pytest.mark.parametrize("column", LAYOUT_COLLISIONS + BAD_NAMES)
def test_metadata_columns_that_do_not_fit_the_file_are_refused_before_writing(column, tmp_path):
    import pandas as pd
    from click.testing import CliRunner

    from vision_rnn.cli import main

    stim = vrnn.load_stimuli("builtin:fashion-mnist").subset(range(4))
    csv = tmp_path / "meta.csv"
    pd.DataFrame({"stimulus": stim.ids, column: range(4), "fine": range(4)}).to_csv(csv, index=False)
    out = tmp_path / "o.nc"
    r = CliRunner().invoke(main, ["extract", "--model", "lateral", "--stimuli", "builtin:fashion-mnist",
                                  "--metadata", str(csv), "-o", str(out)])
    assert r.exit_code == 2, r.output
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and "meta.csv" in lines[0] and repr(column) in lines[0] and "'fine'" not in lines[0]
    assert [p.name for p in tmp_path.iterdir()] == ["meta.csv"]
    # the Python API refuses the same column set on a Stimuli directly, before anything is written
    stim.metadata = pd.DataFrame({column: range(4)}, index=stim.ids)
    with pytest.raises(vrnn.VRNNError, match="cannot be stored"):
        vrnn.extract(vrnn.load_model("lateral", weights="random"), stim, layers=["gap"], out=out)
    assert [p.name for p in tmp_path.iterdir()] == ["meta.csv"]


_names = st.one_of(st.sampled_from(LAYOUT_COLLISIONS + BAD_NAMES + ["ok", "Größe", "_x", "9lives", "a.b", "é"]),
                   st.text(min_size=1, max_size=12))


@given(name=_names)
def test_any_metadata_column_is_refused_or_round_trips(name, model, tmp_path_factory):
    """Property: a column name is refused with one line before anything is written, or the extracted
    file holds it as a coordinate of every layer, with its values, and `vrnn info` reads the file."""
    import pandas as pd

    from vision_rnn.errors import StimuliError
    from vision_rnn.store import describe

    folder = tmp_path_factory.mktemp("names")
    stim = vrnn.load_stimuli("builtin:fashion-mnist").subset(range(3))
    csv = folder / "meta.csv"
    pd.DataFrame({"stimulus": stim.ids, name: [1.5, 2.5, 3.5]}).to_csv(csv, index=False)
    out = folder / "o.nc"
    try:
        s = vrnn.load_stimuli(stim, metadata=csv, layers=model.layer_names)
    except StimuliError as e:
        assert "\n" not in str(e) and "meta.csv" in str(e)
        assert sorted(p.name for p in folder.iterdir()) == ["meta.csv"]
        return
    column = s.metadata.columns[0]                               # as the CSV reader parsed it
    tree = vrnn.extract(model, s, layers=["gap"], out=out)
    try:
        gap = vrnn.layer(tree, "gap")
        assert column in gap.coords and list(gap[column].values) == [1.5, 2.5, 3.5]
        assert "complete  yes" in describe(out)
    finally:
        tree.close()


def test_metadata_columns_become_coords(model, tmp_path):
    stim = vrnn.load_stimuli("builtin:fashion-mnist").subset(range(6))
    csv = tmp_path / "meta.csv"
    csv.write_text("stimulus,size,animate\n" + "\n".join(f"{i},{k},no" for k, i in enumerate(stim.ids)))
    tree = vrnn.extract(model, vrnn.load_stimuli(stim, metadata=csv), layers=["gap"])
    gap = vrnn.layer(tree, "gap")
    assert list(gap["size"].values) == list(range(6))
    assert list(gap["animate"].values) == ["no"] * 6


def _run_cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "vision_rnn", *args], cwd=cwd, capture_output=True, text=True)


@pytest.mark.slow
def test_sigkill_then_resume_equals_uninterrupted(tmp_path):
    args = ["extract", "--model", "lateral", "--weights", "random", "--stimuli", "builtin:fashion-mnist",
            "--batch-size", "8", "--layers", "v1,it,gap"]
    full = tmp_path / "full.nc"
    assert _run_cli(*args, "-o", str(full)).returncode == 0
    out = tmp_path / "killed.nc"
    partial = tmp_path / "killed.nc.partial"
    proc = subprocess.Popen([sys.executable, "-m", "vision_rnn", *args, "-o", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while not partial.exists() and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(1.0)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    # the orphaned writer finishes its batch, syncs and exits
    done = None
    for _ in range(100):
        try:
            done = int(read_attrs(partial)["batches_done"])
            time.sleep(0.7)
            if int(read_attrs(partial)["batches_done"]) == done:
                break
        except Exception:
            time.sleep(0.1)
    assert partial.exists() and not out.exists()
    assert done is not None and done < 63, "the run finished before it was killed"
    r = _run_cli(*args, "-o", str(out), "--resume")
    assert r.returncode == 0, r.stderr
    assert not partial.exists()
    a, b = xr.open_datatree(full), xr.open_datatree(out)
    for name in ["logits", "label"]:
        np.testing.assert_array_equal(a[name].values, b[name].values)
    for name in ["v1", "it", "gap"]:
        np.testing.assert_array_equal(a[name]["activation"].values, b[name]["activation"].values)
    assert b.attrs["complete"] == 1 and b.attrs["batches_done"] == 63
    a.close()
    b.close()


def test_resume_refuses_a_mismatched_partial(tmp_path):
    args = ["extract", "--model", "lateral", "--weights", "random", "--stimuli", "builtin:fashion-mnist",
            "--layers", "gap", "-o", str(tmp_path / "a.nc")]
    partial = tmp_path / "a.nc.partial"
    stim = vrnn.load_stimuli("builtin:fashion-mnist")
    from vision_rnn.extract import extract

    # a .partial from an interrupted run with seed 0
    (tmp_path / "tmp.nc").unlink(missing_ok=True)
    extract(vrnn.load_model("lateral", weights="random", seed=0), stim, layers=["gap"], out=tmp_path / "a.nc")
    os.replace(tmp_path / "a.nc", partial)
    before = partial.read_bytes()
    r = _run_cli(*args, "--seed", "1", "--resume")
    assert r.returncode == 2
    assert "a.nc.partial" in r.stderr and "seed" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert partial.read_bytes() == before and not (tmp_path / "a.nc").exists()


# -- the input pipeline ---------------------------------------------------------------------------
@pytest.mark.parametrize("h, w", [(28, 28), (48, 40), (375, 500), (500, 375), (1, 1), (33, 97), (64, 65), (10, 700)])
@pytest.mark.parametrize("size", [32, 64])
def test_resize_and_crop_equal_torchvision(h, w, size):
    from torchvision.transforms.v2 import functional as TF

    from vision_rnn.stimuli import _resize_crop

    x = torch.rand(2, 3, h, w, generator=torch.Generator().manual_seed(h * w))
    ref = x if min(h, w) == size else TF.resize(x, size, interpolation=TF.InterpolationMode.BILINEAR, antialias=True)
    ref = TF.center_crop(ref, [size, size])
    assert torch.equal(_resize_crop(x, size), ref)


def test_prepare_in_bounded_parts_gives_the_same_numbers(monkeypatch):
    from vision_rnn import stimuli

    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (90, 120, 3), dtype=np.uint8) for _ in range(5)] + \
             [rng.integers(0, 256, (64, 64, 3), dtype=np.uint8) for _ in range(3)]
    whole = prepare(images, 32, (0.5, 0.4, 0.3), (0.2, 0.2, 0.2))
    monkeypatch.setattr(stimuli, "FLOAT_BYTES", 2 * 3 * 90 * 120 * 4)      # two images per part
    assert torch.equal(prepare(images, 32, (0.5, 0.4, 0.3), (0.2, 0.2, 0.2)), whole)
    assert torch.equal(prepare(np.stack(images[:5]), 32, (0.5, 0.4, 0.3), (0.2, 0.2, 0.2)), whole[:5])


def _smooth_photo(h, w, seed=0):
    """A smooth colour image (a JPEG decoded at reduced scale stays close to it)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    chans = [np.sin(2 * np.pi * (a * yy + b * xx) + c) for a, b, c in rng.uniform(0.5, 2.0, (3, 3))]
    return (127.5 + 127 * np.stack(chans, -1)).astype(np.uint8)


def test_large_jpegs_decode_at_reduced_scale_for_the_model(tmp_path):
    from vision_rnn.stimuli import decode_image

    path = tmp_path / "photo.jpg"
    Image.fromarray(_smooth_photo(900, 1200)).save(path, quality=95)
    small = decode_image(path, size=64)
    assert small.shape == (225, 300, 3)                       # 1/4 scale: both sides still >= 2 x 64
    assert decode_image(path, size=200).shape == (450, 600, 3)
    assert decode_image(path, size=500).shape == (900, 1200, 3)
    full = decode_image(path)
    a = prepare([small], 64, (0.5,) * 3, (0.25,) * 3)
    b = prepare([full], 64, (0.5,) * 3, (0.25,) * 3)
    assert float((a - b).abs().mean()) < 0.02                # the same picture
    png = tmp_path / "photo.png"                              # other formats decode whole
    Image.fromarray(full).save(png)
    assert decode_image(png, size=64).shape == (900, 1200, 3)


def test_training_and_extraction_see_the_same_large_jpeg(tmp_path):
    """A folder of large JPEGs as training data (for a 32-pixel model) and as stimuli: the same tensors."""
    from vision_rnn.datasets import make_batch, open_training_data

    for split, n in (("train", 3), ("val", 1)):
        for c in ("a", "b"):
            (tmp_path / "tree" / split / c).mkdir(parents=True)
            for i in range(n):
                Image.fromarray(_smooth_photo(400, 520, seed=i + 10 * ord(c))).save(
                    tmp_path / "tree" / split / c / f"{i}.jpg", quality=90)
    data = open_training_data(tmp_path / "tree", size=32)
    assert data.train.images[0].shape[:2] == (100, 130)       # decoded at 1/4 scale
    stim = vrnn.load_stimuli(tmp_path / "tree" / "train")
    _, x_stim = next(stim.batches(len(stim), 32, data.mean, data.std))
    x_train, _ = make_batch(data.train, range(len(data.train)), 32, data.mean, data.std)
    assert torch.equal(x_train, x_stim)


def test_decoding_workers_give_the_same_file(model, photo_folder, tmp_path):
    ref = vrnn.extract(model, photo_folder, out=tmp_path / "w0.nc", batch_size=2, layers=["v1", "gap"], workers=0)
    two = vrnn.extract(model, photo_folder, out=tmp_path / "w2.nc", batch_size=2, layers=["v1", "gap"], workers=2)
    with ref, two:
        np.testing.assert_array_equal(ref["logits"].values, two["logits"].values)
        for name in ("v1", "gap"):
            np.testing.assert_array_equal(vrnn.layer(ref, name).values, vrnn.layer(two, name).values)


def test_devices_auto_and_refusals(model):
    from vision_rnn.devices import resolve_device

    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device(None) == resolve_device("auto")
    for bad, words in (("gpu0", "not a device"), ("cuda:99", "CUDA device"), ("xla", "runs on auto, cpu, cuda or mps")):
        with pytest.raises(vrnn.VRNNError, match=words):
            vrnn.extract(model, "builtin:fashion-mnist", device=bad, layers=["gap"])
    with pytest.raises(vrnn.VRNNError, match="`workers=-1`"):
        vrnn.extract(model, "builtin:fashion-mnist", workers=-1, layers=["gap"])


def test_extraction_does_not_import_torchvision(tmp_path):
    code = ("import sys, vision_rnn as vrnn\n"
            "m = vrnn.load_model('lateral', weights='random')\n"
            f"vrnn.extract(m, 'builtin:fashion-mnist', layers=['gap'], out={str(tmp_path / 'a.nc')!r}).close()\n"
            "assert 'torchvision' not in sys.modules, 'torchvision was imported'\nprint('ok')\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr
