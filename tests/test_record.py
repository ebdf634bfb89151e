"""`vrnn.record`: a recurrent module the package does not know, its time loop inside `forward`,
through extract, analyze and compare; `--model file.py:factory` and its refusals."""

import os
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st

import vision_rnn as vrnn
from vision_rnn.errors import ModelError
from clirun import run, error_line

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ["VRNN_DATA"]) if os.environ.get("VRNN_DATA") else ROOT.parent / "shared" / "data"
K92 = DATA / "kriegeskorte2008"
CLASSES = [f"c{i}" for i in range(10)]

# the same network as a user's file: blocks return (output, state), the time loop is in forward, and an
# in-place update follows the recorded call (the record must not see it)
NET = '''
import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, cin, c):
        super().__init__()
        self.inp = nn.Conv2d(cin, c, 3, padding=1)
        self.rec = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x, h):
        out = F.relu(self.inp(x) + self.rec(h))
        return out, out


class Pool(nn.Module):
    def forward(self, x):
        return x.mean(dim=(2, 3))


class Loop(nn.Module):
    """Two recurrent blocks, a pooled layer and a linear readout at every step."""

    def __init__(self, steps=4, classes=10):
        super().__init__()
        self.steps = steps
        self.b1 = Block(3, 6)
        self.b2 = Block(6, 8)
        self.gap = Pool()
        self.fc = nn.Linear(8, classes)

    def forward(self, x):
        h1 = x.new_zeros(x.shape[0], 6, x.shape[2], x.shape[3])
        h2 = x.new_zeros(x.shape[0], 8, x.shape[2] // 2, x.shape[3] // 2)
        outs = []
        for _ in range(self.steps):
            a1, h1 = self.b1(x, h1)
            a2, h2 = self.b2(F.max_pool2d(a1, 2), h2)
            a2.mul_(0.5)                      # in place, after the hook has seen a2
            outs.append(self.fc(self.gap(a2)))
        return torch.stack(outs, 1)


SPEC = dict(layers=["b1", "b2", "gap"], timesteps=4, readout="fc", input_size=32,
            classes=[f"c{i}" for i in range(10)])


def factory():
    torch.manual_seed(0)
    return Loop(), SPEC
'''


@pytest.fixture(scope="module")
def netfile(tmp_path_factory):
    folder = tmp_path_factory.mktemp("usernet")
    (folder / "mynet.py").write_text(NET)
    return folder / "mynet.py"


@pytest.fixture(scope="module")
def net(netfile):
    scope = {}
    exec(compile(NET, str(netfile), "exec"), scope)
    return scope


def hand_unrolled(m, x, steps):
    """The Loop network's steps written out by hand: (b1, b2, gap, logits) per step."""
    h1 = x.new_zeros(x.shape[0], 6, x.shape[2], x.shape[3])
    h2 = x.new_zeros(x.shape[0], 8, x.shape[2] // 2, x.shape[3] // 2)
    rows = []
    for _ in range(steps):
        a1 = F.relu(m.b1.inp(x) + m.b1.rec(h1))
        h1 = a1
        a2 = F.relu(m.b2.inp(F.max_pool2d(a1, 2)) + m.b2.rec(h2))
        kept = a2.clone()
        h2 = a2
        a2.mul_(0.5)
        g = a2.mean(dim=(2, 3))
        rows.append((a1.clone(), kept, g, m.fc(g)))
    return [torch.stack(parts, 1) for parts in zip(*rows)]


def test_recorded_steps_equal_a_hand_unrolled_loop(net):
    torch.manual_seed(0)
    module = net["Loop"]().eval()
    rec = vrnn.record(module, **net["SPEC"])
    x = torch.randn(5, 3, 32, 32)
    with torch.no_grad():
        out = rec.run(x)
        b1, b2, gap, logits = hand_unrolled(module, x, 4)
    assert set(out) == {"b1", "b2", "gap", "logits"}
    assert torch.equal(out["b1"], b1) and torch.equal(out["b2"], b2)     # b2 before the in-place halving
    assert torch.equal(out["gap"], gap) and torch.equal(out["logits"], logits)
    assert rec.layer_shape("b2") == (8, 16, 16) and rec.layer_shape("gap") == (8,)
    assert rec.readout_layer is None          # the readout is a submodule called per step, not readout_from
    with torch.no_grad():                     # the module's own output is what the recorded readout gave
        assert torch.equal(module(x), out["logits"])


def test_readout_from_a_layer_keeps_its_linear_weight(net):
    """CORnet-style: a decoder applied to a recorded layer at every step; a Linear is stored as the readout."""
    torch.manual_seed(1)
    module = net["Loop"]().eval()
    spec = dict(net["SPEC"], readout=module.fc, readout_from="gap")
    rec = vrnn.record(module, **spec)
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        out = rec.run(x)
        *_, gap, logits = hand_unrolled(module, x, 4)
    assert torch.equal(out["logits"], logits)
    assert rec.readout_layer == "gap"
    w, b = rec.readout_parameters()
    assert np.array_equal(w, module.fc.weight.detach().numpy()) and np.array_equal(b, module.fc.bias.detach().numpy())
    # a readout that is no Linear of the flattened layer: logits kept, no stored readout
    rec2 = vrnn.record(module, **dict(spec, readout=lambda g: module.fc(g) * 2))
    with torch.no_grad():
        assert torch.equal(rec2.run(x)["logits"], 2 * logits)
    assert rec2.readout_layer is None and rec2.readout_parameters() is None


def test_logits_from_the_module_output(net):
    torch.manual_seed(2)
    module = net["Loop"]().eval()
    rec = vrnn.record(module, **dict(net["SPEC"], readout=None))
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(rec.run(x)["logits"], module(x))


@settings(max_examples=25)
@given(calls=st.integers(1, 5), declared=st.integers(1, 5))
def test_a_different_number_of_calls_is_refused(net, calls, declared):
    module = net["Loop"](steps=calls).eval()
    spec = dict(net["SPEC"], timesteps=declared)
    if calls == declared:
        rec = vrnn.record(module, **spec)
        with torch.no_grad():
            b1, *_ = hand_unrolled(module, torch.ones(1, 3, 32, 32), calls)
            assert torch.equal(rec.run(torch.ones(1, 3, 32, 32))["b1"], b1)
    else:
        with pytest.raises(ModelError, match=f"called {calls} times in one forward.*timesteps={declared}"):
            vrnn.record(module, **spec)


@pytest.mark.parametrize("change, message", [
    (dict(layers=["b3"]), "has no submodule 'b3'; it has b1, b1.inp"),
    (dict(layers=["b1", "b1"]), "a layer is named twice"),
    (dict(layers=["b1"], readout_from="gap"), "readout_from='gap' is not one of the recorded layers"),
    (dict(readout=lambda a: a), "a callable readout needs readout_from"),
    (dict(timesteps=0), "timesteps must be a whole number of at least 1"),
    (dict(classes=None), "classes must list the class names"),
    (dict(classes=[f"c{i}" for i in range(7)]), r"logits of Loop have shape \(2, 4, 10\), not"),
    (dict(mean=(0.5, 0.5)), "mean has 2 values and std 3"),
    (dict(std=(1, 0, 1)), "std must be positive"),
    (dict(output=5), "returns 2 outputs; output=5"),
])
def test_bad_record_specs_are_refused_in_one_line(net, change, message):
    with pytest.raises(ModelError, match=message) as e:
        vrnn.record(net["Loop"](), **dict(net["SPEC"], **change))
    assert "\n" not in str(e.value)


def test_run_refuses_other_steps_and_shapes(net):
    rec = vrnn.record(net["Loop"](), **net["SPEC"])
    with pytest.raises(ModelError, match="runs its own time loop of 4 steps"):
        rec.run(torch.zeros(1, 3, 32, 32), timesteps=6)
    with pytest.raises(ModelError, match=r"input images must be \(3, 32, 32\)"):
        rec.run(torch.zeros(1, 3, 16, 16))
    with pytest.raises(ModelError, match="unknown layer"):
        rec.run(torch.zeros(1, 3, 32, 32), layers=["fc"])


@pytest.mark.slow
def test_extract_analyze_compare_on_a_user_model(netfile, tmp_path):
    acts = tmp_path / "mine.nc"
    r = run("extract", "--model", f"{netfile}:factory", "--stimuli", "builtin:fashion-mnist", "-o", acts,
            "--workers", "0")
    assert r.exit_code == 0, r.output
    with vrnn.open_activations(acts) as tree:
        assert list(tree.children) == ["b1", "b2", "gap"]
        assert tree.attrs["model"] == "Loop" and tree.attrs["readout_layer"] == ""
        assert "readout_weight" not in tree.ds
        ids = list(tree["stimulus"].values[:8])
        stored = vrnn.layer(tree, "b2").isel(stimulus=slice(0, 8)).values
        logits = tree["logits"].isel(stimulus=slice(0, 8)).values
    # the file holds what the module computes on the same prepared images
    from vision_rnn.stimuli import prepare

    model = vrnn.load_model(f"{netfile}:factory")
    stim = vrnn.load_stimuli("builtin:fashion-mnist")
    x = prepare(stim.load(range(8), model.input_size), model.input_size, model.mean, model.std)
    with torch.no_grad():
        out = model.run(x)
    np.testing.assert_allclose(stored, out["b2"].reshape(8, 4, -1).numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(logits, out["logits"].numpy(), rtol=1e-5, atol=1e-6)
    assert ids[0] == stim.ids[0]
    # analyze: no stored readout, so the last layer (gap) gets a fitted one; Fashion-MNIST's class names
    # are not the model's, so the analysis is label-free
    rep = tmp_path / "report"
    r = run("analyze", acts, "-o", rep, "--bootstrap", "20")
    assert r.exit_code == 0, r.output
    summary = (rep / "summary.md").read_text()
    assert summary.startswith("# Loop: layer gap, fitted") and "label-free" in summary
    assert {p.name for p in rep.iterdir()} >= {"accuracy.png", "dendrogram.png", "summary.json"}
    # compare with the 92-image IT data through the same command as for BLT files
    acts92 = tmp_path / "k92.nc"
    r = run("extract", "--model", f"{netfile}:factory", "--stimuli", f"kriegeskorte92:{K92}", "-o", acts92,
            "--workers", "0", "--pool", "mean")
    assert r.exit_code == 0, r.output
    r = run("compare", acts92, f"kriegeskorte92:{K92}", "-o", tmp_path / "cmp", "--bootstrap", "0")
    assert r.exit_code == 0, r.output
    assert "92 stimuli matched" in r.output
    table = pd.read_csv(tmp_path / "cmp" / "comparison.csv")
    assert set(table["layer"]) == {"b1", "b2", "gap"}
    assert np.isfinite(table["value"]).all() and table["n_stimuli"].eq(92).all()


def test_weights_files_load_into_the_users_module(netfile, tmp_path, net):
    from safetensors.torch import save_file

    torch.manual_seed(5)
    other = net["Loop"]()
    sd = {k: v.contiguous() for k, v in other.state_dict().items()}
    torch.save(sd, tmp_path / "w.pth")
    save_file(sd, str(tmp_path / "w.safetensors"))
    base = vrnn.load_model(f"{netfile}:factory")
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        want = other.eval()(x)
    for f in ("w.pth", "w.safetensors"):
        m = vrnn.load_model(f"{netfile}:factory", weights=tmp_path / f)
        with torch.no_grad():
            assert torch.equal(m(x), want)
        assert m.provenance["weights"] == str(tmp_path / f)
        assert m.provenance["weights_sha256"] != base.provenance["weights_sha256"]


BAD_FILES = {
    "syntax.py": "def factory(:\n",
    "raises.py": "def factory():\n    raise RuntimeError('no GPU here')\n",
    "notmodel.py": "def factory():\n    return 42\n",
    "badspec.py": "import torch\ndef factory():\n    return torch.nn.Linear(2, 2), dict(layerz=['x'])\n",
}


@pytest.mark.parametrize("model, message", [
    ("missing.py:factory", "no such file"),
    ("{net}:nofunc", "defines no function 'nofunc'; it defines factory"),
    ("syntax.py:factory", "importing .*syntax.py raised SyntaxError"),
    ("raises.py:factory", r"factory\(\) raised RuntimeError: no GPU here"),
    ("notmodel.py:factory", "returned a int, not a model: it lacks run"),
    ("badspec.py:factory", "the record spec is not record\\(\\)'s keyword arguments"),
    ("wrongshape.py:factory", r"run\(\) gives 'gap' of shape \(2, 4, 8\), but the model declares \(2, 4, 5\)"),
])
def test_bad_model_files_exit_2_in_one_line_and_write_nothing(netfile, tmp_path, model, message):
    import re

    for name, text in BAD_FILES.items():
        (tmp_path / name).write_text(text)
    (tmp_path / "wrongshape.py").write_text(NET + textwrap.dedent('''
        def factory():
            m = vrnn_record(Loop(), **SPEC)
            m.layer_shape = lambda layer: (5,) if layer == "gap" else m._shapes[layer]
            return m
        import vision_rnn
        vrnn_record = vision_rnn.record
        '''))
    spec = model.replace("{net}", str(netfile))
    if not spec.startswith("/"):
        spec = str(tmp_path / spec)
    out = tmp_path / "out"
    out.mkdir()
    r = run("extract", "--model", spec, "--stimuli", "builtin:fashion-mnist", "-o", out / "a.nc")
    assert r.exit_code == 2, r.output
    line = error_line(r)
    assert re.search(message, line), line
    assert list(out.iterdir()) == []


def test_weights_that_do_not_fit_exit_2(netfile, tmp_path):
    torch.save({"w": torch.zeros(3)}, tmp_path / "w.pth")
    r = run("extract", "--model", f"{netfile}:factory", "--weights", tmp_path / "w.pth",
            "--stimuli", "builtin:fashion-mnist", "-o", tmp_path / "a.nc")
    assert r.exit_code == 2
    assert "missing" in error_line(r) and not (tmp_path / "a.nc").exists()
    r = run("extract", "--model", f"{netfile}:factory", "--weights", tmp_path / "none.pth",
            "--stimuli", "builtin:fashion-mnist", "-o", tmp_path / "a.nc")
    assert r.exit_code == 2 and "no such file" in error_line(r)
    r = run("extract", "--model", f"{netfile}:factory", "--weights", "random",
            "--stimuli", "builtin:fashion-mnist", "-o", tmp_path / "a.nc")
    assert r.exit_code == 2 and "has the weights its factory gives" in error_line(r)


def test_default_output_name_of_a_model_file(netfile, tmp_path):
    from vision_rnn.cli import default_output

    assert default_output(f"{netfile}:factory", "fashion-mnist").name == "mynet-factory_fashion-mnist.nc"


@given(st.text(max_size=40))
def test_model_sources_parse_without_crashing(text):
    from vision_rnn.models.userfile import is_user_file

    assert is_user_file(text) == (":" in text and text.rpartition(":")[0].endswith(".py")
                                  and text.rpartition(":")[2].isidentifier())
