"""Shard sets: --shard I/N, one data set opened whole, `vrnn merge`, `vrnn info`, torchrun ranks."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import vision_rnn as vrnn
from clirun import error_line, run

LAYERS = ["v1", "gap"]
N = 43                     # 2 shards: 22 + 21; 3 shards: 15 + 14 + 14


@pytest.fixture(scope="module")
def single(model, stim, tmp_path_factory):
    return vrnn.extract(model, stim, out=tmp_path_factory.mktemp("single") / "one.nc", batch_size=8, layers=LAYERS)


def assert_equal(tree, ref):
    assert list(tree["stimulus"].values) == list(ref["stimulus"].values)
    np.testing.assert_array_equal(tree["label"].values, ref["label"].values)
    np.testing.assert_array_equal(tree["logits"].values, ref["logits"].values)
    for name in LAYERS:
        np.testing.assert_array_equal(vrnn.layer(tree, name).values, vrnn.layer(ref, name).values)


@pytest.mark.parametrize("count", [2, 3])
def test_uneven_shards_open_and_merge_equal_to_one_run(model, stim, single, tmp_path, count):
    out = tmp_path / "acts.nc"
    for i in range(count):
        vrnn.extract(model, stim, out=out, batch_size=8, layers=LAYERS, shard=(i, count)).close()
    assert not out.exists()
    sizes = [np.array_split(np.arange(N), count)[i].size for i in range(count)]
    assert len(set(sizes)) == 2                                    # uneven blocks
    with vrnn.open_activations(out) as tree:
        assert_equal(tree, single)
        assert tree.attrs["n_stimuli"] == N and "shard_index" not in tree.attrs
        s = vrnn.analysis.summary(tree)                             # analyses read the set as one file
    np.testing.assert_array_equal(s["accuracy"].values, vrnn.analysis.summary(single)["accuracy"].values)
    r = run("info", out)
    assert r.exit_code == 0 and f"{count} of {count} shards complete" in r.stdout
    r = run("merge", out)
    assert r.exit_code == 0 and f"merged {count} shards into" in r.stdout
    with vrnn.open_activations(out) as merged:
        assert_equal(merged, single)
        assert merged.attrs["complete"] == 1 and merged.attrs["n_stimuli"] == N
    # the merged file and its shards: merging again needs --overwrite; then the shards can go
    r = run("merge", out)
    assert r.exit_code == 2 and "--overwrite" in error_line(r)
    r = run("merge", out, "--overwrite", "--delete-shards")
    assert r.exit_code == 0 and "shards deleted" in r.stdout
    assert not (tmp_path / "acts.nc.shards").exists()
    r = run("merge", out)
    assert r.exit_code == 0 and "already a single activation file" in r.stdout


def test_an_incomplete_set_is_refused_naming_the_shards(model, stim, tmp_path):
    out = tmp_path / "acts.nc"
    for i in (0, 2):
        vrnn.extract(model, stim, out=out, batch_size=8, layers=LAYERS, shard=(i, 4)).close()
    with pytest.raises(vrnn.VRNNError, match=r"2 of 4 shards are not complete \(shard 1, 3\)"):
        vrnn.open_activations(out)
    r = run("merge", out)
    assert r.exit_code == 2 and "not complete" in error_line(r) and not out.exists()
    r = run("info", out)
    assert r.exit_code == 0 and "2 of 4 shards complete" in r.stdout and "not started: shard 1, 3" in r.stdout
    # an interrupted shard is named as such
    shard1 = tmp_path / "acts.nc.shards" / "shard-00001-of-00004.nc"
    shutil.copy(tmp_path / "acts.nc.shards" / "shard-00000-of-00004.nc", shard1.with_name(shard1.name + ".partial"))
    with pytest.raises(vrnn.VRNNError, match=r"shard 1 interrupted or running: resume it"):
        vrnn.open_activations(out)


def test_shards_written_with_other_settings_are_refused(model, stim, tmp_path):
    out = tmp_path / "acts.nc"
    vrnn.extract(model, stim, out=out, batch_size=8, layers=LAYERS, shard=(0, 2)).close()
    vrnn.extract(model, stim, out=out, batch_size=8, layers=["gap"], shard=(1, 2)).close()
    with pytest.raises(vrnn.VRNNError, match="written with different layers"):
        vrnn.open_activations(out)


@pytest.mark.parametrize("spec, words", [("3/3", "needs 0 <= I < N"), ("1", "write it I/N"), ("a/b", "write it I/N"),
                                         ("0/44", "44 shards for 43 stimuli")])
def test_bad_shard_specs_exit_2(stim, tmp_path, spec, words):
    r = run("extract", "--model", "lateral", "--weights", "random", "--stimuli", "builtin:fashion-mnist",
            "-o", tmp_path / "a.nc", "--shard", spec, "--layers", "gap") if "44" not in spec else None
    if r is None:                           # 44 shards of the 43 stimuli of the fixture
        with pytest.raises(vrnn.VRNNError, match=words):
            vrnn.extract(vrnn.load_model("lateral", weights="random"), stim, out=tmp_path / "a.nc", shard=spec)
        return
    assert r.exit_code == 2 and words in error_line(r) and "--shard" in error_line(r)
    assert not list(tmp_path.iterdir())


def test_skipped_images_of_every_shard_are_reported_together(tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "imgs"
    for i in range(12):
        (folder / "bag").mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(folder / "bag" / f"{i:02d}.png")
    for i in (1, 9):
        (folder / "bag" / f"{i:02d}.png").write_bytes(b"broken")
    out = tmp_path / "acts.nc"
    for i in range(2):
        r = run("extract", "--model", "lateral", "--weights", "random", "--stimuli", folder, "-o", out,
                "--shard", f"{i}/2", "--skip-bad", "--layers", "gap")
        assert r.exit_code == 0, r.output
    with vrnn.open_activations(out) as tree:
        assert json.loads(tree.attrs["skipped"]) == ["bag/01.png", "bag/09.png"]
        assert tree.sizes["stimulus"] == 10


@pytest.mark.slow
@pytest.mark.parametrize("suffix", [".nc", ".zarr"])
def test_torchrun_ranks_write_a_shard_set(single, tmp_path, suffix):
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or shutil.which("torchrun")
    out = tmp_path / f"acts{suffix}"
    cmd = [torchrun, "--standalone", "--nproc_per_node", "2", "-m", "vision_rnn", "extract", "--model", "lateral",
           "--weights", "random", "--stimuli", "builtin:fashion-mnist", "-o", str(out), "--batch-size", "8",
           "--layers", ",".join(LAYERS), "-q", "--workers", "0"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert sorted(p.name for p in (tmp_path / f"acts{suffix}.shards").iterdir()) == [
        f"shard-00000-of-00002{suffix}", f"shard-00001-of-00002{suffix}"]
    ref = vrnn.load_stimuli("builtin:fashion-mnist")
    with vrnn.open_activations(out) as tree:
        assert list(tree["stimulus"].values) == ref.ids
        sub = tree.isel(stimulus=slice(0, 430, 10))
        np.testing.assert_array_equal(sub["logits"].values, single["logits"].values)
        for name in LAYERS:
            np.testing.assert_array_equal(vrnn.layer(sub, name).values, vrnn.layer(single, name).values)
    r = run("merge", out)
    assert r.exit_code == 0, r.output
    with vrnn.open_activations(out) as merged:
        assert "shard_index" not in merged.attrs
        sub = merged.isel(stimulus=slice(0, 430, 10))
        np.testing.assert_array_equal(sub["logits"].values, single["logits"].values)
        for name in LAYERS:
            np.testing.assert_array_equal(vrnn.layer(sub, name).values, vrnn.layer(single, name).values)
