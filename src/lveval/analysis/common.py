"""One loaded evaluation shared by the analyses: inputs bound once, one matching
pass over the union of every selection an analysis needs, cached summaries.

A selection is a boolean mask over the bound detections that keeps, inside each
(image, class) group, a prefix in descending score order (per-image caps,
per-class budgets, the re-ranking policy and class subsets all do). Greedy
matching of a prefix is the prefix of the greedy matching, so one
``Evaluator.matching_for(union)`` serves all of them.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from ..exceptions import InputError, Notices
from ..io.gt import FREQUENCIES, GroundTruth, load_gt
from ..io.results import Detections
from ..match import Matching
from ..metrics import Evaluator, class_ap, make_params, summarize, summarize_pooled
from ..params import Params
from ..select import cap_per_image, class_subset_mask, subset_order, top_k_per_class

NO_CAP = -1   # a cap or budget < 0 means "no limit", as in lveval.select


def parse_limits(text: str, what: str) -> list:
    """'100,300,inf' -> [100, 300, -1]; 'inf', 'none', 'all' and -1 mean no limit."""
    out = []
    for tok in str(text).split(","):
        tok = tok.strip().lower().replace("_", "")
        if not tok:
            continue
        if tok in ("inf", "none", "all", "-1", "∞"):
            out.append(NO_CAP)
            continue
        try:
            v = int(float(tok))
        except ValueError:
            raise InputError(f"expected a comma-separated list of positive integers or 'inf', got {tok!r}",
                             field=what) from None
        if v <= 0:
            raise InputError(f"limits must be positive (or 'inf'), got {v}", field=what)
        out.append(v)
    if not out:
        raise InputError("expected at least one value", field=what)
    return out


def limit_label(n: int | None) -> str:
    """Human label of a cap or budget: 300 -> '300', -1 or None -> '∞'."""
    return "∞" if n is None or n < 0 else f"{n:,}"


def limit_json(n: int):
    """JSON value of a cap or budget: the number, or null for no limit."""
    return None if n is None or n < 0 else int(n)


def _limit_key(n: int) -> float:
    return float("inf") if n is None or n < 0 else float(n)


def largest(limits) -> int:
    """The loosest of several caps/budgets (-1 if any is unlimited)."""
    return max(limits, key=_limit_key)


@dataclass
class Session:
    """Ground truth and bound detections loaded once, plus one matching pass.

    Build with :meth:`load`; call :meth:`match` once with the union of every
    selection you will summarise, then :meth:`old`, :meth:`fixed`,
    :meth:`pooled` for each selection (results are cached by selection).
    """

    gt: GroundTruth
    dets: Detections
    params: Params
    ev: Evaluator
    notices: Notices = field(default_factory=Notices)
    inputs: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)
    matching: Matching | None = None
    union: np.ndarray | None = None
    demo: tuple | None = None   # (gt, results) when built from the bundled demo inputs
    _cache: dict = field(default_factory=dict, repr=False)

    @classmethod
    def load(cls, gt, results, params: Params | None = None, **options) -> Session:
        """Load and validate ``gt`` and ``results`` (anything ``lveval.evaluate`` accepts); ``options``
        are :class:`~lveval.params.Params` fields overriding ``params``."""
        t0 = time.perf_counter()
        ev = Evaluator.load(gt, results, make_params(params, **options))
        s = cls(gt=ev.gt, dets=ev.dets, params=ev.params, ev=ev, notices=ev.notices, inputs=ev.inputs)
        s.timings["load"] = time.perf_counter() - t0
        return s

    @classmethod
    def from_parts(cls, gt: GroundTruth, dets: Detections, params: Params) -> Session:
        """A session over already bound detections (e.g. a subset after NMS)."""
        return cls(gt=gt, dets=dets, params=params, ev=Evaluator(gt, dets, params))

    # ---- selections -------------------------------------------------------------------------
    @property
    def has_frequencies(self) -> bool:
        return self.gt.kind == "lvis" and bool(np.isin(self.gt.cat_freq, FREQUENCIES).any())

    def cap(self, n: int | None = None, rows: np.ndarray | None = None) -> np.ndarray:
        """The top ``n`` detections of each image (default: AP-Old's cap; ``n < 0``: all).

        ``rows`` (bool mask) restricts the candidates first, e.g. to a class subset
        or to the re-ranked detections. Under COCO rules this is a true per-image
        cap (a detector's output limit, as in the paper's Table 2), not
        pycocotools' per-image-and-class ``maxDets``.
        """
        n = self.params.max_dets_per_image if n is None else n
        return self._within(rows, lambda img, cat, score, order: cap_per_image(img, score, n, order))

    def budget(self, k: int | None = None, rows: np.ndarray | None = None) -> np.ndarray:
        """The top ``k`` detections of each class over the whole set (default: AP-Fixed's budget)."""
        k = self.params.max_dets_per_class if k is None else k
        return self._within(rows, lambda img, cat, score, order: top_k_per_class(cat, score, k, order))

    def _within(self, rows: np.ndarray | None, select) -> np.ndarray:
        """Apply a selection to all rows or to ``rows`` only, reusing the evaluator's score order."""
        d, order = self.dets, self.ev.order
        if rows is None:
            return select(d.img_idx, d.cat_idx, d.score, order)
        idx = np.flatnonzero(rows)
        out = np.zeros(len(d), bool)
        out[idx[select(d.img_idx[idx], d.cat_idx[idx], d.score[idx], subset_order(order, rows))]] = True
        return out

    def classes(self, cats: np.ndarray) -> np.ndarray:
        """Rows whose class index is in ``cats``."""
        return class_subset_mask(self.dets.cat_idx, np.asarray(cats, np.int64))

    # ---- one matching pass --------------------------------------------------------------------
    def match(self, union: np.ndarray) -> Matching:
        """Match the union of all selections once; later summaries must stay inside it."""
        t0 = time.perf_counter()
        self.union = np.asarray(union, bool).copy()
        self.matching = self.ev.matching_for(self.union)
        self._cache.clear()
        self.timings["match"] = self.timings.get("match", 0.0) + time.perf_counter() - t0
        return self.matching

    def ensure_matched(self, union: np.ndarray) -> None:
        """Match ``union`` unless the current matching already covers it."""
        if self.union is None or (np.asarray(union, bool) & ~self.union).any():
            self.match(union)

    def _check(self, sel: np.ndarray) -> np.ndarray:
        if self.matching is None:
            raise RuntimeError("call Session.match(union) before summarising")
        sel = np.asarray(sel, bool)
        if (sel & ~self.union).any():
            raise ValueError("selection is not inside the matched union; include it in match()")
        return sel

    def _key(self, kind: str, sel: np.ndarray, extra=()) -> tuple:
        # Only matched rows matter: rows outside the federated mask never count.
        return (kind, np.packbits(sel[self.matching.det]).tobytes(), tuple(extra))

    def _accumulate(self, sel: np.ndarray, coco_ar: bool):
        coco_ar = coco_ar and self.gt.kind == "coco"   # AR1/AR10 exist only under COCO rules
        key = self._key("acc", sel, (coco_ar,))
        if key not in self._cache:
            t0 = time.perf_counter()
            self._cache[key] = self.ev.summarize_selection(self.matching, sel, coco_ar=coco_ar)
            self.timings["accumulate"] = self.timings.get("accumulate", 0.0) + time.perf_counter() - t0
        return self._cache[key]

    def old(self, sel: np.ndarray) -> dict:
        """AP-Old-style summary of a selection (same keys as ``lveval evaluate``'s "old")."""
        return dict(self._accumulate(self._check(sel), coco_ar=True)[0])

    def fixed(self, sel: np.ndarray) -> dict:
        """AP-Fixed-style summary of a selection (same keys as ``lveval evaluate``'s "fixed")."""
        return dict(self._accumulate(self._check(sel), coco_ar=False)[0])

    def precision(self, sel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per-class precision (T, R, K, A) and recall (T, K, A) of a selection."""
        _, p, r = self._accumulate(self._check(sel), coco_ar=False)
        return p, r

    def pooled(self, sel: np.ndarray) -> dict:
        """AP-Pool summary of a selection (same keys as ``lveval evaluate``'s "pooled")."""
        sel = self._check(sel)
        key = self._key("pool", sel)
        if key not in self._cache:
            t0 = time.perf_counter()
            self._cache[key] = summarize_pooled(self.ev.pooled_curves(self.matching, sel), self.params)
            self.timings["accumulate"] = self.timings.get("accumulate", 0.0) + time.perf_counter() - t0
        return dict(self._cache[key])

    def per_class_ap(self, sel: np.ndarray) -> np.ndarray:
        """AP of each class (area 'all', averaged over IoU and recall thresholds); -1 without GT."""
        return class_ap(self.precision(sel)[0])

    def subset_summary(self, sel: np.ndarray, cats: np.ndarray) -> dict:
        """lveval's summary figures averaged over the classes ``cats`` only."""
        cats = np.asarray(cats, np.int64)
        p, r = self.precision(sel)
        freq = self.gt.cat_freq[cats]
        groups = {f: np.flatnonzero(freq == f) for f in FREQUENCIES} if self.gt.has_frequencies else {}
        return summarize(p[:, :, cats, :], r[:, cats, :], self.params, self.gt, groups=groups)

    def num_gt(self) -> np.ndarray:
        """Non-ignored ground-truth instances per class (area 'all')."""
        g = self.gt
        return np.bincount(g.ann_cat[~g.ann_ignore], minlength=g.num_categories)


def demo_inputs(seed: int = 0, iou_type: str = "bbox"):
    """The bundled 100-image LVIS v0.5 subset and the simulated detector's results."""
    from .. import data_path
    from ..simulate import simulate

    gt = load_gt(data_path())
    return gt, simulate(gt, seed=seed, iou_type=iou_type)
