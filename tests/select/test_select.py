"""Selections against straightforward sorts: the references' stable descending-score order, per-image
caps, per-class top K, the class-agnostic order and the federated rule."""
from __future__ import annotations

import numpy as np
import pytest

from lveval.select import (
    agnostic_order,
    cap_per_image,
    rank_within,
    refine,
    score_order,
    subset_order,
    top_k_per_class,
    top_k_per_group,
)


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


def test_top_k_per_group_equals_per_group_sorts_and_gives_the_kth_score():
    """The one top-K routine (AP-Fixed, AP-Old's cap, ``lveval topk``'s pruning) against Python's stable
    sort per group, many ties, k from 0 past the group sizes; ``kth`` is each group's k-th best score."""
    rng = np.random.default_rng(0)
    for _ in range(30):
        n = int(rng.integers(0, 300))
        group = rng.integers(0, 7, n).astype(np.int32)
        score = rng.integers(0, 5, n) / 4.0
        k = int(rng.integers(0, 12))
        want = np.zeros(n, bool)
        for g in range(7):
            idx = [i for i in range(n) if group[i] == g]
            want[sorted(idx, key=lambda i: -score[i])[:k]] = True
        mask, kth = top_k_per_group(group, score, k, 7)
        assert mask.tolist() == want.tolist()
        assert top_k_per_class(group, score, k).tolist() == want.tolist()
        for g in range(7):
            sel = sorted(score[group == g].tolist(), reverse=True)
            assert kth[g] == (sel[k - 1] if k and len(sel) >= k else -np.inf)
    assert top_k_per_class(group, score, 2.5).tolist() == top_k_per_class(group, score, 3).tolist()   # rank < k
    assert top_k_per_class(group, score, np.inf).all() and cap_per_image(group, score, float("inf")).all()


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
