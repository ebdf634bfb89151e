"""With an active dask.distributed client the chunked reductions of `vrnn analyze` and the RDM
accumulation run on its workers (separate processes, which open the file by path) and give the
results of the run without one."""

import numpy as np
import pytest

import vision_rnn as vrnn

distributed = pytest.importorskip("distributed")          # in the `test` extra; a bare install runs without


@pytest.fixture(scope="module")
def acts(stim, tmp_path_factory):
    path = tmp_path_factory.mktemp("dist") / "acts.nc"
    vrnn.extract(vrnn.load_model("lateral"), stim, out=path, layers=["v4", "it", "gap"]).close()
    return path


@pytest.fixture(scope="module")
def client():
    """Two worker processes; the client is current only inside ``with client.as_current():``."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=40) as cluster, \
            distributed.Client(cluster, set_as_default=False) as c:
        yield c


def test_analyze_on_workers_equals_analyze_here(acts, tmp_path, client):
    from vision_rnn.analysis._chunks import active_client
    from vision_rnn.report import analyze

    assert active_client() is None
    with client.as_current():
        assert active_client() is client
        on_workers = analyze(acts, tmp_path / "a", n_bootstrap=0)
    here = analyze(acts, tmp_path / "b", n_bootstrap=0)
    assert set(on_workers.data_vars) == set(here.data_vars) and len(here.data_vars) > 5
    for v in here.data_vars:
        a, b = on_workers[v].values, here[v].values
        if a.dtype.kind == "f":
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-10, err_msg=v)
        else:
            np.testing.assert_array_equal(a, b, err_msg=v)


def test_work_reaches_the_workers(acts, client):
    """The blocks of a layer pass are computed in the workers' processes, not here."""
    from vision_rnn.analysis._chunks import layer_pass

    with vrnn.open_activations(acts) as tree:
        it = vrnn.layer(tree, "it")
        with client.as_current(), distributed.get_task_stream(client) as stream:
            _, norm, _ = layer_pass(it)
        expect = np.linalg.norm(it.load().values.astype(np.float64), axis=2)
    workers = {t["worker"] for t in stream.data}
    assert any(t["key"][0].startswith("_block_pass") if isinstance(t["key"], tuple) else
               str(t["key"]).startswith("_block_pass") for t in stream.data)
    assert workers and workers <= set(client.scheduler_info()["workers"])
    np.testing.assert_allclose(norm, expect, rtol=1e-12)


def test_rdms_on_workers_equal_rdms_here(acts, client):
    from vision_rnn.analysis import rsa

    with vrnn.open_activations(acts) as tree:
        it = vrnn.layer(tree, "it").isel(stimulus=slice(3, 40, 2))
        with client.as_current():
            on_workers = rsa.rdm(it, "correlation")
        here = rsa.rdm(it.load(), "correlation")
    np.testing.assert_allclose(on_workers.values, here.values, rtol=0, atol=1e-10)
