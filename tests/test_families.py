"""The families beyond BLT (cornet-rt, convgru): their equations by hand, the same steps seen through
`vrnn.record`, and every command that works on a BLT name."""

import json

import pytest
import torch
import torch.nn.functional as F

import vision_rnn as vrnn
from vision_rnn.errors import ModelError
from clirun import run

FAMILIES = ["cornet-rt", "convgru"]


@pytest.fixture(scope="module", params=FAMILIES)
def family(request):
    return request.param


def test_convgru_steps_follow_the_gru_equations():
    model = vrnn.load_model("convgru", weights="random", seed=3)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        out = model.run(x, timesteps=3, layers=["v1", "v2"])
        stem = F.relu(model.stem(x))
        h, h2 = torch.zeros(2, 16, 32, 32), torch.zeros(2, 32, 16, 16)
        for t in range(3):
            z, r = torch.sigmoid(model.v1.conv_zr(torch.cat([stem, h], 1))).chunk(2, 1)
            n = torch.tanh(model.v1.conv_n(torch.cat([stem, r * h], 1)))
            h = (1 - z) * h + z * n
            b = F.max_pool2d(h, 2)
            z2, r2 = torch.sigmoid(model.v2.conv_zr(torch.cat([b, h2], 1))).chunk(2, 1)
            h2 = (1 - z2) * h2 + z2 * torch.tanh(model.v2.conv_n(torch.cat([b, r2 * h2], 1)))
            torch.testing.assert_close(out["v1"][:, t], h, rtol=0, atol=1e-6)
            torch.testing.assert_close(out["v2"][:, t], h2, rtol=0, atol=1e-6)


def test_cornet_rt_blocks_add_their_state_before_the_recurrent_conv():
    model = vrnn.load_model("cornet-rt", weights="random", seed=3)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        out = model.run(x, timesteps=3, layers=["v1", "gap"])
        b = model.v1
        drive = F.relu(b.norm_in(b.conv_in(x)))                    # the same image at every step
        state = None
        for t in range(3):
            s = drive if state is None else drive + state
            state = F.relu(b.norm_rec(b.conv_rec(s)))
            torch.testing.assert_close(out["v1"][:, t], state, rtol=0, atol=1e-6)
    assert not torch.allclose(out["v1"][:, 0], out["v1"][:, 1])    # the state changes the output
    torch.testing.assert_close(out["gap"], model.run(x, timesteps=3)["it"].mean(dim=(3, 4)))


def test_record_sees_the_same_steps_as_run(family):
    """Every named submodule is called once per step, so hooks record exactly what run returns."""
    model = vrnn.load_model(family, weights="random", seed=1)
    rec = vrnn.record(model, layers=list(model.layer_names), timesteps=model.timesteps, readout="readout",
                      input_size=model.input_size, mean=model.mean, std=model.std, classes=model.classes)
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        want, got = model.run(x), rec.run(x)
    assert set(got) == set(want)
    for k in want:
        assert torch.equal(got[k], want[k]), k


def test_families_have_the_tiny_pipeline_and_layer_names(family):
    model = vrnn.load_model(family, weights="random")
    assert model.layer_names == ("v1", "v2", "v4", "it", "gap") and model.readout_layer == "gap"
    assert (model.input_size, model.timesteps, len(model.classes)) == (32, 8, 10)
    assert model.classes == vrnn.load_model("lateral", weights="random").classes
    out = model.run(torch.zeros(1, 3, 32, 32))
    for n in model.layer_names:
        assert tuple(out[n].shape[2:]) == model.layer_shape(n)
    with pytest.raises(ModelError, match="unknown layer"):
        model.run(torch.zeros(1, 3, 32, 32), layers=["retina"])
    with pytest.raises(ModelError, match="unknown model 'ccn23-64/"):
        vrnn.load_model(f"ccn23-64/{family}", weights="random")
    assert json.loads(model.provenance["config"])["family"] == family


@pytest.mark.slow
def test_train_extract_analyze_on_a_family(family, tmp_path):
    """Slow: each run validates on 5,000 images at every step."""
    run_dir = tmp_path / "run"
    r = run("train", "--model", family, "--data", "fashion-mnist", "--out", run_dir, "--epochs", "1",
            "--max-batches", "3", "--device", "cpu")
    assert r.exit_code == 0, r.output
    trained = vrnn.load_model(run_dir)
    assert type(trained) is type(vrnn.load_model(family, weights="random"))
    assert trained.weights_sha256() != vrnn.load_model(family, weights="random", seed=0).weights_sha256()
    acts = tmp_path / "acts.nc"
    r = run("extract", "--model", run_dir, "--stimuli", "builtin:fashion-mnist", "--layers", "it,gap",
            "-o", acts, "--workers", "0")
    assert r.exit_code == 0, r.output
    with vrnn.open_activations(acts) as tree:
        assert list(tree.children) == ["it", "gap"] and tree.attrs["readout_layer"] == "gap"
        assert json.loads(tree.attrs["model_config"])["family"] == family
    r = run("analyze", acts, "-o", tmp_path / "rep", "--bootstrap", "0")
    assert r.exit_code == 0, r.output


@pytest.mark.slow
def test_demo_takes_a_model(tmp_path):
    r = run("demo", "--model", "cornet-rt", "--weights", "random", "-o", tmp_path / "d", "--limit", "40",
            "--bootstrap", "0")
    assert r.exit_code == 0, r.output
    assert (tmp_path / "d" / "cornet-rt_fashion-mnist.nc").exists()
    assert (tmp_path / "d" / "summary.md").read_text().startswith("# tiny/cornet-rt")
    r = run("demo", "--model", "ccn23-64/lateral", "--weights", "random", "-o", tmp_path / "e")
    assert r.exit_code == 2 and "runs the tiny Fashion-MNIST networks" in r.output
    assert not (tmp_path / "e").exists()
