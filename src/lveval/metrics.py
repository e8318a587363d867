"""The three protocols and their summaries: AP-Old, AP-Fixed and AP-Pool.

``evaluate`` loads, selects, matches once and accumulates every requested
protocol from that one matching pass.
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import __version__
from .accumulate import per_class, pooled
from .exceptions import Notices
from .io.gt import GroundTruth, load_gt
from .io.results import Detections, bind, coverage_warning, file_sha256, load_results, pending_digest
from .match import Matching, match
from .params import CHALLENGES, MASK_IOU_TYPES, PROTOCOLS, Dataset, IouType, Params, Policy, Protocol, challenge_settings
from .select import agnostic_order, cap_per_image, evaluable_area, federated_mask, score_order, top_k_per_class


def mean_valid(s: np.ndarray) -> float:
    v = s[s > -1]
    return float(np.mean(v)) if v.size else -1.0


def class_groups(gt: GroundTruth, params: Params) -> dict:
    """Named groups of categories whose figures are reported: the frequency groups r/c/f (keys
    ``APr``...) when categories carry frequencies, and the user's splits (keys ``AP_<name>``...).
    Empty under class-agnostic evaluation (one pseudo-class)."""
    if params.class_agnostic:
        return {}
    out = {}
    if gt.has_frequencies:
        out.update(gt.freq_groups())
    for name, spec in params.splits:
        out["_" + name] = gt.class_indices(spec, what=f"split {name!r}")
    return out


def _by_area(precision: np.ndarray):
    """Precision (T, R, K, A) as A contiguous (T, R, K') arrays over the K' categories with a valid
    value, and the map of category indices into K'. The categories left out hold only -1, so every
    slice keeps the valid values of the full array in the same order: the same means, bit for bit,
    from smaller arrays without strides (an LVIS subset: 420 of the 1,203 classes have ground truth)."""
    K, A = precision.shape[2], precision.shape[3]
    if K * A == 0 or precision.size == 0:
        return [precision[:, :, :, a] for a in range(A)], lambda cats: cats
    live = np.flatnonzero((precision.reshape(-1, K * A).max(axis=0, initial=-1.0) > -1).reshape(K, A).any(axis=1))
    if len(live) == K:
        return [precision[:, :, :, a] for a in range(A)], lambda cats: cats
    compact = np.ascontiguousarray(np.take(precision, live, axis=2).transpose(3, 0, 1, 2))
    pos = np.full(K, -1, np.int64)
    pos[live] = np.arange(len(live))

    def at(cats):
        cats = np.asarray(cats)
        c = pos[np.flatnonzero(cats) if cats.dtype == bool else cats.astype(np.int64)]
        return c[c >= 0]

    return list(compact), at


def _thr_index(thr: np.ndarray, t: float) -> np.ndarray:
    return np.where(t == thr)[0]   # exact, as the references select their AP50 / AP75


def summarize(precision: np.ndarray, recall: np.ndarray, params: Params, gt: GroundTruth,
              recall_by_max_dets: dict | None = None, groups: dict | None = None,
              recall_at: dict | None = None) -> dict:
    """lvis-api's / pycocotools' summary figures from precision (T,R,K,A) and recall (T,K,A).

    ``groups``: :func:`class_groups` (default: computed here); ``recall_by_max_dets``:
    pycocotools' recall at its smaller maxDets (keys ``AR1``, ``AR10``); ``recall_at``:
    recall (T, K, A) at each of ``params.max_dets`` (keys ``AR@N``, ``ARs@N``...). Keys of
    IoU thresholds that are not evaluated (AP50, AP75) are left out.
    """
    thr = params.iou_thrs
    groups = class_groups(gt, params) if groups is None else groups
    by_area, at = _by_area(precision)
    out = {}
    out["AP"] = mean_valid(by_area[0])
    for name, t in (("AP50", 0.5), ("AP75", 0.75)):
        tidx = _thr_index(thr, t)
        if len(tidx):
            out[name] = mean_valid(by_area[0][tidx])
    for a, lbl in enumerate(params.area_names[1:], 1):
        out["AP" + lbl[0]] = mean_valid(by_area[a])
    for g, cats in groups.items():
        c = at(cats)
        out["AP" + g] = mean_valid(by_area[0][:, :, c])
        if g.startswith("_"):
            for name, t in (("AP50", 0.5), ("AP75", 0.75)):
                tidx = _thr_index(thr, t)
                if len(tidx):
                    out[name + g] = mean_valid(by_area[0][tidx][:, :, c])
    if recall_by_max_dets:
        for md, rec in recall_by_max_dets.items():
            out[f"AR{md}"] = mean_valid(rec[:, :, 0])
    out["AR"] = mean_valid(recall[:, :, 0])
    for a, lbl in enumerate(params.area_names[1:], 1):
        out["AR" + lbl[0]] = mean_valid(recall[:, :, a])
    for n, rec in (recall_at or {}).items():
        out[f"AR@{n}"] = mean_valid(rec[:, :, 0])
        for a, lbl in enumerate(params.area_names[1:], 1):
            out[f"AR{lbl[0]}@{n}"] = mean_valid(rec[:, :, a])
    return out


def summarize_pooled(curves: dict, params: Params) -> dict:
    """AP-Pool figures (AP, AP50, AP75 over all classes; APr/c/f over each frequency pool; AP,
    AP50, AP75 over each split's pool, keys ``AP_<name>``...)."""
    thr = params.iou_thrs
    out = {}
    for pool, q in curves.items():
        suffix = "" if pool == "all" else pool
        out["AP" + suffix] = -1.0 if q is None else float(np.mean(q))
        if pool == "all" or pool.startswith("_"):
            for name, t in (("AP50", 0.5), ("AP75", 0.75)):
                tidx = _thr_index(thr, t)
                if len(tidx):
                    out[name + suffix] = -1.0 if q is None else float(np.mean(q[tidx]))
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

    @property
    def challenge(self) -> str | None:
        """The preset (:data:`lveval.params.CHALLENGES`) the evaluation followed, if any."""
        return self.params.challenge

    def headline(self) -> tuple[str, float] | None:
        """(label, value) of the preset's official figure, or None without a preset."""
        if self.challenge is None or self.fixed is None:
            return None
        return CHALLENGES[self.challenge]["headline"], self.fixed["AP"]

    def to_dict(self) -> dict:
        d: dict[str, Any] = {}
        for p in PROTOCOLS:
            v = getattr(self, p)
            if v is not None:
                d[p] = v
        if self.challenge is not None:
            label, value = self.headline() or (CHALLENGES[self.challenge]["headline"], -1.0)
            d["challenge"] = {"name": self.challenge, "headline": label, "AP": value}
        d["per_class"] = self.per_class
        d["params"] = self.params.to_dict()
        d.update(self.notices.to_dict())
        d["inputs"] = self.inputs
        d["lveval_version"] = __version__
        return d

    def __getitem__(self, key):
        return getattr(self, key)


def file_digest(source) -> str | None:
    """sha256 of an input file (recorded in outputs for reproducibility)."""
    if isinstance(source, (str, os.PathLike)) and os.path.isfile(source):
        return file_sha256(str(source))
    return None


def input_digest(source, loaded: str | None) -> str | None:
    """The digest recorded for an input: the loader's (taken from the bytes it read), else the
    file's; None when ``source`` is not a path."""
    if not isinstance(source, (str, os.PathLike)):
        return None
    return loaded or file_digest(source)


class Evaluator:
    """Shared state of one evaluation: bound detections, selections and one matching pass.

    :meth:`load` is the one loading path (ground truth, results, binding,
    notices, input digests) for every command and API on top of the engine.
    The analyses (cap sweeps, re-ranking, subsets) reuse ``matching_for`` so a
    sweep costs one match plus cheap accumulations.
    """

    def __init__(self, gt: GroundTruth, dets: Detections, params: Params, *,
                 notices: Notices | None = None, inputs: dict | None = None, raw: Detections | None = None):
        self.gt, self.dets, self.params = gt, dets, params.resolve(gt.kind)
        self.notices = notices if notices is not None else Notices()
        self.inputs = inputs if inputs is not None else {}
        self.raw = raw           # the results as loaded, before binding
        if dets.img_idx is None or dets.cat_idx is None or dets.area is None:
            raise ValueError("detections must be bound to the ground truth (lveval.io.results.bind)")
        self.img_idx: np.ndarray = dets.img_idx   # bound columns, typed once for the selections
        self.cat_idx: np.ndarray = dets.cat_idx
        self.fed = federated_mask(gt, dets.img_idx, dets.cat_idx) & evaluable_area(gt, dets.area)
        self.order = score_order(dets.score)   # shared by every selection and the matching
        self.match_order = self.order
        if self.params.class_agnostic:
            # pycocotools (useCats = 0) concatenates an image's detections class by class, then
            # sorts by score (stable): ties go by (category, file order). Under COCO rules its cap
            # is taken in that order too; lvis-api caps per image at load time, in file order.
            self.match_order = agnostic_order(self.cat_idx, dets.score)
            if gt.kind == "coco":
                self.order = self.match_order
        self.groups = class_groups(gt, self.params)
        self.num_classes = 1 if self.params.class_agnostic else gt.num_categories

    @classmethod
    def load(cls, gt: Any, results: Any, params: Params | None = None, *, bar=None) -> Evaluator:
        """Load and validate ``gt`` and ``results``, bind them, and collect notices and input digests.

        ``gt``: path, COCO/LVIS dict or GroundTruth; ``results``: path (.json,
        .jsonl, .parquet), list of result dicts, dict of columns or Detections.
        ``params.dataset`` None guesses the rules from the ground truth.
        """
        params = Params() if params is None else params
        if bar is not None:
            bar.start("loading ground truth")
        digest = pending_digest(results)   # hashed on another core while the ground truth is decoded
        g = load_gt(gt, dataset=params.dataset)
        params = params.resolve(g.kind)
        if params.iou_type in MASK_IOU_TYPES:
            g.prefetch_rles()   # polygons become RLE while the results are read
        if bar is not None:
            bar.done()
            bar.start("loading results")
        # the memory check counts the ground truth and its vocabulary
        raw = load_results(results, gt=g, measure_masks=params.iou_type in MASK_IOU_TYPES, digest=digest)
        dets = bind(raw, g, iou_type=params.iou_type, on_unknown_image=params.on_unknown_image,
                    on_unknown_category=params.on_unknown_category)
        if bar is not None:
            bar.done()
        notices = Notices()
        notices.merge(g.notices)
        notices.merge(dets.notices)
        w = coverage_warning(dets, g)
        if w:
            notices.warn(w)
        inputs = {"gt": input_digest(gt, g.digest), "results": input_digest(results, raw.digest)}
        return cls(g, dets, params, notices=notices, inputs=inputs, raw=raw)

    def old_selection(self, n: int | None = None) -> np.ndarray:
        n = self.params.max_dets_per_image if n is None else n
        # pycocotools caps per image and category, lvis-api per image
        per_class_too = self.gt.kind == "coco" and not self.params.class_agnostic
        group = self.img_idx * self.gt.num_categories + self.cat_idx if per_class_too else self.img_idx
        return cap_per_image(group, self.dets.score, -1 if n is None else n, self.order)

    def fixed_selection(self, k: int | None = None) -> np.ndarray:
        k = self.params.max_dets_per_class if k is None else k
        return top_k_per_class(self.cat_idx, self.dets.score, k, self.order)

    def matching_for(self, selection: np.ndarray) -> Matching:
        return match(self.gt, self.dets, selection & self.fed, self.params, self.match_order)

    def accumulate(self, m: Matching, selection: np.ndarray | None):
        sub = None if selection is None else selection[m.det]
        return per_class(m, sub, self.params, self.num_classes)

    def recall_limits(self) -> tuple:
        """The detection limits of ``params.max_dets`` whose recall is reported (``AR@N``)."""
        p = self.params
        if p.max_dets is None:
            return ()
        return p.coco_max_dets if self.gt.kind == "coco" else p.max_dets

    def selections(self, protocols: Iterable[str], old: np.ndarray | None = None):
        """(AP-Old's, AP-Fixed's) selections for ``protocols``, empty where not needed (AP-Fixed's is
        also AP-Pool's). ``old`` replaces AP-Old's own cap (a sharded run derives it globally).
        AP-Old's selection covers the largest limit of ``params.max_dets`` too."""
        none = np.zeros(len(self.dets), bool)
        sel_old = none
        if "old" in protocols:
            sel_old = self.old_selection() if old is None else old
            limits = self.recall_limits()
            n = self.params.max_dets_per_image
            if old is None and limits and self.gt.kind == "lvis" and n is not None and 0 <= n < max(limits):
                sel_old = sel_old | self.old_selection(max(limits))
        sel_fixed = self.fixed_selection() if ("fixed" in protocols or "pooled" in protocols) else none
        return sel_old, sel_fixed

    def summarize_selection(self, m: Matching, selection: np.ndarray | None, coco_ar: bool = False):
        """Summary figures, precision and recall of rows ``selection``; with ``coco_ar`` (AP-Old)
        pycocotools' smaller maxDets and the recall at each of ``params.max_dets``."""
        if coco_ar and self.gt.kind == "lvis" and self.recall_limits():
            cap = self.old_selection()      # AP itself at the cap; recall at each limit
            sub = (selection & cap)[m.det] if selection is not None else cap[m.det]
        else:
            sub = None if selection is None else selection[m.det]
        prec, rec, by_md = selection_curves(m, sub, self.params, self.num_classes,
                                            coco_ar and self.gt.kind == "coco")
        recall_at = {}
        if coco_ar:
            for n in self.recall_limits():
                if self.gt.kind == "coco":
                    recall_at[n] = rec if n == self.params.max_dets_per_image else by_md[n]
                else:
                    rows = self.old_selection(n)
                    rows = rows if selection is None else rows & selection
                    recall_at[n] = per_class(m, rows[m.det], self.params, self.num_classes)[1]
        return summarize(prec, rec, self.params, self.gt, by_md, self.groups, recall_at), prec, rec

    def pooled_curves(self, m: Matching, selection: np.ndarray | None) -> dict:
        return pooled_curves(self.gt, self.params, m, None if selection is None else selection[m.det],
                             self.groups, self.num_classes)


def selection_curves(m: Matching, subset: np.ndarray | None, params: Params, num_cats: int, coco_ar: bool):
    """Per-class precision (T, R, K, A), recall (T, K, A) of rows ``subset`` of ``m``, and with
    ``coco_ar`` pycocotools' recall at each smaller maxDets ({maxDets: recall}; else None)."""
    prec, rec = per_class(m, subset, params, num_cats)
    by_md = None
    if coco_ar:
        by_md = {md: per_class(m, subset, params, num_cats, max_rank=md)[1] for md in params.coco_max_dets[:-1]}
    return prec, rec, by_md


def pooled_curves(gt: GroundTruth, params: Params, m: Matching, subset: np.ndarray | None,
                  groups: dict | None = None, num_classes: int | None = None) -> dict:
    """AP-Pool curves of every pool (all; r/c/f when categories carry frequencies; each split) over
    rows ``subset`` of ``m``."""
    pools = {"all": np.arange(gt.num_categories if num_classes is None else num_classes)}
    pools.update(class_groups(gt, params) if groups is None else groups)
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


def class_figures(precision: np.ndarray, recall: np.ndarray, params: Params) -> dict:
    """Per-class AP, AP50, AP75, AP per area range and AR, each (K,), -1 where undefined."""
    def mean_or_undef(x: np.ndarray, axes) -> np.ndarray:
        valid = (x > -1).all(axis=axes)
        return np.where(valid, x.mean(axis=axes), -1.0)

    out = {"AP": class_ap(precision)}
    for name, t in (("AP50", 0.5), ("AP75", 0.75)):
        tidx = _thr_index(params.iou_thrs, t)
        if len(tidx):
            out[name] = mean_or_undef(precision[tidx][:, :, :, 0], (0, 1))
    for a, lbl in enumerate(params.area_names[1:], 1):
        out["AP" + lbl[0]] = mean_or_undef(precision[:, :, :, a], (0, 1))
    out["AR"] = mean_or_undef(recall[:, :, 0], (0,))
    return out


def true_positives(m: Matching, selection: np.ndarray | None, num_cats: int, t: int = 0) -> np.ndarray:
    """Matched, non-ignored detections per class at IoU threshold ``t`` (area 'all') among rows
    ``selection`` (a mask over the bound detections)."""
    bit = m.matched.dtype.type(1) << m.matched.dtype.type(t)
    tp = ((m.matched[0] & bit) != 0) & ((m.ignored[0] & bit) == 0)
    if selection is not None:
        tp &= selection[m.det]
    return np.bincount(m.cat[tp], minlength=num_cats)


def per_class_table(gt: GroundTruth, num_dets: np.ndarray, num_gt: np.ndarray, result: EvalResult,
                    tp: dict | None = None) -> list:
    """The ``per_class`` rows: counts per category and each protocol's class AP (-1 if undefined);
    with ``params.per_class_metrics`` also AP50, AP75, AP per area, AR and the true positives at
    IoU 0.5 (``tp``: protocol -> counts) of every protocol."""
    params = result.params
    detailed = params.per_class_metrics
    protos = [p for p in ("old", "fixed") if p in result.precision]
    figs = {p: (class_figures(result.precision[p], result.recall[p], params) if detailed
                else {"AP": class_ap(result.precision[p])}) for p in protos}
    if params.class_agnostic:   # one pseudo-class: every category together
        rows = [{"category_id": -1, "name": "(all classes, class-agnostic)", "frequency": "",
                 "num_gt": int(num_gt.sum()), "num_dets": int(num_dets.sum())}]
        K = 1
    else:
        K = gt.num_categories
        rows = [{"category_id": int(gt.cat_ids[k]), "name": gt.cat_names[k], "frequency": str(gt.cat_freq[k]),
                 "num_gt": int(num_gt[k]), "num_dets": int(num_dets[k])} for k in range(K)]
    for p in protos:
        for key, vals in figs[p].items():
            col = key + "_" + p
            for k in range(K):
                rows[k][col] = float(vals[k])
        if detailed and tp is not None and p in tp:
            for k in range(K):
                rows[k]["TP50_" + p] = int(tp[p][k])
    return rows


def check_protocols(protocols: Iterable[str] | str) -> tuple:
    """``protocols`` as a tuple; OptionError for a name that is not one of PROTOCOLS."""
    return Params(protocols=protocols).protocols  # type: ignore[arg-type]


def evaluate(gt: Any, results: Any, params: Params | None = None, *,
             iou_type: IouType | None = None, protocols: Iterable[Protocol] | str | None = None,
             max_dets_per_image: int | None = None, max_dets_per_class: int | None = None,
             dataset: Dataset | None = None, on_unknown_image: Policy | None = None,
             on_unknown_category: Policy | None = None,
             iou_thresholds: Sequence[float] | None = None, rec_thresholds: Sequence[float] | None = None,
             area_ranges: Sequence[tuple[str, float, float]] | None = None,
             max_dets: Sequence[int] | None = None, class_agnostic: bool | None = None,
             splits: Sequence[tuple[str, str]] | dict | None = None, per_class_metrics: bool | None = None,
             dilation_ratio: float | None = None, challenge: str | None = None,
             progress: bool = False) -> EvalResult:
    """Evaluate ``results`` against ``gt`` under AP-Old, AP-Fixed and AP-Pool.

    ``gt``: path, COCO/LVIS dict or GroundTruth. ``results``: path (.json,
    .jsonl, .parquet), list of result dicts, dict of columns, or Detections.
    Options: a :class:`~lveval.params.Params`, and/or its fields as keywords
    (a keyword given here overrides ``params``): ``iou_type`` ("bbox", "segm"),
    ``protocols`` (subset of "old", "fixed", "pooled"), ``max_dets_per_image``
    (AP-Old's cap; default LVIS 300, COCO pycocotools' 100 per image and class),
    ``max_dets_per_class`` (AP-Fixed's budget, default 10,000), ``dataset``
    ("lvis" or "coco" rules; default guessed from ``gt``), ``on_unknown_image``
    and ``on_unknown_category`` ("error" or "skip"); ``iou_thresholds`` and
    ``rec_thresholds`` (default 0.50:0.95:0.05 and 0:1:0.01, as the references build them),
    ``area_ranges`` ((name, low, high) triples; the first is AP's own), ``max_dets``
    (detection limits: recall ``AR@N`` at each), ``class_agnostic`` (pycocotools'
    ``useCats = 0``), ``splits`` ((name, classes) pairs: keys ``AP_<name>``...) and
    ``per_class_metrics`` (a fuller per-class table); ``dilation_ratio`` (Boundary IoU's band
    as a fraction of the image diagonal, default 0.02). ``iou_type="boundary"``: Boundary IoU,
    min of mask and boundary IoU. ``challenge="lvis2021"``: the LVIS 2021 challenge (boundary,
    AP-Fixed 10,000/class and AP-Pool on the same detections; ``result.headline()``).
    Returns an :class:`EvalResult`; values are fractions, -1 where undefined.
    ``progress``: show a stage bar on stderr.
    """
    from .progress import Stages

    given = dict(iou_type=iou_type, protocols=protocols, max_dets_per_image=max_dets_per_image,
                 max_dets_per_class=max_dets_per_class, dataset=dataset, on_unknown_image=on_unknown_image,
                 on_unknown_category=on_unknown_category, iou_thresholds=iou_thresholds,
                 rec_thresholds=rec_thresholds, area_ranges=area_ranges, max_dets=max_dets,
                 class_agnostic=class_agnostic, splits=splits, per_class_metrics=per_class_metrics,
                 dilation_ratio=dilation_ratio, challenge=challenge)
    params = make_params(params, **given)
    bar = Stages(["gt", "results", "select", "match"] + list(params.protocols), enabled=progress)
    try:
        return evaluate_loaded(Evaluator.load(gt, results, params, bar=bar), bar)
    finally:
        bar.close()


def make_params(params: Params | None = None, **options: Any) -> Params:
    """``params`` (default ``Params()``) with the options that are not None replacing its fields; a
    ``challenge`` preset sets the fields it fixes (an option contradicting it is an OptionError)."""
    if options.get("challenge") is not None:
        options = challenge_settings(options.pop("challenge"), **options)
    changes = {k: v for k, v in options.items() if v is not None}
    base = Params() if params is None else params
    return base.replace(**changes) if changes else base


def evaluate_loaded(ev: Evaluator, bar=None) -> EvalResult:
    """The figures of an already loaded :class:`Evaluator` for ``ev.params.protocols``."""
    from .progress import Stages

    bar = bar if bar is not None else Stages([], enabled=False)
    params, g, protocols = ev.params, ev.gt, ev.params.protocols
    notices = ev.notices
    bar.start("selecting")
    sel_old, sel_fixed = ev.selections(protocols)
    bar.done()
    bar.start("matching")
    m = ev.matching_for(sel_old | sel_fixed)
    bar.done()
    num_dets = np.bincount(ev.cat_idx, minlength=g.num_categories)
    res = EvalResult(params=params, gt=g, notices=notices, matching=m, inputs=dict(ev.inputs))
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
    tp = None
    if params.per_class_metrics:
        sel_cap = sel_old & ev.old_selection() if "old" in protocols else sel_old   # the cap, not AR's limits
        tp = {p: true_positives(m, sel, ev.num_classes) for p, sel in (("old", sel_cap), ("fixed", sel_fixed))
              if p in res.precision}
    res.per_class = per_class_table(g, num_dets, m.num_gt[:, 0], res, tp)
    return res
