"""Where the AP goes: TIDE's error decomposition under each selection, per frequency group and class,
and the classification confusions of a large vocabulary.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import __version__
from ..exceptions import Notices
from ..io.gt import GroundTruth
from ..metrics import Evaluator, make_params
from ..params import Dataset, IouType, Params, Policy
from .assign import BKG_THR, CODE, DET_TYPES, POS_THR, TYPES, Assignment, assign
from .fix import Oracle, fix_for, mean_ap, special_fix

SELECTIONS = ("fixed", "old")   # AP-Fixed's per-class top K, AP-Old's per-image cap


@dataclass
class ErrorReport:
    """Figures of ``lveval errors``; ``to_dict()`` is what ``--json`` writes."""

    figures: dict                                   # selection -> figures
    params: Any
    gt: GroundTruth = field(repr=False)
    assignments: dict = field(default_factory=dict, repr=False)   # selection -> Assignment
    notices: Notices = field(default_factory=Notices)
    inputs: dict = field(default_factory=dict)

    def __getitem__(self, key: str) -> dict:
        return self.figures[key]

    def to_dict(self) -> dict:
        d: dict[str, Any] = dict(self.figures)
        d["params"] = {**self.params.to_dict(), "foreground_iou": POS_THR, "background_iou": BKG_THR}
        d.update(self.notices.to_dict())
        d["inputs"] = self.inputs
        d["lveval_version"] = __version__
        return d


def check_selections(protocols: Iterable[str]) -> tuple:
    """``protocols`` as a tuple of SELECTIONS names; ValueError for any other name."""
    out = tuple(protocols)
    for p in out:
        if p not in SELECTIONS:
            raise ValueError(f"unknown protocol {p!r} for error analysis; choose from {', '.join(SELECTIONS)}")
    return out


def errors(gt: Any, results: Any, params: Params | None = None, *,
           protocols: Iterable[str] = SELECTIONS, top_confusions: int = 20,
           iou_type: IouType | None = None, max_dets_per_image: int | None = None,
           max_dets_per_class: int | None = None, dataset: Dataset | None = None,
           on_unknown_image: Policy | None = None, on_unknown_category: Policy | None = None) -> ErrorReport:
    """TIDE's error analysis of ``results`` against ``gt`` under AP-Fixed's and/or AP-Old's selection.

    Inputs are anything :func:`lveval.evaluate` accepts; ``params`` and the keywords are the
    evaluation options (as for :func:`lveval.evaluate`). ``protocols``: the selections analysed,
    "fixed" and/or "old". Values are fractions; dAP figures are differences of lveval's AP50
    (pycocotools' AP at IoU 0.5).
    """
    protocols = check_selections(protocols)
    ev = Evaluator.load(gt, results, make_params(
        params, iou_type=iou_type, dataset=dataset, max_dets_per_image=max_dets_per_image,
        max_dets_per_class=max_dets_per_class, on_unknown_image=on_unknown_image,
        on_unknown_category=on_unknown_category))
    return analyze(ev, protocols, top_confusions=top_confusions, notices=ev.notices, inputs=ev.inputs)


def analyze(ev: Evaluator, protocols: Iterable[str] = SELECTIONS, *, top_confusions: int = 20,
            notices: Notices | None = None, inputs: dict | None = None) -> ErrorReport:
    """The error analysis of an evaluator's detections under each selection in ``protocols``."""
    rep = ErrorReport(figures={}, params=ev.params, gt=ev.gt, notices=notices or Notices(), inputs=inputs or {})
    for p in check_selections(protocols):
        sel = ev.fixed_selection() if p == "fixed" else ev.old_selection()
        a = assign(ev, sel)
        rep.assignments[p] = a
        rep.figures[p] = selection_figures(ev.gt, a, ev.params.rec_thrs, top_confusions)
    return rep


def _delta(before: float, after: float):
    return None if before < 0 or after < 0 else after - before


def _type_counts(gt: GroundTruth, a: Assignment) -> np.ndarray:
    """(6, K) error counts per type and class: detection errors by detected class, misses by class."""
    K = gt.num_categories
    out = np.zeros((len(TYPES), K), np.int64)
    for t in DET_TYPES:
        out[CODE[t]] = np.bincount(a.m.cat[a.error == CODE[t]], minlength=K)
    out[CODE["miss"]] = np.bincount(gt.ann_cat[a.gt_miss], minlength=K)
    return out


def selection_figures(gt: GroundTruth, a: Assignment, rec_thrs: np.ndarray, top_confusions: int = 20) -> dict:
    """AP50, dAP per type, special dAPs, counts, per-group and per-class breakdowns and confusions."""
    K = gt.num_categories
    o = Oracle(a, rec_thrs, K)
    fixed = {t: o.apply(fix_for(a, [t], gt.ann_cat)) for t in TYPES}
    special = {k: o.apply(special_fix(a, k, gt.ann_cat)) for k in ("fp", "fn")}
    counts = _type_counts(gt, a)

    def block(cats: np.ndarray | None) -> dict:
        base = mean_ap(o.base, cats)
        c = counts if cats is None else counts[:, cats]
        return {"AP50": base,
                "dAP": {t: _delta(base, mean_ap(fixed[t], cats)) for t in TYPES},
                "dAP_special": {k: _delta(base, mean_ap(v, cats)) for k, v in special.items()},
                "counts": {t: int(c[CODE[t]].sum()) for t in TYPES},
                "num_classes": int(((o.base > -1) if cats is None else (o.base[cats] > -1)).sum())}

    out = block(None)
    out["num_detections"] = {"evaluated": int((a.tp | a.fp).sum()), "true_positives": int(a.tp.sum()),
                             "false_positives": int(a.fp.sum()),
                             "typed_ignored": int(((a.error != -1) & ~a.fp).sum())}
    out["num_gt"] = int(a.gt_regular.sum())
    groups = gt.freq_groups() if gt.kind == "lvis" else {}
    groups = {f: c for f, c in groups.items() if len(c)}
    out["by_frequency"] = {f: block(c) for f, c in groups.items()}
    out["confusions"] = confusions(gt, a, o, top_confusions)
    out["confusion_by_frequency"] = confusion_groups(gt, a, o, groups)
    out["per_class"] = per_class_rows(gt, o, fixed, special, counts)
    return out


def _synonyms(gt: GroundTruth) -> dict:
    cats = (gt.dataset or {}).get("categories") or []
    return {int(c["id"]): list(c.get("synonyms") or []) for c in cats if isinstance(c, dict) and "id" in c}


def _cls_pairs(gt: GroundTruth, a: Assignment):
    """Rows of classification errors and their (detected, true) class indices."""
    rows = np.flatnonzero(a.error == CODE["cls"])
    return rows, a.m.cat[rows], gt.ann_cat[a.target[rows]]


def confusions(gt: GroundTruth, a: Assignment, o: Oracle, top: int) -> list:
    """The ``top`` most frequent (detected class, true class) pairs of classification errors, each with
    the AP50 fixing just that pair's errors recovers (ties in count: by ids)."""
    K = gt.num_categories
    rows, det_k, true_k = _cls_pairs(gt, a)
    if not len(rows) or top <= 0:
        return []
    key = det_k * K + true_k
    uq, cnt = np.unique(key, return_counts=True)
    pick = np.lexsort((uq, -cnt))[:top]
    base = mean_ap(o.base)
    syn = _synonyms(gt)
    out = []
    for i in pick:
        x, y = divmod(int(uq[i]), K)
        mask = np.zeros(len(a.m.det), bool)
        mask[rows[key == uq[i]]] = True
        aps = o.apply(fix_for(a, ["cls"], gt.ann_cat, rows=mask))
        dx, dy = int(gt.cat_ids[x]), int(gt.cat_ids[y])
        out.append({"detected": dx, "true": dy, "count": int(cnt[i]), "dAP": _delta(base, mean_ap(aps)),
                    "detected_name": gt.cat_names[x], "true_name": gt.cat_names[y],
                    "detected_synonyms": syn.get(dx, []), "true_synonyms": syn.get(dy, []),
                    "detected_frequency": str(gt.cat_freq[x]), "true_frequency": str(gt.cat_freq[y])})
    return out


def confusion_groups(gt: GroundTruth, a: Assignment, o: Oracle, groups: dict) -> dict:
    """Classification errors per (true group, detected group): ``[true][detected] = {count, dAP}``,
    e.g. ``["r"]["f"]`` = rare objects taken for frequent classes."""
    if not groups:
        return {}
    rows, det_k, true_k = _cls_pairs(gt, a)
    base = mean_ap(o.base)
    out = {}
    for tg, tc in groups.items():
        out[tg] = {}
        for dg, dc in groups.items():
            hit = rows[np.isin(true_k, tc) & np.isin(det_k, dc)]
            cell = {"count": int(len(hit)), "dAP": 0.0 if len(hit) == 0 else None}
            if len(hit):
                mask = np.zeros(len(a.m.det), bool)
                mask[hit] = True
                cell["dAP"] = _delta(base, mean_ap(o.apply(fix_for(a, ["cls"], gt.ann_cat, rows=mask))))
            out[tg][dg] = cell
    return out


def per_class_rows(gt: GroundTruth, o: Oracle, fixed: dict, special: dict, counts: np.ndarray) -> list:
    """One row per class with ground truth or errors: class AP50, its dAP per type and its counts."""
    rows = []
    for k in np.flatnonzero((o.base > -1) | (counts.sum(axis=0) > 0)):
        b = float(o.base[k])
        rows.append({"category_id": int(gt.cat_ids[k]), "name": gt.cat_names[k],
                     "frequency": str(gt.cat_freq[k]), "AP50": b,
                     "dAP": {t: _delta(b, float(fixed[t][k])) for t in TYPES},
                     "dAP_special": {s: _delta(b, float(v[k])) for s, v in special.items()},
                     "counts": {t: int(counts[CODE[t], k]) for t in TYPES}})
    return rows
