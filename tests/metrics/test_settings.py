"""Evaluation settings against the references run with the same parameters: custom IoU and recall
thresholds, area ranges (overlapping and unusual ones), detection-limit lists and class-agnostic
matching (pycocotools' ``useCats = 0``), bbox and segm, on the bundled data and generated data."""
from __future__ import annotations

import contextlib
import copy
import io
import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lveval import evaluate
from lveval.simulate import simulate
from tests.support.gen import make_dataset
from tests.support.reference import run_lvis

IOU = (0.3, 0.55, 0.8)
REC = tuple(float(x) for x in np.linspace(0.0, 1.0, 21))
AREAS = (("all", 0.0, 1e10), ("tiny", 0.0, 500.0), ("mid", 200.0, 5000.0), ("big", 4000.0, 1e10))
MAX_DETS = (1, 5, 20)


def coco_eval(gt, res, iou_type="bbox", *, iou=None, rec=None, areas=None, max_dets=None, use_cats=1):
    """pycocotools' COCOeval with the given parameters (its own arrays)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        g = COCO()
        g.dataset = copy.deepcopy(gt)
        g.createIndex()
        d = g.loadRes(copy.deepcopy(res))
        e = COCOeval(g, d, iou_type)
        if iou is not None:
            e.params.iouThrs = np.array(iou)
        if rec is not None:
            e.params.recThrs = np.array(rec)
        if areas is not None:
            e.params.areaRng = [[lo, hi] for _, lo, hi in areas]
            e.params.areaRngLbl = [n for n, _, _ in areas]
        if max_dets is not None:
            e.params.maxDets = list(max_dets)
        e.params.useCats = use_cats
        e.evaluate()
        e.accumulate()
    return e


def mean_valid(x):
    v = x[x > -1]
    return float(v.mean()) if v.size else -1.0


def check_against_coco(gt, res, iou_type="bbox", *, class_agnostic=False, **kw):
    e = coco_eval(gt, res, iou_type, iou=kw.get("iou"), rec=kw.get("rec"), areas=kw.get("areas"),
                  max_dets=kw.get("max_dets"), use_cats=0 if class_agnostic else 1)
    p = dict(dataset="coco", iou_type=iou_type, protocols=["old"], class_agnostic=class_agnostic)
    for ours_key, ref_key in (("iou_thresholds", "iou"), ("rec_thresholds", "rec"), ("area_ranges", "areas"),
                              ("max_dets", "max_dets")):
        if kw.get(ref_key) is not None:
            p[ours_key] = kw[ref_key]
    r = evaluate(gt, res, **p)
    np.testing.assert_allclose(r.precision["old"], e.eval["precision"][..., -1], atol=1e-12, rtol=0)
    np.testing.assert_allclose(r.recall["old"], e.eval["recall"][..., -1], atol=1e-12, rtol=0)
    assert r.old["AP"] == pytest.approx(mean_valid(e.eval["precision"][:, :, :, 0, -1]), abs=1e-12)
    names = [n for n, _, _ in (kw.get("areas") or AREAS_DEFAULT)]
    for a, name in enumerate(names[1:], 1):
        assert r.old["AP" + name[0]] == pytest.approx(mean_valid(e.eval["precision"][:, :, :, a, -1]), abs=1e-12)
    thr = e.params.iouThrs
    for key, t in (("AP50", 0.5), ("AP75", 0.75)):
        if t in thr:
            assert r.old[key] == pytest.approx(mean_valid(e.eval["precision"][thr == t][:, :, :, 0, -1]), abs=1e-12)
        else:
            assert key not in r.old   # not evaluated: left out, not -1
    if kw.get("max_dets") is not None:
        for m, n in enumerate(kw["max_dets"]):
            assert r.old[f"AR@{n}"] == pytest.approx(mean_valid(e.eval["recall"][:, :, 0, m]), abs=1e-12), n
            for a, name in enumerate(names[1:], 1):
                assert r.old[f"AR{name[0]}@{n}"] == pytest.approx(mean_valid(e.eval["recall"][:, :, a, m]),
                                                                   abs=1e-12)
    return r


AREAS_DEFAULT = (("all", 0, 1), ("small", 0, 1), ("medium", 0, 1), ("large", 0, 1))


@pytest.fixture(scope="module")
def coco(coco_paths):
    with open(coco_paths["gt"]) as f:
        gt = json.load(f)
    out = {"gt": gt}
    for t in ("bbox", "segm"):
        with open(coco_paths[t]) as f:
            out[t] = json.load(f)
    return out


@pytest.mark.reference
@pytest.mark.parametrize("iou_type", ["bbox", "segm"])
def test_custom_settings_equal_pycocotools_on_bundled_coco(coco, iou_type):
    check_against_coco(coco["gt"], coco[iou_type], iou_type, iou=IOU, rec=REC, areas=AREAS, max_dets=MAX_DETS)


@pytest.mark.reference
@pytest.mark.parametrize("iou_type", ["bbox", "segm"])
def test_class_agnostic_equals_pycocotools_use_cats_0(coco, iou_type):
    r = check_against_coco(coco["gt"], coco[iou_type], iou_type, class_agnostic=True, max_dets=(100, 300, 1000))
    assert r.precision["old"].shape[2] == 1 and {"AR@100", "AR@300", "AR@1000", "ARs@100"} <= set(r.old)


@pytest.mark.reference
def test_class_agnostic_recall_on_bundled_lvis_equals_pycocotools(lvis_dataset):
    gt = copy.deepcopy(lvis_dataset)
    for a in gt["annotations"]:
        a["iscrowd"] = 0   # pycocotools needs the flag; LVIS has no crowd regions
    res = simulate(gt, seed=3, candidates_per_image=400)
    r = check_against_coco(gt, res, class_agnostic=True, max_dets=(100, 300, 1000))
    assert r.old["AR@1000"] >= r.old["AR@300"] >= r.old["AR@100"] > 0


@pytest.mark.reference
@pytest.mark.property
@settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(seed=st.integers(0, 10_000), agnostic=st.booleans(),
       iou=st.lists(st.sampled_from([0.1, 0.25, 0.5, 0.6, 0.75, 0.9, 1.0]), min_size=1, max_size=4, unique=True),
       rec_n=st.integers(2, 30), limits=st.sampled_from([(1,), (2, 4), (1, 3, 100), (5, 6, 7)]),
       areas=st.sampled_from([AREAS, (("all", 0.0, 1e10),), (("whole", 0, 1e10), ("odd", 100.0, 100.5)),
                              (("all", 50.0, 3000.0), ("low", 0.0, 60.0), ("high", 60.0, 1e9))]))
def test_generated_settings_equal_pycocotools(seed, agnostic, iou, rec_n, limits, areas):
    gt, res = make_dataset(seed, kind="coco", n_images=4, n_cats=3, max_gt=7, max_dets=14)
    check_against_coco(gt, res, class_agnostic=agnostic, iou=tuple(sorted(iou)),
                       rec=tuple(float(x) for x in np.linspace(0, 1, rec_n)), areas=areas, max_dets=limits)


@pytest.mark.reference
@pytest.mark.parametrize("seed", range(6))
def test_generated_segm_settings_equal_pycocotools(seed):
    gt, res = make_dataset(seed, kind="coco", n_images=3, n_cats=3, segm=True)
    check_against_coco(gt, res, "segm", class_agnostic=bool(seed % 2), iou=(0.4, 0.5, 0.7), rec=REC,
                       areas=AREAS, max_dets=(2, 8))


def run_lvis_with(gt, res, *, iou, rec, areas, cap):
    """lvis-api 0.5.3 with its params changed before evaluation."""
    from lvis import LVISEval, LVISResults

    from tests.support.reference import lvis_gt

    g = lvis_gt(gt)
    e = LVISEval(g, LVISResults(g, copy.deepcopy(res), max_dets=cap), "bbox")
    e.params.iou_thrs = np.array(iou)
    e.params.rec_thrs = np.array(rec)
    e.params.area_rng = [[lo, hi] for _, lo, hi in areas]
    e.params.area_rng_lbl = [n for n, _, _ in areas]
    e.params.max_dets = cap
    with contextlib.redirect_stdout(io.StringIO()):
        e.evaluate()
        e.accumulate()
    return e


@pytest.mark.reference
@pytest.mark.parametrize("seed", range(12))
def test_custom_settings_equal_lvis_api_on_generated_data(seed):
    gt, res = make_dataset(seed, kind="lvis", n_images=4, n_cats=4, max_dets=16)
    cap = (300, 5, 3)[seed % 3]
    e = run_lvis_with(gt, res, iou=IOU, rec=REC, areas=AREAS, cap=cap)
    r = evaluate(gt, res, protocols=["old"], iou_thresholds=IOU, rec_thresholds=REC, area_ranges=AREAS,
                 max_dets_per_image=cap)
    np.testing.assert_allclose(r.precision["old"], e.eval["precision"], atol=1e-12, rtol=0)
    np.testing.assert_allclose(r.recall["old"], e.eval["recall"], atol=1e-12, rtol=0)
    assert "AP50" not in r.old and "AP75" not in r.old


@pytest.mark.reference
def test_custom_settings_equal_lvis_api_on_bundled_lvis(lvis_dataset):
    res = simulate(lvis_dataset, seed=5, candidates_per_image=200)
    e = run_lvis_with(lvis_dataset, res, iou=IOU, rec=REC, areas=AREAS, cap=100)
    r = evaluate(lvis_dataset, res, protocols=["old"], iou_thresholds=IOU, rec_thresholds=REC,
                 area_ranges=AREAS, max_dets_per_image=100)
    np.testing.assert_allclose(r.precision["old"], e.eval["precision"], atol=1e-12, rtol=0)
    np.testing.assert_allclose(r.recall["old"], e.eval["recall"], atol=1e-12, rtol=0)
    assert {"APt", "APm", "APb", "APr", "APc", "APf"} <= set(r.old)


def test_recall_at_limits_under_lvis_rules_is_the_capped_recall(lvis_dataset):
    """AR@N under LVIS rules = AP-Old's recall with a per-image cap of N (lvis-api's max_dets)."""
    res = simulate(lvis_dataset, seed=6, candidates_per_image=300)
    r = evaluate(lvis_dataset, res, protocols=["old"], max_dets=(20, 100, 300))
    for n in (20, 100, 300):
        assert r.old[f"AR@{n}"] == evaluate(lvis_dataset, res, protocols=["old"], max_dets_per_image=n).old["AR"]
    assert r.params.max_dets_per_image == 300 and r.old["AR"] == r.old["AR@300"]


@pytest.mark.reference
@pytest.mark.parametrize("iou_type", ["bbox", "segm"])
def test_compat_cocoeval_use_cats_0(coco, iou_type):
    from pycocotools.coco import COCO

    from lveval.compat import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        g = COCO()
        g.dataset = copy.deepcopy(coco["gt"])
        g.createIndex()
        e = COCOeval(g, g.loadRes(copy.deepcopy(coco[iou_type])), iou_type)
        e.params.useCats = 0
        e.params.maxDets = [100, 300, 1000]
        e.evaluate()
        e.accumulate()
    ref = coco_eval(coco["gt"], coco[iou_type], iou_type, max_dets=(100, 300, 1000), use_cats=0)
    np.testing.assert_allclose(e.eval["precision"], ref.eval["precision"], atol=1e-12, rtol=0)
    np.testing.assert_allclose(e.eval["recall"], ref.eval["recall"], atol=1e-12, rtol=0)


@pytest.mark.reference
def test_per_class_metrics_equal_lvis_api(lvis_dataset):
    """The fuller per-class table: AP50, AP75, AP per area and AR from lvis-api's own arrays, and the
    true positives at IoU 0.5 counted from its per-image records (area 'all')."""
    res = simulate(lvis_dataset, seed=8, candidates_per_image=300)
    r = evaluate(lvis_dataset, res, protocols=["old"], per_class_metrics=True)
    _, e = run_lvis(lvis_dataset, res)
    P, R = e.eval["precision"], e.eval["recall"]
    p = e.params
    n_area, n_img = len(p.area_rng), len(p.img_ids)
    for k, row in enumerate(r.per_class):
        def mean_or(x):
            return float(x.mean()) if (x > -1).all() else -1.0
        assert row["AP50_old"] == pytest.approx(mean_or(P[0, :, k, 0]), abs=1e-12)
        assert row["AP75_old"] == pytest.approx(mean_or(P[5, :, k, 0]), abs=1e-12)
        for a, key in enumerate(("APs_old", "APm_old", "APl_old"), 1):
            assert row[key] == pytest.approx(mean_or(P[:, :, k, a]), abs=1e-12)
        assert row["AR_old"] == pytest.approx(mean_or(R[:, k, 0]), abs=1e-12)
        tp = 0
        for ii in range(n_img):
            rec = e.eval_imgs[k * n_area * n_img + ii]
            if rec is not None:
                tp += int(((rec["dt_matches"][0] > 0) & ~rec["dt_ignore"][0].astype(bool)).sum())
        assert row["TP50_old"] == tp, row["name"]
