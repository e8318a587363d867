"""Typed results of the analyses: frozen dataclasses whose ``to_dict()`` is what ``--json`` writes.

AP figures (``old``, ``fixed``, ``pooled``) stay the summary dicts of
``lveval evaluate --json`` (keys ``AP``, ``AP50``, ``APr`` ...; fractions, -1
where undefined), as in :class:`lveval.EvalResult`. A cap or budget of ``None``
means no limit (JSON null).

Dict-style reading (``result["settings"]["per_class"]``) still works, as for
``EvalResult``, and is deprecated: read the attributes instead.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..output import JsonResult


# ---- rerank -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class OldFixed(JsonResult):
    """AP-Old (the per-image cap) and AP-Fixed (the per-class budget) of one set of detections."""

    old: dict
    fixed: dict

    def to_dict(self) -> dict:
        return {"old": self.old, "fixed": self.fixed}


@dataclass(frozen=True)
class RerankSettings(JsonResult):
    """The policy's ``per_class`` K, AP-Old's cap and AP-Fixed's budget (None: no limit), and the
    number of detections before and after the policy."""

    per_class: int
    max_dets_per_image: int | None
    max_dets_per_class: int | None
    num_detections_before: int
    num_detections_after: int

    @property
    def num_detections(self) -> dict[str, int]:
        """``{"before": n, "after": n}``, as in the JSON."""
        return {"before": self.num_detections_before, "after": self.num_detections_after}

    def to_dict(self) -> dict:
        return {"per_class": self.per_class, "max_dets_per_image": self.max_dets_per_image,
                "max_dets_per_class": self.max_dets_per_class, "num_detections": self.num_detections}


@dataclass(frozen=True)
class RerankResult(JsonResult):
    """:func:`lveval.analysis.rerank.rerank`: AP-Old and AP-Fixed ``before`` and ``after`` the gaming
    policy (top K per class over the set, then the per-image cap), and its ``settings``."""

    before: OldFixed
    after: OldFixed
    settings: RerankSettings

    def to_dict(self) -> dict:
        return {"before": self.before.to_dict(), "after": self.after.to_dict(), "settings": self.settings.to_dict()}


@dataclass(frozen=True)
class RerankRow(JsonResult):
    """One K of :func:`lveval.analysis.rerank.rerank_grid`: detections kept by the policy and their
    AP-Old and AP-Fixed."""

    per_class: int
    num_detections: int
    old: dict
    fixed: dict

    def to_dict(self) -> dict:
        return {"per_class": self.per_class, "num_detections": self.num_detections, "old": self.old,
                "fixed": self.fixed}


# ---- sweep --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CapRow(JsonResult):
    """AP-Old (and AP-Pool, if computed) of the top ``cap`` detections per image (None: no cap)."""

    cap: int | None
    old: dict
    pooled: dict | None = None

    def to_dict(self) -> dict:
        d: dict[str, Any] = {"cap": self.cap, "old": self.old}
        if self.pooled is not None:
            d["pooled"] = self.pooled
        return d


@dataclass(frozen=True)
class BudgetRow(JsonResult):
    """AP-Fixed (and AP-Pool, if computed) of the top ``k`` detections per class over the set
    (None: no budget)."""

    k: int | None
    fixed: dict
    pooled: dict | None = None

    def to_dict(self) -> dict:
        d: dict[str, Any] = {"k": self.k, "fixed": self.fixed}
        if self.pooled is not None:
            d["pooled"] = self.pooled
        return d


@dataclass(frozen=True)
class SweepTiming(JsonResult):
    """Seconds to load (None for a session not built by ``Session.load``), to match once and to
    accumulate every setting, their total, the number of ``settings``, and (``--compare-timing``)
    the seconds of one ``lveval.evaluate`` call per setting."""

    load_s: float | None
    match_s: float
    accumulate_s: float
    total_s: float
    settings: int
    separate_evaluations_s: float | None = None

    def to_dict(self) -> dict:
        d: dict[str, Any] = {"load_s": self.load_s, "match_s": self.match_s, "accumulate_s": self.accumulate_s,
                             "total_s": self.total_s, "settings": self.settings}
        if self.separate_evaluations_s is not None:
            d["separate_evaluations_s"] = self.separate_evaluations_s
        return d


@dataclass(frozen=True)
class SweepResult(JsonResult):
    """:func:`lveval.analysis.sweep.sweep`: one row per per-image cap and per per-class budget."""

    dets_per_image: list[CapRow]
    dets_per_class: list[BudgetRow]
    timing: SweepTiming

    def to_dict(self) -> dict:
        return {"dets_per_image": [r.to_dict() for r in self.dets_per_image],
                "dets_per_class": [r.to_dict() for r in self.dets_per_class], "timing": self.timing.to_dict()}


@dataclass(frozen=True)
class SeparateTiming(JsonResult):
    """:func:`lveval.analysis.sweep.time_separate`: seconds of one ``lveval.evaluate`` call per
    setting, the number of settings, and the AP-Old / AP-Fixed summaries those calls gave."""

    total_s: float
    settings: int
    old: list[dict]
    fixed: list[dict]

    @property
    def figures(self) -> dict[str, list[dict]]:
        """``{"old": [...], "fixed": [...]}``, as in the dict returned before."""
        return {"old": self.old, "fixed": self.fixed}

    def to_dict(self) -> dict:
        return {"total_s": self.total_s, "settings": self.settings, "figures": self.figures}


# ---- subsets ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SubsetRow(JsonResult):
    """One class subset (``"R"``, ``"C+F"`` ...): its classes, those with ground truth, its
    non-ignored instances and instances per class, ``AP`` at each cap (key ``"300"``, ``"inf"``;
    averaged over the subset's classes) and ``delta`` = last cap's AP minus the first's (None when
    either is undefined)."""

    subset: str
    num_classes: int
    num_classes_with_gt: int
    num_instances: int
    instances_per_class: float
    AP: dict[str, float]
    delta: float | None

    def to_dict(self) -> dict:
        return {"subset": self.subset, "num_classes": self.num_classes, "num_classes_with_gt": self.num_classes_with_gt,
                "num_instances": self.num_instances, "instances_per_class": self.instances_per_class,
                "AP": self.AP, "delta": self.delta}


@dataclass(frozen=True)
class SubsetsResult(JsonResult):
    """:func:`lveval.analysis.subsets.subsets`: the per-image ``caps`` compared and one row per subset."""

    caps: list[int | None]
    subsets: list[SubsetRow]

    def to_dict(self) -> dict:
        return {"caps": list(self.caps), "subsets": [r.to_dict() for r in self.subsets]}


# ---- scores -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ScoreGroup(JsonResult):
    """Scores of one frequency group in one selection: count, mean, median, 90th percentile and
    ``normalised_mean`` = mean / mean of the frequent classes (None without detections)."""

    count: int
    mean: float | None
    median: float | None
    p90: float | None
    normalised_mean: float | None

    def to_dict(self) -> dict:
        return {"count": self.count, "mean": self.mean, "median": self.median, "p90": self.p90,
                "normalised_mean": self.normalised_mean}


@dataclass(frozen=True)
class GroupShare(JsonResult):
    """A frequency group's share (fraction) of the classes, of the ground-truth instances and of
    the detections AP-Old's per-image cap keeps."""

    classes: float
    gt_instances: float
    detections_in_cap: float

    def to_dict(self) -> dict:
        return {"classes": self.classes, "gt_instances": self.gt_instances, "detections_in_cap": self.detections_in_cap}


@dataclass(frozen=True)
class ScoreHistogram(JsonResult):
    """Score histogram of AP-Fixed's selection: bin ``edges`` and the counts of each frequency group
    (written as keys ``"r"``, ``"c"``, ``"f"`` beside ``"edges"``)."""

    edges: list[float]
    counts: dict[str, list[int]]

    def __getitem__(self, key: str) -> Any:
        return self.counts[key] if key in self.counts else super().__getitem__(key)

    def to_dict(self) -> dict:
        return {"edges": self.edges, **self.counts}


@dataclass(frozen=True)
class Limits(JsonResult):
    """AP-Old's per-image cap and AP-Fixed's per-class budget (None: no limit)."""

    max_dets_per_image: int | None
    max_dets_per_class: int | None

    def to_dict(self) -> dict:
        return {"max_dets_per_image": self.max_dets_per_image, "max_dets_per_class": self.max_dets_per_class}


@dataclass(frozen=True)
class ScoreStats(JsonResult):
    """:func:`lveval.analysis.scores.score_stats`: ``selections[over][group]`` (over: ``"fixed"``,
    ``"old"``, ``"all"``; group ``"r"``, ``"c"``, ``"f"``), each group's ``shares``, the
    ``histogram``, the limits in force and the group means are normalised to (``"f"``)."""

    selections: dict[str, dict[str, ScoreGroup]]
    shares: dict[str, GroupShare]
    histogram: ScoreHistogram
    settings: Limits
    normalised_to: str = "f"

    def to_dict(self) -> dict:
        return {"selections": {o: {f: g.to_dict() for f, g in gs.items()} for o, gs in self.selections.items()},
                "normalised_to": self.normalised_to, "settings": self.settings.to_dict(),
                "shares": {f: v.to_dict() for f, v in self.shares.items()}, "histogram": self.histogram.to_dict()}


# ---- nms ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class NmsRow(JsonResult):
    """One NMS IoU ``threshold`` (None: no NMS): detections kept, their AP-Old and AP-Fixed."""

    threshold: float | None
    num_detections: int
    old: dict
    fixed: dict

    def to_dict(self) -> dict:
        return {"threshold": self.threshold, "num_detections": self.num_detections, "old": self.old,
                "fixed": self.fixed}


@dataclass(frozen=True)
class NmsSettings(JsonResult):
    """AP-Old's cap, AP-Fixed's budget (None: no limit) and the number of raw detections."""

    max_dets_per_image: int | None
    max_dets_per_class: int | None
    num_raw_detections: int

    def to_dict(self) -> dict:
        return {"max_dets_per_image": self.max_dets_per_image, "max_dets_per_class": self.max_dets_per_class,
                "num_raw_detections": self.num_raw_detections}


@dataclass(frozen=True)
class NmsTiming(JsonResult):
    """Seconds of the NMS for every threshold, and of the whole analysis."""

    nms_s: float
    total_s: float

    def to_dict(self) -> dict:
        return {"nms_s": self.nms_s, "total_s": self.total_s}


@dataclass(frozen=True)
class NmsResult(JsonResult):
    """:func:`lveval.analysis.nms.nms_sensitivity`: one row per threshold, in the order given."""

    rows: list[NmsRow]
    settings: NmsSettings
    timing: NmsTiming

    def to_dict(self) -> dict:
        return {"rows": [r.to_dict() for r in self.rows], "settings": self.settings.to_dict(),
                "timing": self.timing.to_dict()}


# ---- toy ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ToyResult(JsonResult):
    """:func:`lveval.analysis.toy.run`: expected AP of each ranking ``{"capped", "uncapped"}`` (paper
    convention), the per-scenario ``details``, the ``cap``, the detections the gaming policy keeps
    and the caption check (equal-weight uncapped AP, 51/101)."""

    ranking1: dict[str, float]
    ranking2: dict[str, float]
    details: dict[str, Any]
    cap: int
    gaming_policy_keeps: list[str]
    caption_check: dict[str, float]

    def to_dict(self) -> dict:
        return {"ranking1": self.ranking1, "ranking2": self.ranking2, "details": self.details, "cap": self.cap,
                "gaming_policy_keeps": self.gaming_policy_keeps, "caption_check": self.caption_check}


# ---- audit --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AuditCounts(JsonResult):
    """Detections, images and classes; classes with ground truth, below AP-Fixed's budget or without
    detections (all, and those with ground truth); the most detections of one image, the fraction of
    images at that maximum, the median detections per class, and (LVIS) classes with ground truth
    per frequency group."""

    num_detections: int
    num_images: int
    num_classes: int
    classes_with_gt: int
    classes_below_budget: int
    classes_with_gt_below_budget: int
    classes_without_detections: int
    classes_with_gt_without_detections: int
    max_dets_per_image_in_results: int
    images_at_max: float
    median_dets_per_class: float
    classes_with_gt_by_frequency: dict[str, int] | None = None

    def to_dict(self) -> dict:
        d: dict[str, Any] = {"num_detections": self.num_detections, "num_images": self.num_images,
                             "num_classes": self.num_classes, "classes_with_gt": self.classes_with_gt,
                             "classes_below_budget": self.classes_below_budget,
                             "classes_with_gt_below_budget": self.classes_with_gt_below_budget,
                             "classes_without_detections": self.classes_without_detections,
                             "classes_with_gt_without_detections": self.classes_with_gt_without_detections,
                             "max_dets_per_image_in_results": self.max_dets_per_image_in_results,
                             "images_at_max": self.images_at_max, "median_dets_per_class": self.median_dets_per_class}
        if self.classes_with_gt_by_frequency is not None:
            d["classes_with_gt_by_frequency"] = self.classes_with_gt_by_frequency
        return d


@dataclass(frozen=True)
class AuditSettings(JsonResult):
    """The cap and budget (None: no limit), IoU type and rules the audit ran with."""

    max_dets_per_image: int | None
    max_dets_per_class: int | None
    iou_type: str
    dataset: str | None

    def to_dict(self) -> dict:
        return {"max_dets_per_image": self.max_dets_per_image, "max_dets_per_class": self.max_dets_per_class,
                "iou_type": self.iou_type, "dataset": self.dataset}


@dataclass(frozen=True)
class AuditResult(JsonResult):
    """:func:`lveval.analysis.audit.run_audit` (``to_dict()`` is figures.json): the three
    ``protocols`` (summaries keyed ``old``, ``fixed``, ``pooled``), the cap and budget sweeps, the
    re-ranking grid, ``counts``, score statistics and class subsets (None without LVIS
    frequencies), ``findings`` (each a few numbers and one ``text``; plus ``recommendation``),
    timing, and the files :func:`~lveval.analysis.audit.write_audit` wrote (empty before)."""

    lveval_version: str
    inputs: dict
    settings: AuditSettings
    protocols: dict[str, dict]
    dets_per_image: list[CapRow]
    dets_per_class: list[BudgetRow]
    rerank: list[RerankRow]
    counts: AuditCounts
    findings: dict[str, Any]
    timing: dict[str, float | None]
    scores: ScoreStats | None = None
    subsets: SubsetsResult | None = None
    files: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        d: dict[str, Any] = {"lveval_version": self.lveval_version, "inputs": self.inputs,
                             "settings": self.settings.to_dict(), "protocols": self.protocols,
                             "dets_per_image": [r.to_dict() for r in self.dets_per_image],
                             "dets_per_class": [r.to_dict() for r in self.dets_per_class],
                             "rerank": [r.to_dict() for r in self.rerank], "counts": self.counts.to_dict()}
        if self.scores is not None:
            d["scores"] = self.scores.to_dict()
        if self.subsets is not None:
            d["subsets"] = self.subsets.to_dict()
        d["findings"] = self.findings
        d["timing"] = self.timing
        if self.files:
            d["files"] = list(self.files)
        return d


__all__ = ["AuditCounts", "AuditResult", "AuditSettings", "BudgetRow", "CapRow", "GroupShare", "Limits",
           "NmsResult", "NmsRow", "NmsSettings", "NmsTiming", "OldFixed", "RerankResult", "RerankRow",
           "RerankSettings", "ScoreGroup", "ScoreHistogram", "ScoreStats", "SeparateTiming", "SubsetRow",
           "SubsetsResult", "SweepResult", "SweepTiming", "ToyResult"]
