"""The public functions users call are documented (numpydoc Parameters and Returns), and the
top-level verbs fit on a screen (their bodies, docstring aside, are at most 45 lines)."""

import ast
import importlib
import inspect
import re
from pathlib import Path

import pytest

# (module, name): name may be "Class.method"
DOCUMENTED = [
    ("vision_rnn.models.loading", "load_model"),
    ("vision_rnn.models.loading", "build"),
    ("vision_rnn.models.registry", "list_models"),
    ("vision_rnn.stimuli", "load_stimuli"),
    ("vision_rnn.stimuli", "from_folder"),
    ("vision_rnn.stimuli", "from_arrays"),
    ("vision_rnn.stimuli", "from_hdf5"),
    ("vision_rnn.extract", "extract"),
    ("vision_rnn.analysis.readout", "predictions"),
    ("vision_rnn.analysis.readout", "accuracy"),
    ("vision_rnn.analysis.readout", "stability"),
    ("vision_rnn.analysis.readout", "readout_zone"),
    ("vision_rnn.analysis.readout", "peripherality"),
    ("vision_rnn.analysis.readout", "heading"),
    ("vision_rnn.analysis.readout", "readout_dendrogram"),
    ("vision_rnn.analysis.readout", "halting"),
    ("vision_rnn.analysis._fit", "fit_readout"),
    ("vision_rnn.analysis.dynamics", "l2_norm"),
    ("vision_rnn.analysis.dynamics", "step_distance"),
    ("vision_rnn.analysis.dynamics", "settling_groups"),
    ("vision_rnn.analysis.dynamics", "drift_by_settling"),
    ("vision_rnn.analysis.dynamics", "settled_motion"),
    ("vision_rnn.analysis.dynamics", "mean_by_status"),
    ("vision_rnn.analysis.dynamics", "norm_by_status"),
    ("vision_rnn.analysis.summary", "readout_measures"),
    ("vision_rnn.analysis.summary", "summarize"),
    ("vision_rnn.analysis.summary", "summary"),
    ("vision_rnn.analysis.timeaxis", "assign_time"),
    ("vision_rnn.analysis.timeaxis", "align"),
    ("vision_rnn.analysis.timeaxis", "fit_time_mapping"),
    ("vision_rnn.analysis.timeaxis", "TimeMapping.time_ms"),
    ("vision_rnn.analysis.timeaxis", "TimeMapping.load"),
    ("vision_rnn.analysis.timeaxis", "TimeMapping.save"),
    ("vision_rnn.recordings.netcdf", "load_recording"),
    ("vision_rnn.recordings.netcdf", "save_recording"),
    ("vision_rnn.recordings.brainio", "from_assembly"),
    ("vision_rnn.recordings.brainio", "to_brainio"),
    ("vision_rnn.recordings.brainio", "save_brainio"),
    ("vision_rnn.recordings.brainio", "layer_assembly"),
    ("vision_rnn.recordings.sets", "kriegeskorte92"),
    ("vision_rnn.recordings.sets", "cichy2014_meg"),
    ("vision_rnn.recordings.simulate", "simulate_recording"),
    ("vision_rnn.recordings.layout", "check_recording"),
    ("vision_rnn.report", "analyze"),
    ("vision_rnn.report", "demo"),
    ("vision_rnn.train", "train"),
]

# (module, function): the top-level verbs
SHORT = [
    ("vision_rnn.extract", "extract"),
    ("vision_rnn.analysis._fit", "fit_readout"),
    ("vision_rnn.analysis.summary", "readout_measures"),
    ("vision_rnn.analysis.encoding", "encode"),
]
MAX_BODY_LINES = 45


def _section(name: str, underline: str) -> re.Pattern:
    return re.compile(rf"^{name}\n{underline}+$", re.MULTILINE)


PARAMETERS = _section("Parameters", "-")
RETURNS = _section("Returns", "-")


def _get(module: str, name: str):
    obj = importlib.import_module(module)
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj


@pytest.mark.parametrize("module, name", DOCUMENTED, ids=[f"{m}.{n}" for m, n in DOCUMENTED])
def test_numpydoc_sections(module, name):
    obj = _get(module, name)
    doc = inspect.getdoc(obj) or ""
    assert RETURNS.search(doc), f"{module}.{name}: no numpydoc 'Returns' section"
    if not inspect.signature(obj).parameters:
        return                         # numpydoc has no Parameters section for a function without any
    assert PARAMETERS.search(doc), f"{module}.{name}: no numpydoc 'Parameters' section"
    assert doc.index("Parameters\n") < doc.index("Returns\n"), f"{module}.{name}: Returns before Parameters"


def _body_lines(module: str, name: str) -> int:
    path = Path(importlib.import_module(module).__file__)
    tree = ast.parse(path.read_text(encoding="utf-8"))
    fn = next(n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name == name)
    body = fn.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
            and isinstance(body[0].value.value, str):
        body = body[1:]                    # the docstring does not count
    assert body, f"{module}.{name} has no body besides its docstring"
    return fn.end_lineno - body[0].lineno + 1


@pytest.mark.parametrize("module, name", SHORT, ids=[f"{m}.{n}" for m, n in SHORT])
def test_verbs_fit_on_a_screen(module, name):
    n = _body_lines(module, name)
    assert n <= MAX_BODY_LINES, (f"{module}.{name}: {n} lines besides its docstring (at most {MAX_BODY_LINES}); "
                                 "move coherent steps into private helpers")
