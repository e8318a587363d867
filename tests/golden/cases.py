"""Golden cases: commands whose outputs were recorded before the options/loading refactor.

``record(out_dir)`` runs every case through the CLI in this process and writes what it printed
and the files it wrote; the golden test runs the same cases and compares them byte for byte
(timing fields aside). Inputs are generated deterministically (the simulated detector).
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import sys

import lveval
from lveval.simulate import simulate

# name -> (argv with {in}/{out} placeholders, files the case writes, relative to {out})
CASES = {
    "evaluate_bbox": (["evaluate", "{gt}", "{in}/bbox.json", "--json", "{out}/evaluate_bbox.json"],
                      ["evaluate_bbox.json"]),
    "evaluate_segm": (["evaluate", "{gt}", "{in}/segm.json", "--iou-type", "segm", "--json",
                       "{out}/evaluate_segm.json"], ["evaluate_segm.json"]),
    "evaluate_coco_bbox": (["evaluate", "{coco_gt}", "{coco_bbox}", "--json", "{out}/evaluate_coco_bbox.json"],
                           ["evaluate_coco_bbox.json"]),
    "evaluate_caps": (["evaluate", "{gt}", "{in}/bbox.json", "--max-dets-per-image", "40",
                       "--max-dets-per-class", "25", "--protocols", "old,fixed", "--json",
                       "{out}/evaluate_caps.json"], ["evaluate_caps.json"]),
    "demo": (["demo", "--json", "{out}/demo.json"], ["demo.json"]),
    "toy": (["toy", "--json", "{out}/toy.json"], ["toy.json"]),
    "rerank": (["rerank", "--demo", "--per-class", "100", "--max-dets-per-image", "300", "--json",
                "{out}/rerank.json"], ["rerank.json"]),
    "sweep": (["sweep", "--demo", "--dets-per-image", "100,300,inf", "--dets-per-class", "50,1000",
               "--json", "{out}/sweep.json"], ["sweep.json"]),
    "subsets": (["subsets", "--demo", "--json", "{out}/subsets.json"], ["subsets.json"]),
    "scores": (["scores", "--demo", "--json", "{out}/scores.json"], ["scores.json"]),
    "nms": (["nms", "--demo", "--thresholds", "0.5,0.7", "--json", "{out}/nms.json"], ["nms.json"]),
    "audit": (["audit", "--demo", "--out", "{out}/audit"], ["audit/figures.json", "audit/report.md"]),
    "calibrate_bench": (["calibrate", "bench", "--gt", "{gt}", "--results", "{in}/bbox.json", "--kfold", "2",
                         "--methods", "platt", "isotonic", "--json", "{out}/calibrate_bench.json"],
                        ["calibrate_bench.json"]),
    "topk": (["topk", "{in}/bbox.json", "--per-class", "50", "--out", "{out}/topk.json"], ["topk.json"]),
    "topk_image": (["topk", "{in}/bbox.json", "--per-class", "50", "--per-image", "20", "--out",
                    "{out}/topk_image.jsonl"], ["topk_image.jsonl"]),
    "convert": (["convert", "{in}/bbox.json", "{out}/convert.jsonl"], ["convert.jsonl"]),
}

TIMING_KEYS = ("timing",)


def make_inputs(in_dir: str) -> dict:
    """Write the deterministic results files the cases read; returns the placeholder values."""
    os.makedirs(in_dir, exist_ok=True)
    gt = lveval.data_path()
    for iou_type, n in (("bbox", 1000), ("segm", 100)):
        p = os.path.join(in_dir, f"{iou_type}.json")
        if not os.path.exists(p):
            with open(p, "w") as f:
                json.dump(simulate(gt, seed=0, candidates_per_image=n, iou_type=iou_type), f)
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    coco = os.path.join(here, "data", "coco_val2014_100")
    return {"gt": gt, "in": in_dir, "coco_gt": os.path.join(coco, "instances_val2014_100.json"),
            "coco_bbox": os.path.join(coco, "instances_val2014_fakebbox100_results.json")}


def strip_timing(obj):
    if isinstance(obj, dict):
        return {k: strip_timing(v) for k, v in obj.items() if k not in TIMING_KEYS}
    if isinstance(obj, list):
        return [strip_timing(v) for v in obj]
    return obj


def run_case(name: str, places: dict, out_dir: str) -> dict:
    """Run one case; returns {"stdout": text, file: bytes or parsed JSON without timing}."""
    from lveval.cli import main

    argv, files = CASES[name]
    vals = dict(places, out=out_dir)
    argv = [a.format(**vals) for a in argv]
    buf, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(err):
        rc = main(argv + ["--quiet"]) if name not in ("toy", "convert") else main(argv)
    if rc != 0:
        raise AssertionError(f"{name}: exit status {rc}: {err.getvalue().strip()}")
    text = buf.getvalue().replace(out_dir, "{out}").replace(places["in"], "{in}").replace(places["gt"], "{gt}")
    out = {"rc": rc, "stdout": re.sub(r"\b\d+\.\d+ s\b", "{t} s", text)}
    for f in files:
        with open(os.path.join(out_dir, f), "rb") as fh:
            data = fh.read()
        if f.endswith(".json") and not name.startswith("topk"):
            out[f] = strip_timing(json.loads(data))
        elif len(data) > 100_000:   # large data files: their digest
            out[f] = "sha256:" + hashlib.sha256(data).hexdigest()
        else:
            out[f] = data.decode()
    return out


def record(golden_dir: str, work: str) -> None:
    places = make_inputs(os.path.join(work, "in"))
    for name in CASES:
        d = os.path.join(work, "out", name)
        os.makedirs(d, exist_ok=True)
        got = run_case(name, places, d)
        with open(os.path.join(golden_dir, name + ".json"), "w") as f:
            json.dump(got, f, indent=1, sort_keys=True)
        print(name, "rc", got["rc"], file=sys.stderr)


if __name__ == "__main__":
    record(sys.argv[1], sys.argv[2])
