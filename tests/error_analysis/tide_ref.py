"""tidecv (TIDE's authors' package, 1.0.1) run on in-memory COCO-format data: the reference for the
assignment of errors and, where its AP agrees with pycocotools', for the dAPs.

Data is fed exactly as tidecv.datasets.COCO / COCOResult feed it (crowd annotations become class
ignore regions), with no per-image cap (tidecv's default is 100 per image).
"""
from __future__ import annotations

import numpy as np

TIDE_NAMES = {"Cls": "cls", "Loc": "loc", "Both": "both", "Dupe": "dupe", "Bkg": "bkg", "Miss": "miss"}


def run_tidecv(gt: dict, results: list, mode: str = "bbox") -> dict:
    from tidecv import TIDE
    from tidecv import functions as tf
    from tidecv.data import Data

    g = Data("gt", max_dets=10 ** 9)
    size = {}
    for im in gt["images"]:
        g.add_image(im["id"], im.get("file_name", str(im["id"])))
        size[im["id"]] = (im["width"], im["height"])
    for c in gt["categories"]:
        g.add_class(c["id"], c["name"])
    for a in gt["annotations"]:
        mask = tf.toRLE(a["segmentation"], *size[a["image_id"]]) if mode == "segm" else None
        if a.get("iscrowd", 0):
            g.add_ignore_region(a["image_id"], a["category_id"], a["bbox"], mask)
        else:
            g.add_ground_truth(a["image_id"], a["category_id"], a["bbox"], mask)
    p = Data("results")
    for d in results:
        p.add_detection(d["image_id"], d["category_id"], d["score"], d.get("bbox"),
                        d["segmentation"] if mode == "segm" else None)
    t = TIDE(mode=TIDE.BOX if mode == "bbox" else TIDE.MASK)
    run = t.evaluate(g, p, name="r")
    det_type = [None] * len(results)
    missed = set()
    for e in run.errors:
        name = TIDE_NAMES[e.short_name]
        if name == "miss":
            missed.add(e.gt["_id"])
        else:
            det_type[e.pred["_id"]] = name
    main = {TIDE_NAMES[k]: v / 100 for k, v in t.get_main_errors()["r"].items()}
    special = t.get_special_errors()["r"]
    return {"det_type": det_type, "missed": missed, "AP50": run.ap / 100, "dAP": main,
            "dAP_special": {"fp": special["FalsePos"] / 100, "fn": special["FalseNeg"] / 100},
            "counts": {TIDE_NAMES[k.short_name]: v for k, v in run.count_errors().items()}}


def ours_per_record(report, selection: str, n_results: int) -> tuple[list, set]:
    """Error type of every results record (None: no error) and the set of missed annotations
    (indices in file order), from an ErrorReport."""
    from lveval.error_analysis import TYPES

    a = report.assignments[selection]
    out = [None] * n_results
    for row, code in zip(a.m.det, a.error):
        if code >= 0:
            out[int(row)] = TYPES[code]
    return out, set(np.flatnonzero(a.gt_miss).tolist())


def random_coco(seed: int, n_images: int = 12, n_cats: int = 6, crowd: float = 0.08):
    """COCO-format ground truth and results with every kind of TIDE error, continuous scores and
    coordinates (no ties), and at least one good detection per class (so that no class loses all its
    ground truth to a fix: tidecv's and pycocotools' class sets then agree)."""
    rng = np.random.default_rng(seed)
    cats = [{"id": 3 * k + 1, "name": f"class{k}"} for k in range(n_cats)]
    cat_ids = [c["id"] for c in cats]
    images = [{"id": 100 + i, "width": 640, "height": 480, "file_name": f"{i}.jpg"} for i in range(n_images)]
    anns, dets = [], []

    def box():
        w, h = rng.uniform(20, 200, 2)
        return [float(rng.uniform(0, 640 - w)), float(rng.uniform(0, 480 - h)), float(w), float(h)]

    def jitter(b, s):
        x, y, w, h = b
        return [x + rng.normal(0, s * w), y + rng.normal(0, s * h), w * float(np.exp(rng.normal(0, s))),
                h * float(np.exp(rng.normal(0, s)))]

    for im in images:
        for _ in range(int(rng.integers(0, 7))):
            anns.append({"id": len(anns) + 1, "image_id": im["id"], "category_id": int(rng.choice(cat_ids)),
                         "bbox": box(), "iscrowd": int(rng.random() < crowd)})
    for k, c in enumerate(cat_ids):      # one sure object and detection per class
        im = images[k % n_images]["id"]
        b = box()
        anns.append({"id": len(anns) + 1, "image_id": im, "category_id": c, "bbox": b, "iscrowd": 0})
        dets.append({"image_id": im, "category_id": c, "bbox": jitter(b, 0.01), "score": 0.99 - 0.001 * k})
    for a in anns:
        b, c, im = a["bbox"], a["category_id"], a["image_id"]
        u = rng.random()
        if u < 0.55:
            dets.append({"image_id": im, "category_id": c, "bbox": jitter(b, 0.05)})       # good
        elif u < 0.7:
            dets.append({"image_id": im, "category_id": c, "bbox": jitter(b, 0.4)})        # loc-ish
        elif u < 0.8:
            dets.append({"image_id": im, "category_id": int(rng.choice(cat_ids)), "bbox": jitter(b, 0.05)})
        # else: missed
        if rng.random() < 0.2:
            dets.append({"image_id": im, "category_id": c, "bbox": jitter(b, 0.08)})       # duplicate
        for _ in range(int(rng.random() < 0.3) + int(rng.random() < 0.15)):    # stray, often on one object
            dets.append({"image_id": im, "category_id": int(rng.choice(cat_ids)), "bbox": jitter(b, 0.35)})
    for im in images:                                                                       # background
        for _ in range(int(rng.integers(0, 3))):
            dets.append({"image_id": im["id"], "category_id": int(rng.choice(cat_ids)), "bbox": box()})
    for d in dets:
        x, y, w, h = d["bbox"]
        d["bbox"] = [x, y, max(w, 1.0), max(h, 1.0)]
        d.setdefault("score", float(rng.uniform(0.01, 0.95)))
    order = rng.permutation(len(dets))
    dets = [dets[i] for i in order]
    for a in anns:
        a["area"] = a["bbox"][2] * a["bbox"][3]
    return {"images": images, "categories": cats, "annotations": anns}, dets
