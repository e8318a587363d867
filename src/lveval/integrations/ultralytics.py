"""ultralytics (YOLO, YOLO-World, YOLOE): evaluate the ``predictions.json`` of ``model.val(save_json=True)``.

ultralytics writes one record per detection with ``category_id`` derived
from the model's class index: ``index + 1`` when the val split's path names
LVIS, the COCO-91 id when it is COCO's ``val2017.txt``, the bare index
otherwise; image ids are the file stems (numbers when numeric). This module
turns those back into the ground truth's category ids, through the names of
the dataset yaml (``names: {0: "aerosol can/spray can", ...}``; each
``/``-separated alternative is tried against the category names and LVIS
synonyms) or the conventions above, and evaluates all three protocols:

    python -m lveval.integrations.ultralytics runs/detect/val/predictions.json \\
        lvis_v1_minival.json --data lvis.yaml

The detector must output enough detections for AP-Fixed (see
docs/integrations.md: ``max_det`` and ``conf`` of ``model.val``).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections import Counter

import numpy as np

from .labels import CategoryResolver
from .metric import ImageLog, add_warnings

#: COCO's 80 detection classes as 91-index ids (ids 1..90 without the 10 never annotated)
COCO80_TO_COCO91 = np.array([i for i in range(1, 91) if i not in (12, 26, 29, 30, 45, 66, 68, 69, 71, 83)])
CONVENTIONS = ("auto", "lvis", "coco", "index")


def read_names(data) -> list:
    """Class names by index from a dataset yaml (path or text) or a ``names`` list / dict."""
    if isinstance(data, (list, tuple)):
        return [str(x) for x in data]
    if isinstance(data, dict):
        names = data.get("names", data)
        return [str(names[k]) for k in sorted(names, key=int)] if isinstance(names, dict) else list(names)
    text = data
    if isinstance(data, (str, os.PathLike)) and os.path.exists(data):
        with open(data, encoding="utf-8") as f:
            text = f.read()
    try:
        import yaml
    except ImportError:
        return _names_without_yaml(text)
    return read_names(yaml.safe_load(text))


def _names_without_yaml(text: str) -> list:
    """The ``names:`` block of a dataset yaml (``  0: name`` lines, or a ``[...]`` list), without PyYAML."""
    m = re.search(r"^names:\s*(\[.*?\])", text, re.M | re.S)
    if m:
        return [s.strip().strip("'\"") for s in m.group(1)[1:-1].split(",") if s.strip()]
    block = re.search(r"^names:\s*\n((?:[ \t]+.*\n?)+)", text, re.M)
    if not block:
        raise ValueError("no 'names:' in the dataset yaml")
    out = {}
    for line in block.group(1).splitlines():
        mm = re.match(r"\s*(\d+)\s*:\s*(.*?)\s*$", line)
        if mm:
            out[int(mm.group(1))] = mm.group(2).strip("'\"")
    return [out[k] for k in sorted(out)]


def names_to_categories(names, gt) -> tuple:
    """Category id of each class name (-1 when none matches) and the names that matched nothing.

    A name ``"a/b/c"`` resolves to the category most of its alternatives name
    (ties: the earliest alternative's).
    """
    r = CategoryResolver(gt)
    ids = np.full(len(names), -1, np.int64)
    for i, n in enumerate(names):
        whole = r.lookup(n)
        if whole is not None:
            ids[i] = whole
            continue
        votes = [c for c in (r.lookup(p) for p in str(n).split("/")) if c is not None]
        if votes:
            count = Counter(votes)
            best = max(count.values())
            ids[i] = next(c for c in votes if count[c] == best)
    return ids, [n for n, c in zip(names, ids) if c < 0]


def load_predictions(predictions, gt, data=None, *, convention: str = "auto") -> tuple:
    """``(columns, notes)``: the records of ``predictions`` (path or list) with ground-truth category and
    image ids. ``data``: the dataset yaml (or its names) mapping class indices to names; ``convention``:
    how ultralytics derived ``category_id`` from the index (``lvis``: +1; ``coco``: COCO-91 ids;
    ``index``: unchanged; ``auto``: index if any id is 0, else coco for a COCO ground truth, else lvis)."""
    from ..io.gt import load_gt

    g = load_gt(gt)
    if convention not in CONVENTIONS:
        raise ValueError(f"convention must be one of {', '.join(CONVENTIONS)}")
    recs = predictions
    if isinstance(predictions, (str, os.PathLike)):
        with open(predictions, encoding="utf-8") as f:
            recs = json.load(f)
    notes = []
    cid = np.array([r["category_id"] for r in recs], np.int64)
    if convention == "auto":
        convention = "index" if (len(cid) and cid.min() == 0) else ("coco" if g.kind == "coco" else "lvis")
    if convention == "lvis":
        idx = cid - 1
    elif convention == "coco":
        lut = np.full(92, -1, np.int64)
        lut[COCO80_TO_COCO91] = np.arange(80)
        idx = np.where((cid >= 0) & (cid < 92), lut[np.clip(cid, 0, 91)], -1)
    else:
        idx = cid
    if data is not None:
        names = read_names(data)
        table, unknown = names_to_categories(names, g)
        if unknown:
            notes.append(f"{len(unknown)} of the yaml's {len(names)} class names match no category: "
                         + ", ".join(repr(n) for n in unknown[:10]))
        ok = (idx >= 0) & (idx < len(table))
        cat = np.where(ok, table[np.clip(idx, 0, max(len(table) - 1, 0))], -1)
    elif convention == "index":
        ok = (idx >= 0) & (idx < g.num_categories)
        cat = np.where(ok, g.cat_ids[np.clip(idx, 0, g.num_categories - 1)], -1)
    else:
        cat = cid                 # ultralytics already wrote the dataset's ids
    bad = cat < 0
    if bad.any():
        notes.append(f"{int(bad.sum())} detections of {len(np.unique(cid[bad]))} category ids have no "
                     "category in the ground truth and were dropped")
    img = _image_ids([r["image_id"] for r in recs], g)
    keep = ~bad & (img >= 0)
    cols = {"image_id": img[keep], "category_id": cat[keep],
            "score": np.array([r["score"] for r in recs], np.float64).reshape(-1)[keep],
            "bbox": np.array([r["bbox"] for r in recs], np.float64).reshape(-1, 4)[keep]}
    if recs and "segmentation" in recs[0]:
        cols["segmentation"] = [r["segmentation"] for r, k in zip(recs, keep) if k]
    return cols, notes


def _image_ids(raw: list, g) -> np.ndarray:
    """Image ids: numbers as they are, file stems (non-numeric) through the ground truth's file names."""
    if all(isinstance(x, int) for x in raw):
        return np.asarray(raw, np.int64).reshape(-1)
    stems = {}
    for im in g.dataset.get("images", []):
        for key in ("file_name", "coco_url"):
            if im.get(key):
                stems[os.path.splitext(os.path.basename(str(im[key])))[0]] = int(im["id"])
    out = np.empty(len(raw), np.int64)
    for i, x in enumerate(raw):
        out[i] = x if isinstance(x, int) else (int(x) if str(x).isdigit() else stems.get(str(x), -1))
    return out


def evaluate(predictions, gt, data=None, *, convention: str = "auto", iou_type: str = "bbox", **kwargs):
    """:func:`lveval.evaluate` on an ultralytics ``predictions.json``; the class-name mapping's notes and
    the image coverage go into the result's warnings."""
    from ..io.gt import load_gt
    from ..metrics import evaluate as lveval_evaluate

    g = load_gt(gt)
    cols, notes = load_predictions(predictions, g, data, convention=convention)
    r = lveval_evaluate(g, cols, iou_type=iou_type, **kwargs)
    log = ImageLog()
    ids, counts = np.unique(cols["image_id"], return_counts=True)
    log.add(ids, counts)
    add_warnings(r, notes + log.warnings(g))
    return r


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m lveval.integrations.ultralytics",
                                description="AP-Old, AP-Fixed and AP-Pool of an ultralytics predictions.json")
    p.add_argument("predictions")
    p.add_argument("gt", help="LVIS or COCO ground truth (e.g. lvis_v1_minival.json)")
    p.add_argument("--data", help="the dataset yaml whose names map class indices to categories")
    p.add_argument("--convention", choices=CONVENTIONS, default="auto")
    p.add_argument("--iou-type", choices=("bbox", "segm"), default="bbox")
    p.add_argument("--max-dets-per-class", type=int, default=10_000)
    p.add_argument("--json", help="write all figures as JSON")
    a = p.parse_args(argv)
    r = evaluate(a.predictions, a.gt, a.data, convention=a.convention, iou_type=a.iou_type,
                 max_dets_per_class=a.max_dets_per_class)
    for name, label in (("old", "AP-Old"), ("fixed", "AP-Fixed"), ("pooled", "AP-Pool")):
        d = getattr(r, name)
        if d:
            print(f"{label}: " + "  ".join(f"{k} {100 * v:.2f}" for k, v in d.items() if k.startswith("AP")))
    for w in r.notices.warnings:
        print("warning:", w, file=sys.stderr)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(r.to_dict(), f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
