"""The gaming policy of the paper's Section 3.2 (Table 1).

Keep the top ``K`` detections of each class over the whole dataset, discarding
the rest, then apply the per-image cap. Under a per-image cap this frees slots
that high-scoring detections of well-represented classes would take and fills
them with lower-scoring detections of other classes: a ranking no calibrated
detector would choose, which nevertheless raises AP-Old. AP-Fixed gives each
class its own budget, so the policy cannot raise it (it only loses detections).

The re-ranked set keeps a score-order prefix of every (image, class) group of
the original detections, so the original's one matching pass evaluates both
"before" and "after".
"""
from __future__ import annotations

import numpy as np

from .common import Session, limit_json
from .results import OldFixed, RerankResult, RerankRow, RerankSettings


def gaming_selection(s: Session, per_class: int, max_dets_per_image: int | None = None) -> np.ndarray:
    """Rows kept by the policy: top ``per_class`` of each class over the set, then the per-image cap."""
    return s.cap(max_dets_per_image, rows=s.budget(per_class))


def fixed_of(s: Session, rows: np.ndarray, k: int | None = None) -> np.ndarray:
    """AP-Fixed's selection (top ``k`` per class) of the detections ``rows``."""
    return s.budget(k, rows=rows)


def rerank(s: Session, per_class: int, max_dets_per_image: int | None = None) -> RerankResult:
    """AP-Old and AP-Fixed of the detections before and after the gaming policy.

    ``result.before.old`` etc. have the keys of ``lveval evaluate --json``;
    ``result.to_dict()`` is what ``lveval rerank --json`` writes.
    """
    n = s.params.max_dets_per_image if max_dets_per_image is None else max_dets_per_image
    k_fixed = s.params.max_dets_per_class
    all_rows = np.ones(len(s.dets), bool)
    after = gaming_selection(s, per_class, n)
    sel = {"before": (s.cap(n), s.budget(k_fixed)),
           "after": (s.cap(n, rows=after), fixed_of(s, after, k_fixed))}
    union = np.zeros(len(s.dets), bool)
    for a, b in sel.values():
        union |= a | b
    s.ensure_matched(union)
    figs = {key: OldFixed(old=s.old(a), fixed=s.fixed(b)) for key, (a, b) in sel.items()}
    settings = RerankSettings(per_class=int(per_class), max_dets_per_image=limit_json(n),
                              max_dets_per_class=limit_json(k_fixed), num_detections_before=int(all_rows.sum()),
                              num_detections_after=int(after.sum()))
    return RerankResult(before=figs["before"], after=figs["after"], settings=settings)


def grid_for(s: Session) -> list:
    """Budgets ``K`` the audit tries: 0.1 to 4 detections per class per image of the set.

    The paper's Table 1 uses K = 10,000 on LVIS val's 20,000 images (0.5 per image).
    """
    ni = s.gt.num_images
    ks = sorted({max(1, int(round(f * ni))) for f in (0.1, 0.25, 0.5, 1.0, 2.0, 4.0)})
    return ks


def rerank_grid(s: Session, ks, max_dets_per_image: int | None = None) -> list[RerankRow]:
    """AP-Old and AP-Fixed after the policy for several ``K`` (one matching pass for all)."""
    n = s.params.max_dets_per_image if max_dets_per_image is None else max_dets_per_image
    k_fixed = s.params.max_dets_per_class
    sels = []
    for k in ks:
        after = gaming_selection(s, k, n)
        sels.append((k, after, fixed_of(s, after, k_fixed)))
    union = s.cap(n) | s.budget(k_fixed)
    for _, a, b in sels:
        union |= a | b
    s.ensure_matched(union)
    return [RerankRow(per_class=int(k), num_detections=int(a.sum()), old=s.old(a), fixed=s.fixed(b))
            for k, a, b in sels]


