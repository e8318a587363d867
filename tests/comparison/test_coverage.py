"""Calibration of the intervals: nominal 95% paired bootstrap intervals of AP-Fixed and AP-Pool
differences cover the population difference in at least 90% of 200 simulated evaluation sets.

The population is one very large simulated set (20,000 images, two simulated detectors of known
different quality); its difference is the target. Each evaluation set is 100 images drawn from it
without replacement, compared with ``lveval.compare`` (200 replicates). AP-Fixed runs without a
per-class budget: on 100 images the default budget never binds, on the population it would, and the
two would then not estimate the same quantity. Takes about 20 s of CPU (18 s measured on 2 cores:
5 s to simulate and evaluate the population, 0.1 s per evaluation set).
"""
from __future__ import annotations

import numpy as np

import lveval

N_POP, N_SET, N_SETS, N_REP, N_CATS = 20_000, 100, 200, 200, 4


def _population(seed: int = 0):
    """COCO-style ground truth and the results of two detectors; B finds more objects and separates
    true from false positives better. Scores are continuous (no ties)."""
    rng = np.random.default_rng(seed)
    n_obj = rng.poisson(2.0, N_POP)
    img = np.repeat(np.arange(N_POP), n_obj)
    G = len(img)
    cat = rng.integers(1, N_CATS + 1, G)
    wh = rng.uniform(20, 200, (G, 2))
    xy = rng.uniform(0, 400, (G, 2))
    images = [{"id": int(i + 1), "height": 640, "width": 640} for i in range(N_POP)]
    anns = [{"id": int(k + 1), "image_id": int(img[k] + 1), "category_id": int(cat[k]),
             "bbox": [float(xy[k, 0]), float(xy[k, 1]), float(wh[k, 0]), float(wh[k, 1])],
             "area": float(wh[k, 0] * wh[k, 1]), "iscrowd": 0} for k in range(G)]
    gt = {"images": images, "annotations": anns,
          "categories": [{"id": c, "name": f"c{c}"} for c in range(1, N_CATS + 1)]}
    models = {}
    for name, (recall, tp_a, fp_n) in {"A": (0.75, 3.0, 1.5), "B": (0.8, 4.0, 1.5)}.items():
        r = np.random.default_rng(seed + (1 if name == "A" else 2))
        found = r.random(G) < recall
        jit = r.normal(0, 0.08, (G, 4)) * np.c_[wh, wh]
        box = np.c_[xy, wh] + jit
        box[:, 2:] = np.maximum(box[:, 2:], 2)
        s_tp = r.beta(tp_a, 2.0, G)
        n_fp = r.poisson(fp_n, N_POP)
        f_img = np.repeat(np.arange(N_POP), n_fp)
        F = len(f_img)
        f_box = np.c_[r.uniform(0, 400, (F, 2)), r.uniform(20, 200, (F, 2))]
        rows = [(img[k] + 1, cat[k], box[k], s_tp[k]) for k in np.flatnonzero(found)]
        rows += [(f_img[k] + 1, r.integers(1, N_CATS + 1), f_box[k], r.beta(2.0, 3.0)) for k in range(F)]
        models[name] = [{"image_id": int(i), "category_id": int(c), "bbox": [float(v) for v in b],
                         "score": float(s)} for i, c, b, s in rows]
    return gt, models


def _subset(gt, models, ids):
    keep = {int(i) for i in ids}
    sub = {"images": [im for im in gt["images"] if im["id"] in keep],
           "annotations": [a for a in gt["annotations"] if a["image_id"] in keep],
           "categories": gt["categories"]}
    return sub, {k: [r for r in v if r["image_id"] in keep] for k, v in models.items()}


def test_intervals_cover_the_population_difference():
    gt, models = _population()
    opts = {"protocols": ("fixed", "pooled"), "max_dets_per_class": -1}
    pop = lveval.compare(gt, models, bootstrap=0, **opts).differences[0]
    target = {p: pop[p]["AP"]["delta"] for p in ("fixed", "pooled")}
    assert target["fixed"] > 0.01 and target["pooled"] > 0.01      # a real, known difference
    # index the population once, then draw the evaluation sets
    by_img_gt, by_img = {}, {k: {} for k in models}
    for a in gt["annotations"]:
        by_img_gt.setdefault(a["image_id"], []).append(a)
    for k, v in models.items():
        for r in v:
            by_img[k].setdefault(r["image_id"], []).append(r)
    rng = np.random.default_rng(123)
    cover = {p: 0 for p in target}
    width = {p: [] for p in target}
    for s in range(N_SETS):
        ids = np.sort(rng.choice(np.arange(1, N_POP + 1), N_SET, replace=False))
        sub = {"images": [gt["images"][i - 1] for i in ids],
               "annotations": [a for i in ids for a in by_img_gt.get(int(i), [])],
               "categories": gt["categories"]}
        res = {k: [r for i in ids for r in by_img[k].get(int(i), [])] for k in models}
        d = lveval.compare(sub, res, bootstrap=N_REP, seed=s, **opts).differences[0]
        for p in target:
            f = d[p]["AP"]
            cover[p] += f["low"] <= target[p] <= f["high"]
            width[p].append(f["high"] - f["low"])
    print(f"coverage of {N_SETS} sets: " + ", ".join(f"{p} {cover[p]} (mean width {np.mean(width[p]):.4f}, "
                                                     f"target {target[p]:.4f})" for p in target))
    for p in target:
        assert cover[p] >= 0.9 * N_SETS, (p, cover[p], target[p], float(np.mean(width[p])))
