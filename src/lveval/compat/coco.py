"""pycocotools ``COCOeval`` drop-in on lveval's engine.

Replace ``from pycocotools.cocoeval import COCOeval`` with
``from lveval.compat import COCOeval``; ``COCO`` (and ``COCO.loadRes``) stay
pycocotools' own (``lveval.compat.COCO`` is the same class). Same
constructor, ``params`` (``imgIds``, ``catIds``, ``iouThrs``, ``recThrs``,
``maxDets``, ``areaRng``, ``areaRngLbl``, ``useCats``, ``iouType``),
``evaluate()``, ``accumulate()``, ``summarize()``, ``stats`` and
``eval["precision"]`` (T, R, K, A, M) / ``eval["recall"]`` (T, K, A, M).

``iouType="boundary"`` (with ``dilation_ratio``, default 0.02) is Boundary
IoU as boundary-iou-api's COCO drop-in computes it: min(mask IoU, boundary
IoU), the mask IoU for crowd regions.

Not replicated (docs/compat.md): ``evalImgs``, ``ious`` and
``eval["scores"]`` (filled with -1); ``iouType =
"keypoints"`` raise ``NotImplementedError``.
"""
from __future__ import annotations

import copy
import datetime
import time

import numpy as np

from ..accumulate import per_class
from ..metrics import mean_valid
from ._common import columns_from_anns, dataset_of, engine_params, prepare

try:   # the same ground-truth/results class users already have
    from pycocotools.coco import COCO
except ImportError:   # pragma: no cover - pycocotools is a dependency of lveval
    COCO = None


class Params:
    """pycocotools' parameters for bbox, segm and (boundary-iou-api's) boundary evaluation."""

    def __init__(self, iouType="segm"):
        if iouType not in ("bbox", "segm", "boundary"):
            if iouType == "keypoints":
                raise NotImplementedError("keypoint evaluation is not supported by lveval.compat")
            raise Exception("iouType not supported")
        self.imgIds = []
        self.catIds = []
        self.iouThrs = np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1, endpoint=True)
        self.recThrs = np.linspace(0.0, 1.00, int(np.round((1.00 - 0.0) / 0.01)) + 1, endpoint=True)
        self.maxDets = [1, 10, 100]
        self.areaRng = [[0 ** 2, 1e5 ** 2], [0 ** 2, 32 ** 2], [32 ** 2, 96 ** 2], [96 ** 2, 1e5 ** 2]]
        self.areaRngLbl = ["all", "small", "medium", "large"]
        self.useCats = 1
        self.iouType = iouType
        self.useSegm = None


class COCOeval:
    """pycocotools' ``COCOeval`` for bbox/segm (and boundary-iou-api's boundary), computed by
    lveval's engine (COCO crowd rules)."""

    def __init__(self, cocoGt=None, cocoDt=None, iouType="segm", dilation_ratio=0.02):
        if not iouType:
            print("iouType not specified. use default iouType segm")
        self.use_boundary_iou = iouType == "boundary"
        self.dilation_ratio = dilation_ratio
        self.cocoGt = cocoGt
        self.cocoDt = cocoDt
        self.evalImgs = []
        self.eval = {}
        self.params = Params(iouType=iouType)
        self._paramsEval = {}
        self.stats = []
        self.ious = {}
        if cocoGt is not None:
            ds = dataset_of(cocoGt, "cocoGt")
            self.params.imgIds = sorted(im["id"] for im in ds["images"])
            self.params.catIds = sorted(c["id"] for c in ds["categories"])
        self._ev = None

    def _detections(self):
        """Columns of cocoDt's annotations, with the area loadRes gave each (as pycocotools uses)."""
        from ..io.results import load_results

        dt = self.cocoDt
        anns = dt if isinstance(dt, list) else dataset_of(dt, "cocoDt")["annotations"]
        cols, area = columns_from_anns(anns)
        if self.params.iouType == "bbox":
            cols.pop("segmentation", None)     # loadRes' box polygons are not needed for boxes
        elif "segmentation" not in cols and len(cols["score"]):
            raise ValueError(f"{self.params.iouType} evaluation needs a segmentation in every result")
        if area is None:
            area = "box" if "bbox" in cols and len(cols["score"]) else "mask"
        return load_results(cols, path="<cocoDt>"), area

    def evaluate(self):
        """Match detections to ground truth for every image, class, area range and IoU threshold."""
        tic = time.time()
        print("Running per image evaluation...")
        p = self.params
        if p.useSegm is not None:
            p.iouType = "segm" if p.useSegm == 1 else "bbox"
        if p.iouType not in ("bbox", "segm", "boundary"):
            raise NotImplementedError(f"iouType {p.iouType!r} is not supported by lveval.compat")
        print(f"Evaluate annotation type *{p.iouType}*")
        p.imgIds = list(np.unique(p.imgIds))
        p.catIds = list(np.unique(p.catIds))
        p.maxDets = sorted(p.maxDets)
        self.params = p
        dets, area = self._detections()
        params = engine_params(p.iouType, "coco", p.iouThrs, p.recThrs, p.areaRng,
                               max_dets_per_image=int(p.maxDets[-1]), max_dets_per_class=-1,
                               area_labels=p.areaRngLbl, class_agnostic=not p.useCats,
                               dilation_ratio=self.dilation_ratio)
        ds = dataset_of(self.cocoGt, "cocoGt")
        self._gt, self._ev = prepare(ds, "coco", dets, area, p.imgIds, p.catIds, p.iouType, params)
        self._sel = self._ev.old_selection()
        self._m = self._ev.matching_for(self._sel)
        self._perm = np.searchsorted(self._gt.cat_ids, np.asarray(p.catIds, np.int64)) if p.useCats else \
            np.zeros(1, np.int64)   # useCats = 0: one pseudo-category, as pycocotools' catIds = [-1]
        self._paramsEval = copy.deepcopy(self.params)
        print(f"DONE (t={time.time() - tic:0.2f}s).")

    def accumulate(self, p=None):
        """Precision (T, R, K, A, M) and recall (T, K, A, M) into ``self.eval``; M = ``maxDets``."""
        print("Accumulating evaluation results...")
        tic = time.time()
        if self._ev is None:
            print("Please run evaluate() first")
            return
        p = self.params if p is None else p
        ev = self._ev
        sub = self._sel[self._m.det]
        K = ev.num_classes
        precs, recs = [], []
        for md in p.maxDets:
            q, r = per_class(self._m, sub, ev.params, K, max_rank=int(md))
            precs.append(q[:, :, self._perm, :])
            recs.append(r[:, self._perm, :])
        precision = np.stack(precs, axis=-1)
        recall = np.stack(recs, axis=-1)
        self.eval = {"params": p, "counts": list(precision.shape),
                     "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M:%S"),
                     "precision": precision, "recall": recall, "scores": -np.ones_like(precision)}
        print(f"DONE (t={time.time() - tic:0.2f}s).")

    def summarize(self):
        """pycocotools' 12 statistics into ``self.stats`` (printed as pycocotools prints them)."""
        p = self.params

        def _summarize(ap=1, iouThr=None, areaRng="all", maxDets=100):
            istr = " {:<18} {} @[ IoU={:<9} | area={:>6s} | maxDets={:>3d} ] = {:0.3f}"
            title = "Average Precision" if ap == 1 else "Average Recall"
            kind = "(AP)" if ap == 1 else "(AR)"
            iou = f"{p.iouThrs[0]:0.2f}:{p.iouThrs[-1]:0.2f}" if iouThr is None \
                else f"{iouThr:0.2f}"
            aind = [i for i, a in enumerate(p.areaRngLbl) if a == areaRng]
            mind = [i for i, m in enumerate(p.maxDets) if m == maxDets]
            s = self.eval["precision"] if ap == 1 else self.eval["recall"]
            if iouThr is not None:
                s = s[np.where(iouThr == p.iouThrs)[0]]
            s = s[:, :, :, aind][..., mind] if ap == 1 else s[:, :, aind][..., mind]
            mean_s = mean_valid(s)
            print(istr.format(title, kind, iou, areaRng, maxDets, mean_s))
            return mean_s

        if not self.eval:
            raise Exception("Please run accumulate() first")
        md = p.maxDets
        stats = np.zeros((12,))
        stats[0] = _summarize(1)
        stats[1] = _summarize(1, iouThr=0.5, maxDets=md[2])
        stats[2] = _summarize(1, iouThr=0.75, maxDets=md[2])
        stats[3] = _summarize(1, areaRng="small", maxDets=md[2])
        stats[4] = _summarize(1, areaRng="medium", maxDets=md[2])
        stats[5] = _summarize(1, areaRng="large", maxDets=md[2])
        stats[6] = _summarize(0, maxDets=md[0])
        stats[7] = _summarize(0, maxDets=md[1])
        stats[8] = _summarize(0, maxDets=md[2])
        stats[9] = _summarize(0, areaRng="small", maxDets=md[2])
        stats[10] = _summarize(0, areaRng="medium", maxDets=md[2])
        stats[11] = _summarize(0, areaRng="large", maxDets=md[2])
        self.stats = stats

    def run(self):
        """evaluate(), accumulate(), summarize() (a convenience pycocotools lacks)."""
        self.evaluate()
        self.accumulate()
        self.summarize()

    def __str__(self):
        self.summarize()
        return ""
