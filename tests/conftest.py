"""Shared test set-up: garbage collection between tests and the hypothesis profiles."""

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


@pytest.fixture(autouse=True)
def _collect_garbage():
    """Free files left open by a test between tests, not in the middle of the next file open
    (HDF5 must not be re-entered from a finaliser while it opens another file)."""
    yield
    gc.collect()
