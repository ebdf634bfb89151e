"""`vrnn analyze`, `vrnn demo`, the report files and the figures."""

import json
import subprocess
import sys

import numpy as np
import pytest
import xarray as xr

from vision_rnn import plotting
from vision_rnn.analysis import readout_measures, summarize
from matplotlib.collections import LineCollection
from matplotlib.text import Text
from vision_rnn.report import FIGURES, _figures, analyze, network_table

from synthetic import settling_network, write_activations
from clirun import run, error_line as one_error_line
from figcheck import texts_outside

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
    s = analyze(acts, tmp_path / "rep", n_bootstrap=0)
    for name in FIGURES:
        data = (tmp_path / "rep" / f"{name}.png").read_bytes()
        assert data.startswith(PNG) and len(data) > 5000
    d = json.loads((tmp_path / "rep" / "summary.json").read_text())
    np.testing.assert_allclose(d["data_vars"]["accuracy"]["data"], s["accuracy"].values)
    assert d["attrs"]["layer"] == "gap" and d["attrs"]["readout"] == "stored"
    md = (tmp_path / "rep" / "summary.md").read_text()
    assert "| L2 norm |" in md and "| stable-correct |" in md and "## Accuracy per step" in md
    assert not list((tmp_path / "rep").glob("*.partial"))


def _texts(fig):
    return [t.get_text() for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]


def _legend_texts(fig):
    return [t.get_text() for leg in fig.legends + [ax.get_legend() for ax in fig.axes if ax.get_legend()]
            for t in leg.get_texts()]


def test_figures_are_labelled(acts):
    m = readout_measures(acts)
    s = summarize(m)
    figs = [f() for f in _figures(s, m).values()]
    for fig in figs:
        for ax in fig.axes:
            if ax.get_label() == "<colorbar>":
                assert ax.get_ylabel() == "model step t"
                continue
            assert ax.get_xlabel() and ax.get_ylabel(), fig
            assert ax.get_title() or fig.get_suptitle(), fig
    for fig in figs[:6]:
        assert _legend_texts(fig), fig
    zones = figs[5]
    assert "start in the" in zones.get_suptitle() and "boundary" in " ".join(_legend_texts(zones))


@pytest.mark.parametrize("layer", [None, "v1"])
@pytest.mark.parametrize("long_names", [False, True])
def test_every_analyze_figure_lies_inside_its_canvas(acts, layer, long_names):
    m = readout_measures(acts, layer)
    if long_names:      # a long model name and weights path, as the CCN23 checkpoints have
        m.attrs.update(model="ccn23/blt_bottom_up_lateral_top_down_multiplicative_seed3",
                       weights="pretrained:ccn23_blt_lateral_topdown_multiplicative_seed3_epoch100.safetensors")
    s = summarize(m)
    for name, make in _figures(s, m).items():
        fig = make()
        assert texts_outside(fig) == [], name


def test_wilson_interval_known_values():
    low, high = plotting.wilson_interval([0.5, 0.0, 1.0], 100)
    # 50, 0 and 100 successes of 100 (Wilson 1927; e.g. statsmodels' proportion_confint method="wilson")
    np.testing.assert_allclose(low, [0.40383, 0.0, 0.96300], atol=1e-5)
    np.testing.assert_allclose(high, [0.59617, 0.03700, 1.0], atol=1e-5)


def test_accuracy_axis_follows_the_data_and_marks_chance(acts):
    s = summarize(readout_measures(acts))
    acc = 100 * s["accuracy"].values
    n = s.attrs["n_labelled"]
    fig = plotting.plot_accuracy(s)
    ax = fig.axes[0]
    low, high = (100 * b for b in plotting.wilson_interval(s["accuracy"].values, n))
    bottom, top = ax.get_ylim()
    assert bottom <= low.min() and top >= high.max()
    assert top - bottom < 1.5 * (max(high.max(), acc.max()) - min(low.min(), acc.min())) + 1.0
    assert f"{n} labelled" in ax.get_ylabel()
    chance = 100 / s.attrs["n_classes"]
    legend = " ".join(_legend_texts(fig))
    if bottom <= chance <= top:
        assert any(np.allclose(l.get_ydata(), chance) for l in ax.get_lines() if l.get_linestyle() == "--")
    else:
        assert "below the axis" in legend or "above the axis" in legend
    # a curve at 90-92 % is drawn on an axis of a few points, not 0-100
    flat = s.copy()
    flat["accuracy"] = ("time", np.linspace(0.902, 0.916, s.sizes["time"]))
    flat.attrs["n_labelled"] = 500
    ax = plotting.plot_accuracy(flat).axes[0]
    assert ax.get_ylim()[0] > 80 and ax.get_ylim()[1] < 100
    assert "chance 20% (1/5), below the axis" in " ".join(_legend_texts(ax.figure))


def test_fitted_layer_has_its_own_accuracy_curves(acts, tmp_path):
    m = readout_measures(acts, "v1")
    s = summarize(m)
    np.testing.assert_allclose(s["layer_accuracy"].values, (m["zone"] == m["label"]).mean("stimulus").values)
    cv = s["layer_cv_accuracy"].values
    assert cv.shape == (s.sizes["time"],) and np.all((cv >= 0) & (cv <= 1))
    # the network's own readout still gives accuracy and the categories
    np.testing.assert_allclose(s["accuracy"].values, (m["prediction"] == m["label"]).mean("stimulus").values)
    legend = " ".join(_legend_texts(plotting.plot_accuracy(s)))
    assert "network's readout (gap): defines the stability categories" in legend
    assert "fitted v1 readout" in legend and "cross-validated" in legend
    assert "categories from the network's readout (gap)" in plotting.plot_stability(s).get_suptitle()
    analyze(acts, tmp_path / "rep", layer="v1", n_bootstrap=0)
    md = (tmp_path / "rep" / "summary.md").read_text()
    assert "| network readout (gap) |" in md and "| fitted v1 readout, cross-validated |" in md
    assert "stability categories come from the network's own readout (gap)" in md


def test_fit_readout_cross_validated_accuracy_per_step():
    """Class information only from step 2 on: chance before, near perfect after."""
    from vision_rnn.analysis import fit_readout

    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), 30)
    x = rng.normal(size=(labels.size, 5, 40))
    x[:, 2:, :4] += 6.0 * np.eye(4)[labels][:, None, :]
    act = xr.DataArray(x, dims=("stimulus", "time", "unit"), coords={"label": ("stimulus", labels)})
    w = fit_readout(act)
    per_step = np.array(w.attrs["cv_accuracy_per_step"])
    assert per_step[:2].max() < 0.5 and per_step[2:].min() > 0.9
    assert w.attrs["cv_accuracy"] == pytest.approx(per_step.mean(), abs=0.05)


def test_norm_and_peripherality_show_the_group_sizes(acts):
    m = readout_measures(acts)
    s = summarize(m)
    sc = m["category"].values == "stable-correct"
    ts = m["t_stable"].values[sc]
    for t in range(s.sizes["time"]):
        assert s["status_count"].sel(status="correct").values[t] == (ts <= t).sum()
        assert s["status_count"].sel(status="not_yet").values[t] == (ts > t).sum()
    for fig in (plotting.plot_norm(s), plotting.plot_peripherality(s)):
        texts = _texts(fig)
        for status in ("correct", "not_yet"):
            y = s["norm" if "Norm" in fig.axes[0].get_title() else "peripherality"].sel(status=status).values
            n = s["status_count"].sel(status=status).values
            assert all(str(int(k)) in texts for k in n[np.isfinite(y)])


def test_zone_figure_never_draws_an_empty_panel(acts):
    m = readout_measures(acts)
    i, j, movers, pool = plotting.pick_zone_pair(m)
    assert pool == "stable-correct" and movers.any()
    assert (m["zone"].values[movers, 0] == j).all() and (m["label"].values[movers] == i).all()
    assert (m["zone"].values[movers, -1] == i).all()
    # no stable-correct mover, but an unstable one: that one is shown, and the title says so
    zone, labels = m["zone"].values, m["label"].values
    every = (zone[:, 0] != labels) & (zone[:, -1] == labels)
    only = m.copy()
    only["category"] = ("stimulus", np.where(every, "unstable-correct", "stable-incorrect"))
    i2, j2, movers2, pool2 = plotting.pick_zone_pair(only)
    assert pool2 == "labelled" and (i2, j2) == (i, j) and (movers2 == movers).all()
    assert "no stable-correct stimulus does" in plotting.plot_zones(only).get_suptitle()
    # nobody ever outside its class's zone: no trajectories, no colour bar, and the title says why
    still = m.copy()
    still["zone"] = (("stimulus", "time"), np.repeat(m["label"].values[:, None], m.sizes["time"], 1))
    fig = plotting.plot_zones(still)
    assert "No labelled stimulus starts outside its class's zone" in fig.get_suptitle()
    assert len(fig.axes) == 1 and not any(isinstance(c, LineCollection) for c in fig.axes[0].collections)


def test_drift_legend_promises_only_what_it_draws(acts):
    s = summarize(readout_measures(acts))
    groups = [t for t in s["drift"]["t_stable"].values if np.isfinite(s["drift"].sel(t_stable=t)).any()]
    assert max(groups) >= 1
    assert "move into the step of settling" in _legend_texts(plotting.plot_drift(s))
    zero_only = s.copy()
    zero_only["drift"] = s["drift"].where(s["drift"]["t_stable"] == 0)
    assert "move into the step of settling" not in _legend_texts(plotting.plot_drift(zero_only))


def test_dendrogram_title_names_model_layer_and_readout(acts):
    for layer, words in ((None, "the network's readout of layer gap"), ("v1", "readout fitted to layer v1")):
        m = readout_measures(acts, layer)
        title = plotting.plot_dendrogram(m["readout_weight"], source=m).axes[0].get_title().replace("\n", " ")
        assert "synthetic" in title and words in title


def test_cli_analyze_and_fitted_layer(acts, tmp_path):
    r = run("analyze", acts, "-o", tmp_path / "rep", "--bootstrap", "0")
    assert r.exit_code == 0, r.output
    assert "report on layer gap (stored readout)" in r.stdout
    r = run("analyze", acts, "-o", tmp_path / "rep_v1", "--layer", "v1", "--bootstrap", "0")
    assert r.exit_code == 0, r.output
    assert "layer v1 (fitted" in r.stdout
    assert json.loads((tmp_path / "rep_v1" / "summary.json").read_text())["attrs"]["layer"] == "v1"


def test_cli_analyze_user_errors_exit_2(acts, tmp_path):
    r = run("analyze", tmp_path / "missing.nc", "-o", tmp_path / "rep")
    assert r.exit_code == 2 and "no such activation file" in one_error_line(r)
    r = run("analyze", acts, "-o", tmp_path / "rep", "--layer", "v4")
    assert r.exit_code == 2 and "--layer v4: not in" in one_error_line(r)


def test_cli_analyze_of_unlabelled_photos_is_label_free(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    photos = tmp_path / "my_photos" / "holiday"                 # a folder that is none of the model's classes
    photos.mkdir(parents=True)
    for i in range(24):
        Image.fromarray(rng.integers(0, 255, (30 + i, 40, 3), dtype=np.uint8)).save(photos / f"p{i:02d}.png")
    r = run("extract", "--model", "lateral", "--stimuli", tmp_path / "my_photos", "-o", tmp_path / "p.nc", "-q")
    assert r.exit_code == 0, r.output
    r = run("analyze", tmp_path / "p.nc", "-o", tmp_path / "rep", "-q", "--bootstrap", "0")
    assert r.exit_code == 0, r.output
    assert "label-free" in r.stdout and "agreement with the last step" in r.stdout
    for name in FIGURES:
        assert (tmp_path / "rep" / f"{name}.png").exists(), name
    assert json.loads((tmp_path / "rep" / "summary.json").read_text())["attrs"]["label_free"] == 1


def test_cli_analyze_without_a_stored_readout_fits_one(tmp_path):
    """A file whose logits are no linear map of a stored layer (a recorded model): the layer gets a fitted
    readout; its zones follow the labels planted in the activations."""
    rng = np.random.default_rng(0)
    dims = ("stimulus", "time")
    labels = np.arange(30) % 2
    logits = np.zeros((30, 3, 2), np.float32)
    logits[np.arange(30), :, labels] = 1.0                       # correct at every step
    act = rng.normal(size=(30, 3, 4)).astype(np.float32) * 0.1
    act[:, :, 0] += np.where(labels == 0, 1.0, -1.0)[:, None]      # unit 0 carries the class
    root = xr.Dataset({"logits": (dims + ("class",), logits)},
                      coords={"stimulus": [f"s{i}" for i in range(30)], "time": [0, 1, 2], "class": ["x", "y"],
                              "label": ("stimulus", labels)},
                      attrs={"vision_rnn_version": "0.1.0", "layers": "gap", "readout_layer": "", "complete": 1,
                             "n_stimuli": 30, "batch_size": 30, "batches_done": 1})
    path = tmp_path / "noreadout.nc"
    xr.DataTree.from_dict({"/": root, "/gap": xr.Dataset({"activation": (dims + ("unit",), act)})}).to_netcdf(path)
    r = run("analyze", path, "-o", tmp_path / "rep", "--bootstrap", "0")
    assert r.exit_code == 0, r.output
    summary = json.loads((tmp_path / "rep" / "summary.json").read_text())
    assert summary["attrs"]["readout"].startswith("fitted") and summary["attrs"]["layer"] == "gap"
    assert summary["attrs"]["readout_layer"] == "logits"
    assert summary["data_vars"]["layer_accuracy"]["data"] == [1.0, 1.0, 1.0]


def test_analyze_does_not_import_torch(acts, tmp_path):
    code = ("import sys\nfrom vision_rnn.cli import main\n"
            f"try:\n    main(['analyze', {str(acts)!r}, '-o', {str(tmp_path / 'rep')!r}, '--bootstrap', '20'])\n"
            "except SystemExit as e:\n    assert e.code in (0, None), e.code\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\nprint('ok')\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip().endswith("ok"), r.stderr
    assert (tmp_path / "rep" / "zones.png").exists()


def test_network_table_has_one_row_per_network(acts):
    s = summarize(readout_measures(acts))
    table = network_table({"BL": s, "BT": s})
    lines = table.strip().splitlines()
    assert len(lines) == 9 and lines[2].startswith("| BL |") and "norm: not yet" in lines[0]
    assert "moved at k=1" in lines[5] and lines[7].startswith("| BL |") and lines[8].startswith("| BT |")


def test_demo_with_random_weights(tmp_path):
    r = run("demo", "--weights", "random", "--limit", "20", "-o", tmp_path / "demo", "--bootstrap", "0")
    assert r.exit_code == 0, r.output
    assert "accuracy per step (%):" in r.stdout and "| L2 norm |" in r.stdout
    assert f"report: {tmp_path / 'demo'}" in r.stdout
    for name in FIGURES + ("summary",):
        assert list((tmp_path / "demo").glob(f"{name}.*")), name
    assert (tmp_path / "demo" / "lateral_fashion-mnist.nc").exists()
    # a second demo in the same folder replaces the first only with --overwrite
    before = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "demo").iterdir()}
    r = run("demo", "--weights", "random", "--limit", "20", "-o", tmp_path / "demo", "--bootstrap", "0")
    assert r.exit_code == 2 and "--overwrite" in one_error_line(r)
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "demo").iterdir()} == before
    r = run("demo", "--weights", "random", "--limit", "20", "-o", tmp_path / "demo", "--overwrite", "--bootstrap", "0")
    assert r.exit_code == 0, r.output
    after = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "demo").iterdir()}
    assert set(after) == set(before) and all(after[k] > before[k] for k in before)
