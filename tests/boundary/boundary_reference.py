"""Boundary IoU written directly from its definition, with OpenCV, and evaluators built on it.

Definition (Cheng et al., "Boundary IoU", CVPR 2021; the LVIS 2021 challenge):
for a mask of an h x w image, d = int(round(ratio * sqrt(h*h + w*w))), at least 1;
pad the mask with one pixel of zeros, erode it d times with a 3x3 square
(``cv2.erode``), crop back; the boundary is the mask minus its erosion. The IoU
of a detection and a non-crowd ground truth is min(mask IoU, boundary IoU); a
crowd region keeps the mask IoU.

The evaluators are the references' own evaluation loops (lvis-api 0.5.3's
``LVISEval``, pycocotools' ``COCOeval``) with only the IoU computation
replaced: every (detection, ground truth) pair of an (image, class) gets the
IoU above, boundaries computed on the full image with cv2 for each mask.
"""
from __future__ import annotations

import math

import cv2
import numpy as np
from lvis import LVISEval
from pycocotools import mask as mask_utils
from pycocotools.cocoeval import COCOeval

import tests.support.reference as reference  # noqa: F401  (restores np.float for lvis 0.5.3)


def cv2_boundary(mask: np.ndarray, ratio: float) -> np.ndarray:
    h, w = mask.shape
    d = max(1, int(round(ratio * math.sqrt(h * h + w * w))))
    padded = cv2.copyMakeBorder(mask, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    eroded = cv2.erode(padded, np.ones((3, 3), np.uint8), iterations=d)[1:h + 1, 1:w + 1]
    return mask - eroded


_STORE: dict = {}   # (ratio, size, counts) -> boundary bitmap, shared by every evaluator of the session


class _Cache:
    def __init__(self, ratio):
        self.ratio = ratio

    def boundary(self, rle) -> np.ndarray:
        c = rle["counts"]
        key = (self.ratio, tuple(rle["size"]), c if isinstance(c, bytes) else c.encode())
        if key not in _STORE:
            _STORE[key] = cv2_boundary(mask_utils.decode(rle), self.ratio).astype(bool)
        return _STORE[key]


def boundary_iou_matrix(dts, gts, cache: _Cache, skip=None) -> np.ndarray:
    """Boundary IoU of every (dt, gt) pair of compressed RLEs: |Bd & Bg| / |Bd | Bg| (0 if disjoint).
    ``skip[i, j]`` True: not needed (left 0)."""
    out = np.zeros((len(dts), len(gts)))
    for i, d in enumerate(dts):
        bd = cache.boundary(d)
        for j, g in enumerate(gts):
            if skip is not None and skip[i, j]:
                continue
            bg = cache.boundary(g)
            inter = int(np.count_nonzero(bd & bg))
            if inter:
                out[i, j] = inter / int(np.count_nonzero(bd | bg))
    return out


def combine(mask_iou, dts, gts, crowd, cache) -> np.ndarray:
    m = np.asarray(mask_iou, np.float64).reshape(len(dts), len(gts))
    b = boundary_iou_matrix(dts, gts, cache, skip=m <= 0)   # min(0, anything >= 0) is 0
    crowd = np.asarray(crowd, bool)
    out = m.copy()
    out[:, ~crowd] = np.minimum(m[:, ~crowd], b[:, ~crowd])
    return out


class BoundaryLVISEval(LVISEval):
    """lvis-api 0.5.3's LVISEval with Boundary IoU (its constructor's iou_type is ignored: masks)."""

    ratio = 0.02

    def __init__(self, lvis_gt, lvis_dt, iou_type="segm"):
        super().__init__(lvis_gt, lvis_dt, "segm")
        self._cache = _Cache(self.ratio)

    def compute_iou(self, img_id, cat_id):
        ious = super().compute_iou(img_id, cat_id)
        gt, dt = self._get_gt_dt(img_id, cat_id)
        if len(gt) == 0 or len(dt) == 0:
            return ious
        idx = np.argsort([-d["score"] for d in dt], kind="mergesort")
        dts = [dt[i]["segmentation"] for i in idx]
        gts = [g["segmentation"] for g in gt]
        return combine(ious, dts, gts, [False] * len(gt), self._cache)


class BoundaryCOCOeval(COCOeval):
    """pycocotools' COCOeval with Boundary IoU (crowd regions keep the mask IoU)."""

    ratio = 0.02

    def __init__(self, cocoGt=None, cocoDt=None, iouType="segm"):
        super().__init__(cocoGt, cocoDt, "segm")
        self._cache = _Cache(self.ratio)

    def computeIoU(self, imgId, catId):
        ious = super().computeIoU(imgId, catId)
        gt, dt = self._gts[imgId, catId], self._dts[imgId, catId]
        if len(gt) == 0 or len(dt) == 0:
            return ious
        idx = np.argsort([-d["score"] for d in dt], kind="mergesort")
        dt = [dt[i] for i in idx][:self.params.maxDets[-1]]
        return combine(ious, [d["segmentation"] for d in dt], [g["segmentation"] for g in gt],
                       [g["iscrowd"] for g in gt], self._cache)


def nonempty(results):
    """Results without empty masks: lvis-api's get_ann_ids keeps only area > 0 (an empty mask
    result is dropped there, a false positive here; the same for segm, not a boundary matter)."""
    from pycocotools import mask as mask_utils

    return [r for r in results if mask_utils.area(r["segmentation"]) > 0]
