"""Differential fuzzing against lvis-api and pycocotools on random small datasets.

Each example is a fresh random dataset (ties in scores, empty images, classes
without ground truth or without detections, federated negatives and
not-exhaustive classes for LVIS, crowd regions for COCO); every summary
figure and the full precision/recall arrays must agree.
"""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from gen import make_dataset
from pooled_reference import pooled_reference
from reference import run_coco, run_lvis
from lveval.metrics import evaluate
from test_reference_lvis import KEYS, top_k_per_class

SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)


def _close(ours, ref, keys):
    for k in keys:
        assert ours[k] == pytest.approx(ref[k], abs=1e-9), k


@settings(max_examples=250, **SETTINGS)
@given(seed=st.integers(0, 2 ** 31), cap=st.integers(1, 12), k=st.integers(1, 15),
       n_images=st.integers(1, 4), n_cats=st.integers(1, 5))
def test_lvis_random(seed, cap, k, n_images, n_cats):
    gt, res = make_dataset(seed, kind="lvis", n_images=n_images, n_cats=n_cats)
    if not res:
        return   # lvis-api cannot load an empty result list; covered in test_edge_cases
    ours = evaluate(gt, res, max_dets_per_image=cap, max_dets_per_class=k)
    ref_old, e = run_lvis(gt, res, max_dets=cap)
    _close(ours.old, ref_old, KEYS)
    np.testing.assert_allclose(ours.precision["old"], e.eval["precision"], atol=1e-12, rtol=0)
    sel = top_k_per_class(res, k)
    ref_fixed, e = run_lvis(gt, sel, max_dets=-1)
    _close(ours.fixed, ref_fixed, KEYS)
    np.testing.assert_allclose(ours.recall["fixed"], e.eval["recall"], atol=1e-12, rtol=0)
    ref_pool = pooled_reference(gt, sel)
    assert ours.pooled["AP"] == pytest.approx(ref_pool["all"], abs=1e-12)
    for f in "rcf":
        assert ours.pooled["AP" + f] == pytest.approx(ref_pool[f], abs=1e-12)


@settings(max_examples=250, **SETTINGS)
@given(seed=st.integers(0, 2 ** 31), n_images=st.integers(1, 4), n_cats=st.integers(1, 5),
       cap=st.sampled_from([100, 4, 2]))
def test_coco_random(seed, n_images, n_cats, cap):
    gt, res = make_dataset(seed, kind="coco", n_images=n_images, n_cats=n_cats, max_dets=15)
    if not res:
        return
    ref, e = run_coco(gt, res, max_dets=(1, 10, 100) if cap == 100 else (1, 2, cap))
    ours = evaluate(gt, res, max_dets_per_image=cap)
    np.testing.assert_allclose(ours.precision["old"], e.eval["precision"][..., -1], atol=1e-12, rtol=0)
    np.testing.assert_allclose(ours.recall["old"], e.eval["recall"][..., -1], atol=1e-12, rtol=0)
    if cap == 100:
        from reference import COCO_KEYS
        _close(ours.old, ref, COCO_KEYS)


@settings(max_examples=25, **SETTINGS)
@given(seed=st.integers(0, 2 ** 31), kind=st.sampled_from(["lvis", "coco"]))
def test_segm_random(seed, kind):
    gt, res = make_dataset(seed, kind=kind, n_images=2, n_cats=3, segm=True, max_dets=8)
    if not res:
        return
    if kind == "lvis":
        ref, _ = run_lvis(gt, res, max_dets=5, iou_type="segm")
        ours = evaluate(gt, res, iou_type="segm", protocols=["old"], max_dets_per_image=5)
        _close(ours.old, ref, KEYS)
    else:
        _, e = run_coco(gt, res, iou_type="segm")
        ours = evaluate(gt, res, iou_type="segm", protocols=["old"])
        np.testing.assert_allclose(ours.precision["old"], e.eval["precision"][..., -1], atol=1e-12, rtol=0)
