"""Invariants of the decomposition, LVIS rules and planted confusions, on hand-built scenes whose
expected errors are known by construction."""
from __future__ import annotations

import numpy as np
import pytest

import lveval
from lveval.error_analysis import TYPES, errors
from lveval.error_analysis.fix import Oracle, fix_for, mean_ap

from .planted import base_scene, cell_box, planted, planted_confusions, strip
from .tide_ref import ours_per_record, random_coco


def _all_fixed_ap(rep, sel):
    a = rep.assignments[sel]
    o = Oracle(a, rep.params.rec_thrs, rep.gt.num_categories)
    return mean_ap(o.apply(fix_for(a, TYPES, rep.gt.ann_cat)))


@pytest.mark.parametrize("seed", range(4))
def test_fixing_everything_gives_ap_one_generated(seed):
    gt, res = random_coco(seed)
    rep = errors(gt, res)
    for sel in ("fixed", "old"):
        assert rep[sel]["AP50"] < 1
        assert _all_fixed_ap(rep, sel) == pytest.approx(1.0, abs=1e-12)


def test_fixing_everything_gives_ap_one_bundled(coco_paths):
    rep = errors(coco_paths["gt"], coco_paths["bbox"])
    assert _all_fixed_ap(rep, "fixed") == pytest.approx(1.0, abs=1e-12) == _all_fixed_ap(rep, "old")
    from lveval.simulate import simulate
    rep = errors(lveval.data_path(), simulate(lveval.data_path(), seed=1, candidates_per_image=200))
    assert _all_fixed_ap(rep, "fixed") == pytest.approx(1.0, abs=1e-12) == _all_fixed_ap(rep, "old")


def test_perfect_detector_has_no_errors():
    gt, dets = base_scene()
    f = errors(strip(gt), dets)["fixed"]
    assert f["AP50"] == 1.0
    assert all(v == 0 for v in f["counts"].values())
    assert all(v == 0 for v in f["dAP"].values()) and all(v == 0 for v in f["dAP_special"].values())


@pytest.mark.parametrize("kind", TYPES)
def test_one_kind_of_mistake_shows_only_that_kind(kind):
    gt, dets = planted(kind)
    rep = errors(gt, dets)
    for sel in ("fixed", "old"):
        f = rep[sel]
        assert f["counts"][kind] == 8, f["counts"]
        assert all(f["counts"][t] == 0 for t in TYPES if t != kind), f["counts"]
        assert f["dAP"][kind] > 0
        assert all(abs(f["dAP"][t]) < 1e-15 for t in TYPES if t != kind), f["dAP"]
        assert (f["dAP_special"]["fn"] > 0) == (kind == "miss")
        assert (f["dAP_special"]["fp"] > 0) == (kind != "miss")


def _lvis_scene():
    """Two images. Image 1: one object of class 1; class 2 verified absent; class 3 neither (not
    evaluated). Image 2: one object of class 1, which is not exhaustively annotated there."""
    cats = [{"id": k, "name": f"c{k}", "synonyms": [f"c{k}"], "frequency": f} for k, f in ((1, "f"), (2, "c"), (3, "r"))]
    b = cell_box(0)
    images = [{"id": 1, "width": 640, "height": 480, "neg_category_ids": [2], "not_exhaustive_category_ids": []},
              {"id": 2, "width": 640, "height": 480, "neg_category_ids": [], "not_exhaustive_category_ids": [1]}]
    anns = [{"id": 1, "image_id": 1, "category_id": 1, "bbox": b, "area": b[2] * b[3]},
            {"id": 2, "image_id": 2, "category_id": 1, "bbox": b, "area": b[2] * b[3]}]
    dets = [{"image_id": 1, "category_id": 1, "bbox": b, "score": 0.9},            # true positive
            {"image_id": 1, "category_id": 3, "bbox": b, "score": 0.8},            # not evaluated: no error
            {"image_id": 1, "category_id": 2, "bbox": b, "score": 0.7},            # class 2 evaluated: cls
            {"image_id": 1, "category_id": 3, "bbox": cell_box(3), "score": 0.6},  # not evaluated: no error
            {"image_id": 2, "category_id": 1, "bbox": b, "score": 0.5},            # true positive
            {"image_id": 2, "category_id": 1, "bbox": cell_box(4), "score": 0.95}]  # not exhaustive: ignored
    return {"images": images, "categories": cats, "annotations": anns}, dets


def test_lvis_rules_federated_and_not_exhaustive_are_no_error():
    gt, dets = _lvis_scene()
    rep = errors(gt, dets)
    for sel in ("fixed", "old"):
        det, missed = ours_per_record(rep, sel, len(dets))
        assert det == [None, None, "cls", None, None, None]
        assert missed == set()
        f = rep[sel]
        assert f["counts"] == {"cls": 1, "loc": 0, "both": 0, "dupe": 0, "bkg": 0, "miss": 0}
        assert f["confusions"][0]["detected"] == 2 and f["confusions"][0]["true"] == 1
        # class 2 has no ground truth: its false positive costs no AP
        assert f["dAP"]["cls"] == 0.0
    # the same detection with its class made evaluated (verified absent) becomes an error
    gt["images"][0]["neg_category_ids"] = [2, 3]
    det, _ = ours_per_record(errors(gt, dets), "fixed", len(dets))
    assert det == [None, "cls", "cls", "bkg", None, None]


def test_ignored_detections_leave_the_figures_unchanged():
    """Adding detections the federated rule does not evaluate changes no count and no dAP."""
    gt, dets = planted_confusions({(10, 11): 2}, lvis=True)
    before = errors(gt, dets)["fixed"]
    for im in gt["images"]:
        im["neg_category_ids"] = [c for c in im["neg_category_ids"] if c != 15]
    present15 = {a["image_id"] for a in gt["annotations"] if a["category_id"] == 15}
    extra = [{"image_id": a["image_id"], "category_id": 15, "bbox": a["bbox"], "score": 0.97}
             for a in gt["annotations"] if a["image_id"] not in present15]
    assert len(extra) > 10
    after = errors(gt, dets + extra)["fixed"]
    before_no15 = errors(gt, dets)["fixed"]
    assert after["counts"] == before_no15["counts"]
    assert after["dAP"] == before_no15["dAP"] and after["AP50"] == before_no15["AP50"]
    assert before["counts"]["cls"] == 2


PAIRS = {(10, 11): 7, (11, 10): 4, (12, 14): 3, (15, 13): 2, (13, 12): 1}


@pytest.mark.parametrize("lvis", [True, False])
def test_planted_confusions_found_exactly(lvis):
    gt, dets = planted_confusions(PAIRS, lvis=lvis)
    rep = errors(gt, dets, top_confusions=50)
    for sel in ("fixed", "old"):
        f = rep[sel]
        got = {(c["detected"], c["true"]): c["count"] for c in f["confusions"]}
        assert got == PAIRS
        assert [c["count"] for c in f["confusions"]] == sorted(PAIRS.values(), reverse=True)
        assert f["counts"]["cls"] == sum(PAIRS.values())
        assert all(f["counts"][t] == 0 for t in TYPES if t != "cls")
        assert all(c["dAP"] > 0 for c in f["confusions"])
        if lvis:
            c0 = f["confusions"][0]
            assert c0["detected_name"] == "cat0" and c0["true_synonyms"] == ["cat1", "kind1"]
            freq = {c["id"]: c["frequency"] for c in gt["categories"]}
            want = {}
            for (x, y), n in PAIRS.items():
                want[(freq[y], freq[x])] = want.get((freq[y], freq[x]), 0) + n
            cb = f["confusion_by_frequency"]
            assert {(t, d): cb[t][d]["count"] for t in cb for d in cb[t] if cb[t][d]["count"]} == want


def test_breakdowns_add_up():
    from lveval.simulate import simulate
    rep = errors(lveval.data_path(), simulate(lveval.data_path(), seed=2, candidates_per_image=300))
    for sel in ("fixed", "old"):
        f = rep[sel]
        for t in TYPES:
            assert sum(b["counts"][t] for b in f["by_frequency"].values()) == f["counts"][t]
            assert sum(r["counts"][t] for r in f["per_class"]) == f["counts"][t]
        # group AP50 is the mean of its classes' AP50
        for g, b in f["by_frequency"].items():
            aps = [r["AP50"] for r in f["per_class"] if r["frequency"] == g and r["AP50"] >= 0]
            assert b["AP50"] == pytest.approx(np.mean(aps), abs=1e-12)
            assert b["num_classes"] == len(aps)
