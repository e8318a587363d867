"""Shared by the topk tests."""
import pytest

from lveval.topk.pool import _Pool


@pytest.fixture(autouse=True)
def small_batches(monkeypatch):
    """Prune often, so the tests exercise many prune rounds on small inputs."""
    monkeypatch.setattr(_Pool, "MIN_BATCH", 64)
