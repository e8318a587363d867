"""PyTorch-loop metrics in torchmetrics' style: ``update`` / ``compute`` / ``reset``, mergeable.

Neither torch nor torchmetrics is imported: inputs may be numpy arrays, lists
or torch tensors (converted on the CPU), states are plain numpy arrays, so
workers can exchange them with any transport (``torch.distributed``'s
``all_gather_object``, files, queues) and :meth:`merge` them.

    metric = FixedAPMetric("lvis_v1_val.json", label_to_category=cat_ids)
    for images, targets in loader:
        out = model(images)
        metric.update(out, image_ids=[t["image_id"] for t in targets])
    figures = metric.compute()        # {"AP-Fixed": ..., "APr-Fixed": ..., "AP-Old": ..., "AP-Pool": ...}
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..params import Params
from ..topk.collector import TopKPerClass, _to_numpy
from .labels import CategoryResolver, is_text

PROTOCOL_SUFFIX = {"old": "Old", "fixed": "Fixed", "pooled": "Pool"}


def collector_caps(ev) -> dict:
    """The top-K collector's caps for an evaluator ``ev`` (gt, protocols, max_dets_per_class,
    max_dets_per_image): AP-Fixed's K per class, and AP-Old's N per image when AP-Old is asked for,
    per image (LVIS rules) or per image and category (COCO rules, as pycocotools caps)."""
    return dict(k=ev.max_dets_per_class, per_image=ev.max_dets_per_image if "old" in ev.protocols else None,
                per_image_scope="image_category" if ev.gt.kind == "coco" else "image")


def flat_figures(result, protocols=("old", "fixed", "pooled")) -> dict:
    """``{"AP-Fixed": 0.25, "APr-Fixed": ..., "AP-Old": ..., "AP-Pool": ...}`` from an EvalResult."""
    out = {}
    for p in protocols:
        d = getattr(result, p, None)
        if d:
            for k, v in d.items():
                out[f"{k}-{PROTOCOL_SUFFIX[p]}"] = float(v)
    return out


class ImageLog:
    """Which images a collector was given and how many detections each had (before any pruning).

    Kept beside a top-K collector so an evaluation can say when it covered
    only part of the ground truth's images (the others count as images
    without detections) and how many images had no detections at all.
    """

    def __init__(self):
        self._ids: list = []
        self._counts: list = []

    def add(self, image_ids, counts) -> None:
        """Record images (ids and detection counts, arrays of equal length)."""
        self._ids.append(np.asarray(image_ids, np.int64).reshape(-1))
        self._counts.append(np.asarray(counts, np.int64).reshape(-1))

    def state(self) -> dict:
        """``{"image_id": ..., "num_dets": ...}``: per image its total (duplicates summed)."""
        ids = np.concatenate(self._ids) if self._ids else np.zeros(0, np.int64)
        cnt = np.concatenate(self._counts) if self._counts else np.zeros(0, np.int64)
        u, inv = np.unique(ids, return_inverse=True)
        tot = np.bincount(inv.reshape(-1), weights=cnt, minlength=len(u)).astype(np.int64)
        self._ids, self._counts = [u], [tot]
        return {"image_id": u, "num_dets": tot}

    def load_state(self, state: dict) -> ImageLog:
        self.add(state["image_id"], state["num_dets"])
        return self

    def __len__(self) -> int:
        return len(self.state()["image_id"])

    def warnings(self, gt) -> list:
        """The coverage warning for ground truth ``gt`` (empty when every image was given)."""
        s = self.state()
        _, known = gt.image_index(s["image_id"])
        seen = int(known.sum())
        if not len(s["image_id"]) or seen >= gt.num_images:
            return []
        empty_seen = int((s["num_dets"][known] == 0).sum())
        missing = gt.num_images - seen
        return [f"detections were given for {seen} of the ground truth's {gt.num_images} images; the "
                f"{missing} others count as images without detections (pass every image, or restrict the "
                f"ground truth to the images evaluated); {missing + empty_seen} images have no detections "
                f"({empty_seen} of those given)"]


def add_warnings(result, lines) -> None:
    """Append a collector's warnings to an EvalResult's notices, each once. The collector knows which
    images it was given, so its coverage warning replaces the one the loader derives from the results."""
    from ..io.results import COVERAGE_WARNING

    lines = [w for w in lines if w]
    if any("images" in w and "of the ground truth's" in w for w in lines):
        result.notices.warnings[:] = [w for w in result.notices.warnings if not w.startswith(COVERAGE_WARNING)]
    for w in lines:
        if w and w not in result.notices.warnings:
            result.notices.warn(w)


class _LabelMap:
    """Contiguous label -> dataset category id (a sequence, a mapping, a callable such as a
    :class:`CategoryResolver`, or identity)."""

    def __init__(self, mapping):
        self.table = None
        self.mapping = None
        self.func = None
        if mapping is None:
            return
        if callable(mapping) and not isinstance(mapping, Mapping):
            self.func = mapping
            return
        if isinstance(mapping, Mapping):
            self.mapping = {int(k): int(v) for k, v in mapping.items()}
            keys = np.array(sorted(self.mapping), np.int64)
            if len(keys) and keys.min() >= 0 and keys.max() < 1 << 20:
                self.table = np.full(int(keys.max()) + 1, -1, np.int64)
                self.table[keys] = [self.mapping[int(k)] for k in keys]
        else:
            self.table = np.asarray(list(mapping), np.int64)

    def __call__(self, labels: np.ndarray) -> np.ndarray:
        if self.func is not None:
            return np.asarray(self.func(labels), np.int64)
        labels = np.asarray(labels, np.int64)
        if self.table is None and self.mapping is None:
            return labels
        if self.table is not None:
            ok = (labels >= 0) & (labels < len(self.table))
            out = np.where(ok, self.table[np.clip(labels, 0, max(len(self.table) - 1, 0))], -1)
        else:
            out = np.array([self.mapping.get(int(x), -1) for x in labels], np.int64)
        if len(out) and (out < 0).any():
            bad = int(labels[np.flatnonzero(out < 0)[0]])
            raise ValueError(f"label {bad} has no category id in label_to_category")
        return out


class TopKPerClassCollector(TopKPerClass):
    """:class:`lveval.topk.TopKPerClass` with torchmetrics-style ``update`` / ``compute`` / ``reset``.

    ``update(preds, image_ids=None)`` takes a list of per-image dicts
    (torchvision's ``boxes``/``scores``/``labels``; ``image_id`` in the dict or
    in ``image_ids``). Boxes are XYXY by default (torchvision, detectron2);
    ``label_to_category`` maps model labels to dataset category ids (a
    sequence indexed by label, a dict, or a callable such as
    :class:`~lveval.integrations.labels.CategoryResolver`); ``categories``
    (the ground truth's records, or a GroundTruth) lets labels be names or
    LVIS synonyms: those matching nothing are dropped and counted in
    ``self.resolver.unknown``. ``compute()`` returns the kept detections as
    columns for :func:`lveval.evaluate`; ``self.images`` records every image
    given (with or without detections).
    """

    def __init__(self, k: int = 10_000, per_image: int | None = None, *, box_format: str = "xyxy",
                 label_to_category=None, per_image_scope: str = "image", categories=None):
        super().__init__(k, per_image, box_format=box_format, per_image_scope=per_image_scope)
        self.label_to_category = label_to_category
        self._labels = _LabelMap(label_to_category)
        self.resolver = CategoryResolver(categories) if categories is not None else None
        self.images = ImageLog()

    def reset(self) -> None:
        super().reset()
        self.images = ImageLog()
        if self.resolver is not None:
            self.resolver.unknown.clear()

    def update(self, preds: Sequence[Mapping[str, Any]], image_ids: Sequence | None = None) -> None:
        """Add a batch of per-image predictions."""
        if isinstance(preds, Mapping):
            preds = [preds]
        if image_ids is not None and len(image_ids) != len(preds):
            raise ValueError(f"{len(preds)} predictions but {len(image_ids)} image ids")
        for i, p in enumerate(preds):
            img = image_ids[i] if image_ids is not None else p.get("image_id")
            if img is None:
                raise ValueError("each prediction needs an image_id (in the dict or via image_ids=)")
            img = int(_to_numpy(img).reshape(-1)[0])
            boxes = _to_numpy(p["boxes"]).reshape(-1, 4)
            scores = _to_numpy(p["scores"], np.float64).reshape(-1)
            masks = p.get("masks_rle")
            raw = p["labels"]
            if is_text(raw):
                if self.resolver is None:
                    raise ValueError("labels are names: pass categories= (the ground truth's categories) "
                                     "to resolve them")
                labels = self.resolver(list(raw))
                ok = labels >= 0
                if not ok.all():
                    boxes, scores, labels = boxes[ok], scores[ok], labels[ok]
                    masks = None if masks is None else [m for m, k in zip(masks, ok) if k]
            else:
                labels = self._labels(_to_numpy(raw).reshape(-1))
            self.images.add([img], [len(scores)])
            self.add(img, boxes, scores, labels, masks)

    def warnings(self, gt) -> list:
        """Coverage and unknown-label warnings for an evaluation against ``gt``."""
        out = self.images.warnings(gt)
        if self.resolver is not None and self.resolver.report():
            out.append(self.resolver.report())
        return out

    def state(self) -> dict:
        s = super().state()
        s["images"] = self.images.state()
        if self.resolver is not None:
            s["unknown_labels"] = dict(self.resolver.unknown)
        return s

    def load_state(self, state: dict) -> TopKPerClassCollector:
        super().load_state(state)
        if "images" in state:
            self.images.load_state(state["images"])
        if self.resolver is not None and state.get("unknown_labels"):
            self.resolver.merge_unknown(state["unknown_labels"])
        return self

    def compute(self) -> dict:
        """The kept detections as columns (image_id, category_id, score, bbox xywh)."""
        return self.to_columns()


class FixedAPMetric:
    """AP-Fixed (and AP-Old, AP-Pool) of detections accumulated batch by batch, in bounded memory.

    ``gt``: ground truth (path, dict or GroundTruth), loaded once.
    ``iou_type``: bbox, segm or boundary (Boundary IoU with ``dilation_ratio``; masks needed).
    ``max_dets_per_class``: AP-Fixed's budget K; ``max_dets_per_image``:
    AP-Old's cap (default: 300 for LVIS, 100 for COCO). Only the top K per
    class (and, when ``"old"`` is among ``protocols``, the top N per image)
    are kept while updating, and :meth:`compute` gives the same figures as
    ``lveval evaluate`` on all the detections. ``compute()`` returns flat keys
    (``AP-Fixed``, ``APr-Fixed``, ``AP-Old``, ``AP-Pool``, ...); the full
    :class:`lveval.metrics.EvalResult` is kept in ``self.result``.
    """

    def __init__(self, gt, *, iou_type: str = "bbox", max_dets_per_class: int = 10_000,
                 max_dets_per_image: int | None = None, protocols=("old", "fixed", "pooled"),
                 box_format: str = "xyxy", label_to_category=None, dataset: str | None = None,
                 on_unknown_image: str = "error", on_unknown_category: str = "error",
                 dilation_ratio: float = 0.02):
        from ..io.gt import load_gt

        self.gt = load_gt(gt, dataset=dataset)
        if iou_type not in ("bbox", "segm", "boundary"):
            raise ValueError("iou_type must be 'bbox', 'segm' or 'boundary'")
        Params(iou_type=iou_type, dilation_ratio=dilation_ratio)   # validates the ratio
        self.iou_type = iou_type
        self.protocols = tuple(protocols)
        self.max_dets_per_class = int(max_dets_per_class)
        params = Params(dataset=self.gt.kind, max_dets_per_image=max_dets_per_image)   # its default cap
        self.max_dets_per_image = int(params.max_dets_per_image)
        self.box_format = box_format
        self.label_to_category = label_to_category
        self.eval_kwargs = dict(on_unknown_image=on_unknown_image, on_unknown_category=on_unknown_category)
        if iou_type == "boundary":
            self.eval_kwargs["dilation_ratio"] = float(dilation_ratio)
        self.result = None
        self.reset()

    def _new_collector(self) -> TopKPerClassCollector:
        return TopKPerClassCollector(**collector_caps(self), box_format=self.box_format,
                                     label_to_category=self.label_to_category, categories=self.gt)

    def reset(self) -> None:
        """Forget all detections."""
        self.collector = self._new_collector()
        self.result = None

    def update(self, preds, image_ids=None) -> None:
        """Add a batch: a list of dicts with ``boxes`` (n, 4), ``scores`` (n,), ``labels`` (n,)
        and ``image_id`` (or pass ``image_ids``); segm evaluation also needs ``masks_rle``
        (COCO RLE dicts) or ``masks`` (n, H, W) binary arrays. Labels may be category names
        or LVIS synonyms (strings); names matching nothing are dropped and reported."""
        if isinstance(preds, Mapping):
            preds = [preds]
        if self.iou_type in ("segm", "boundary"):
            preds = [_with_rle(p) for p in preds]
        self.collector.update(preds, image_ids)

    def state(self) -> dict:
        """Picklable state (numpy arrays) for exchange between workers."""
        return self.collector.state()

    def merge(self, other) -> FixedAPMetric:
        """Add another worker's detections (a FixedAPMetric or its :meth:`state`); returns self."""
        s = other.state() if isinstance(other, FixedAPMetric) else other
        self.collector.load_state(s)
        return self

    def compute(self) -> dict:
        """Evaluate the kept detections; flat figures (fractions, -1 where undefined)."""
        from ..metrics import evaluate

        cols = self.collector.compute()
        self.result = evaluate(self.gt, cols, iou_type=self.iou_type, protocols=self.protocols,
                               max_dets_per_image=self.max_dets_per_image,
                               max_dets_per_class=self.max_dets_per_class, **self.eval_kwargs)
        add_warnings(self.result, self.collector.warnings(self.gt))
        return flat_figures(self.result, self.protocols)


def _with_rle(p: Mapping) -> Mapping:
    if "masks_rle" in p:
        return p
    if "masks" not in p:
        raise ValueError("segm evaluation needs 'masks_rle' (RLE dicts) or 'masks' (n, H, W) per image")
    q = dict(p)
    q["masks_rle"] = encode_masks(p["masks"])
    return q


def encode_masks(masks) -> list:
    """COCO compressed RLEs (``counts`` as str) of binary masks (n, H, W); values > 0.5 are foreground."""
    from pycocotools import mask as mask_utils

    m = _to_numpy(masks)
    if m.ndim == 4:       # (n, 1, H, W) as torchvision returns
        m = m[:, 0]
    m = np.asfortranarray((m > 0.5).transpose(1, 2, 0).astype(np.uint8))
    rles = mask_utils.encode(m) if m.shape[2] else []
    for r in rles:
        r["counts"] = r["counts"].decode()
    return list(rles)
