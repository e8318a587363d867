"""Shared helpers of the lvis-api and pycocotools drop-ins: restricting, binding, evaluating."""
from __future__ import annotations

import os
from dataclasses import replace

import numpy as np

from ..exceptions import InputError
from ..io.gt import GroundTruth, load_gt
from ..io.results import Detections, load_results
from ..metrics import Evaluator
from ..params import AREA_LABELS, Params


def dataset_of(obj, what: str) -> dict:
    """The COCO/LVIS dict behind a path, a dict, or any object with a ``dataset`` dict (ours or the originals)."""
    if isinstance(obj, dict):
        return obj
    ds = getattr(obj, "dataset", None)
    if isinstance(ds, dict):
        return ds
    raise TypeError(f"Unsupported type {type(obj).__name__} of {what}.")


def restrict(dataset: dict, img_ids, cat_ids) -> dict:
    """The dataset limited to ``img_ids`` and ``cat_ids`` (None: all), as the references' params do."""
    imgs = dataset["images"]
    cats = dataset["categories"]
    if img_ids is not None:
        keep_i = set(int(i) for i in img_ids)
        imgs = [im for im in imgs if im["id"] in keep_i]
    if cat_ids is not None:
        keep_c = set(int(c) for c in cat_ids)
        cats = [c for c in cats if c["id"] in keep_c]
    ok_i = {im["id"] for im in imgs}
    ok_c = {c["id"] for c in cats}
    anns = [a for a in dataset["annotations"] if a["image_id"] in ok_i and a["category_id"] in ok_c]
    out = dict(dataset)
    out.update(images=imgs, categories=cats, annotations=anns)
    return out


def columns_from_anns(anns: list, *, path: str = "<results>") -> tuple[dict, np.ndarray | None]:
    """Columns (and the ``area`` each record carries, if all do) of result dicts."""
    n = len(anns)
    try:
        cols = {"image_id": np.fromiter((a["image_id"] for a in anns), np.int64, n),
                "category_id": np.fromiter((a["category_id"] for a in anns), np.int64, n),
                "score": np.fromiter((a["score"] for a in anns), np.float64, n)}
    except KeyError as exc:
        raise InputError("missing required field", path=path, field=str(exc.args[0])) from None
    if n and all("bbox" in a and len(a["bbox"]) == 4 for a in anns):
        cols["bbox"] = np.array([list(map(float, a["bbox"])) for a in anns], np.float64).reshape(n, 4)
    elif not n:
        cols["bbox"] = np.zeros((0, 4))
    if n and all("segmentation" in a for a in anns):
        cols["segmentation"] = [a["segmentation"] for a in anns]
    area = None
    if n and all("area" in a for a in anns):
        area = np.fromiter((float(a["area"]) for a in anns), np.float64, n)
    return cols, area


def engine_params(p_iou_type: str, dataset: str, iou_thrs, rec_thrs, area_rng, *,
                  max_dets_per_image: int, max_dets_per_class: int, area_labels=None,
                  class_agnostic: bool = False, dilation_ratio: float = 0.02) -> Params:
    """Engine parameters carrying the user's thresholds and area ranges."""
    rng = np.asarray(area_rng, np.float64).reshape(-1, 2)
    labels = list(area_labels) if area_labels is not None and len(area_labels) == len(rng) else \
        (list(AREA_LABELS) if len(rng) == len(AREA_LABELS) else [f"area{i}" for i in range(len(rng))])
    return Params(iou_type=p_iou_type, dataset=dataset, max_dets_per_image=max_dets_per_image,  # type: ignore[arg-type]
                  max_dets_per_class=max_dets_per_class, iou_thresholds=tuple(np.ravel(iou_thrs)),
                  rec_thresholds=tuple(np.ravel(rec_thrs)),
                  area_ranges=tuple((str(n), float(lo), float(hi)) for n, (lo, hi) in zip(labels, rng)),
                  class_agnostic=bool(class_agnostic), dilation_ratio=dilation_ratio)


def prepare(dataset: dict, kind: str, dets: Detections, area, img_ids, cat_ids,
            iou_type: str, params: Params, cached_gt: GroundTruth | None = None):
    """Restrict ground truth and detections to the params' images and classes, bind, build an Evaluator.

    Results of classes outside ``cat_ids`` are dropped silently, as the
    references do. ``area`` sizes detections exactly as the references do:
    ``"box"`` (w x h of the result's box), ``"mask"`` (the mask's area), an
    array with one value per detection, or None (the engine's choice).
    """
    all_imgs = {im["id"] for im in dataset["images"]}
    all_cats = {c["id"] for c in dataset["categories"]}
    want_i = None if img_ids is None or set(int(i) for i in img_ids) == all_imgs else img_ids
    want_c = None if cat_ids is None or set(int(c) for c in cat_ids) == all_cats else cat_ids
    if want_i is None and want_c is None:
        gt = cached_gt if cached_gt is not None else load_gt(dataset, dataset=kind)
    else:
        gt = load_gt(restrict(dataset, want_i, want_c), dataset=kind)
    keep = np.isin(dets.img_id, gt.img_ids) & np.isin(dets.cat_id, gt.cat_ids)
    if not keep.all():
        dets = dets.take(keep)
        area = area[keep] if isinstance(area, np.ndarray) else area
    ev = Evaluator.load(gt, dets, params)
    bound = ev.dets
    if isinstance(area, np.ndarray):
        bound = replace(bound, area=np.asarray(area, np.float64))
    elif area == "box" and bound.bbox is not None:
        bound = replace(bound, area=bound.bbox[:, 2] * bound.bbox[:, 3])
    elif area == "mask" and bound.segm is not None and iou_type == "bbox":
        from ..io.results import mask_area

        bound = replace(bound, area=mask_area(bound.segm))
    ev.dets = bound   # sizes as the reference gives them; selections and matching read them later
    return gt, ev


def load_detections(results) -> Detections:
    """Detections from a path, a list of result dicts, a dict of columns or Detections."""
    if not isinstance(results, (str, os.PathLike, Detections, dict, list, tuple)):
        raise TypeError(f"Unsupported type {type(results).__name__} of results.")
    return load_results(results)
