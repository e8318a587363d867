"""Batch RLE validation agrees with the per-mask decoder on valid, corrupted and random strings."""
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from pycocotools import mask as mask_utils

from lveval.io.results import batch_counts_valid, counts_problem


def _rles(seed, n=30):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        h, w = int(rng.integers(1, 40)), int(rng.integers(1, 40))
        m = (rng.random((h, w)) < rng.random()).astype(np.uint8)
        r = mask_utils.encode(np.asfortranarray(m))
        out.append((r["counts"], h * w))
    return out


@settings(max_examples=60, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2 ** 31), corrupt=st.lists(st.tuples(st.integers(0, 29), st.integers(0, 200),
                                                                  st.integers(0, 255)), max_size=6))
def test_batch_equals_per_mask(seed, corrupt):
    rles = _rles(seed)
    strings = [bytearray(c) for c, _ in rles]
    totals = np.array([t for _, t in rles])
    for i, pos, byte in corrupt:
        if strings[i]:
            strings[i][pos % len(strings[i])] = byte
    strings = [bytes(s) for s in strings]
    got = batch_counts_valid(strings, totals)
    want = np.array([counts_problem(s, int(t)) is None for s, t in zip(strings, totals)])
    np.testing.assert_array_equal(got, want)
    if not corrupt:
        assert got.all()


def test_wrong_totals_and_empty():
    rles = _rles(1, 5)
    strings = [c for c, _ in rles] + [b""]
    totals = np.array([t for _, t in rles] + [0])
    assert batch_counts_valid(strings, totals).all()
    totals[2] += 1
    totals[-1] = 4
    got = batch_counts_valid(strings, totals)
    assert list(np.flatnonzero(~got)) == [2, 5]
