"""The references' filters of annotations and results, each against the reference itself.

lvis-api 0.5.3 evaluates only annotations and results with 0 < area < inf (``LVIS.get_ann_ids``
with its default area range, called by ``LVISEval._prepare`` for both): an annotation outside it is
not ground truth and does not make its class positive on its image (the federated rule); a result
outside it is dropped after the per-image cap. pycocotools filters neither; it ignores crowd
annotations (``ignore = iscrowd``, whatever ``ignore`` the file has) and areas beyond its ranges.
"""
import copy

import numpy as np
import pytest

from lveval.metrics import evaluate
from lveval.simulate import simulate
from tests.support.differential import check_coco, check_lvis, close
from tests.support.reference import KEYS, run_coco, run_lvis

IMG = {"id": 1, "height": 100, "width": 100, "neg_category_ids": [], "not_exhaustive_category_ids": []}
CATS = [{"id": 1, "name": "a", "frequency": "f"}, {"id": 2, "name": "b", "frequency": "r"}]


def ann(i, box, area, cat=1, **kw):
    return dict(id=i, image_id=1, category_id=cat, bbox=list(box), area=area, **kw)


def det(box, score, cat=1):
    return {"image_id": 1, "category_id": cat, "bbox": list(box), "score": score}


def lvis_set(anns):
    return {"images": [dict(IMG)], "categories": copy.deepcopy(CATS), "annotations": anns}


def test_lvis_zero_area_annotation_is_not_ground_truth():
    # lvis-api: the area-0 annotation is dropped, the one detection matches the other -> AP 1.0
    gt = lvis_set([ann(1, (10, 10, 20, 20), 400), ann(2, (50, 50, 20, 20), 0)])
    res = [det((10, 10, 20, 20), 0.9)]
    ref, _ = run_lvis(gt, res)
    ours = evaluate(gt, res, protocols=["old"])
    assert ref["AP"] == pytest.approx(1.0)
    close(ours.old, ref, KEYS)
    assert "annotations with area 0 (LVIS rules drop them, as lvis-api does)" in ours.notices.skipped


def test_lvis_zero_area_annotation_leaves_the_positive_set():
    # class 2's only annotation has area 0 and the class is not in neg_category_ids: lvis-api no longer
    # evaluates class 2 on the image, so its false positive there does not count
    gt = lvis_set([ann(1, (10, 10, 20, 20), 400), ann(2, (50, 50, 20, 20), 0, cat=2)])
    res = [det((10, 10, 20, 20), 0.9), det((60, 60, 10, 10), 0.95, cat=2)]
    check_lvis(gt, res, cap=300, k=10_000)


def test_lvis_zero_area_every_fourth_annotation_of_the_bundled_subset(lvis_dataset, lvis_path):
    gt = copy.deepcopy(lvis_dataset)
    for a in gt["annotations"][::4]:
        a["area"] = 0
    res = simulate(lvis_path, seed=5, candidates_per_image=120)
    check_lvis(gt, res, cap=300, k=10_000)
    check_lvis(gt, res, cap=40, k=30)


@pytest.mark.parametrize("w,h", [(1e-200, 1e-200), (1e200, 1e200)], ids=["underflow", "overflow"])
def test_lvis_results_whose_box_area_is_zero_or_infinite(w, h):
    gt = lvis_set([ann(1, (10, 10, 20, 20), 400), ann(2, (50, 50, 20, 20), 400)])
    res = [det((10, 10, 20, 20), 0.9), det((50, 50, w, h), 0.95), det((50, 50, 20, 20), 0.5)]
    check_lvis(gt, res, cap=300, k=10_000)
    check_lvis(gt, res, cap=2, k=2)   # the degenerate result still takes a place under the caps


def test_lvis_empty_masks_in_results():
    from pycocotools import mask as mask_utils

    gt = lvis_set([ann(1, (10, 10, 20, 20), 400, segmentation=[[10, 10, 30, 10, 30, 30, 10, 30]])])
    full = mask_utils.merge(mask_utils.frPyObjects([[10, 10, 30, 10, 30, 30, 10, 30]], 100, 100))
    empty = mask_utils.encode(np.zeros((100, 100), np.uint8, order="F"))
    res = [{"image_id": 1, "category_id": 1, "score": s, "segmentation": {"size": [100, 100], "counts": m["counts"].decode()}}
           for s, m in ((0.95, empty), (0.9, full))]
    check_lvis(gt, res, cap=300, k=10_000, iou_type="segm")
    check_lvis(gt, res, cap=1, k=1, iou_type="segm")


def test_lvis_ignore_flag_and_zero_area_together():
    gt = lvis_set([ann(1, (10, 10, 20, 20), 400, ignore=1), ann(2, (50, 50, 20, 20), 0, ignore=1),
                   ann(3, (30, 60, 20, 20), 400)])
    res = [det((10, 10, 20, 20), 0.9), det((50, 50, 20, 20), 0.8), det((30, 60, 20, 20), 0.7)]
    check_lvis(gt, res, cap=300, k=10_000)


def test_lvis_degenerate_annotation_box_with_an_area_is_kept():
    # a zero-width box with a positive area in the file: lvis-api keeps it (the file's area decides)
    gt = lvis_set([ann(1, (10, 10, 0, 20), 50), ann(2, (50, 50, 20, 20), 400)])
    res = [det((10, 10, 1, 20), 0.9), det((50, 50, 20, 20), 0.8)]
    check_lvis(gt, res, cap=300, k=10_000)


def coco_set(anns):
    return {"images": [{"id": 1, "height": 100, "width": 100}],
            "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}], "annotations": anns}


@pytest.mark.parametrize("case", ["zero area", "tiny result", "huge result", "ignore without iscrowd",
                                  "crowd", "beyond the largest range"])
def test_coco_rules_filter_nothing_more_than_pycocotools(case):
    anns = [ann(1, (10, 10, 20, 20), 400), ann(2, (50, 50, 20, 20), 400)]
    res = [det((10, 10, 20, 20), 0.9), det((50, 50, 20, 20), 0.6), det((70, 10, 10, 10), 0.7)]
    if case == "zero area":
        anns[1]["area"] = 0
    elif case == "tiny result":
        res.append(det((50, 50, 1e-200, 1e-200), 0.95))
    elif case == "huge result":
        res.append(det((50, 50, 1e200, 1e200), 0.95))
    elif case == "ignore without iscrowd":
        anns[1]["ignore"] = 1           # pycocotools overwrites ignore with iscrowd
    elif case == "crowd":
        anns[1]["iscrowd"] = 1
    elif case == "beyond the largest range":
        anns[1]["area"] = 2e10          # above 1e5 ** 2, pycocotools' 'all' range
    for a in anns:
        a.setdefault("iscrowd", 0)
    check_coco(coco_set(anns), res)


def test_compat_lvis_drops_what_lvis_api_drops(lvis_dataset, lvis_path):
    import contextlib
    import io

    from lveval.compat import LVIS, LVISEval, LVISResults

    gt = copy.deepcopy(lvis_dataset)
    for a in gt["annotations"][::4]:
        a["area"] = 0
    res = simulate(lvis_path, seed=6, candidates_per_image=80)
    res[0]["bbox"][2:] = [1e-200, 1e-200]
    ref, _ = run_lvis(gt, res)
    ev = LVISEval(LVIS(copy.deepcopy(gt)), LVISResults(LVIS(copy.deepcopy(gt)), copy.deepcopy(res)), "bbox")
    with contextlib.redirect_stdout(io.StringIO()):
        ev.run()
    ours = {k.split("@")[0]: float(v) for k, v in ev.get_results().items()}
    close(ours, ref, KEYS)


def test_compat_coco_keeps_what_pycocotools_keeps():
    import contextlib
    import io

    from lveval.compat import COCO, COCOeval

    anns = [ann(1, (10, 10, 20, 20), 400, iscrowd=0), ann(2, (50, 50, 20, 20), 0, iscrowd=0)]
    res = [det((10, 10, 20, 20), 0.9), det((50, 50, 1e-200, 1e-200), 0.95)]
    ref, _ = run_coco(coco_set(anns), res)
    with contextlib.redirect_stdout(io.StringIO()):
        g = COCO()
        g.dataset = coco_set(copy.deepcopy(anns))
        g.createIndex()
        e = COCOeval(g, g.loadRes(copy.deepcopy(res)), "bbox")
        e.evaluate()
        e.accumulate()
        e.summarize()
    np.testing.assert_allclose(e.stats, [ref[k] for k in ref], atol=1e-12)
