"""Comparisons of layers larger than memory: stimuli matched first, only the shared rows read,
RDMs accumulated over blocks of units (the Gram matrix), equal to the in-memory computation."""

import numpy as np
import pytest
import xarray as xr
from hypothesis import given
from hypothesis import strategies as st

import vision_rnn as vrnn
from vision_rnn.analysis import _rsacore as core
from vision_rnn.analysis import rsa


@st.composite
def patterns(draw):
    n = draw(st.integers(2, 9))
    p = draw(st.integers(1, 40))
    t = draw(st.integers(1, 3))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    x = rng.normal(draw(st.sampled_from([0.0, 3.0])), draw(st.sampled_from([1e-3, 1.0, 50.0])), (t, n, p))
    if draw(st.booleans()):
        x = np.maximum(x, 0)                                     # ReLU-like: zeros, constant rows
    if draw(st.booleans()):
        x[:, draw(st.integers(0, n - 1))] = draw(st.sampled_from([0.0, 2.5]))   # a constant pattern
    return x.astype(np.float32), draw(st.integers(1, max(1, p)))


@given(patterns(), st.sampled_from(core.RDM_METHODS))
def test_gram_accumulation_equals_the_direct_rdms(data, method):
    import dask.array as dsa

    x, block = data
    direct = core.rdms(x, method)
    lazy = dsa.from_array(x, chunks=(1, max(1, x.shape[1] // 2), block))
    gram = rsa.gram_rdms(lazy, method)
    assert gram.shape == direct.shape
    np.testing.assert_array_equal(np.isnan(gram), np.isnan(direct))
    # correlation and cosine lie in [0, 2]; a euclidean RDM is on the scale of the patterns' squares
    scale = float(np.mean(x.astype(np.float64) ** 2)) if method == "euclidean" else 1.0
    np.testing.assert_allclose(np.nan_to_num(gram), np.nan_to_num(direct), rtol=0, atol=1e-10 * max(scale, 1e-3))
    assert np.array_equal(gram, np.swapaxes(gram, -1, -2), equal_nan=True)
    assert (np.diagonal(gram, axis1=-2, axis2=-1) == 0).all()


def test_gram_block_size_bounds_the_blocks(monkeypatch):
    """The accumulation runs over blocks of units: with a tiny block budget it still equals the direct RDMs."""
    import dask.array as dsa

    monkeypatch.setattr(rsa, "GRAM_BLOCK_BYTES", 8 * 30 * 7)          # 7 units of 30 stimuli per block
    x = np.random.default_rng(1).normal(size=(30, 100)).astype(np.float32)
    for method in core.RDM_METHODS:
        np.testing.assert_allclose(rsa.gram_rdms(dsa.from_array(x, chunks=(30, 100)), method),
                                   core.rdms(x, method), rtol=0, atol=1e-12)


@given(st.lists(st.integers(1, 40), min_size=1, max_size=12), st.integers(1, 50))
def test_unit_blocks_cover_the_units_and_keep_chunks_whole(chunks, width):
    blocks = rsa.unit_blocks(chunks, width)
    edges = np.cumsum([0] + chunks)
    assert blocks[0][0] == 0 and blocks[-1][1] == edges[-1]
    assert all(a[1] == b[0] for a, b in zip(blocks, blocks[1:])) and all(lo < hi for lo, hi in blocks)
    for lo, hi in blocks:
        inside = [(a, b) for a, b in zip(edges[:-1], edges[1:]) if a < hi and b > lo]
        if hi - lo > width:
            pytest.fail(f"block {lo}-{hi} wider than {width}")
        if len(inside) > 1 or (inside[0][1] - inside[0][0]) <= width:
            assert all(lo <= a and b <= hi for a, b in inside), (chunks, width, blocks)   # whole chunks only


@pytest.fixture(scope="module")
def acts(model, stim, tmp_path_factory):
    path = tmp_path_factory.mktemp("ooc") / "acts.nc"
    vrnn.extract(model, stim, out=path, layers=["v1", "it", "gap"], progress=False).close()
    return path


def test_comparison_of_a_file_equals_the_comparison_in_memory(acts):
    """A file's layers are read lazily (only the shared rows, RDMs by Gram accumulation); the same
    data in memory take the direct path. Every value and interval agrees to 1e-10."""
    from vision_rnn.compare import run_comparison

    with vrnn.open_activations(acts) as tree:
        loaded = tree.load()
        rec = vrnn.recordings.simulate_recording(loaded, regions={"it": "IT"}, n_neuroids=12, repetitions=3,
                                                 seed=2)
    keep = np.random.default_rng(0).permutation(rec.sizes["stimulus"])[:25]      # a recording of 25 of the 43
    rec = rec.isel(stimulus=np.sort(keep))
    for method in ("correlation", "euclidean"):
        a = run_comparison(acts, rec, rdm_method=method, n_bootstrap=20, shared_only=True)
        b = run_comparison(loaded, rec, rdm_method=method, n_bootstrap=20, shared_only=True)
        assert a.settings["n_matched"] == 25
        for name in b.results:
            for v in ("value", "low", "high"):
                np.testing.assert_allclose(a.results[name][v].values, b.results[name][v].values, rtol=0, atol=1e-10)
    with pytest.raises(vrnn.compare.CompareError, match="RDM sizes differ"):
        run_comparison(acts, rec, n_bootstrap=0)                             # refused before any layer is read


def test_the_comparison_tree_is_labelled(acts):
    from vision_rnn.compare import run_comparison

    with vrnn.open_activations(acts) as tree:
        rec = vrnn.recordings.simulate_recording(tree.load(), regions={"v1": "V1", "it": "IT"}, n_neuroids=8, seed=0)
    c = run_comparison(acts, rec, n_bootstrap=0, layers=["v1", "it"], encoding=True)
    assert isinstance(c.tree, xr.DataTree) and set(c.tree.children) == {"V1", "IT"}
    it = c.tree["IT"]
    assert it["value"].dims == ("layer", "step", "time") and list(it["layer"].values) == ["v1", "it"]
    assert it.attrs["target"] == "IT" and c.tree.attrs["recording"] == c.settings["recording"]
    assert set(it["encoding"].data_vars) >= {"r"} and it["encoding"]["r"].sizes["neuroid"] == 8
    df = c.table()
    assert len(df) == 2 * 2 * c.tree["IT"].sizes["step"] * c.tree["IT"].sizes["time"]
    np.testing.assert_array_equal(
        df.query("target == 'IT' and layer == 'it'")["value"].values,
        it["value"].sel(layer="it").values.ravel())
