"""Calibration labels: which detections are true positives at the calibration IoU.

Dave et al. 2021 (Sec. 6.3) call a detection correct when it matches a
ground-truth object of its class; their scripts use IoU 0.75.  The labels
here come from the engine's own matching under the dataset's rules (LVIS
federated rule or COCO crowd rules), on the detections AP-Fixed evaluates
(the top K per class over the set):

* a detection matched at the calibration IoU is a positive (label 1);
* an unmatched, non-ignored one is a negative (label 0);
* ignored detections (LVIS: unmatched in a class not exhaustively annotated
  on that image; COCO: matched to a crowd region) and detections that are
  not evaluated at all (LVIS: class neither verified present nor absent on
  the image; or outside the top K of their class) take no part.

One matching pass serves any number of image subsets (k-fold training
folds): greedy matching is done per (image, class), so a detection's flag
does not depend on which other images are in the set, and only the per-class
top-K selection has to be recomputed for each subset.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..exceptions import InputError
from ..io.gt import GroundTruth
from ..io.results import Detections
from ..metrics import Evaluator, make_params
from ..params import Params
from ..select import subset_order, top_k_per_class
from .options import DEFAULT_IOU

__all__ = ["DEFAULT_IOU", "Samples", "Labeller", "calibration_samples", "load_and_bind", "frequency_labels"]

#: Frequency label used for categories without an LVIS frequency (e.g. COCO).
UNKNOWN_FREQUENCY = "unknown"


def frequency_labels(gt: GroundTruth) -> np.ndarray:
    """Frequency group of every category ('r'/'c'/'f', or 'unknown'), in category-index order."""
    f = np.asarray(gt.cat_freq, dtype=object)
    return np.where(f == "", UNKNOWN_FREQUENCY, f).astype(str)


@dataclass
class Samples:
    """Labelled detections for fitting or scoring calibration (one entry per detection taking part)."""

    rows: np.ndarray      # row index into the bound detections
    cat_idx: np.ndarray   # category index into gt.cat_ids
    img_idx: np.ndarray   # image index into gt.img_ids
    score: np.ndarray     # the detection's score
    label: np.ndarray     # bool: matched at the calibration IoU

    def __len__(self) -> int:
        return len(self.rows)

    def take(self, mask: np.ndarray) -> Samples:
        return Samples(self.rows[mask], self.cat_idx[mask], self.img_idx[mask], self.score[mask],
                       self.label[mask])


def load_and_bind(gt: Any, results: Any, *, iou_type: str = "bbox", dataset: str | None = None,
                  on_unknown_image: str = "error", on_unknown_category: str = "error"
                  ) -> tuple[GroundTruth, Detections]:
    """Load ground truth and results and bind them (validation, indices), as ``evaluate`` does."""
    ev = Evaluator.load(gt, results, make_params(iou_type=iou_type, dataset=dataset,
                                                 on_unknown_image=on_unknown_image,
                                                 on_unknown_category=on_unknown_category))
    return ev.gt, ev.dets


class Labeller:
    """Labels detections of one (ground truth, bound detections) pair at one IoU threshold."""

    def __init__(self, gt: GroundTruth, dets: Detections, *, iou: float = DEFAULT_IOU,
                 iou_type: str = "bbox", max_dets_per_class: int = 10_000):
        iou = float(iou)
        if not (0.0 < iou <= 1.0):
            raise InputError(f"calibration IoU must be in (0, 1], got {iou}", field="iou")
        if dets.cat_idx is None:
            raise ValueError("detections must be bound to the ground truth (lveval.io.results.bind)")
        self.gt, self.dets, self.iou = gt, dets, iou
        self.max_dets_per_class = int(max_dets_per_class)
        self.params = Params(iou_type=iou_type, dataset=gt.kind, max_dets_per_class=self.max_dets_per_class,
                             iou_thresholds=(iou,))
        self.evaluator = Evaluator(gt, dets, self.params)
        self.cache: dict = {}   # samples already labelled (all rows; fold sets), keyed by the caller

    def _selection(self, subset: np.ndarray | None) -> np.ndarray:
        d, order = self.dets, self.evaluator.order
        if subset is None:
            return top_k_per_class(d.cat_idx, d.score, self.max_dets_per_class, order)
        sel = np.zeros(len(d), bool)
        idx = np.flatnonzero(subset)
        sel[idx] = top_k_per_class(d.cat_idx[idx], d.score[idx], self.max_dets_per_class,
                                   subset_order(order, subset))
        return sel

    def samples_for(self, subsets: Sequence[np.ndarray | None]) -> list[Samples]:
        """Samples of each subset of rows (bool masks; None = all rows), from one matching pass.

        Each subset is treated as a data set of its own: the top-K-per-class
        selection is taken within it.
        """
        sels = [self._selection(None if s is None else np.asarray(s, bool)) for s in subsets]
        union = np.zeros(len(self.dets), bool)
        for s in sels:
            union |= s
        m = self.evaluator.matching_for(union)
        matched, ignored = m.flags(0)
        matched, ignored = matched[0], ignored[0]
        out = []
        for s in sels:
            keep = s[m.det] & ~ignored
            out.append(Samples(rows=m.det[keep], cat_idx=m.cat[keep], img_idx=m.img[keep],
                               score=self.dets.score[m.det[keep]].astype(np.float64), label=matched[keep]))
        return out

    def samples(self, subset: np.ndarray | None = None) -> Samples:
        """Samples of all rows (labelled once per Labeller), or of the rows in ``subset``."""
        if subset is not None:
            return self.samples_for([subset])[0]
        if "all" not in self.cache:
            self.cache["all"] = self.samples_for([None])[0]
        return self.cache["all"]


def calibration_samples(gt: Any, results: Any, *, iou: float = DEFAULT_IOU, iou_type: str = "bbox",
                        max_dets_per_class: int = 10_000, dataset: str | None = None,
                        on_unknown_image: str = "error", on_unknown_category: str = "error"
                        ) -> tuple[GroundTruth, Detections, Samples]:
    """Load, bind and label in one call: returns (ground truth, bound detections, samples)."""
    g, d = load_and_bind(gt, results, iou_type=iou_type, dataset=dataset, on_unknown_image=on_unknown_image,
                         on_unknown_category=on_unknown_category)
    lab = Labeller(g, d, iou=iou, iou_type=iou_type, max_dets_per_class=max_dets_per_class)
    return g, d, lab.samples()
