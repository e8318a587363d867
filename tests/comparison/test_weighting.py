"""A bootstrap replicate (weights on one matching pass) equals a direct evaluation of the resampled
data set: every drawn image copied as often as drawn, under new ids, ground truth included.

Per-class and pooled precision/recall arrays must be bit-identical (``accumulate.per_class``/``pooled``
with weights, and ``accumulate.batch_curves``); the replicate's summary figures (means computed in one
vectorised pass) agree with ``lveval.evaluate``'s to 1e-12.
"""
from __future__ import annotations

import numpy as np
import pytest

from lveval.accumulate import batch_curves, per_class, pooled
from lveval.comparison.resample import ModelResampler, draw_weights, weighted_num_gt
from lveval.io.gt import load_gt
from lveval.io.results import bind, load_results
from lveval.metrics import PROTOCOLS, Evaluator, evaluate, pooled_curves
from lveval.params import Params
from tests.support.gen import make_dataset

from .dup import duplicate, multiplicities


def check(gt: dict, results: list, W: np.ndarray, **kw) -> int:
    """Compare every replicate of ``W`` (B, I) with the evaluation of its duplicated data set."""
    g = load_gt(gt)
    params = Params(dataset=g.kind, max_dets_per_image=kw.get("max_dets_per_image"),
                    max_dets_per_class=kw.get("max_dets_per_class", 10_000))
    dets = bind(load_results(results), g)
    r = ModelResampler(Evaluator(g, dets, params), PROTOCOLS, W)
    reps = r.replicate(W)
    WT = np.ascontiguousarray(W.T)
    ngw = weighted_num_gt(r.counts, WT, g.num_categories)
    rw = r.row_weights(WT)
    K = g.num_categories
    checked = 0
    for b in range(len(W)):
        dg, dr = duplicate(gt, results, multiplicities(g.img_ids, W[b]))
        e = evaluate(dg, dr, **kw)
        for proto in ("old", "fixed"):
            prec, rec = per_class(r.exp.m, None, params, K, weight=rw[proto][:, b], num_gt=ngw[b])
            assert np.array_equal(prec, e.precision[proto]), (proto, b)
            assert np.array_equal(rec, e.recall[proto]), (proto, b)
            for a, (rows, seg, cls) in enumerate(r.plans[proto]):
                me = r.exp.m
                ng = ngw[b:b + 1, cls, a]
                _, rc, q = batch_curves(seg, len(cls), me.matched[a, rows], me.ignored[a, rows], me.num_thrs,
                                         rw[proto][rows, b:b + 1], ng, params.rec_thrs, full=True)
                v = ng[0] > 0
                ref = e.precision[proto][:, :, cls[v], a]                       # (T, R, S')
                assert np.array_equal(q[0][:, v].transpose(0, 2, 1), ref), (proto, a, b)
                assert np.array_equal(rc[0][:, v], e.recall[proto][:, cls[v], a]), (proto, a, b)
        pools = pooled_curves(g, params, r.exp_pool.m, None)
        for name, cats in zip(pools, r.pools):
            q = pooled(r.exp_pool.m, None, cats, params, weight=rw["pooled"][:, b], num_gt=ngw[b])
            ref = e.pooled_precision[name]
            assert (q is None and ref is None) or np.array_equal(q, ref), (name, b)
        for proto in PROTOCOLS:
            for key, v in reps[proto].items():
                assert abs(v[b] - e[proto][key]) <= 1e-12, (proto, key, b, v[b], e[proto][key])
                checked += 1
    return checked


@pytest.mark.parametrize("k", [10_000, 25])
def test_bundled_replicates_equal_duplicated_data(lvis_dataset, k):
    from lveval.simulate import simulate

    res = simulate(lvis_dataset, seed=3, candidates_per_image=300)
    W = draw_weights(len(lvis_dataset["images"]), 2, seed=11)
    assert W.max() >= 3                                   # images drawn several times
    assert check(lvis_dataset, res, W, max_dets_per_class=k) > 0


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("kind", ["lvis", "coco"])
def test_generated_replicates_equal_duplicated_data(seed, kind):
    # few score levels: many ties inside images and classes; small caps and budgets so that a
    # budget boundary falls inside the copies of one row
    gt, res = make_dataset(seed, kind=kind, n_images=7, n_cats=3, max_gt=6, max_dets=14, score_levels=3)
    rng = np.random.default_rng(seed)
    W = rng.integers(0, 4, (3, len(gt["images"]))).astype(np.int32)
    W[0] = 1                                              # the original data set
    check(gt, res, W, max_dets_per_class=4 + seed, max_dets_per_image=5)


def test_budget_boundary_splits_copies():
    # one class, one image drawn 3 times, budget 2: exactly 2 of the 3 copies of the top row count
    gt, res = make_dataset(2, kind="lvis", n_images=4, n_cats=1, max_gt=4, max_dets=6, score_levels=2,
                           empty_image=False)
    W = np.array([[3, 0, 1, 2], [0, 3, 3, 1]], np.int32)
    check(gt, res, W, max_dets_per_class=2)
    check(gt, res, W, max_dets_per_class=5)


def test_matching_every_row_of_bound_classes_gives_the_same(monkeypatch):
    # past a work limit the union of kept rows is not computed: every row of a class whose budget
    # can bind is matched (a superset); the replicates must not change
    import lveval.comparison.resample as rs

    gt, res = make_dataset(4, kind="lvis", n_images=6, n_cats=2, max_gt=5, max_dets=12, score_levels=3)
    W = np.random.default_rng(0).integers(0, 4, (3, len(gt["images"]))).astype(np.int32)
    monkeypatch.setattr(rs, "UNION_WORK", 0)
    check(gt, res, W, max_dets_per_class=5)
