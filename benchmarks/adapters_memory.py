"""Memory of the toolbox adapters fed 1M detections: LVEvalMetric (mmengine) and LVISMeanAveragePrecision
(torchmetrics), K = 10,000 per class.

A synthetic LVIS-style ground truth (``--images`` images, ``--classes`` classes
with r/c/f frequencies) is written to a temporary file; each adapter then runs
in its own child process, fed ``--dets-per-image`` detections per image in
batches of 8 images, as a validation loop would. Recorded per adapter: the
rows kept at the end and the most rows held after any batch (kept plus
rows pending the next prune, which happens once they reach a quarter of the
kept ones), the collector's bound ``K x classes + N x images`` (N = 300,
AP-Old's cap), the peak resident set
size (``ru_maxrss``) and its growth over the process after imports, the
resident size once everything is fed (the held state), the evaluation's wall time, and the figures
(AP-Old / AP-Fixed / AP-Pool). A
first child keeps every image's arrays, as a metric gathering all results does,
for comparison.

    python benchmarks/adapters_memory.py                      # 500 images x 2,000 = 1M detections
    python benchmarks/adapters_memory.py --images 200 --dets-per-image 100   # quick

Needs mmengine and torchmetrics (pip install -e ".[mmdet,torchmetrics]").
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def make_gt(path: str, images: int, classes: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    freq = np.array(["r", "c", "f"])[rng.integers(0, 3, classes)]
    anns, imgs = [], []
    aid = 1
    for i in range(1, images + 1):
        imgs.append({"id": i, "height": 480, "width": 640, "neg_category_ids": [],
                     "not_exhaustive_category_ids": []})
        for _ in range(int(rng.integers(1, 6))):
            x, y = rng.uniform(0, 500, 2)
            w, h = rng.uniform(8, 130, 2)
            anns.append({"id": aid, "image_id": i, "category_id": int(rng.integers(1, classes + 1)),
                         "bbox": [float(x), float(y), float(w), float(h)], "area": float(w * h), "iscrowd": 0})
            aid += 1
    cats = [{"id": c + 1, "name": f"class_{c}", "frequency": str(freq[c])} for c in range(classes)]
    with open(path, "w") as f:
        json.dump({"images": imgs, "annotations": anns, "categories": cats}, f)


def batches(gt: dict, dets_per_image: int, seed: int = 1):
    """Per image: xyxy float32 boxes, float32 scores, labels (0-based, class order) -- near the ground truth
    for a tenth, random elsewhere."""
    rng = np.random.default_rng(seed)
    by_img: dict = {}
    for a in gt["annotations"]:
        by_img.setdefault(a["image_id"], []).append(a)
    C = len(gt["categories"])
    for im in gt["images"]:
        n = dets_per_image
        xy = rng.uniform(0, 500, (n, 2))
        wh = rng.uniform(4, 140, (n, 2))
        lab = rng.integers(0, C, n)
        anns = by_img.get(im["id"], [])
        k = min(len(anns), n // 10)
        for j in range(k):
            b = anns[j]["bbox"]
            xy[j] = np.array(b[:2]) + rng.normal(0, 2, 2)
            wh[j] = np.array(b[2:]) * np.exp(rng.normal(0, 0.05, 2))
            lab[j] = anns[j]["category_id"] - 1
        box = np.concatenate([xy, xy + wh], 1).astype(np.float32)
        score = rng.beta(0.6, 6.0, n).astype(np.float32)
        yield im["id"], box, score, lab


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20


def child(which: str, gt_path: str, dets_per_image: int, k: int) -> dict:
    import torch

    with open(gt_path) as f:
        gt = json.load(f)
    if which == "all":      # what a metric gathering every result holds (mmengine's BaseMetric.results)
        kept_all: list = []
        base = rss_mb()
        fed = 0
        for img, box, score, lab in batches(gt, dets_per_image):
            kept_all.append({"img_id": img, "bboxes": box, "scores": score, "labels": lab})
            fed += len(score)
        return {"adapter": "keep-all baseline", "detections": fed, "rss_after_imports_mb": round(base, 1),
                "rss_after_feed_mb": round(rss_mb(), 1), "held_mb": round(rss_mb() - base, 1)}
    if which == "mmdet":
        from lveval.integrations.mmdet import LVEvalMetric

        metric = LVEvalMetric(gt_path, max_dets_per_class=k, digits=None)
        held = lambda: sum(len(c) for c in metric._collectors.values())  # noqa: E731
    else:
        from lveval.integrations.torchmetrics import LVISMeanAveragePrecision

        metric = LVISMeanAveragePrecision(gt=gt_path, max_dets_per_class=k)
        held = lambda: sum(len(x) for x in metric.det_score)  # noqa: E731
    base = rss_mb()
    peak_rows = fed = 0
    t0 = time.perf_counter()
    buf = []
    for img, box, score, lab in batches(gt, dets_per_image):
        buf.append((img, box, score, lab))
        fed += len(score)
        if len(buf) == 8:
            _feed(which, metric, buf, torch)
            buf = []
            peak_rows = max(peak_rows, held())
    if buf:
        _feed(which, metric, buf, torch)
        peak_rows = max(peak_rows, held())
    t_feed = time.perf_counter() - t0
    after_feed = rss_mb()
    if which == "mmdet":
        kept_rows = sum(len(s["score"]) for s in metric.state()["collectors"].values())
    else:
        kept_rows = len(metric._kept_columns()["score"])
    t0 = time.perf_counter()
    if which == "mmdet":
        out = metric.compute_metrics([metric.state()])
        figs = {"AP-Old": out["bbox_AP"], "AP-Fixed": out["bbox_AP_fixed"], "AP-Pool": out["bbox_AP_pool"]}
    else:
        out = metric.compute()
        figs = {"AP-Old": float(out["map"]), "AP-Fixed": float(out["map_fixed"]), "AP-Pool": float(out["map_pool"])}
    t_eval = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"adapter": which, "detections": fed, "kept_rows": int(kept_rows), "peak_rows_held": int(peak_rows),
            "bound_rows": k * len(gt["categories"]) + 300 * len(gt["images"]),
            "rss_after_imports_mb": round(base, 1), "peak_rss_mb": round(peak, 1),
            "rss_after_feed_mb": round(after_feed, 1), "held_mb": round(after_feed - base, 1),
            "growth_mb": round(peak - base, 1), "feed_s": round(t_feed, 2), "evaluate_s": round(t_eval, 2),
            "figures": {k2: round(v, 4) for k2, v in figs.items()}}


def _feed(which, metric, buf, torch):
    if which == "mmdet":
        metric.process(None, [{"img_id": img, "pred_instances": {"bboxes": torch.from_numpy(b),
                                                                 "scores": torch.from_numpy(s),
                                                                 "labels": torch.from_numpy(lab)}}
                              for img, b, s, lab in buf])
    else:
        metric.update([{"boxes": torch.from_numpy(b), "scores": torch.from_numpy(s),
                        "labels": torch.from_numpy(lab + 1)} for img, b, s, lab in buf],
                      [{"image_id": img} for img, *_ in buf])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--images", type=int, default=500)
    p.add_argument("--classes", type=int, default=20)
    p.add_argument("--dets-per-image", type=int, default=2000)
    p.add_argument("--k", type=int, default=10_000)
    p.add_argument("--child", nargs=2, metavar=("ADAPTER", "GT"), help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        print(json.dumps(child(a.child[0], a.child[1], a.dets_per_image, a.k)))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        gt = os.path.join(tmp, "gt.json")
        make_gt(gt, a.images, a.classes)
        rows = []
        for which in ("all", "mmdet", "torchmetrics"):
            out = subprocess.run([sys.executable, __file__, "--child", which, gt, "--dets-per-image",
                                  str(a.dets_per_image), "--k", str(a.k)], capture_output=True, text=True, check=True)
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(json.dumps(rows[-1]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
