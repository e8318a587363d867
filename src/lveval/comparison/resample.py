"""Bootstrap replicates as weights on one matching pass.

A replicate draws the evaluation images with replacement; image ``i`` drawn
``w_i`` times counts ``w_i`` times, ground truth included. The reference is the
data set in which every drawn image is copied ``w_i`` times under new ids that
keep the image order (copy ``j`` of image ``i`` sorts right after copy ``j-1``
and before image ``i+1``) and every detection of it is copied into each copy,
each row's copies consecutive in the results file. On that data set:

* matching is per (image, class), so every copy matches as the original did;
  the ground-truth counts are the ``w``-weighted sums of each image's counts;
* AP-Old's cap is per image: each copy keeps the rows the original keeps;
* AP-Fixed's top K per class counts copies: in the class's score order (ties
  in row order, copies of a row consecutive) row ``r`` keeps
  ``clip(K - (weighted count of the class's rows before r), 0, w_r)`` of its
  copies, namely those in the first image copies. A row kept in copy ``j`` is
  kept in every earlier copy, and inside each (image, class) the kept rows of
  one copy are a prefix in score order, so the matching of the union of all rows
  any replicate can keep (computed once) gives every replicate's outcomes;
* the rankings order ties by image and then by class and rank: the copies of a
  row are consecutive unless another row of the same image (per-class rankings:
  of the same image and class) has the same score; then the copies interleave
  (copy 0 of both, copy 1 of both, ...). Such rows are expanded into one row per
  possible copy (``copy < J``, the largest multiplicity) under a virtual image
  index ``img * J + copy``, each of weight 0 or 1; every other row keeps one row
  of weight ``w``. AP-Old and AP-Fixed use the per-class expansion, AP-Pool its own.

With these weights ``accumulate.per_class``/``pooled``/``batch_curves`` give the
duplicated data set's curves exactly (tests/comparison check this).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..accumulate import batch_curves, seqsum
from ..match import Matching
from ..metrics import Evaluator, class_ap, summarize_pooled
from ..select import refine

UNION_WORK = 2_000_000_000   # row-replicates beyond which every row of a bound class is matched


def draw_weights(num_images: int, replicates: int, seed: int) -> np.ndarray:
    """Multiplicities (replicates, images) of images drawn with replacement; seeded, reproducible."""
    rng = np.random.default_rng(seed)
    W = np.zeros((replicates, num_images), np.int32)
    if num_images == 0 or replicates == 0:
        return W
    draws = rng.integers(0, num_images, size=(replicates, num_images))
    np.add.at(W, (np.repeat(np.arange(replicates), num_images), draws.ravel()), 1)
    return W


def _segments(keys_sorted: np.ndarray) -> np.ndarray:
    """Start position of each row's run of equal keys (keys sorted)."""
    n = len(keys_sorted)
    if n == 0:
        return np.zeros(0, np.int64)
    new = np.r_[True, keys_sorted[1:] != keys_sorted[:-1]]
    starts = np.flatnonzero(new)
    return np.repeat(starts, np.diff(np.r_[starts, n]))


def fixed_copies(class_order: np.ndarray, cat_idx: np.ndarray, img_idx: np.ndarray, WT: np.ndarray,
                 k: int) -> np.ndarray:
    """Copies (N, B) of each detection in AP-Fixed's top ``k`` per class of each weighting ``WT``
    (I, B): ``clip(k - weighted count of the class's rows ranked before it, 0, w)``.

    ``class_order``: the detections by (class, -score, row), as ``select.top_k_per_class`` ranks
    them; ``k < 0``: no budget.
    """
    wrow = WT[img_idx]
    if k is None or k < 0:
        return wrow
    wv = wrow[class_order].astype(np.int64)
    before = np.cumsum(wv, axis=0) - wv
    first = _segments(cat_idx[class_order])
    before -= before[first]
    out = np.empty_like(wrow)
    out[class_order] = np.clip(k - before, 0, wv)
    return out


def gt_counts(gt, params) -> list:
    """Per area range: (image index, class index) of each counted ground-truth instance, sorted by class
    (the instances ``match`` counts in ``num_gt``)."""
    out = []
    for lo, hi in params.area_rng:
        keep = ~(gt.ann_ignore | (gt.ann_area < lo) | (gt.ann_area > hi))
        img, cat = gt.ann_img[keep], gt.ann_cat[keep]
        o = np.argsort(cat, kind="stable")
        out.append((img[o], cat[o]))
    return out


def weighted_num_gt(counts: list, WT: np.ndarray, num_cats: int) -> np.ndarray:
    """Ground-truth counts (B, K, A) of each weighting ``WT`` (I, B)."""
    B = WT.shape[1]
    out = np.zeros((B, num_cats, len(counts)), np.int64)
    for a, (img, cat) in enumerate(counts):
        if not len(cat):
            continue
        starts = np.flatnonzero(np.r_[True, cat[1:] != cat[:-1]])
        out[:, cat[starts], a] = np.add.reduceat(WT[img].astype(np.int64), starts, axis=0).T
    return out


@dataclass
class Expansion:
    """A matching with interleaving tie rows expanded into one row per image copy."""

    m: Matching            # expanded rows (virtual image index img * J + copy)
    src: np.ndarray        # (n_e,) row of the original matching
    copy: np.ndarray       # (n_e,) image copy of the row (0 for rows that are not expanded)
    tie: np.ndarray        # (n_e,) expanded rows (weight 0/1 each)

    def weights(self, p: np.ndarray) -> np.ndarray:
        """Weights (n_e, B) from the kept copies ``p`` (n, B) of each original row."""
        pe = p[self.src]
        if self.tie.any():
            pe = np.where(self.tie[:, None], (self.copy[:, None] < pe).astype(pe.dtype), pe)
        return pe


def expand_ties(m: Matching, J: int, per_class: bool) -> Expansion:
    """Expand rows sharing (image, score) -- with ``per_class``: (image, class, score), the ties of the
    per-class rankings -- with another row into ``J`` copies (see the module note)."""
    n = len(m.det)
    J = max(int(J), 1)
    tie = np.zeros(n, bool)
    if n > 1 and J > 1:
        group = m.img.astype(np.int64) * (int(m.cat.max()) + 1) + m.cat if per_class else m.img
        o = np.lexsort((m.score, group))
        same = (group[o][1:] == group[o][:-1]) & (m.score[o][1:] == m.score[o][:-1])
        tie[o[1:][same]] = True
        tie[o[:-1][same]] = True
    t_rows = np.flatnonzero(tie)
    src = np.r_[np.arange(n), np.tile(t_rows, J - 1)]
    copy = np.r_[np.zeros(n, np.int64), np.repeat(np.arange(1, J), len(t_rows))]
    vimg = m.img[src].astype(np.int64) * J + copy
    o = np.argsort(vimg, kind="stable")            # per virtual image, original (image, class, rank) order
    src, copy, vimg = src[o], copy[o], vimg[o]
    me = Matching(det=m.det[src], img=vimg, cat=m.cat[src], score=m.score[src], rank=m.rank[src],
                  matched=m.matched[:, src], ignored=m.ignored[:, src], num_gt=m.num_gt, num_thrs=m.num_thrs)
    return Expansion(m=me, src=src, copy=copy, tie=tie[src])


class ModelResampler:
    """One model: selections, one matching pass, exact point figures and bootstrap replicate figures."""

    def __init__(self, ev: Evaluator, protocols, W_all: np.ndarray | None = None):
        self.ev, self.gt, self.params = ev, ev.gt, ev.params
        self.protocols = tuple(protocols)
        d = ev.dets
        self.sel_old, self.sel_fixed = ev.selections(self.protocols)
        self.needs_fixed = "fixed" in self.protocols or "pooled" in self.protocols
        self.class_order = refine(ev.order, d.cat_idx)
        J = int(W_all.max()) if W_all is not None and W_all.size else 1
        fixed_any = self.sel_fixed.copy()
        k = self.params.max_dets_per_class
        K = self.gt.num_categories
        # classes whose budget can bind in some replicate (their weighted count can exceed k);
        # in every other class each drawn row keeps all its copies
        constrained = np.zeros(K, bool)
        if self.needs_fixed and W_all is not None and W_all.size:
            wmax = W_all.max(axis=0)
            if k is not None and k >= 0:
                bound = np.bincount(d.cat_idx, weights=wmax[d.img_idx].astype(np.float64), minlength=K)
                constrained = bound > k
            fixed_any |= (wmax[d.img_idx] > 0) & ~constrained[d.cat_idx]
        self._fc_order = self.class_order[constrained[d.cat_idx[self.class_order]]]
        self._fc_cat, self._fc_img = d.cat_idx[self._fc_order], d.img_idx[self._fc_order]
        if len(self._fc_order) * len(W_all) > UNION_WORK:
            fixed_any[self._fc_order] = True      # match them all: a superset is as good, and cheaper
        elif len(self._fc_order):
            step = _chunk(len(self._fc_order))
            for c in range(0, len(W_all), step):
                fixed_any[self._fc_order] |= (self._fc(np.ascontiguousarray(W_all[c:c + step].T)) > 0).any(axis=1)
        self.fixed_any = fixed_any
        self.m = ev.matching_for(self.sel_old | fixed_any)
        pos = np.full(len(d), -1, np.int64)
        pos[self._fc_order] = np.arange(len(self._fc_order))
        self._m_fc = pos[self.m.det]                 # matched row -> position among constrained rows
        self._m_fc_rows = np.flatnonzero(self._m_fc >= 0)
        self.exp = expand_ties(self.m, J, per_class=True)                 # AP-Old, AP-Fixed
        self.exp_pool = expand_ties(self.m, J, per_class=False) if "pooled" in self.protocols else None
        self.counts = gt_counts(self.gt, self.params)
        # what replicate() reads, so that a copy for other processes can leave the rest behind
        self._m_img = self.m.img
        self._keep_old = self.sel_old[self.m.det]
        self._kind, self._K = self.gt.kind, self.gt.num_categories
        self._freq = self.gt.freq_groups() if self.gt.kind == "lvis" else {}
        self._plan()

    def __getstate__(self) -> dict:
        """Only the state replicates need (``lveval.compare`` ships it to Dask workers)."""
        drop = ("ev", "gt", "m", "sel_old", "sel_fixed", "fixed_any", "class_order", "_fc_order")
        return {k: v for k, v in self.__dict__.items() if k not in drop}

    def _fc(self, WT: np.ndarray) -> np.ndarray:
        """Kept copies (n_c, B) of the rows of the constrained classes."""
        return fixed_copies(np.arange(len(self._fc_cat)), self._fc_cat, self._fc_img, WT,
                            self.params.max_dets_per_class)

    def fixed_copies(self, WT: np.ndarray) -> np.ndarray:
        """AP-Fixed's kept copies (n, B) of each matched row under each weighting ``WT`` (I, B)."""
        p = WT[self._m_img]
        if len(self._m_fc_rows):
            p[self._m_fc_rows] = self._fc(WT)[self._m_fc[self._m_fc_rows]]
        return p

    # ---- exact figures (the evaluate code path) --------------------------------------------------
    def point(self) -> dict:
        """Each protocol's figures, exactly as ``lveval.evaluate`` computes them, and AP-Fixed per class."""
        out = {}
        ev, m = self.ev, self.m
        if "old" in self.protocols:
            out["old"] = ev.summarize_selection(m, self.sel_old, coco_ar=True)[0]
        if "fixed" in self.protocols:
            fig, prec, _ = ev.summarize_selection(m, self.sel_fixed)
            out["fixed"] = fig
            out["class_ap_fixed"] = class_ap(prec)
        if "pooled" in self.protocols:
            out["pooled"] = summarize_pooled(ev.pooled_curves(m, self.sel_fixed), self.params)
        return out

    # ---- replicates -----------------------------------------------------------------------------
    def _plan(self) -> None:
        """Rows, segments and classes of every curve family, fixed for all replicates."""
        me = self.exp.m
        K = self.gt.num_categories
        det_old = self.sel_old[me.det]
        det_fix = self.fixed_any[me.det]
        self.plans = {}
        co = me.class_order
        for proto, rows_in in (("old", det_old), ("fixed", det_fix)):
            if proto not in self.protocols:
                continue
            per_area = []
            for a in range(me.matched.shape[0]):
                has_gt = np.flatnonzero(me.num_gt[:, a] > 0)
                relevant = rows_in & (((me.ignored[a] & ~me.matched[a]) == 0) | (me.matched[a] != 0))
                keep_cls = np.zeros(K, bool)
                keep_cls[has_gt] = True
                rows = co[(relevant & keep_cls[me.cat])[co]]
                seg_of_cls = np.full(K, -1, np.int64)
                seg_of_cls[has_gt] = np.arange(len(has_gt))
                per_area.append((rows, seg_of_cls[me.cat[rows]], has_gt))
            self.plans[proto] = per_area
        if "old" in self.plans and self.gt.kind == "coco":
            # pycocotools' AR at each smaller maxDets: the first md rows of each (image, class)
            rows, seg, cls = self.plans["old"][0]
            self.plans["old_md"] = {md: (rows[me.rank[rows] < md], seg[me.rank[rows] < md], cls)
                                    for md in self.params.coco_max_dets[:-1]}
        if "pooled" in self.protocols:
            me = self.exp_pool.m
            det_fix = self.fixed_any[me.det]
            po = me.pool_order
            po = po[det_fix[po]]
            pools = [np.arange(K)]
            if self.gt.kind == "lvis":
                pools += list(self.gt.freq_groups().values())
            rows, seg = [], []
            for s, cats in enumerate(pools):
                inp = np.zeros(K, bool)
                inp[cats] = True
                r = po[inp[me.cat[po]]]
                rows.append(r)
                seg.append(np.full(len(r), s, np.int64))
            self.pools = pools
            self.plans["pooled"] = (np.concatenate(rows), np.concatenate(seg))

    def row_weights(self, WT: np.ndarray) -> dict:
        """Weights of the expanded rows under each weighting ``WT`` (I, B): protocol -> (n_e, B)
        ("old" and "fixed" on ``self.exp``, "pooled" on ``self.exp_pool``)."""
        out = {}
        if "old" in self.plans:
            keep = self._keep_old.astype(WT.dtype)
            out["old"] = self.exp.weights(WT[self._m_img] * keep[:, None])
        if "fixed" in self.plans or "pooled" in self.plans:
            p_fix = self.fixed_copies(WT)
            if "fixed" in self.plans:
                out["fixed"] = self.exp.weights(p_fix)
            if "pooled" in self.plans:
                out["pooled"] = self.exp_pool.weights(p_fix)
        return out

    def replicate(self, W: np.ndarray) -> dict:
        """Figures of each weighting ``W`` (B, I): protocol -> key -> (B,) arrays (-1 where undefined);
        with AP-Fixed also ``class_ap_fixed`` (B, K), NaN where a class has no ground truth."""
        p = self.params
        WT = np.ascontiguousarray(np.asarray(W, np.int32).T)
        ngw = weighted_num_gt(self.counts, WT, self._K)
        w = self.row_weights(WT)
        out = {}
        T, R = len(p.iou_thrs), len(p.rec_thrs)
        t50 = np.flatnonzero(p.iou_thrs == 0.5)
        t75 = np.flatnonzero(p.iou_thrs == 0.75)
        if "old" in w:
            out["old"] = self._per_class_figures("old", w["old"], ngw, T, R, t50, t75)[0]
        if "fixed" in w:
            out["fixed"], out["class_ap_fixed"] = self._per_class_figures("fixed", w["fixed"], ngw, T, R, t50, t75)
        if "pooled" in w:
            me = self.exp_pool.m
            rows, seg = self.plans["pooled"]
            ng = self.pool_num_gt(ngw)
            qs, _ = batch_curves(seg, len(self.pools), me.matched[0, rows], me.ignored[0, rows], me.num_thrs,
                                 w["pooled"][rows], ng, p.rec_thrs)
            q_t = seqsum(qs, axis=1)                                             # (B, pools)
            fig = {"AP": _ratio(q_t[:, 0], T * R, ng[:, 0] > 0)}
            for name, ts in (("AP50", t50), ("AP75", t75)):
                fig[name] = _ratio(_tsum(qs[:, ts, 0]), len(ts) * R, (ng[:, 0] > 0) & (len(ts) > 0))
            if self._kind == "lvis":
                for s, f in enumerate(self._freq, 1):
                    fig["AP" + f] = _ratio(q_t[:, s], T * R, ng[:, s] > 0)
            out["pooled"] = fig
        return out

    def pool_num_gt(self, ngw: np.ndarray) -> np.ndarray:
        """Ground truth (B, pools) of each pool (all, then r/c/f) from per-class counts (B, K, A)."""
        return np.stack([ngw[:, c, 0].sum(axis=1) for c in self.pools], axis=1)

    def _per_class_figures(self, proto, w, ngw, T, R, t50, t75):
        """Summary figures (the keys of ``metrics.summarize``) of each weighting, vectorised."""
        me = self.exp.m
        B = w.shape[1]
        fig = {}
        class_ap_b = None
        freq = self._freq
        for a, (rows, seg, cls) in enumerate(self.plans[proto]):
            ng = ngw[:, cls, a]
            qs, rc = batch_curves(seg, len(cls), me.matched[a, rows], me.ignored[a, rows], me.num_thrs,
                                  w[rows], ng, self.params.rec_thrs)
            valid = ng > 0
            nv = valid.sum(axis=1)
            q_all = np.where(valid, seqsum(qs, axis=1), 0.0)         # (B, S)
            if a == 0:
                fig["AP"] = _ratio(_csum(q_all), T * R, nv > 0, nv)
                for name, ts in (("AP50", t50), ("AP75", t75)):
                    qt = _csum(np.where(valid, _tsum(qs[:, ts]), 0.0))
                    fig[name] = _ratio(qt, len(ts) * R, (nv > 0) & (len(ts) > 0), nv)
                in_cls = {f: np.isin(cls, c) for f, c in freq.items()}
                for f, sel in in_cls.items():
                    nf = (valid & sel[None, :]).sum(axis=1)
                    fig["AP" + f] = _ratio(_csum(q_all[:, sel]), T * R, nf > 0, nf)
                rc_all = _csum(np.where(valid, seqsum(rc, axis=1), 0.0))
                fig["AR"] = _ratio(rc_all, T, nv > 0, nv)
                class_ap_b = np.full((B, self._K), np.nan)
                class_ap_b[:, cls] = np.where(valid, q_all / (T * R), np.nan)
            else:
                lbl = "sml"[a - 1] if a <= 3 else str(a)
                fig["AP" + lbl] = _ratio(_csum(q_all), T * R, nv > 0, nv)
                fig["AR" + lbl] = _ratio(_csum(np.where(valid, seqsum(rc, axis=1), 0.0)), T, nv > 0, nv)
        for md, (rows, seg, cls) in (self.plans.get("old_md", {}) if proto == "old" else {}).items():
            ng = ngw[:, cls, 0]
            _, rc = batch_curves(seg, len(cls), me.matched[0, rows], me.ignored[0, rows], me.num_thrs,
                                 w[rows], ng, self.params.rec_thrs)
            valid = ng > 0
            nv = valid.sum(axis=1)
            fig[f"AR{md}"] = _ratio(_csum(np.where(valid, seqsum(rc, axis=1), 0.0)), T, nv > 0, nv)
        return fig, class_ap_b


def _csum(x: np.ndarray) -> np.ndarray:
    """Sum over classes (axis 1) of (B, S), in class order; 0 without classes."""
    return seqsum(x, axis=1) if x.shape[1] else np.zeros(x.shape[0])


def _tsum(x: np.ndarray) -> np.ndarray:
    """Sum over the thresholds (axis 1) of a (B, t, ...) selection; 0 when none is selected."""
    return seqsum(x, axis=1) if x.shape[1] else np.zeros((x.shape[0],) + x.shape[2:])


def _ratio(num: np.ndarray, per: int, ok, count=None) -> np.ndarray:
    """``num / (per * count)`` where ``ok``, else -1 (the engine's 'undefined')."""
    count = np.ones_like(num) if count is None else count
    ok = np.broadcast_to(np.asarray(ok), num.shape)
    return np.where(ok, num / np.maximum(per * count, 1), -1.0)


def _chunk(num_rows: int) -> int:
    """Replicates per vectorised pass: about 8M row-weights per array."""
    return int(max(1, min(256, 8_000_000 // max(num_rows, 1))))
