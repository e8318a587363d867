"""Which detections each protocol evaluates.

Every selection here keeps, inside each (image, category) group, a prefix of
the group's detections ordered by descending score with file order breaking
ties. That is what lets one matching pass serve every protocol and cap: the
greedy matching of a prefix is the prefix of the greedy matching.

Orderings are built from one descending-score order of all detections,
refined by stable integer sorts on group keys (radix sorts for small keys),
instead of repeated multi-key lexsorts.
"""
from __future__ import annotations

import math

import numpy as np


def score_order(score: np.ndarray) -> np.ndarray:
    """Indices by descending score, ties in index order (a stable sort on ``-score``).

    Same order as lvis-api's ``sorted(..., reverse=True)`` and pycocotools'
    mergesort; computed with a fast unstable sort plus a fix-up of tied runs.
    """
    n = len(score)
    o = np.argsort(-score)
    if n < 2:
        return o
    v = score[o]
    eq = v[1:] == v[:-1]
    if eq.any():
        run = np.cumsum(np.r_[True, ~eq]) - 1
        pos = np.flatnonzero(np.r_[eq, False] | np.r_[False, eq])
        sub = o[pos]
        o[pos] = sub[np.argsort(run[pos].astype(np.int64) * n + sub)]
    return o


def _small_int(keys: np.ndarray) -> np.ndarray:
    """Narrowest integer view of non-negative keys, so numpy's stable sort can use radix sort."""
    m = int(keys.max()) if len(keys) else 0
    for dt in (np.int16, np.int32):
        if m <= np.iinfo(dt).max:
            return keys.astype(dt, copy=False)
    return keys


def refine(order: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Stable re-sort of ``order`` by ``keys[order]``: groups first, previous order inside groups."""
    if len(order) == 0:
        return order
    return order[np.argsort(_small_int(keys[order]), kind="stable")]


def rank_within(group: np.ndarray, score: np.ndarray, order: np.ndarray | None = None) -> np.ndarray:
    """Rank of each row inside its group by descending score, ties in row order.

    ``order``: a precomputed :func:`score_order` of ``score`` (saves the sort).
    """
    n = len(score)
    if n == 0:
        return np.zeros(0, np.int64)
    o = refine(score_order(score) if order is None else order, group)
    g = group[o]
    starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
    rank_sorted = np.arange(n) - np.repeat(starts, np.diff(np.r_[starts, n]))
    rank = np.empty(n, np.int64)
    rank[o] = rank_sorted
    return rank


def _top_k(group: np.ndarray, score: np.ndarray, k: int, order: np.ndarray | None):
    """The top-K kernel: (mask, group order, sorted groups, group starts, group lengths).

    Rows sorted by group, descending score inside (ties in row order); the
    sorted positions past the k-th of their group are dropped by marking the
    ranges in an int8 array (no per-row rank array)."""
    n = len(score)
    o = refine(score_order(score) if order is None else order, group)
    g = group[o]
    starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
    lens = np.diff(np.r_[starts, n])
    big = lens > k
    diff = np.zeros(n + 1, np.int8)
    diff[starts[big] + k] -= 1              # distinct positions within each of the two steps,
    diff[starts[big] + lens[big]] += 1      # so plain fancy indexing adds correctly (k = 0 too)
    keep_sorted = np.cumsum(diff[:-1], dtype=np.int8) == 0
    del diff
    mask = np.zeros(n, bool)
    mask[o[keep_sorted]] = True
    return mask, o, g, starts, lens


def top_k_per_group(group: np.ndarray, score: np.ndarray, k: int, num_groups: int | None = None,
                    order: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Rows among the top ``k`` of their group by descending score (earlier rows win ties), and
    each group's k-th best score.

    The one top-K routine: :func:`top_k_per_class` and :func:`cap_per_image`
    are its mask, and ``lveval.topk`` prunes with it, using ``kth`` to drop
    rows that cannot enter a full group. Returns ``(mask, kth)``; ``kth[g]``
    is ``-inf`` when group ``g`` has fewer than ``k`` rows. ``group`` holds
    small non-negative integers (``num_groups`` of them; by default
    ``group.max() + 1``); ``order``: a precomputed :func:`score_order` of ``score``.
    """
    n = len(score)
    ng = num_groups if num_groups is not None else (int(group.max()) + 1 if n else 0)
    kth = np.full(ng, -np.inf)
    if n == 0:
        return np.zeros(0, bool), kth
    mask, o, g, starts, lens = _top_k(group, score, k, order)
    full = lens >= k
    if k > 0 and full.any():
        kth[g[starts[full]]] = score[o[starts[full] + k - 1]]
    return mask, kth


def _top_k_mask(group: np.ndarray, score: np.ndarray, k: int | None, order: np.ndarray | None) -> np.ndarray:
    if k is None or k < 0 or k >= len(score):   # no cap, or one every group fits (inf too)
        return np.ones(len(score), bool)
    return _top_k(group, score, math.ceil(k), order)[0]   # rank < k, for a fractional k too


def cap_per_image(img_idx: np.ndarray, score: np.ndarray, n: int, order: np.ndarray | None = None) -> np.ndarray:
    """AP-Old's selection: the top ``n`` detections of each image (``n < 0``: no cap)."""
    return _top_k_mask(img_idx, score, n, order)


def top_k_per_class(cat_idx: np.ndarray, score: np.ndarray, k: int, order: np.ndarray | None = None) -> np.ndarray:
    """AP-Fixed's selection: the top ``k`` detections of each class over the whole set."""
    return _top_k_mask(cat_idx, score, k, order)


def federated_mask(gt, img_idx: np.ndarray, cat_idx: np.ndarray) -> np.ndarray:
    """LVIS rule: a class is evaluated on an image only if verified present or absent there."""
    if gt.kind != "lvis":
        return np.ones(len(img_idx), bool)
    K = gt.num_categories
    keys = img_idx * K + cat_idx
    if gt.num_images * K <= 200_000_000:     # a dense table is fastest up to ~200 MB
        valid = np.zeros(gt.num_images * K, bool)
        valid[gt.ann_key] = True
        valid[gt.neg_keys] = True
        return valid[keys]
    return np.isin(keys, np.union1d(gt.ann_key, gt.neg_keys))


def evaluable_area(gt, area: np.ndarray) -> np.ndarray:
    """LVIS rule: lvis-api evaluates only results with 0 < area < inf (a result's area is its box's
    w * h, which can underflow to 0 or overflow to inf, or its mask's). Applied after the caps, as
    lvis-api drops such results after its per-image cap. COCO rules keep every result."""
    if gt.kind != "lvis" or area is None:
        return np.ones(len(area) if area is not None else 0, bool)
    return (area > 0) & (area < np.inf)


def subset_order(order: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """A score order of all rows (``score_order``) restricted to the rows of bool mask ``rows``, as
    positions within that subset: the subset's own score order, without sorting again."""
    pos = np.cumsum(rows) - 1                  # row -> position inside the subset
    return pos[order[rows[order]]]


_TABLE_MAX = 1 << 26   # value ranges up to this are looked up in a table of flags (np.isin's "table" kind)
_BLOCK = 1 << 20       # else values are searched this many at a time (bounded temporaries)


def in_sorted(values: np.ndarray, sorted_unique: np.ndarray) -> np.ndarray:
    """Whether each of ``values`` is in ``sorted_unique`` (sorted, no repeats): ``np.isin`` without its
    sort (and without the import of ``numpy.ma`` that sort path costs, 12 ms): a table of flags over
    the range of ``sorted_unique`` when it is small, else binary search block by block."""
    values = np.asarray(values)
    if not len(sorted_unique) or not len(values):
        return np.zeros(len(values), bool)
    if int(sorted_unique[-1]) - int(sorted_unique[0]) < _TABLE_MAX:
        return np.isin(values, sorted_unique, kind="table")
    out = np.empty(len(values), bool)
    for lo in range(0, len(values), _BLOCK):
        v = values[lo:lo + _BLOCK]
        i = np.searchsorted(sorted_unique, v)
        i[i == len(sorted_unique)] = 0
        out[lo:lo + _BLOCK] = sorted_unique[i] == v
    return out


def class_subset_mask(cat_idx: np.ndarray, keep_cats: np.ndarray) -> np.ndarray:
    """Rows whose category index is in ``keep_cats``."""
    return np.isin(cat_idx, keep_cats)


def agnostic_order(cat_idx: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Indices by descending score, ties by category index, then index: the order pycocotools
    gives an image's detections when it evaluates class-agnostically (``useCats = 0``)."""
    by_cat = np.argsort(_small_int(cat_idx), kind="stable")
    return by_cat[np.argsort(-score[by_cat], kind="stable")]
