"""Shared test set-up."""

import gc

import pytest


@pytest.fixture(autouse=True)
def _collect_garbage():
    """Free files left open by a test between tests, not in the middle of the next file open
    (HDF5 must not be re-entered from a finaliser while it opens another file)."""
    yield
    gc.collect()
