"""NMS (Table 12) against a sequential reference; class subsets (Table 3) against evaluating
the restricted files."""
import numpy as np
import pytest

from lveval.analysis.common import Session
from lveval.analysis.nms import greedy_keep, group_pairs, nms, nms_sensitivity, parse_thresholds
from lveval.analysis.subsets import subsets
from lveval.exceptions import InputError
from lveval.match import box_iou_pairs
from lveval.metrics import evaluate
from tests.support.gen import make_dataset


def _reference_nms(boxes, scores, groups, thr):
    """Textbook greedy class-wise NMS, one box at a time."""
    keep = np.zeros(len(scores), bool)
    for g in np.unique(groups):
        idx = np.flatnonzero(groups == g)
        idx = idx[np.lexsort((idx, -scores[idx]))]
        kept = []
        for a in idx:
            if all(box_iou_pairs(boxes[[a]], boxes[[b]], np.zeros(1, bool))[0] <= thr for b in kept):
                kept.append(a)
        keep[kept] = True
    return keep


def _clustered(seed, n=400):
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 3, n)
    cat = rng.integers(0, 4, n)
    centers = rng.uniform(20, 80, (6, 2))
    c = centers[rng.integers(0, 6, n)]
    wh = rng.uniform(8, 30, (n, 2))
    xy = c + rng.normal(0, 4, (n, 2)) - wh / 2
    score = np.round(rng.uniform(0, 1, n), 2)   # ties happen
    return img, cat, np.c_[xy, wh], score


@pytest.mark.parametrize("seed", range(4))
def test_nms_equals_sequential_reference(seed):
    img, cat, box, score = _clustered(seed)
    gt = {"images": [{"id": i, "height": 100, "width": 100} for i in range(3)],
          "annotations": [], "categories": [{"id": k, "name": str(k)} for k in range(4)]}
    res = {"image_id": img, "category_id": cat, "score": score, "bbox": box}
    s = Session.load(gt, res, dataset="coco")
    ths = [0.1, 0.3, 0.5, 0.7, 0.9]
    got = nms(s, ths)
    for t in ths:
        assert np.array_equal(got[t], _reference_nms(box, score, img * 10 + cat, t)), t


def test_greedy_keep_chain():
    # a > b > c > d, each overlapping only the next: a kept, b suppressed, c kept, d suppressed
    i, j = np.array([0, 1, 2]), np.array([1, 2, 3])
    assert greedy_keep(4, i, j).tolist() == [True, False, True, False]


def test_group_pairs_lists_every_pair_once():
    g = np.array([0, 0, 0, 1, 2, 2, 2, 2])
    pairs = sorted((int(a), int(b)) for i, j in group_pairs(g) for a, b in zip(i, j))
    expect = sorted((a, b) for a in range(8) for b in range(a + 1, 8) if g[a] == g[b])
    assert pairs == expect


def test_nms_sensitivity_equals_evaluating_the_kept_boxes():
    gt, res = make_dataset(4, kind="lvis", n_images=4, n_cats=5, max_gt=8, max_dets=30, score_levels=8)
    s = Session.load(gt, res, max_dets_per_image=6, max_dets_per_class=5)
    out = nms_sensitivity(s, [0.5, None])
    keep = nms(s, [0.5])[0.5]
    kept = [res[i] for i in np.flatnonzero(keep)]
    ref = evaluate(gt, kept, protocols=("old", "fixed"), max_dets_per_image=6, max_dets_per_class=5)
    assert out.rows[0].old == ref.old and out.rows[0].fixed == ref.fixed
    raw = evaluate(gt, res, protocols=("old", "fixed"), max_dets_per_image=6, max_dets_per_class=5)
    assert out.rows[1].num_detections == len(res) and out.rows[1].old == raw.old


def test_parse_thresholds():
    assert parse_thresholds("0.5, none,0.9") == [0.5, None, 0.9]
    for bad in ("", "1.5", "x"):
        with pytest.raises(InputError):
            parse_thresholds(bad)


def _restrict(gt, res, freqs):
    """Ground truth and results restricted to the classes of the given frequencies."""
    keep = {c["id"] for c in gt["categories"] if c["frequency"] in freqs}
    g = dict(gt, categories=[c for c in gt["categories"] if c["id"] in keep],
             annotations=[a for a in gt["annotations"] if a["category_id"] in keep],
             images=[dict(im, neg_category_ids=[c for c in im["neg_category_ids"] if c in keep],
                          not_exhaustive_category_ids=[c for c in im["not_exhaustive_category_ids"] if c in keep])
                     for im in gt["images"]])
    return g, [r for r in res if r["category_id"] in keep]


@pytest.mark.parametrize("seed", [1, 6])
def test_subsets_equal_evaluating_restricted_files(seed):
    gt, res = make_dataset(seed, kind="lvis", n_images=5, n_cats=9, max_gt=10, max_dets=30, score_levels=8)
    s = Session.load(gt, res)
    out = subsets(s, caps=(4, -1))
    assert out.caps == [4, None]
    for row in out.subsets:
        g, r = _restrict(gt, res, row.subset.lower().replace("+", ""))
        assert row.num_classes == len(g["categories"])
        assert row.num_instances == len(g["annotations"])
        if not r or not g["annotations"]:
            continue
        for cap, key in ((4, "4"), (-1, "inf")):
            ref = evaluate(g, r, protocols=("old",), max_dets_per_image=cap).old["AP"]
            assert row.AP[key] == pytest.approx(ref, abs=1e-12), (row.subset, cap)


def test_subsets_need_frequencies(run_cli, tmp_path):
    import json
    gt, res = make_dataset(0, kind="coco")
    (tmp_path / "g.json").write_text(json.dumps(gt))
    (tmp_path / "r.json").write_text(json.dumps(res))
    rc, _, err = run_cli("subsets", tmp_path / "g.json", tmp_path / "r.json")
    assert rc == 2 and "frequenc" in err
