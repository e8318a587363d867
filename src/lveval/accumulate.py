"""Precision-recall accumulation: per class (AP-Old, AP-Fixed) and pooled (AP-Pool).

Numerics follow lvis-api/pycocotools ``accumulate`` step for step: cumulative
TP/FP counts, precision ``tp / (fp + tp + eps)``, precision made monotone from
the right, then sampled at the 101 recall thresholds with ``side='left'``
searches (done here on integer TP counts, which is exact and vectorised).
"""
from __future__ import annotations

import numpy as np

from .match import Matching
from .params import Params

_EPS = np.spacing(1)


def recall_steps(rec_thrs: np.ndarray, num_gt) -> np.ndarray:
    """Smallest TP count k with ``k / num_gt >= thr`` (float64, as the references compute recall).

    ``num_gt`` may be an int (returns (R,)) or an array (L,) (returns (L, R)).
    """
    ng = np.asarray(num_gt, np.int64)
    g = ng.reshape(-1, 1, 1)
    base = np.floor(rec_thrs[None, :, None] * g).astype(np.int64) - 1
    ks = base + np.arange(4)[None, None, :]
    ok = (ks.astype(np.float64) / g) >= rec_thrs[None, :, None]
    first = np.argmax(ok, axis=2)
    out = np.take_along_axis(ks, first[..., None], axis=2)[..., 0]
    out = np.where(ok.any(axis=2), out, g[:, :, 0] + 1)   # never reached: TP counts are at most num_gt
    out = np.maximum(out, 0)
    return out[0] if ng.ndim == 0 else out


def pr_curve(tp: np.ndarray, fp: np.ndarray, num_gt, rec_thrs: np.ndarray):
    """Sampled precision (L, R) and final recall (L,) from boolean TP/FP flags (L, n) in rank order.

    Each row l is one curve (an IoU threshold, possibly of another area range)
    with its own ground-truth count ``num_gt[l]`` (> 0).
    """
    L, n = tp.shape
    R = len(rec_thrs)
    num_gt = np.broadcast_to(np.asarray(num_gt, np.int64), (L,))
    q = np.zeros((L, R))
    if n == 0:
        return q, np.zeros(L)
    tpi = np.cumsum(tp, axis=1)
    tp_sum = tpi.astype(np.float64)
    fp_sum = np.cumsum(fp, axis=1).astype(np.float64)
    rc_last = tp_sum[:, -1] / num_gt
    pr = tp_sum / (fp_sum + tp_sum + _EPS)
    pr = np.maximum.accumulate(pr[:, ::-1], axis=1)[:, ::-1]
    uniq, inv = np.unique(num_gt, return_inverse=True)
    steps = recall_steps(rec_thrs, uniq)[inv.reshape(-1)]
    # rows become disjoint after adding a running offset: one search for all rows
    off = np.r_[0, np.cumsum(num_gt[:-1] + 1)].astype(np.int64)[:, None]
    idx = np.searchsorted((tpi + off).ravel(), (steps + off).ravel(), "left").reshape(L, R)
    idx -= (np.arange(L) * n)[:, None]
    valid = idx < n
    rows = np.broadcast_to(np.arange(L)[:, None], (L, R))
    q[valid] = pr[rows[valid], idx[valid]]
    return q, rc_last


def per_class(m: Matching, subset: np.ndarray | None, params: Params, num_cats: int,
              max_rank: int | None = None):
    """Per-class precision (T, R, K, A) and recall (T, K, A), -1 where a class has no ground truth.

    ``subset``: rows of ``m`` the protocol evaluates; ``max_rank``: keep only the
    first ``max_rank`` detections of each (image, category) (pycocotools' maxDets).
    """
    T, R, A = len(params.iou_thrs), len(params.rec_thrs), len(params.area_rng)
    precision = -np.ones((T, R, num_cats, A))
    recall = -np.ones((T, num_cats, A))
    keep = np.ones(len(m.det), bool) if subset is None else subset.copy()
    if max_rank is not None:
        keep &= m.rank < max_rank
    idx = m.class_order[keep[m.class_order]]
    cats = m.cat[idx]
    lo = np.searchsorted(cats, np.arange(num_cats), "left")
    hi = np.searchsorted(cats, np.arange(num_cats), "right")
    for k in np.flatnonzero((m.num_gt > 0).any(axis=1)):
        seg = idx[lo[k]:hi[k]]
        areas = np.flatnonzero(m.num_gt[k] > 0)
        mt, ig = m.flags(areas, seg)   # (a, T, n)
        shape = (len(areas) * T, len(seg))
        q, rc = pr_curve((mt & ~ig).reshape(shape), (~mt & ~ig).reshape(shape),
                         np.repeat(m.num_gt[k, areas], T), params.rec_thrs)
        precision[:, :, k, areas] = q.reshape(len(areas), T, R).transpose(1, 2, 0)
        recall[:, k, areas] = rc.reshape(len(areas), T).T
    return precision, recall


def pooled(m: Matching, subset: np.ndarray | None, cats: np.ndarray, params: Params):
    """AP-Pool's precision (T, R) over the categories ``cats`` (area range 'all'); None without GT.

    Detections of all pooled classes are ranked together by descending score;
    ties follow image id, then category id, then rank inside the group.
    """
    in_pool = np.zeros(m.num_gt.shape[0], bool)
    in_pool[cats] = True
    ng = int(m.num_gt[in_pool, 0].sum())
    if ng == 0:
        return None
    keep = in_pool[m.cat] if subset is None else (subset & in_pool[m.cat])
    idx = m.pool_order[keep[m.pool_order]]
    T = len(params.iou_thrs)
    q = np.zeros((T, len(params.rec_thrs)))
    for t in range(T):   # one threshold at a time bounds memory on large pools
        bit = m.matched.dtype.type(1) << m.matched.dtype.type(t)
        mt = (m.matched[0][idx] & bit) != 0
        ig = (m.ignored[0][idx] & bit) != 0
        q[t:t + 1], _ = pr_curve((mt & ~ig)[None], (~mt & ~ig)[None], ng, params.rec_thrs)
    return q
