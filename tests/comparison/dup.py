"""The reference a bootstrap replicate must equal: the data set with every image copied as often as it
was drawn, written out independently of the engine (plain dicts and lists)."""
from __future__ import annotations

import copy


def duplicate(gt: dict, results: list, mult: dict) -> tuple[dict, list]:
    """``mult``: image id -> times drawn. Copy ``j`` of image ``i`` gets id ``i * M + j`` (ids keep the
    image order, copies next to each other); its annotations and detections are copied, each
    detection's copies consecutive in the results file."""
    M = max(mult.values()) + 1
    images, anns = [], []
    by_img: dict = {}
    for a in gt["annotations"]:
        by_img.setdefault(a["image_id"], []).append(a)
    next_ann = 1
    for im in sorted(gt["images"], key=lambda x: x["id"]):
        for j in range(mult.get(im["id"], 0)):
            c = copy.deepcopy(im)
            c["id"] = im["id"] * M + j
            images.append(c)
            for a in by_img.get(im["id"], []):
                b = copy.deepcopy(a)
                b["id"] = next_ann
                b["image_id"] = c["id"]
                next_ann += 1
                anns.append(b)
    out_gt = {k: v for k, v in gt.items() if k not in ("images", "annotations")}
    out_gt["images"] = images
    out_gt["annotations"] = anns
    out_res = []
    for r in results:
        for j in range(mult.get(r["image_id"], 0)):
            s = dict(r)
            s["image_id"] = r["image_id"] * M + j
            out_res.append(s)
    return out_gt, out_res


def multiplicities(image_ids, w) -> dict:
    return {int(i): int(k) for i, k in zip(image_ids, w) if k > 0}
