"""An mmengine metric for mmdetection 3.x: AP-Old under mmdet's own keys, plus AP-Fixed and AP-Pool.

    custom_imports = dict(imports=["lveval.integrations.mmdet"], allow_failed_imports=False)
    val_evaluator = dict(type="LVEvalMetric", ann_file="data/lvis_v1/annotations/lvis_v1_val.json",
                         metric=["bbox", "segm"])
    test_evaluator = val_evaluator

``LVEvalMetric`` returns the keys mmdet's ``LVISMetric`` returns, with the same
meaning (``lvis/bbox_AP``, ``lvis/bbox_AP50``, ..., ``lvis/bbox_APr`` ...: lvis-api's
AP with at most 300 detections per image, rounded to 3 decimals), so configs,
``save_best`` and checkpoint rules keep working, and adds
``lvis/bbox_AP_fixed``, ``lvis/bbox_APr_fixed`` ... (AP-Fixed, top K per class)
and ``lvis/bbox_AP_pool`` ... (AP-Pool). Against a COCO-style file the keys
are ``CocoMetric``'s (``coco/bbox_mAP``, ``coco/bbox_mAP_50`` ...).

Memory is bounded: each rank keeps only the top K detections per class and
the top N per image while ``process`` runs, and only that pruned state is
gathered on rank 0. Images a distributed sampler repeats to pad the last
batch are counted once.

Labels map to category ids as mmdet's datasets number them: the annotation
file's category order (for COCO files, the categories named in
``dataset_meta["classes"]``, in file order, as ``CocoMetric`` does).
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import numpy as np

try:
    from mmengine.dist import broadcast_object_list, collect_results, get_world_size, is_main_process
    from mmengine.evaluator import BaseMetric
    from mmengine.logging import MMLogger
    from mmengine.registry import METRICS
except ImportError as e:  # pragma: no cover - exercised without mmengine
    raise ImportError("lveval.integrations.mmdet needs mmengine (mmdetection 3.x): "
                      "pip install 'lveval[mmdet]'") from e

from ..params import Params
from ..topk.collector import TopKPerClass, _to_numpy
from .labels import normalize_name
from .metric import ImageLog, add_warnings, collector_caps, encode_masks

#: mmdet's LVISMetric / CocoMetric result names, from lveval's AP-Old keys
LVIS_KEYS = ("AP", "AP50", "AP75", "APs", "APm", "APl", "APr", "APc", "APf")
COCO_KEYS = {"mAP": "AP", "mAP_50": "AP50", "mAP_75": "AP75", "mAP_s": "APs", "mAP_m": "APm", "mAP_l": "APl"}
_SUFFIX = {"fixed": "fixed", "pooled": "pool"}


@METRICS.register_module()
class LVEvalMetric(BaseMetric):
    """mmengine ``BaseMetric``: mmdet's LVIS (or COCO) keys with AP-Old's meaning, plus AP-Fixed, AP-Pool.

    ann_file: the LVIS (or COCO) annotation file. metric: ``"bbox"``,
    ``"segm"`` or both. max_dets_per_class: AP-Fixed's K (10,000);
    max_dets_per_image: AP-Old's cap (300 for LVIS, 100 for COCO).
    protocols: which of ``old``, ``fixed``, ``pooled`` to evaluate.
    digits: decimals of the returned figures (3 as mmdet rounds; None keeps
    them exact). classwise: also ``<name>_precision``, each class's AP-Old
    (NaN where undefined), as mmdet's ``classwise=True`` adds. Other
    ``LVISMetric`` arguments (``outfile_prefix``, ``proposal_nums``, ...) are
    accepted and unused. ``self.eval_results`` holds each type's
    :class:`lveval.metrics.EvalResult` after ``evaluate``.
    """

    default_prefix: str | None = "lvis"

    def __init__(self, ann_file: str, metric: str | Sequence[str] = "bbox", *,
                 max_dets_per_class: int = 10_000, max_dets_per_image: int | None = None,
                 protocols: Sequence[str] = ("old", "fixed", "pooled"), digits: int | None = 3,
                 classwise: bool = False, collect_device: str = "cpu", prefix: str | None = None,
                 dataset: str | None = None, backend_args: dict | None = None, format_only: bool = False,
                 **_unused) -> None:
        from mmengine.fileio import get_local_path

        from ..io.gt import load_gt
        from ..metrics import check_protocols

        if format_only:
            raise ValueError("LVEvalMetric evaluates; for format_only use mmdet's LVISMetric")
        with get_local_path(ann_file, backend_args=backend_args) as local:
            self.gt = load_gt(local, dataset=dataset)
        if prefix is None and self.gt.kind == "coco":
            prefix = "coco"
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.metrics = [metric] if isinstance(metric, str) else list(metric)
        for m in self.metrics:
            if m not in ("bbox", "segm"):
                raise KeyError(f"metric must be 'bbox' or 'segm' (got {m!r}); proposals are not supported")
        self.protocols = check_protocols(protocols)
        self.max_dets_per_class = int(max_dets_per_class)
        self.max_dets_per_image = int(Params(dataset=self.gt.kind,
                                             max_dets_per_image=max_dets_per_image).max_dets_per_image)
        self.digits = digits
        self.classwise = bool(classwise)
        self.eval_results: dict = {}
        self._table = None
        self._reset_state()

    # -- label -> category id ---------------------------------------------------------------------
    def _label_table(self) -> np.ndarray:
        """Category id of each label, as mmdet's LVIS / COCO datasets number their labels."""
        if self._table is None:
            cats = self.gt.dataset.get("categories") or [{"id": int(c)} for c in self.gt.cat_ids]
            ids = [int(c["id"]) for c in cats]
            classes = (self.dataset_meta or {}).get("classes")
            if self.gt.kind == "coco" and classes:
                wanted = {normalize_name(n) for n in classes}
                ids = [int(c["id"]) for c in cats if normalize_name(c.get("name", "")) in wanted]
                if len(ids) != len(classes):
                    raise ValueError(f"dataset_meta names {len(classes)} classes but {len(ids)} of the "
                                     "annotation file's categories carry those names")
            self._table = np.asarray(ids, np.int64)
        return self._table

    # -- collecting ---------------------------------------------------------------------------------
    def _reset_state(self) -> None:
        caps = collector_caps(self)
        self._collectors = {m: TopKPerClass(**caps, box_format="xyxy") for m in self.metrics}
        self._images = ImageLog()
        self._order: list = []          # image ids in processing order (to count padded repeats once)

    def process(self, data_batch, data_samples: Sequence) -> None:
        """Push one batch of mmdet data samples (dicts or DetDataSample) into the top-K collectors."""
        table = self._label_table()
        for sample in data_samples:
            pred = _get(sample, "pred_instances")
            img = int(_to_numpy(_get(sample, "img_id")).reshape(-1)[0])
            boxes = _to_numpy(_get(pred, "bboxes")).reshape(-1, 4)
            scores = _to_numpy(_get(pred, "scores"), np.float64).reshape(-1)
            labels = _to_numpy(_get(pred, "labels")).astype(np.int64).reshape(-1)
            if len(labels) and (labels.min() < 0 or labels.max() >= len(table)):
                raise ValueError(f"image {img}: label {int(labels.max())} out of range for the "
                                 f"{len(table)} categories of the annotation file")
            cats = table[labels]
            self._images.add([img], [len(scores)])
            self._order.append(img)
            for m, col in self._collectors.items():
                if m == "bbox":
                    col.add(img, boxes, scores, cats)
                else:
                    masks = _get(pred, "masks", None)
                    if masks is None:
                        raise ValueError("segm evaluation needs pred_instances.masks")
                    s = _get(pred, "mask_scores", None)     # some detectors score masks apart
                    s = scores if s is None else _to_numpy(s, np.float64).reshape(-1)
                    col.add(img, boxes, s, cats, encode_masks(masks))

    def state(self) -> dict:
        """This rank's pruned state: the kept rows of each collector, the image log and order."""
        return {"collectors": {m: c.state() for m, c in self._collectors.items()},
                "images": self._images.state(), "order": np.asarray(self._order, np.int64)}

    # -- gathering and evaluating -------------------------------------------------------------------
    def evaluate(self, size: int) -> dict:
        """Gather every rank's pruned state on rank 0, evaluate, broadcast the figures.

        Replaces ``BaseMetric.evaluate``, which would gather every processed
        sample; ``size`` (the dataset length) is not needed: repeated images
        are recognised by their id.
        """
        states = collect_results([self.state()], get_world_size(), self.collect_device)
        if is_main_process():
            out = self.compute_metrics(states)
            if self.prefix:
                out = OrderedDict(("/".join((self.prefix, k)), v) for k, v in out.items())
            metrics = [out]
        else:
            metrics = [None]
        broadcast_object_list(metrics)
        self._reset_state()
        self.results.clear()
        return metrics[0]

    def compute_metrics(self, results: list) -> dict:
        """Figures from the ranks' states (rank order): mmdet's keys, then ``_fixed`` and ``_pool`` ones."""
        from ..metrics import evaluate

        logger = MMLogger.get_current_instance()
        kept, images = _merge(results)
        out: dict = OrderedDict()
        for m in self.metrics:
            r = evaluate(self.gt, kept[m].to_columns(), iou_type=m, protocols=self.protocols,
                         max_dets_per_image=self.max_dets_per_image, max_dets_per_class=self.max_dets_per_class)
            add_warnings(r, images.warnings(self.gt))
            for w in r.notices.warnings:
                logger.warning(f"lveval ({m}): {w}")
            self.eval_results[m] = r
            out.update(self._figures(m, r))
            if self.classwise and r.old:
                for row in r.per_class:
                    ap = row.get("AP_old", -1.0)
                    out[f"{row['name']}_precision"] = round(ap, 3) if ap >= 0 else float("nan")
        return out

    def _figures(self, m: str, r) -> dict:
        lvis = self.gt.kind == "lvis"
        names = {k: k for k in LVIS_KEYS} if lvis else COCO_KEYS
        out = {}
        if r.old:
            for name, k in names.items():
                if k in r.old:
                    out[f"{m}_{name}"] = self._round(r.old[k])
        for p, suffix in _SUFFIX.items():
            d = getattr(r, p)
            if not d:
                continue
            for name, k in names.items():
                if k in d and k in ("AP", "APr", "APc", "APf", "AP50", "AP75"):
                    out[f"{m}_{name}_{suffix}"] = self._round(d[k])
        return out

    def _round(self, v: float) -> float:
        v = float(v)
        return v if self.digits is None or v < 0 else round(v, self.digits)


def _merge(states: list):
    """One collector per type and one image log from the ranks' states; an image repeated on a later
    rank (a sampler padding the last batch) keeps only the first rank's detections."""
    first = states[0]["collectors"]
    kept = {m: TopKPerClass(s["k"], s.get("per_image"), per_image_scope=s.get("per_image_scope", "image"))
            for m, s in first.items()}
    images = ImageLog()
    done = np.zeros(0, np.int64)
    for st in states:
        order = np.asarray(st["order"], np.int64)
        repeat = np.isin(order, done)
        for m, s in st["collectors"].items():
            if repeat.any():
                s = _drop_images(s, order[repeat])
            kept[m].load_state(s)
        im = st["images"]
        fresh = ~np.isin(im["image_id"], done)
        images.add(im["image_id"][fresh], im["num_dets"][fresh])
        done = np.union1d(done, order)
    return kept, images


def _drop_images(state: dict, image_ids: np.ndarray) -> dict:
    keep = ~np.isin(state["image_id"], image_ids)
    out = dict(state)
    for k in ("image_id", "category_id", "score", "bbox", "segmentation"):
        if k in state:
            out[k] = state[k][keep]
    return out


def _get(obj, name, *default):
    """A field of an mmdet data sample / InstanceData, whether it is a dict or an object."""
    if isinstance(obj, dict):
        if name in obj or not default:
            return obj[name]
        return default[0]
    if default:
        return getattr(obj, name, default[0])
    return getattr(obj, name)


__all__ = ["LVEvalMetric"]
