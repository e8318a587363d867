"""Boundary IoU timings: lveval against the definition run the way the official code runs it.

The official implementations (lvis-api's ``lvis_challenge_2021`` branch,
boundary-iou-api) find the boundary of *every* ground-truth and result mask up
front, each on its full image with ``cv2.erode`` (d passes of a 3x3 square),
spread over worker processes; then they compute mask and boundary IoU of every
(detection, ground truth) pair of each image and class. lveval finds
boundaries only for masks of pairs whose mask IoU reaches the lowest IoU
threshold, on run lengths.

Timed, each ``--repeat`` times (medians reported, JSON on stdout):

* ``lveval_segm``: ``lveval.evaluate(..., iou_type="segm", protocols=fixed,pooled)`` from JSON;
* ``lveval_boundary``: ``lveval.evaluate(..., challenge="lvis2021")`` from JSON (same protocols);
* ``lveval_boundary_stage``: the part of it that finds boundaries and their IoU (with the
  number of masks whose boundary it computed);
* ``lveval_kernel_all_masks``: lveval's kernel on every ground-truth and result mask (the
  official amount of boundary work, for a like-for-like kernel comparison);
* ``cv2_all_masks``: the definition with ``cv2.erode`` on every mask, decoded on its full
  image, re-encoded as RLE, in ``--processes`` worker processes (the official way);
* with ``--faster-coco-eval``: faster-coco-eval's own C++ boundary routine
  (``faster_coco_eval.core.mask._mask.toBoundary``) on every mask, and whether its
  boundaries equal lveval's pixel for pixel (its COCOeval in ``lvis_style`` did not run on
  LVIS-format mask results here, so only the kernel is compared);
* with ``--faster-coco-eval-coco``: faster-coco-eval's COCOeval in boundary mode end to end
  against ``lveval.evaluate(dataset="coco", iou_type="boundary")`` on the same files (COCO rules,
  results without boxes so both take areas from masks), and the largest difference of their figures;
* with ``--lvis-challenge DIR`` (a checkout of lvis-api's ``lvis_challenge_2021`` branch, the
  directory holding its ``lvis`` package; needs opencv): its
  ``LVISEval(gt, results, mode="challenge2021", max_cpu_num=--processes)`` end to end,
  and whether its figures equal lveval's.

Workloads: ``--lvis-subset`` (the bundled LVIS v0.5 100-image subset with the
simulated detector's masks, ``--candidates`` per image), or ``--gt``/``--results`` files, e.g.
from ``benchmarks/generate.py --segm``:

    python benchmarks/generate.py --n-images 250 --candidates-per-image 200 --segm --out-dir DATA
    python benchmarks/boundary_bench.py --gt DATA/gt.json --results DATA/dets_c200.json
    python benchmarks/boundary_bench.py --lvis-subset --lvis-challenge path/to/lvis-api-challenge
"""
from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
import time
from multiprocessing import get_context

import numpy as np


def cv2_boundary_rles(rles: list, ratio: float) -> list:
    """Boundary RLE of each mask, from the definition with cv2 (full image, d erosions by 3x3)."""
    import cv2
    from pycocotools import mask as mask_utils

    out = []
    kernel = np.ones((3, 3), np.uint8)
    for rle in rles:
        m = mask_utils.decode(rle)
        h, w = m.shape
        d = max(1, int(round(ratio * math.sqrt(h * h + w * w))))
        padded = cv2.copyMakeBorder(m, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
        eroded = cv2.erode(padded, kernel, iterations=d)[1:h + 1, 1:w + 1]
        out.append(mask_utils.encode(np.asfortranarray(m - eroded)))
    return out


def cv2_all(rles: list, ratio: float, processes: int) -> float:
    parts = [list(p) for p in np.array_split(np.array(rles, dtype=object), processes)]
    t = time.perf_counter()
    with get_context("fork").Pool(processes) as pool:
        done = [pool.apply_async(cv2_boundary_rles, (p, ratio)) for p in parts]
        n = sum(len(x.get()) for x in done)
    assert n == len(rles)
    return time.perf_counter() - t


def median_time(fn, repeat: int):
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), times, out


def lvis_subset_inputs(tmp: str, candidates: int, seed: int):
    import orjson

    import lveval
    from lveval.simulate import simulate

    gt = lveval.data_path()
    res = simulate(gt, seed=seed, candidates_per_image=candidates, iou_type="segm")
    for r in res:
        r.pop("bbox", None)    # mask results: areas and boxes from the masks, as the challenge's
    path = os.path.join(tmp, "results.json")
    with open(path, "wb") as f:
        f.write(orjson.dumps(res))
    return gt, path


COCO_STATS = ("AP", "AP50", "AP75", "APs", "APm", "APl")   # pycocotools' stats[0:6], same order


def coco_rules_comparison(gt: str, res: str, tmp: str, repeat: int) -> dict:
    """faster-coco-eval's ``COCOeval_faster(iouType="boundary")`` end to end against
    ``lveval.evaluate(dataset="coco", iou_type="boundary", protocols=("old",))`` on the same
    files: the same selection (pycocotools' top 100 per image and class), both from JSON.

    The results lose their ``bbox`` first: given one, faster-coco-eval (like lvis-api) takes a
    result's area from its box, lveval from its mask; without it both use the mask area.
    faster-coco-eval's LVIS mode stopped with ``IndexError: unordered_map::at`` on these files,
    hence COCO rules (federated labels unused, as lveval's ``dataset="coco"``)."""
    import orjson
    from faster_coco_eval import COCO, COCOeval_faster

    from lveval.metrics import evaluate

    with open(res, "rb") as f:
        rows = orjson.loads(f.read())
    for r in rows:
        r.pop("bbox", None)
    res = os.path.join(tmp, "results_masks_only.json")
    with open(res, "wb") as f:
        f.write(orjson.dumps(rows))
    del rows

    def theirs():
        g = COCO(gt)
        e = COCOeval_faster(g, g.loadRes(res), iouType="boundary", print_function=lambda *a, **k: None)
        e.evaluate()
        e.accumulate()
        e.summarize()
        return e

    def ours():
        return evaluate(gt, res, dataset="coco", iou_type="boundary", protocols=("old",))

    t_f, ts_f, e = median_time(theirs, repeat)
    t_l, ts_l, r = median_time(ours, repeat)
    figures = {k: float(e.stats[i]) for i, k in enumerate(COCO_STATS)}
    figures["AR@100"] = float(e.stats[8])
    mine = {k: r.old[k] for k in COCO_STATS} | {"AR@100": r.old["AR"]}
    return {"faster_coco_eval_median_s": t_f, "faster_coco_eval_runs_s": ts_f,
            "lveval_median_s": t_l, "lveval_runs_s": ts_l, "speedup_lveval": t_f / t_l,
            "figures": figures, "max_abs_diff": max(abs(figures[k] - mine[k]) for k in figures)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gt")
    ap.add_argument("--results")
    ap.add_argument("--lvis-subset", action="store_true")
    ap.add_argument("--candidates", type=int, default=60, help="--lvis-subset: masks per image")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--processes", type=int, default=2, help="worker processes of the cv2 reference")
    ap.add_argument("--ratio", type=float, default=0.02)
    ap.add_argument("--skip-reference", action="store_true", help="skip the cv2 all-masks reference")
    ap.add_argument("--lvis-challenge", metavar="DIR", help="checkout of lvis-api's lvis_challenge_2021 branch")
    ap.add_argument("--faster-coco-eval", action="store_true", help="time faster-coco-eval's boundary routine")
    ap.add_argument("--faster-coco-eval-coco", action="store_true",
                    help="time faster-coco-eval's COCOeval in boundary mode end to end against lveval under COCO rules")
    a = ap.parse_args(argv)

    import lveval.boundary as B
    from lveval.io.gt import load_gt
    from lveval.io.results import bind, load_results
    from lveval.metrics import evaluate

    with tempfile.TemporaryDirectory() as tmp:
        if a.lvis_subset:
            gt, res = lvis_subset_inputs(tmp, a.candidates, a.seed)
        elif a.gt and a.results:
            gt, res = a.gt, a.results
        else:
            ap.error("give --lvis-subset or --gt and --results")
        g = load_gt(gt)
        dets = bind(load_results(res), g, iou_type="boundary")
        masks = list(g.rles()) + list(dets.segm)
        out = {"workload": {"gt": os.path.basename(gt), "results": os.path.basename(res),
                            "gt_masks": len(g.rles()), "result_masks": len(dets), "images": g.num_images},
               "repeat": a.repeat, "processes": a.processes, "dilation_ratio": a.ratio}

        kw = dict(protocols=("fixed", "pooled"))
        t, ts, r_segm = median_time(lambda: evaluate(gt, res, iou_type="segm", **kw), a.repeat)
        out["lveval_segm"] = {"median_s": t, "runs_s": ts, "AP_fixed": r_segm.fixed["AP"]}

        stage, n_masks = [], []
        orig_refine, orig_bound = B.refine_pairs, B.boundaries

        def refine(*args):
            t0 = time.perf_counter()
            r = orig_refine(*args)
            stage.append(time.perf_counter() - t0)
            return r

        def bound(rles, ratio=0.02):
            n_masks.append(len(rles))
            return orig_bound(rles, ratio)

        B.refine_pairs, B.boundaries = refine, bound
        try:
            t, ts, r_b = median_time(lambda: evaluate(gt, res, challenge="lvis2021"), a.repeat)
        finally:
            B.refine_pairs, B.boundaries = orig_refine, orig_bound
        out["lveval_boundary"] = {"median_s": t, "runs_s": ts, "AP_fixed": r_b.fixed["AP"],
                                  "AP_pool": r_b.pooled["AP"]}
        out["lveval_boundary_stage"] = {"median_s": statistics.median(stage), "runs_s": stage,
                                        "masks_with_boundaries": sum(n_masks) // max(1, len(stage))}

        t, ts, _ = median_time(lambda: B.boundaries(masks, a.ratio), a.repeat)
        out["lveval_kernel_all_masks"] = {"median_s": t, "runs_s": ts, "masks": len(masks)}

        if not a.skip_reference:
            ts = [cv2_all(masks, a.ratio, a.processes) for _ in range(a.repeat)]
            out["cv2_all_masks"] = {"median_s": statistics.median(ts), "runs_s": ts, "masks": len(masks)}
            ref = out["cv2_all_masks"]["median_s"]
            out["speedup_vs_cv2_all_masks"] = {
                "boundary_stage": ref / out["lveval_boundary_stage"]["median_s"],
                "kernel_all_masks": ref / out["lveval_kernel_all_masks"]["median_s"],
            }

        if a.faster_coco_eval:
            from faster_coco_eval.core import mask as fmask
            from pycocotools import mask as mask_utils

            t, ts, fb = median_time(lambda: fmask._mask.toBoundary(masks, a.ratio), a.repeat)
            ours = B.to_rles(B.boundaries(masks, a.ratio))
            same = all(np.array_equal(mask_utils.decode(x), mask_utils.decode(dict(size=y["size"], counts=y["counts"])))
                       for x, y in zip(ours, fb))
            out["faster_coco_eval_kernel_all_masks"] = {
                "median_s": t, "runs_s": ts, "masks": len(masks), "equal_to_lveval": same,
                "speedup_lveval_kernel": t / out["lveval_kernel_all_masks"]["median_s"],
                "speedup_lveval_boundary_stage": t / out["lveval_boundary_stage"]["median_s"]}

        if a.faster_coco_eval_coco:
            out["faster_coco_eval_coco_rules"] = coco_rules_comparison(gt, res, tmp, a.repeat)

        if a.lvis_challenge:
            sys.path.insert(0, a.lvis_challenge)
            if not hasattr(np, "float"):
                np.float = float
            import logging

            from lvis import LVISEval  # the challenge branch's
            logging.getLogger("lvis").setLevel(logging.ERROR)

            def run_official():
                e = LVISEval(gt, res, mode="challenge2021", max_cpu_num=a.processes)
                e.run()
                return e

            t, ts, e = median_time(run_official, a.repeat)
            keys = {"AR@10000/cat": "AR", "ARs@10000/cat": "ARs", "ARm@10000/cat": "ARm", "ARl@10000/cat": "ARl"}
            same = all(float(v) == r_b.fixed[keys.get(k, k)] for k, v in e.results.items())
            same = same and bool(np.array_equal(e.eval["precision"], r_b.precision["fixed"]))
            out["lvis_api_challenge"] = {"median_s": t, "runs_s": ts, "AP": float(e.results["AP"]),
                                         "equal_to_lveval": same,
                                         "speedup_lveval_boundary": t / out["lveval_boundary"]["median_s"]}
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
