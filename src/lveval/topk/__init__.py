"""Streaming top-K per class: results files larger than memory, and detections during inference.

AP-Fixed evaluates the top K detections of each class over the whole set
(Dave et al. 2021, Sec. 4), so a detector's output can be reduced to those
rows before evaluation without changing AP-Fixed or AP-Pool. This module
does that in bounded memory:

* :class:`TopKPerClass` collects detections as they are produced
  (``collector.add(image_id, boxes, scores, classes)``) and keeps at most K
  per class (optionally also the top N of each image, so AP-Old stays exact).
* :func:`topk_file` / ``lveval topk RESULTS --max-dets-per-class K --out OUT`` reduce a
  results file (.json array, .jsonl, .parquet) in two streaming passes: the
  first selects rows keeping only (score, group, byte range) per candidate,
  the second copies the selected records to the output unchanged.

The selection is :func:`lveval.select.top_k_per_group`, the routine behind
:func:`lveval.select.top_k_per_class`: among equal scores the earlier record
wins. Kept rows stay in arrival order, so
evaluating the reduced file gives the same AP-Fixed as evaluating the full one.

Modules: ``pool`` (the kept rows, pruned per criterion), ``collector``
(:class:`TopKPerClass`), ``records`` (record boundaries of JSON files),
``files`` (the two passes of :func:`topk_file`), ``known`` (``--gt``'s id
policies) and ``writer`` (JSON, JSON Lines or Parquet output).

Memory is bounded by the kept rows: a pool holds at most K per class (plus N
per image) after each prune, and pending rows are pruned once they reach a
quarter of the kept ones; rows that cannot enter a full class (score not
above its K-th best) are dropped on arrival.
"""
from __future__ import annotations

from ..select import top_k_per_group as topk_mask  # the selection kernel, kept under its old name
from .collector import TopKPerClass
from .files import topk_file

__all__ = ["TopKPerClass", "topk_mask", "topk_file"]
