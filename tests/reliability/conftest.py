"""Fixtures of the reliability tests; the shared inputs live in relkit.py."""
import pytest

from tests.reliability.relkit import GT, RESULTS, dumps


@pytest.fixture
def gt_file(tmp_path):
    p = tmp_path / "gt.json"
    p.write_bytes(dumps(GT))
    return p


@pytest.fixture
def results_file(tmp_path):
    p = tmp_path / "results.json"
    p.write_bytes(dumps(RESULTS))
    return p
