"""Shared test set-up: garbage collection between tests, the hypothesis profiles, and the small
model and stimuli the extraction tests share."""

import gc
import os

import pytest
from hypothesis import HealthCheck, settings

# CI runs a fixed profile (the same examples every run, 100 per property); VRNN_HYPOTHESIS=long
# explores further on request: VRNN_HYPOTHESIS=long pytest tests/test_properties.py
settings.register_profile("ci", max_examples=100, derandomize=True, deadline=None, database=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
settings.register_profile("long", max_examples=2000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
settings.load_profile(os.environ.get("VRNN_HYPOTHESIS", "ci"))


@pytest.fixture(scope="module")
def model():
    """The tiny lateral network with seeded random weights (a module's tests may name their own)."""
    import vision_rnn as vrnn

    return vrnn.load_model("lateral", weights="random", seed=0)


@pytest.fixture(scope="module")
def stim():
    """43 Fashion-MNIST stimuli, every tenth (uneven blocks for 2 and 3 shards: 22 + 21, 15 + 14 + 14)."""
    import vision_rnn as vrnn

    return vrnn.load_stimuli("builtin:fashion-mnist").subset(range(0, 430, 10))


@pytest.fixture(autouse=True)
def _collect_garbage():
    """Free files left open by a test between tests, not in the middle of the next file open
    (HDF5 must not be re-entered from a finaliser while it opens another file)."""
    yield
    gc.collect()
