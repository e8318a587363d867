"""The compiled per-class curves (``lveval._curves``) give the numpy code's arrays bit for bit.

The numpy path of :func:`lveval.accumulate.per_class` (``LVEVAL_PURE_CURVES=1``) is itself checked
against lvis-api and pycocotools elsewhere; here both paths run on the same matchings: generated
LVIS and COCO sets (ties, empty classes, area ranges without ground truth), subsets, pycocotools'
maxDets ranks, weighted rows with weighted ground-truth counts, and other recall thresholds.
"""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from lveval import accumulate
from lveval.metrics import Evaluator
from lveval.params import Params
from tests.support.gen import make_dataset

pytestmark = pytest.mark.skipif(accumulate._curves is None, reason="compiled curves not built")


def both(monkeypatch, *args, **kw):
    monkeypatch.setenv("LVEVAL_PURE_CURVES", "0")
    assert accumulate.compiled()
    fast = accumulate.per_class(*args, **kw)
    monkeypatch.setenv("LVEVAL_PURE_CURVES", "1")
    assert not accumulate.compiled()
    pure = accumulate.per_class(*args, **kw)
    for a, b in zip(fast, pure):
        assert a.shape == b.shape and a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    return fast


def matching(seed: int, kind: str, segm: bool = False, **params):
    gt, res = make_dataset(seed, kind=kind, n_images=6, n_cats=7, max_gt=8, max_dets=25, segm=segm)
    ev = Evaluator.load(gt, res, Params(iou_type="segm" if segm else "bbox", **params))
    sel = np.ones(len(ev.dets), bool)
    return ev, ev.matching_for(sel)


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("kind", ["lvis", "coco"])
def test_compiled_equals_numpy(monkeypatch, seed, kind):
    ev, m = matching(seed, kind, segm=seed % 3 == 0)
    prec, rec = both(monkeypatch, m, None, ev.params, ev.num_classes)
    assert (prec > -1).any() or not (m.num_gt > 0).any()
    rng = np.random.default_rng(seed)
    both(monkeypatch, m, rng.random(len(m.det)) < 0.6, ev.params, ev.num_classes)   # a subset
    for md in (1, 3, 10):
        both(monkeypatch, m, None, ev.params, ev.num_classes, max_rank=md)


@pytest.mark.parametrize("seed", range(8))
def test_weighted_rows(monkeypatch, seed):
    ev, m = matching(seed, "lvis")
    rng = np.random.default_rng(100 + seed)
    w = rng.integers(0, 4, len(m.det))
    # counts of weighted true positives never exceed the weighted ground truth (as in a resample)
    both(monkeypatch, m, None, ev.params, ev.num_classes, weight=w, num_gt=m.num_gt * 3)


@pytest.mark.parametrize("rec", [np.linspace(0, 1, 11), np.array([0.0, 0.3, 0.31, 0.9]), np.array([0.5]),
                                 np.array([0.9, 0.2, 0.5])])   # not increasing: each threshold searched anew
def test_other_recall_thresholds(monkeypatch, rec):
    ev, m = matching(3, "lvis")
    params = SimpleNamespace(iou_thrs=ev.params.iou_thrs, rec_thrs=rec, area_rng=ev.params.area_rng)
    both(monkeypatch, m, None, params, ev.num_classes)


def test_bad_segments_are_refused():
    from lveval import _curves  # type: ignore[attr-defined]

    K, A, T, R, N = 2, 1, 1, 3, 4
    bits = np.zeros((A, N), np.uint16)
    args = [np.array([0, 1, 2, 3]), np.array([0, 2]), np.array([2, 9]), bits, bits, 2, A, N,
            np.ones((K, A), np.int64), np.zeros((K, A, R), np.int64), None, T, R,
            np.zeros((T, R, K, A)), np.zeros((T, K, A)), 0, K]
    with pytest.raises(ValueError, match="out of range"):
        _curves.per_class(*args)
    args[2] = np.array([2, 4])
    args[0] = np.array([0, 1, 2, 7])
    with pytest.raises(ValueError, match="out of range"):
        _curves.per_class(*args)
    args[0] = np.array([0, 1, 2, 3])
    args[13] = np.zeros((T, R, K + 1, A))   # precision of the wrong size
    with pytest.raises(ValueError, match="precision"):
        _curves.per_class(*args)
    args[13] = np.zeros((T, R, K, A))
    args[16] = K + 1   # classes past the end
    with pytest.raises(ValueError, match="out of range"):
        _curves.per_class(*args)


@pytest.mark.parametrize("seed", range(4))
def test_two_threads_write_what_one_writes(monkeypatch, seed):
    """Class halves computed on two threads into uninitialised arrays: every entry written, as one
    thread writes it (and as the numpy path does)."""
    ev, m = matching(seed, "lvis")
    one = both(monkeypatch, m, None, ev.params, ev.num_classes)
    monkeypatch.setenv("LVEVAL_PURE_CURVES", "0")
    monkeypatch.setattr(accumulate, "_THREADS_ABOVE", 1)
    two = accumulate.per_class(m, None, ev.params, ev.num_classes)
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a, b)
