"""``select.in_sorted`` and the ground truth's ``_sorted_unique`` give what ``np.isin`` and ``np.unique`` give."""
from __future__ import annotations

import numpy as np
import pytest

from lveval.io.gt import _sorted_unique
from lveval.select import in_sorted


@pytest.mark.parametrize("seed", range(30))
def test_equal_to_numpy(seed):
    rng = np.random.default_rng(seed)
    hi = int(rng.integers(1, 10 ** (1 + seed % 12)))
    a = rng.integers(-hi, hi, int(rng.integers(0, 300)))
    u = _sorted_unique(a)
    np.testing.assert_array_equal(u, np.unique(a))
    assert u.dtype == a.dtype
    values = np.concatenate([rng.integers(-2 * hi, 2 * hi, 200), a[:50], [np.iinfo(np.int64).max, -hi - 1]])
    np.testing.assert_array_equal(in_sorted(values, u), np.isin(values, u))
    np.testing.assert_array_equal(in_sorted(values[:0], u), np.zeros(0, bool))


@pytest.mark.parametrize("seed", range(6))
def test_search_path_in_blocks(monkeypatch, seed):
    """Value ranges too wide for a table go through binary search, a block at a time."""
    import lveval.select as S

    monkeypatch.setattr(S, "_TABLE_MAX", 0)
    monkeypatch.setattr(S, "_BLOCK", 7)
    rng = np.random.default_rng(seed)
    u = _sorted_unique(rng.integers(-10 ** 12, 10 ** 12, int(rng.integers(1, 50))))
    values = np.concatenate([rng.choice(u, 30), rng.integers(-10 ** 12, 10 ** 12, 30)])
    np.testing.assert_array_equal(S.in_sorted(values, u), np.isin(values, u))
