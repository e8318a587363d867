"""Hugging Face transformers' detection outputs into lveval's collectors.

``post_process_object_detection`` (DETR, RT-DETR, Deformable DETR, OWL-ViT's
image processor) and ``post_process_grounded_object_detection`` (Grounding
DINO, OWL-ViT, OWLv2) return one dict per image with ``scores``, ``boxes``
(XYXY in pixels once ``target_sizes`` is given) and ``labels`` (integer
class ids, or the prompt's words), plus ``text_labels`` for the grounded
ones. :func:`from_hf` turns such a list into the per-image dicts
:class:`~lveval.integrations.FixedAPMetric`,
:class:`~lveval.integrations.TopKPerClassCollector` and
:class:`~lveval.integrations.torchmetrics.LVISMeanAveragePrecision` take;
string labels are resolved there against the ground truth's category names
and LVIS synonyms (case- and space/underscore-insensitive), and names that
match nothing are counted and reported in the result's notices.

    metric = FixedAPMetric("lvis_v1_val.json")
    results = processor.post_process_grounded_object_detection(outputs, threshold=0.05,
                                                               target_sizes=sizes)
    metric.update(from_hf(results, image_ids))
    metric.compute()

Nothing here imports transformers or torch.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

from ..topk.collector import _to_numpy
from .labels import CategoryResolver, is_text


def from_hf(results: Sequence[Mapping], image_ids: Sequence, *, id2label=None) -> list:
    """Per-image prediction dicts (``image_id``, ``boxes`` XYXY, ``scores``, ``labels``) from
    transformers' post-processed outputs.

    ``labels`` are taken from ``text_labels`` when the output has them, else
    from ``labels``; integer labels are turned into names through
    ``id2label`` when given (``model.config.id2label`` for DETR-like models,
    or the list of text queries for OWL-ViT), else left as they are (then
    pass ``label_to_category`` to the collector).
    """
    if len(results) != len(image_ids):
        raise ValueError(f"{len(results)} outputs but {len(image_ids)} image ids")
    out = []
    for r, img in zip(results, image_ids):
        labels = r.get("text_labels") if isinstance(r, Mapping) else None
        if labels is None:
            labels = dict.get(r, "labels") if isinstance(r, dict) else r["labels"]   # no deprecation warning
        if not is_text(labels):
            labels = _to_numpy(labels).reshape(-1)
            if id2label is not None:
                labels = [_name(id2label, int(x)) for x in labels]
        else:
            labels = [str(x) for x in labels]
        out.append({"image_id": int(_to_numpy(img).reshape(-1)[0]), "boxes": _to_numpy(r["boxes"]).reshape(-1, 4),
                    "scores": _to_numpy(r["scores"]).reshape(-1), "labels": labels})
    return out


def _name(id2label, i: int) -> str:
    try:
        return str(id2label[i])
    except (KeyError, IndexError):
        return str(id2label.get(str(i), i)) if isinstance(id2label, Mapping) else str(i)


def resolve(results: Sequence[Mapping], image_ids: Sequence, categories, *, id2label=None):
    """:func:`from_hf` with labels resolved to category ids now: ``(preds, resolver)``; detections
    whose name matches nothing are dropped and counted in ``resolver.unknown``."""
    import numpy as np

    resolver = categories if isinstance(categories, CategoryResolver) else CategoryResolver(categories)
    preds = from_hf(results, image_ids, id2label=id2label)
    for p in preds:
        if is_text(p["labels"]) or (isinstance(p["labels"], list) and not p["labels"]):
            ids = resolver(p["labels"])
            ok = ids >= 0
            p["labels"] = ids[ok]
            p["boxes"], p["scores"] = p["boxes"][ok], p["scores"][ok]
        else:
            p["labels"] = np.asarray(p["labels"], np.int64)
    return preds, resolver


__all__ = ["from_hf", "resolve"]
