"""Class-wise non-maximum suppression and its effect on AP-Old vs AP-Fixed (paper Table 12).

NMS is vectorised over all (image, class) groups at once: the within-group
pairs (built in chunks of groups) give the IoU of every candidate pair, and
greedy suppression - a box is kept unless a kept, higher-scoring box of its
group overlaps it by more than the threshold - is resolved in rounds over the
overlap graph, each round deciding at least the best undecided box of every
group. There is no Python loop over detections or over groups.
"""
from __future__ import annotations

import time

import numpy as np

from ..exceptions import InputError
from ..match import box_iou_pairs
from .common import Session, limit_json
from .results import NmsResult, NmsRow, NmsSettings, NmsTiming

_PAIRS_PER_CHUNK = 4_000_000


def _boxes(s: Session) -> np.ndarray:
    if s.dets.bbox is None:
        raise InputError("NMS needs boxes; the results carry none", path=s.dets.path, field="bbox")
    return s.dets.bbox


def group_pairs(group_sorted: np.ndarray):
    """Yield (i, j) position arrays of all pairs i < j inside each group of a sorted key array."""
    n = len(group_sorted)
    if n == 0:
        return
    starts = np.flatnonzero(np.r_[True, group_sorted[1:] != group_sorted[:-1]])
    sizes = np.diff(np.r_[starts, n])
    npairs = sizes * (sizes - 1) // 2
    multi = np.flatnonzero(sizes > 1)
    if not len(multi):
        return
    csum = np.cumsum(npairs[multi])
    # split the groups into chunks of about _PAIRS_PER_CHUNK pairs
    bounds = np.searchsorted(csum, np.arange(_PAIRS_PER_CHUNK, csum[-1] + _PAIRS_PER_CHUNK, _PAIRS_PER_CHUNK),
                             "right")
    lo = 0
    for hi in np.unique(np.r_[bounds, len(multi)]):
        hi = max(int(hi), lo + 1)
        if lo >= len(multi):
            break
        gs = multi[lo:hi]
        lo = hi
        st, sz = starts[gs], sizes[gs]
        # every position p of these groups pairs with the positions after it in its group
        pos = np.repeat(st, sz) + (np.arange(sz.sum()) - np.repeat(np.cumsum(sz) - sz, sz))
        end = np.repeat(st + sz, sz)
        cnt = end - pos - 1
        i = np.repeat(pos, cnt)
        first = np.repeat(np.cumsum(cnt) - cnt, cnt)
        j = i + 1 + (np.arange(cnt.sum()) - first)
        yield i, j


def overlap_graph(s: Session, min_iou: float):
    """Within-group pairs (in score order) whose IoU exceeds ``min_iou``.

    Returns ``order`` (rows sorted by group, descending score, row), and
    arrays ``i``, ``j`` (positions in ``order``, i ranked above j) and ``iou``.
    """
    d = s.dets
    box = _boxes(s)
    group = d.img_idx * s.gt.num_categories + d.cat_idx
    order = np.lexsort((np.arange(len(d)), -d.score, group))
    gs = group[order]
    bs = box[order]
    ii, jj, vv = [], [], []
    for i, j in group_pairs(gs):
        iou = box_iou_pairs(bs[j], bs[i], np.zeros(len(i), bool))
        keep = iou > min_iou
        ii.append(i[keep])
        jj.append(j[keep])
        vv.append(iou[keep])
    cat = lambda xs, dt: np.concatenate(xs) if xs else np.zeros(0, dt)
    return order, cat(ii, np.int64), cat(jj, np.int64), cat(vv, np.float64)


def greedy_keep(n: int, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Greedy NMS on a suppression graph: edges i -> j (i ranked above j, overlap above threshold).

    Rounds: a box all of whose overlapping higher-ranked boxes are suppressed is
    kept; a box overlapping a kept higher-ranked box is suppressed.
    """
    state = np.zeros(n, np.int8)   # 0 undecided, 1 kept, 2 suppressed
    live = np.ones(len(i), bool)
    while True:
        undecided = state == 0
        if not undecided.any():
            break
        ei, ej = i[live], j[live]
        blocking = state[ei] != 2          # predecessor kept or still undecided
        nblock = np.bincount(ej[blocking], minlength=n)
        newly_kept = undecided & (nblock == 0)
        state[newly_kept] = 1
        hit = ej[state[ei] == 1]
        sup = np.zeros(n, bool)
        sup[hit] = True
        state[sup & (state == 0)] = 2
        live &= state[j] == 0
    return state == 1


def nms(s: Session, thresholds) -> dict:
    """Boolean keep-mask over the session's detections for each IoU threshold (None: no NMS)."""
    ths = [t for t in thresholds if t is not None]
    out = {}
    if not ths:
        return {None: np.ones(len(s.dets), bool)}
    order, i, j, iou = overlap_graph(s, min(ths))
    for t in thresholds:
        if t is None:
            out[t] = np.ones(len(s.dets), bool)
            continue
        e = iou > t
        k = greedy_keep(len(order), i[e], j[e])
        keep = np.zeros(len(s.dets), bool)
        keep[order[k]] = True
        out[t] = keep
    return out


def nms_sensitivity(s: Session, thresholds) -> NmsResult:
    """AP-Old and AP-Fixed (with r/c/f) after class-wise NMS at each threshold.

    Each threshold keeps a different set of boxes (not a score-order prefix of
    the raw set), so each gets its own matching pass over the kept boxes.
    ``result.to_dict()`` is what ``lveval nms --json`` writes.
    """
    t0 = time.perf_counter()
    keeps = nms(s, thresholds)
    t_nms = time.perf_counter() - t0
    rows = []
    for t in thresholds:
        keep = keeps[t]
        sub = Session.from_parts(s.gt, s.dets.take(keep), s.params)
        sel_old, sel_fixed = sub.cap(), sub.budget()
        sub.match(sel_old | sel_fixed)
        rows.append(NmsRow(threshold=t, num_detections=int(keep.sum()), old=sub.old(sel_old),
                           fixed=sub.fixed(sel_fixed)))
    settings = NmsSettings(max_dets_per_image=limit_json(s.params.max_dets_per_image),
                           max_dets_per_class=limit_json(s.params.max_dets_per_class), num_raw_detections=len(s.dets))
    return NmsResult(rows=rows, settings=settings, timing=NmsTiming(nms_s=t_nms, total_s=time.perf_counter() - t0))


def parse_thresholds(text: str) -> list:
    """'0.5,0.1,none' -> [0.5, 0.1, None] (none: no NMS, the raw detections)."""
    out = []
    for tok in str(text).split(","):
        tok = tok.strip().lower()
        if not tok:
            continue
        if tok in ("none", "raw", "off"):
            out.append(None)
            continue
        try:
            v = float(tok)
        except ValueError:
            raise InputError(f"expected IoU thresholds in [0, 1] or 'none', got {tok!r}", field="thresholds") from None
        if not 0.0 <= v <= 1.0:
            raise InputError(f"IoU threshold must be in [0, 1], got {v}", field="thresholds")
        out.append(v)
    if not out:
        raise InputError("expected at least one threshold", field="thresholds")
    return out
