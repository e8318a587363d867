"""Differential fuzzing against lvis-api and pycocotools on random small datasets.

Each example is a fresh random dataset (ties in scores, empty images, classes
without ground truth or without detections, federated negatives and
not-exhaustive classes for LVIS, crowd regions for COCO); every summary
figure and the full precision/recall arrays must agree.
"""
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.differential import check_coco, check_lvis
from tests.support.gen import make_dataset

SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)


@settings(max_examples=250, **SETTINGS)
@given(seed=st.integers(0, 2 ** 31), cap=st.integers(1, 12), k=st.integers(1, 15),
       n_images=st.integers(1, 4), n_cats=st.integers(1, 5))
def test_lvis_random(seed, cap, k, n_images, n_cats):
    gt, res = make_dataset(seed, kind="lvis", n_images=n_images, n_cats=n_cats)
    if not res:
        return   # lvis-api cannot load an empty result list; covered in test_edge_cases
    check_lvis(gt, res, cap, k)


@settings(max_examples=250, **SETTINGS)
@given(seed=st.integers(0, 2 ** 31), n_images=st.integers(1, 4), n_cats=st.integers(1, 5),
       cap=st.sampled_from([100, 4, 2]))
def test_coco_random(seed, n_images, n_cats, cap):
    gt, res = make_dataset(seed, kind="coco", n_images=n_images, n_cats=n_cats, max_dets=15)
    if not res:
        return
    check_coco(gt, res, cap=cap)


@settings(max_examples=25, **SETTINGS)
@given(seed=st.integers(0, 2 ** 31), kind=st.sampled_from(["lvis", "coco"]))
def test_segm_random(seed, kind):
    gt, res = make_dataset(seed, kind=kind, n_images=2, n_cats=3, segm=True, max_dets=8)
    if not res:
        return
    if kind == "lvis":
        check_lvis(gt, res, 5, 5, iou_type="segm")
    else:
        check_coco(gt, res, iou_type="segm")
