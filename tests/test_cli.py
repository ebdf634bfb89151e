"""The command line: success paths and every bad input (exit 2, one line, nothing left on disk)."""

import os

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from vision_rnn.cli import main


def run(*args, cwd=None):
    runner = CliRunner()
    if cwd is None:
        return runner.invoke(main, list(args), catch_exceptions=False)
    old = os.getcwd()
    os.chdir(cwd)
    try:
        return runner.invoke(main, list(args), catch_exceptions=False)
    finally:
        os.chdir(old)


def error_line(result):
    lines = [l for l in result.stderr.strip().splitlines() if l.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


def files_in(folder):
    return sorted(p.name for p in folder.iterdir())


@pytest.fixture
def images(tmp_path):
    folder = tmp_path / "stim"
    (folder / "coat").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 255, (36, 36, 3), dtype=np.uint8)).save(folder / "coat" / f"{i}.png")
    return folder


EXTRACT = ["extract", "--model", "lateral", "--weights", "random"]


def test_models_lists_names():
    r = run("models")
    assert r.exit_code == 0
    assert "lateral-topdown-mult" in r.output and "ccn23-64/lateral" in r.output


def test_extract_default_output_name_and_info(images, tmp_path):
    r = run(*EXTRACT, "--stimuli", str(images), "--layers", "it,gap", cwd=tmp_path)
    assert r.exit_code == 0, r.output
    out = tmp_path / "lateral_stim.nc"
    assert out.exists()
    assert "wrote lateral_stim.nc" in r.output and "3 stimuli x 8 steps" in r.output
    info = run("info", str(out))
    assert info.exit_code == 0
    for text in ("tiny/lateral", "it", "2048 units = 128x4x4", "complete  yes (1/1 batches done)", "MiB"):
        assert text in info.output


def test_default_output_replaces_odd_characters(tmp_path, images):
    from vision_rnn.cli import default_output

    assert str(default_output("ccn23-64/lateral", "my stim")) == "ccn23-64_lateral_my_stim.nc"


@pytest.mark.parametrize("case", ["missing", "empty", "no_images", "bad_images", "unknown_model", "unknown_layer",
                                  "exists"])
def test_bad_inputs_exit_2_and_leave_nothing(case, images, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    out = work / "o.nc"
    stim = images
    args = list(EXTRACT)
    expect = None
    if case == "missing":
        stim, expect = tmp_path / "nope", "nope"
    elif case == "empty":
        stim = tmp_path / "empty"
        stim.mkdir()
        expect = "empty"
    elif case == "no_images":
        stim = tmp_path / "docs"
        stim.mkdir()
        (stim / "readme.txt").write_text("x")
        expect = "docs"
    elif case == "bad_images":
        (images / "coat" / "zero.png").write_bytes(b"")
        (images / "coat" / "text.jpg").write_text("not an image")
        expect = "coat/zero.png"
    elif case == "unknown_model":
        args = ["extract", "--model", "laterl", "--weights", "random"]
        expect = "lateral-topdown-mult"
    elif case == "unknown_layer":
        args += ["--layers", "v1,v3"]
        expect = "v3"
    elif case == "exists":
        out.write_text("precious")
        expect = "--overwrite"
    r = run(*args, "--stimuli", str(stim), "-o", str(out))
    assert r.exit_code == 2
    line = error_line(r)
    assert expect in line, line
    if case == "bad_images":
        assert "coat/text.jpg" in line
    if case == "exists":
        assert out.read_text() == "precious" and files_in(work) == ["o.nc"]
    else:
        assert files_in(work) == []


def test_skip_bad_records_skipped(images, tmp_path):
    (images / "coat" / "zero.png").write_bytes(b"")
    out = tmp_path / "o.nc"
    r = run(*EXTRACT, "--stimuli", str(images), "-o", str(out), "--skip-bad", "--layers", "gap")
    assert r.exit_code == 0, r.output
    import vision_rnn as vrnn

    tree = vrnn.open_activations(out)
    assert tree.sizes["stimulus"] == 3 and "coat/zero.png" in tree.attrs["skipped"]
    tree.close()


def test_info_refuses_foreign_files(tmp_path):
    import xarray as xr

    other = tmp_path / "other.nc"
    xr.Dataset({"a": ("x", np.arange(3))}).to_netcdf(other)
    r = run("info", str(other))
    assert r.exit_code == 2 and "not an activation file" in error_line(r)
    text = tmp_path / "x.nc"
    text.write_text("hello")
    r = run("info", str(text))
    assert r.exit_code == 2 and "x.nc" in error_line(r)
    r = run("info", str(tmp_path / "missing.nc"))
    assert r.exit_code == 2


def test_partial_without_resume_is_refused(images, tmp_path):
    out = tmp_path / "o.nc"
    partial = tmp_path / "o.nc.partial"
    partial.write_text("an interrupted run")
    r = run(*EXTRACT, "--stimuli", str(images), "-o", str(out))
    assert r.exit_code == 2 and "--resume" in error_line(r)
    assert partial.read_text() == "an interrupted run"


def test_pretrained_missing_gives_a_clear_line(images, tmp_path):
    r = run("extract", "--model", "ccn23-64/lateral", "--stimuli", str(images), "-o", str(tmp_path / "o.nc"))
    assert r.exit_code == 2 and "--weights random" in error_line(r)
