"""Paired comparison of detectors on one ground truth, with bootstrap confidence intervals.

Every model is loaded, selected and matched once; the point figures are those
of ``lveval.evaluate``; each bootstrap replicate draws the images with
replacement (the same draw for every model, hence "paired") and recomputes
every protocol from weights on the one matching pass (see ``resample``).
"""
from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import __version__
from ..exceptions import InputError, Notices, OptionError
from ..io.gt import FREQUENCIES, load_gt
from ..metrics import Evaluator, input_digest, make_params
from ..params import PROTOCOLS, Params
from .resample import ModelResampler, _chunk, draw_weights

MIN_CLASS_IMAGES = 5   # a per-class interval needs the class's ground truth on this many images

VERDICTS = {
    "fixed_gain": "the gain holds under AP-Fixed",
    "old_only": "the gain appears under AP-Old only (cross-class re-ranking; `lveval rerank` can confirm it)",
    "noise": "within noise",
    "loss": "a loss",
}


@dataclass
class Comparison:
    """Result of :func:`compare`; ``to_dict()`` is what ``lveval compare --json`` writes."""

    names: list
    params: Params
    gt: Any = field(repr=False)
    points: list = field(repr=False)                  # per model: protocol -> figures
    replicates: list = field(repr=False)              # per model: protocol -> key -> (B,) array
    class_ap: list = field(repr=False)                # per model: (B, K) AP-Fixed per class, or None
    settings: dict = field(default_factory=dict)
    inputs: dict = field(default_factory=dict)
    notices: Notices = field(default_factory=Notices)
    timings: dict = field(default_factory=dict)
    differences: list = field(default_factory=list)

    def to_dict(self) -> dict:
        models = []
        for i, name in enumerate(self.names):
            d = {"name": name, "results": self.inputs["results"][i]}
            for p in PROTOCOLS:
                if p in self.points[i]:
                    d[p] = self.points[i][p]
            models.append(d)
        return {"models": models, "differences": self.differences, "bootstrap": self.settings,
                "params": self.params.to_dict(), "inputs": {"gt": self.inputs["gt"]},
                "warnings": list(self.notices.warnings), "lveval_version": __version__}


def interval(d: np.ndarray, confidence: float) -> tuple:
    """Percentile interval (low, high) of the finite values of ``d`` and the one-sided p-value of
    "no gain": the fraction of replicates whose difference is <= 0. (None, None, None) without data."""
    d = d[np.isfinite(d)]
    if not len(d):
        return None, None, None
    a = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(d, [a, 1.0 - a])
    return float(lo), float(hi), float(np.mean(d <= 0))


def _diff(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Paired differences y - x, NaN where either figure is undefined (-1)."""
    out = y - x
    out[(x < 0) | (y < 0)] = np.nan
    return out


def verdict(diff: dict) -> str:
    """fixed_gain / old_only / noise / loss from the AP intervals of one difference."""
    f = diff.get("fixed", {}).get("AP", {})
    o = diff.get("old", {}).get("AP", {})
    if f.get("low") is not None and f["low"] > 0:
        return "fixed_gain"
    if o.get("low") is not None and o["low"] > 0:
        return "old_only"
    ref = f if f.get("high") is not None else o
    if ref.get("high") is not None and ref["high"] < 0:
        return "loss"
    return "noise"


def compare(gt: Any, models: Mapping[str, Any] | list, params: Params | None = None, *,
            bootstrap: int = 1000, seed: int = 0, confidence: float = 0.95,
            protocols: Iterable[str] | str | None = None, iou_type: str | None = None,
            max_dets_per_image: int | None = None, max_dets_per_class: int | None = None,
            dataset: str | None = None, on_unknown_image: str | None = None,
            on_unknown_category: str | None = None, client=None, workers: int | None = None,
            scheduler: str | None = None, **options: Any) -> Comparison:
    """Compare ``models`` (name -> results, the first is the baseline) on ``gt`` with paired bootstrap
    intervals of every difference to the baseline.

    ``gt`` and each results value: anything :func:`lveval.evaluate` accepts. ``bootstrap``:
    replicates (0: point figures only); ``seed``: the image draw (same seed, same intervals);
    ``confidence``: of the percentile intervals. ``params`` and the other options (any
    :class:`~lveval.params.Params` field) as in :func:`lveval.evaluate`.
    ``client`` / ``scheduler`` / ``workers``: compute the replicates on Dask (a client, a
    scheduler address, or a local cluster of that many processes); the figures are the same.
    """
    t0 = time.perf_counter()
    base = make_params(params, protocols=protocols, iou_type=iou_type, max_dets_per_image=max_dets_per_image,
                       max_dets_per_class=max_dets_per_class, dataset=dataset, on_unknown_image=on_unknown_image,
                       on_unknown_category=on_unknown_category, **options)
    for name in ("class_agnostic", "per_class_metrics"):
        if getattr(base, name):
            raise OptionError(name, "not available in lveval compare")
    for name in ("max_dets", "splits"):
        if getattr(base, name):
            raise OptionError(name, "not available in lveval compare")
    protocols = base.protocols
    if not isinstance(models, Mapping):
        models = {f"model{i}": r for i, r in enumerate(models)}
    sources = list(models.values())
    names = [str(n) for n in models]
    if len(names) < 2:
        raise InputError("compare needs at least two results (a baseline and a model)")
    if len(set(names)) != len(names):
        raise InputError(f"model names must be distinct, got {', '.join(names)}", field="names")
    if not 0.0 < confidence < 1.0:
        raise InputError(f"confidence must be between 0 and 1, got {confidence}", field="confidence")
    if bootstrap < 0:
        raise InputError(f"bootstrap must be >= 0 replicates, got {bootstrap}", field="bootstrap")
    g = load_gt(gt, dataset=base.dataset)
    params = base.resolve(g.kind)
    notices = Notices()
    notices.merge(g.notices)
    W = draw_weights(g.num_images, bootstrap, seed)
    digests, resamplers = [], []
    t_load = t_match = 0.0
    for source in sources:
        t1 = time.perf_counter()
        ev = Evaluator.load(g, source, params)
        notices.merge(ev.dets.notices)
        digests.append(ev.inputs["results"])
        t2 = time.perf_counter()
        resamplers.append(ModelResampler(ev, protocols, W))
        t_load += t2 - t1
        t_match += time.perf_counter() - t2
    t3 = time.perf_counter()
    points = [r.point() for r in resamplers]
    reps, caps = [], []
    if client is not None or scheduler or workers:
        all_parts = _replicates_on_dask(resamplers, W, client, workers, scheduler)
    else:
        all_parts = [[r.replicate(W[c:c + step]) for c in range(0, bootstrap, step)]
                     for r, step in ((r, _step(r)) for r in resamplers)]
    for parts in all_parts:
        reps.append(_concat(parts, protocols))
        caps.append(np.concatenate([p["class_ap_fixed"] for p in parts]) if parts and "fixed" in protocols
                    else None)
    t4 = time.perf_counter()
    c = Comparison(names=names, params=params, gt=g, points=points, replicates=reps, class_ap=caps,
                   settings={"replicates": int(bootstrap), "seed": int(seed), "confidence": float(confidence),
                             "method": "paired percentile bootstrap over images"},
                   inputs={"gt": input_digest(gt, g.digest), "results": digests}, notices=notices)
    c.differences = [_difference(c, j) for j in range(1, len(names))]
    c.timings = {"load_s": t_load, "match_s": t_match, "bootstrap_s": t4 - t3, "total_s": time.perf_counter() - t0}
    return c


def _step(r: ModelResampler) -> int:
    """Replicates per vectorised pass for this model (the figures do not depend on it)."""
    return _chunk(max(len(r.exp.m.det), len(r._fc_cat)))


def _replicate_task(r: ModelResampler, W: np.ndarray) -> dict:
    return r.replicate(W)


def _replicates_on_dask(resamplers: list, W: np.ndarray, client, workers, scheduler) -> list:
    """Each model's replicate figures, chunks of replicates as Dask tasks (results in order)."""
    import uuid

    from ..distributed.dask_backend import client_for, collect, hold, submit_task

    tag = uuid.uuid4().hex[:8]
    out = []
    with client_for(client, workers, scheduler) as c:
        for i, r in enumerate(resamplers):
            held = hold(c, r, key=f"lveval-compare-{tag}-model{i}")
            step = _step(r)
            futs = [submit_task(c, _replicate_task, held, W[a:a + step], key=f"lveval-compare-{tag}-{i}-{a}")
                    for a in range(0, len(W), step)]
            out.append(collect(futs))
            held.release()
    return out


def _concat(parts: list, protocols) -> dict:
    out = {}
    for p in protocols:
        if parts and p in parts[0]:
            out[p] = {k: np.concatenate([x[p][k] for x in parts]) for k in parts[0][p]}
    return out


def _difference(c: Comparison, j: int) -> dict:
    """Differences of model ``j`` to the baseline: per protocol and figure, and per class (AP-Fixed)."""
    conf = c.settings["confidence"]
    d: dict = {"name": c.names[j], "baseline": c.names[0]}
    for p in PROTOCOLS:
        if p not in c.points[0]:
            continue
        a, b = c.points[0][p], c.points[j][p]
        figs = {}
        for k in a:
            if a[k] < 0 or b[k] < 0:
                figs[k] = {"delta": None, "low": None, "high": None, "p": None}
                continue
            ra, rb = c.replicates[0].get(p, {}).get(k), c.replicates[j].get(p, {}).get(k)
            lo = hi = pv = None
            if ra is not None and rb is not None and len(ra):
                lo, hi, pv = interval(_diff(ra, rb), conf)
            figs[k] = {"delta": float(b[k] - a[k]), "low": lo, "high": hi, "p": pv}
        d[p] = figs
    d["verdict"] = verdict(d)
    d["verdict_text"] = VERDICTS[d["verdict"]]
    d["per_class"] = _per_class(c, j)
    return d


def _per_class(c: Comparison, j: int) -> dict:
    """AP-Fixed per class: each class's paired difference and interval; the classes whose interval
    excludes 0, by frequency group."""
    if "class_ap_fixed" not in c.points[0]:
        return {}
    g = c.gt
    a, b = c.points[0]["class_ap_fixed"], c.points[j]["class_ap_fixed"]
    ra, rb = c.class_ap[0], c.class_ap[j]
    conf = c.settings["confidence"]
    rows = []
    changed = {f: {"up": [], "down": []} for f in (FREQUENCIES if g.kind == "lvis" else ("",))}
    # images with ground truth of each class: with fewer, resampling images cannot show its variance
    pairs = np.unique(g.ann_img[~g.ann_ignore].astype(np.int64) * g.num_categories + g.ann_cat[~g.ann_ignore])
    n_img = np.bincount(pairs % g.num_categories, minlength=g.num_categories)
    for k in np.flatnonzero((a >= 0) & (b >= 0)):
        lo = hi = None
        if ra is not None and len(ra) and n_img[k] >= MIN_CLASS_IMAGES:
            lo, hi, _ = interval(rb[:, k] - ra[:, k], conf)
        f = str(g.cat_freq[k]) if g.kind == "lvis" else ""
        row = {"category_id": int(g.cat_ids[k]), "name": g.cat_names[k], "frequency": f,
               "num_images": int(n_img[k]), "delta": float(b[k] - a[k]), "low": lo, "high": hi}
        rows.append(row)
        key = f if f in changed else None
        if key is not None and lo is not None:
            if lo > 0:
                changed[key]["up"].append(g.cat_names[k])
            elif hi < 0:
                changed[key]["down"].append(g.cat_names[k])
    return {"classes": rows, "changed": changed, "min_images": MIN_CLASS_IMAGES}
