"""Merging shard results into one :class:`lveval.metrics.EvalResult`.

Per-class precision and recall are columns owned by exactly one shard, so
they are copied into place and summarised by the engine's ``summarize``.
AP-Pool's rows from every shard are put back in the order of a full
``Matching`` (image, class, rank inside the group) and handed to the
engine's ``pooled`` accumulation, which ranks them by descending score.
"""
from __future__ import annotations

import re

import numpy as np

from ..exceptions import Notices
from ..io.results import coverage_warning
from ..match import Matching
from ..metrics import EvalResult, fixed_budget_warning, per_class_table, pooled_curves, summarize, summarize_pooled
from ..select import refine
from .work import ShardResult

_COUNTED = re.compile(r"^(.*): (\d+) (\D.*)$", re.S)


def merge_notices(parts: list) -> Notices:
    """Sum shard notices; a warning carrying a count ("PATH: 12 boxes ...") is summed over shards.

    Warnings keep the order every shard saw them in (the engine emits them
    in a fixed order), merged into one sequence.
    """
    out = Notices()
    counts, text, seqs = {}, {}, []
    for p in parts:
        out.skipped.update({k: out.skipped.get(k, 0) + v for k, v in p.skipped.items()})
        out.flagged.update({k: out.flagged.get(k, 0) + v for k, v in p.flagged.items()})
        seq = []
        for w in p.warnings:
            mt = _COUNTED.match(w)
            key = (mt.group(1), mt.group(3)) if mt else (w, None)
            counts[key] = counts.get(key, 0) + (int(mt.group(2)) if mt else 0)
            text.setdefault(key, w)
            seq.append(key)
        seqs.append(seq)
    for key in _merge_orders(seqs):
        out.warnings.append(text[key] if key[1] is None else f"{key[0]}: {counts[key]} {key[1]}")
    return out


def _merge_orders(seqs: list) -> list:
    """One sequence consistent with every input sequence (first appearance breaks ties)."""
    first, after, indeg = {}, {}, {}
    for s in seqs:
        for i, k in enumerate(s):
            first.setdefault(k, len(first))
            indeg.setdefault(k, 0)
            if i and k not in after.setdefault(s[i - 1], set()):
                after[s[i - 1]].add(k)
                indeg[k] += 1
    ready = sorted((k for k, d in indeg.items() if d == 0), key=first.get)
    out = []
    while ready:
        k = ready.pop(0)
        out.append(k)
        for j in sorted(after.get(k, ()), key=first.get):
            indeg[j] -= 1
            if indeg[j] == 0:
                ready.append(j)
                ready.sort(key=first.get)
    out += [k for k in sorted(first, key=first.get) if k not in out]   # cycles cannot happen; be safe
    return out


def pooled_matching(parts: list, num_gt: np.ndarray, num_cats: int, num_thrs: int) -> Matching:
    """A Matching holding every shard's AP-Pool rows in full-Matching order (area range 'all').

    Each shard's rows are sorted by (image, class, rank) and an (image, class)
    group lives in one shard, so a stable sort on image * K + class restores
    the full order; ``Matching.pool_order`` then ranks exactly as on one machine.
    """
    runs = [p.runs for p in parts if p.runs is not None]
    for p in parts:   # the driver keeps one copy of the rows
        p.runs = None

    def column(k, dt):
        return np.concatenate([r.pop(k) for r in runs]) if runs else np.zeros(0, dt)

    img = column("img", np.int64)
    cls = column("cat", np.int64)
    o = refine(np.arange(len(img)), img.astype(np.int64) * num_cats + cls)
    img, cls = img[o], cls[o]
    score = column("score", np.float64)[o]
    matched = column("matched", np.uint16)[o]
    ignored = column("ignored", np.uint16)[o]
    return Matching(det=o, img=img, cat=cls, score=score, rank=None,
                    matched=matched[None], ignored=ignored[None], num_gt=num_gt, num_thrs=num_thrs)


def _put(full: np.ndarray, cells: np.ndarray, part) -> None:
    """Write a shard's sent cells into the (..., K, A) array (other cells stay -1)."""
    k, a = np.nonzero(part.cells())
    full[..., part.cats[k], a] = cells


def assemble(gt, params, protocols: tuple, parts: list, loader_notices: Notices, inputs: dict) -> EvalResult:
    """The EvalResult ``lveval.evaluate`` would return, from every shard's result (ShardResults or dicts)."""
    parts = [p if isinstance(p, ShardResult) else ShardResult(**p) for p in parts]
    K = gt.num_categories
    T, R, A = len(params.iou_thrs), len(params.rec_thrs), len(params.area_rng)
    owner = np.zeros(K, np.int64)
    num_gt = np.zeros((K, A), np.int64)
    num_dets = np.zeros(K, np.int64)
    for p in parts:
        owner[p.cats] += 1
        num_gt[p.cats] = p.num_gt
        num_dets[p.cats] = p.num_dets
    if (owner != 1).any():
        raise RuntimeError("every class must be evaluated by exactly one shard")
    notices = Notices()
    notices.merge(gt.notices)
    notices.merge(loader_notices)
    notices.merge(merge_notices([p.notices for p in parts]))
    packed = [p.images for p in parts if p.images is not None]
    if packed:   # the engine's coverage warning, from the union of the shards' images
        covered = np.bitwise_or.reduce(np.stack(packed), axis=0)
        w = coverage_warning(None, gt, np.unpackbits(covered)[:gt.num_images].astype(bool))
        if w:
            notices.warn(w)
    res = EvalResult(params=params, gt=gt, notices=notices, matching=None, inputs=inputs)
    for proto in ("old", "fixed"):
        if proto not in protocols:
            continue
        prec = -np.ones((T, R, K, A))
        rec = -np.ones((T, K, A))
        by_md = {} if proto == "old" and gt.kind == "coco" else None
        for p in parts:
            _put(prec, p.precision[proto], p)
            _put(rec, p.recall[proto], p)
            if by_md is not None:
                for md, r in p.recall_by_md[proto].items():
                    _put(by_md.setdefault(md, -np.ones((T, K, A))), r, p)
        if by_md is not None:   # the engine's AR@maxDets order, even without shards
            by_md = {md: by_md.get(md, -np.ones((T, K, A))) for md in params.coco_max_dets[:-1]}
        setattr(res, proto, summarize(prec, rec, params, gt, by_md))
        res.precision[proto], res.recall[proto] = prec, rec
        if proto == "fixed":
            w = fixed_budget_warning(num_dets, params)
            if w:
                notices.warn(w)
    if "pooled" in protocols:
        m = pooled_matching(parts, num_gt, K, T)
        # the engine's pools (all, and r/c/f for LVIS) and its pooled accumulation
        res.pooled_precision = pooled_curves(gt, params, m, None)
        res.pooled = summarize_pooled(res.pooled_precision, params)
    res.per_class = per_class_table(gt, num_dets, num_gt[:, 0], res)
    return res
