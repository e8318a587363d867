"""A ``torchmetrics.Metric`` with ``MeanAveragePrecision``'s interface, plus AP-Fixed and AP-Pool.

    from lveval.integrations.torchmetrics import LVISMeanAveragePrecision
    metric = LVISMeanAveragePrecision(iou_type="bbox")            # ground truth from the targets
    metric.update(preds, target)                                  # lists of dicts, as torchmetrics takes
    metric.compute()    # {"map": ..., "map_50": ..., "mar_100": ..., "map_fixed": ..., "map_pool": ...}

Under COCO rules (ground truth from the targets, or a COCO file) the
torchmetrics keys mean what ``MeanAveragePrecision`` (pycocotools backend)
computes on the same ``update`` calls: pycocotools' AP and AR with at most
``max_detection_thresholds`` detections per image and class. ``map_fixed`` and
``map_pool`` add AP-Fixed (top ``max_dets_per_class`` per class over the whole
set, no per-image cap) and AP-Pool. With an LVIS file (``gt=...``, targets then
carry only ``image_id``) the keys follow lvis-api (``map`` is AP-Old, 300
detections per image; ``mar_300``) and ``map_r`` / ``map_c`` / ``map_f`` (and
``map_fixed_r`` ..., ``map_pool_r`` ...) are added.

Memory is bounded: only the top K detections per class and the top N per
image (and class, under COCO rules) are kept while updating; under DDP each
rank sends only that pruned state when the metric syncs. ``forward`` only
updates (returns None): the figures of one batch are not a useful number
for this metric.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

try:
    import torch
    from torchmetrics import Metric
except ImportError as e:  # pragma: no cover - exercised without torchmetrics
    raise ImportError("lveval.integrations.torchmetrics needs torchmetrics: "
                      "pip install 'lveval[torchmetrics]'") from e

from ..params import Params
from ..topk.collector import TopKPerClass, _to_numpy
from .labels import CategoryResolver, is_text
from .metric import ImageLog, _LabelMap, add_warnings, encode_masks

_DET = ("det_image", "det_label", "det_score", "det_box")
_GT = ("gt_image", "gt_label", "gt_box", "gt_crowd", "gt_area")
_IMG = ("img_key", "img_ndet", "img_size")
_OBJ = ("det_mask", "gt_mask")          # lists of RLE dicts, gathered as objects
_WIDTH = {"det_box": (4,), "gt_box": (4,), "img_size": (2,)}


def default_thresholds():
    """torchmetrics' default IoU and recall thresholds: ``torch.linspace`` float32 values, as float64."""
    iou = torch.linspace(0.5, 0.95, round((0.95 - 0.5) / 0.05) + 1).tolist()
    rec = torch.linspace(0.0, 1.00, round(1.00 / 0.01) + 1).tolist()
    return iou, rec


def box_to_xywh(boxes: np.ndarray, box_format: str) -> np.ndarray:
    """XYWH boxes from ``xyxy`` / ``xywh`` / ``cxcywh``, computed in the input's dtype the way
    torchvision's ``box_convert`` does (through XYXY for ``cxcywh``)."""
    b = np.asarray(boxes).reshape(-1, 4)
    if not np.issubdtype(b.dtype, np.floating):
        b = b.astype(np.float32)
    if box_format == "xywh":
        return b.copy()
    if box_format == "cxcywh":
        half = b.dtype.type(0.5)
        cx, cy, w, h = b[:, 0], b[:, 1], b[:, 2], b[:, 3]
        b = np.stack([cx - half * w, cy - half * h, cx + half * w, cy + half * h], axis=1)
    elif box_format != "xyxy":
        raise ValueError(f"box_format must be one of xyxy, xywh, cxcywh, not {box_format!r}")
    return np.stack([b[:, 0], b[:, 1], b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]], axis=1)


class LVISMeanAveragePrecision(Metric):
    """torchmetrics' ``MeanAveragePrecision`` figures (COCO rules) or lvis-api's (LVIS file), plus
    AP-Fixed and AP-Pool, in bounded memory.

    box_format, iou_type (``"bbox"``, ``"segm"`` or both as a tuple),
    iou_thresholds, rec_thresholds, max_detection_thresholds, class_metrics:
    as torchmetrics' ``MeanAveragePrecision``.
    gt: an LVIS or COCO ground truth (path or dict); then targets only carry
    ``image_id``, prediction labels are category ids (or names / LVIS
    synonyms, or mapped through ``label_to_category``), and the default
    thresholds are lvis-api's / pycocotools' float64 ones (without ``gt``,
    torchmetrics' float32 ``linspace`` values).
    max_dets_per_class: AP-Fixed's K (10,000).
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    def __init__(self, box_format: str = "xyxy", iou_type="bbox", iou_thresholds: list | None = None,
                 rec_thresholds: list | None = None, max_detection_thresholds: list | None = None,
                 class_metrics: bool = False, *, gt=None, max_dets_per_class: int = 10_000,
                 protocols: Sequence[str] = ("old", "fixed", "pooled"), label_to_category=None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        from ..metrics import check_protocols

        box_to_xywh(np.zeros((0, 4), np.float32), box_format)
        self.box_format = box_format
        self.iou_type = (iou_type,) if isinstance(iou_type, str) else tuple(iou_type)
        if not self.iou_type or any(t not in ("bbox", "segm") for t in self.iou_type):
            raise ValueError(f"iou_type must be 'bbox', 'segm' or a tuple of them, not {iou_type!r}")
        if not isinstance(class_metrics, bool):
            raise ValueError("class_metrics must be a boolean")
        self.class_metrics = class_metrics
        self.protocols = check_protocols(protocols)
        self.max_dets_per_class = int(max_dets_per_class)
        self.gt = None
        if gt is not None:
            from ..io.gt import load_gt

            self.gt = load_gt(gt)
        # default thresholds: torchmetrics' own (float32 linspace) on targets, the references' (float64,
        # what lvis-api, pycocotools and the CLI use) against a ground truth file
        d_iou, d_rec = default_thresholds() if self.gt is None else (Params().iou_thrs.tolist(),
                                                                     Params().rec_thrs.tolist())
        self.iou_thresholds = list(iou_thresholds) if iou_thresholds else d_iou
        self.rec_thresholds = list(rec_thresholds) if rec_thresholds else d_rec
        lvis = self.gt is not None and self.gt.kind == "lvis"
        if max_detection_thresholds is None:
            mdt = [300] if lvis else [1, 10, 100]
        else:
            mdt = sorted(int(x) for x in max_detection_thresholds)
            if not lvis and len(mdt) != 3:
                raise ValueError(f"max_detection_thresholds needs 3 values, got {len(mdt)}")
        self.max_detection_thresholds = mdt
        self._labels = _LabelMap(label_to_category)
        self._resolver = CategoryResolver(self.gt) if self.gt is not None else None
        self.result: dict = {}
        for name in _DET + _GT + _IMG + _OBJ:
            self.add_state(name, default=[], dist_reduce_fx=None)
        self._n_images = 0
        self._pending = 0
        self._kept = 0

    # -- updating -----------------------------------------------------------------------------------
    def _params(self, iou_type: str) -> Params:
        kind = self.gt.kind if self.gt is not None else "coco"
        mdt = self.max_detection_thresholds
        return Params(iou_type=iou_type, dataset=kind, max_dets_per_image=mdt[-1],  # type: ignore[arg-type]
                      max_dets_per_class=self.max_dets_per_class,
                      max_dets=tuple(int(m) for m in mdt) if kind == "coco" else None,
                      iou_thresholds=tuple(float(t) for t in self.iou_thresholds),
                      rec_thresholds=tuple(float(t) for t in self.rec_thresholds))

    @property
    def _segm(self) -> bool:
        return "segm" in self.iou_type

    def _collector(self) -> TopKPerClass:
        coco = self.gt is None or self.gt.kind == "coco"
        per_image = self.max_detection_thresholds[-1] if "old" in self.protocols else None
        return TopKPerClass(self.max_dets_per_class, per_image, box_format="xywh",
                            per_image_scope="image_category" if coco else "image")

    def update(self, preds: list, target: list) -> None:
        """Add a batch: ``preds`` dicts of boxes / scores / labels (/ masks), ``target`` dicts of boxes /
        labels (/ iscrowd / area / masks), or with ``gt=``: ``image_id`` only."""
        if not isinstance(preds, (list, tuple)) or not isinstance(target, (list, tuple)):
            raise ValueError("preds and target must be lists of dicts (one per image)")
        if len(preds) != len(target):
            raise ValueError(f"preds and target must have the same length ({len(preds)} != {len(target)})")
        keys, ndet, sizes = [], [], []
        for p, t in zip(preds, target):
            key = self._image_key(t)
            img_size = self._add_target(key, t) if self.gt is None else (0, 0)
            n, det_size = self._add_pred(key, p)
            keys.append(key)
            ndet.append(n)
            sizes.append(det_size if img_size == (0, 0) else img_size)
        self.img_key.append(torch.as_tensor(np.asarray(keys, np.int64)))
        self.img_ndet.append(torch.as_tensor(np.asarray(ndet, np.int64)))
        self.img_size.append(torch.as_tensor(np.asarray(sizes, np.int64).reshape(-1, 2)))
        if self._pending > max(1 << 16, self._kept // 4):
            self._prune()

    def _image_key(self, t) -> int:
        if self.gt is None:
            self._n_images += 1
            return self._n_images - 1
        if "image_id" not in t:
            raise ValueError("with gt=..., each target needs an image_id")
        return int(_to_numpy(t["image_id"]).reshape(-1)[0])

    def _add_target(self, key: int, t) -> tuple:
        labels = _to_numpy(t["labels"]).astype(np.int64).reshape(-1)
        n = len(labels)
        if "bbox" in self.iou_type:
            box = box_to_xywh(_to_numpy(t["boxes"]), self.box_format).astype(np.float64)
        else:
            box = np.zeros((n, 4))
        crowd = _to_numpy(t["iscrowd"]).astype(np.int64).reshape(-1) if "iscrowd" in t else np.zeros(n, np.int64)
        area = _to_numpy(t["area"]).astype(np.float64).reshape(-1) if "area" in t else np.zeros(n)
        size = (0, 0)
        if self._segm:
            m = _to_numpy(t["masks"])
            rles = encode_masks(m) if n else []
            self.gt_mask.append(rles)
            if m.ndim >= 2:
                size = tuple(int(x) for x in m.shape[-2:])
        self.gt_image.append(torch.full((n,), key, dtype=torch.int64))
        self.gt_label.append(torch.as_tensor(labels))
        self.gt_box.append(torch.as_tensor(box))
        self.gt_crowd.append(torch.as_tensor(crowd))
        self.gt_area.append(torch.as_tensor(area))
        return size

    def _add_pred(self, key: int, p) -> tuple:
        scores = _to_numpy(p["scores"]).astype(np.float64).reshape(-1)
        raw = p["labels"]
        if self.gt is not None and is_text(raw):
            labels = self._resolver(list(raw))
        else:
            labels = _to_numpy(raw).astype(np.int64).reshape(-1)
            if self.gt is not None:
                labels = self._labels(labels)
        n = len(scores)
        if "bbox" in self.iou_type or "boxes" in p:
            box = box_to_xywh(_to_numpy(p["boxes"]), self.box_format).astype(np.float64)
        else:
            box = np.zeros((n, 4))
        size = (0, 0)
        rles = None
        if self._segm:
            m = _to_numpy(p["masks"])
            rles = encode_masks(m) if n else []
            if m.ndim >= 2:
                size = tuple(int(x) for x in m.shape[-2:])
        ok = labels >= 0
        if not ok.all():
            scores, labels, box = scores[ok], labels[ok], box[ok]
            rles = None if rles is None else [r for r, k in zip(rles, ok) if k]
        self.det_image.append(torch.full((len(scores),), key, dtype=torch.int64))
        self.det_label.append(torch.as_tensor(labels))
        self.det_score.append(torch.as_tensor(scores))
        self.det_box.append(torch.as_tensor(box))
        if self._segm:
            self.det_mask.append(rles)
        self._pending += len(scores)
        return n, size

    def _prune(self) -> None:
        """Replace the detection chunks by the kept rows (top K per class, top N per image)."""
        cols = self._kept_columns()
        self._set_dets(cols)
        self._pending = 0
        self._kept = len(cols["score"])

    def _kept_columns(self) -> dict:
        c = self._collector()
        cols = _cat_dets(self)
        if len(cols["score"]):
            c.add_columns(cols["image_id"], cols["category_id"], cols["score"], cols["bbox"],
                          cols.get("segmentation"), box_format="xywh")
        out = c.to_columns()
        if self._segm and "segmentation" not in out:
            out["segmentation"] = []
        return out

    def _set_dets(self, cols: dict) -> None:
        self.det_image = [torch.as_tensor(cols["image_id"])]
        self.det_label = [torch.as_tensor(cols["category_id"])]
        self.det_score = [torch.as_tensor(cols["score"])]
        self.det_box = [torch.as_tensor(np.asarray(cols["bbox"], np.float64).reshape(-1, 4))]
        if self._segm:
            self.det_mask = [list(cols.get("segmentation", []))]

    def forward(self, *args: Any, **kwargs: Any) -> None:
        """Update only (a batch's figures are not computed); returns None."""
        self.update(*args, **kwargs)

    # -- syncing ------------------------------------------------------------------------------------
    def _local_state(self) -> dict:
        """This rank's state as numpy arrays, detections cut to the kept rows (the metric's own chunks are
        left as they are: torchmetrics restores them after a sync)."""
        kept = self._kept_columns()
        st = {name: _cat(getattr(self, name)) for name in _GT + _IMG}
        st.update(det_image=kept["image_id"], det_label=kept["category_id"], det_score=kept["score"],
                  det_box=np.asarray(kept["bbox"], np.float64).reshape(-1, 4))
        st["det_mask"] = list(kept.get("segmentation", []))
        st["gt_mask"] = _flat(self.gt_mask)
        st["resolver"] = dict(self._resolver.unknown) if self._resolver is not None else {}
        return st

    def _load_states(self, states: list) -> None:
        """Set this metric's states to the union of ``states`` (one per rank, rank order). Without a
        ground truth file, image keys are renumbered as torchmetrics orders gathered images (rank r's
        j-th image becomes number j * world + r)."""
        world = len(states)
        merged = {}
        for name in _DET + _GT + _IMG:
            parts = []
            for r, s in enumerate(states):
                a = np.asarray(s[name]).reshape((-1,) + _WIDTH.get(name, ()))
                if self.gt is None and name in ("det_image", "gt_image", "img_key"):
                    a = a * world + r
                parts.append(a)
            merged[name] = np.concatenate(parts) if parts else np.zeros(0)
        for name in _DET + _GT + _IMG:
            setattr(self, name, [torch.as_tensor(merged[name])])
        self.det_mask = [[m for s in states for m in s["det_mask"]]] if self._segm else []
        self.gt_mask = [[m for s in states for m in s["gt_mask"]]] if self._segm else []
        if self._resolver is not None:
            self._resolver.unknown.clear()
            for s in states:
                self._resolver.merge_unknown(s["resolver"])

    def _sync_dist(self, dist_sync_fn=None, process_group=None) -> None:
        """Gather every rank's pruned state (detections already cut to the top K) as objects."""
        import torch.distributed as dist

        group = process_group or self.process_group
        local = self._local_state()
        states = [None] * dist.get_world_size(group=group)
        dist.all_gather_object(states, local, group=group)
        self._load_states(states)

    def merge_state(self, incoming_state) -> None:
        """Add another metric's detections and targets (a LVISMeanAveragePrecision or its state dict)."""
        other = incoming_state._local_state() if isinstance(incoming_state, LVISMeanAveragePrecision) else incoming_state
        self._load_states([self._local_state(), other])

    def _apply(self, fn, exclude_state=()):
        return super()._apply(fn, exclude_state=tuple(exclude_state) + _OBJ)

    def reset(self) -> None:
        super().reset()
        self._n_images = self._pending = self._kept = 0
        if self._resolver is not None:
            self._resolver.unknown.clear()

    # -- computing ----------------------------------------------------------------------------------
    def compute(self) -> dict:
        """torchmetrics' keys (``map``, ``map_50``, ..., ``mar_100``, ``map_per_class``, ``classes``) plus
        ``map_fixed``, ``map_pool`` (and r/c/f under LVIS rules), as float32 tensors."""
        from ..metrics import evaluate

        cols = self._kept_columns()
        img_key = _cat(self.img_key)
        img_ndet = _cat(self.img_ndet)
        img_size = _cat(self.img_size).reshape(-1, 2)
        det_labels = np.unique(np.asarray(cols["category_id"], np.int64))
        gt_label = _cat(self.gt_label)
        classes = np.union1d(det_labels, gt_label).astype(np.int64) if self.gt is None else None
        out: dict = {}
        self.result = {}
        for t in self.iou_type:
            prefix = "" if len(self.iou_type) == 1 else f"{t}_"
            if self.gt is None:
                gt = self._target_gt(t, img_key, img_size, classes)
                if gt is None or not len(img_key):
                    out.update(self._empty(prefix))
                    continue
            else:
                gt = self.gt
            ev_cols = _for_type(cols, t)
            r = evaluate(gt, ev_cols, iou_type=t, protocols=self.protocols, params=self._params(t),
                         max_dets_per_image=self.max_detection_thresholds[-1],
                         max_dets_per_class=self.max_dets_per_class,
                         on_unknown_image="skip" if self.gt is None else "error")
            if self.gt is not None:
                log = ImageLog()
                log.add(img_key, img_ndet)
                add_warnings(r, log.warnings(self.gt))
                if self._resolver is not None:
                    add_warnings(r, [self._resolver.report()])
            self.result[t] = r
            out.update(self._figures(prefix, r, gt, ev_cols))
        cls = classes if classes is not None else self._lvis_classes(cols)
        out["classes"] = torch.as_tensor(cls, dtype=torch.int32)
        return out

    def _target_gt(self, t: str, img_key, img_size, classes) -> dict | None:
        """The COCO ground truth torchmetrics builds from the targets (annotation ids from 1, area
        from the converted box or the mask unless given; segm alone: images without masks left out)."""
        if not len(classes):
            return None
        g_img = _cat(self.gt_image)
        g_box = _cat(self.gt_box).reshape(-1, 4)
        g_lab = _cat(self.gt_label)
        g_crowd = _cat(self.gt_crowd)
        g_area = _cat(self.gt_area)
        rles = _flat(self.gt_mask)
        order = np.argsort(g_img, kind="stable")          # image order (keys), file order inside
        size = {int(k): (int(h), int(w)) for k, (h, w) in zip(img_key, img_size)}
        keys = np.unique(img_key)
        if self.iou_type == ("segm",):
            keys = np.unique(g_img)                       # torchmetrics skips images without masks
        if not len(keys):
            return None
        images = [{"id": int(k), "height": max(size.get(int(k), (1, 1))[0], 1),
                   "width": max(size.get(int(k), (1, 1))[1], 1)} for k in keys]
        anns = []
        for j, i in enumerate(order):
            box = [float(x) for x in g_box[i]]
            if g_area[i] > 0:
                area = float(g_area[i])
            elif self._segm:
                area = float(_mask_area(rles[i]))
            else:
                area = box[2] * box[3]
            a = {"id": j + 1, "image_id": int(g_img[i]), "category_id": int(g_lab[i]), "iscrowd": int(g_crowd[i]),
                 "area": area, "bbox": box if "bbox" in self.iou_type else _mask_box(rles[i])}
            if self._segm:
                a["segmentation"] = rles[i]
            anns.append(a)
        cats = [{"id": int(c), "name": str(int(c))} for c in classes]
        return {"images": images, "annotations": anns, "categories": cats}

    def _figures(self, prefix: str, r, gt, cols) -> dict:
        f32 = lambda v: torch.tensor(float(v), dtype=torch.float32)  # noqa: E731
        mdt = self.max_detection_thresholds
        o = r.old or {}
        out = {}
        map_all = self._map_at_100(r, gt, cols) if (self.gt is None or self.gt.kind == "coco") else o.get("AP", -1)
        out[f"{prefix}map"] = f32(map_all)
        for k, src in (("map_50", "AP50"), ("map_75", "AP75"), ("map_small", "APs"), ("map_medium", "APm"),
                       ("map_large", "APl")):
            out[prefix + k] = f32(o.get(src, -1))
        lvis = r.gt.kind == "lvis"
        if lvis:
            out[f"{prefix}mar_{mdt[-1]}"] = f32(o.get("AR", -1))
        else:
            out[f"{prefix}mar_{mdt[0]}"] = f32(o.get(f"AR{mdt[0]}", -1))
            out[f"{prefix}mar_{mdt[1]}"] = f32(o.get(f"AR{mdt[1]}", -1))
            out[f"{prefix}mar_{mdt[2]}"] = f32(o.get("AR", -1))
        for k, src in (("mar_small", "ARs"), ("mar_medium", "ARm"), ("mar_large", "ARl")):
            out[prefix + k] = f32(o.get(src, -1))
        if self.class_metrics and "old" in r.precision:
            ap, ar = _class_figures(r.precision["old"], r.recall["old"])
            idx = self._class_index(r.gt, cols)
            out[f"{prefix}map_per_class"] = torch.as_tensor(ap[idx], dtype=torch.float32)
            out[f"{prefix}mar_{mdt[-1]}_per_class"] = torch.as_tensor(ar[idx], dtype=torch.float32)
        else:
            out[f"{prefix}map_per_class"] = torch.tensor([-1.0])
            out[f"{prefix}mar_{mdt[-1]}_per_class"] = torch.tensor([-1.0])
        if lvis and r.old:
            for f in ("r", "c", "f"):
                out[f"{prefix}map_{f}"] = f32(o.get("AP" + f, -1))
        for p, name in (("fixed", "map_fixed"), ("pooled", "map_pool")):
            d = getattr(r, p)
            if not d:
                continue
            out[prefix + name] = f32(d["AP"])
            out[f"{prefix}{name}_50"] = f32(d.get("AP50", -1))
            out[f"{prefix}{name}_75"] = f32(d.get("AP75", -1))
            if lvis:
                for f in ("r", "c", "f"):
                    out[f"{prefix}{name}_{f}"] = f32(d.get("AP" + f, -1))
        return out

    def _map_at_100(self, r, gt, cols) -> float:
        """pycocotools' ``stats[0]``: AP with maxDets 100 whatever the thresholds (-1 when 100 is not among
        them), which is what torchmetrics reports as ``map``."""
        mdt = self.max_detection_thresholds
        if 100 not in mdt or not r.old:
            return -1.0
        if mdt[-1] == 100:
            return r.old["AP"]
        from ..metrics import evaluate

        r100 = evaluate(gt, cols, iou_type=r.params.iou_type, protocols=("old",), params=self._params(r.params.iou_type),
                        max_dets_per_image=100, max_dets_per_class=self.max_dets_per_class,
                        on_unknown_image="skip" if self.gt is None else "error")
        return r100.old["AP"]

    def _class_index(self, g, cols) -> np.ndarray:
        cls = self._lvis_classes(cols) if self.gt is not None else g.cat_ids
        return np.searchsorted(g.cat_ids, np.asarray(cls, np.int64))

    def _lvis_classes(self, cols) -> np.ndarray:
        """With a ground truth file: categories with detections or annotations on the images evaluated."""
        keys = _cat(self.img_key)
        idx, ok = self.gt.image_index(keys)
        on = np.isin(self.gt.ann_img, idx[ok])
        return np.union1d(np.unique(np.asarray(cols["category_id"], np.int64)),
                          self.gt.cat_ids[np.unique(self.gt.ann_cat[on])]).astype(np.int64)

    def _empty(self, prefix: str) -> dict:
        mdt = self.max_detection_thresholds
        names = ["map", "map_50", "map_75", "map_small", "map_medium", "map_large", f"mar_{mdt[0]}",
                 f"mar_{mdt[1]}", f"mar_{mdt[2]}", "mar_small", "mar_medium", "mar_large"]
        out = {prefix + n: torch.tensor(-1.0) for n in names}
        out[f"{prefix}map_per_class"] = torch.tensor([-1.0])
        out[f"{prefix}mar_{mdt[-1]}_per_class"] = torch.tensor([-1.0])
        return out


def _class_figures(precision: np.ndarray, recall: np.ndarray):
    """pycocotools' stats[0] and stats[8] of each class alone: mean valid precision (area all) and
    mean valid recall over IoU thresholds; -1 where undefined."""
    from ..metrics import mean_valid

    K = precision.shape[2]
    ap = np.array([mean_valid(precision[:, :, k, 0]) for k in range(K)])
    ar = np.array([mean_valid(recall[:, k, 0]) for k in range(K)])
    return ap, ar


def _for_type(cols: dict, t: str) -> dict:
    out = {k: v for k, v in cols.items() if k != "segmentation"}
    if t == "segm":
        out["segmentation"] = cols["segmentation"]
    return out


def _mask_area(rle) -> float:
    from pycocotools import mask as mask_utils

    return float(mask_utils.area(_bytes_rle(rle)))


def _mask_box(rle) -> list:
    from pycocotools import mask as mask_utils

    return [float(x) for x in mask_utils.toBbox(_bytes_rle(rle))]


def _bytes_rle(rle) -> dict:
    c = rle["counts"]
    return {"size": rle["size"], "counts": c.encode() if isinstance(c, str) else c}


def _cat(chunks) -> np.ndarray:
    """One numpy array from a list state's tensors (empty int64 when there are none)."""
    if isinstance(chunks, torch.Tensor):
        return chunks.detach().cpu().numpy()
    parts = [c.detach().cpu().numpy() if isinstance(c, torch.Tensor) else np.asarray(c) for c in chunks]
    parts = [p for p in parts if p.size or p.ndim > 1]
    if not parts:
        return np.zeros(0, np.int64)
    return np.concatenate(parts)


def _flat(chunks) -> list:
    return [m for c in chunks for m in c]


def _cat_dets(metric) -> dict:
    box = _cat(metric.det_box)
    cols = {"image_id": _cat(metric.det_image).astype(np.int64), "category_id": _cat(metric.det_label).astype(np.int64),
            "score": _cat(metric.det_score).astype(np.float64), "bbox": box.reshape(-1, 4).astype(np.float64)}
    if metric._segm:
        cols["segmentation"] = _flat(metric.det_mask)
    return cols


__all__ = ["LVISMeanAveragePrecision", "box_to_xywh", "default_thresholds"]
