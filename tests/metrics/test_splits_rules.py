"""Class splits, dataset rules without frequencies, lenient ground truth, and bad settings."""
from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from lveval import evaluate
from lveval.cli import main
from lveval.simulate import simulate
from tests.support.gen import make_dataset
from tests.support.pooled import pooled_reference
from tests.support.reference import run_coco, run_lvis


def restrict(gt: dict, res: list, cat_ids: set) -> tuple[dict, list]:
    """Ground truth and results of the classes ``cat_ids`` only (image-level lists filtered too)."""
    g = copy.deepcopy(gt)
    g["categories"] = [c for c in g["categories"] if c["id"] in cat_ids]
    g["annotations"] = [a for a in g["annotations"] if a["category_id"] in cat_ids]
    for im in g["images"]:
        for k in ("neg_category_ids", "not_exhaustive_category_ids"):
            if k in im:
                im[k] = [c for c in im[k] if c in cat_ids]
    return g, [r for r in res if r["category_id"] in cat_ids]


@pytest.fixture(scope="module")
def lvis_sim(lvis_dataset):
    return simulate(lvis_dataset, seed=11, candidates_per_image=300)


def _split_ids(gt, names):
    cats = {c["name"]: c["id"] for c in gt["categories"]}
    return {cats[n] for n in names}


@pytest.mark.reference
def test_split_equals_restricted_evaluation(lvis_dataset, lvis_sim, tmp_path):
    names = sorted({c["name"] for c in lvis_dataset["categories"] if c["frequency"] == "c"})[:40]
    names += [c["name"] for c in lvis_dataset["categories"] if c["frequency"] == "f"][:25]
    ids = _split_ids(lvis_dataset, names)
    f = tmp_path / "novel.txt"
    f.write_text("\n".join(n.upper().replace("_", " ") for n in names[:30]) + "\n\n"   # names, any case
                 + "\n".join(str(i) for i in sorted(_split_ids(lvis_dataset, names[30:]))))    # and ids
    full = evaluate(lvis_dataset, lvis_sim, splits={"novel": str(f)}, max_dets_per_class=200)
    g, r = restrict(lvis_dataset, lvis_sim, ids)
    # AP-Fixed treats classes independently: the split is the restricted evaluation, exactly
    sub = evaluate(g, r, protocols=["fixed", "pooled"], max_dets_per_class=200)
    for key in ("AP", "AP50", "AP75"):
        assert full.fixed[key + "_novel"] == sub.fixed[key], key
    # AP-Pool over the split: the paper's pool of those classes (straightforward reference)
    pool = pooled_reference(g, _top_k(r, 200))
    assert full.pooled["AP_novel"] == pytest.approx(pool["all"], abs=1e-12)
    # AP-Old: the class mean of the full evaluation (the cap is taken over all classes, as for APr)
    aps = [row["AP_old"] for row in full.per_class if row["category_id"] in ids and row["AP_old"] > -1]
    assert full.old["AP_novel"] == pytest.approx(float(np.mean(aps)), abs=1e-12)
    # ... which is the restricted evaluation when the cap does not bind
    nocap = evaluate(lvis_dataset, lvis_sim, protocols=["old"], splits={"novel": str(f)}, max_dets_per_image=-1)
    ref, _ = run_lvis(g, r, max_dets=-1)
    for key in ("AP", "AP50", "AP75"):
        assert nocap.old[key + "_novel"] == pytest.approx(ref[key], abs=1e-12), key


def _top_k(res, k):
    by = {}
    for i, x in enumerate(res):
        by.setdefault(x["category_id"], []).append(i)
    keep = set()
    for idx in by.values():
        keep.update(sorted(idx, key=lambda i: res[i]["score"], reverse=True)[:k])
    return [x for i, x in enumerate(res) if i in keep]


def test_split_of_frequency_groups_equals_their_keys(lvis_dataset, lvis_sim):
    r = evaluate(lvis_dataset, lvis_sim, splits={"rare": "r", "rc": "r+c"})
    assert r.old["AP_rare"] == r.old["APr"] and r.fixed["AP_rare"] == r.fixed["APr"]
    assert r.pooled["AP_rare"] == r.pooled["APr"]
    assert r.params.to_dict()["splits"] == {"rare": "r", "rc": "r+c"}


@pytest.mark.reference
def test_federated_without_frequencies(tmp_path):
    """Negative labels apply without r/c/f: the figures equal lvis-api's (given any frequencies), and
    dropping the negative labels changes them as the federated rule says."""
    for seed in range(8):
        gt, res = make_dataset(seed, kind="lvis", n_images=5, n_cats=4, max_dets=16)
        plain = copy.deepcopy(gt)
        for c in plain["categories"]:
            del c["frequency"]
        ours = evaluate(plain, res, protocols=["old"])
        assert not {"APr", "APc", "APf"} & set(ours.old)
        ref, _ = run_lvis(gt, res)
        for k in ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR"):
            assert ours.old[k] == pytest.approx(ref[k], abs=1e-12), (seed, k)
        # without the negative labels, detections of verified-absent classes are not evaluated
        no_neg = copy.deepcopy(plain)
        for im in no_neg["images"]:
            im["neg_category_ids"] = []
        ref2, _ = run_lvis({**copy.deepcopy(gt), "images": no_neg["images"]}, res)
        assert evaluate(no_neg, res, protocols=["old"]).old["AP"] == pytest.approx(ref2["AP"], abs=1e-12)


def test_dataset_coco_says_it_drops_negative_labels(lvis_dataset, lvis_sim):
    r = evaluate(lvis_dataset, lvis_sim, dataset="coco", protocols=["old"])
    assert any("neg_category_ids" in w and "not used" in w for w in r.notices.warnings)
    assert r.params.max_dets_per_image == 100   # pycocotools' limit, per image and class


@pytest.mark.reference
def test_boxes_without_image_sizes_evaluate_as_pycocotools(coco_paths):
    with open(coco_paths["gt"]) as f:
        gt = json.load(f)
    with open(coco_paths["bbox"]) as f:
        res = json.load(f)
    ref, _ = run_coco(gt, res)
    for im in gt["images"]:
        del im["width"], im["height"]
    r = evaluate(gt, res, protocols=["old"])
    for k, v in ref.items():
        assert r.old[k] == pytest.approx(v, abs=1e-12), k
    assert sum("no width/height" in w for w in r.notices.warnings) == 1


@pytest.mark.reference
def test_mask_ground_truth_without_bbox_evaluates_as_pycocotools(coco_paths):
    with open(coco_paths["gt"]) as f:
        gt = json.load(f)
    with open(coco_paths["segm"]) as f:
        res = json.load(f)
    ref, _ = run_coco(gt, res, iou_type="segm")
    for a in gt["annotations"]:
        del a["bbox"]
    r = evaluate(gt, res, iou_type="segm", protocols=["old"])
    for k, v in ref.items():
        assert r.old[k] == pytest.approx(v, abs=1e-12), k
    assert r.notices.flagged["annotations without bbox (box derived from the mask)"] == len(gt["annotations"])


def test_annotation_id_zero_is_evaluated_and_said():
    gt, res = make_dataset(3, kind="coco", n_images=2, n_cats=2)
    gt["annotations"][0]["id"] = 0
    perfect = [{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"], "score": 1.0}
               for a in gt["annotations"] if not a.get("iscrowd")]
    r = evaluate(gt, perfect, protocols=["old"])
    assert r.old["AP"] == pytest.approx(1.0, abs=1e-12)
    ref, _ = run_coco(gt, perfect)
    assert ref["AP"] < 1.0   # what the notice says: pycocotools takes a match to id 0 for no match
    assert any("id 0" in w and "pycocotools" in w for w in r.notices.warnings)


@pytest.mark.parametrize("args, needle", [
    (["--iou-thrs", "0.9,0.5"], "iou_thresholds"),
    (["--iou-thrs", "0:1.5:0.1"], "iou_thresholds"),
    (["--iou-thrs", "a,b"], "iou-thrs"),
    (["--rec-thrs", "0,2"], "rec_thresholds"),
    (["--area-ranges", ""], "area-ranges"),
    (["--area-ranges", "all=5:1"], "area_ranges"),
    (["--area-ranges", "all=0:1e10,small"], "area-ranges"),
    (["--area-ranges", "all=0:1e10,rough=0:10"], "area_ranges"),
    (["--max-dets", "10,1"], "max_dets"),
    (["--max-dets", "x"], "max-dets"),
    (["--split", "novel"], "split"),
    (["--split", "novel=not_a_class_name"], "unknown class"),
    (["--split", "a b=r"], "splits"),
    (["--protocols", "bogus"], "protocols"),
])
def test_bad_settings_exit_2_with_one_line(args, needle, lvis_path, tmp_path, capsys):
    res = tmp_path / "r.json"
    res.write_text(json.dumps(simulate(lvis_path, seed=0, candidates_per_image=5)))
    out = tmp_path / "out.json"
    rc = main(["evaluate", lvis_path, str(res), "--json", str(out), *args])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith("lveval: error:") and needle in err[0], err
    assert not out.exists()
