"""A deterministic simulated detector for LVIS-style ground truth.

It mimics what the paper describes of real LVIS detectors: many candidates
per image (so the 300-per-image cap binds), good boxes around most objects,
confusions with other classes, background false positives, and scores that
are systematically lower for rare classes than for frequent ones (paper,
Figure 3). It exists for the demo, the analyses' examples and the tests; it
says nothing about any real model.
"""
from __future__ import annotations

import numpy as np

from .io.gt import GroundTruth, load_gt

# score scale per frequency group: under-confident on the tail (paper, Figure 3)
CONFIDENCE = {"r": 0.25, "c": 0.5, "f": 1.0, "": 1.0}
RECALL = {"r": 0.6, "c": 0.75, "f": 0.9, "": 0.85}


def simulate(gt, *, seed: int = 0, candidates_per_image: int = 1000, iou_type: str = "bbox",
             score_decimals: int | None = 4) -> list:
    """Results (list of dicts) of the simulated detector on ``gt`` (path, dict or GroundTruth).

    Scores are rounded to ``score_decimals`` so that ties occur, as they do with
    float16/float32 detector outputs.
    """
    g: GroundTruth = load_gt(gt)
    rng = np.random.default_rng(seed)
    K = g.num_categories
    freq = np.array([f if f else "" for f in g.cat_freq])
    conf = np.array([CONFIDENCE[f] for f in freq])
    rec = np.array([RECALL[f] for f in freq])
    cats_info = {c["id"]: c for c in g.dataset.get("categories", [])}
    weight = np.array([float(cats_info.get(int(c), {}).get("image_count", 0)) + 1.0 for c in g.cat_ids])
    if g.kind == "coco":
        weight = np.bincount(g.ann_cat, minlength=K).astype(float) + 1.0
    weight /= weight.sum()

    # true-positive-like detections: 1-3 per detected object, jittered
    G = len(g.ann_ids)
    found = rng.random(G) < rec[g.ann_cat]
    copies = np.where(found, rng.integers(1, 4, G), 0)
    src = np.repeat(np.arange(G), copies)
    box = g.ann_box[src].copy()
    jit = rng.normal(0, 0.08, (len(src), 4)) * np.maximum(box[:, 2:4], 4.0).repeat(2, axis=1)[:, [0, 2, 1, 3]]
    box[:, :2] += jit[:, :2]
    box[:, 2:] = np.maximum(box[:, 2:] * np.exp(rng.normal(0, 0.1, (len(src), 2))), 1.0)
    cat = g.ann_cat[src].copy()
    quality = np.clip(rng.beta(5, 2, len(src)), 0, 1)
    score = conf[cat] * quality
    # a fraction are confused with another class (same box, lower score)
    confuse = rng.random(len(src)) < 0.25
    cat_conf = rng.choice(K, size=int(confuse.sum()), p=weight)
    tp_img = g.ann_img[src]
    img = np.r_[tp_img, tp_img[confuse]]
    box = np.r_[box, box[confuse]]
    score = np.r_[score, 0.6 * score[confuse] * conf[cat_conf] / np.maximum(conf[cat[confuse]], 1e-6)]
    cat = np.r_[cat, cat_conf]
    shapes = np.r_[src, src[confuse]]

    # background false positives fill each image up to the candidate budget
    per_img = np.bincount(img, minlength=g.num_images)
    n_fp = np.maximum(candidates_per_image - per_img, 0)
    fp_img = np.repeat(np.arange(g.num_images), n_fp)
    W = g.img_w[fp_img].astype(float)
    H = g.img_h[fp_img].astype(float)
    fw = np.maximum(W * rng.beta(1.5, 5, len(fp_img)), 2.0)
    fh = np.maximum(H * rng.beta(1.5, 5, len(fp_img)), 2.0)
    fx = rng.random(len(fp_img)) * np.maximum(W - fw, 1)
    fy = rng.random(len(fp_img)) * np.maximum(H - fh, 1)
    fp_cat = rng.choice(K, size=len(fp_img), p=weight)
    fp_score = conf[fp_cat] * rng.beta(1.3, 4, len(fp_img))
    img = np.r_[img, fp_img]
    cat = np.r_[cat, fp_cat]
    box = np.r_[box, np.stack([fx, fy, fw, fh], 1)]
    score = np.r_[score, fp_score]
    shapes = np.r_[shapes, np.full(len(fp_img), -1)]
    score = np.clip(score, 1e-4, 1.0)
    if score_decimals is not None:
        score = np.maximum(np.round(score, score_decimals), 10.0 ** -score_decimals)

    # clip boxes to the image, as detectors do
    W = g.img_w[img].astype(float)
    H = g.img_h[img].astype(float)
    x0 = np.clip(box[:, 0], 0, W - 1)
    y0 = np.clip(box[:, 1], 0, H - 1)
    x1 = np.clip(box[:, 0] + box[:, 2], x0 + 1, W)
    y1 = np.clip(box[:, 1] + box[:, 3], y0 + 1, H)
    box = np.round(np.stack([x0, y0, x1 - x0, y1 - y0], 1), 2)
    box[:, 2:] = np.maximum(box[:, 2:], 0.01)

    order = rng.permutation(len(score))     # detectors emit in no particular global order
    order = order[np.argsort(g.img_ids[img[order]], kind="stable")]
    out = []
    masks = _masks(g, img, box, shapes, src_boxes=g.ann_box) if iou_type in ("segm", "boundary") else None
    for i in order:
        r = {"image_id": int(g.img_ids[img[i]]), "category_id": int(g.cat_ids[cat[i]]),
             "bbox": [float(v) for v in box[i]], "score": float(score[i])}
        if masks is not None:
            r["segmentation"] = masks[i]
            del r["bbox"]
        out.append(r)
    return out


def _masks(g: GroundTruth, img, box, shapes, src_boxes) -> list:
    """RLE masks: the source object's polygons moved onto the detection's box, else an ellipse."""
    from pycocotools import mask as mask_utils

    anns = g.dataset["annotations"]
    out = []
    t = np.linspace(0, 2 * np.pi, 16, endpoint=False)
    for i in range(len(img)):
        h, w = int(g.img_h[img[i]]), int(g.img_w[img[i]])
        x, y, bw, bh = box[i]
        s = shapes[i]
        seg = anns[int(g.ann_rec[s]) if g.ann_rec is not None else s].get("segmentation") if s >= 0 else None
        if isinstance(seg, list) and seg:
            sx, sy, sw, sh = src_boxes[s]
            polys = []
            for p in seg:
                p = np.asarray(p, float).reshape(-1, 2)
                p[:, 0] = x + (p[:, 0] - sx) * bw / max(sw, 1e-6)
                p[:, 1] = y + (p[:, 1] - sy) * bh / max(sh, 1e-6)
                polys.append(p.ravel().tolist())
        else:
            cx, cy = x + bw / 2, y + bh / 2
            polys = [np.stack([cx + bw / 2 * np.cos(t), cy + bh / 2 * np.sin(t)], 1).ravel().tolist()]
        rle = mask_utils.merge(mask_utils.frPyObjects(polys, h, w))
        out.append({"size": [h, w], "counts": rle["counts"].decode()})
    return out
