"""Check lveval's AP-Fixed against lvis-api on inputs too large for lvis-api in one process.

AP-Fixed has no per-image cap, so every class is evaluated on its own: the
results are split into class shards, lvis-api (LVISEval with ``params.cat_ids``
set to the shard's classes, ``max_dets=-1``) runs on each shard in its own
process, and its per-class precision and recall arrays are put back together.
They are compared with lveval's arrays for the whole file, element by element,
and the summary AP is recomputed from them the way lvis-api's ``summarize``
does. At LVIS v1 val scale (6.85M detections) lvis-api in one process ran out
of a 22 GB limit after 7 minutes; by class shards it fits in a few GB each.

    python benchmarks/check_by_class.py --gt gt.json --results dets_top10000.json --shards 8 --workers 2
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np


def _lvis_api_shard(gt_path: str, results_path: str, cat_ids: list[int], iou_type: str):
    """lvis-api's precision/recall for ``cat_ids`` (in that order) on one shard's results."""
    import contextlib
    import io

    import numpy

    numpy.float = float   # lvis 0.5.3 still uses the removed alias
    from lvis import LVIS, LVISEval, LVISResults

    with contextlib.redirect_stdout(io.StringIO()):
        gt = LVIS(gt_path)
        dt = LVISResults(gt, results_path, max_dets=-1)
        ev = LVISEval(gt, dt, iou_type=iou_type)
        ev.params.max_dets = -1
        ev.params.cat_ids = list(cat_ids)
        ev.evaluate()
        ev.accumulate()
    return ev.eval["precision"], ev.eval["recall"]


def _summary_ap(precision: np.ndarray) -> float:
    """lvis-api's summarize('ap') for area 'all': mean of the entries above -1."""
    p = precision[:, :, :, 0]
    p = p[p > -1]
    return float(np.mean(p)) if p.size else -1.0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--gt", required=True)
    ap.add_argument("--results", required=True, help="results JSON, already cut to the top K per class")
    ap.add_argument("--shards", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--iou-type", default="bbox", choices=("bbox", "segm"))
    ap.add_argument("--json", help="write the comparison here")
    a = ap.parse_args(argv)

    import lveval
    from lveval.io.gt import load_gt
    from lveval.io.results import load_results, write_results

    t0 = time.perf_counter()
    g = load_gt(a.gt)
    ours = lveval.evaluate(g, a.results, iou_type=a.iou_type, protocols=("fixed",))
    t_ours = time.perf_counter() - t0
    dets = load_results(a.results)
    cat_ids = [int(c) for c in g.cat_ids]
    shards = [list(s) for s in np.array_split(np.asarray(cat_ids), a.shards) if len(s)]
    t1 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp, ProcessPoolExecutor(a.workers) as pool:
        futures = []
        for i, cats in enumerate(shards):
            path = os.path.join(tmp, f"shard{i}.json")
            write_results(dets.take(np.isin(dets.cat_id, cats)), path)
            futures.append(pool.submit(_lvis_api_shard, a.gt, path, [int(c) for c in cats], a.iou_type))
        parts = [f.result() for f in futures]
    t_ref = time.perf_counter() - t1
    precision = np.concatenate([p for p, _ in parts], axis=2)
    recall = np.concatenate([r for _, r in parts], axis=1)
    d_prec = float(np.max(np.abs(precision - ours.precision["fixed"])))
    d_rec = float(np.max(np.abs(recall - ours.recall["fixed"])))
    ref_ap = _summary_ap(precision)
    out = {"detections": len(dets), "classes": len(cat_ids), "shards": len(shards),
           "lveval_AP": ours.fixed["AP"], "lvis_api_AP": ref_ap, "abs_diff_AP": abs(ref_ap - ours.fixed["AP"]),
           "max_abs_diff_precision": d_prec, "max_abs_diff_recall": d_rec,
           "seconds": {"lveval": round(t_ours, 2), "lvis_api_by_class": round(t_ref, 2)}}
    print(json.dumps(out, indent=2))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=2)
    return 0 if d_prec <= 1e-12 and d_rec <= 1e-12 and abs(ref_ap - ours.fixed["AP"]) <= 1e-9 else 1


if __name__ == "__main__":
    sys.exit(main())
