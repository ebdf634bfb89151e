"""Loading the published CCN23 networks (vision_rnn.models.ccn23).

The reference numbers in tests/data/ccn23_reference.npz come from the authors'
own BLT_net_64 / BLT_net_128 (see tests/data/README.md and
scripts/make_ccn23_reference.py); here the same seeded state dicts are rebuilt
without the authors' code, saved under CCN23 file names and loaded with
vision_rnn.load_model.
"""

import functools
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

import vision_rnn as vrnn
from vision_rnn.errors import ModelError
from vision_rnn.models.ccn23 import ccn23_state_dict, load_ccn23, parse_name

REFERENCE = Path(__file__).parent / "data" / "ccn23_reference.npz"
# label: (file name, seed, readout bias) -- as in scripts/make_ccn23_reference.py
CASES = {
    "bl_add_64": ("b64_l_1_t_0_ltinteract_additive_T_3_ltposition_all_num_1.pth", 101, False),
    "blt_mult_64": ("b64_l_1_t_1_ltinteract_multiplicative_T_3_ltposition_all_num_1.pth", 102, False),
    "bt_add_64": ("b64_l_0_t_1_ltinteract_additive_T_3_ltposition_all_num_1.pth", 103, False),
    "blt_add_128": ("b128_l_1_t_1_ltinteract_additive_T_2_ltposition_all_num_1.pth", 104, True),
    "bl_mult_64_bias": ("b64_l_1_t_0_ltinteract_multiplicative_T_3_ltposition_all_num_2.pth", 105, True),
    "blt_add_64_last": ("b64_l_1_t_1_ltinteract_additive_T_3_ltposition_last_num_1.pth", 106, False),
    "b_64_T1": ("b64_l_0_t_0_ltinteract_None_T_1_ltposition_None_num_1.pth", 107, False),
}
TOL = 1e-5


def authors_shapes(size, lateral, topdown, last=False, bias=False):
    """Keys and shapes of the authors' BLT_net_64/128 state dict (norm_type='LN').
    v1 has lateral/top-down weights it never uses; 'last' leaves only gap.lateral."""
    k = 3 if size == 64 else 5
    shapes = {"retina.weight": (32, 3, k, k), "retina.bias": (32,)}
    layers = [("v1", 32, 64), ("v2", 64, 128), ("v4", 128, 256), ("it", 256, 512)]
    for i, (name, cin, cout) in enumerate(layers):
        shapes[f"{name}.bottom_up.weight"] = (cout, cin, k, k)
        if lateral and not last:
            shapes[f"{name}.lateral.weight"] = (cout, cout, k, k)
        if topdown and not last and name != "it":
            shapes[f"{name}.top_down.weight"] = (2 * cout, cout, k, k)
        res = size >> i
        shapes[f"{name}_ln.weight"] = shapes[f"{name}_ln.bias"] = (cout, res, res)
    if lateral:
        shapes["gap.lateral.weight"] = (512, 512)
    shapes["gap_ln.weight"] = shapes["gap_ln.bias"] = (512,)
    shapes["readout.weight"] = (100, 512)
    if bias:
        shapes["readout.bias"] = (100,)
    return shapes


def random_state(shapes, seed):
    """The generator's seed scheme: sorted keys, randn from one seeded Generator,
    1 + 0.1 x for LayerNorm weights, 0.1 x for everything else."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for key in sorted(shapes):
        x = torch.randn(tuple(shapes[key]), generator=g)
        out[key] = 1 + 0.1 * x if key.endswith("_ln.weight") else 0.1 * x
    return out


@functools.lru_cache(maxsize=None)
def _case_state(label):
    name, seed, bias = CASES[label]
    p = parse_name(name)
    shapes = authors_shapes(p["image_size"], p["lateral"], p["topdown"], p["lt_position"] == "last", bias)
    return random_state(shapes, seed)


def case_state(label):
    return dict(_case_state(label))


@pytest.fixture(scope="module")
def reference():
    return np.load(REFERENCE)


def logprobs(logits):
    return torch.log(torch.clamp(torch.softmax(logits, dim=-1), 1e-10, 1.0))


@pytest.mark.parametrize("label", list(CASES))
def test_matches_authors_network(label, reference, tmp_path):
    name, seed, bias = CASES[label]
    assert str(reference[f"{label}__name"]) == name and int(reference[f"{label}__seed"]) == seed
    state = case_state(label)
    assert sorted(state) == list(reference[f"{label}__keys"])  # same keys as the authors' class
    path = tmp_path / name
    torch.save(state, path)
    model = vrnn.load_model(path)
    assert model.weights_source == str(path)
    size = model.input_size
    x = torch.randn(5, 3, size, size, generator=torch.Generator().manual_seed(int(reference["images_seed"])))
    want_lp = torch.from_numpy(reference[f"{label}__logprobs"])
    want_gap = torch.from_numpy(reference[f"{label}__gap"])
    with torch.no_grad():
        out = model.run(x, layers=["gap"])
        row = seed % 5
        one = model.run(x[row:row + 1], layers=["gap"])
    assert out["logits"].shape == want_lp.shape and out["gap"].shape == want_gap.shape
    assert (logprobs(out["logits"]) - want_lp).abs().max() <= TOL
    assert (out["gap"] - want_gap).abs().max() <= TOL
    # batch 1 (which the authors' code cannot run) gives that image's row of the batch
    assert (logprobs(one["logits"][0]) - want_lp[row]).abs().max() <= TOL
    assert (one["gap"][0] - want_gap[row]).abs().max() <= TOL
    if want_lp.shape[1] > 1:  # recurrence makes a difference: the test would see a wiring error
        assert (want_lp[:, -1] - want_lp[:, 0]).abs().max() > 0.1
    # exporting gives back the authors' keys and values (plus zero, unused v1 weights)
    exported = ccn23_state_dict(model)
    assert set(exported) == set(state)
    for key, value in exported.items():
        if key.startswith(("v1.lateral.", "v1.top_down.")):
            assert not value.any()
        else:
            assert torch.equal(value, state[key]), key


def test_config_from_name_and_keys(tmp_path):
    path = tmp_path / CASES["blt_mult_64"][0]
    torch.save({"state_dict": {f"module.{k}": v for k, v in case_state("blt_mult_64").items()}}, path)
    model = vrnn.load_model(path, timesteps=7)  # wrapped, DataParallel prefixes
    c = model.config
    assert (c.preset, c.name, c.interaction, c.lt_position) == ("ccn23-64", "lateral-topdown-mult", "multiplicative", "all")
    assert (c.lateral, c.topdown, c.v1_recurrent, c.readout_bias) == (True, True, False, False)
    assert model.timesteps == 7 and model.v1.lateral is None and model.it.top_down is None
    assert model.classes[0] == "class_000" and len(model.classes) == 100
    last = tmp_path / CASES["blt_add_64_last"][0]
    torch.save(case_state("blt_add_64_last"), last)
    c = vrnn.load_model(last).config
    assert (c.name, c.lt_position, c.timesteps) == ("lateral-topdown-last", "last", 3)
    from safetensors.torch import save_file

    st = tmp_path / CASES["blt_add_64_last"][0].replace(".pth", ".safetensors")
    save_file(case_state("blt_add_64_last"), str(st))
    assert load_ccn23(st).weights_sha256() == vrnn.load_model(last).weights_sha256()


def test_hdf5_and_overrides(tmp_path):
    h5py = pytest.importorskip("h5py")
    h5 = tmp_path / "miniecoset_64px.h5"
    with h5py.File(h5, "w") as f:
        f["train_img_mean_channels"] = np.array([127.5, 102.0, 51.0])
        f["train_img_std_channels"] = np.array([51.0, 51.0, 25.5])
        f["categories"] = np.array([f"cat{i}".encode() for i in range(100)])
    path = tmp_path / CASES["bl_add_64"][0]
    torch.save(case_state("bl_add_64"), path)
    model = load_ccn23(path, hdf5=h5)
    assert model.mean == pytest.approx((0.5, 0.4, 0.2)) and model.std == pytest.approx((0.2, 0.2, 0.1))
    assert model.classes[:2] == ["cat0", "cat1"]
    model = load_ccn23(path, hdf5=h5, mean=(0.1, 0.1, 0.1), classes=[f"c{i}" for i in range(100)])
    assert model.mean == (0.1, 0.1, 0.1) and model.std == pytest.approx((0.2, 0.2, 0.1)) and model.classes[0] == "c0"
    assert load_ccn23(path).mean == vrnn.models.registry.MINIECOSET_MEAN
    with pytest.raises(ModelError, match="class names"):
        load_ccn23(path, classes=["a", "b"])


class _Evil:
    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_pickle_with_code_is_refused(tmp_path):
    marker = tmp_path / "was_run"
    evil = _Evil()
    evil.marker = marker
    for i, save in enumerate((torch.save, lambda obj, p: p.write_bytes(pickle.dumps(obj)))):
        path = tmp_path / f"b64_l_1_t_0_ltinteract_additive_T_4_ltposition_all_num_{i}.pth"
        save({"retina.weight": evil}, path)
        with pytest.raises(ModelError, match=f"{path.name}: refused"):
            vrnn.load_model(path)
        assert not marker.exists()


@pytest.mark.parametrize("obj", [torch.zeros(3), [torch.zeros(3)], {"epoch": 3}, {}])
def test_not_a_state_dict_is_refused(obj, tmp_path):
    path = tmp_path / "b64_l_1_t_0_ltinteract_additive_T_4_ltposition_all_num_1.pth"
    torch.save(obj, path)
    with pytest.raises(ModelError, match="not a state dict"):
        vrnn.load_model(path)


def test_foreign_state_dict_is_refused(tmp_path):
    path = tmp_path / "b64_l_1_t_0_ltinteract_additive_T_4_ltposition_all_num_1.pth"
    torch.save({"fc.weight": torch.zeros(2, 2)}, path)
    with pytest.raises(ModelError, match="no known CCN23 architecture"):
        vrnn.load_model(path)
    state = case_state("bl_add_64")
    state["v2.lateral.weight"] = torch.zeros(128, 128, 5, 5)
    torch.save(state, path)
    with pytest.raises(ModelError, match="wrong shape.*v2.lateral.weight"):
        vrnn.load_model(path)


def test_interaction_from_argument(tmp_path):
    path = tmp_path / "my_blt_net.pth"  # a renamed file: nothing in the name
    torch.save(case_state("bl_mult_64_bias"), path)
    with pytest.raises(ModelError, match="my_blt_net.pth.*interaction="):
        vrnn.load_model(path, timesteps=3)
    with pytest.raises(ModelError, match="timesteps="):
        vrnn.load_model(path, interaction="multiplicative")
    model = vrnn.load_model(path, timesteps=3, interaction="multiplicative")
    assert model.config.name == "lateral-mult" and model.config.readout_bias
    with pytest.raises(ModelError, match="lt_position"):
        vrnn.load_model(path, timesteps=3, interaction="multiplicative", lt_position="last")


def test_parse_name():
    p = parse_name("weights/b128_l_0_t_0_ltinteract_None_T_1_ltposition_None_num_1.pth")
    assert p == dict(image_size=128, lateral=False, topdown=False, interaction=None, timesteps=1,
                     lt_position=None, number="1", epoch=None)
    p = parse_name("b64_l_1_t_1_ltinteract_multiplicative_T_10_ltposition_last_num_3_epoch_40.pth")
    assert (p["interaction"], p["timesteps"], p["lt_position"], p["number"], p["epoch"]) == \
        ("multiplicative", 10, "last", "3", 40)
    assert set(parse_name("model.pth").values()) == {None}
