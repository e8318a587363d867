"""Differential tests against tidecv 1.0.1 (TIDE's authors' package) on COCO-format data.

The assignment of every detection and every missed object to an error type must equal tidecv's.
For the dAPs, tidecv's own oracle-fixed data points are scored with an independent pycocotools-style
AP50 written here (tidecv's own AP uses recall thresholds x/100 instead of pycocotools' linspace and
also averages classes that have detections but no ground truth; docs/errors.md measures both).
"""
from __future__ import annotations

import json

import numpy as np
import pytest

tidecv = pytest.importorskip("tidecv")

import lveval  # noqa: E402
from lveval.error_analysis import TYPES, errors  # noqa: E402

from .tide_ref import ours_per_record, random_coco, run_tidecv  # noqa: E402


def _load(path):
    with open(path) as f:
        return json.load(f)


@pytest.fixture(scope="module")
def coco(coco_paths):
    return _load(coco_paths["gt"]), _load(coco_paths["bbox"])


def test_bundled_coco_assignment_equals_tidecv(coco):
    gt, res = coco
    ref = run_tidecv(gt, res)
    rep = errors(gt, res, protocols=["fixed"])        # top 10,000 per class: every detection
    det, missed = ours_per_record(rep, "fixed", len(res))
    assert det == ref["det_type"]
    assert missed == ref["missed"]
    assert rep["fixed"]["counts"] == ref["counts"]
    assert sum(ref["counts"].values()) > 100          # the comparison is not vacuous


def test_bundled_coco_ap50_is_pycocotools(coco):
    gt, res = coco
    rep = errors(gt, res)
    ev = lveval.evaluate(gt, res, protocols=["old", "fixed"])
    assert rep["fixed"]["AP50"] == pytest.approx(ev.fixed["AP50"], abs=1e-12)
    assert rep["old"]["AP50"] == pytest.approx(ev.old["AP50"], abs=1e-12)


# ---- an independent pycocotools-style AP50 over tidecv's fixed data points --------------------------
_REC = np.linspace(0.0, 1.0, 101)


def _class_ap(points: list, num_gt: int) -> float:
    pts = sorted(points, key=lambda p: -p[0])          # stable, like pycocotools' mergesort
    tp = np.cumsum([bool(p[1]) for p in pts]).astype(float)
    fp = np.cumsum([not p[1] for p in pts]).astype(float)
    if not len(pts):
        return 0.0
    rc = tp / num_gt
    pr = list(tp / (fp + tp + np.spacing(1)))
    for i in range(len(pr) - 1, 0, -1):
        pr[i - 1] = max(pr[i - 1], pr[i])
    q = [pr[i] if i < len(pr) else 0.0 for i in np.searchsorted(rc, _REC, side="left")]
    return float(np.mean(q))


def _map(ap_data) -> float:
    aps = [_class_ap(list(o.data_points.values()), o.num_gt_positives)
           for o in ap_data.objs.values() if o.num_gt_positives > 0]
    return float(np.mean(aps))


def _tidecv_fixed_maps(gt: dict, res: list) -> dict:
    from tidecv import TIDE
    from tidecv.data import Data
    from tidecv.errors.main_errors import (
        BackgroundError,
        BoxError,
        ClassError,
        DuplicateError,
        FalsePositiveError,
        MissedError,
        OtherError,
    )

    g = Data("gt", max_dets=10 ** 9)
    for im in gt["images"]:
        g.add_image(im["id"], str(im["id"]))
    for a in gt["annotations"]:
        (g.add_ignore_region if a.get("iscrowd", 0) else g.add_ground_truth)(
            a["image_id"], a["category_id"], a["bbox"], None)
    p = Data("r")
    for d in res:
        p.add_detection(d["image_id"], d["category_id"], d["score"], d["bbox"], None)
    run = TIDE().evaluate(g, p, name="r")
    kinds = {"cls": ClassError, "loc": BoxError, "both": OtherError, "dupe": DuplicateError,
             "bkg": BackgroundError, "miss": MissedError}
    out = {"base": _map(run.ap_data)}
    for t, k in kinds.items():
        out[t] = _map(run.fix_errors(lambda e, k=k: isinstance(e, k)))
    out["fp"] = _map(run.fix_errors(transform=FalsePositiveError.fix))
    out["fn"] = _map(run.fix_errors(false_neg_dict=run.false_negatives))
    return out


@pytest.mark.parametrize("seed", range(6))
def test_generated_coco_equals_tidecv(seed):
    gt, res = random_coco(seed)
    ref = run_tidecv(gt, res)
    rep = errors(gt, res, protocols=["fixed"])
    det, missed = ours_per_record(rep, "fixed", len(res))
    assert det == ref["det_type"]
    assert missed == ref["missed"]
    f = rep["fixed"]
    assert f["counts"] == ref["counts"]
    assert all(ref["counts"][t] > 0 for t in ("loc", "both", "dupe", "bkg", "miss"))
    maps = _tidecv_fixed_maps(gt, res)
    assert f["AP50"] == pytest.approx(maps["base"], abs=1e-12)
    for t in TYPES:
        assert f["dAP"][t] == pytest.approx(maps[t] - maps["base"], abs=1e-12), t
    for s in ("fp", "fn"):
        assert f["dAP_special"][s] == pytest.approx(maps[s] - maps["base"], abs=1e-12), s


def test_generated_coco_with_cap_equals_tidecv_on_capped_input():
    """Under AP-Old's selection the typed detections are the selected ones: feeding tidecv exactly the
    selected detections gives the same assignment."""
    gt, res = random_coco(3)
    rep = errors(gt, res, protocols=["old"], max_dets_per_image=2)   # COCO: 2 per image and class
    a = rep.assignments["old"]
    kept = sorted(int(r) for r in a.m.det)
    assert 0 < len(kept) < len(res)
    sub = [res[i] for i in kept]
    ref = run_tidecv(gt, sub)
    det, missed = ours_per_record(rep, "old", len(res))
    assert [det[i] for i in kept] == ref["det_type"]
    assert missed == ref["missed"]


def test_threshold_boundaries_equal_tidecv():
    """IoU exactly 0.5 with a matched object of the own class is 'loc' (TIDE's test is <= 0.5), exactly
    0.5 with another class is 'cls', exactly 0.1 with everything is 'bkg'; as tidecv decides."""
    A = [10.0, 10.0, 60.0, 50.0]                     # 3000 px
    half = [30.0, 10.0, 60.0, 50.0]                  # 2000 / 4000 = 0.5 exactly
    tenth = [60.0, 10.0, 50.0, 50.0]                 # 500 / 5000 = 0.1 exactly
    B = [300.0, 200.0, 60.0, 50.0]
    gt = {"images": [{"id": 1, "width": 640, "height": 480}],
          "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}],
          "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": A, "area": 3000.0, "iscrowd": 0},
                          {"id": 2, "image_id": 1, "category_id": 2, "bbox": B, "area": 3000.0, "iscrowd": 0}]}
    res = [{"image_id": 1, "category_id": 1, "bbox": A, "score": 0.9},
           {"image_id": 1, "category_id": 1, "bbox": half, "score": 0.8},
           {"image_id": 1, "category_id": 1, "bbox": [B[0] + 20, B[1], 60.0, 50.0], "score": 0.7},
           {"image_id": 1, "category_id": 2, "bbox": tenth, "score": 0.6},
           {"image_id": 1, "category_id": 2, "bbox": half, "score": 0.5}]
    ref = run_tidecv(gt, res)
    det, missed = ours_per_record(errors(gt, res, protocols=["fixed"]), "fixed", len(res))
    assert ref["det_type"] == [None, "loc", "cls", "bkg", "cls"]
    assert det == ref["det_type"] and missed == ref["missed"] == set()   # b is pointed at by a cls error


def test_bundled_coco_segm_assignment_equals_tidecv(coco_paths):
    """Mask IoU (pycocotools, per image) for the cross-class and background tests, as tidecv's mask mode."""
    gt, res = _load(coco_paths["gt"]), _load(coco_paths["segm"])
    ref = run_tidecv(gt, res, mode="segm")
    rep = errors(gt, res, iou_type="segm", protocols=["fixed"])
    det, missed = ours_per_record(rep, "fixed", len(res))
    assert det == ref["det_type"]
    assert missed == ref["missed"]
    assert rep["fixed"]["counts"] == ref["counts"]
    assert rep["fixed"]["AP50"] == pytest.approx(
        lveval.evaluate(gt, res, iou_type="segm", protocols=["fixed"]).fixed["AP50"], abs=1e-12)
