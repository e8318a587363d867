"""The three protocols and their summaries: AP-Old, AP-Fixed and AP-Pool.

``evaluate`` loads, selects, matches once and accumulates every requested
protocol from that one matching pass.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np

from . import __version__
from .accumulate import per_class, pooled
from .errors import Notices
from .io.gt import FREQUENCIES, GroundTruth, load_gt
from .io.results import Detections, bind, coverage_warning, load_results
from .match import Matching, match
from .params import AREA_LABELS, Params
from .select import cap_per_image, evaluable_area, federated_mask, score_order, top_k_per_class

PROTOCOLS = ("old", "fixed", "pooled")
POOLS = ("all",) + FREQUENCIES


def mean_valid(s: np.ndarray) -> float:
    v = s[s > -1]
    return float(np.mean(v)) if v.size else -1.0


def summarize(precision: np.ndarray, recall: np.ndarray, params: Params, gt: GroundTruth,
              recall_by_max_dets: dict | None = None) -> dict:
    """lvis-api's / pycocotools' summary figures from precision (T,R,K,A) and recall (T,K,A)."""
    thr = params.iou_thrs
    out = {}
    out["AP"] = mean_valid(precision[:, :, :, 0])
    for name, t in (("AP50", 0.5), ("AP75", 0.75)):
        out[name] = mean_valid(precision[np.where(t == thr)[0]][:, :, :, 0])
    for a, lbl in enumerate(AREA_LABELS[1:], 1):
        out["AP" + lbl[0]] = mean_valid(precision[:, :, :, a])
    if gt.kind == "lvis":
        for f, cats in gt.freq_groups().items():
            out["AP" + f] = mean_valid(precision[:, :, cats, 0])
    if recall_by_max_dets:
        for md, rec in recall_by_max_dets.items():
            out[f"AR{md}"] = mean_valid(rec[:, :, 0])
    out["AR"] = mean_valid(recall[:, :, 0])
    for a, lbl in enumerate(AREA_LABELS[1:], 1):
        out["AR" + lbl[0]] = mean_valid(recall[:, :, a])
    return out


def summarize_pooled(curves: dict, params: Params) -> dict:
    """AP-Pool figures (AP, AP50, AP75 over all classes; APr/c/f over each frequency pool)."""
    thr = params.iou_thrs
    out = {}
    q = curves.get("all")
    out["AP"] = -1.0 if q is None else float(np.mean(q))
    for name, t in (("AP50", 0.5), ("AP75", 0.75)):
        tidx = np.where(t == thr)[0]
        out[name] = -1.0 if q is None or not len(tidx) else float(np.mean(q[tidx]))
    for f in FREQUENCIES:
        if f in curves:
            qf = curves[f]
            out["AP" + f] = -1.0 if qf is None else float(np.mean(qf))
    return out


@dataclass
class EvalResult:
    """Figures of one evaluation; ``to_dict()`` is what ``lveval evaluate --json`` writes."""

    params: Params
    gt: GroundTruth = field(repr=False)
    old: dict | None = None
    fixed: dict | None = None
    pooled: dict | None = None
    per_class: list = field(default_factory=list)
    notices: Notices = field(default_factory=Notices)
    inputs: dict = field(default_factory=dict)
    precision: dict = field(default_factory=dict, repr=False)   # protocol -> (T, R, K, A)
    recall: dict = field(default_factory=dict, repr=False)      # protocol -> (T, K, A)
    pooled_precision: dict = field(default_factory=dict, repr=False)  # pool -> (T, R) or None
    matching: Matching | None = field(default=None, repr=False)

    def to_dict(self) -> dict:
        d: dict[str, Any] = {}
        for p in PROTOCOLS:
            v = getattr(self, p)
            if v is not None:
                d[p] = v
        d["per_class"] = self.per_class
        d["params"] = self.params.to_dict()
        d["skipped"] = dict(sorted(self.notices.skipped.items()))
        d["flagged"] = dict(sorted(self.notices.flagged.items()))
        d["warnings"] = list(self.notices.warnings)
        d["inputs"] = self.inputs
        d["lveval_version"] = __version__
        return d

    def __getitem__(self, key):
        return getattr(self, key)


def file_digest(source) -> str | None:
    """sha256 of an input file (recorded in outputs for reproducibility)."""
    if isinstance(source, (str, os.PathLike)) and os.path.isfile(source):
        h = hashlib.sha256()
        with open(source, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 22), b""):
                h.update(chunk)
        return "sha256:" + h.hexdigest()
    return None


def input_digest(source, loaded: str | None) -> str | None:
    """The digest recorded for an input: the loader's (taken from the bytes it read), else the
    file's; None when ``source`` is not a path."""
    if not isinstance(source, (str, os.PathLike)):
        return None
    return loaded or file_digest(source)


class Evaluator:
    """Shared state of one evaluation: bound detections, selections and one matching pass.

    The analyses (cap sweeps, re-ranking, subsets) reuse ``matching_for`` so a
    sweep costs one match plus cheap accumulations.
    """

    def __init__(self, gt: GroundTruth, dets: Detections, params: Params):
        self.gt, self.dets, self.params = gt, dets, params
        self.fed = federated_mask(gt, dets.img_idx, dets.cat_idx) & evaluable_area(gt, dets.area)
        self.order = score_order(dets.score)   # shared by every selection and the matching

    def old_selection(self, n: int | None = None) -> np.ndarray:
        n = self.params.max_dets_per_image if n is None else n
        d = self.dets
        # pycocotools caps per image and category, lvis-api per image
        group = d.img_idx * self.gt.num_categories + d.cat_idx if self.gt.kind == "coco" else d.img_idx
        return cap_per_image(group, d.score, n, self.order)

    def fixed_selection(self, k: int | None = None) -> np.ndarray:
        k = self.params.max_dets_per_class if k is None else k
        return top_k_per_class(self.dets.cat_idx, self.dets.score, k, self.order)

    def matching_for(self, selection: np.ndarray) -> Matching:
        return match(self.gt, self.dets, selection & self.fed, self.params, self.order)

    def accumulate(self, m: Matching, selection: np.ndarray | None):
        sub = None if selection is None else selection[m.det]
        return per_class(m, sub, self.params, self.gt.num_categories)

    def selections(self, protocols: Iterable[str], old: np.ndarray | None = None):
        """(AP-Old's, AP-Fixed's) selections for ``protocols``, empty where not needed (AP-Fixed's is
        also AP-Pool's). ``old`` replaces AP-Old's own cap (a sharded run derives it globally)."""
        none = np.zeros(len(self.dets), bool)
        sel_old = (self.old_selection() if old is None else old) if "old" in protocols else none
        sel_fixed = self.fixed_selection() if ("fixed" in protocols or "pooled" in protocols) else none
        return sel_old, sel_fixed

    def summarize_selection(self, m: Matching, selection: np.ndarray | None, coco_ar: bool = False):
        sub = None if selection is None else selection[m.det]
        prec, rec, by_md = selection_curves(m, sub, self.params, self.gt.num_categories,
                                            coco_ar and self.gt.kind == "coco")
        return summarize(prec, rec, self.params, self.gt, by_md), prec, rec

    def pooled_curves(self, m: Matching, selection: np.ndarray | None) -> dict:
        return pooled_curves(self.gt, self.params, m, None if selection is None else selection[m.det])


def selection_curves(m: Matching, subset: np.ndarray | None, params: Params, num_cats: int, coco_ar: bool):
    """Per-class precision (T, R, K, A), recall (T, K, A) of rows ``subset`` of ``m``, and with
    ``coco_ar`` pycocotools' recall at each smaller maxDets ({maxDets: recall}; else None)."""
    prec, rec = per_class(m, subset, params, num_cats)
    by_md = None
    if coco_ar:
        by_md = {md: per_class(m, subset, params, num_cats, max_rank=md)[1] for md in params.coco_max_dets[:-1]}
    return prec, rec, by_md


def pooled_curves(gt: GroundTruth, params: Params, m: Matching, subset: np.ndarray | None) -> dict:
    """AP-Pool curves of every pool (all; r/c/f under LVIS rules) over rows ``subset`` of ``m``."""
    pools = {"all": np.arange(gt.num_categories)}
    if gt.kind == "lvis":
        pools.update(gt.freq_groups())
    return {name: pooled(m, subset, cats, params) for name, cats in pools.items()}


def fixed_budget_warning(num_dets: np.ndarray, params: Params) -> str | None:
    """The paper's advice when classes have fewer than K detections (None when none do)."""
    K = params.max_dets_per_class
    short = int((num_dets < K).sum())
    if short and K >= 0:
        return (f"{short} of {len(num_dets)} classes have fewer than {K} detections, AP-Fixed's budget; to "
                "fill it, output more per class (lower the score threshold, raise the per-image limit)")
    return None


def class_ap(precision: np.ndarray) -> np.ndarray:
    """AP of each class from (T, R, K, A) precision (area 'all', mean over IoU and recall
    thresholds); -1 where undefined."""
    pr = precision[:, :, :, 0]
    valid = (pr > -1).all(axis=(0, 1))
    return np.where(valid, pr.mean(axis=(0, 1)), -1.0)


def per_class_table(gt: GroundTruth, num_dets: np.ndarray, num_gt: np.ndarray, result: EvalResult) -> list:
    """The ``per_class`` rows: counts per category and each protocol's class AP (-1 if undefined)."""
    K = gt.num_categories
    rows = []
    aps = {p: class_ap(result.precision[p]) for p in ("old", "fixed") if p in result.precision}
    for k in range(K):
        r = {"category_id": int(gt.cat_ids[k]), "name": gt.cat_names[k], "frequency": str(gt.cat_freq[k]),
             "num_gt": int(num_gt[k]), "num_dets": int(num_dets[k])}
        for p in ("old", "fixed"):
            if p in aps:
                r["AP_" + p] = float(aps[p][k])
        rows.append(r)
    return rows


def check_protocols(protocols: Iterable[str]) -> tuple:
    """``protocols`` as a tuple; ValueError for a name that is not one of PROTOCOLS."""
    protocols = tuple(protocols)
    for p in protocols:
        if p not in PROTOCOLS:
            raise ValueError(f"unknown protocol {p!r}; choose from {', '.join(PROTOCOLS)}")
    return protocols


def evaluate(gt: Any, results: Any, *, iou_type: str = "bbox",
             protocols: Iterable[str] = PROTOCOLS, max_dets_per_image: int | None = None,
             max_dets_per_class: int = 10_000, dataset: str | None = None,
             on_unknown_image: str = "error", on_unknown_category: str = "error",
             progress: bool = False) -> EvalResult:
    """Evaluate ``results`` against ``gt`` under AP-Old, AP-Fixed and AP-Pool.

    ``gt``: path, COCO/LVIS dict or GroundTruth. ``results``: path (.json,
    .jsonl, .parquet), list of result dicts, dict of columns, or Detections.
    Returns an :class:`EvalResult`; values are fractions, -1 where undefined.
    ``progress``: show a stage bar on stderr.
    """
    from .progress import Stages

    protocols = check_protocols(protocols)
    bar = Stages(["gt", "results", "select", "match"] + list(protocols), enabled=progress)
    try:
        return _evaluate(gt, results, bar, iou_type=iou_type, protocols=protocols,
                         max_dets_per_image=max_dets_per_image, max_dets_per_class=max_dets_per_class,
                         dataset=dataset, on_unknown_image=on_unknown_image,
                         on_unknown_category=on_unknown_category)
    finally:
        bar.close()


def _evaluate(gt, results, bar, *, iou_type, protocols, max_dets_per_image, max_dets_per_class, dataset,
              on_unknown_image, on_unknown_category) -> EvalResult:
    bar.start("loading ground truth")
    g = load_gt(gt, dataset=dataset)
    bar.done()
    params = Params(iou_type=iou_type, dataset=g.kind, max_dets_per_image=max_dets_per_image,
                    max_dets_per_class=max_dets_per_class)
    bar.start("loading results")
    raw = load_results(results, gt=g)   # the memory check counts the ground truth and its vocabulary
    dets = bind(raw, g, iou_type=iou_type, on_unknown_image=on_unknown_image,
                on_unknown_category=on_unknown_category)
    bar.done()
    notices = Notices()
    notices.merge(g.notices)
    notices.merge(dets.notices)
    w = coverage_warning(dets, g)
    if w:
        notices.warn(w)
    bar.start("selecting")
    ev = Evaluator(g, dets, params)
    sel_old, sel_fixed = ev.selections(protocols)
    bar.done()
    bar.start("matching")
    m = ev.matching_for(sel_old | sel_fixed)
    bar.done()
    num_dets = np.bincount(dets.cat_idx, minlength=g.num_categories)
    res = EvalResult(params=params, gt=g, notices=notices, matching=m,
                     inputs={"gt": input_digest(gt, g.digest), "results": input_digest(results, raw.digest)})
    if "old" in protocols:
        bar.start("accumulating AP-Old")
        res.old, res.precision["old"], res.recall["old"] = ev.summarize_selection(m, sel_old, coco_ar=True)
        bar.done()
    if "fixed" in protocols:
        bar.start("accumulating AP-Fixed")
        res.fixed, res.precision["fixed"], res.recall["fixed"] = ev.summarize_selection(m, sel_fixed)
        w = fixed_budget_warning(num_dets, params)
        if w:
            notices.warn(w)
        bar.done()
    if "pooled" in protocols:
        bar.start("accumulating AP-Pool")
        res.pooled_precision = ev.pooled_curves(m, sel_fixed)
        res.pooled = summarize_pooled(res.pooled_precision, params)
        bar.done()
    res.per_class = per_class_table(g, num_dets, m.num_gt[:, 0], res)
    return res
