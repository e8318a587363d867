"""Run the reference implementations (lvis-api 0.5.3, pycocotools) on in-memory data.

lvis 0.5.3 still calls ``np.float``; it is restored here so the tests can run
on numpy 2. Inputs are deep-copied because both references mutate them.
"""
from __future__ import annotations

import contextlib
import copy
import io
import logging

import numpy as np

if not hasattr(np, "float"):
    np.float = float  # lvis 0.5.3 uses the alias removed in numpy 1.24

from lvis import LVIS, LVISEval, LVISResults  # noqa: E402
from pycocotools.coco import COCO  # noqa: E402
from pycocotools.cocoeval import COCOeval  # noqa: E402

logging.getLogger("lvis").setLevel(logging.ERROR)

COCO_KEYS = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR", "ARs", "ARm", "ARl")


def lvis_gt(dataset: dict) -> LVIS:
    g = LVIS.__new__(LVIS)
    g.logger = logging.getLogger("lvis")
    g.dataset = copy.deepcopy(dataset)
    g._create_index()
    return g


def run_lvis(dataset: dict, results: list, *, max_dets: int = 300, iou_type: str = "bbox"):
    """lvis-api's LVISEval; returns (results dict with our key names, LVISEval)."""
    g = lvis_gt(dataset)
    res = LVISResults(g, copy.deepcopy(results), max_dets=max_dets)
    e = LVISEval(g, res, iou_type)
    e.params.max_dets = max_dets
    with contextlib.redirect_stdout(io.StringIO()):
        e.run()
    out = {}
    for k, v in e.results.items():
        out[k.split("@")[0]] = float(v)
    return out, e


def run_coco(dataset: dict, results: list, *, iou_type: str = "bbox", max_dets=(1, 10, 100)):
    """pycocotools' COCOeval; returns (dict of the 12 stats by our key names, COCOeval)."""
    with contextlib.redirect_stdout(io.StringIO()):
        g = COCO()
        g.dataset = copy.deepcopy(dataset)
        g.createIndex()
        d = g.loadRes(copy.deepcopy(results))
        e = COCOeval(g, d, iou_type)
        e.params.maxDets = list(max_dets)
        e.evaluate()
        e.accumulate()
        if len(max_dets) != 3:
            return None, e
        e.summarize()   # pycocotools' summary needs exactly three maxDets
    return dict(zip(COCO_KEYS, map(float, e.stats))), e


KEYS = ("AP", "AP50", "AP75", "APs", "APm", "APl", "APr", "APc", "APf", "AR", "ARs", "ARm", "ARl")


def top_k_per_class(results, k):
    """Straightforward AP-Fixed selection: per class, stable sort by descending score, keep k."""
    by_cat = {}
    for i, r in enumerate(results):
        by_cat.setdefault(r["category_id"], []).append(i)
    keep = set()
    for idx in by_cat.values():
        idx = sorted(idx, key=lambda i: results[i]["score"], reverse=True)
        keep.update(idx[:k])
    return [r for i, r in enumerate(results) if i in keep]
