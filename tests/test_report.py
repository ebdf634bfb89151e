"""`vrnn analyze`, `vrnn demo`, the report files and the figures."""

import json
import subprocess
import sys

import numpy as np
import pytest
import xarray as xr

from vision_rnn import plotting
from vision_rnn.analysis import readout_measures, summarize
from vision_rnn.report import FIGURES, analyze, network_table

from synthetic import settling_network, write_activations
from clirun import run, error_line as one_error_line

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def acts(tmp_path_factory):
    gap, labels, w = settling_network(n_per_class=25, n_classes=5, timesteps=6, units=20)
    rng = np.random.default_rng(1)
    v1 = np.maximum(np.einsum("stu,uv->stv", gap, rng.normal(size=(20, 50))), 0).astype(np.float32)
    path = tmp_path_factory.mktemp("acts") / "acts.nc"
    return write_activations(path, {"v1": v1, "gap": gap}, labels, w, batch_size=16,
                             classes=["cat", "dog", "car", "van", "cup"])


def test_analyze_writes_every_figure_and_the_summary(acts, tmp_path):
    s = analyze(acts, tmp_path / "rep")
    for name in FIGURES:
        data = (tmp_path / "rep" / f"{name}.png").read_bytes()
        assert data.startswith(PNG) and len(data) > 5000
    d = json.loads((tmp_path / "rep" / "summary.json").read_text())
    np.testing.assert_allclose(d["data_vars"]["accuracy"]["data"], s["accuracy"].values)
    assert d["attrs"]["layer"] == "gap" and d["attrs"]["readout"] == "stored"
    md = (tmp_path / "rep" / "summary.md").read_text()
    assert "| L2 norm |" in md and "| stable-correct |" in md and "## Accuracy per step" in md
    assert not list((tmp_path / "rep").glob("*.partial"))


def test_figures_are_labelled(acts):
    m = readout_measures(acts)
    s = summarize(m)
    figs = [plotting.plot_accuracy(s), plotting.plot_stability(s), plotting.plot_drift(s), plotting.plot_norm(s),
            plotting.plot_peripherality(s), plotting.plot_zones(m), plotting.plot_dendrogram(m["readout_weight"])]
    for fig in figs:
        for ax in fig.axes:
            if ax.get_label() == "<colorbar>":
                assert ax.get_ylabel() == "model step t"
                continue
            assert ax.get_xlabel() and ax.get_ylabel() and ax.get_title(), fig
    for fig in figs[:6]:
        assert any(ax.get_legend() is not None for ax in fig.axes)
    zones = figs[5].axes[0]
    assert "start in the" in zones.get_title() and "boundary" in " ".join(
        t.get_text() for t in zones.get_legend().get_texts())


def test_cli_analyze_and_fitted_layer(acts, tmp_path):
    r = run("analyze", acts, "-o", tmp_path / "rep")
    assert r.exit_code == 0, r.output
    assert "report on layer gap (stored readout)" in r.stdout
    r = run("analyze", acts, "-o", tmp_path / "rep_v1", "--layer", "v1")
    assert r.exit_code == 0, r.output
    assert "layer v1 (fitted" in r.stdout
    assert json.loads((tmp_path / "rep_v1" / "summary.json").read_text())["attrs"]["layer"] == "v1"


def test_cli_analyze_user_errors_exit_2(acts, tmp_path):
    r = run("analyze", tmp_path / "missing.nc", "-o", tmp_path / "rep")
    assert r.exit_code == 2 and "no such activation file" in one_error_line(r)
    r = run("analyze", acts, "-o", tmp_path / "rep", "--layer", "v4")
    assert r.exit_code == 2 and "--layer v4: not in" in one_error_line(r)
    gap, _, w = settling_network(n_per_class=2, n_classes=3, timesteps=3, units=6)
    unlabelled = write_activations(tmp_path / "u.nc", {"gap": gap}, np.full(6, -1), w)
    r = run("analyze", unlabelled, "-o", tmp_path / "rep_u")
    assert r.exit_code == 2 and "has no labels" in one_error_line(r)
    assert not (tmp_path / "rep_u").exists()


def test_cli_analyze_without_readout_exit_2(tmp_path):
    dims = ("stimulus", "time")
    root = xr.Dataset({"logits": (dims + ("class",), np.ones((3, 2, 2), np.float32))},
                      coords={"stimulus": ["a", "b", "c"], "time": [0, 1], "class": ["x", "y"],
                              "label": ("stimulus", [0, 1, 0])},
                      attrs={"vision_rnn_version": "0.1.0", "layers": "gap", "readout_layer": "gap", "complete": 1,
                             "n_stimuli": 3, "batch_size": 3, "batches_done": 1})
    gap = xr.Dataset({"activation": (dims + ("unit",), np.ones((3, 2, 4), np.float32))})
    path = tmp_path / "noreadout.nc"
    xr.DataTree.from_dict({"/": root, "/gap": gap}).to_netcdf(path)
    r = run("analyze", path, "-o", tmp_path / "rep")
    assert r.exit_code == 2 and "has no readout" in one_error_line(r)


def test_analyze_does_not_import_torch(acts, tmp_path):
    code = ("import sys\nfrom vision_rnn.cli import main\n"
            f"try:\n    main(['analyze', {str(acts)!r}, '-o', {str(tmp_path / 'rep')!r}])\n"
            "except SystemExit as e:\n    assert e.code in (0, None), e.code\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\nprint('ok')\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip().endswith("ok"), r.stderr
    assert (tmp_path / "rep" / "zones.png").exists()


def test_network_table_has_one_row_per_network(acts):
    s = summarize(readout_measures(acts))
    table = network_table({"BL": s, "BT": s})
    lines = table.strip().splitlines()
    assert len(lines) == 4 and lines[2].startswith("| BL |") and "norm: not yet" in lines[0]


def test_demo_with_random_weights(tmp_path):
    r = run("demo", "--weights", "random", "--limit", "20", "-o", tmp_path / "demo")
    assert r.exit_code == 0, r.output
    assert "accuracy per step (%):" in r.stdout and "| L2 norm |" in r.stdout
    assert f"report: {tmp_path / 'demo'}" in r.stdout
    for name in FIGURES + ("summary",):
        assert list((tmp_path / "demo").glob(f"{name}.*")), name
    assert (tmp_path / "demo" / "lateral_fashion-mnist.nc").exists()
    # a second demo in the same folder replaces the first only with --overwrite
    before = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "demo").iterdir()}
    r = run("demo", "--weights", "random", "--limit", "20", "-o", tmp_path / "demo")
    assert r.exit_code == 2 and "--overwrite" in one_error_line(r)
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "demo").iterdir()} == before
    r = run("demo", "--weights", "random", "--limit", "20", "-o", tmp_path / "demo", "--overwrite")
    assert r.exit_code == 0, r.output
    after = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "demo").iterdir()}
    assert set(after) == set(before) and all(after[k] > before[k] for k in before)
