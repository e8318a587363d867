"""Selections against straightforward sorts: the references' stable descending-score order, per-image
caps, per-class top K, the class-agnostic order and the federated rule."""
from __future__ import annotations

import numpy as np
import pytest

from lveval.select import agnostic_order, cap_per_image, rank_within, refine, score_order, subset_order, top_k_per_class


def _data(seed: int, n: int = 400):
    rng = np.random.default_rng(seed)
    score = np.round(rng.random(n), 1)   # few levels: many ties
    group = rng.integers(0, 7, n)
    cat = rng.integers(0, 5, n)
    return score, group, cat


@pytest.mark.parametrize("seed", range(5))
def test_score_order_is_the_stable_descending_sort(seed):
    score, _, _ = _data(seed)
    want = sorted(range(len(score)), key=lambda i: -score[i])   # Python's sort is stable
    assert score_order(score).tolist() == want


@pytest.mark.parametrize("seed", range(5))
def test_rank_cap_and_top_k_equal_per_group_sorts(seed):
    score, group, _ = _data(seed)
    rank = np.empty(len(score), np.int64)
    for g in np.unique(group):
        idx = [i for i in range(len(score)) if group[i] == g]
        for r, i in enumerate(sorted(idx, key=lambda i: -score[i])):
            rank[i] = r
    assert rank_within(group, score).tolist() == rank.tolist()
    assert cap_per_image(group, score, 3).tolist() == (rank < 3).tolist()
    assert top_k_per_class(group, score, 5, score_order(score)).tolist() == (rank < 5).tolist()
    assert cap_per_image(group, score, -1).all() and top_k_per_class(group, score, -1).all()


@pytest.mark.parametrize("seed", range(5))
def test_agnostic_order_ties_by_category_then_index(seed):
    score, _, cat = _data(seed)
    want = sorted(range(len(score)), key=lambda i: (-score[i], cat[i], i))
    assert agnostic_order(cat, score).tolist() == want


def test_refine_and_subset_order():
    score, group, _ = _data(9)
    o = score_order(score)
    r = refine(o, group)
    assert r.tolist() == sorted(o.tolist(), key=lambda i: group[i])   # groups first, order kept inside
    rows = group % 2 == 0
    sub = np.flatnonzero(rows)
    assert subset_order(o, rows).tolist() == score_order(score[sub]).tolist()
