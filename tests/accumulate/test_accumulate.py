"""Precision-recall accumulation against a straightforward transcription of the references' loop
(cumulative sums, precision made monotone from the right one element at a time, a left search for
each recall threshold)."""
from __future__ import annotations

import numpy as np
import pytest

from lveval.accumulate import pr_curve, recall_steps
from lveval.params import REC_THRS


def reference_curve(tp, fp, num_gt, rec_thrs):
    tps, fps = np.cumsum(tp).astype(float), np.cumsum(fp).astype(float)
    rc = tps / num_gt
    pr = tps / (fps + tps + np.spacing(1))
    pr = pr.tolist()
    for i in range(len(pr) - 1, 0, -1):
        if pr[i] > pr[i - 1]:
            pr[i - 1] = pr[i]
    q = np.zeros(len(rec_thrs))
    inds = np.searchsorted(rc, rec_thrs, side="left")
    for ri, pi in enumerate(inds):
        if pi < len(pr):
            q[ri] = pr[pi]
    return q, (rc[-1] if len(rc) else 0.0)


@pytest.mark.reference
@pytest.mark.parametrize("seed", range(30))
def test_pr_curve_equals_the_reference_loop(seed):
    rng = np.random.default_rng(seed)
    L, n = int(rng.integers(1, 5)), int(rng.integers(1, 60))
    tp = rng.random((L, n)) < 0.4
    fp = ~tp & (rng.random((L, n)) < 0.8)   # some rows are neither (ignored)
    num_gt = np.maximum(tp.sum(axis=1) + rng.integers(0, 4, L), 1)
    rec = np.asarray(REC_THRS) if seed % 2 else np.linspace(0, 1, int(rng.integers(2, 40)))
    q, rc = pr_curve(tp, fp, num_gt, rec)
    for row in range(L):
        rq, rrc = reference_curve(tp[row], fp[row], num_gt[row], rec)
        np.testing.assert_array_equal(q[row], rq)
        assert rc[row] == rrc


@pytest.mark.parametrize("num_gt", [1, 3, 7, 10, 49, 100, 101, 997])
def test_recall_steps_are_the_smallest_counts_reaching_each_threshold(num_gt):
    rec = np.asarray(REC_THRS)
    steps = recall_steps(rec, num_gt)
    for r, k in zip(rec, steps):
        assert k / num_gt >= r and (k == 0 or (k - 1) / num_gt < r)
