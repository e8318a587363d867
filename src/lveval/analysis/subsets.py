"""Per-image cap on class subsets (paper Table 3).

Restrict the results and the ground truth to the rare, common or frequent
classes or their unions, then compare AP at a low and a high per-image cap.
Restricting the results changes which detections compete for the cap; the
AP is averaged over the subset's classes only. The paper finds the gap grows
with the number of classes and of labelled instances per class.
"""
from __future__ import annotations

import numpy as np

from ..exceptions import InputError
from .common import Session, limit_json
from .results import SubsetRow, SubsetsResult

SUBSETS = (("R", "r"), ("C", "c"), ("F", "f"), ("R+C", "rc"), ("C+F", "cf"), ("R+F", "rf"), ("R+C+F", "rcf"))
DEFAULT_CAPS = (300, 5000)


def subsets(s: Session, caps=DEFAULT_CAPS) -> SubsetsResult:
    """AP of each subset at each cap, the difference (last cap minus first), classes and instances.

    One :class:`~lveval.analysis.results.SubsetRow` per subset of :data:`SUBSETS`;
    ``result.to_dict()`` is what ``lveval subsets --json`` writes.
    """
    if not s.has_frequencies:
        raise InputError("class subsets need LVIS frequencies ('frequency': r/c/f on each category)")
    caps = list(caps)
    freq = s.gt.cat_freq
    ngt = s.num_gt()
    plan = []
    union = np.zeros(len(s.dets), bool)
    for label, groups in SUBSETS:
        cats = np.flatnonzero(np.isin(freq, list(groups)))
        rows = s.classes(cats)
        most = int(np.bincount(s.dets.img_idx[rows]).max()) if rows.any() else 0
        # A cap that keeps every row of the subset leaves each class's own detections intact, and
        # per-class AP depends on nothing else: the unrestricted no-cap selection gives the same
        # figures for these classes and is shared by all subsets.
        sels = [s.cap(-1) if (n < 0 or n >= most) else s.cap(n, rows=rows) for n in caps]
        for x in sels:
            union |= x
        plan.append((label, cats, sels))
    s.ensure_matched(union)
    out = []
    for label, cats, sels in plan:
        aps = {("inf" if n < 0 else str(n)): s.subset_summary(sel, cats)["AP"] for n, sel in zip(caps, sels)}
        vals = list(aps.values())
        ninst = int(ngt[cats].sum())
        out.append(SubsetRow(subset=label, num_classes=int(len(cats)),
                             num_classes_with_gt=int((ngt[cats] > 0).sum()), num_instances=ninst,
                             instances_per_class=ninst / len(cats) if len(cats) else 0.0, AP=aps,
                             delta=(vals[-1] - vals[0]) if min(vals) > -1 else None))
    return SubsetsResult(caps=[limit_json(n) for n in caps], subsets=out)
