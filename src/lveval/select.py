"""Which detections each protocol evaluates.

Every selection here keeps, inside each (image, category) group, a prefix of
the group's detections ordered by descending score with file order breaking
ties. That is what lets one matching pass serve every protocol and cap: the
greedy matching of a prefix is the prefix of the greedy matching.
"""
from __future__ import annotations

import numpy as np


def rank_within(group: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Rank of each row inside its group by descending score, ties in row order.

    Matches a stable sort on ``-score`` (lvis-api's ``sorted(..., reverse=True)``
    and pycocotools' mergesort).
    """
    n = len(score)
    if n == 0:
        return np.zeros(0, np.int64)
    order = np.lexsort((np.arange(n), -score, group))
    g = group[order]
    starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
    lengths = np.diff(np.r_[starts, n])
    rank_sorted = np.arange(n) - np.repeat(starts, lengths)
    rank = np.empty(n, np.int64)
    rank[order] = rank_sorted
    return rank


def cap_per_image(img_idx: np.ndarray, score: np.ndarray, n: int) -> np.ndarray:
    """AP-Old's selection: the top ``n`` detections of each image (``n < 0``: no cap)."""
    if n is None or n < 0:
        return np.ones(len(score), bool)
    return rank_within(img_idx, score) < n


def top_k_per_class(cat_idx: np.ndarray, score: np.ndarray, k: int) -> np.ndarray:
    """AP-Fixed's selection: the top ``k`` detections of each class over the whole set."""
    if k is None or k < 0:
        return np.ones(len(score), bool)
    return rank_within(cat_idx, score) < k


def federated_mask(gt, img_idx: np.ndarray, cat_idx: np.ndarray) -> np.ndarray:
    """LVIS rule: a class is evaluated on an image only if verified present or absent there."""
    if gt.kind != "lvis":
        return np.ones(len(img_idx), bool)
    keys = img_idx * gt.num_categories + cat_idx
    valid = np.union1d(np.unique(gt.ann_key), gt.neg_keys)
    return np.isin(keys, valid, assume_unique=False)


def class_subset_mask(cat_idx: np.ndarray, keep_cats: np.ndarray) -> np.ndarray:
    """Rows whose category index is in ``keep_cats``."""
    return np.isin(cat_idx, keep_cats)
