"""Calibration labels against the references' own per-image matching (lvis-api 0.5.3, pycocotools)."""
from __future__ import annotations

import numpy as np
import pytest

from lveval.calibrate import CalibrationSet, Labeller, calibration_samples, subset_dataset, subset_results
from lveval.calibrate.labels import load_and_bind
from tests.support.gen import make_dataset
from tests.support.reference import run_coco, run_lvis


def _tag(results):
    """Give every result its row number, which the references keep in their annotation dicts."""
    return [dict(r, _row=i) for i, r in enumerate(results)]


def _reference_labels_lvis(gt, results, iou):
    _, e = run_lvis(gt, _tag(results), max_dets=-1)
    t = int(np.flatnonzero(np.isclose(e.params.iou_thrs, iou))[0])
    out = {}
    for ev in e.eval_imgs:
        if ev is None or list(ev["area_rng"]) != list(e.params.area_rng[0]):
            continue
        for j, dt_id in enumerate(ev["dt_ids"]):
            if not ev["dt_ignore"][t][j]:
                out[e.lvis_dt.anns[dt_id]["_row"]] = bool(ev["dt_matches"][t][j] != 0)
    return out


def _reference_labels_coco(gt, results, iou):
    _, e = run_coco(gt, _tag(results), max_dets=(1, 10, 10_000))
    t = int(np.flatnonzero(np.isclose(e.params.iouThrs, iou))[0])
    out = {}
    for ev in e.evalImgs:
        if ev is None or list(ev["aRng"]) != list(e.params.areaRng[0]):
            continue
        for j, dt_id in enumerate(ev["dtIds"]):
            if not ev["dtIgnore"][t][j]:
                out[e.cocoDt.anns[dt_id]["_row"]] = bool(ev["dtMatches"][t][j] != 0)
    return out


def _ours(gt, results, iou, **kw):
    _, d, s = calibration_samples(gt, results, iou=iou, **kw)
    return {int(d.record[r]): bool(y) for r, y in zip(s.rows, s.label)}


@pytest.mark.parametrize("iou", [0.75, 0.5, 0.9])
@pytest.mark.parametrize("seed", range(6))
def test_labels_equal_lvis_api_matches(seed, iou):
    gt, res = make_dataset(seed, kind="lvis", n_images=6, n_cats=5, max_gt=8, max_dets=20)
    want = _reference_labels_lvis(gt, res, iou)
    assert _ours(gt, res, iou) == want
    assert want  # the data has labelled detections


@pytest.mark.parametrize("seed", range(4))
def test_labels_equal_pycocotools_matches(seed):
    gt, res = make_dataset(seed, kind="coco", n_images=6, n_cats=4, max_gt=8, max_dets=20)
    want = _reference_labels_coco(gt, res, 0.75)
    assert _ours(gt, res, 0.75) == want
    assert want


def test_ignored_and_unevaluated_detections_take_no_part(sim_gt, test_set):
    """LVIS: only classes verified on the image are labelled; not-exhaustive misses are ignored."""
    g, d = sim_gt, test_set.dets
    s = test_set.labeller.samples()
    m = test_set.labeller.evaluator.matching_for(np.ones(len(d), bool))
    matched, ignored = (x[0] for x in m.flags(0))
    assert ignored.any()  # the data has ignored detections
    assert set(s.rows.tolist()) == set(m.det[~ignored].tolist())
    keys = d.img_idx * g.num_categories + d.cat_idx
    verified = np.union1d(np.unique(g.ann_key), g.neg_keys)
    assert np.isin(keys[s.rows], verified).all()
    assert (~np.isin(keys, verified)).sum() > len(d) // 2  # most detections are not evaluated at all
    np.testing.assert_array_equal(s.label, matched[np.isin(m.det, s.rows)])


def test_only_top_k_per_class_is_labelled(sim_gt, sim_test):
    g, d = load_and_bind(sim_gt, sim_test)
    full = Labeller(g, d).samples()
    k = 5
    top = Labeller(g, d, max_dets_per_class=k).samples()
    assert np.bincount(d.cat_idx[top.rows]).max() <= k
    assert set(top.rows) < set(full.rows)
    for c in np.unique(d.cat_idx[top.rows])[:50]:
        rows = np.flatnonzero(d.cat_idx == c)
        best = rows[np.lexsort((rows, -d.score[rows]))][:k]
        assert set(top.rows[d.cat_idx[top.rows] == c]) <= set(best)


def test_subset_labels_equal_labels_of_the_subset_as_its_own_data_set(lvis_dataset, sim_test):
    """One matching pass serves every k-fold training set: labelling rows of some images equals
    labelling a ground truth and results cut down to those images."""
    ids = sorted(im["id"] for im in lvis_dataset["images"])[::3]
    whole = CalibrationSet.load(lvis_dataset, sim_test, max_dets_per_class=3)
    mask = np.isin(whole.dets.img_id, ids)
    a = whole.labeller.samples(mask)
    sub_gt = subset_dataset(lvis_dataset, ids)
    sub = CalibrationSet.load(sub_gt, subset_results(sim_test, ids), max_dets_per_class=3)
    b = sub.labeller.samples()

    def keyed(cs, s):
        d = cs.dets
        return sorted(zip(d.img_id[s.rows].tolist(), d.cat_id[s.rows].tolist(), d.score[s.rows].tolist(),
                          d.bbox[s.rows, 0].tolist(), s.label.tolist()))

    assert len(b) > 100 and keyed(whole, a) == keyed(sub, b)
    # and the per-class budget is applied within the subset, not inherited from the whole set
    assert len(a) > len(whole.labeller.samples().take(np.isin(whole.dets.img_id[whole.labeller.samples().rows],
                                                                ids)))


def test_bad_iou_is_an_input_error(sim_gt, test_set):
    from lveval.exceptions import InputError

    with pytest.raises(InputError, match="IoU"):
        Labeller(sim_gt, test_set.dets, iou=0.0)
