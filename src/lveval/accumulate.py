"""Precision-recall accumulation: per class (AP-Old, AP-Fixed) and pooled (AP-Pool).

Numerics follow lvis-api/pycocotools ``accumulate`` step for step: cumulative
TP/FP counts, precision ``tp / (fp + tp + eps)``, precision made monotone from
the right, then sampled at the 101 recall thresholds with ``side='left'``
searches (done here on integer TP counts, which is exact and vectorised).

Weights (for resampling, ``lveval.comparison``): a row of integer weight ``w``
stands for ``w`` consecutive copies of that detection in the ranking, and a
weighted ground-truth count for the instances of every copy. Sampled precision
only reads the curve at true positives (a false positive never raises the
precision envelope above that of the last true positive before it), and inside
a run of ``w`` equal true positives the last copy has the highest precision;
so the weighted cumulative counts at each row's end give exactly the curve of
the expanded ranking, and rows of weight 0 change nothing. Unweighted calls
take the original code path unchanged.

:func:`per_class` runs in the compiled helper ``_curves`` when it is built (one
pass per class, area range and threshold over the class's detections, the
same floating-point steps); without a C compiler, or with
``LVEVAL_PURE_CURVES=1``, the numpy code below gives the same values.
"""
from __future__ import annotations

import os

import numpy as np

from .match import Matching
from .params import Params
from .threads import halves

try:
    from . import _curves  # type: ignore[attr-defined]
except ImportError:   # built without a C compiler
    _curves = None

_EPS = np.spacing(1)


_THREADS_ABOVE = 50_000   # detections above which the compiled curves run on two threads


def compiled() -> bool:
    """Whether the compiled curves are built (and not turned off with LVEVAL_PURE_CURVES=1)."""
    return _curves is not None and os.environ.get("LVEVAL_PURE_CURVES", "") in ("", "0")


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


def pr_curve(tp: np.ndarray, fp: np.ndarray, num_gt, rec_thrs: np.ndarray, weight: np.ndarray | None = None):
    """Sampled precision (L, R) and final recall (L,) from boolean TP/FP flags (L, n) in rank order.

    Each row l is one curve (an IoU threshold, possibly of another area range)
    with its own ground-truth count ``num_gt[l]`` (> 0). ``weight``: optional
    non-negative integer multiplicity (n,) of each detection (see the module note).
    """
    L, n = tp.shape
    R = len(rec_thrs)
    num_gt = np.broadcast_to(np.asarray(num_gt, np.int64), (L,))
    q = np.zeros((L, R))
    if n == 0:
        return q, np.zeros(L)
    if weight is not None:
        w = np.asarray(weight, np.int64)[None, :]
        tp, fp = tp * w, fp * w
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
              max_rank: int | None = None, weight: np.ndarray | None = None, num_gt: np.ndarray | None = None):
    """Per-class precision (T, R, K, A) and recall (T, K, A), -1 where a class has no ground truth.

    ``subset``: rows of ``m`` the protocol evaluates; ``max_rank``: keep only the
    first ``max_rank`` detections of each (image, category) (pycocotools' maxDets).
    ``weight`` (rows of ``m``) and ``num_gt`` (K, A): multiplicities of the rows and
    the matching ground-truth counts (default: every row once, ``m.num_gt``).
    """
    ngt = m.num_gt if num_gt is None else np.asarray(num_gt)
    T, R, A = len(params.iou_thrs), len(params.rec_thrs), len(params.area_rng)
    fast = compiled()
    # the compiled pass writes every entry (-1 where a class has no ground truth)
    precision = np.empty((T, R, num_cats, A)) if fast else np.full((T, R, num_cats, A), -1.0)
    recall = np.empty((T, num_cats, A)) if fast else np.full((T, num_cats, A), -1.0)
    keep = np.ones(len(m.det), bool) if subset is None else subset.copy()
    if max_rank is not None:
        keep &= m.rank < max_rank
    idx = m.class_order[keep[m.class_order]]
    cats = m.cat[idx]
    lo = np.searchsorted(cats, np.arange(num_cats), "left")
    hi = np.searchsorted(cats, np.arange(num_cats), "right")
    if fast:
        g = np.ascontiguousarray(ngt, np.int64)
        if g.shape != (num_cats, A):
            raise ValueError(f"per_class: ground-truth counts of shape {g.shape}, expected {(num_cats, A)}")
        uniq, inv = np.unique(np.maximum(g, 1), return_inverse=True)
        steps = np.ascontiguousarray(recall_steps(params.rec_thrs, uniq)[inv.reshape(-1)])
        w = None if weight is None else np.ascontiguousarray(weight, np.int64)
        mat, ign = np.ascontiguousarray(m.matched), np.ascontiguousarray(m.ignored)
        order = np.ascontiguousarray(idx, np.int64)
        lo, hi = lo.astype(np.int64), hi.astype(np.int64)

        def run(k0: int, k1: int) -> None:
            _curves.per_class(order, lo, hi, mat, ign, mat.dtype.itemsize, mat.shape[0], mat.shape[1], g, steps, w,
                              T, R, precision, recall, k0, k1)

        halves(num_cats, run, len(order) >= _THREADS_ABOVE or num_cats >= 1000)   # class halves write apart
        return precision, recall
    for k in np.flatnonzero((ngt > 0).any(axis=1)):
        seg = idx[lo[k]:hi[k]]
        areas = np.flatnonzero(ngt[k] > 0)
        mt, ig = m.flags(areas, seg)   # (a, T, n)
        shape = (len(areas) * T, len(seg))
        q, rc = pr_curve((mt & ~ig).reshape(shape), (~mt & ~ig).reshape(shape),
                         np.repeat(ngt[k, areas], T), params.rec_thrs,
                         None if weight is None else weight[seg])
        precision[:, :, k, areas] = q.reshape(len(areas), T, R).transpose(1, 2, 0)
        recall[:, k, areas] = rc.reshape(len(areas), T).T
    return precision, recall


def pooled(m: Matching, subset: np.ndarray | None, cats: np.ndarray, params: Params,
           weight: np.ndarray | None = None, num_gt: np.ndarray | None = None):
    """AP-Pool's precision (T, R) over the categories ``cats`` (area range 'all'); None without GT.

    Detections of all pooled classes are ranked together by descending score;
    ties follow image id, then category id, then rank inside the group.
    ``weight``/``num_gt``: as in :func:`per_class`.
    """
    ngt = m.num_gt if num_gt is None else np.asarray(num_gt)
    in_pool = np.zeros(ngt.shape[0], bool)
    in_pool[cats] = True
    ng = int(ngt[in_pool, 0].sum())
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
        q[t:t + 1], _ = pr_curve((mt & ~ig)[None], (~mt & ~ig)[None], ng, params.rec_thrs,
                                 None if weight is None else weight[idx])
    return q


def seqsum(x: np.ndarray, axis: int) -> np.ndarray:
    """Sum along ``axis`` in index order (a cumulative sum's last value): unlike ``np.sum``, whose
    pairwise blocking depends on the array's shape, each result depends only on its own terms,
    so a replicate's figures do not depend on how many replicates are computed together."""
    return np.take(np.cumsum(x, axis=axis), -1, axis=axis)


def _segment_envelopes(a: np.ndarray, counts: np.ndarray, starts: np.ndarray, ends: np.ndarray,
                       want_env: bool = False):
    """Per segment [starts[k], ends[k]) of the rows of ``a`` (m, B): the suffix maximum ``env`` of
    ``a`` inside the segment and ``sum(env * counts)`` over the segment's rows, in row order.

    Segments are grouped by length into power-of-two buckets, padded, and scanned with
    ``np.maximum.accumulate`` on the reversed rows: exact, each value touched about twice.
    Returns (sums (S, B), env (m, B) or None).
    """
    S, B = len(starts), a.shape[1]
    sums = np.zeros((S, B))
    env = np.empty_like(a) if want_env else None
    lens = ends - starts
    nz = np.flatnonzero(lens > 0)
    if not len(nz):
        return sums, env
    bucket = np.ceil(np.log2(lens[nz])).astype(np.int64)
    for bk in np.unique(bucket):
        segs = nz[bucket == bk]
        L = 1 << int(bk)
        col = np.arange(L)[None, :]
        ok = col < lens[segs][:, None]
        idx = starts[segs][:, None] + np.where(ok, col, 0)
        g = a[idx]                                            # (segments, L, B)
        g[~ok] = -1.0                                         # below every precision
        g = np.maximum.accumulate(g[:, ::-1], axis=1)[:, ::-1]
        c = counts[idx]
        c[~ok] = 0
        sums[segs] = seqsum(g * c, axis=1)
        if want_env:
            env[idx[ok]] = g[ok]  # type: ignore[index]
    return sums, env


def _count_thresholds(rec_thrs: np.ndarray, x: np.ndarray, even: bool) -> np.ndarray:
    """Number of recall thresholds <= x (``searchsorted(rec_thrs, x, 'right')``), by arithmetic when
    the thresholds are ``even``ly spaced from 0 to 1 as the references' are, else by search."""
    R = len(rec_thrs)
    if not even:
        return np.searchsorted(rec_thrs, x, "right")
    # floor(x * (R - 1)) is the count minus one, give or take one rounding step either way
    r0 = np.clip(np.floor(x * (R - 1)).astype(np.int64), 0, R - 1)
    c = r0 + (rec_thrs[r0] <= x)                      # thresholds 0..r0-1 are <= x, r0 maybe
    c += (r0 < R - 1) & (rec_thrs[np.minimum(r0 + 1, R - 1)] <= x)   # floor one below
    return c


def batch_curves(seg: np.ndarray, num_seg: int, matched: np.ndarray, ignored: np.ndarray, num_thrs: int,
                 weight: np.ndarray, num_gt: np.ndarray, rec_thrs: np.ndarray, full: bool = False):
    """Weighted precision-recall curves of many weightings at once (bootstrap replicates).

    The rows are detections in rank order, grouped in contiguous segments
    (``seg``: non-decreasing segment index, e.g. the class in per-class order
    or the pool); ``matched``/``ignored``: their bits (one per IoU threshold) of
    one area range; ``weight`` (n, B): integer multiplicity of each row in each
    of B weightings; ``num_gt`` (B, S): the weighted ground-truth count of each
    segment. Each (weighting, threshold, segment) curve is what :func:`pr_curve`
    gives with that weight (same floating-point steps), computed only at true
    positives: false positives enter through weighted counts (a cumulative
    count of rows that are not ignored when unmatched, minus the matched ones).

    Returns ``qsum`` (B, T, S): the sum over recall thresholds of the sampled
    precision, ``recall`` (B, T, S): final recall (0 where ``num_gt`` is 0), and
    with ``full`` the sampled precision itself (B, T, S, R).
    """
    n, B = weight.shape
    S, T, R = num_seg, num_thrs, len(rec_thrs)
    qsum = np.zeros((B, T, S))
    recall = np.zeros((B, T, S))
    qfull = np.zeros((B, T, S, R)) if full else None
    num_gt = np.asarray(num_gt, np.int64)
    starts = np.searchsorted(seg, np.arange(S), "left")
    ends = np.searchsorted(seg, np.arange(S), "right")
    valid = num_gt > 0
    vb, vs = np.nonzero(valid)
    if not len(vb) or n == 0:
        return (qsum, recall, qfull) if full else (qsum, recall)
    if full:   # recall steps of every valid (weighting, segment); offsets make the (s, b) blocks disjoint
        uniq, inv = np.unique(num_gt[valid], return_inverse=True)
        steps = recall_steps(rec_thrs, uniq)[inv.reshape(-1)]                 # (V, R)
        # in (replicate, segment) order, the order of the flattened keys below
        off = np.cumsum(np.r_[0, (num_gt + 1).ravel()[:-1]]).reshape(B, S).T                # (S, B)
    # rows not ignored when unmatched, counted cumulatively (the same for every threshold)
    unmatched_counted = (ignored & ~matched) == 0
    cdt = np.int32 if n * max(int(weight.max()), 1) < 2 ** 31 else np.int64   # running counts fit
    c_all = np.zeros((n + 1, B), cdt)
    np.cumsum(weight * unmatched_counted[:, None], axis=0, dtype=cdt, out=c_all[1:])
    w = weight
    ngT = np.maximum(num_gt.T, 1).astype(np.float64)                           # (S, B)
    even = R >= 2 and np.array_equal(rec_thrs, np.linspace(0.0, 1.0, R))
    for t in range(T):
        bit = matched.dtype.type(1) << matched.dtype.type(t)
        mt = (matched & bit) != 0
        tp = mt & ((ignored & bit) == 0)
        P = np.flatnonzero(tp)
        if not len(P):
            continue
        sP = seg[P]
        pS = np.searchsorted(P, starts, "left")
        pE = np.searchsorted(P, ends, "left")
        c_tp = np.zeros((len(P) + 1, B), cdt)
        np.cumsum(w[P], axis=0, dtype=cdt, out=c_tp[1:])
        ctp = c_tp[1:] - c_tp[pS[sP]]
        # false positives up to each true positive: counted rows minus matched counted rows
        M = np.flatnonzero(mt & unmatched_counted)
        c_m = np.zeros((len(M) + 1, B), cdt)
        np.cumsum(w[M], axis=0, dtype=cdt, out=c_m[1:])
        mS = np.searchsorted(M, starts, "left")
        kP = np.searchsorted(M, P, "right")
        cfp = (c_all[P + 1] - c_all[starts[sP]]) - (c_m[kP] - c_m[mS[sP]])
        tp_sum = ctp.astype(np.float64)
        fp_sum = cfp.astype(np.float64)
        pr = tp_sum / (fp_sum + tp_sum + _EPS)
        total = c_tp[pE] - c_tp[pS]                                            # (S, B)
        recall[:, t] = np.where(valid, total.T / np.maximum(num_gt, 1), 0.0)
        if full:   # the sampled values themselves: first true positive reaching each recall step
            _, env = _segment_envelopes(pr, np.zeros(pr.shape, np.int64), pS, pE, want_env=True)
            nP = len(P)
            keys = (ctp + off[sP]).T.ravel()                                   # (b, position) order
            offv = off[vs, vb]
            idx = np.searchsorted(keys, steps + offv[:, None], "left")         # (V, R)
            # position of segment vs's end inside replicate vb's block
            ok = idx < (vb * nP + pE[vs])[:, None]
            envf = env.T.ravel()
            vals = np.where(ok, envf[np.minimum(idx, keys.size - 1)], 0.0)
            qfull[vb, t, vs] = vals  # type: ignore[index]
            qsum[vb, t, vs] = seqsum(vals, axis=1)
            continue
        # the sum over recall thresholds: a true positive is the first to reach the recall
        # thresholds r with prev < step_r <= ctp, i.e. prev/g < thr_r <= ctp/g as the steps are
        # computed (k / g >= thr in float64), so count thresholds instead of searching each one
        reached = _count_thresholds(rec_thrs, ctp / ngT[sP], even)
        prev = np.empty_like(reached)
        prev[0] = 0
        prev[1:] = reached[:-1]
        prev[pS[sP] == np.arange(len(P))] = 0                                  # first of its segment
        qs, _ = _segment_envelopes(pr, reached - prev, pS, pE)
        qsum[:, t] = np.where(valid, qs.T, 0.0)
    return (qsum, recall, qfull) if full else (qsum, recall)
