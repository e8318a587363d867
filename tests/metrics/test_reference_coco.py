"""COCO rules against pycocotools' COCOeval on real COCO val2014 images and its fake results."""
import json

import numpy as np
import pytest

from lveval.metrics import evaluate
from tests.support.reference import COCO_KEYS, run_coco


@pytest.mark.parametrize("iou_type", ["bbox", "segm"])
def test_coco_twelve_stats(coco_paths, iou_type):
    gt = json.load(open(coco_paths["gt"]))
    res = json.load(open(coco_paths[iou_type]))
    ref, e = run_coco(gt, res, iou_type=iou_type)
    ours = evaluate(coco_paths["gt"], coco_paths[iou_type], iou_type=iou_type)
    assert ours.gt.kind == "coco"
    for k in COCO_KEYS:
        assert ours.old[k] == pytest.approx(ref[k], abs=1e-12), k
    np.testing.assert_allclose(ours.precision["old"], e.eval["precision"][..., -1], rtol=0, atol=1e-12)
    assert "APr" not in ours.old and "APr" not in ours.pooled


def test_coco_cap_binds(coco_paths):
    gt = json.load(open(coco_paths["gt"]))
    res = json.load(open(coco_paths["bbox"]))
    _, e = run_coco(gt, res, max_dets=(1, 2, 3))
    ours = evaluate(coco_paths["gt"], res, max_dets_per_image=3)
    np.testing.assert_allclose(ours.precision["old"], e.eval["precision"][..., -1], rtol=0, atol=1e-12)
    np.testing.assert_allclose(ours.recall["old"], e.eval["recall"][..., -1], rtol=0, atol=1e-12)


def test_coco_fixed_is_uncapped_pycocotools(coco_paths):
    gt = json.load(open(coco_paths["gt"]))
    res = json.load(open(coco_paths["bbox"]))
    _, e = run_coco(gt, res, max_dets=(1, 10, 10 ** 9))
    ours = evaluate(coco_paths["gt"], res, protocols=["fixed"])
    np.testing.assert_allclose(ours.precision["fixed"], e.eval["precision"][..., -1], rtol=0, atol=1e-12)
