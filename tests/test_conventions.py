"""The conventions of neighbouring tools: CF attributes, other netCDF readers, rsatoolbox, Brain-Score,
the command line's output, git and the declared dependencies."""

import ast
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from click.testing import CliRunner

import vision_rnn as vrnn
from vision_rnn.analysis import TimeMapping, rsa
from vision_rnn.analysis.rsa_convert import from_rsatoolbox, to_rsatoolbox
from vision_rnn.recordings import layer_assembly
from vision_rnn.cli import main
from vision_rnn.recordings import from_assembly, load_recording, save_recording

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def acts(tmp_path_factory):
    path = tmp_path_factory.mktemp("conv") / "a.nc"
    stim = vrnn.load_stimuli("builtin:fashion-mnist").subset(range(0, 500, 25))
    vrnn.extract(vrnn.load_model("lateral"), stim, out=path, layers=["it", "gap"]).close()
    return path


# -- 7. netCDF / CF -------------------------------------------------------------------------------
def test_cf_attributes(acts, tmp_path):
    with vrnn.open_activations(acts) as t:
        assert t.attrs["Conventions"].startswith("CF-1.") and "vision-rnn-activations-1.0" in t.attrs["Conventions"]
        for name in ("stimulus", "time", "class", "label", "label_name"):
            assert t[name].attrs["long_name"], name
        it = vrnn.layer(t, "it")
        for name in ("channel", "row", "col"):
            assert t["it"][name].attrs["long_name"]
        # (channel, row, col) rebuilt from unit, as the README says
        grid = it.set_index(unit=["channel", "row", "col"]).unstack("unit")
        assert grid.sizes == {"stimulus": 20, "time": 8, "channel": 128, "row": 4, "col": 4}
        np.testing.assert_array_equal(grid.isel(channel=5, row=2, col=1).values, it.isel(unit=5 * 16 + 2 * 4 + 1).values)
        from vision_rnn.analysis.timeaxis import assign_time
        timed = assign_time(t, TimeMapping())
        assert timed["it"]["time_ms"].attrs["units"] == "ms"
    rec = xr.DataArray(np.zeros((3, 2, 2)), dims=("stimulus", "time", "neuroid"),
                       coords={"stimulus": ["a", "b", "c"], "time": [5.0, 15.0], "time_bin_start": ("time", [0.0, 10.0]),
                               "time_bin_end": ("time", [10.0, 20.0])})
    back = load_recording(save_recording(rec, tmp_path / "r.nc"))
    assert back.attrs["Conventions"].startswith("CF-1.") and back["time"].dtype == np.float64
    for name in ("time", "time_bin_start", "time_bin_end"):
        assert back[name].attrs["units"] == "ms" and back[name].attrs["long_name"]


# -- 8. other readers: h5netcdf / h5py with hdf5plugin -------------------------------------------------
def test_h5netcdf_reads_the_default_zstd_file_in_a_fresh_process(acts):
    code = ("import sys, hdf5plugin, xarray as xr\n"
            "t = xr.open_datatree(sys.argv[1], engine='h5netcdf')\n"
            "print(t.attrs['compression'], float(t['gap']['activation'].sum()))\n"
            "assert 'vision_rnn' not in sys.modules and 'netCDF4' not in sys.modules\n")
    r = subprocess.run([sys.executable, "-c", code, str(acts)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-1500:]
    kind, total = r.stdout.split()
    with vrnn.open_activations(acts) as t:
        assert kind == "zstd" and float(total) == pytest.approx(float(vrnn.layer(t, "gap").sum()), rel=1e-6)


# -- 9. rsatoolbox round trip ---------------------------------------------------------------------------
@pytest.mark.parametrize("n_lead", [0, 1, 2, 3])
def test_rsatoolbox_round_trip_with_any_number_of_leading_dims(n_lead):
    rng = np.random.default_rng(n_lead)
    lead = [("time", [0, 1, 2]), ("layer", ["v1", "it"]), ("subject", ["s1", "s2"])][:n_lead]
    da = xr.DataArray(rng.normal(size=[len(v) for _, v in lead] + [5, 4]),
                      dims=[d for d, _ in lead] + ["stimulus", "unit"],
                      coords={"stimulus": list("abcde"), **dict(lead)})
    r = rsa.rdm(da, "correlation")
    back = from_rsatoolbox(to_rsatoolbox(r))
    assert back.dims == r.dims
    xr.testing.assert_allclose(back.drop_attrs(), r.drop_attrs().drop_vars(
        [c for c in r.coords if c not in back.coords]))


# -- 10. Brain-Score conventions ---------------------------------------------------------------------
def test_a_layer_as_a_brainio_assembly_and_a_neuroid_assembly_as_a_recording(acts):
    from vision_rnn.compare import run_comparison

    mapping = TimeMapping(onset_ms={"it": 90.0}, step_ms=10.0)
    with vrnn.open_activations(acts) as t:
        a = layer_assembly(t, "it", mapping)
        it = vrnn.layer(t, "it").load()
    assert a.dims == ("presentation", "neuroid", "time_bin")
    assert list(a["time_bin_start"].values) == [90.0 + 10 * k for k in range(8)]
    assert (a["time_bin_end"] - a["time_bin_start"] == 10.0).all() and (a["layer"] == "it").all()
    assert a["neuroid_id"].values[17] == "it.17" and a["stimulus_id"].values[0] == it["stimulus"].values[0]
    np.testing.assert_array_equal(a.values[:, 17, 3], it.isel(unit=17, time=3).values)
    # the shape Brain-Score keeps in memory: MultiIndexes on presentation, neuroid and time_bin
    levels = {"presentation": {"stimulus_id": a["stimulus_id"].values, "repetition": np.zeros(20, int)},
              "neuroid": {"neuroid_id": a["neuroid_id"].values, "region": a["layer"].values},
              "time_bin": {"time_bin_start": a["time_bin_start"].values, "time_bin_end": a["time_bin_end"].values}}
    na = xr.DataArray(a.values, dims=a.dims)
    for dim, arrays in levels.items():
        index = pd.MultiIndex.from_arrays(list(arrays.values()), names=list(arrays))
        na = na.assign_coords(xr.Coordinates.from_pandas_multiindex(index, dim))
    rec = from_assembly(na)
    assert rec.dims == ("stimulus", "time", "neuroid") and list(rec["time"].values) == [95.0 + 10 * k for k in range(8)]
    c = run_comparison(acts, na, n_bootstrap=0, layers=["it"])
    value = c.results["it"]["value"].sel(layer="it")
    assert [float(value.sel(step=k).values[k]) for k in range(8)] == pytest.approx([1.0] * 8)


# -- 6, 11. what the command line prints -------------------------------------------------------------
def test_analyze_and_compare_print_a_summary_and_models_labels_its_columns(acts, tmp_path):
    r = CliRunner().invoke(main, ["analyze", str(acts), "-o", str(tmp_path / "rep") + "/", "--bootstrap", "0"])
    assert r.exit_code == 0, r.output
    assert "accuracy per step (%):" in r.stdout and "| L2 norm |" in r.stdout
    assert f"{tmp_path / 'rep'}/ (figures" in r.stdout and "//" not in r.stdout
    save_recording(xr.DataArray(np.random.default_rng(0).normal(size=(20, 1, 6)), dims=("stimulus", "time", "neuroid"),
                                coords={"stimulus": vrnn.load_stimuli("builtin:fashion-mnist").subset(
                                    range(0, 500, 25)).ids, "time": [100.0], "time_bin_start": ("time", [50.0]),
                                    "time_bin_end": ("time", [150.0])}), tmp_path / "rec.nc")
    r = CliRunner().invoke(main, ["compare", str(acts), str(tmp_path / "rec.nc"), "-o", str(tmp_path / "cmp"),
                                  "--bootstrap", "20"])
    assert r.exit_code == 0, r.output
    assert re.search(r"recording: best layer (it|gap) at step \d, spearman -?0\.\d+ \[-?0\.\d+, -?0\.\d+\]", r.stdout)
    r = CliRunner().invoke(main, ["models"])
    head, *rows, foot = r.stdout.strip().splitlines()
    assert head.split()[:3] == ["name", "weights", "acc"] and "last step" in foot and "Fashion-MNIST" in foot
    assert any(row.split()[:3] == ["lateral", "pretrained", "0.886"] for row in rows)


def test_progress_bars_only_on_a_terminal_and_quiet_everywhere(tmp_path):
    r = subprocess.run([sys.executable, "-m", "vision_rnn", "extract", "--model", "lateral", "--stimuli",
                        "builtin:fashion-mnist", "--layers", "gap", "-o", str(tmp_path / "a.nc")],
                       capture_output=True, text=True)
    assert r.returncode == 0 and "%|" not in r.stderr and "it/s" not in r.stderr
    for command in main.commands.values():
        assert any("--quiet" in p.opts for p in command.params), command.name
    from vision_rnn.cli import show_progress
    assert show_progress(quiet=True) is False


# -- 5. outputs the README's commands write are ignored by git -----------------------------------------
def test_readme_outputs_are_git_ignored():
    names = ["vrnn-demo/x.png", "k92_report/comparison.csv", "ccn23_reproduction/table.md", "runs/lateral/x",
             "mine_report/summary.json", "mine.nc", "acts.nc.partial", ".hypothesis/x"]
    r = subprocess.run(["git", "check-ignore", *names], cwd=ROOT, capture_output=True, text=True)
    if r.returncode == 128:
        pytest.skip("not a git checkout")
    assert sorted(r.stdout.split()) == sorted(names)


# -- 2, 13. documented options and declared dependencies ------------------------------------------------
def test_max_batches_is_documented():
    r = CliRunner().invoke(main, ["train", "--help"])
    assert "--max-batches" in r.stdout
    assert "--max-batches 100" in (ROOT / "README.md").read_text()


IMPORT_NAMES = {"PIL": "pillow", "sklearn": "scikit-learn", "netCDF4": "netcdf4", "yaml": "pyyaml"}


def test_every_third_party_import_is_declared_and_every_dependency_used():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {re.split(r"[<>=!~\[ ]", d)[0].lower() for d in project["dependencies"]}
    used = set()
    for path in (ROOT / "vision_rnn").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module else []
            for n in names:
                top = n.split(".")[0]
                if top not in sys.stdlib_module_names and top != "vision_rnn":
                    used.add(IMPORT_NAMES.get(top, top).lower())
    optional = {"ipython",                              # plotting.show, only under Jupyter, guarded by ImportError
                "distributed"}                          # an active client's workers, if installed (the test extra)
    assert used - declared - optional == set(), f"imported but not declared: {used - declared - optional}"
    unused = declared - used - {"hdf5plugin", "dask"}      # for other readers; xarray's chunked arrays
    assert unused == set(), f"declared but never imported: {unused}"
