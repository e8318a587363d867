"""Weighted accumulation: a row of weight w is w consecutive copies of it (pr_curve), the batched
curves equal pr_curve's, and the helpers they rely on are exact."""
from __future__ import annotations

import numpy as np

from lveval.accumulate import _count_thresholds, batch_curves, pr_curve, seqsum
from lveval.params import Params

REC = Params().rec_thrs


def _random_curve(rng, n):
    ig = rng.random(n) < 0.15
    tp = (rng.random(n) < 0.4) & ~ig
    fp = ~tp & ~ig
    w = rng.integers(0, 4, n)
    return tp, fp, w


def test_weighted_pr_curve_equals_the_expanded_ranking():
    rng = np.random.default_rng(0)
    for _ in range(300):
        n = int(rng.integers(1, 40))
        tp, fp, w = _random_curve(rng, n)
        ng = int((tp * w).sum() + rng.integers(0, 5))
        if ng == 0:
            continue
        q, rc = pr_curve(tp[None], fp[None], ng, REC, weight=w)
        qe, rce = pr_curve(np.repeat(tp, w)[None], np.repeat(fp, w)[None], ng, REC)
        assert np.array_equal(q, qe) and np.array_equal(rc, rce)
        q1, _ = pr_curve(tp[None], fp[None], int(tp.sum()) + 1, REC, weight=np.ones(n, int))
        q0, _ = pr_curve(tp[None], fp[None], int(tp.sum()) + 1, REC)
        assert np.array_equal(q1, q0)


def test_batch_curves_equal_pr_curve():
    rng = np.random.default_rng(1)
    T = 3
    for _ in range(40):
        S = int(rng.integers(1, 6))
        seg = np.sort(rng.integers(0, S, int(rng.integers(1, 60))))
        n = len(seg)
        matched = rng.integers(0, 1 << T, n).astype(np.uint16)
        # ignored: unmatched rows all-or-none, matched thresholds may be ignored (ignored ground truth)
        base = rng.random(n) < 0.2
        ignored = np.where(base, (1 << T) - 1, 0).astype(np.uint16) & ~matched
        ignored |= matched & rng.integers(0, 1 << T, n).astype(np.uint16) & np.where(rng.random(n) < 0.2, 7, 0).astype(np.uint16)
        B = 4
        W = rng.integers(0, 4, (n, B))
        ng = np.zeros((B, S), np.int64)
        for b in range(B):
            for s in range(S):
                r = seg == s
                tps = [(((matched[r] >> t) & 1) & ~((ignored[r] >> t) & 1)) @ W[r, b] for t in range(T)]
                ng[b, s] = max(tps) + int(rng.integers(0, 3))
        qs, rc, q = batch_curves(seg, S, matched, ignored, T, W, ng, REC, full=True)
        qs2, rc2 = batch_curves(seg, S, matched, ignored, T, W, ng, REC)
        for b in range(B):
            for s in range(S):
                if ng[b, s] == 0:
                    continue
                r = np.flatnonzero(seg == s)
                mt = ((matched[r][None] >> np.arange(T)[:, None]) & 1).astype(bool)
                ig = ((ignored[r][None] >> np.arange(T)[:, None]) & 1).astype(bool)
                ref, rref = pr_curve(mt & ~ig, ~mt & ~ig, np.full(T, ng[b, s]), REC, weight=W[r, b])
                assert np.array_equal(q[b, :, s], ref) and np.array_equal(rc[b, :, s], rref)
                assert np.allclose(qs2[b, :, s], ref.sum(axis=1), rtol=0, atol=1e-12)
        assert np.array_equal(rc, rc2)


def test_threshold_counts_by_arithmetic_equal_the_search():
    x = np.concatenate([np.arange(0, g + 1) / g for g in range(1, 1500)])
    assert np.array_equal(_count_thresholds(REC, x, True), np.searchsorted(REC, x, "right"))


def test_seqsum_does_not_depend_on_the_batch():
    rng = np.random.default_rng(2)
    x = rng.random((7, 333))
    whole = seqsum(x, axis=1)
    assert all(seqsum(x[i:i + 1], axis=1)[0] == whole[i] for i in range(7))
