"""Edge cases named in the acceptance list, each checked against a reference."""
import numpy as np
import pytest

from lveval.metrics import evaluate
from tests.support.gen import make_dataset
from tests.support.reference import COCO_KEYS, KEYS, run_coco, run_lvis


def _not_evaluated_det(gt):
    """A detection the LVIS rules drop: its class is neither present nor verified absent."""
    im = gt["images"][0]
    present = {a["category_id"] for a in gt["annotations"] if a["image_id"] == im["id"]}
    for c in gt["categories"]:
        if c["id"] not in present and c["id"] not in im["neg_category_ids"]:
            return {"image_id": im["id"], "category_id": c["id"], "bbox": [1, 1, 5, 5], "score": 0.5}
    return None


def test_empty_results_lvis_equals_reference_with_nothing_evaluated():
    for seed in range(50):
        gt, _ = make_dataset(seed, kind="lvis", n_images=3, n_cats=5)
        probe = _not_evaluated_det(gt)
        if probe is not None and gt["annotations"]:
            break
    ref, _ = run_lvis(gt, [probe], max_dets=300)
    ours = evaluate(gt, [])
    for k in KEYS:
        assert ours.old[k] == pytest.approx(ref[k], abs=1e-12), k
        assert ours.fixed[k] == pytest.approx(ref[k], abs=1e-12), k
    assert ours.old["AP"] == 0.0
    assert ours.pooled["AP"] == 0.0


def test_empty_results_coco(coco_paths):
    import json
    gt = json.load(open(coco_paths["gt"]))
    unused = max(c["id"] for c in gt["categories"]) + 1
    gt2 = dict(gt, categories=gt["categories"] + [{"id": unused, "name": "unused"}])
    probe = [{"image_id": gt["images"][0]["id"], "category_id": unused, "bbox": [1, 1, 5, 5], "score": 0.5}]
    ref, _ = run_coco(gt2, probe)
    ours = evaluate(gt2, [])
    for k in COCO_KEYS:
        assert ours.old[k] == pytest.approx(ref[k], abs=1e-12), k


def test_class_with_gt_but_no_detections_and_dets_without_gt():
    gt, res = make_dataset(11, kind="lvis", n_images=3, n_cats=4, max_gt=8, max_dets=20)
    with_gt = sorted({a["category_id"] for a in gt["annotations"]})
    dropped = with_gt[0]
    res = [r for r in res if r["category_id"] != dropped]
    # a class verified absent everywhere, with detections: evaluated, no GT, AP undefined
    new_id = max(c["id"] for c in gt["categories"]) + 1
    gt["categories"].append({"id": new_id, "name": "ghost", "frequency": "r"})
    for im in gt["images"]:
        im["neg_category_ids"].append(new_id)
    res += [{"image_id": gt["images"][0]["id"], "category_id": new_id, "bbox": [5, 5, 20, 20], "score": 0.99}]
    ref, _ = run_lvis(gt, res, max_dets=300)
    ours = evaluate(gt, res)
    for k in KEYS:
        assert ours.old[k] == pytest.approx(ref[k], abs=1e-9), k
    rows = {r["category_id"]: r for r in ours.per_class}
    assert rows[dropped]["AP_old"] == 0.0 and rows[dropped]["num_dets"] == 0
    assert rows[new_id]["AP_old"] == -1.0 and rows[new_id]["num_gt"] == 0


def test_not_exhaustive_false_positives_are_ignored():
    gt, res = make_dataset(5, kind="lvis", n_images=2, n_cats=3, max_gt=6, max_dets=15)
    for im in gt["images"]:
        im["not_exhaustive_category_ids"] = sorted({a["category_id"] for a in gt["annotations"]
                                                    if a["image_id"] == im["id"]})
    ref, _ = run_lvis(gt, res)
    ours = evaluate(gt, res)
    for k in KEYS:
        assert ours.old[k] == pytest.approx(ref[k], abs=1e-9), k
    # with every present class not exhaustive, unmatched detections cost nothing
    gt2 = dict(gt, images=[dict(im, not_exhaustive_category_ids=[]) for im in gt["images"]])
    assert evaluate(gt2, res).old["AP"] <= ours.old["AP"]


def test_image_without_annotations_and_crowd_regions(coco_paths):
    gt, res = make_dataset(8, kind="coco", n_images=4, n_cats=3, max_gt=8, max_dets=15)
    assert not [a for a in gt["annotations"] if a["image_id"] == gt["images"][-1]["id"]]
    for a in gt["annotations"][:3]:
        a["iscrowd"] = 1
    ref, e = run_coco(gt, res)
    ours = evaluate(gt, res)
    for k in COCO_KEYS:
        assert ours.old[k] == pytest.approx(ref[k], abs=1e-12), k


@pytest.mark.parametrize("k", [1, 3, 10 ** 6])
@pytest.mark.parametrize("n", [1, 5, 10 ** 6])
def test_caps_below_and_above_the_counts(n, k):
    gt, res = make_dataset(21, kind="lvis", n_images=3, n_cats=4, max_gt=8, max_dets=20)
    ours = evaluate(gt, res, max_dets_per_image=n, max_dets_per_class=k)
    ref, _ = run_lvis(gt, res, max_dets=n)
    for key in KEYS:
        assert ours.old[key] == pytest.approx(ref[key], abs=1e-9), key
    from tests.support.reference import top_k_per_class
    ref, _ = run_lvis(gt, top_k_per_class(res, k), max_dets=-1)
    for key in KEYS:
        assert ours.fixed[key] == pytest.approx(ref[key], abs=1e-9), key


def test_ties_keep_file_order_semantics():
    """All scores equal: the references break ties by file order; so must we."""
    gt, res = make_dataset(3, kind="lvis", n_images=3, n_cats=3, max_gt=6, max_dets=20, score_levels=1)
    ours = evaluate(gt, res, max_dets_per_image=4)
    ref, _ = run_lvis(gt, res, max_dets=4)
    for key in KEYS:
        assert ours.old[key] == pytest.approx(ref[key], abs=1e-9), key
    shuffled = list(reversed(res))
    ref2, _ = run_lvis(gt, shuffled, max_dets=4)
    ours2 = evaluate(gt, shuffled, max_dets_per_image=4)
    for key in KEYS:
        assert ours2.old[key] == pytest.approx(ref2[key], abs=1e-9), key


def test_inputs_as_columns_and_paths_agree(tmp_path, lvis_path):
    import orjson

    from lveval.simulate import simulate
    res = simulate(lvis_path, seed=5, candidates_per_image=100)
    p = tmp_path / "r.json"
    p.write_bytes(orjson.dumps(res))
    cols = {"image_id": np.array([r["image_id"] for r in res]),
            "category_id": np.array([r["category_id"] for r in res]),
            "score": np.array([r["score"] for r in res]),
            "bbox": np.array([r["bbox"] for r in res])}
    a = evaluate(lvis_path, str(p)).to_dict()
    b = evaluate(lvis_path, cols).to_dict()
    c = evaluate(lvis_path, res).to_dict()
    for d in (a, b, c):
        d.pop("inputs")
    assert a == b == c
