"""Per-class (or per-group) calibration of a detector's scores, as in Dave et al. 2021, Sec. 6.3.

A :class:`GroupedCalibrator` fits one binary calibrator (any method of
:mod:`lveval.calibrate.methods`) per group of classes and maps every
detection's score through its class's calibrator::

    cal = GroupedCalibrator("platt", grouping="per-class").fit(train_gt, train_results)
    calibrated = cal.apply(test_results)           # Detections with new scores
    cal2 = GroupedCalibrator.from_dict(cal.to_dict())  # JSON round trip

Groupings: ``overall`` (one calibrator for all classes, as Kueppers et al.
calibrate detectors), ``frequency`` (one per LVIS frequency group r/c/f) and
``per-class`` (one per class, the paper's proposal).  Under ``per-class``, a
class absent from the calibration data (``missing``) and a class present
with fewer than ``min_positives`` true positives (``no_tp``) follow a policy:

* ``zero``: all its scores become 0, up to rank keeping (the paper's scripts' default);
* ``keep``: its scores are left unchanged;
* ``by-frequency``: it uses the calibrator of its frequency group, fit on
  all samples of that group's classes (our default: it still corrects the
  group's typical over- or under-confidence).

A frequency group with no sample at all falls back to the ``overall``
calibrator.  Categories without an LVIS frequency (COCO) form one group,
``unknown``.

Rank keeping (on by default) makes the map strictly increasing inside
every tie of the calibrated scores, see :func:`keep_rank_strict`, so that a
monotone per-class calibration leaves each class's ranking, and therefore
AP-Fixed, exactly unchanged.
"""
from __future__ import annotations

import json
import os
from dataclasses import replace
from typing import Any

import numpy as np

from ..exceptions import InputError
from ..io.gt import GroundTruth
from ..io.results import Detections, load_results
from .labels import Samples, calibration_samples, frequency_labels
from .methods import (
    DEFAULT_RANK_SPREAD,
    DEFAULT_RANK_TOL,
    Calibrator,
    available_calibrators,
    calibrator_from_dict,
    keep_rank,
    make_calibrator,
)
from .options import DEFAULT_IOU, DEFAULT_MIN_POSITIVES, GROUPINGS, POLICIES, UNKNOWN_POLICIES

__all__ = [
    "GROUPINGS",
    "POLICIES",
    "EDGE_WIDTH",
    "GroupedCalibrator",
    "keep_rank_strict",
    "make_monotone",
    "parse_method_spec",
    "method_label",
]


#: Largest distance from 0 (or 1) that :func:`keep_rank_strict` uses to order a tie at exactly 0 (or 1).
EDGE_WIDTH = 1e-9

FORMAT = "lveval-calibration"
FORMAT_VERSION = 1


# ----------------------------------------------------------------------------
# rank keeping
# ----------------------------------------------------------------------------


def keep_rank_strict(original: Any, calibrated: Any, spread: float = DEFAULT_RANK_SPREAD,
                     tol: float = DEFAULT_RANK_TOL, edge: float = EDGE_WIDTH) -> np.ndarray:
    """:func:`~lveval.calibrate.methods.keep_rank`, plus an order for ties at (or next to) 0 and 1.

    ``keep_rank`` cannot spread a tie whose calibrated value is exactly 0 or
    1 (a group mean of 0 inside [0, 1] forces every member to 0), nor one
    squeezed against 1 (a logistic map that saturates gives values within
    1e-14 of 1, where float64 spacing is 1.1e-16).  Such ties are common in
    detection -- a bin with no true positive, the ``zero`` policy, a
    per-class fit on nearly separable data -- and would hand the class's
    order to file order.  So, after ``keep_rank``, the values within
    ``edge`` (1e-9) of 0 and of 1 are checked: if they do not already
    increase strictly with the original score, they are replaced by the
    dense rank of the original score spread over ``[0, w]`` (or
    ``[1 - w, 1]``), ``w = min(edge, spread * gap / 2)`` with ``gap`` the
    distance from the edge to the nearest value outside the zone.  The
    lowest (highest) original keeps exactly 0 (1), the zone stays below
    (above) every other value, and no value moves by more than ``edge``.
    Equal original scores stay equal, so ties of the input are still broken
    by file order, exactly as before calibration.
    """
    s = np.asarray(original, dtype=np.float64)
    out = keep_rank(s, calibrated, spread=spread, tol=tol)
    if spread == 0.0 or out.size < 2:
        return out
    base = out.copy()
    for low in (True, False):
        zone = base <= edge if low else base >= 1.0 - edge
        at = np.flatnonzero(zone)
        if at.size < 2:
            continue
        uniq, rank = np.unique(s[at], return_inverse=True)
        if uniq.size < 2 or _strictly_ordered(s[at], base[at]):
            continue
        rest = base[~zone]
        gap = (rest.min() if low else 1.0 - rest.max()) if rest.size else 1.0
        width = min(float(edge), spread * float(gap) / 2.0)
        frac = rank.astype(np.float64) / (uniq.size - 1)
        out[at] = width * frac if low else 1.0 - width * (1.0 - frac)
    return out


def _strictly_ordered(s: np.ndarray, p: np.ndarray) -> bool:
    """True when p increases strictly with s (equal s may share a value)."""
    order = np.lexsort((p, s))
    ds, dp = np.diff(s[order]), np.diff(p[order])
    return bool(np.all(np.where(ds > 0, dp > 0, dp == 0)))


# ----------------------------------------------------------------------------
# monotone maps
# ----------------------------------------------------------------------------


def _nondecreasing(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Least-squares non-decreasing fit of step values (weighted pool-adjacent-violators).

    Steps without training samples get a negligible weight, so they follow their neighbours.
    """
    from sklearn.isotonic import IsotonicRegression

    x = np.arange(values.size, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64) + 1e-9
    return IsotonicRegression(increasing=True).fit(x, values, sample_weight=w).predict(x)


def make_monotone(cal: Calibrator, scores: np.ndarray, labels: np.ndarray) -> Calibrator:
    """Constrain a fitted calibrator to a non-decreasing map (in place), the constrained fit of its method.

    * Platt scaling with a negative slope: the slope is set to 0 and the
      intercept to ``logit(mean label)``, the maximum-likelihood fit under
      ``slope >= 0`` (the likelihood is concave, so the constrained optimum
      lies on the boundary).
    * Histogram binning and BBQ: the step values become the least-squares
      non-decreasing fit of the bin frequencies, weighted by the training
      samples in each step (pool-adjacent-violators over bins).
    * Beta calibration (a, b >= 0), isotonic regression and temperature
      scaling (T > 0) are monotone already and are left as they are.
    """
    from scipy.special import logit as _logit

    from .methods import _bin_index  # the bins the methods themselves use

    if cal.name == "platt" and cal.slope_ < 0.0:
        m = float(np.clip(np.mean(labels), 1e-12, 1 - 1e-12))
        cal.slope_, cal.intercept_ = 0.0, float(_logit(m))
    elif cal.name == "histogram":
        cal.bin_values_ = _nondecreasing(cal.bin_values_, cal.bin_counts_)
    elif cal.name == "bbq":
        s = np.clip(np.asarray(scores, dtype=np.float64), 0.0, 1.0)
        counts = np.bincount(_bin_index(cal.edges_, s), minlength=cal.values_.size)
        cal.values_ = np.clip(_nondecreasing(cal.values_, counts), 0.0, 1.0)
    return cal


# ----------------------------------------------------------------------------
# method specs
# ----------------------------------------------------------------------------


def parse_method_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """``"bbq:scoring=BIC,binning=uniform"`` -> ``("bbq", {"scoring": "BIC", "binning": "uniform"})``.

    Values are read as JSON when they parse (numbers, true/false, null), else as strings.
    """
    name, _, rest = str(spec).strip().partition(":")
    name = name.strip().lower()
    if name not in available_calibrators():
        raise InputError(f"unknown calibration method {name!r}; available: {', '.join(available_calibrators())}",
                         field="method")
    params: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in rest.split(","))):
        key, eq, value = part.partition("=")
        if not eq or not key.strip():
            raise InputError(f"method parameter {part!r} is not KEY=VALUE", field="method")
        try:
            params[key.strip()] = json.loads(value)
        except ValueError:
            params[key.strip()] = value.strip()
    try:
        make_calibrator(name, **params)
    except (TypeError, ValueError) as exc:
        raise InputError(f"bad parameters for method {name!r}: {exc}", field="method") from None
    return name, params


_LABELS = {"histogram": "Histogram binning", "bbq": "BBQ", "beta": "Beta calibration",
           "isotonic": "Isotonic regression", "platt": "Platt scaling", "temperature": "Temperature scaling"}


def method_label(name: str, params: dict[str, Any] | None = None) -> str:
    """Human-readable name of a method spec, e.g. ``BBQ (AIC)`` as in the paper's Table 8."""
    cal = make_calibrator(name, **(params or {}))
    label = _LABELS.get(cal.name, cal.name)
    if cal.name == "bbq":
        label += f" ({cal.scoring})"
    extra = {k: v for k, v in (params or {}).items() if not (cal.name == "bbq" and k == "scoring")}
    if extra:
        label += " [" + ", ".join(f"{k}={v}" for k, v in extra.items()) + "]"
    return label


# ----------------------------------------------------------------------------
# grouped calibrator
# ----------------------------------------------------------------------------


def _check_choice(value: str, choices: tuple, what: str) -> str:
    if value not in choices:
        raise InputError(f"{what} must be one of {', '.join(choices)}; got {value!r}", field=what)
    return value


class GroupedCalibrator:
    """Calibrators per class, frequency group or overall, fit on labelled detections.

    Args:
        method: a method name or spec (``"platt"``, ``"bbq:scoring=BIC"``), see :func:`parse_method_spec`.
        method_params: extra constructor parameters of the method.
        grouping: ``overall``, ``frequency`` or ``per-class``.
        missing / no_tp: policy for a class absent from the calibration data /
            present with fewer than ``min_positives`` true positives (``per-class`` only).
        iou, iou_type, max_dets_per_class: how :meth:`fit` labels detections
            (see :mod:`lveval.calibrate.labels`).
        min_positives: under ``per-class``, a class with fewer true positives
            than this in the calibration data is handled by the ``no_tp``
            policy.  1 reproduces the paper's scripts (only classes without
            any); the default 3 keeps one or two lucky true positives from
            deciding a class's whole map (see docs/calibration.md).
        monotone: constrain every fitted map to be non-decreasing
            (:func:`make_monotone`), so that per-class calibration cannot
            change a class's ranking or AP-Fixed; off gives the methods
            exactly as published (histogram binning and BBQ can then invert
            the order between bins, Platt scaling can fit a decreasing map).
        keep_rank, rank_spread: rank keeping (:func:`keep_rank_strict`).
    """

    def __init__(self, method: str = "platt", method_params: dict[str, Any] | None = None, *,
                 grouping: str = "per-class", missing: str = "by-frequency", no_tp: str = "by-frequency",
                 min_positives: int = DEFAULT_MIN_POSITIVES, monotone: bool = True, iou: float = DEFAULT_IOU,
                 iou_type: str = "bbox", max_dets_per_class: int = 10_000, keep_rank: bool = True,
                 rank_spread: float = DEFAULT_RANK_SPREAD):
        name, params = parse_method_spec(method)
        params.update(method_params or {})
        make_calibrator(name, **params)  # validates
        self.method, self.method_params = name, params
        self.grouping = _check_choice(grouping, GROUPINGS, "grouping")
        self.missing = _check_choice(missing, POLICIES, "missing")
        self.no_tp = _check_choice(no_tp, POLICIES, "no_tp")
        if int(min_positives) != min_positives or min_positives < 1:
            raise InputError("min_positives must be an integer >= 1", field="min_positives")
        self.min_positives, self.monotone = int(min_positives), bool(monotone)
        self.iou, self.iou_type, self.max_dets_per_class = float(iou), iou_type, int(max_dets_per_class)
        self.keep_rank, self.rank_spread = bool(keep_rank), float(rank_spread)
        if not (0.0 <= self.rank_spread < 1.0):
            raise InputError("rank_spread must be in [0, 1)", field="rank_spread")
        self._fitted = False

    # -- fitting --------------------------------------------------------------
    def new_calibrator(self) -> Calibrator:
        return make_calibrator(self.method, **self.method_params)

    def fit(self, gt: Any, results: Any, *, dataset: str | None = None, on_unknown_image: str = "error",
            on_unknown_category: str = "error") -> GroupedCalibrator:
        """Label ``results`` against ``gt`` at the calibration IoU and fit (see :meth:`fit_samples`)."""
        g, _, samples = calibration_samples(gt, results, iou=self.iou, iou_type=self.iou_type,
                                            max_dets_per_class=self.max_dets_per_class, dataset=dataset,
                                            on_unknown_image=on_unknown_image,
                                            on_unknown_category=on_unknown_category)
        return self.fit_samples(g, samples)

    def fit_samples(self, gt: GroundTruth, samples: Samples) -> GroupedCalibrator:
        """Fit from labelled samples; ``gt`` gives the category list and frequencies."""
        K = gt.num_categories
        if len(samples) == 0:
            raise InputError("no detection could be labelled for calibration (none is evaluated under the "
                             "data set's rules, or all are ignored)", path=gt.path)
        freq = frequency_labels(gt)
        n = np.bincount(samples.cat_idx, minlength=K)
        npos = np.bincount(samples.cat_idx, weights=samples.label.astype(np.float64), minlength=K)
        s, y = samples.score, samples.label.astype(np.int64)
        calibrators: dict[str, Calibrator] = {}

        def fit_key(key: str, mask: np.ndarray | slice) -> str:
            if key not in calibrators:
                cal = self.new_calibrator().fit(s[mask], y[mask])
                calibrators[key] = make_monotone(cal, s[mask], y[mask]) if self.monotone else cal
            return key

        sample_freq = freq[samples.cat_idx]

        def freq_key(f: str) -> str:
            mask = sample_freq == f
            if mask.any():
                return fit_key(f"frequency:{f}", mask)
            return fit_key("overall", slice(None))

        use = [""] * K
        if self.grouping == "overall":
            use = [fit_key("overall", slice(None))] * K
        elif self.grouping == "frequency":
            use = [freq_key(freq[k]) for k in range(K)]
        else:
            order = np.argsort(samples.cat_idx, kind="stable")
            bounds = np.searchsorted(samples.cat_idx[order], np.arange(K + 1))
            for k in range(K):
                policy = self.missing if n[k] == 0 else self.no_tp if npos[k] < self.min_positives else None
                if policy is None:
                    use[k] = fit_key(f"class:{int(gt.cat_ids[k])}", order[bounds[k]:bounds[k + 1]])
                elif policy == "by-frequency":
                    use[k] = freq_key(freq[k])
                else:
                    use[k] = policy
        self.cat_ids_ = np.asarray(gt.cat_ids, dtype=np.int64).copy()
        self.cat_freq_ = freq.copy()
        self.use_ = list(use)
        self.num_samples_ = n.astype(np.int64)
        self.num_positives_ = np.rint(npos).astype(np.int64)
        self.calibrators_ = calibrators
        self._fitted = True
        return self

    @property
    def is_fitted(self) -> bool:
        return self._fitted

    def _check_fitted(self) -> None:
        if not self._fitted:
            raise RuntimeError("GroupedCalibrator is not fitted; call fit() first")

    # -- applying -------------------------------------------------------------
    def predict(self, cat_ids: Any, scores: Any, *, on_unknown_category: str = "error") -> np.ndarray:
        """Calibrated score of every detection, given its category id and raw score.

        ``on_unknown_category``: what to do with a category the model does not
        know (``error``, or treat it like the ``keep`` / ``zero`` policy).
        """
        self._check_fitted()
        _check_choice(on_unknown_category, UNKNOWN_POLICIES, "on_unknown_category")
        c = np.asarray(cat_ids, dtype=np.int64).reshape(-1)
        s = np.asarray(scores, dtype=np.float64).reshape(-1)
        if c.shape != s.shape:
            raise ValueError("cat_ids and scores must have the same length")
        out = s.copy()
        if s.size == 0:
            return out
        pos = np.minimum(np.searchsorted(self.cat_ids_, c), len(self.cat_ids_) - 1)
        known = self.cat_ids_[pos] == c
        keys = sorted(set(self.use_) | ({on_unknown_category} if not known.all() else set()))
        key_index = {k: i for i, k in enumerate(keys)}
        cat_key = np.array([key_index[u] for u in self.use_], dtype=np.int64)
        if not known.all():
            if on_unknown_category == "error":
                i = int(np.flatnonzero(~known)[0])
                raise InputError(f"category_id {int(c[i])} is not in the calibration model (fit on a ground "
                                 "truth without it); use on_unknown_category keep or zero", record=i,
                                 field="category_id")
        row_key = np.where(known, cat_key[pos], key_index.get(on_unknown_category, -1))
        order = np.argsort(row_key, kind="stable")
        bounds = np.searchsorted(row_key[order], np.arange(len(keys) + 1))
        for i, key in enumerate(keys):
            rows = order[bounds[i]:bounds[i + 1]]
            if rows.size == 0 or key == "keep":
                continue
            sk = s[rows]
            p = np.zeros(rows.size) if key == "zero" else self.calibrators_[key].predict(sk, keep_rank=False)
            if self.keep_rank:
                p = keep_rank_strict(sk, p, spread=self.rank_spread)
            out[rows] = p
        return out

    def apply(self, results: Any, *, on_unknown_category: str = "error") -> Detections:
        """Results (path, list, columns or Detections) with every score replaced by its calibrated score."""
        d = load_results(results)
        bad = np.flatnonzero(~np.isfinite(d.score) | (d.score < 0))
        if bad.size:
            i = int(bad[0])
            rec = int(d.record[i]) if d.record is not None else i
            raise InputError(f"score must be a finite number >= 0, got {d.score[i]!r}", path=d.path,
                             record=rec, field="score")
        try:
            new = self.predict(d.cat_id, d.score, on_unknown_category=on_unknown_category)
        except InputError as exc:
            if exc.record is None:
                raise
            rec = int(d.record[exc.record]) if d.record is not None else exc.record
            raise InputError(exc.reason, path=d.path, record=rec, field=exc.field) from None
        return replace(d, score=new)

    # -- description and (de)serialisation --------------------------------------
    def summary(self) -> dict[str, Any]:
        """Counts of samples, positives and how categories are calibrated."""
        self._check_fitted()
        uses: dict[str, int] = {}
        for u in self.use_:
            kind = u.split(":")[0] if u.startswith("class:") else u
            uses[kind] = uses.get(kind, 0) + 1
        return {"num_samples": int(self.num_samples_.sum()), "num_positives": int(self.num_positives_.sum()),
                "num_categories": len(self.cat_ids_), "num_calibrators": len(self.calibrators_),
                "categories_by_calibrator": dict(sorted(uses.items()))}

    def settings(self) -> dict[str, Any]:
        return {"method": self.method, "method_params": dict(self.method_params), "grouping": self.grouping,
                "missing": self.missing, "no_tp": self.no_tp, "min_positives": self.min_positives,
                "monotone": self.monotone, "iou": self.iou, "iou_type": self.iou_type,
                "max_dets_per_class": self.max_dets_per_class, "keep_rank": self.keep_rank,
                "rank_spread": self.rank_spread}

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable model; :meth:`from_dict` rebuilds an identical calibrator."""
        self._check_fitted()
        cats = [{"id": int(c), "frequency": str(f), "use": u, "num_samples": int(n), "num_positives": int(p)}
                for c, f, u, n, p in zip(self.cat_ids_, self.cat_freq_, self.use_, self.num_samples_,
                                         self.num_positives_)]
        return {"format": FORMAT, "format_version": FORMAT_VERSION, **self.settings(),
                "edge_width": EDGE_WIDTH, "summary": self.summary(),
                "calibrators": {k: cal.to_dict() for k, cal in sorted(self.calibrators_.items())},
                "categories": cats}

    @classmethod
    def from_dict(cls, d: dict[str, Any], path: str | None = None) -> GroupedCalibrator:
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise InputError(f"not an lveval calibration model (expected \"format\": \"{FORMAT}\")", path=path)
        if d.get("format_version") != FORMAT_VERSION:
            raise InputError(f"unsupported calibration model format_version {d.get('format_version')!r}",
                             path=path, field="format_version")
        try:
            obj = cls(d["method"], d.get("method_params") or {}, grouping=d["grouping"], missing=d["missing"],
                      no_tp=d["no_tp"], min_positives=d["min_positives"],
                      monotone=d["monotone"], iou=d["iou"], iou_type=d["iou_type"],
                      max_dets_per_class=d["max_dets_per_class"], keep_rank=d["keep_rank"],
                      rank_spread=d["rank_spread"])
            obj.calibrators_ = {k: calibrator_from_dict(v) for k, v in d["calibrators"].items()}
            cats = d["categories"]
            obj.cat_ids_ = np.array([int(c["id"]) for c in cats], dtype=np.int64)
            obj.cat_freq_ = np.array([str(c["frequency"]) for c in cats])
            obj.use_ = [str(c["use"]) for c in cats]
            obj.num_samples_ = np.array([int(c["num_samples"]) for c in cats], dtype=np.int64)
            obj.num_positives_ = np.array([int(c["num_positives"]) for c in cats], dtype=np.int64)
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"malformed calibration model ({type(exc).__name__}: {exc})", path=path) from None
        if np.any(np.diff(obj.cat_ids_) <= 0):
            raise InputError("calibration model categories must be sorted by id without repeats", path=path,
                             field="categories")
        for u in obj.use_:
            if u not in ("zero", "keep") and u not in obj.calibrators_:
                raise InputError(f"category uses calibrator {u!r}, which the model does not contain", path=path,
                                 field="categories")
        obj._fitted = True
        return obj

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the model as JSON (sorted keys, atomically)."""
        from ..output import write_json

        write_json(os.fspath(path), self.to_dict())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> GroupedCalibrator:
        from ..io.jsonfile import loads_any, read_bytes

        p = os.fspath(path)
        return cls.from_dict(loads_any(read_bytes(p), p), path=p)

    def __repr__(self) -> str:
        state = "fitted" if self._fitted else "not fitted"
        return (f"GroupedCalibrator({self.method!r}, grouping={self.grouping!r}, missing={self.missing!r}, "
                f"no_tp={self.no_tp!r}, {state})")
