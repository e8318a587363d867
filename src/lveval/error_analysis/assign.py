"""TIDE's assignment of every false positive and missed object to one error type.

TIDE (Bolya et al., ECCV 2020) looks at each detection that is not a true
positive at the foreground IoU (0.5) and tests, in this order, against the
(non-ignored) ground truth of its image:

1. ``loc``  -- its best IoU with an object of its own class is in [0.1, 0.5];
2. ``cls``  -- its best IoU with an object of another class is >= 0.5;
3. ``dupe`` -- its best IoU with an already matched object of its class is >= 0.5;
4. ``bkg``  -- its best IoU with any object is <= 0.1 (background);
5. ``both`` -- anything else (wrong class and badly localised).

An object no detection matched is ``miss`` unless a ``cls`` or ``loc`` error
points at it (then fixing that error would find it). The same-class matching
is the engine's (``lveval.match``); the tests here need one extra pass over
the pairs (detection, any object of the same image) with IoU >= 0.1, done in
bounded chunks with no loop per detection.

Under LVIS rules a detection the federated rule does not evaluate, and an
unmatched detection of a class not exhaustively annotated in its image, is
no error (the evaluation ignores it). Detections matched to an ignored
object (COCO crowd regions) are tested like false positives, as TIDE does.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..match import Matching, box_iou_pairs, match
from ..metrics import Evaluator
from ..params import Params

TYPES = ("cls", "loc", "both", "dupe", "bkg", "miss")
DET_TYPES = TYPES[:5]
NONE = -1                      # code of "no error" (true positive, or not evaluated)
CODE = {t: i for i, t in enumerate(TYPES)}
POS_THR, BKG_THR = 0.5, 0.1    # TIDE's foreground and background IoU
_PAIR_CHUNK = 1_000_000     # pairs per chunk of the same-image pass: bounds its memory (~100 MB)


@dataclass
class Assignment:
    """Outcome of one selection: every evaluated detection and every object, typed.

    Detection arrays are over the matched rows (``m.det`` order: image, class,
    -score); object arrays over the annotations in file order.
    """

    m: Matching                 # the engine's matching at IoU 0.5, area 'all'
    tp: np.ndarray              # (n,) bool: true positive
    fp: np.ndarray              # (n,) bool: counted false positive (in the AP)
    error: np.ndarray           # (n,) int8: code of TYPES[:5], NONE for no error
    target: np.ndarray          # (n,) int64: object a cls/loc error points at, else -1
    best: np.ndarray            # (n,) bool: the error its target's oracle fix turns into a true positive
    gt_regular: np.ndarray      # (G,) bool: a non-ignored object
    gt_used: np.ndarray         # (G,) bool: matched by a true positive
    gt_miss: np.ndarray         # (G,) bool: missed and pointed at by no cls/loc error
    num_gt: np.ndarray          # (K,) non-ignored objects per class

    @property
    def gt_fn(self) -> np.ndarray:
        """Objects no true positive matched (TIDE's false negatives, ``miss`` or not)."""
        return self.gt_regular & ~self.gt_used


def params_at_50(params: Params) -> Params:
    """The evaluation's parameters reduced to IoU 0.5 and area 'all': the matching TIDE needs.

    Greedy matching at one threshold and area range does not depend on the others,
    so this matching equals the full one's bit for IoU 0.5, area 'all'.
    """
    return params.replace(iou_thresholds=(POS_THR,), area_ranges=params.area_ranges[:1])


def assign(ev: Evaluator, selection: np.ndarray) -> Assignment:
    """Match ``selection`` (of ``ev``'s detections) at IoU 0.5 and type every error."""
    gt, dets = ev.gt, ev.dets
    m = match(gt, dets, selection & ev.fed, params_at_50(ev.params), ev.order, gt_index=True)
    matched = (m.matched[0] & 1).astype(bool)
    ignored = (m.ignored[0] & 1).astype(bool)
    tp = matched & ~ignored
    fp = ~matched & ~ignored
    cand = np.flatnonzero(fp | (matched & ignored))     # TIDE also types detections on ignore regions
    G = len(gt.ann_ids)
    regular = ~gt.ann_ignore
    used = np.zeros(G, bool)
    used[m.gt_index[0][tp]] = True

    n = len(m.det)
    error = np.full(n, NONE, np.int8)
    target = np.full(n, -1, np.int64)
    if len(cand):
        e, t = _classify(gt, dets, m, cand, regular, used, ev.params.iou_type)
        error[cand], target[cand] = e, t
    # One oracle fix per object: of the cls/loc errors on an unmatched object, the highest-scored
    # (ties: first in the image's score order) becomes its true positive; the others are dropped.
    pointing = ((error == CODE["cls"]) | (error == CODE["loc"])) & (target >= 0)
    pointing[pointing] = ~used[target[pointing]]
    best = np.zeros(n, bool)
    p = np.flatnonzero(pointing)
    if len(p):
        o = p[np.lexsort((m.det[p], -m.score[p], target[p]))]
        first = np.r_[True, target[o][1:] != target[o][:-1]]
        best[o[first]] = True
    usable = np.zeros(G, bool)
    usable[target[pointing]] = True
    miss = regular & ~used & ~usable
    return Assignment(m=m, tp=tp, fp=fp, error=error, target=target, best=best, gt_regular=regular,
                      gt_used=used, gt_miss=miss, num_gt=m.num_gt[:, 0].copy())


def _classify(gt, dets, m: Matching, cand: np.ndarray, regular: np.ndarray, used: np.ndarray, iou_type: str):
    """Error code and target object of the candidate rows ``cand`` (TIDE's tests, in its order)."""
    nc = len(cand)
    sc_v = np.zeros(nc)  # best own-class IoU (any object)
    sc_g = np.full(nc, -1, np.int64)
    oc_v = np.zeros(nc)  # best other-class IoU
    oc_g = np.full(nc, -1, np.int64)
    su_v = np.zeros(nc)                                       # best own-class IoU with a matched object
    al_v = np.zeros(nc)                                       # best IoU with any object
    c_cat = m.cat[cand]
    for pc, pg, iou in _image_pairs(gt, dets, m, cand, regular, iou_type):
        same = gt.ann_cat[pg] == c_cat[pc]
        _reduce_max(pc[same], iou[same], pg[same], sc_v, sc_g)
        _reduce_max(pc[~same], iou[~same], pg[~same], oc_v, oc_g)
        su = same & used[pg]
        _reduce_max(pc[su], iou[su], pg[su], su_v, None)
        _reduce_max(pc, iou, pg, al_v, None)
    err = np.full(nc, CODE["both"], np.int8)
    tgt = np.full(nc, -1, np.int64)
    todo = np.ones(nc, bool)
    loc = todo & (sc_v >= BKG_THR) & (sc_v <= POS_THR)
    err[loc], tgt[loc] = CODE["loc"], sc_g[loc]
    todo &= ~loc
    cls = todo & (oc_v >= POS_THR)
    err[cls], tgt[cls] = CODE["cls"], oc_g[cls]
    todo &= ~cls
    dupe = todo & (su_v >= POS_THR)
    err[dupe] = CODE["dupe"]
    todo &= ~dupe
    err[todo & (al_v <= BKG_THR)] = CODE["bkg"]
    return err, tgt


def _reduce_max(pc, val, pg, best_v, best_g) -> None:
    """best_v[i] = max(best_v[i], max of ``val`` at rows ``pc == i``); best_g gets the first object
    (in annotation order) attaining a new maximum, as numpy's argmax over an image's objects does."""
    if not len(pc):
        return
    o = np.lexsort((pg, -val, pc))
    first = o[np.r_[True, pc[o][1:] != pc[o][:-1]]]
    i, v = pc[first], val[first]
    better = v > best_v[i]
    if best_g is not None:
        best_g[i[better]] = pg[first][better]
    best_v[i[better]] = v[better]


def _image_pairs(gt, dets, m: Matching, cand: np.ndarray, regular: np.ndarray, iou_type: str):
    """Yield chunks (candidate position, annotation, IoU) of all same-image pairs with IoU >= 0.1.

    Plain IoU (no crowd rule) against the non-ignored objects, as TIDE computes it.
    """
    reg = np.flatnonzero(regular)
    reg = reg[np.argsort(gt.ann_img[reg], kind="stable")]      # by image, file order inside
    reg_img = gt.ann_img[reg]
    c_img = m.img[cand]
    lo = np.searchsorted(reg_img, c_img, "left")
    cnt = np.searchsorted(reg_img, c_img, "right") - lo
    rows = m.det[cand]
    if iou_type == "bbox":
        has = np.flatnonzero(cnt > 0)
        csum = np.cumsum(cnt[has])
        s = 0
        while s < len(has):
            base = csum[s - 1] if s else 0
            e = max(int(np.searchsorted(csum, base + _PAIR_CHUNK, "right")), s + 1)
            d = has[s:e]
            c = cnt[d]
            pc = np.repeat(d, c)
            off = np.arange(len(pc)) - np.repeat(np.cumsum(c) - c, c)
            pg = reg[np.repeat(lo[d], c) + off]
            iou = box_iou_pairs(dets.bbox[rows[pc]], gt.ann_box[pg], np.zeros(len(pc), bool))
            keep = iou >= BKG_THR
            yield pc[keep], pg[keep], iou[keep]
            s = e
    else:
        yield from _mask_pairs(gt, dets, cand, rows, c_img, reg, lo, cnt)


def _mask_pairs(gt, dets, cand, rows, c_img, reg, lo, cnt):
    """Mask IoU per image (pycocotools), for segm evaluation."""
    from pycocotools import mask as mask_utils

    rles = gt.rles()
    has = np.flatnonzero(cnt > 0)
    if not len(has):
        return
    starts = has[np.r_[True, c_img[has][1:] != c_img[has][:-1]]]
    ends = np.r_[starts[1:], has[-1] + 1]
    for s, e in zip(starts, ends):   # candidates of one image are contiguous (matching order)
        sel = np.arange(s, e)
        sel = sel[cnt[sel] > 0]
        g = reg[lo[s]:lo[s] + cnt[s]]
        iou = np.asarray(mask_utils.iou([dets.segm[r] for r in rows[sel]], [rles[k] for k in g],
                                        [0] * len(g)), dtype=np.float64).reshape(len(sel), len(g))
        di, gi = np.nonzero(iou >= BKG_THR)
        yield sel[di], g[gi], iou[di, gi]
