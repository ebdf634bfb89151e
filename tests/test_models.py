"""The BLT family: formulas, wiring, unrolling, sequences, loading."""

import numpy as np
import pytest
import torch

import vision_rnn as vrnn
from vision_rnn.errors import ModelError
from vision_rnn.models import BLTNet, get_config, save_weights
from vision_rnn.models.blt import RecurrentConv


def test_names_and_shapes():
    names = [m.name for m in vrnn.list_models()]
    for n in ["feedforward", "lateral", "topdown", "lateral-topdown", "lateral-mult", "topdown-mult",
              "lateral-topdown-mult", "ccn23-64/lateral", "ccn23-128/topdown-mult"]:
        assert n in names
    model = vrnn.load_model("lateral-topdown", weights="random")
    assert model.timesteps == 8 and model.input_size == 32 and len(model.classes) == 10
    assert model.layer_names == ("retina", "v1", "v2", "v4", "it", "gap")
    out = model.run(torch.zeros(3, 3, 32, 32))
    assert set(out) == {"v1", "v2", "v4", "it", "gap", "logits"}
    assert out["v1"].shape == (3, 8, 16, 32, 32)
    assert out["it"].shape == (3, 8, 128, 4, 4)
    assert out["gap"].shape == (3, 8, 128)
    assert out["logits"].shape == (3, 8, 10)
    assert model.run(torch.zeros(1, 3, 32, 32), layers=["retina"])["retina"].shape == (1, 8, 16, 32, 32)


def test_ccn23_preset_wiring():
    m = vrnn.load_model("ccn23-64/lateral-topdown", weights="random")
    assert m.config.v1_recurrent is False
    assert m.v1.lateral is None and m.v1.top_down is None  # v1 sees only the retina
    assert m.v2.top_down is not None and m.v4.top_down is not None and m.it.top_down is None
    assert m.v2.top_down.in_channels == 256 and m.v4.top_down.in_channels == 512
    assert m.readout.in_features == 512 and m.readout.out_features == 100
    m128 = vrnn.load_model("ccn23-128/lateral", weights="random")
    assert m128.v2.bottom_up.kernel_size == (5, 5) and m128.input_size == 128
    tiny = vrnn.load_model("lateral-topdown", weights="random")
    assert tiny.v1.lateral is not None and tiny.v1.top_down is not None


def test_random_weights_are_a_function_of_the_seed():
    a = vrnn.load_model("lateral", weights="random", seed=3)
    b = vrnn.load_model("lateral", weights="random", seed=3)
    c = vrnn.load_model("lateral", weights="random", seed=4)
    assert a.weights_sha256() == b.weights_sha256() != c.weights_sha256()


@pytest.mark.parametrize("name", ["lateral-topdown", "lateral-topdown-mult"])
def test_step0_ignores_recurrent_weights(name):
    torch.manual_seed(0)
    x = torch.randn(4, 3, 32, 32)
    model = vrnn.load_model(name, weights="random", seed=1)
    before = model.run(x)
    with torch.no_grad():
        for layer in (model.v1, model.v2, model.v4, model.it):
            if layer.lateral is not None:
                layer.lateral.weight.mul_(-3.0).add_(0.1)
            if layer.top_down is not None:
                layer.top_down.weight.mul_(5.0)
        model.gap.lateral.weight.mul_(-2.0)
    after = model.run(x)
    for key in before:
        assert torch.equal(before[key][:, 0], after[key][:, 0]), key
    assert not torch.allclose(before["logits"][:, 1], after["logits"][:, 1])


def _hand_layer(interaction):
    """1 channel, 1x1 kernels, 2x2 map: every drive can be computed by hand."""
    layer = RecurrentConv(1, 1, 1, 2, pool=False, lateral=True, topdown_channels=1, interaction=interaction)
    with torch.no_grad():
        layer.bottom_up.weight.fill_(2.0)   # b = 2 x
        layer.lateral.weight.fill_(0.5)     # l = 0.5 prev
        layer.top_down.weight.fill_(1.0)    # d: the 1x1 map above lands at (0, 0)
    x = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    prev = torch.tensor([[[[1.0, 0.0], [0.0, 1.0]]]])
    above = torch.tensor([[[[3.0]]]])
    return layer, x, prev, above


def _ln_relu(z):
    z = np.asarray(z, dtype=np.float64)
    return np.maximum((z - z.mean()) / np.sqrt(z.var() + 1e-5), 0.0)


def test_additive_formula_by_hand():
    layer, x, prev, above = _hand_layer("additive")
    # b = [[2,4],[6,8]], l = [[.5,0],[0,.5]], d = [[3,0],[0,0]]
    z = [[2 + 0.5 + 3, 4], [6, 8 + 0.5]]
    out = layer(x, prev, above)[0, 0].detach().numpy()
    np.testing.assert_allclose(out, _ln_relu(z), atol=1e-6)
    # step 0: no recurrent input -> LN(b)
    np.testing.assert_allclose(layer(x)[0, 0].detach().numpy(), _ln_relu([[2, 4], [6, 8]]), atol=1e-6)


def test_multiplicative_formula_by_hand():
    layer, x, prev, above = _hand_layer("multiplicative")
    z = [[2 * (1 + 0.5 + 3), 4 * 1], [6 * 1, 8 * (1 + 0.5)]]
    out = layer(x, prev, above)[0, 0].detach().numpy()
    np.testing.assert_allclose(out, _ln_relu(z), atol=1e-6)
    assert not np.allclose(out, _ln_relu([[5.5, 4], [6, 8.5]]))  # not the additive answer


def test_batch_of_one_matches_larger_batch():
    torch.manual_seed(1)
    x = torch.randn(5, 3, 32, 32)
    model = vrnn.load_model("lateral-topdown-mult", weights="random")
    with torch.no_grad():
        full = model.run(x)
        one = model.run(x[2:3])
    for key in full:
        torch.testing.assert_close(one[key][0], full[key][2], atol=1e-5, rtol=1e-5)


def test_unrolling_past_trained_steps():
    x = torch.randn(2, 3, 32, 32)
    model = vrnn.load_model("lateral", weights="random")
    with torch.no_grad():
        short = model(x)
        long = model(x, timesteps=14)
    assert long.shape == (2, 14, 10)
    torch.testing.assert_close(long[:, :8], short)
    assert vrnn.load_model("lateral", weights="random", timesteps=11)(x).shape[1] == 11


def test_sequence_input_shows_image_t_at_step_t():
    torch.manual_seed(2)
    seq = torch.randn(1, 4, 3, 32, 32)  # four different images, one per step
    ff = vrnn.load_model("feedforward", weights="random")
    with torch.no_grad():
        out = ff.run(seq)
        for t in range(4):
            alone = ff.run(seq[:, t], timesteps=1)
            for key in out:
                torch.testing.assert_close(out[key][:, t], alone[key][:, 0])
    rec = vrnn.load_model("lateral", weights="random")
    with torch.no_grad():
        same = rec.run(seq[:, :1].expand(1, 4, 3, 32, 32))
        static = rec.run(seq[:, 0], timesteps=4)
        for key in same:
            torch.testing.assert_close(same[key], static[key])
        switched = rec.run(seq)
    torch.testing.assert_close(switched["it"][:, 0], static["it"][:, 0])
    assert not torch.allclose(switched["it"][:, 1], static["it"][:, 1])
    with pytest.raises(ModelError, match="timesteps"):
        rec.run(seq, timesteps=3)


def test_bad_inputs_to_the_model():
    model = vrnn.load_model("lateral", weights="random")
    with pytest.raises(ModelError, match="32"):
        model(torch.zeros(1, 3, 28, 28))
    with pytest.raises(ModelError, match="unknown layer"):
        model.run(torch.zeros(1, 3, 32, 32), layers=["v3"])


def test_unknown_name_lists_the_names():
    with pytest.raises(ModelError, match="lateral-topdown-mult"):
        vrnn.load_model("laterall", weights="random")


def test_pretrained_error_or_weights():
    from vision_rnn.models.registry import weights_path

    if weights_path("topdown").exists():
        assert vrnn.load_model("topdown").weights_source.startswith("pretrained")
    with pytest.raises(ModelError, match="`weights=random`"):
        vrnn.load_model("ccn23-64/lateral")


def test_weights_roundtrip(tmp_path):
    model = vrnn.load_model("topdown-mult", weights="random", seed=5)
    path = tmp_path / "w.safetensors"
    save_weights(model, path, {"seed": 5})
    again = vrnn.load_model(path)
    assert again.config == model.config and again.weights_sha256() == model.weights_sha256()
    assert again.seed == 5
    as_weights = vrnn.load_model("topdown-mult", weights=str(path))
    assert as_weights.weights_sha256() == model.weights_sha256()
    with pytest.raises(ModelError, match="do not fit"):
        vrnn.load_model("lateral", weights=str(path))
    (tmp_path / "junk.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ModelError, match="junk.safetensors"):
        vrnn.load_model(tmp_path / "junk.safetensors")


def test_config_json_roundtrip():
    cfg = get_config("ccn23-128/lateral-topdown-mult")
    from vision_rnn.models import BLTConfig
    import json

    assert BLTConfig.from_dict(json.loads(cfg.to_json())) == cfg
    assert isinstance(BLTNet(cfg), BLTNet)
