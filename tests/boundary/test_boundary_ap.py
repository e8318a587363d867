"""Boundary AP (AP-Old, AP-Fixed, AP-Pool) against the references' evaluation loops with Boundary IoU
computed from its definition with cv2 (boundary_reference.py)."""
import copy
import json

import numpy as np
import pytest

import tests.support.pooled as pooled_reference
import tests.support.reference as reference
from lveval.metrics import evaluate
from lveval.simulate import simulate
from tests.support.gen import make_dataset
from tests.support.reference import KEYS, top_k_per_class

from .boundary_reference import BoundaryCOCOeval, BoundaryLVISEval, nonempty


@pytest.fixture
def boundary_refs(monkeypatch):
    """The reference runners of tests/reference.py and tests/pooled_reference.py, with Boundary IoU."""
    monkeypatch.setattr(reference, "LVISEval", BoundaryLVISEval)
    monkeypatch.setattr(reference, "COCOeval", BoundaryCOCOeval)
    monkeypatch.setattr(pooled_reference, "LVISEval", BoundaryLVISEval)


def _check_lvis(dataset, gt_arg, results, *, cap, k):
    results = nonempty(results)
    ours = evaluate(gt_arg, results, iou_type="boundary", max_dets_per_image=cap, max_dets_per_class=k)
    ref_o, e_o = reference.run_lvis(dataset, results, max_dets=cap, iou_type="segm")
    ref_f, e_f = reference.run_lvis(dataset, top_k_per_class(results, k), max_dets=-1, iou_type="segm")
    for key in KEYS:
        assert ours.old[key] == pytest.approx(ref_o[key], abs=1e-12), key
        assert ours.fixed[key] == pytest.approx(ref_f[key], abs=1e-12), key
    np.testing.assert_allclose(ours.precision["old"], e_o.eval["precision"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(ours.recall["old"], e_o.eval["recall"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(ours.precision["fixed"], e_f.eval["precision"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(ours.recall["fixed"], e_f.eval["recall"], rtol=0, atol=1e-12)
    ref_p = pooled_reference.pooled_reference(dataset, top_k_per_class(results, k), iou_type="segm")
    assert ours.pooled["AP"] == pytest.approx(ref_p["all"], abs=1e-12)
    for key in ("AP50", "AP75"):
        assert ours.pooled[key] == pytest.approx(ref_p[key], abs=1e-12), key
    for f in "rcf":
        if f in ref_p:
            assert ours.pooled["AP" + f] == pytest.approx(ref_p[f], abs=1e-12), f
    return ours


def test_lvis_subset(boundary_refs, lvis_dataset, lvis_path):
    res = nonempty(simulate(lvis_path, seed=11, candidates_per_image=15, iou_type="segm"))
    ours = _check_lvis(lvis_dataset, lvis_path, res, cap=15, k=40)
    segm = evaluate(lvis_path, res, iou_type="segm", max_dets_per_image=15, max_dets_per_class=40)
    assert ours.fixed["AP"] < segm.fixed["AP"]          # boundary IoU <= mask IoU: a harder metric
    assert ours.to_dict()["params"]["dilation_ratio"] == 0.02


@pytest.mark.parametrize("seed", range(6))
def test_generated_lvis_with_ties(boundary_refs, seed):
    gt, res = make_dataset(100 + seed, kind="lvis", n_images=4, n_cats=4, max_gt=7, max_dets=16,
                           score_levels=3, segm=True)
    if not res:
        pytest.skip("no detections drawn")
    _check_lvis(gt, copy.deepcopy(gt), res, cap=6, k=9)


@pytest.mark.parametrize("ratio", [0.005, 0.08])
def test_generated_lvis_other_dilation(boundary_refs, monkeypatch, ratio):
    monkeypatch.setattr(BoundaryLVISEval, "ratio", ratio)
    gt, res = make_dataset(7, kind="lvis", n_images=4, n_cats=3, max_gt=7, max_dets=16, segm=True)
    res = nonempty(res)
    ref, e = reference.run_lvis(gt, res, max_dets=300, iou_type="segm")
    ours = evaluate(copy.deepcopy(gt), res, iou_type="boundary", dilation_ratio=ratio, protocols=["old"])
    np.testing.assert_allclose(ours.precision["old"], e.eval["precision"], rtol=0, atol=1e-12)
    for key in KEYS:
        assert ours.old[key] == pytest.approx(ref[key], abs=1e-12), key


def test_coco_with_crowd(boundary_refs, coco_paths):
    gt = json.load(open(coco_paths["gt"]))
    res = json.load(open(coco_paths["segm"]))
    assert any(a["iscrowd"] for a in gt["annotations"])
    ref, e = reference.run_coco(gt, res, iou_type="segm")
    ours = evaluate(coco_paths["gt"], coco_paths["segm"], iou_type="boundary")
    for key in reference.COCO_KEYS:
        assert ours.old[key] == pytest.approx(ref[key], abs=1e-12), key
    np.testing.assert_allclose(ours.precision["old"], e.eval["precision"][..., -1], rtol=0, atol=1e-12)
    np.testing.assert_allclose(ours.recall["old"], e.eval["recall"][..., -1], rtol=0, atol=1e-12)
    _, e_f = reference.run_coco(gt, res, iou_type="segm", max_dets=(1, 10, 10 ** 9))
    np.testing.assert_allclose(ours.precision["fixed"], e_f.eval["precision"][..., -1], rtol=0, atol=1e-12)


@pytest.mark.parametrize("seed", range(3))
def test_generated_coco_crowds_and_ties(boundary_refs, seed):
    gt, res = make_dataset(200 + seed, kind="coco", n_images=4, n_cats=3, max_gt=7, max_dets=16,
                           score_levels=3, segm=True)
    if not res:
        pytest.skip("no detections drawn")
    ref, e = reference.run_coco(gt, res, iou_type="segm")
    ours = evaluate(copy.deepcopy(gt), res, iou_type="boundary")
    np.testing.assert_allclose(ours.precision["old"], e.eval["precision"][..., -1], rtol=0, atol=1e-12)
    np.testing.assert_allclose(ours.recall["old"], e.eval["recall"][..., -1], rtol=0, atol=1e-12)
    for key in reference.COCO_KEYS:
        assert ours.old[key] == pytest.approx(ref[key], abs=1e-12), key


def test_blocks_of_images_give_the_same_figures(lvis_path, monkeypatch):
    import functools

    import lveval.boundary as B

    res = nonempty(simulate(lvis_path, seed=12, candidates_per_image=10, iou_type="segm"))
    a = evaluate(lvis_path, res, iou_type="boundary")
    monkeypatch.setattr(B, "refine_pairs", functools.partial(B.refine_pairs, chunk_pairs=5))
    b = evaluate(lvis_path, res, iou_type="boundary")
    assert (a.old, a.fixed, a.pooled) == (b.old, b.fixed, b.pooled)
    for p in ("old", "fixed"):
        np.testing.assert_array_equal(a.precision[p], b.precision[p])


def test_boundaries_only_where_they_can_change_a_match(monkeypatch):
    """Each mask's boundary at most once, and only for kept detections (top 3 per class here)
    whose mask IoU with some ground truth of their image and class reaches 0.5."""
    from pycocotools import mask as mask_utils

    import lveval.boundary as B
    from lveval.io.gt import load_gt

    gt, res = make_dataset(31, kind="lvis", n_images=4, n_cats=3, max_gt=7, max_dets=20, segm=True)
    seen = []
    orig = B.boundaries
    monkeypatch.setattr(B, "boundaries", lambda rles, ratio=0.02: (seen.extend(rles), orig(rles, ratio))[1])
    evaluate(copy.deepcopy(gt), res, iou_type="boundary", protocols=["fixed"], max_dets_per_class=3)
    kept = top_k_per_class(res, 3)
    g = load_gt(copy.deepcopy(gt))
    rles = g.rles()
    neg = {(im["id"], c) for im in gt["images"] for c in im["neg_category_ids"]}
    need = set()
    for r in kept:
        same = [rles[i] for i, a in enumerate(gt["annotations"])
                if a["image_id"] == r["image_id"] and a["category_id"] == r["category_id"]]
        if not same and (r["image_id"], r["category_id"]) not in neg:
            continue                                  # federated rule: not evaluated at all
        m = mask_utils.iou([r["segmentation"]], same, [0] * len(same)) if same else []
        if len(m) and np.max(m) >= 0.5:
            need.add(r["segmentation"]["counts"].encode())
            need.update(s["counts"] for s, v in zip(same, np.ravel(m)) if v >= 0.5)
    keys = [s["counts"] if isinstance(s["counts"], bytes) else s["counts"].encode() for s in seen]
    assert len(keys) == len(set(keys))               # once each
    assert set(keys) == need and len(need) > 0
