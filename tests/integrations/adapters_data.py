"""Inputs shared by the adapter tests and the two-process (gloo) run in conftest.py."""
import importlib.util
import json
import os
import pickle
import subprocess
import sys

import numpy as np
import torch

from lveval.io.gt import load_gt
from lveval.io.results import load_results
from lveval.simulate import simulate

from .cli_figures import float32_xyxy_to_xywh


def samples(lvis_path, seed=3):
    """mmdet data samples (as Evaluator.process passes them: dicts) of the simulated detector, and
    the columns of the results file mmdet's LVISMetric would write for them (float32 xyxy -> xywh)."""
    d = load_results(simulate(lvis_path, seed=seed, candidates_per_image=400))
    gt = load_gt(lvis_path)
    file_order = [c["id"] for c in gt.dataset["categories"]]
    label_of = {c: i for i, c in enumerate(file_order)}
    xyxy, back = float32_xyxy_to_xywh(d.bbox)
    score = d.score.astype(np.float32)
    samples = []
    for img in gt.img_ids:                        # every image, those without detections too
        m = d.img_id == img
        samples.append({"img_id": int(img), "pred_instances": {
            "bboxes": xyxy[m], "scores": score[m],
            "labels": np.array([label_of[int(c)] for c in d.cat_id[m]], np.int64)}})
    return samples, d, back, score.astype(np.float64), {"classes": tuple(gt.dataset["categories"][i]["name"]
                                                                          for i in range(len(file_order)))}


H, W = 48, 64


def _from_xyxy(b: torch.Tensor, fmt: str) -> torch.Tensor:
    if fmt == "xyxy":
        return b
    w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    if fmt == "xywh":
        return torch.stack([b[:, 0], b[:, 1], w, h], 1)
    return torch.stack([b[:, 0] + w / 2, b[:, 1] + h / 2, w, h], 1)


def _mask(box, rng):
    m = np.zeros((H, W), bool)
    x0, y0, x1, y1 = [int(round(float(v))) for v in box]
    m[max(y0, 0):max(y1, y0 + 1), max(x0, 0):max(x1, x0 + 1)] = True
    m &= rng.random((H, W)) < 0.9            # ragged, so mask IoU differs from box IoU
    return m


def make_inputs(seed, n_img=9, n_cls=5, fmt="xyxy", masks=False):
    """torchmetrics-style update inputs: a few images, crowd and given areas, images without targets or
    without predictions, float32 boxes and scores."""
    rng = np.random.default_rng(seed)
    preds, targets = [], []
    for i in range(n_img):
        ng = int(rng.integers(0, 6)) if i else 0
        xy = rng.uniform(0, 40, (ng, 2))
        wh = rng.uniform(2, 30, (ng, 2))
        g = np.concatenate([xy, np.minimum(xy + wh, [W, H])], 1).astype(np.float32)
        labels = rng.integers(0, n_cls, ng)
        t = {"boxes": torch.tensor(g).reshape(-1, 4), "labels": torch.tensor(labels, dtype=torch.int64),
             "iscrowd": torch.tensor((rng.random(ng) < 0.15).astype(np.int64))}
        if i % 3 == 1:
            t["area"] = torch.tensor(np.where(rng.random(ng) < 0.5, rng.uniform(10, 3000, ng), 0.0), dtype=torch.float32)
        nd = int(rng.integers(0, 12)) if i != 2 else 0
        src = rng.integers(0, max(ng, 1), nd)
        jit = rng.normal(0, 3, (nd, 4))
        d = (g[src] + jit if ng else rng.uniform(0, 40, (nd, 4))).astype(np.float32)
        d[:, 2:] = np.maximum(d[:, 2:], d[:, :2] + 1)
        dl = np.where(rng.random(nd) < 0.8, labels[src] if ng else 0, rng.integers(0, n_cls, nd))
        p = {"boxes": torch.tensor(d).reshape(-1, 4), "scores": torch.tensor(rng.random(nd), dtype=torch.float32),
             "labels": torch.tensor(dl, dtype=torch.int64)}
        if masks:
            t["masks"] = torch.tensor(np.array([_mask(b, rng) for b in g]).reshape(-1, H, W))
            p["masks"] = torch.tensor(np.array([_mask(b, rng) for b in d]).reshape(-1, H, W))
        p["boxes"] = _from_xyxy(p["boxes"], fmt)
        t["boxes"] = _from_xyxy(t["boxes"], fmt)
        preds.append(p)
        targets.append(t)
    return preds, targets




HERE = os.path.dirname(__file__)
MM_CAPS = (60, 150)              # K, N: small, so both bind on the bundled subset
TM_KW = dict(class_metrics=True, max_dets_per_class=4)


def ddp_jobs(lvis_path) -> dict:
    """The inputs of the two-process run: whichever of mmengine / torchmetrics is installed."""
    jobs = {}
    if importlib.util.find_spec("mmengine"):
        s, *_, meta = samples(lvis_path)
        jobs["mmdet"] = {"gt": lvis_path, "metric": "bbox", "k": MM_CAPS[0], "n": MM_CAPS[1], "meta": meta,
                         "samples": s}
    if importlib.util.find_spec("torchmetrics"):
        preds, targets = make_inputs(6, n_img=13)
        to_np = lambda ds: [{k: v.numpy() for k, v in d.items()} for d in ds]  # noqa: E731
        jobs["torchmetrics"] = {"kwargs": TM_KW, "preds": to_np(preds), "targets": to_np(targets)}
    return jobs


def run_ddp(tmp_dir, jobs, world=2) -> dict:
    """Run ddp_worker.py in ``world`` processes (gloo, file rendezvous); rank 0's figures per job."""
    inp = os.path.join(tmp_dir, "in.pkl")
    with open(inp, "wb") as f:
        pickle.dump(jobs, f)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.join(HERE, "..", "..", "src"),
                                                      os.environ.get("PYTHONPATH", "")]))
    out = os.path.join(tmp_dir, "out.json")
    procs = [subprocess.Popen([sys.executable, os.path.join(HERE, "ddp_worker.py"), str(r), str(world),
                               os.path.join(tmp_dir, "rdv"), inp, out], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for r in range(world)]
    errs = []
    for p in procs:
        _, err = p.communicate(timeout=300)
        errs.append((p.returncode, err.decode()[-3000:]))
    for code, err in errs:
        assert code == 0, err
    with open(out) as f:
        return json.load(f)
