"""TIDE's oracle fixes, scored with lveval's AP at IoU 0.5 (pycocotools' 101-point AP50).

A fix edits the evaluated detections and objects, then the affected classes'
precision-recall curves are recomputed with ``lveval.accumulate.pr_curve``:

- ``cls``: an error that is its object's best becomes a true positive *of the
  object's class*; the other ``cls`` errors are dropped;
- ``loc``: the best becomes a true positive of its own class, the others are dropped;
- ``both``, ``dupe``, ``bkg``: the detections are dropped;
- ``miss``: the missed objects are removed from the ground truth;
- special ``fp``: every false positive is ranked below every true positive;
- special ``fn``: every unmatched object is removed (perfect recall).

The AP of a fixed problem is pycocotools' on that problem: the mean over the
classes that still have ground truth.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..accumulate import pr_curve
from .assign import CODE, Assignment

_STACK_CELLS = 4_000_000   # bound on the padded (classes x detections) block of one pr_curve call


@dataclass
class Fix:
    """One oracle edit: base points dropped, detections turned into true positives of a class,
    objects removed per class, and optionally false positives ranked last."""

    remove: np.ndarray | None = None        # (n,) bool over matching rows
    add_pos: np.ndarray | None = None       # matching rows that become true positives ...
    add_cat: np.ndarray | None = None       # ... of these classes
    gt_removed: np.ndarray | None = None    # (K,) objects removed per class
    fp_last: bool = False


class Oracle:
    """Per-class AP50 of an assignment and of any fix of it; only affected classes are recomputed."""

    def __init__(self, a: Assignment, rec_thrs: np.ndarray, num_cats: int):
        self.a, self.rec_thrs, self.K = a, rec_thrs, num_cats
        m = a.m
        counted = a.tp | a.fp
        co = m.class_order                      # (category, -score, image, rank): the engine's ranking
        self.order = co[counted[co]]
        cats = m.cat[self.order]
        ks = np.arange(num_cats)
        self.lo, self.hi = np.searchsorted(cats, ks, "left"), np.searchsorted(cats, ks, "right")
        self.base = np.full(num_cats, -1.0)
        ks = np.flatnonzero(a.num_gt > 0)
        self.base[ks] = self._aps([a.tp[self.order[self.lo[k]:self.hi[k]]] for k in ks], a.num_gt[ks])

    def _aps(self, flags: list, num_gt: np.ndarray) -> np.ndarray:
        """AP50 of each ranked true-positive flag array (one per class) with its ground-truth count;
        -1 where the count is 0. Curves of similar length are stacked into one ``pr_curve`` call,
        padded at the end with rows that are neither true nor false positives (they change no
        precision at any recall reached)."""
        out = np.full(len(flags), -1.0)
        lens = np.array([len(f) for f in flags], np.int64)
        ok = np.asarray(num_gt) > 0
        width = np.where(lens > 0, 1 << np.ceil(np.log2(np.maximum(lens, 1))).astype(np.int64), 1)
        for w in np.unique(width[ok]):
            rows = np.flatnonzero(ok & (width == w))
            for chunk in np.array_split(rows, max(1, int(len(rows) * w // _STACK_CELLS) + 1)):
                if not len(chunk):
                    continue
                tp = np.zeros((len(chunk), w), bool)
                real = np.zeros((len(chunk), w), bool)
                for r, i in enumerate(chunk):
                    tp[r, :lens[i]] = flags[i]
                    real[r, :lens[i]] = True
                q, _ = pr_curve(tp, real & ~tp, np.asarray(num_gt)[chunk], self.rec_thrs)
                out[chunk] = q.mean(axis=1)
        return out

    def apply(self, fix: Fix) -> np.ndarray:
        """Per-class AP50 (K,) after ``fix`` (-1 where a class has no ground truth left)."""
        a, m = self.a, self.a.m
        out = self.base.copy()
        affected = []
        remove = fix.remove if fix.remove is not None else np.zeros(len(m.det), bool)
        if fix.remove is not None:
            affected.append(m.cat[fix.remove & (a.tp | a.fp)])
        add_pos = np.zeros(0, np.int64) if fix.add_pos is None else np.asarray(fix.add_pos, np.int64)
        add_cat = np.zeros(0, np.int64) if fix.add_cat is None else np.asarray(fix.add_cat, np.int64)
        affected.append(add_cat)
        num_gt = a.num_gt.copy()
        if fix.gt_removed is not None:
            num_gt -= fix.gt_removed
            affected.append(np.flatnonzero(fix.gt_removed))
        if fix.fp_last:
            affected.append(m.cat[a.fp])
        ks = np.unique(np.concatenate(affected)) if affected else np.zeros(0, np.int64)
        if len(add_pos):
            ao = np.argsort(add_cat, kind="stable")
            add_pos, add_cat = add_pos[ao], add_cat[ao]
        a_lo, a_hi = np.searchsorted(add_cat, ks, "left"), np.searchsorted(add_cat, ks, "right")
        flags = []
        for k, al, ah in zip(ks, a_lo, a_hi):
            seg = self.order[self.lo[k]:self.hi[k]]
            seg = seg[~remove[seg]]
            tp = a.tp[seg]
            if ah > al:
                extra = add_pos[al:ah]
                seg = np.r_[seg, extra]
                tp = np.r_[tp, np.ones(len(extra), bool)]
                tp = tp[np.lexsort((seg, -m.score[seg]))]      # same ranking: -score, then matching order
            if fix.fp_last:
                tp = np.sort(tp)[::-1]                         # true positives first
            flags.append(tp)
        if len(ks):
            out[ks] = self._aps(flags, num_gt[ks])
        return out


def fix_for(a: Assignment, types, gt_cat: np.ndarray, rows: np.ndarray | None = None) -> Fix:
    """The oracle fix of the error ``types`` (subset of TYPES), restricted to matching ``rows``
    (bool; e.g. one confusion pair) when given. ``gt_cat``: class index of every annotation."""
    m = a.m
    types = set(types)
    remove = np.zeros(len(m.det), bool)
    add_pos, add_cat = [], []
    for t in types - {"miss"}:
        e = a.error == CODE[t]
        if rows is not None:
            e &= rows
        remove |= e
        if t in ("cls", "loc"):
            b = np.flatnonzero(e & a.best)
            add_pos.append(b)
            add_cat.append(gt_cat[a.target[b]] if t == "cls" else m.cat[b])
    gt_removed = None
    if "miss" in types:
        gt_removed = np.bincount(gt_cat[a.gt_miss], minlength=len(a.num_gt))
    return Fix(remove=remove, add_pos=np.concatenate(add_pos) if add_pos else None,
               add_cat=np.concatenate(add_cat) if add_cat else None, gt_removed=gt_removed)


def special_fix(a: Assignment, kind: str, gt_cat: np.ndarray) -> Fix:
    """TIDE's special fixes: ``fp`` (false positives ranked last) or ``fn`` (all misses removed)."""
    if kind == "fp":
        return Fix(fp_last=True)
    return Fix(gt_removed=np.bincount(gt_cat[a.gt_fn], minlength=len(a.num_gt)))


def mean_ap(aps: np.ndarray, cats: np.ndarray | None = None) -> float:
    """Mean of the defined class APs (of ``cats`` when given); -1 when none is defined."""
    v = aps if cats is None else aps[cats]
    v = v[v > -1]
    return float(v.mean()) if len(v) else -1.0
