"""torchmetrics' ``MeanAveragePrecision`` (pycocotools backend), step by step, for environments where it
does not import (it needs torchvision).

Written from torchmetrics 1.9's ``detection/helpers.py`` behaviour: boxes converted to XYWH with
torchvision's formulas in float32 (through XYXY for cxcywh), image ids in update order, annotation ids
from 1, area from the converted box (or the mask) unless a positive one is given, categories = the
labels seen, thresholds given to COCOeval as float64 copies of torch.linspace's float32 values,
``stats`` from COCOeval.summarize (so ``map`` is AP at maxDets=100), per-class figures from COCOeval
with catIds=[c]; with iou_type segm alone, images without masks are left out of both datasets.
"""
import contextlib
import io

import numpy as np
import torch
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval


def tv_to_xywh(boxes: torch.Tensor, fmt: str) -> torch.Tensor:
    """torchvision.ops.box_convert(boxes, fmt, 'xywh') formulas, in the tensor's dtype."""
    if fmt == "xywh" or boxes.numel() == 0:
        return boxes.clone()
    if fmt == "cxcywh":
        cx, cy, w, h = boxes.unbind(-1)
        boxes = torch.stack((cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h), dim=-1)
    x1, y1, x2, y2 = boxes.unbind(-1)
    return torch.stack((x1, y1, x2 - x1, y2 - y1), dim=-1)


def _rles(masks: torch.Tensor) -> list:
    out = []
    for m in masks.cpu().numpy():
        r = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
        out.append((tuple(r["size"]), r["counts"]))
    return out


def _dataset(items, iou_type, box_format, all_labels, scores=False):
    images, anns = [], []
    aid = 1
    for image_id, it in enumerate(items):
        boxes = tv_to_xywh(it["boxes"], box_format).tolist() if "bbox" in iou_type else None
        masks = _rles(it["masks"]) if "segm" in iou_type else None
        if masks is not None and len(masks) == 0 and boxes is None:
            continue
        images.append({"id": image_id})
        if masks:
            images[-1]["height"], images[-1]["width"] = masks[0][0]
        labels = it["labels"].tolist()
        for k, lab in enumerate(labels):
            box = boxes[k] if boxes is not None else None
            rle = {"size": list(masks[k][0]), "counts": masks[k][1]} if masks else None
            given = it.get("area")
            if given is not None and given[k].item() > 0:
                area = given[k].item()
                extra = {}
            else:
                area = float(mask_utils.area(rle)) if "segm" in iou_type else box[2] * box[3]
                extra = {}
                if len(iou_type) > 1:
                    extra = {"area_bbox": box[2] * box[3], "area_segm": float(mask_utils.area(rle))}
            a = {"id": aid, "image_id": image_id, "area": area, "category_id": lab,
                 "iscrowd": int(it["iscrowd"][k].item()) if "iscrowd" in it else 0, **extra}
            if box is not None:
                a["bbox"] = box
            if rle is not None:
                a["segmentation"] = rle
            if scores:
                a["score"] = it["scores"][k].item()
            anns.append(a)
            aid += 1
    return {"images": images, "annotations": anns, "categories": [{"id": i, "name": str(i)} for i in all_labels]}


def tm_map(preds, targets, *, iou_type=("bbox",), box_format="xyxy", iou_thresholds=None, rec_thresholds=None,
           max_detection_thresholds=None, class_metrics=False) -> dict:
    iou_type = (iou_type,) if isinstance(iou_type, str) else tuple(iou_type)
    iou_thr = iou_thresholds or torch.linspace(0.5, 0.95, round((0.95 - 0.5) / 0.05) + 1).tolist()
    rec_thr = rec_thresholds or torch.linspace(0.0, 1.00, round(1.00 / 0.01) + 1).tolist()
    mdt = sorted(max_detection_thresholds or [1, 10, 100])
    all_labels = torch.cat([p["labels"] for p in preds] + [t["labels"] for t in targets]).unique().tolist()
    out = {}
    for t in iou_type:
        prefix = "" if len(iou_type) == 1 else f"{t}_"
        gt_ds = _dataset(targets, iou_type, box_format, all_labels)
        dt_ds = _dataset(preds, iou_type, box_format, all_labels, scores=True)
        if len(iou_type) > 1:
            for a in dt_ds["annotations"]:
                a["area"] = a.get(f"area_{t}", a["area"])
        names = ["map", "map_50", "map_75", "map_small", "map_medium", "map_large", f"mar_{mdt[0]}",
                 f"mar_{mdt[1]}", f"mar_{mdt[2]}", "mar_small", "mar_medium", "mar_large"]

        def run(cat_ids=None, gt_ds=gt_ds, dt_ds=dt_ds, t=t):
            gt, dt = COCO(), COCO()
            gt.dataset, dt.dataset = gt_ds, dt_ds
            with contextlib.redirect_stdout(io.StringIO()):
                gt.createIndex()
                dt.createIndex()
                e = COCOeval(gt, dt, iouType=t)
                e.params.iouThrs = np.array(iou_thr, dtype=np.float64)
                e.params.recThrs = np.array(rec_thr, dtype=np.float64)
                e.params.maxDets = mdt
                if cat_ids is not None:
                    e.params.catIds = cat_ids
                e.evaluate()
                e.accumulate()
                e.summarize()
            return e.stats

        if not gt_ds["images"] or not dt_ds["images"]:
            stats = [-1.0] * 12
        else:
            stats = run()
        out.update({prefix + n: float(np.float32(s)) for n, s in zip(names, stats)})
        if class_metrics and gt_ds["images"] and dt_ds["images"]:
            per = [run([c]) for c in all_labels]
            out[prefix + "map_per_class"] = [float(np.float32(s[0])) for s in per]
            out[prefix + f"mar_{mdt[-1]}_per_class"] = [float(np.float32(s[8])) for s in per]
    out["classes"] = all_labels
    return out
