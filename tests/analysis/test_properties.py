"""Metric properties (paper Sections 4 and 6) on generated data, through the engine.

AP-Fixed depends only on each class's own ranking, so any strictly increasing
per-class score transform leaves it unchanged; AP-Pool ranks all classes
together, so only a global strictly increasing transform leaves it unchanged;
AP-Old depends on cross-class ranking exactly when the per-image cap binds.
"""
import numpy as np
import pytest

from lveval.metrics import evaluate
from tests.support.gen import make_dataset

SEEDS = range(12)


def _data(seed):
    return make_dataset(seed, kind="lvis", n_images=4, n_cats=6, max_gt=8, max_dets=25, score_levels=8)


def _per_class(results, seed):
    """A strictly increasing transform per class: a_c * s ** b_c (a_c > 0, b_c > 0)."""
    rng = np.random.default_rng(1000 + seed)
    cats = sorted({r["category_id"] for r in results})
    a = dict(zip(cats, rng.uniform(0.05, 1.0, len(cats))))
    b = dict(zip(cats, rng.uniform(0.3, 4.0, len(cats))))
    return [dict(r, score=float(a[r["category_id"]] * r["score"] ** b[r["category_id"]])) for r in results]


def _global(results):
    return [dict(r, score=float(0.1 + 0.5 * r["score"] ** 3)) for r in results]


def _max_per_image(results):
    ids = [r["image_id"] for r in results]
    return max(ids.count(i) for i in set(ids)) if ids else 0


@pytest.mark.parametrize("seed", SEEDS)
def test_fixed_invariant_to_per_class_transforms(seed):
    gt, res = _data(seed)
    kw = dict(protocols=("fixed",), max_dets_per_class=5)   # a budget that binds
    assert evaluate(gt, res, **kw).fixed == evaluate(gt, _per_class(res, seed), **kw).fixed


@pytest.mark.parametrize("seed", SEEDS)
def test_pool_invariant_to_global_transform(seed):
    gt, res = _data(seed)
    assert evaluate(gt, res, protocols=("pooled",)).pooled == evaluate(gt, _global(res), protocols=("pooled",)).pooled


def test_pool_changes_under_per_class_transforms():
    changed = 0
    for seed in SEEDS:
        gt, res = _data(seed)
        a = evaluate(gt, res, protocols=("pooled",)).pooled
        b = evaluate(gt, _per_class(res, seed), protocols=("pooled",)).pooled
        changed += a["AP"] != b["AP"]
    assert changed >= len(SEEDS) // 2


def test_old_depends_on_per_class_transforms_only_when_the_cap_binds():
    changed = 0
    for seed in SEEDS:
        gt, res = _data(seed)
        moved = _per_class(res, seed)
        # cap above every image's detection count: AP-Old is per-class, hence invariant
        big = _max_per_image(res)
        assert evaluate(gt, res, protocols=("old",), max_dets_per_image=big).old == \
            evaluate(gt, moved, protocols=("old",), max_dets_per_image=big).old
        # a binding cap: which classes keep their detections depends on cross-class order
        a = evaluate(gt, res, protocols=("old",), max_dets_per_image=4).old
        b = evaluate(gt, moved, protocols=("old",), max_dets_per_image=4).old
        changed += a["AP"] != b["AP"]
    assert changed >= len(SEEDS) // 2
