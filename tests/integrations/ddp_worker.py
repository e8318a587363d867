"""One rank of a two-process (gloo) run of the mmengine and torchmetrics adapters.

    python ddp_worker.py RANK WORLD RENDEZVOUS_FILE INPUT.pkl OUTPUT.json

INPUT.pkl maps a job ("mmdet", "torchmetrics") to its per-image predictions
(and targets); rank r processes images r, r + WORLD, ... as a distributed
sampler would, and rank 0 writes each job's figures to OUTPUT.json.
"""
import json
import pickle
import sys

import torch
import torch.distributed as dist


def _tensors(d):
    return {k: (torch.as_tensor(v) if k not in ("image_id", "img_id") else v) for k, v in d.items()}


def run_mmdet(rank, world, data):
    from mmengine.evaluator import Evaluator

    import lveval.integrations.mmdet  # noqa: F401  (registers LVEvalMetric)

    ev = Evaluator(dict(type="LVEvalMetric", ann_file=data["gt"], metric=data["metric"], digits=None,
                        max_dets_per_class=data["k"], max_dets_per_image=data["n"]))
    ev.dataset_meta = data["meta"]
    samples = data["samples"][rank::world]
    for i in range(0, len(samples), 4):
        batch = [{"img_id": s["img_id"], "pred_instances": _tensors(s["pred_instances"])} for s in samples[i:i + 4]]
        ev.process(batch, data_batch=None)
    return ev.evaluate(len(data["samples"]))


def run_torchmetrics(rank, world, data):
    from lveval.integrations.torchmetrics import LVISMeanAveragePrecision

    metric = LVISMeanAveragePrecision(**data["kwargs"])
    preds, targets = data["preds"][rank::world], data["targets"][rank::world]
    for i in range(0, len(preds), 3):
        metric.update([_tensors(p) for p in preds[i:i + 3]], [_tensors(t) for t in targets[i:i + 3]])
    out = metric.compute()
    return {k: v.tolist() for k, v in out.items()}


def main():
    rank, world, rdv, inp, outp = sys.argv[1:]
    rank, world = int(rank), int(world)
    dist.init_process_group("gloo", init_method=f"file://{rdv}", rank=rank, world_size=world)
    with open(inp, "rb") as f:
        jobs = pickle.load(f)
    out = {}
    for name, data in jobs.items():
        out[name] = (run_mmdet if name == "mmdet" else run_torchmetrics)(rank, world, data)
    if rank == 0:
        with open(outp, "w") as f:
            json.dump(out, f)
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
