"""Shared inputs for the reliability tests: a tiny LVIS-style ground truth, valid results,
and a runner for the real command line in a subprocess (a module of its own, not conftest,
so it cannot clash with another directory's conftest)."""
from __future__ import annotations

import copy
import json
import os
import subprocess
import sys

LVEVAL = [sys.executable, "-m", "lveval.cli"]

# Two images, three classes (one per frequency), federated lists on both images.
GT = {
    "images": [
        {"id": 1, "height": 100, "width": 120, "neg_category_ids": [3], "not_exhaustive_category_ids": []},
        {"id": 2, "height": 60, "width": 80, "neg_category_ids": [], "not_exhaustive_category_ids": [2]},
    ],
    "categories": [
        {"id": 1, "name": "cat", "frequency": "f"},
        {"id": 2, "name": "dog", "frequency": "c"},
        {"id": 3, "name": "yak", "frequency": "r"},
    ],
    "annotations": [
        {"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 40, 30], "area": 1200,
         "segmentation": [[10, 10, 50, 10, 50, 40, 10, 40]]},
        {"id": 2, "image_id": 1, "category_id": 2, "bbox": [60, 50, 30, 40], "area": 1200,
         "segmentation": [[60, 50, 90, 50, 90, 90, 60, 90]]},
        {"id": 3, "image_id": 2, "category_id": 2, "bbox": [5, 5, 20, 20], "area": 400,
         "segmentation": [[5, 5, 25, 5, 25, 25, 5, 25]]},
        {"id": 4, "image_id": 2, "category_id": 3, "bbox": [40, 20, 30, 30], "area": 900,
         "segmentation": [[40, 20, 70, 20, 70, 50, 40, 50]]},
    ],
}

# Valid box results: matches, a detection of a verified-absent class, one per class at least.
RESULTS = [
    {"image_id": 1, "category_id": 1, "bbox": [11, 10, 40, 30], "score": 0.9},
    {"image_id": 1, "category_id": 2, "bbox": [60, 52, 30, 38], "score": 0.8},
    {"image_id": 2, "category_id": 2, "bbox": [5, 6, 20, 19], "score": 0.7},
    {"image_id": 1, "category_id": 3, "bbox": [0, 0, 10, 10], "score": 0.3},
    {"image_id": 2, "category_id": 3, "bbox": [41, 20, 30, 29], "score": 0.6},
]


def gt_dict() -> dict:
    return copy.deepcopy(GT)


def results_list() -> list:
    return copy.deepcopy(RESULTS)


def mask_results() -> list:
    """RESULTS with compressed-RLE masks (from the matching annotation's polygon) instead of boxes."""
    from pycocotools import mask as mask_utils

    size = {im["id"]: (im["height"], im["width"]) for im in GT["images"]}
    polys = {(a["image_id"], a["category_id"]): a["segmentation"] for a in GT["annotations"]}
    out = []
    for r in RESULTS:
        h, w = size[r["image_id"]]
        poly = polys.get((r["image_id"], r["category_id"]), [[0, 0, 10, 0, 10, 10, 0, 10]])
        rle = mask_utils.merge(mask_utils.frPyObjects(poly, h, w))
        out.append({"image_id": r["image_id"], "category_id": r["category_id"], "score": r["score"],
                    "segmentation": {"size": [h, w], "counts": rle["counts"].decode()}})
    return out


def dumps(obj) -> bytes:
    """Compact JSON; the standard library's writer, which also takes integers beyond 64 bits."""
    return json.dumps(obj, separators=(",", ":")).encode()


def run_cli(args, env=None, timeout=120) -> subprocess.CompletedProcess:
    """The real command line, as a user runs it."""
    e = dict(os.environ)
    e.pop("LVEVAL_MEMORY_LIMIT", None)
    e.update(env or {})
    return subprocess.run(LVEVAL + [str(a) for a in args], capture_output=True, text=True,
                          timeout=timeout, env=e)


