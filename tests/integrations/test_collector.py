"""TopKPerClassCollector and FixedAPMetric give `lveval evaluate`'s figures in bounded memory."""
import pickle

import numpy as np
import pytest

import lveval
from lveval.integrations import FixedAPMetric, TopKPerClassCollector
from lveval.io.results import load_results
from lveval.select import cap_per_image, top_k_per_class
from lveval.simulate import simulate
from lveval.topk import TopKPerClass


@pytest.fixture(scope="module")
def dets(lvis_path):
    res = simulate(lvis_path, seed=6, candidates_per_image=400)
    for r in res:
        r["score"] = round(r["score"], 3)
    return load_results(res)


def per_image_batches(d, box_format="xyxy"):
    """(image_id, boxes, scores, category ids) per image, in file order."""
    starts = np.flatnonzero(np.r_[True, d.img_id[1:] != d.img_id[:-1]])
    for s, e in zip(starts, np.r_[starts[1:], len(d)]):
        b = d.bbox[s:e].copy()
        if box_format == "xyxy":
            b[:, 2:] += b[:, :2]
        yield int(d.img_id[s]), b, d.score[s:e], d.cat_id[s:e]


def test_collector_equals_engine_selection(dets):
    for k, n in ((5, None), (60, 150)):
        c = TopKPerClass(k, per_image=n)
        for img, b, s, cats in per_image_batches(dets, "xywh"):
            c.add(img, b, s, cats)
        want = top_k_per_class(dets.cat_id, dets.score, k)
        if n:
            want |= cap_per_image(dets.img_id, dets.score, n)
        cols = c.to_columns()
        exp = dets.take(want)
        assert np.array_equal(cols["score"], exp.score) and np.array_equal(cols["bbox"], exp.bbox)
        assert np.array_equal(cols["image_id"], exp.img_id) and np.array_equal(cols["category_id"], exp.cat_id)
        assert c.num_seen == len(dets)


def test_merge_of_workers_equals_one_collector_over_their_concatenation(dets):
    halves = [np.flatnonzero(dets.img_id % 2 == w) for w in (0, 1)]
    workers = []
    for idx in halves:
        c = TopKPerClassCollector(20, 50, box_format="xywh")
        part = dets.take(idx)
        for img, b, s, cats in per_image_batches(part, "xywh"):
            c.update([{"boxes": b, "scores": s, "labels": cats}], image_ids=[img])
        workers.append(c)
    states = [pickle.loads(pickle.dumps(w.state())) for w in workers]   # what processes exchange
    merged = TopKPerClass.from_states(states)
    one = TopKPerClass(20, 50)
    for idx in halves:
        p = dets.take(idx)
        one.add_columns(p.img_id, p.cat_id, p.score, p.bbox)
    a, b = merged.to_columns(), one.to_columns()
    assert all(np.array_equal(a[k], b[k]) for k in ("image_id", "category_id", "score", "bbox"))
    w0 = workers[0]
    w0.merge(workers[1])
    assert np.array_equal(w0.compute()["score"], a["score"])
    assert merged.num_seen == len(dets)


def test_fixed_ap_metric_equals_lveval_evaluate(lvis_path, dets):
    gt = lveval.io.load_gt(lvis_path)
    cat_ids = gt.cat_ids
    metric = FixedAPMetric(lvis_path, max_dets_per_class=50, max_dets_per_image=120,
                           label_to_category=cat_ids.tolist())
    batch = []
    for img, b, s, cats in per_image_batches(dets):
        batch.append({"image_id": img, "boxes": b, "scores": s, "labels": np.searchsorted(cat_ids, cats)})
        if len(batch) == 8:
            metric.update(batch)
            batch = []
    metric.update(batch)
    got = metric.compute()
    full = lveval.evaluate(lvis_path, dets, max_dets_per_class=50, max_dets_per_image=120)
    assert got["AP-Fixed"] == full.fixed["AP"] and got["APr-Fixed"] == full.fixed["APr"]
    assert got["AP-Old"] == full.old["AP"] and got["AP-Pool"] == full.pooled["AP"]
    assert metric.result.fixed == full.fixed and metric.result.old == full.old
    kept = len(metric.collector.to_columns()["score"])
    assert kept < len(dets)
    metric.reset()
    assert len(metric.collector) == 0


def test_fixed_ap_metric_merges_workers(lvis_path, dets):
    gt = lveval.io.load_gt(lvis_path)
    metrics = []
    for w in (0, 1):
        m = FixedAPMetric(gt, max_dets_per_class=30, protocols=("fixed", "pooled"), box_format="xywh")
        part = dets.take(np.flatnonzero(dets.img_id % 2 == w))
        for img, b, s, cats in per_image_batches(part, "xywh"):
            m.update({"image_id": img, "boxes": b, "scores": s, "labels": cats})
        metrics.append(m)
    metrics[0].merge(metrics[1].state())
    got = metrics[0].compute()
    order = np.r_[np.flatnonzero(dets.img_id % 2 == 0), np.flatnonzero(dets.img_id % 2 == 1)]
    full = lveval.evaluate(lvis_path, dets.take(order), protocols=("fixed", "pooled"), max_dets_per_class=30)
    assert got == {**{f"{k}-Fixed": v for k, v in full.fixed.items()},
                   **{f"{k}-Pool": v for k, v in full.pooled.items()}}


def test_label_mapping_and_input_checks():
    c = TopKPerClassCollector(3, label_to_category={0: 11, 1: 17})
    c.update([{"image_id": 5, "boxes": [[0, 0, 10, 20]], "scores": [0.5], "labels": [1]}])
    cols = c.compute()
    assert cols["category_id"].tolist() == [17] and cols["bbox"].tolist() == [[0, 0, 10, 20]]
    with pytest.raises(ValueError, match="label 2"):
        c.update([{"image_id": 5, "boxes": [[0, 0, 1, 1]], "scores": [0.5], "labels": [2]}])
    with pytest.raises(ValueError, match="image_id"):
        c.update([{"boxes": [[0, 0, 1, 1]], "scores": [0.5], "labels": [0]}])
    with pytest.raises(ValueError, match="finite"):
        c.add(1, [[0, 0, 1, 1]], [float("nan")], [11])


def test_torch_tensors_are_accepted(lvis_path):
    torch = pytest.importorskip("torch")
    res = simulate(lvis_path, seed=8, candidates_per_image=60)
    d = load_results(res)
    m_np = FixedAPMetric(lvis_path, box_format="xywh", max_dets_per_class=20)
    m_t = FixedAPMetric(lvis_path, box_format="xywh", max_dets_per_class=20)
    for img, b, s, cats in per_image_batches(d, "xywh"):
        m_np.update([{"image_id": img, "boxes": b, "scores": s, "labels": cats}])
        m_t.update([{"image_id": torch.tensor(img), "boxes": torch.from_numpy(b),
                     "scores": torch.from_numpy(s), "labels": torch.from_numpy(cats)}])
    assert m_t.compute() == m_np.compute()
