"""Hand-built scenes: objects on a grid of well separated cells, perfect detections, plus planted mistakes
of one known kind. Cells are 100 px apart and boxes at most 60 px wide, so objects never overlap."""
from __future__ import annotations

import numpy as np

CELL = 100


def cell_box(i: int, w: float = 60.0, h: float = 50.0) -> list:
    r, c = divmod(i, 6)
    return [10.0 + CELL * c, 10.0 + CELL * r, w, h]


def shifted(b: list, frac: float) -> list:
    """``b`` moved right by ``frac`` of its width (IoU (1-f)/(1+f): 0.5 -> 0.33)."""
    return [b[0] + frac * b[2], b[1], b[2], b[3]]


def base_scene(n_images: int = 8, n_cats: int = 4, per_image: int = 5, seed: int = 0, lvis: bool = False):
    """Ground truth and one exact, distinctly scored detection per object."""
    rng = np.random.default_rng(seed)
    cats = [{"id": 10 + k, "name": f"cat{k}", "synonyms": [f"cat{k}", f"kind{k}"], "frequency": "rcf"[k % 3]}
            for k in range(n_cats)]
    if not lvis:
        for c in cats:
            del c["frequency"], c["synonyms"]
    images, anns, dets = [], [], []
    for i in range(n_images):
        images.append({"id": 1 + i, "width": 640, "height": 480, "file_name": f"{i}.jpg"})
        for j in range(per_image):
            k = int(rng.integers(0, n_cats))
            b = cell_box(j)
            anns.append({"id": len(anns) + 1, "image_id": 1 + i, "category_id": 10 + k, "bbox": b,
                         "area": b[2] * b[3], "iscrowd": 0, "cell": j})
            dets.append({"image_id": 1 + i, "category_id": 10 + k, "bbox": list(b),
                         "score": float(rng.uniform(0.2, 0.8))})
    if lvis:
        for im in images:
            present = {a["category_id"] for a in anns if a["image_id"] == im["id"]}
            im["neg_category_ids"] = [c["id"] for c in cats if c["id"] not in present]
            im["not_exhaustive_category_ids"] = []
        for a in anns:
            del a["iscrowd"]
    gt = {"images": images, "categories": cats, "annotations": anns}
    return gt, dets


def strip(gt: dict) -> dict:
    """The ground truth without the scene builder's 'cell' field."""
    return {**gt, "annotations": [{k: v for k, v in a.items() if k != "cell"} for a in gt["annotations"]]}


def planted(kind: str, seed: int = 0):
    """A scene whose only mistakes are of ``kind`` (one of TIDE's six types)."""
    rng = np.random.default_rng(seed)
    gt, dets = base_scene(seed=seed)
    anns = gt["annotations"]
    cat_ids = [c["id"] for c in gt["categories"]]
    targets = [anns[i] for i in rng.choice(len(anns), 8, replace=False)]
    high = lambda: float(rng.uniform(0.85, 0.99))      # noqa: E731 -- above every true positive
    if kind == "miss":
        drop = {id(a) for a in targets}
        keep = [d for d, a in zip(dets, anns) if id(a) not in drop]
        return strip(gt), keep
    for a in targets:
        b, c = a["bbox"], a["category_id"]
        other = [x for x in cat_ids if x != c][int(rng.integers(0, len(cat_ids) - 1))]
        if kind == "cls":
            dets.append({"image_id": a["image_id"], "category_id": other, "bbox": list(b), "score": high()})
        elif kind == "loc":
            dets.append({"image_id": a["image_id"], "category_id": c, "bbox": shifted(b, 0.5), "score": high()})
        elif kind == "both":
            # wrong class and IoU 1/3 with the object; no object of that class near
            dets.append({"image_id": a["image_id"], "category_id": other, "bbox": shifted(b, 0.5),
                         "score": high()})
        elif kind == "dupe":
            dets.append({"image_id": a["image_id"], "category_id": c, "bbox": shifted(b, 0.05), "score": high()})
        elif kind == "bkg":
            dets.append({"image_id": a["image_id"], "category_id": c, "bbox": [5.0, 420.0, 40.0, 40.0],
                         "score": high()})
        else:
            raise ValueError(kind)
    return strip(gt), dets


def planted_confusions(pairs: dict, seed: int = 0, lvis: bool = True):
    """A scene with ``pairs[(detected_id, true_id)] = n`` detections of the detected class placed on n
    distinct objects of the true class (every other detection exact and correct)."""
    rng = np.random.default_rng(seed)
    gt, dets = base_scene(n_images=20, n_cats=6, per_image=6, seed=seed, lvis=lvis)
    by_cat = {}
    for a in gt["annotations"]:
        by_cat.setdefault(a["category_id"], []).append(a)
    used = set()
    for (x, y), n in pairs.items():
        free = [a for a in by_cat[y] if a["id"] not in used]
        for a in [free[i] for i in rng.choice(len(free), n, replace=False)]:
            used.add(a["id"])
            dets.append({"image_id": a["image_id"], "category_id": x, "bbox": list(a["bbox"]),
                         "score": float(rng.uniform(0.05, 0.99))})
    return strip(gt), dets
