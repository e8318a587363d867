"""Table 8 of Dave et al. 2021: AP-Pool (and its r/c/f pools) before and after per-class calibration.

:func:`bench` calibrates a test set's detections with every requested
method -- fit on a separate calibration set (the paper fits on the training
set) or by k-fold cross-fitting over the test images -- plus the oracle block
(fit on the test set itself), and evaluates each variant with
:func:`lveval.evaluate` (AP-Fixed and AP-Pool) and the calibration error at
the calibration IoU.  The result is a :class:`BenchResult`; its ``to_dict()``
(what ``lveval calibrate bench --json`` writes) is::

    {"uncalibrated": {"pooled": {...}, "fixed": {...}, "ece": 0.05, "ece_detail": {...}},
     "<method>": {...}, ...,
     "oracle": {"<method>": {...}, ...},
     "settings": {...}}

``pooled`` and ``fixed`` are exactly ``lveval evaluate``'s JSON entries;
``ece`` is the overall ECE of the labelled test detections and
``ece_detail`` adds the mean per-class ECE and the ECE of each frequency
group.  :func:`format_table` prints it in Table 8's shape.
"""
from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..exceptions import InputError
from ..io.gt import FREQUENCIES
from ..metrics import evaluate
from ..output import JsonResult
from .ece import ece, ece_by_group, mean_per_class_ece, reliability_diagram
from .grouped import GroupedCalibrator, method_label, parse_method_spec
from .labels import Labeller, Samples, frequency_labels
from .options import DEFAULT_IOU, DEFAULT_MIN_POSITIVES, TABLE8_METHODS
from .splits import CalibrationSet, cross_fit, fit_apply, oracle

__all__ = ["TABLE8_METHODS", "BenchEntry", "BenchResult", "CalibrationError", "bench", "calibration_error",
           "format_table"]


@dataclass(frozen=True)
class CalibrationError(JsonResult):
    """ECE of labelled detections: ``overall`` (all pooled), ``mean_per_class``, per frequency group
    pooled (``by_frequency``) and averaged over its classes (``mean_per_class_by_frequency``), the
    detections and true positives counted and the bins used. None / empty without detections."""

    overall: float | None
    mean_per_class: float | None
    by_frequency: dict[str, float]
    mean_per_class_by_frequency: dict[str, float]
    num_samples: int
    num_positives: int
    n_bins: int

    def to_dict(self) -> dict[str, Any]:
        return {"overall": self.overall, "mean_per_class": self.mean_per_class, "by_frequency": self.by_frequency,
                "mean_per_class_by_frequency": self.mean_per_class_by_frequency, "num_samples": self.num_samples,
                "num_positives": self.num_positives, "n_bins": self.n_bins}


@dataclass(frozen=True)
class BenchEntry(JsonResult):
    """One variant's AP-Pool and AP-Fixed (``lveval evaluate``'s summaries), its overall ECE and the
    ECE detail."""

    pooled: dict
    fixed: dict
    ece: float | None
    ece_detail: CalibrationError

    def to_dict(self) -> dict[str, Any]:
        return {"pooled": self.pooled, "fixed": self.fixed, "ece": self.ece, "ece_detail": self.ece_detail.to_dict()}


@dataclass(frozen=True)
class BenchResult(JsonResult):
    """:func:`bench`: the ``uncalibrated`` results, each method spec's held-out calibration
    (``methods``, in the order given), the ``oracle`` block (None when not run) and the ``settings``
    (options, method labels). Dict-style reading also takes a method spec (``result["platt"]``)."""

    uncalibrated: BenchEntry
    methods: dict[str, BenchEntry]
    oracle: dict[str, BenchEntry] | None
    settings: dict[str, Any]

    def __getitem__(self, key: str) -> Any:
        return self.methods[key] if key in self.methods else super().__getitem__(key)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"uncalibrated": self.uncalibrated.to_dict()}
        d.update((spec, v.to_dict()) for spec, v in self.methods.items())
        if self.oracle is not None:
            d["oracle"] = {spec: v.to_dict() for spec, v in self.oracle.items()}
        d["settings"] = self.settings
        return d


def calibration_error(gt, samples: Samples, n_bins: int = 15) -> CalibrationError:
    """ECE overall, mean per class, and per frequency group (pooled and mean per class)."""
    if len(samples) == 0:
        return CalibrationError(overall=None, mean_per_class=None, by_frequency={}, mean_per_class_by_frequency={},
                                num_samples=0, num_positives=0, n_bins=n_bins)
    s, y, c = samples.score, samples.label.astype(np.int64), samples.cat_idx
    freq = frequency_labels(gt)[c]
    return CalibrationError(
        overall=ece(s, y, n_bins), mean_per_class=mean_per_class_ece(s, y, c, n_bins),
        by_frequency={str(k): v for k, v in ece_by_group(s, y, freq, n_bins=n_bins).items()},
        mean_per_class_by_frequency={str(k): v for k, v in ece_by_group(s, y, freq, class_ids=c, n_bins=n_bins).items()},
        num_samples=int(len(samples)), num_positives=int(samples.label.sum()), n_bins=n_bins)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_") or "method"


def bench(gt: Any, results: Any, *, train_gt: Any = None, train_results: Any = None, kfold: int | None = None,
          seed: int = 0, methods: Sequence[str] = TABLE8_METHODS, with_oracle: bool = True,
          grouping: str = "per-class", missing: str = "by-frequency", no_tp: str = "by-frequency",
          min_positives: int = DEFAULT_MIN_POSITIVES, monotone: bool = True, keep_rank: bool = True, iou: float = DEFAULT_IOU,
          iou_type: str = "bbox", max_dets_per_class: int = 10_000, dataset: str | None = None,
          on_unknown_image: str = "error", on_unknown_category: str = "error", ece_bins: int = 15,
          plots_dir: str | os.PathLike[str] | None = None,
          progress: Callable[[str], None] | None = None) -> BenchResult:
    """Calibrate ``results`` with every method and evaluate; see the module docstring for the output.

    Exactly one of (``train_gt`` and ``train_results``) or ``kfold`` says
    where the held-out calibration is fit.  ``methods`` are method specs
    (``"bbq:scoring=BIC"``); the other options are those of
    :class:`~lveval.calibrate.grouped.GroupedCalibrator`.  ``plots_dir``:
    write a reliability diagram per variant there.
    """
    have_train = train_gt is not None or train_results is not None
    if have_train and (train_gt is None or train_results is None):
        raise InputError("a calibration set needs both train_gt and train_results")
    if have_train == (kfold is not None):
        raise InputError("give either a calibration set (train_gt, train_results) or kfold, not both or neither")
    specs = list(dict.fromkeys(methods))
    if not specs:
        raise InputError("no calibration method given")
    parsed = {spec: parse_method_spec(spec) for spec in specs}
    for reserved in ("uncalibrated", "oracle", "settings"):
        if reserved in parsed:
            raise InputError(f"{reserved!r} is not a method", field="methods")
    say = progress or (lambda msg: None)
    opts = dict(iou=iou, iou_type=iou_type, max_dets_per_class=max_dets_per_class, dataset=dataset,
                on_unknown_image=on_unknown_image, on_unknown_category=on_unknown_category)
    say("loading the test set")
    test = CalibrationSet.load(gt, results, **opts)
    train = None
    if have_train:
        say("loading the calibration set")
        train = CalibrationSet.load(train_gt, train_results, **opts)
        unknown = np.setdiff1d(test.gt.cat_ids, train.gt.cat_ids)
        if unknown.size:
            raise InputError(f"{unknown.size} categories of the test set are not in the calibration set's ground "
                             f"truth (first: {int(unknown[0])}); both must share one category list",
                             path=train.gt.path)

    def factory(spec: str) -> Callable[[], GroupedCalibrator]:
        name, params = parsed[spec]
        return lambda: GroupedCalibrator(name, params, grouping=grouping, missing=missing, no_tp=no_tp,
                                         min_positives=min_positives, monotone=monotone, iou=iou,
                                         iou_type=iou_type, max_dets_per_class=max_dets_per_class,
                                         keep_rank=keep_rank)

    base_samples = test.labeller.samples()
    plots = None if plots_dir is None else os.fspath(plots_dir)
    if plots:
        from ..atomic import output_dir

        output_dir(plots)

    def run(name: str, scores: np.ndarray, title: str) -> BenchEntry:
        dets = test.with_scores(scores)
        r = evaluate(test.gt, dets, iou_type=iou_type, protocols=("fixed", "pooled"),
                     max_dets_per_class=max_dets_per_class, dataset=test.gt.kind)
        s = Labeller(test.gt, dets, iou=iou, iou_type=iou_type, max_dets_per_class=max_dets_per_class).samples()
        detail = calibration_error(test.gt, s, ece_bins)
        if plots and len(s):
            series = {"uncalibrated": base_samples.score, title: s.score}
            same = (np.array_equal(s.rows, base_samples.rows) and np.array_equal(s.label, base_samples.label)
                    and name != "uncalibrated")
            reliability_diagram(series if same else s.score, s.label.astype(np.int64),
                                os.path.join(plots, f"{_slug(name)}.png"), n_bins=ece_bins,
                                title=f"{title} (IoU {iou:g}, {len(s)} detections)", inside=plots)
        return BenchEntry(pooled=r.pooled, fixed=r.fixed, ece=detail.overall, ece_detail=detail)

    say("evaluating the uncalibrated results")
    uncalibrated = run("uncalibrated", test.dets.score, "uncalibrated")
    out: dict[str, BenchEntry] = {}
    fit_on = "train" if have_train else f"{kfold}-fold"
    for spec in specs:
        say(f"{method_label(*parsed[spec])}: fit on {fit_on}")
        if train is not None:
            scores, _ = fit_apply(factory(spec), train, test)   # every test category is known (checked above)
        else:
            scores = cross_fit(factory(spec), test, int(kfold), seed)
        out[spec] = run(spec, scores, method_label(*parsed[spec]))
    oracles: dict[str, BenchEntry] | None = None
    if with_oracle:
        oracles = {}
        for spec in specs:
            say(f"{method_label(*parsed[spec])}: oracle (fit on the test set)")
            scores, _ = oracle(factory(spec), test)
            oracles[spec] = run(f"oracle-{spec}", scores, f"{method_label(*parsed[spec])}, oracle")
    settings = {"fit_on": "train" if have_train else "kfold", "kfold": kfold, "seed": seed,
                "methods": specs, "grouping": grouping, "missing": missing, "no_tp": no_tp,
                "min_positives": min_positives, "monotone": monotone, "keep_rank": keep_rank,
                "iou": iou, "iou_type": iou_type, "max_dets_per_class": max_dets_per_class,
                "ece_bins": ece_bins, "dataset": test.gt.kind,
                "method_labels": {spec: method_label(*parsed[spec]) for spec in specs}}
    return BenchResult(uncalibrated=uncalibrated, methods=out, oracle=oracles, settings=settings)


def _pct(v: Any) -> str:
    return "    -" if v is None or v < 0 else f"{100 * v:5.1f}"


def format_table(result: BenchResult | dict[str, Any]) -> str:
    """Table 8's layout: AP-Pool (gain), its r/c/f pools, AP-Fixed and ECE (all in percent).

    ``result``: a :class:`BenchResult` or its JSON form (e.g. a saved ``--json`` output, read back).
    """
    res = result.to_dict() if isinstance(result, BenchResult) else result
    st = res.get("settings", {})
    labels = st.get("method_labels", {})
    specs = [k for k in res if k not in ("uncalibrated", "oracle", "settings")]
    base = res["uncalibrated"]["pooled"].get("AP", -1)
    lvis = st.get("dataset", "lvis") == "lvis"
    names = ["Uncalibrated"] + [labels.get(s, s) for s in specs] + [labels.get(s, s) for s in res.get("oracle", {})]
    w = max(len(n) for n in names) + 2
    head = f"{'Calibration':<{w}}{'AP-Pool':>16}" + ("".join(f"{'AP-Pool_' + f:>11}" for f in FREQUENCIES)
                                                   if lvis else "") + f"{'AP-Fixed':>10}{'ECE':>7}"

    def row(name: str, v: dict[str, Any], gain: bool = True) -> str:
        p = v["pooled"]
        ap = p.get("AP", -1)
        g = f" ({100 * (ap - base):+.1f})" if gain and ap >= 0 and base >= 0 else ""
        text = f"{name:<{w}}{_pct(ap) + g:>16}"
        if lvis:
            text += "".join(f"{_pct(p.get('AP' + f)):>11}" for f in FREQUENCIES)
        return text + f"{_pct(v['fixed'].get('AP')):>10}{_pct(v.get('ece')):>7}"

    where = ("fit on the calibration set" if st.get("fit_on") == "train"
             else f"{st.get('kfold')}-fold cross-fitting over the test images (seed {st.get('seed')})")
    lines = [f"{st.get('grouping', 'per-class')} calibration, {where}; labels at IoU {st.get('iou', DEFAULT_IOU):g}; "
             "figures in percent", head, row("Uncalibrated", res["uncalibrated"], gain=False)]
    lines += [row(labels.get(s, s), res[s]) for s in specs]
    if res.get("oracle"):
        lines.append("Calibrate on the test set (upper-bound oracle)")
        lines += [row(labels.get(s, s), v) for s, v in res["oracle"].items()]
    return "\n".join(lines)
