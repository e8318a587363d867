"""A detectron2 evaluator for AP-Old, AP-Fixed and AP-Pool that keeps only the top K per class.

``LVEvalEvaluator`` follows detectron2's ``DatasetEvaluator`` protocol
(``reset``, ``process(inputs, outputs)``, ``evaluate``) without importing
detectron2 or torch: it reads ``outputs[i]["instances"]`` through the
attributes every ``Instances`` has (``pred_boxes.tensor`` in XYXY,
``scores``, ``pred_classes``, optional ``pred_masks``).

While inference runs it keeps, per process, the top K detections of each
class (AP-Fixed, AP-Pool) and the top N of each image (AP-Old): memory is
bounded by ``K x classes + N x images`` detections whatever the detector
outputs. ``evaluate()`` gathers the kept detections on the main process
(``torch.distributed`` when initialised; a ``gather`` function can be
injected) and returns detectron2-style ``{"bbox": {"AP-Old": 25.1, ...}}``
in percent, the same figures ``lveval evaluate`` gives on all detections,
together with detectron2's own keys (``AP``, ``AP50``, ..., ``APr``, ``APc``,
``APf``) holding AP-Old, so hooks and checkpointers watching ``bbox/AP`` keep
working.

    from lveval.integrations.detectron2 import LVEvalEvaluator
    evaluator = LVEvalEvaluator("lvis_v1_val.json", iou_types=("bbox", "segm"))
    results = inference_on_dataset(model, data_loader, evaluator)

See docs/detectron2.md for making the detector output K detections per class.
"""
from __future__ import annotations

import logging
import os
from collections import OrderedDict
from collections.abc import Callable, Sequence

import numpy as np

from ..params import Params
from ..topk.collector import TopKPerClass, _to_numpy
from .metric import PROTOCOL_SUFFIX, ImageLog, _LabelMap, add_warnings, collector_caps, encode_masks, flat_figures

log = logging.getLogger("lveval.detectron2")

#: the keys detectron2's LVISEvaluator / COCOEvaluator return (AP-Old's figures, in percent)
CLASSIC_KEYS = {"lvis": ("AP", "AP50", "AP75", "APs", "APm", "APl", "APr", "APc", "APf"),
                "coco": ("AP", "AP50", "AP75", "APs", "APm", "APl")}


def classic_figures(result) -> dict:
    """detectron2's own keys (``AP``, ``AP50``, ..., ``APr``...) from AP-Old, in percent (NaN where
    undefined); empty when AP-Old was not evaluated."""
    if not result.old:
        return {}
    return {k: 100.0 * result.old[k] if result.old[k] >= 0 else float("nan")
            for k in CLASSIC_KEYS[result.gt.kind] if k in result.old}


def default_gather(obj) -> list | None:
    """Gather ``obj`` from every process on the main one (``None`` elsewhere); single process: ``[obj]``.

    Uses detectron2's ``comm.gather`` when detectron2 is installed (it routes
    objects through a gloo group), else ``torch.distributed.gather_object``.
    """
    try:
        import torch.distributed as dist
    except ImportError:
        return [obj]
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return [obj]
    try:
        from detectron2.utils import comm
    except ImportError:
        comm = None
    if comm is not None:
        out = comm.gather(obj, dst=0)
        return out if comm.is_main_process() else None
    world = dist.get_world_size()
    out = [None] * world if dist.get_rank() == 0 else None
    dist.gather_object(obj, out, dst=0)
    return out


class LVEvalEvaluator:
    """detectron2 ``DatasetEvaluator`` computing AP-Old, AP-Fixed and AP-Pool in bounded memory.

    gt: ground truth (path, dict or GroundTruth); for a registered detectron2
        dataset use :meth:`from_dataset_name`.
    iou_types: ``("bbox",)``, ``("bbox", "segm")`` or with ``"boundary"`` (masks need ``pred_masks``).
    category_ids: dataset category id of each contiguous class index (a
        sequence or a dict); default: the ground truth's ids in ascending
        order, which is detectron2's mapping for COCO and LVIS.
    max_dets_per_class: AP-Fixed's K (10,000). max_dets_per_image: AP-Old's
        cap (300 for LVIS, 100 for COCO).
    gather: ``f(obj) -> list | None`` collecting each process's object on the
        main process (default :func:`default_gather`).
    output_dir: if set, the main process writes ``lveval_results.json`` (the
        kept detections) and ``lveval_figures.json`` there.

    ``self.results`` holds the :class:`lveval.metrics.EvalResult` of each IoU type.
    """

    def __init__(self, gt, *, iou_types: Sequence[str] = ("bbox",), category_ids=None,
                 max_dets_per_class: int = 10_000, max_dets_per_image: int | None = None,
                 protocols=("old", "fixed", "pooled"), gather: Callable | None = None,
                 output_dir: str | None = None, dataset: str | None = None):
        from ..io.gt import load_gt

        self.gt = load_gt(gt, dataset=dataset)
        self.iou_types = tuple(iou_types)
        for t in self.iou_types:
            if t not in ("bbox", "segm", "boundary"):
                raise ValueError(f"unsupported iou type {t!r} (bbox, segm or boundary)")
        self.category_ids = self.gt.cat_ids.tolist() if category_ids is None else category_ids
        self._labels = _LabelMap(self.category_ids)
        self.max_dets_per_class = int(max_dets_per_class)
        params = Params(dataset=self.gt.kind, max_dets_per_image=max_dets_per_image)   # its default cap
        self.max_dets_per_image = int(params.max_dets_per_image)
        self.protocols = tuple(protocols)
        self.gather = gather or default_gather
        self.output_dir = output_dir
        self.results: dict = {}
        self.reset()

    @classmethod
    def from_dataset_name(cls, dataset_name: str, **kw) -> LVEvalEvaluator:
        """Build from a registered detectron2 dataset (its ``json_file`` and class id mapping)."""
        from detectron2.data import MetadataCatalog

        meta = MetadataCatalog.get(dataset_name)
        mapping = getattr(meta, "thing_dataset_id_to_contiguous_id", None)
        if mapping is not None and "category_ids" not in kw:
            kw["category_ids"] = {v: k for k, v in mapping.items()}
        return cls(meta.json_file, **kw)

    def reset(self) -> None:
        """Start a new evaluation (called by detectron2 before inference)."""
        self._collector = TopKPerClass(**collector_caps(self), box_format="xyxy")
        self._images = ImageLog()
        self._with_masks = "segm" in self.iou_types or "boundary" in self.iou_types

    def process(self, inputs, outputs) -> None:
        """Keep the top detections of a batch: ``inputs[i]["image_id"]``, ``outputs[i]["instances"]``."""
        for inp, out in zip(inputs, outputs):
            inst = out["instances"]
            if hasattr(inst, "to"):
                inst = inst.to("cpu")
            # XYXY -> XYWH in the tensor's own dtype, as detectron2's instances_to_coco_json does,
            # so the kept boxes equal those of the results file detectron2 would write
            boxes = _to_numpy(inst.pred_boxes.tensor).reshape(-1, 4)
            scores = _to_numpy(inst.scores, np.float64).reshape(-1)
            cats = self._labels(_to_numpy(inst.pred_classes).reshape(-1))
            masks = None
            if self._with_masks:
                if not _has(inst, "pred_masks"):
                    raise ValueError("segm evaluation needs instances.pred_masks")
                masks = encode_masks(inst.pred_masks)
            self._images.add([int(inp["image_id"])], [len(scores)])
            self._collector.add(int(inp["image_id"]), boxes, scores, cats, masks)

    def evaluate(self):
        """Gather, then evaluate on the main process: ``{iou_type: {"AP-Old": ..., ...}}`` in percent.

        Other processes return ``{}`` (as detectron2's evaluators do).
        """
        from ..metrics import evaluate

        state = self._collector.state()
        state["images"] = self._images.state()
        states = self.gather(state)
        if not states:
            return {}
        merged = TopKPerClass.from_states(states)
        images = ImageLog()
        for s in states:
            if "images" in s:
                images.load_state(s["images"])
        cols = merged.to_columns()
        if self.output_dir:
            merged.write(os.path.join(self.output_dir, "lveval_results.json"))
        out = OrderedDict()
        for t in self.iou_types:
            r = evaluate(self.gt, cols, iou_type=t, protocols=self.protocols,
                         max_dets_per_image=self.max_dets_per_image,
                         max_dets_per_class=self.max_dets_per_class)
            add_warnings(r, images.warnings(self.gt))
            self.results[t] = r
            for w in r.notices.warnings:
                log.warning(w)
            out[t] = classic_figures(r)
            out[t].update({k: 100.0 * v if v >= 0 else float("nan")
                           for k, v in flat_figures(r, self.protocols).items()})
        if self.output_dir:
            from ..output import write_json

            write_json(os.path.join(self.output_dir, "lveval_figures.json"),
                       {t: r.to_dict() for t, r in self.results.items()})
        return out


def _has(inst, name: str) -> bool:
    if hasattr(inst, "has"):
        return inst.has(name)
    return hasattr(inst, name)


__all__ = ["LVEvalEvaluator", "default_gather", "classic_figures", "CLASSIC_KEYS", "PROTOCOL_SUFFIX"]
