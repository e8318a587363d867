"""Greedy matching of detections to ground truth, per (image, category).

Semantics follow pycocotools' ``evaluateImg`` and lvis-api's ``evaluate_img``:
detections in descending score order (ties in file order) each take the
unmatched ground truth with the highest IoU >= the threshold, preferring
non-ignored ground truth, ties going to the later one; crowd regions (COCO)
may be matched many times. Unmatched detections are ignored when their area
is outside the area range or (LVIS) their class is not exhaustively annotated.

The sequential greedy loop is replaced by a vectorised fixed-point: in each
round every undecided detection proposes its best available ground truth,
and a proposal is final when no higher-ranked undecided detection of the same
(image, category, threshold) could still take that ground truth. This gives
exactly the greedy result (see docs/engine.md) in a handful of rounds, for all
IoU thresholds at once, with no Python loop over detections.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .io import masks
from .params import Params
from .select import in_sorted, refine, score_order

_PAIR_CHUNK = 4_000_000


@dataclass
class Matching:
    """Match outcome of a set of detections, sorted by (image, category, -score, row).

    ``matched``/``ignored`` hold one bit per IoU threshold for each area range.
    """

    det: np.ndarray        # (n,) row index into the Detections
    img: np.ndarray        # (n,) image index
    cat: np.ndarray        # (n,) category index
    score: np.ndarray      # (n,)
    rank: np.ndarray       # (n,) rank inside its (image, category) group
    matched: np.ndarray    # (A, n) bit t: matched at IoU threshold t
    ignored: np.ndarray    # (A, n) bit t: ignored at IoU threshold t
    num_gt: np.ndarray     # (K, A) non-ignored ground truth per category and area range
    num_thrs: int
    gt_index: np.ndarray | None = None   # (T, n) matched annotation (area 'all'), -1; with match(gt_index=True)
    _pool_order: np.ndarray | None = None
    _class_order: np.ndarray | None = None

    @property
    def pool_order(self) -> np.ndarray:
        """Positions by (-score, image, category, rank): AP-Pool's ranking."""
        if self._pool_order is None:
            self._pool_order = score_order(self.score)
        return self._pool_order

    @property
    def class_order(self) -> np.ndarray:
        """Positions by (category, -score, image, rank): the references' per-class ranking."""
        if self._class_order is None:
            self._class_order = refine(self.pool_order, self.cat)
        return self._class_order

    def flags(self, area, idx: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Boolean matched and ignored flags of rows ``idx``: (T, m) for one area range, (a, T, m)
        for an array of ``a`` area ranges."""
        m, g = (self.matched, self.ignored) if idx is None else (self.matched[:, idx], self.ignored[:, idx])
        m, g = m[area], g[area]   # rows first: a class's rows are few, all rows many
        shifts = np.arange(self.num_thrs, dtype=m.dtype)[:, None]
        return ((m[..., None, :] >> shifts) & 1).astype(bool), ((g[..., None, :] >> shifts) & 1).astype(bool)


def _bits_dtype(t: int):
    for dt in (np.uint16, np.uint32, np.uint64):
        if t <= np.iinfo(dt).bits:
            return dt
    raise ValueError("at most 64 IoU thresholds")


def box_iou_pairs(dt: np.ndarray, gt: np.ndarray, crowd: np.ndarray) -> np.ndarray:
    """IoU of paired xywh boxes, with pycocotools' exact floating-point steps (maskApi.c bbIou)."""
    dx, dy, dw, dh = dt[:, 0], dt[:, 1], dt[:, 2], dt[:, 3]
    gx, gy, gw, gh = gt[:, 0], gt[:, 1], gt[:, 2], gt[:, 3]
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):   # as the C code: inf/0 propagate
        w = np.minimum(dw + dx, gw + gx) - np.maximum(dx, gx)
        h = np.minimum(dh + dy, gh + gy) - np.maximum(dy, gy)
        inter = w * h
        da = dw * dh
        union = np.where(crowd, da, da + gw * gh - inter)
        out = np.zeros(len(dt))
        ok = (w > 0) & (h > 0)
        np.divide(inter, union, out=out, where=ok)
    return out


def _group_spans(keys_sorted: np.ndarray, query: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return (np.searchsorted(keys_sorted, query, "left"), np.searchsorted(keys_sorted, query, "right"))


def _gt_column(gt):
    """The ground truth's masks (``gt.rles()``) as an RLEColumn with their boxes, or None if one is
    not plain RLE."""
    rles = gt.rles()
    h, w = gt.img_h[gt.ann_img], gt.img_w[gt.ann_img]
    col, ok = masks.pack(rles, h, w)
    if not ok.all():
        return None
    col.box = masks.stats(col)[2]
    return col


def _candidate_boxes(col, rows: np.ndarray, has: np.ndarray) -> np.ndarray:
    """Mask boxes (pycocotools' toBbox) of positions ``rows`` (n, 4), computed only where ``has``."""
    if col.box is not None:
        return col.box[rows]
    out = np.zeros((len(rows), 4))
    idx = np.flatnonzero(has)
    out[idx] = masks.stats(col.take(rows[idx]))[2]
    return out


def _mask_pair_iou(d_col, g_col, d_rows, g_rows, crowd, a=None, b=None) -> np.ndarray:
    """Mask IoU of row pairs; given the pairs' mask boxes ``a`` and ``b``, pairs whose boxes do not
    meet are 0 without decoding (they share no pixel: a box holds all of its mask's pixels)."""
    if a is None or b is None:
        return masks.pair_iou(d_col, g_col, d_rows, g_rows, crowd)
    meet = np.flatnonzero((a[:, 0] < b[:, 0] + b[:, 2]) & (b[:, 0] < a[:, 0] + a[:, 2])
                          & (a[:, 1] < b[:, 1] + b[:, 3]) & (b[:, 1] < a[:, 1] + a[:, 3]))
    out = np.zeros(len(d_rows))
    out[meet] = masks.pair_iou(d_col, g_col, d_rows[meet], g_rows[meet], crowd[meet])
    return out


def _candidate_pairs(gt, dets, rows, dkey, gkey_sorted, gorder, iou_type, thr_min):
    """All (detection, ground truth) pairs of a group with IoU >= the lowest threshold:
    (detection positions in ``rows``, ground-truth positions in ``gorder``, IoU values)."""
    gs, ge = _group_spans(gkey_sorted, dkey)
    cnt = ge - gs
    crowd_sorted = gt.ann_crowd[gorder]
    pds, pgs, ious = [], [], []
    pair_iou = None
    if iou_type == "bbox":
        box_g = gt.ann_box[gorder]
        pair_iou = lambda pd, pg: box_iou_pairs(dets.bbox[rows[pd]], box_g[pg], crowd_sorted[pg])
    elif masks.compiled() and isinstance(dets.segm, masks.RLEColumn):
        g_col = _gt_column(gt)
        if g_col is not None:   # masks in C over the pairs of all groups at once
            d_box = _candidate_boxes(dets.segm, rows, cnt > 0) if thr_min > 0 else None
            pair_iou = lambda pd, pg: _mask_pair_iou(dets.segm, g_col, rows[pd], gorder[pg], crowd_sorted[pg],
                                                     None if d_box is None else d_box[pd], g_col.box[gorder[pg]])
    if pair_iou is not None:
        chunk = _PAIR_CHUNK if iou_type == "bbox" else _PAIR_CHUNK // 4   # masks: larger temporaries
        has = np.flatnonzero(cnt > 0)
        csum = np.cumsum(cnt[has])
        lo = 0
        while lo < len(has):
            base = csum[lo - 1] if lo else 0
            hi = int(np.searchsorted(csum, base + chunk, "right"))
            hi = max(hi, lo + 1)
            d = has[lo:hi]
            c = cnt[d]
            pd = np.repeat(d, c)
            off = np.arange(len(pd)) - np.repeat(np.cumsum(c) - c, c)
            pg = np.repeat(gs[d], c) + off
            iou = pair_iou(pd, pg)
            keep = iou >= thr_min
            pds.append(pd[keep])
            pgs.append(pg[keep])
            ious.append(iou[keep])
            lo = hi
    else:   # pycocotools per (image, category) group
        from pycocotools import mask as mask_utils

        rles = gt.rles()
        segm = dets.segm
        has = cnt > 0
        starts = np.flatnonzero(has & np.r_[True, dkey[1:] != dkey[:-1]])
        for s in starts:
            e = s + 1
            while e < len(dkey) and dkey[e] == dkey[s]:
                e += 1
            g0, g1 = int(gs[s]), int(ge[s])
            m = mask_utils.iou([segm[r] for r in rows[s:e]], [rles[gorder[k]] for k in range(g0, g1)],
                               [int(x) for x in crowd_sorted[g0:g1]])
            m = np.asarray(m, dtype=np.float64).reshape(e - s, g1 - g0)
            di, gi = np.nonzero(m >= thr_min)
            pds.append(di + s)
            pgs.append(gi + g0)
            ious.append(m[di, gi])
    if not pds:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    return np.concatenate(pds), np.concatenate(pgs), np.concatenate(ious)


def greedy_match(pd, pg, iou, regular, crowd, thr_eff, n_det, n_gt) -> np.ndarray:
    """Greedy matching at every threshold; returns (T, n_det) matched ground-truth index or -1.

    ``pd``/``pg``/``iou``: candidate pairs (detection position, ground-truth
    position, IoU); detection positions increase with priority order inside a
    group. ``regular[pg]`` is False for ignored ground truth.
    """
    T = len(thr_eff)
    match = np.full(T * n_det, -1, np.int64)
    if len(pd) == 0:
        return match.reshape(T, n_det)
    o = np.lexsort((pg, iou, regular[pg], pd))
    pd, pg, iou = pd[o], pg[o], iou[o]
    cr = crowd[pg]
    parts = [(iou >= thr, t) for t, thr in enumerate(thr_eff)]
    it_det = np.concatenate([pd[m] + t * n_det for m, t in parts])
    it_gt = np.concatenate([pg[m] + t * n_gt for m, t in parts])
    it_cr = np.concatenate([cr[m] for m, t in parts])
    taken = np.zeros(T * n_gt, bool)
    while len(it_det):
        n = len(it_det)
        avail = it_cr | ~taken[it_gt]
        starts = np.flatnonzero(np.r_[True, it_det[1:] != it_det[:-1]])
        best = np.maximum.reduceat(np.where(avail, np.arange(n), -1), starts)
        has = best >= 0
        pick = best[has]
        pick_gt = it_gt[pick]
        pick_cr = it_cr[pick]
        ok = pick_cr.copy()
        nc = np.flatnonzero(~pick_cr)
        if len(nc):
            av = np.flatnonzero(avail & ~it_cr)
            uq, first = np.unique(it_gt[av], return_index=True)
            claim = it_det[av[first]]
            ok[nc] = claim[np.searchsorted(uq, pick_gt[nc])] == it_det[pick[nc]]
        done = ~has
        done[np.flatnonzero(has)[ok]] = True
        win = pick[ok]
        match[it_det[win]] = it_gt[win] - (it_det[win] // n_det) * n_gt
        taken[pick_gt[ok & ~pick_cr]] = True
        keep = np.repeat(~done, np.diff(np.r_[starts, n]))
        it_det, it_gt, it_cr = it_det[keep], it_gt[keep], it_cr[keep]
    return match.reshape(T, n_det)


def group_order(dets, selection: np.ndarray, order: np.ndarray | None = None,
                class_agnostic: bool = False) -> np.ndarray:
    """Rows of ``selection`` sorted by (image, category, -score, row); class-agnostically by
    (image, then ``order``)."""
    if order is None:
        order = score_order(dets.score)
    o = order[selection[order]]
    if not class_agnostic:
        o = refine(o, dets.cat_idx)
    return refine(o, dets.img_idx)


def match(gt, dets, selection: np.ndarray, params: Params, order: np.ndarray | None = None,
          gt_index: bool = False) -> Matching:
    """Match the detections in boolean ``selection`` (selected, federated-filtered) against ``gt``.

    ``order``: a precomputed score order of all detections (see ``select.score_order``).
    ``gt_index``: also record which annotation each row matched in area range 'all' (error analysis).
    """
    K = gt.num_categories
    agnostic = bool(getattr(params, "class_agnostic", False))
    KG = 1 if agnostic else K          # match groups: (image, category), or (image) class-agnostically
    A = len(params.area_rng)
    T = len(params.iou_thrs)
    selection = np.asarray(selection)
    if selection.dtype != bool:
        mask = np.zeros(len(dets), bool)
        mask[selection] = True
        selection = mask
    rows = group_order(dets, selection, order, agnostic).astype(np.int64)
    d_cat = np.zeros(len(rows), np.int64) if agnostic else dets.cat_idx[rows]
    dkey = dets.img_idx[rows] * KG + d_cat
    n = len(rows)
    starts = np.flatnonzero(np.r_[True, dkey[1:] != dkey[:-1]]) if n else np.zeros(0, np.int64)
    rank = np.arange(n) - np.repeat(starts, np.diff(np.r_[starts, n])) if n else np.zeros(0, np.int64)

    gorder = np.argsort(gt.ann_key, kind="stable")   # (image, category, file order), as the references
    gkey_sorted = (gt.ann_img[gorder] if agnostic else gt.ann_key[gorder])
    g_area = gt.ann_area[gorder]
    g_ign = gt.ann_ignore[gorder]
    g_crowd = gt.ann_crowd[gorder]
    g_cat = np.zeros(len(gorder), np.int64) if agnostic else gt.ann_cat[gorder]
    NG = len(gorder)

    thr_eff = np.minimum(params.iou_thrs, 1 - 1e-10)
    thr_min = float(thr_eff.min()) if T else 1.0
    pd, pg, iou = _candidate_pairs(gt, dets, rows, dkey, gkey_sorted, gorder, params.iou_type, thr_min)
    if params.iou_type == "boundary":   # boundaries only of the masks of pairs mask IoU keeps
        from .boundary import refine_pairs

        pd, pg, iou = refine_pairs(gt, dets, rows, gorder, pd, pg, iou, params.dilation_ratio, thr_min)
    # compact the detections that have candidates
    cand, pdc = np.unique(pd, return_inverse=True)
    nc = len(cand)

    d_area = dets.area[rows]
    # not exhaustively annotated: judged by the detection's own class, also class-agnostically
    real_key = dets.img_idx[rows] * K + dets.cat_idx[rows]
    nel = in_sorted(real_key, gt.nel_keys)   # nel_keys: sorted, unique
    bits = _bits_dtype(T)
    shifts = (np.ones(1, bits) << np.arange(T, dtype=bits))[:, None]
    matched = np.zeros((A, n), bits)
    ignored = np.zeros((A, n), bits)
    num_gt = np.zeros((KG, A), np.int64)
    all_bits = bits(np.bitwise_or.reduce(shifts.ravel())) if T else bits(0)
    g_index = np.full((T, n), -1, np.int64) if gt_index else None
    for a, (lo, hi) in enumerate(params.area_rng):
        gi = g_ign | (g_area < lo) | (g_area > hi)
        num_gt[:, a] = np.bincount(g_cat[~gi], minlength=KG)
        dt_out = (d_area < lo) | (d_area > hi)
        ig_unmatched = dt_out | nel
        ignored[a] = np.where(ig_unmatched, all_bits, bits(0))
        if nc == 0:
            continue
        m = greedy_match(pdc, pg, iou, ~gi, g_crowd, thr_eff, nc, NG)  # (T, nc)
        is_m = m >= 0
        if g_index is not None and a == 0:
            g_index[:, cand] = np.where(is_m, gorder[np.maximum(m, 0)], -1)
        ig = np.where(is_m, gi[np.maximum(m, 0)], ig_unmatched[cand][None, :])
        matched[a, cand] = np.bitwise_or.reduce(np.where(is_m, shifts, bits(0)), axis=0)
        ignored[a, cand] = np.bitwise_or.reduce(np.where(ig, shifts, bits(0)), axis=0)
    return Matching(det=rows, img=dets.img_idx[rows], cat=d_cat, score=dets.score[rows],
                    rank=rank.astype(np.int64), matched=matched, ignored=ignored, num_gt=num_gt,
                    num_thrs=T, gt_index=g_index)
