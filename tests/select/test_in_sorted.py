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
