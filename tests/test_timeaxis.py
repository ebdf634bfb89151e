"""One time axis: TimeMapping, assign_time, align, and fitting a planted mapping."""

import json

import numpy as np
import pytest
import xarray as xr

import vision_rnn as vrnn
from vision_rnn import recordings
from vision_rnn.analysis.timeaxis import (DEFAULT_ONSET_MS, TimeAxisError, TimeMapping, align, assign_time,
                                          fit_time_mapping)

STIM = range(0, 500, 8)            # 63 Fashion-MNIST test images, about 6 per class


@pytest.fixture(scope="module")
def trees():
    stim = vrnn.load_stimuli("builtin:fashion-mnist").subset(STIM)
    return {seed: vrnn.extract(vrnn.load_model("lateral", weights="random", seed=seed), stim,
                               layers=["v1", "it"], pool="mean") for seed in (0, 1)}


def test_default_mapping_and_json(tmp_path):
    m = TimeMapping()
    assert m.step_ms == 10.0
    assert m.onset_ms["v1"] == 45.0 and m.onset_ms["it"] == 90.0
    assert m.onset_ms["v1"] < m.onset_ms["v2"] < m.onset_ms["v4"] < m.onset_ms["it"]   # the hierarchy
    assert m.onset_ms == DEFAULT_ONSET_MS
    assert m.time_ms("v4", [0, 3]).tolist() == [70.0, 100.0]
    custom = TimeMapping(onset_ms={"v1": 41.5, "it": 88}, step_ms=12.5)
    assert TimeMapping.from_json(custom.to_json()) == custom
    path = custom.save(tmp_path / "mapping.json")
    assert json.loads(path.read_text()) == {"onset_ms": {"it": 88.0, "v1": 41.5}, "step_ms": 12.5}
    assert TimeMapping.load(path) == custom
    with pytest.raises(TimeAxisError, match="positive"):
        TimeMapping(step_ms=0)
    with pytest.raises(TimeAxisError, match="no onset for layer 'v2'"):
        custom.time_ms("v2", [0])
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(TimeAxisError, match="bad.json: not a TimeMapping"):
        TimeMapping.load(tmp_path / "bad.json")


def test_assign_time_adds_time_ms_to_each_layer(trees):
    tree = trees[0]
    timed = assign_time(tree, TimeMapping(onset_ms={"v1": 40, "it": 85}, step_ms=12))
    it = vrnn.layer(timed, "it")
    assert it["time_ms"].dims == ("time",)
    assert it["time_ms"].values.tolist() == [85.0 + 12 * k for k in range(8)]
    assert it["time"].values.tolist() == list(range(8))           # the step stays a step
    assert vrnn.layer(timed, "v1")["time_ms"].values[0] == 40.0
    assert "time_ms" not in vrnn.layer(tree, "it").coords          # a new tree; the input is unchanged
    with pytest.raises(TimeAxisError, match="no layer of this tree"):
        assign_time(tree, TimeMapping(onset_ms={"v4": 70}))


def step_model(n_stim=4, steps=5):
    """Activations whose value is the step index: aligned values show which step was taken."""
    x = np.broadcast_to(np.arange(steps, dtype=float)[None, :, None], (n_stim, steps, 3)).copy()
    return xr.DataArray(x, dims=("stimulus", "time", "unit"),
                        coords={"stimulus": [f"cat/{i}.png" for i in range(n_stim)], "time": np.arange(steps)})


def step_recording(n_stim=4, starts=np.arange(35.0, 125.0, 10.0)):
    return xr.DataArray(np.zeros((n_stim, len(starts), 2)), dims=("stimulus", "time", "neuroid"),
                        coords={"stimulus": [str(i) for i in range(n_stim)][::-1], "time": starts + 5,
                                "time_bin_start": ("time", starts), "time_bin_end": ("time", starts + 10)})


def test_align_refuses_steps_without_milliseconds():
    with pytest.raises(TimeAxisError, match="no 'time_ms' coordinate.*assign_time"):
        align(step_model(), step_recording())


def test_align_nearest_and_overlap_on_known_steps():
    model = step_model().assign_coords(time_ms=("time", 40.0 + 10 * np.arange(5)))   # steps span 40-90 ms
    rec = step_recording()                                                            # bins 35-45 ... 115-125
    m, r = align(model, rec, "nearest")
    assert m["time"].values.tolist() == [40.0, 50.0, 60.0, 70.0, 80.0]               # bins centred in the steps
    assert m.isel(stimulus=0, unit=0).values.tolist() == [0, 1, 2, 3, 4]
    assert m["step"].values.tolist() == [0, 1, 2, 3, 4]
    assert r["time"].values.tolist() == m["time"].values.tolist()
    assert list(m["stimulus"].values) == ["cat/0.png", "cat/1.png", "cat/2.png", "cat/3.png"]
    assert list(r["stimulus"].values) == list(m["stimulus"].values)                   # matched by stem
    assert "4 stimuli matched (4 by stem)" in m.attrs["stimulus_match"]
    m, r = align(model, rec, "overlap")
    assert m["time"].values.tolist() == [50.0, 60.0, 70.0, 80.0]                     # 35-45 is half outside
    np.testing.assert_allclose(m.isel(stimulus=0, unit=0).values, [0.5, 1.5, 2.5, 3.5])
    assert m.dims == ("stimulus", "time", "unit")
    late = step_recording(starts=np.array([300.0]))
    with pytest.raises(TimeAxisError, match="no recording bin"):
        align(model, late)


def test_fit_recovers_a_planted_mapping_with_a_different_model_seed(trees):
    planted = {"v1": 47.3, "it": 93.6}                  # off the 5 ms / 0.5 ms onset grids
    step = 12.7                                         # off the 1 ms / 0.25 ms step grids
    rec = recordings.simulate_recording(trees[1], onset_ms=planted, step_ms=step, bin_ms=10, noise=1.0,
                                    n_neuroids=60, repetitions=4, seed=0)
    fit = fit_time_mapping(trees[0], rec, regions={"v1": "V1", "it": "IT"}, n_boot=200, folds=4, seed=0)
    lo, hi = fit.ci["step_ms"]
    assert lo <= step <= hi
    assert abs(fit.mapping.step_ms - step) <= 10
    for name, onset in planted.items():
        lo, hi = fit.ci["onset_ms"][name]
        assert lo <= onset <= hi, (name, fit)
        assert abs(fit.mapping.onset_ms[name] - onset) <= 10, (name, fit)
        blo, bhi = fit.ci_bootstrap["onset_ms"][name]
        assert lo <= blo <= bhi <= hi
    assert fit.mapping.onset_ms["v1"] < fit.mapping.onset_ms["it"]
    assert fit.bootstrap.sizes["sample"] == 200 and fit.cv.sizes["fold"] == 4
    assert fit.cv_score > 0.5                           # the timing found on some stimuli holds on others
    assert "63 stimuli matched" in fit.settings["stimulus_match"]


def test_fit_without_repetitions(trees):
    planted = {"v1": 47.3, "it": 93.6}
    rec = recordings.simulate_recording(trees[1], onset_ms=planted, step_ms=12.7, noise=1.0, n_neuroids=60,
                                    repetitions=4, seed=2).mean("repetition")
    fit = fit_time_mapping(trees[0], rec, n_boot=20, folds=2, seed=1)
    for name, onset in planted.items():
        assert abs(fit.mapping.onset_ms[name] - onset) <= 10
        assert fit.ci["onset_ms"][name][0] <= onset <= fit.ci["onset_ms"][name][1]


def test_fit_needs_regions_and_refuses_bad_options(trees):
    rec = recordings.simulate_recording(trees[1], repetitions=2, n_neuroids=10, seed=1)
    with pytest.raises(TimeAxisError, match="no neuroid of region 'V4'"):
        fit_time_mapping(trees[0], rec, regions={"v1": "V4"}, n_boot=0)
    with pytest.raises(TimeAxisError, match="method 'tau-a'"):
        fit_time_mapping(trees[0], rec, method="tau-a", n_boot=0)
    with pytest.raises(TimeAxisError, match="bad ranges"):
        fit_time_mapping(trees[0], rec, step_range=(10, 5), n_boot=0)
    with pytest.raises(TimeAxisError, match="time-resolved"):
        fit_time_mapping(trees[0], rec.isel(time=[10]), n_boot=0)
