"""A straightforward AP-Pool, written from the algorithm's description on top of lvis-api's matching.

For each pool: take lvis-api's per-(image, class) evaluation records (area
'all'), images ascending and classes ascending inside an image; concatenate
scores, matches and ignore flags; stable-sort by descending score; accumulate
TP/FP; recall over the pool's non-ignored ground truth; precision made
monotone by an explicit right-to-left loop; sample at the 101 recall
thresholds; average over IoU thresholds and recall thresholds.
"""
import copy

import numpy as np
from lvis import LVISEval, LVISResults

from tests.support.reference import lvis_gt


def pooled_reference(dataset, results, iou_type="bbox"):
    g = lvis_gt(dataset)
    res = LVISResults(g, copy.deepcopy(results), max_dets=-1)
    e = LVISEval(g, res, iou_type)
    e.params.max_dets = -1
    e.evaluate()
    p = e.params
    n_img = len(p.img_ids)
    n_area = len(p.area_rng)
    records = []
    for ci, _cat in enumerate(p.cat_ids):
        for ii in range(n_img):
            r = e.eval_imgs[ci * n_area * n_img + ii]   # area index 0 ('all')
            if r is not None:
                records.append(r)
    records.sort(key=lambda r: (r["image_id"], r["category_id"]))
    freq = {c["id"]: c["frequency"] for c in dataset["categories"]}
    out = {}
    for pool in ("all", "r", "c", "f"):
        recs = [r for r in records if pool == "all" or freq[r["category_id"]] == pool]
        num_gt = sum(int(np.count_nonzero(r["gt_ignore"] == 0)) for r in recs)
        if num_gt == 0:
            out[pool] = -1.0
            continue
        if recs:
            scores = np.concatenate([np.asarray(r["dt_scores"], float) for r in recs])
            dt_m = np.concatenate([r["dt_matches"] for r in recs], axis=1)
            dt_ig = np.concatenate([r["dt_ignore"] for r in recs], axis=1)
        else:
            scores, dt_m, dt_ig = np.zeros(0), np.zeros((len(p.iou_thrs), 0)), np.zeros((len(p.iou_thrs), 0))
        order = np.argsort(-scores, kind="mergesort")
        dt_m, dt_ig = dt_m[:, order], dt_ig[:, order].astype(bool)
        prec = np.zeros((len(p.iou_thrs), len(p.rec_thrs)))
        for t in range(len(p.iou_thrs)):
            tp = np.cumsum((dt_m[t] != 0) & ~dt_ig[t]).astype(float)
            fp = np.cumsum((dt_m[t] == 0) & ~dt_ig[t]).astype(float)
            rc = tp / num_gt
            pr = list(tp / (fp + tp + np.spacing(1)))
            for i in range(len(pr) - 1, 0, -1):
                if pr[i] > pr[i - 1]:
                    pr[i - 1] = pr[i]
            idx = np.searchsorted(rc, p.rec_thrs, side="left")
            for j, k in enumerate(idx):
                if k < len(pr):
                    prec[t, j] = pr[k]
        out[pool] = float(prec.mean())
        if pool == "all":
            out["AP50"] = float(prec[np.where(p.iou_thrs == 0.5)[0]].mean())
            out["AP75"] = float(prec[np.where(p.iou_thrs == 0.75)[0]].mean())
    return out
