"""AP-Old and AP-Fixed against lvis-api 0.5.3 on the real LVIS v0.5 subset."""
import numpy as np
import pytest

from lveval.metrics import evaluate
from lveval.simulate import simulate
from tests.support.reference import KEYS, run_lvis, top_k_per_class  # noqa: F401 - shared


@pytest.fixture(scope="module")
def sim_bbox(lvis_path):
    return simulate(lvis_path, seed=1, candidates_per_image=600)


@pytest.fixture(scope="module")
def sim_segm(lvis_path):
    return simulate(lvis_path, seed=2, candidates_per_image=60, iou_type="segm")


@pytest.mark.parametrize("cap", [300, 40])
def test_old_bbox_matches_lvis_api(lvis_dataset, lvis_path, sim_bbox, cap):
    ref, e = run_lvis(lvis_dataset, sim_bbox, max_dets=cap)
    ours = evaluate(lvis_path, sim_bbox, protocols=["old"], max_dets_per_image=cap)
    for k in KEYS:
        assert ours.old[k] == pytest.approx(ref[k], abs=1e-9), k
    np.testing.assert_allclose(ours.precision["old"], e.eval["precision"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(ours.recall["old"], e.eval["recall"], rtol=0, atol=1e-12)


@pytest.mark.parametrize("k", [10_000, 25])
def test_fixed_bbox_matches_lvis_api(lvis_dataset, lvis_path, sim_bbox, k):
    ref, e = run_lvis(lvis_dataset, top_k_per_class(sim_bbox, k), max_dets=-1)
    ours = evaluate(lvis_path, sim_bbox, protocols=["fixed"], max_dets_per_class=k)
    for key in KEYS:
        assert ours.fixed[key] == pytest.approx(ref[key], abs=1e-9), key
    np.testing.assert_allclose(ours.precision["fixed"], e.eval["precision"], rtol=0, atol=1e-12)


def test_old_and_fixed_differ_when_cap_binds(lvis_path, sim_bbox):
    r = evaluate(lvis_path, sim_bbox, max_dets_per_image=100)
    assert r.fixed["AP"] > r.old["AP"]


def test_segm_matches_lvis_api(lvis_dataset, lvis_path, sim_segm):
    ref, _ = run_lvis(lvis_dataset, sim_segm, max_dets=20, iou_type="segm")
    ours = evaluate(lvis_path, sim_segm, iou_type="segm", protocols=["old", "fixed"],
                    max_dets_per_image=20, max_dets_per_class=30)
    for k in KEYS:
        assert ours.old[k] == pytest.approx(ref[k], abs=1e-9), k
    ref_f, _ = run_lvis(lvis_dataset, top_k_per_class(sim_segm, 30), max_dets=-1, iou_type="segm")
    for k in KEYS:
        assert ours.fixed[k] == pytest.approx(ref_f[k], abs=1e-9), k


def test_segm_area_comes_from_mask_not_box(lvis_dataset, lvis_path, sim_segm):
    """With a bbox present lvis-api sizes a mask result by its box; lveval uses the mask area."""
    from pycocotools import mask as mask_utils

    with_box = []
    for r in sim_segm:
        r2 = dict(r)
        x, y, w, h = mask_utils.toBbox(r["segmentation"]).tolist()
        r2["bbox"] = [x - 30, y - 30, w + 60, h + 60]   # a deliberately loose box
        with_box.append(r2)
    a = evaluate(lvis_path, sim_segm, iou_type="segm", protocols=["old"], max_dets_per_image=20)
    b = evaluate(lvis_path, with_box, iou_type="segm", protocols=["old"], max_dets_per_image=20)
    assert a.old == b.old
    ref_box, _ = run_lvis(lvis_dataset, with_box, max_dets=20, iou_type="segm")
    assert ref_box["APs"] != pytest.approx(a.old["APs"], abs=1e-9)   # the reference is fooled by the box
