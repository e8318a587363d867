"""LVEvalMetric driven by mmengine's Evaluator (two gloo processes and in-process) equals ``lveval evaluate``."""
import numpy as np
import pytest

pytest.importorskip("mmengine")
torch = pytest.importorskip("torch")

from .adapters_data import MM_CAPS  # noqa: E402
from .adapters_data import samples as _samples  # noqa: E402
from .cli_figures import cli_figures  # noqa: E402

K, N = MM_CAPS


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


def test_two_gloo_processes_equal_the_cli(tmp_path, lvis_path, ddp_outputs):
    samples, d, back, score, _ = _samples(lvis_path)
    imgs = [s["img_id"] for s in samples]
    exp = _expected(tmp_path, lvis_path, _cols_in_order(d, back, score, imgs[0::2] + imgs[1::2]))
    assert ddp_outputs["mmdet"] == exp


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


def test_subset_warning_labels_and_classwise(lvis_path):
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
    # classwise: mmdet's per-class keys, each class's AP-Old
    cw = mm.LVEvalMetric(lvis_path, max_dets_per_class=K, classwise=True, outfile_prefix="unused")
    cw.process(None, samples)
    out = cw.compute_metrics([cw.state()])
    rows = cw.eval_results["bbox"].per_class
    assert sum(k.endswith("_precision") for k in out) == len(rows)
    for row in rows[:50]:
        v = out[f"{row['name']}_precision"]
        assert (v == round(row["AP_old"], 3)) if row["AP_old"] >= 0 else np.isnan(v)
    with pytest.raises(ValueError, match="format_only"):
        mm.LVEvalMetric(lvis_path, format_only=True)
