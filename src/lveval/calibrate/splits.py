"""Where calibration is fit and where it is applied: train/test, k-fold over images, oracle.

Dave et al. 2021 (Sec. 6.3, Table 8) fit on the training set and apply to
validation, and report fitting on validation itself as an upper bound (the
oracle).  When no separate calibration set exists, k-fold cross-fitting over
the images of one set gives every detection a score from a calibrator that
never saw its image: images are shuffled with a seeded generator, cut into k
folds, and fold i is calibrated by a model fit on the other k - 1 folds.

Every function here returns calibrated scores for *every* detection row of
the set it applies to; labels come from :class:`~lveval.calibrate.labels.Labeller`.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..exceptions import InputError
from ..io.gt import GroundTruth
from ..io.results import Detections, load_results
from .grouped import GroupedCalibrator
from .labels import DEFAULT_IOU, Labeller, load_and_bind

__all__ = ["CalibrationSet", "image_folds", "fit_apply", "cross_fit", "oracle", "subset_dataset",
           "subset_results"]

Factory = Callable[[], GroupedCalibrator]


@dataclass
class CalibrationSet:
    """A ground truth, its bound detections and their labeller (built once, reused by every method)."""

    gt: GroundTruth
    dets: Detections
    labeller: Labeller

    @classmethod
    def load(cls, gt: Any, results: Any, *, iou: float = DEFAULT_IOU, iou_type: str = "bbox",
             max_dets_per_class: int = 10_000, dataset: str | None = None, on_unknown_image: str = "error",
             on_unknown_category: str = "error") -> CalibrationSet:
        g, d = load_and_bind(gt, results, iou_type=iou_type, dataset=dataset, on_unknown_image=on_unknown_image,
                             on_unknown_category=on_unknown_category)
        return cls(g, d, Labeller(g, d, iou=iou, iou_type=iou_type, max_dets_per_class=max_dets_per_class))

    def with_scores(self, scores: np.ndarray) -> Detections:
        """The detections with new scores (same rows, same order)."""
        return replace(self.dets, score=np.asarray(scores, dtype=np.float64))


def image_folds(img_ids: Iterable[int], k: int, seed: int = 0) -> list[np.ndarray]:
    """Split image ids into ``k`` folds: a permutation by ``numpy.random.default_rng(seed)``, cut by
    ``numpy.array_split`` (sizes differ by at most one).  Deterministic for a given seed and id set."""
    ids = np.sort(np.asarray(list(img_ids), dtype=np.int64))
    k = int(k)
    if k < 2:
        raise InputError(f"k-fold needs k >= 2, got {k}", field="kfold")
    if ids.size < k:
        raise InputError(f"k-fold needs at least k images: {ids.size} images for k = {k}", field="kfold")
    perm = np.random.default_rng(seed).permutation(ids)
    return [np.sort(f) for f in np.array_split(perm, k)]


def fit_apply(factory: Factory, train: CalibrationSet, test: CalibrationSet) -> tuple[np.ndarray, GroupedCalibrator]:
    """Fit on ``train``, return the calibrated scores of every ``test`` detection and the model."""
    cal = factory().fit_samples(train.gt, train.labeller.samples())
    return cal.predict(test.dets.cat_id, test.dets.score), cal


def oracle(factory: Factory, data: CalibrationSet) -> tuple[np.ndarray, GroupedCalibrator]:
    """Fit on the test set itself (the paper's upper bound) and apply to it."""
    return fit_apply(factory, data, data)


def cross_fit(factory: Factory, data: CalibrationSet, k: int, seed: int = 0) -> np.ndarray:
    """k-fold cross-fitting over images: each fold's detections are calibrated by a model fit on the others.

    Labels of all training folds come from one matching pass; each training
    fold set is labelled as a data set of its own (its own top-K per class).
    Because the folds use different models, a class's ranking across folds
    can change, so AP-Fixed is not invariant under k-fold calibration.
    """
    g, d = data.gt, data.dets
    folds = image_folds(g.img_ids, k, seed)
    fold_of_image = np.empty(g.num_images, dtype=np.int64)
    for i, f in enumerate(folds):
        fold_of_image[np.searchsorted(g.img_ids, f)] = i
    fold_of_row = fold_of_image[d.img_idx]
    key = ("folds", int(k), seed)   # the same folds for every method of a bench: label them once
    if key not in data.labeller.cache:
        data.labeller.cache[key] = data.labeller.samples_for([fold_of_row != i for i in range(len(folds))])
    samples = data.labeller.cache[key]
    out = np.asarray(d.score, dtype=np.float64).copy()
    for i, s in enumerate(samples):
        rows = np.flatnonzero(fold_of_row == i)
        cal = factory().fit_samples(g, s)
        out[rows] = cal.predict(d.cat_id[rows], d.score[rows])
    return out


def subset_dataset(dataset: dict, image_ids: Iterable[int]) -> dict:
    """A COCO/LVIS ground-truth dict restricted to ``image_ids`` (images and their annotations)."""
    keep = {int(i) for i in image_ids}
    out = dict(dataset)
    out["images"] = [im for im in dataset["images"] if int(im["id"]) in keep]
    out["annotations"] = [a for a in dataset.get("annotations", []) if int(a["image_id"]) in keep]
    return out


def subset_results(results: Any, image_ids: Iterable[int]) -> Detections:
    """Detections (any accepted form) restricted to ``image_ids``, in their original order."""
    d = load_results(results)
    return d.take(np.isin(d.img_id, np.fromiter((int(i) for i in image_ids), np.int64)))
