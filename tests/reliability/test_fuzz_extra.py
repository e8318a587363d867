"""More differential fuzzing against lvis-api 0.5.3 and pycocotools, aimed at what
tests/test_differential.py reaches only by chance: images where every absent class is verified
negative and many detections land on negative or unverified classes; LVIS "ignore" annotations;
crowd-heavy COCO images with detections inside large crowd regions; all scores tied (caps then
cut through ties); areas exactly on the small/medium/large boundaries; duplicated ground truth
with detections equal to it (IoU ties). Any disagreement fails.
"""
from __future__ import annotations

import logging

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.differential import check_coco, check_lvis
from tests.support.gen import make_dataset

SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)


@pytest.fixture(autouse=True, scope="module")
def quiet_notices():
    """lvis-api configures the root logger on import; keep lveval's expected notices out of the log."""
    log = logging.getLogger("lveval")
    level = log.level
    log.setLevel(logging.ERROR)
    yield
    log.setLevel(level)


# --- dataset edits -------------------------------------------------------------------------

def federate_heavily(gt, res, rng, p_move=0.35):
    """Most images verify every absent class as negative; a share of detections move to an absent
    class (a verified negative: false positive; otherwise: not evaluated); many present classes are
    marked not exhaustive."""
    cats = [c["id"] for c in gt["categories"]]
    present = {}
    for a in gt["annotations"]:
        present.setdefault(a["image_id"], set()).add(a["category_id"])
    absent = {}
    for im in gt["images"]:
        ab = [c for c in cats if c not in present.get(im["id"], set())]
        absent[im["id"]] = ab
        if rng.random() < 0.8:
            im["neg_category_ids"] = ab
        else:
            im["neg_category_ids"] = [c for c in ab if rng.random() < 0.5]
        pr = sorted(present.get(im["id"], set()))
        im["not_exhaustive_category_ids"] = [c for c in pr if rng.random() < 0.4]
    for r in res:
        ab = absent[r["image_id"]]
        if ab and rng.random() < p_move:
            r["category_id"] = int(ab[rng.integers(len(ab))])


def lvis_ignore(gt, rng, p):
    for a in gt["annotations"]:
        if rng.random() < p:
            a["ignore"] = 1


def crowdify(gt, res, rng, segm=False, p_range=(0.3, 1.0)):
    """Many crowd annotations, plus large crowd regions over clusters with detections inside them."""
    p = rng.uniform(*p_range)
    for a in gt["annotations"]:
        a["iscrowd"] = int(rng.random() < p)
    cats = [c["id"] for c in gt["categories"]]
    next_id = max([a["id"] for a in gt["annotations"]], default=0) + 1
    for im in gt["images"]:
        for _ in range(int(rng.integers(0, 3))):
            x, y = rng.uniform(0, im["width"] / 2), rng.uniform(0, im["height"] / 2)
            w, h = rng.uniform(20, im["width"] - x), rng.uniform(20, im["height"] - y)
            cat = int(rng.choice(cats))
            a = {"id": next_id, "image_id": im["id"], "category_id": cat, "iscrowd": 1,
                 "bbox": [round(x, 2), round(y, 2), round(w, 2), round(h, 2)], "area": round(w * h * 0.7, 2)}
            if segm:
                a["segmentation"] = [[x, y, x + w, y, x + w, y + h, x, y + h]]
            gt["annotations"].append(a)
            next_id += 1
            for _ in range(int(rng.integers(0, 5))):   # detections inside the crowd region
                bw, bh = rng.uniform(2, w), rng.uniform(2, h)
                bx, by = x + rng.uniform(0, w - bw), y + rng.uniform(0, h - bh)
                r = {"image_id": im["id"], "category_id": cat, "score": float(rng.choice([0.2, 0.5, 0.9]))}
                box = [round(bx, 2), round(by, 2), round(bw, 2), round(bh, 2)]
                if segm:
                    from pycocotools import mask as mask_utils
                    rle = mask_utils.frPyObjects([[bx, by, bx + bw, by, bx + bw, by + bh, bx, by + bh]],
                                                 im["height"], im["width"])[0]
                    r["segmentation"] = {"size": rle["size"], "counts": rle["counts"].decode()}
                else:
                    r["bbox"] = box
                res.append(r)


def area_edges(gt, res, rng):
    """Ground-truth areas and detection boxes exactly on (and next to) the 32^2 and 96^2 boundaries."""
    edges = [32.0 ** 2, 96.0 ** 2]
    for a in gt["annotations"]:
        if rng.random() < 0.5:
            a["area"] = float(rng.choice(edges)) + float(rng.choice([0.0, 0.0, -1e-9, 1e-9]))
    for r in res:
        if "bbox" in r and rng.random() < 0.4:
            s = float(rng.choice([32.0, 96.0]))
            r["bbox"][2:] = [s, s] if rng.random() < 0.5 else [s / 2, 2 * s]


def duplicate_gt(gt, res, rng):
    """Copies of some annotations (same box, new id) and detections exactly on them: IoU ties."""
    next_id = max([a["id"] for a in gt["annotations"]], default=0) + 1
    for a in list(gt["annotations"]):
        if rng.random() < 0.4:
            b = dict(a, id=next_id)
            next_id += 1
            gt["annotations"].insert(int(rng.integers(len(gt["annotations"]) + 1)), b)
            for _ in range(int(rng.integers(1, 3))):
                res.insert(int(rng.integers(len(res) + 1)),
                           {"image_id": a["image_id"], "category_id": a["category_id"], "bbox": list(a["bbox"]),
                            "score": float(rng.choice([0.3, 0.6]))})


# --- LVIS ----------------------------------------------------------------------------------

@settings(max_examples=120, **SETTINGS)
@given(seed=st.integers(0, 2 ** 31), cap=st.integers(1, 10), k=st.integers(1, 12),
       n_images=st.integers(1, 5), n_cats=st.integers(2, 6))
def test_lvis_federated_negatives_with_detections(seed, cap, k, n_images, n_cats):
    gt, res = make_dataset(seed, kind="lvis", n_images=n_images, n_cats=n_cats, max_dets=15)
    federate_heavily(gt, res, np.random.default_rng(seed + 1))
    if not res:
        return
    check_lvis(gt, res, cap, k)


@settings(max_examples=80, **SETTINGS)
@given(seed=st.integers(0, 2 ** 31), cap=st.integers(1, 8), k=st.integers(1, 10),
       p_ignore=st.sampled_from([0.2, 0.6, 1.0]))
def test_lvis_ignore_flag(seed, cap, k, p_ignore):
    gt, res = make_dataset(seed, kind="lvis", n_images=3, n_cats=4, max_gt=8)
    lvis_ignore(gt, np.random.default_rng(seed + 2), p_ignore)
    if not res:
        return
    check_lvis(gt, res, cap, k)


@settings(max_examples=100, **SETTINGS)
@given(seed=st.integers(0, 2 ** 31), kind=st.sampled_from(["lvis", "coco"]), cap=st.integers(1, 6),
       k=st.integers(1, 8))
def test_all_scores_tied(seed, kind, cap, k):
    """One score level: the per-image cap and the per-class budget cut through ties (file order decides)."""
    gt, res = make_dataset(seed, kind=kind, n_images=3, n_cats=3, max_dets=14, score_levels=1)
    if not res:
        return
    if kind == "lvis":
        federate_heavily(gt, res, np.random.default_rng(seed + 3), p_move=0.2)
        check_lvis(gt, res, cap, k)
    else:
        check_coco(gt, res, cap=cap)


@settings(max_examples=80, **SETTINGS)
@given(seed=st.integers(0, 2 ** 31), kind=st.sampled_from(["lvis", "coco"]), cap=st.integers(2, 10))
def test_area_boundaries_and_duplicate_ground_truth(seed, kind, cap):
    gt, res = make_dataset(seed, kind=kind, n_images=2, n_cats=3, max_gt=6)
    rng = np.random.default_rng(seed + 4)
    area_edges(gt, res, rng)
    duplicate_gt(gt, res, rng)
    if not res:
        return
    if kind == "lvis":
        check_lvis(gt, res, cap, cap)
    else:
        check_coco(gt, res, cap=100)


# --- COCO crowd ----------------------------------------------------------------------------

@settings(max_examples=120, **SETTINGS)
@given(seed=st.integers(0, 2 ** 31), n_images=st.integers(1, 4), n_cats=st.integers(1, 4),
       cap=st.sampled_from([100, 3]))
def test_coco_crowd_heavy(seed, n_images, n_cats, cap):
    gt, res = make_dataset(seed, kind="coco", n_images=n_images, n_cats=n_cats, max_dets=12)
    crowdify(gt, res, np.random.default_rng(seed + 5))
    if not res:
        return
    check_coco(gt, res, cap=cap)


@settings(max_examples=20, **SETTINGS)
@given(seed=st.integers(0, 2 ** 31))
def test_coco_crowd_heavy_segm(seed):
    gt, res = make_dataset(seed, kind="coco", n_images=2, n_cats=2, segm=True, max_dets=8)
    crowdify(gt, res, np.random.default_rng(seed + 6), segm=True, p_range=(0.2, 0.6))
    if not res:
        return
    check_coco(gt, res, iou_type="segm")


@settings(max_examples=20, **SETTINGS)
@given(seed=st.integers(0, 2 ** 31), cap=st.integers(1, 6))
def test_lvis_segm_federated(seed, cap):
    gt, res = make_dataset(seed, kind="lvis", n_images=2, n_cats=3, segm=True, max_dets=8)
    federate_heavily(gt, res, np.random.default_rng(seed + 7))
    if not res:
        return
    check_lvis(gt, res, cap, cap, iou_type="segm")
