"""The figures of `vrnn compare`: every text on the canvas, and what each figure shows for its data.

Every figure the report writes is built, with titles as long as real ones (a model with a
weights file and a long target description), for the 92-image set (static) and for a
simulated time-resolved recording with encoding models; each is rendered as it is saved.
"""

import numpy as np
import pytest
import xarray as xr

import vision_rnn as vrnn
from matplotlib.collections import PolyCollection
from matplotlib.container import ErrorbarContainer

from vision_rnn import recordings
from vision_rnn.compare import figures as pc
from vision_rnn.analysis import TimeMapping
from vision_rnn.compare import run_comparison
from vision_rnn.compare.report import figure_title

from figcheck import texts_outside
from test_compare import K92, extract_cli

pytestmark = pytest.mark.skipif(not K92.is_dir(), reason=f"92-image data not found at {K92} "
                                "(set VRNN_DATA to the shared data folder)")

WEIGHTS = "lateral_ecoset_epoch_030_lr0.001.safetensors"


def report_figures(c):
    """{file stem: Figure} as `vrnn compare` writes them (see vision_rnn.compare.report.write_report)."""
    figs = {}
    for name, ds in c.results.items():
        title = figure_title(c, name)
        figs[f"cross_temporal_{name}"] = pc.plot_cross_temporal(ds, title)
        figs[f"steps_{name}"] = pc.plot_steps(ds, title)
        if "mapped" in ds:
            figs[f"ms_{name}"] = pc.plot_ms(ds, title)
    for name, ds in c.encoding.items():
        figs[f"encoding_{name}"] = pc.plot_encoding(ds, figure_title(c, name))
    return figs


def with_long_titles(c):
    c.settings["weights"] = WEIGHTS
    for t in c.targets.values():
        t.description += " (simulated responses, trial noise, repetitions averaged)" if t.responses is not None else ""
    return c


@pytest.fixture(scope="module")
def k92(tmp_path_factory):
    """The 92 images through the random-weight lateral network (pooled), as test_compare makes them."""
    acts = extract_cli(f"kriegeskorte92:{K92}", tmp_path_factory.mktemp("k92") / "k92.nc")
    with vrnn.open_activations(acts) as tree:
        tree.load()                                              # in memory, file closed
    return {"acts": acts, "tree": tree}


@pytest.fixture(scope="module")
def static(k92):
    c = run_comparison(k92["acts"], f"kriegeskorte92:{K92}", n_bootstrap=20)
    return with_long_titles(c)


@pytest.fixture(scope="module")
def timed(k92):
    """A recording from 30 ms before stimulus onset (bins where no neuroid responds), a mapping that
    places v1 and it only, and encoding models."""
    rec = recordings.simulate_recording(k92["tree"], regions={"v1": "V1", "it": "IT"}, n_neuroids=20, repetitions=4,
                                    t_start_ms=-30.0, t_stop_ms=160.0, seed=3)
    c = run_comparison(k92["tree"], rec, layers=["v1", "v4", "it"], n_bootstrap=20, encoding=True,
                       mapping=TimeMapping(onset_ms={"v1": 45.0, "it": 90.0}))
    return with_long_titles(c)


@pytest.fixture(scope="module")
def figures(static, timed):
    return {"static": report_figures(static), "timed": report_figures(timed)}


def test_every_report_figure_keeps_its_texts_on_the_canvas(figures, static):
    assert sorted(figures["static"]) == ["cross_temporal_human_it", "cross_temporal_monkey_it",
                                         "steps_human_it", "steps_monkey_it"]
    assert sorted(figures["timed"]) == [f"{kind}_{t}" for kind in ("cross_temporal", "encoding", "ms", "steps")
                                        for t in ("IT", "V1")]
    assert WEIGHTS in figure_title(static, "monkey_it")
    for case, figs in figures.items():
        for name, fig in figs.items():
            assert texts_outside(fig) == [], (case, name)
    grid = pc.plot_model_grid({f"tiny/lateral ({WEIGHTS})": static, "tiny/lateral (random weights, seed 0)": static},
                              title="Shipped networks vs IT of the 92-image set (Spearman ρ of RDMs), "
                                    "95% bootstrap intervals over the 92 stimuli")
    assert texts_outside(grid) == []
    assert not [c for ax in grid.axes for c in ax.collections if isinstance(c, PolyCollection)]
    assert sum(isinstance(c, ErrorbarContainer) for ax in grid.axes for c in ax.containers) == 2 * 2 * 5


def test_without_fitted_titles_the_long_titles_leave_the_canvas(static, monkeypatch):
    monkeypatch.setattr(pc, "fit_titles", lambda fig: fig)
    fig = pc.plot_cross_temporal(static.results["human_it"], figure_title(static, "human_it"))
    assert [text for text, _ in texts_outside(fig)] == [fig.axes[0].get_title()]


def test_steps_draw_intervals_as_bars_and_the_legend_beside_the_axes(figures, static):
    fig = figures["static"]["steps_human_it"]
    ax = fig.axes[0]
    assert not [c for c in ax.collections if isinstance(c, PolyCollection)]     # no filled band per layer
    bars = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    assert len(bars) == 5
    # each layer's points are shifted along x, so no two layers' bars stand at the same place
    xs = [tuple(np.round(b.lines[2][0].get_segments()[0][0, :1], 6)) for b in bars]
    assert len(set(xs)) == 5
    # the bars span the bootstrap interval of the result
    ds = static.results["human_it"]
    segment = bars[0].lines[2][0].get_segments()[0]
    np.testing.assert_allclose(sorted(segment[:, 1]), [float(ds["low"].isel(layer=0, step=0, time=0)),
                                                       float(ds["high"].isel(layer=0, step=0, time=0))])
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[:5] == ["v1", "v2", "v4", "it", "gap"] and labels[5].startswith("noise ceiling")
    fig.canvas.draw()
    assert ax.get_legend().get_window_extent().x0 >= ax.get_window_extent().x1     # covers no data
    timed_ax = figures["timed"]["steps_IT"].axes[0]
    assert [t.get_text() for t in timed_ax.get_legend().get_texts()][-1].replace("\n", " ") == \
        "v4: no time mapping (the mapping places v1, it)"


def test_time_axis_figures_say_why_a_layer_is_not_mapped_and_mark_onset(figures):
    cross = figures["timed"]["cross_temporal_IT"]
    panels = {ax.get_title(): ax for ax in cross.axes if ax.get_title().startswith("layer")}
    notes = {t: [x.get_text() for x in ax.texts] for t, ax in panels.items()}
    assert notes == {"layer v1": [], "layer v4": ["no time mapping for layer v4\n(the mapping places v1, it)"],
                     "layer it": []}
    assert len(panels["layer v4"].lines[0].get_xdata()) == 0 and len(panels["layer it"].lines[0].get_xdata()) > 0
    onset = [l for l in panels["layer v1"].lines if l.get_label() == "stimulus onset"]
    assert len(onset) == 1 and list(onset[0].get_xdata()) == [0, 0]
    assert "stimulus onset" in [t.get_text() for t in panels["layer v1"].get_legend().get_texts()]
    ms = figures["timed"]["ms_IT"]
    ax = ms.axes[0]
    legend = [t.get_text().replace("\n", " ") for t in ax.get_legend().get_texts()]
    assert legend == ["v1", "it", "stimulus onset", "v4: no time mapping (the mapping places v1, it)"]
    assert "each recording bin vs the model step active during that bin (time mapping)" in ms.get_suptitle()


def test_encoding_greys_bins_with_too_few_reliable_neuroids(figures, timed):
    fig = figures["timed"]["encoding_IT"]
    ds = timed.encoding["IT"]
    n_reliable = (~ds["unreliable"].values).sum(axis=1)
    too_few = n_reliable < max(1, 0.25 * ds.sizes["neuroid"])    # a quarter of the neuroids or more
    assert too_few.any() and not too_few.all()                   # the recording has both kinds of bin
    panels = [ax for ax in fig.axes if ax.get_title().startswith("layer")]
    assert [ax.get_title() for ax in panels] == ["layer v1", "layer v4", "layer it"]
    for i, ax in enumerate(panels):
        image = ax.images[0]
        data = image.get_array()
        assert data.shape == (ds.sizes["step"], ds.sizes["time"])
        # masked (drawn in the grey "bad" colour) exactly in the bins with too few reliable neuroids
        np.testing.assert_array_equal(np.ma.getmaskarray(data), np.broadcast_to(too_few, data.shape))
        expected = np.where(too_few, np.nan, ds["r_corrected"].isel(layer=i).median("neuroid").values)
        np.testing.assert_allclose(data.filled(np.nan), expected, equal_nan=True)
        assert image.get_cmap().get_bad()[:3] == pytest.approx((200 / 255,) * 3)
        assert image.norm.vmin == -image.norm.vmax                  # symmetric about 0
        assert [l.get_label() for l in ax.lines] == ["stimulus onset"]
    # the scale reaches the largest |value| of every panel: negative scores are not clipped
    largest = max(float(np.abs(ax.images[0].get_array()).max()) for ax in panels)
    assert panels[0].images[0].norm.vmax == pytest.approx(largest)
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == ["stimulus onset", "grey: fewer than 25% of the neuroids with split-half reliability ≥ 0.3"]
    assert "median over the neuroids with split-half reliability ≥ 0.3" in fig.get_suptitle()


def test_encoding_colour_scale_keeps_negative_scores():
    """A layer that predicts a bin worse than the mean: the negative median is drawn, not clipped at 0."""
    r = np.array([[[-0.6, -0.5, -0.4, -0.5], [0.2, 0.3, 0.25, 0.2], [0.1, 0.0, 0.1, 0.05]]] * 2)[None]
    ds = xr.Dataset({"r": (("layer", "step", "time", "neuroid"), r),
                     "r_corrected": (("layer", "step", "time", "neuroid"), r),
                     "unreliable": (("time", "neuroid"), np.zeros((3, 4), bool))},
                    coords={"layer": ["it"], "step": [0, 1], "time": [-5.0, 5.0, 15.0],
                            "time_bin_start": ("time", [-10.0, 0.0, 10.0]),
                            "time_bin_end": ("time", [0.0, 10.0, 20.0])},
                    attrs={"folds": 5, "min_reliability": 0.3})
    image = pc.plot_encoding(ds, "synthetic").axes[0].images[0]
    assert float(image.get_array().min()) == pytest.approx(-0.5)
    assert image.norm.vmin == pytest.approx(-0.5) and image.norm.vmax == pytest.approx(0.5)
