"""Exact equality (==, not approx) of two evaluation results: ``to_dict()`` and every curve."""
from __future__ import annotations

import numpy as np


def assert_same(single, other) -> None:
    """``other`` equals ``single``: every figure of ``to_dict()``, the full precision/recall arrays
    of each protocol and AP-Pool's curves."""
    assert other.to_dict() == single.to_dict()
    assert single.precision.keys() == other.precision.keys()
    for p in single.precision:
        assert np.array_equal(single.precision[p], other.precision[p]), p
        assert np.array_equal(single.recall[p], other.recall[p]), p
    assert single.pooled_precision.keys() == other.pooled_precision.keys()
    for k, q in single.pooled_precision.items():
        r = other.pooled_precision[k]
        assert (q is None and r is None) or np.array_equal(q, r), k
