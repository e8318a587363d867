"""Random small COCO/LVIS datasets and results for differential tests.

Boxes are drawn near each other so matches, duplicates and conflicts happen;
scores come from a few levels so ties are common; areas span small, medium
and large; LVIS sets carry negative and not-exhaustive lists, COCO sets carry
crowd regions.
"""
from __future__ import annotations

import numpy as np


def make_dataset(seed: int, *, kind: str = "lvis", n_images: int = 3, n_cats: int = 4,
                 max_gt: int = 6, max_dets: int = 12, score_levels: int = 5, segm: bool = False,
                 empty_image: bool = True):
    """Return (gt dict, results list)."""
    rng = np.random.default_rng(seed)
    images = []
    for i in range(n_images):
        im = {"id": int(10 + 7 * i), "height": 120, "width": 160}
        images.append(im)
    cat_ids = sorted(rng.choice(np.arange(1, 40), n_cats, replace=False).tolist())
    cats = [{"id": int(c), "name": f"c{c}", "frequency": "rcf"[j % 3]} for j, c in enumerate(cat_ids)]
    anns = []
    aid = 1
    centers = {}
    for ii, im in enumerate(images):
        if empty_image and ii == n_images - 1 and n_images > 1:
            ng = 0
        else:
            ng = int(rng.integers(0, max_gt + 1))
        cs = rng.random((max(ng, 1) + 2, 2)) * [120, 80] + 10
        centers[im["id"]] = cs
        for _ in range(ng):
            c = cs[rng.integers(0, len(cs))]
            w, h = rng.uniform(3, 90, 2)
            x, y = c[0] - w / 2 + rng.normal(0, 4), c[1] - h / 2 + rng.normal(0, 4)
            a = {"id": aid, "image_id": im["id"], "category_id": int(rng.choice(cat_ids)),
                 "bbox": [round(float(x), 2), round(float(y), 2), round(float(w), 2), round(float(h), 2)],
                 "area": round(float(w * h * rng.uniform(0.4, 1.0)), 2)}
            if segm:
                a["segmentation"] = [_poly(x, y, w, h, rng)]
            if kind == "coco":
                a["iscrowd"] = int(rng.random() < 0.15)
            anns.append(a)
            aid += 1
    if kind == "lvis":
        present = {}
        for a in anns:
            present.setdefault(a["image_id"], set()).add(a["category_id"])
        for im in images:
            absent = [c for c in cat_ids if c not in present.get(im["id"], set())]
            k = int(rng.integers(0, len(absent) + 1)) if absent else 0
            im["neg_category_ids"] = [int(c) for c in rng.choice(absent, k, replace=False)] if k else []
            pres = sorted(present.get(im["id"], set()))
            k = int(rng.integers(0, len(pres) + 1)) if pres and rng.random() < 0.4 else 0
            im["not_exhaustive_category_ids"] = [int(c) for c in rng.choice(pres, k, replace=False)] if k else []
    else:
        for c in cats:
            del c["frequency"]
    gt = {"images": images, "annotations": anns, "categories": cats}

    levels = np.round(np.sort(rng.uniform(0.05, 1.0, score_levels)), 3)
    results = []
    for im in images:
        nd = int(rng.integers(0, max_dets + 1))
        gts = [a for a in anns if a["image_id"] == im["id"]]
        for _ in range(nd):
            if gts and rng.random() < 0.7:
                g = gts[rng.integers(0, len(gts))]
                x, y, w, h = g["bbox"]
                x += rng.normal(0, 0.1 * w + 0.5)
                y += rng.normal(0, 0.1 * h + 0.5)
                w *= np.exp(rng.normal(0, 0.15))
                h *= np.exp(rng.normal(0, 0.15))
                cat = g["category_id"] if rng.random() < 0.8 else int(rng.choice(cat_ids))
            else:
                c = centers[im["id"]][rng.integers(0, len(centers[im["id"]]))]
                w, h = rng.uniform(3, 90, 2)
                x, y = c[0] - w / 2, c[1] - h / 2
                cat = int(rng.choice(cat_ids))
            w, h = max(float(w), 0.5), max(float(h), 0.5)
            r = {"image_id": im["id"], "category_id": int(cat),
                 "bbox": [round(float(x), 2), round(float(y), 2), round(w, 2), round(h, 2)],
                 "score": float(rng.choice(levels))}
            if segm:
                from pycocotools import mask as mask_utils
                rle = mask_utils.merge(mask_utils.frPyObjects([_poly(x, y, w, h, rng)], im["height"], im["width"]))
                r["segmentation"] = {"size": rle["size"], "counts": rle["counts"].decode()}
                del r["bbox"]
            results.append(r)
    return gt, results


def _poly(x, y, w, h, rng):
    t = np.sort(rng.uniform(0, 2 * np.pi, 6))
    px = x + w / 2 + np.cos(t) * w / 2 * rng.uniform(0.6, 1.0, 6)
    py = y + h / 2 + np.sin(t) * h / 2 * rng.uniform(0.6, 1.0, 6)
    return [round(float(v), 2) for v in np.stack([px, py], 1).ravel()]
