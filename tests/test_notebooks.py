"""The comparison notebooks (comparisons/*.py, jupytext percent format) run end to end on the real data.

Each is converted to a Jupyter notebook and executed cell by cell in a kernel
(scripts/render_notebooks.py: jupytext, then nbconvert), with every one of the
92 images and 100 bootstrap samples; the executed notebook keeps its outputs,
and the figures go to a temporary folder.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ["VRNN_DATA"]) if os.environ.get("VRNN_DATA") else ROOT.parent / "shared" / "data"
pytestmark = pytest.mark.skipif(not (DATA / "kriegeskorte2008").is_dir(),
                                reason=f"the 92-image data is not at {DATA / 'kriegeskorte2008'} "
                                       "(set VRNN_DATA to the shared data folder)")

NOTEBOOKS = {
    "kriegeskorte92.py": ["k92_models.png", "k92_lateral_monkey_matrix.png", "k92_lateral_human_steps.png"],
    "time_axis.py": ["time_axis_matrix_IT.png", "time_axis_matrix_V1.png", "time_axis_ms_IT.png",
                     "time_axis_mapping.png"],
    "brainio.py": ["brainio_ms_IT.png", "brainio_report/comparison.csv", "brainio_report/encoding.csv",
                   "brainio_report/cross_temporal_IT.png"],
}


def execute(name, figures):
    """Render ``name`` as an executed .ipynb into ``figures``; return (process, the notebook's printed text)."""
    import nbformat

    env = dict(os.environ, VRNN_DATA=str(DATA), VRNN_FIGURES=str(figures), VRNN_BOOTSTRAP="100", MPLBACKEND="Agg")
    env.pop("VRNN_CCN23_CHECKPOINT", None)
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "render_notebooks.py"), "--out", str(figures),
                           name.removesuffix(".py")], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    text = ""
    path = figures / name.replace(".py", ".ipynb")
    if done.returncode == 0:
        nb = nbformat.read(path, as_version=4)
        assert all(c.get("execution_count") for c in nb.cells if c.cell_type == "code"), "a cell did not run"
        text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
                       if o.get("output_type") == "stream")
        images = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
                  if "image/png" in o.get("data", {})]
        assert images, f"{name}: the executed notebook shows no figure"
    return done, text


@pytest.mark.slow                       # about 70 s for the three: with the slow tests (.ci/run runs both)
@pytest.mark.parametrize("name", sorted(NOTEBOOKS))
def test_notebook_runs_and_writes_its_figures(name, tmp_path):
    before = set(p.name for p in ROOT.iterdir())
    done, stdout = execute(name, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "bootstrap samples: 100" in stdout
    for fig in NOTEBOOKS[name]:
        path = tmp_path / fig
        assert path.exists(), f"{name} did not write {fig}"
        if fig.endswith(".png"):
            with Image.open(path) as im:
                assert im.width >= 600 and im.height >= 300
    assert set(p.name for p in ROOT.iterdir()) == before                  # nothing written into the repo
    if name == "kriegeskorte92.py":
        assert "human IT noise ceiling: lower 0.372, upper 0.666" in stdout
        assert "VRNN_CCN23_CHECKPOINT is not set" in stdout
    if name == "time_axis.py":
        # the network that made the recording recovers the planted onsets (50, 95 ms) and step (12 ms)
        text = stdout.split("lateral (the source network):")[1]
        step = text.split("step ")[1].split(" ms [")
        lo, hi = (float(v) for v in step[1].split("]")[0].split(","))
        assert lo <= 12.0 <= hi
    if name == "brainio.py":
        assert "round trip: identical values" in stdout


def test_docs_figure_is_small():
    path = ROOT / "docs" / "k92_models.png"
    assert path.exists() and path.stat().st_size < 200 * 1024
