"""LVEvalMetric driven by mmengine's Evaluator (two gloo processes and in-process) equals ``lveval evaluate``."""
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("mmengine")
torch = pytest.importorskip("torch")

from cli_figures import cli_figures, float32_xyxy_to_xywh  # noqa: E402
from lveval.io.gt import load_gt  # noqa: E402
from lveval.io.results import load_results  # noqa: E402
from lveval.simulate import simulate  # noqa: E402

HERE = os.path.dirname(__file__)
K, N = 60, 150          # small caps so both bind on the bundled subset


def _samples(lvis_path, seed=3):
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


def _cols_in_order(d, back, score, order_imgs):
    idx = np.concatenate([np.flatnonzero(d.img_id == i) for i in order_imgs])
    return {"image_id": d.img_id[idx], "category_id": d.cat_id[idx], "score": score[idx], "bbox": back[idx]}


def _expected(tmp_path, lvis_path, cols):
    fig = cli_figures(tmp_path, lvis_path, cols, "--max-dets-per-class", str(K), "--max-dets-per-image", str(N))
    assert fig["old"]["AP"] != fig["fixed"]["AP"]
    exp = {f"lvis/bbox_{k}": fig["old"][k] for k in ("AP", "AP50", "AP75", "APs", "APm", "APl", "APr", "APc", "APf")}
    for p, s in (("fixed", "fixed"), ("pooled", "pool")):
        for k in ("AP", "AP50", "AP75", "APr", "APc", "APf"):
            exp[f"lvis/bbox_{k}_{s}"] = fig[p][k]
    return exp


def test_two_gloo_processes_equal_the_cli(tmp_path, lvis_path):
    samples, d, back, score, meta = _samples(lvis_path)
    inp = tmp_path / "in.pkl"
    with open(inp, "wb") as f:
        pickle.dump({"gt": lvis_path, "metric": "bbox", "k": K, "n": N, "meta": meta, "samples": samples}, f)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.join(HERE, "..", "..", "src"),
                                                      os.environ.get("PYTHONPATH", "")]))
    procs = [subprocess.Popen([sys.executable, os.path.join(HERE, "ddp_worker.py"), "mmdet", str(r), "2",
                               str(tmp_path / "rdv"), str(inp), str(tmp_path / "out.json")], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for r in range(2)]
    for p in procs:
        _, err = p.communicate(timeout=240)
        assert p.returncode == 0, err.decode()[-3000:]
    import json
    with open(tmp_path / "out.json") as f:
        got = json.load(f)
    imgs = [s["img_id"] for s in samples]
    exp = _expected(tmp_path, lvis_path, _cols_in_order(d, back, score, imgs[0::2] + imgs[1::2]))
    assert got == exp


def test_evaluator_in_process_padding_and_rounding(tmp_path, lvis_path):
    """One process, mmengine's Evaluator; a sampler's padded repeats counted once; mmdet's 3-decimal
    rounding by default; segm with mask_scores."""
    from mmengine.evaluator import Evaluator

    import lveval.integrations.mmdet as mm

    samples, d, back, score, meta = _samples(lvis_path, seed=5)
    ev = Evaluator(dict(type="LVEvalMetric", ann_file=lvis_path, max_dets_per_class=K, max_dets_per_image=N))
    ev.dataset_meta = meta
    for i in range(0, len(samples), 8):
        ev.process([{"img_id": s["img_id"], "pred_instances": {k: torch.as_tensor(v) for k, v in
                                                               s["pred_instances"].items()}}
                    for s in samples[i:i + 8]])
    got = ev.evaluate(len(samples))
    imgs = [s["img_id"] for s in samples]
    exp = _expected(tmp_path, lvis_path, _cols_in_order(d, back, score, imgs))
    assert got == {k: round(v, 3) for k, v in exp.items()}

    # two ranks, the second repeating the first rank's first images (DefaultSampler's round-up)
    metric = mm.LVEvalMetric(lvis_path, max_dets_per_class=K, max_dets_per_image=N, digits=None)
    metric.dataset_meta = meta
    states = []
    shards = [samples[0::2], samples[1::2] + samples[0:6:2]]
    for shard in shards:
        metric._reset_state()
        metric.process(None, shard)
        states.append(metric.state())
    out = metric.compute_metrics(states)
    assert {f"lvis/{k}": v for k, v in out.items()} == _expected(
        tmp_path, lvis_path, _cols_in_order(d, back, score, imgs[0::2] + imgs[1::2]))
    assert not any("images" in w and "of the ground truth" in w for w in metric.eval_results["bbox"].notices.warnings)


def test_subset_warning_labels_and_import_error(lvis_path):
    import lveval.integrations.mmdet as mm

    samples, *_ = _samples(lvis_path)
    metric = mm.LVEvalMetric(lvis_path, max_dets_per_class=K, digits=None)
    metric.process(None, samples[:8])
    metric.compute_metrics([metric.state()])
    warns = metric.eval_results["bbox"].notices.warnings
    empty = sum(1 for s in samples[:8] if len(s["pred_instances"]["scores"]) == 0)
    assert [w for w in warns if "detections were given for 8 of the ground truth's 100 images" in w
            and f"{92 + empty} images have no detections" in w]
    bad = {"img_id": samples[0]["img_id"], "pred_instances": dict(samples[0]["pred_instances"],
                                                                 labels=np.array([5000]))}
    bad["pred_instances"]["bboxes"] = np.zeros((1, 4), np.float32)
    bad["pred_instances"]["scores"] = np.ones(1, np.float32)
    with pytest.raises(ValueError, match="label 5000 out of range"):
        metric.process(None, [bad])
    code = ("import sys\nsys.modules['mmengine'] = None\nimport lveval, lveval.integrations\n"
            "try:\n    import lveval.integrations.mmdet\nexcept ImportError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "lveval[mmdet]" in out.stdout, out.stderr
