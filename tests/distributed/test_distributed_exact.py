"""The sharded path gives exactly the single-process figures (==, not approx).

Compared: ``to_dict()`` (every protocol's summary, per-class rows, notices,
parameters, input digests), the full precision/recall arrays and AP-Pool's
curves, on the bundled LVIS subset with the demo's simulated detector, on
random generated datasets (tests/gen.py) and on the bundled COCO files.
"""
import json
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lveval
from lveval.distributed import evaluate as sharded_evaluate
from lveval.distributed import partition, shard, work
from lveval.io.results import load_results, write_results
from lveval.select import cap_per_image
from lveval.simulate import simulate
from tests.support.gen import make_dataset
from tests.support.same import assert_same


def both(gt, res, client, shards=None, **kw):
    single = lveval.evaluate(gt, res, **kw)
    sharded = sharded_evaluate(gt, res, client=client, shards=shards, **kw)
    assert_same(single, sharded)
    return single, sharded


# ------------------------------------------------------------------ AP-Old's two-pass cap

@settings(max_examples=60, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2 ** 31), n=st.integers(1, 12), n_chunks=st.integers(1, 6),
       levels=st.integers(1, 6))
def test_cap_from_thresholds_equals_cap_per_image(seed, n, n_chunks, levels):
    """Thresholds merged from chunk-wise top-N lists select exactly cap_per_image's rows."""
    rng = np.random.default_rng(seed)
    rows, images = int(rng.integers(0, 300)), int(rng.integers(1, 8))
    img = rng.integers(0, images, rows)
    score = rng.choice(np.round(rng.uniform(0, 1, levels), 2), rows)   # many ties
    record = np.cumsum(rng.integers(1, 3, rows))                     # increasing, with gaps
    expected = cap_per_image(img, score, n)
    chunk = rng.integers(0, n_chunks, rows)                           # rows split like classes
    cands = [work._top_n(img[chunk == c], score[chunk == c], record[chunk == c], n) for c in range(n_chunks)]
    rng.shuffle(cands)
    merged = work.merge_candidates(n, *cands[:2])
    merged = work.merge_candidates(n, merged, *cands[2:])
    thr = work.thresholds(merged, n, images)
    got = np.zeros(rows, bool)
    for c in range(n_chunks):   # each shard decides its own rows
        s = chunk == c
        got[s] = work.cap_from_thresholds(img[s], score[s], record[s], thr)
    assert np.array_equal(got, expected)


def test_plan_assigns_every_class_once(lvis_path):
    gt = lveval.io.load_gt(lvis_path)
    ids = np.r_[gt.cat_ids[:50], 999_999]            # some classes and an unknown id
    counts = np.arange(len(ids))[::-1] + 1
    plan = shard.plan(ids, counts, 7)
    assert sorted(np.concatenate(plan).tolist()) == sorted(ids.tolist())
    loads = [counts[np.isin(ids, p)].sum() for p in plan]
    assert max(loads) - min(loads) <= counts.max()  # greedy balance: within one class
    owned = np.concatenate(shard.assign_gt(gt, plan))
    assert sorted(owned.tolist()) == list(range(gt.num_categories))


# ------------------------------------------------------------------------- bundled data

def test_bundled_lvis_bbox(dask_client, lvis_path, monkeypatch):
    from lveval.distributed import dask_backend

    monkeypatch.setattr(dask_backend, "MERGE_MIN_ROWS", 2000)   # the driver merges caps in several batches
    res = simulate(lvis_path, seed=0, candidates_per_image=1000)
    single, sharded = both(lvis_path, res, dask_client, shards=20)
    assert single.old["AP"] != single.fixed["AP"]      # the 300 cap bites, so AP-Old is exercised
    assert len(sharded.shard_stats) == 20


def test_bundled_lvis_segm(dask_client, lvis_path, lvis_dataset):
    res = simulate(lvis_path, seed=1, candidates_per_image=120, iou_type="segm")
    single, _ = both(lvis_dataset, res, dask_client, shards=5, iou_type="segm", max_dets_per_image=40)
    assert single.old["AP"] != single.fixed["AP"]


@pytest.mark.parametrize("iou_type", ["bbox", "segm"])
def test_bundled_coco(dask_client, coco_paths, iou_type):
    both(coco_paths["gt"], coco_paths[iou_type], dask_client, shards=6, iou_type=iou_type)


# ------------------------------------------------------------------------ generated data

@pytest.mark.parametrize("kind", ["lvis", "coco"])
@pytest.mark.parametrize("segm", [False, True])
def test_generated(dask_client, kind, segm):
    iou = "segm" if segm else "bbox"
    for seed in range(3):
        gt, res = make_dataset(seed, kind=kind, n_images=12, n_cats=9, max_gt=8, max_dets=40,
                               score_levels=4, segm=segm)
        both(gt, res, dask_client, shards=4, iou_type=iou, max_dets_per_image=[5, 9, 40][seed],
             max_dets_per_class=[6, 20, -1][seed])


def test_protocol_subsets_and_empty(dask_client):
    gt, res = make_dataset(3, kind="lvis", n_images=6, n_cats=5, max_dets=20)
    both(gt, res, dask_client, shards=3, protocols=("old",), max_dets_per_image=4)
    both(gt, res, dask_client, shards=3, protocols=("pooled",), max_dets_per_class=3)
    both(gt, [], dask_client, shards=2)
    both(gt, res, dask_client, shards=2, max_dets_per_image=-1)   # no cap: no first pass
    both(gt, res, dask_client, shards=2, max_dets_per_image=0)    # an empty AP-Old selection


def test_unknown_ids_skip_and_error(dask_client):
    gt, res = make_dataset(5, kind="lvis", n_images=6, n_cats=5, max_dets=20)
    res = list(res)
    bad_cat = dict(res[3], category_id=12345)
    bad_img = dict(res[5], image_id=999)
    res[4:4] = [bad_cat, bad_img, dict(res[0], score=1.5)]
    single, _ = both(gt, res, dask_client, shards=3, on_unknown_image="skip", on_unknown_category="skip",
                     max_dets_per_image=5)
    assert single.notices.skipped == {"unknown image_id": 1, "unknown category_id": 1}
    with pytest.raises(lveval.exceptions.InputError) as e1:
        lveval.evaluate(gt, res)
    with pytest.raises(lveval.exceptions.InputError) as e2:
        sharded_evaluate(gt, res, client=dask_client, shards=3)
    assert str(e2.value) == str(e1.value)


# ------------------------------------------------------------------- Parquet and partitions

def test_parquet_scan_and_partition(dask_client, lvis_path, tmp_path):
    import pyarrow.parquet as pq

    res = simulate(lvis_path, seed=2, candidates_per_image=150)
    res[7]["bbox"][0] = -3.0   # a box outside its image: a counted warning, summed over shards
    src = str(tmp_path / "dets.parquet")
    write_results(load_results(res), str(tmp_path / "one.parquet"))
    pq.write_table(pq.read_table(str(tmp_path / "one.parquet")), src, row_group_size=2000)  # 8 row groups
    single = lveval.evaluate(lvis_path, src)
    assert single.notices.flagged["boxes outside the image (evaluated as given)"] == 1
    assert_same(single, sharded_evaluate(lvis_path, src, client=dask_client, shards=5))
    parts = str(tmp_path / "parts")
    m = partition(src, parts, 6, batch_rows=5000)
    assert len(m["parts"]) == 6 and sum(p["rows"] for p in m["parts"]) == len(res)
    assert_same(single, sharded_evaluate(lvis_path, parts, client=dask_client))
    # a JSON source is converted with the engine's writer; records are the JSON array's indices
    js = str(tmp_path / "dets.json")
    with open(js, "w") as f:
        json.dump(res, f)
    parts_js = str(tmp_path / "parts_js")
    partition(js, parts_js, 4)
    assert not [f for f in os.listdir(parts_js) if f.startswith((".source", ".tmp-"))]
    assert_same(lveval.evaluate(lvis_path, js), sharded_evaluate(lvis_path, parts_js, client=dask_client))


def test_parquet_null_is_the_same_error(dask_client, lvis_path, tmp_path):
    """A bad row deep in a Parquet file: the sharded path names the same record as one process."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    src = str(tmp_path / "ok.parquet")
    write_results(load_results(simulate(lvis_path, seed=5, candidates_per_image=30)), src)
    t = pq.read_table(src)
    score = t.column("score").to_pylist()
    score[1234] = None
    bad = str(tmp_path / "bad.parquet")
    pq.write_table(t.set_column(t.schema.get_field_index("score"), "score", pa.array(score, pa.float64())), bad,
                   row_group_size=500)
    with pytest.raises(lveval.exceptions.InputError) as e1:
        lveval.evaluate(lvis_path, bad)
    assert "record 1234" in str(e1.value)
    with pytest.raises(lveval.exceptions.InputError) as e2:
        sharded_evaluate(lvis_path, bad, client=dask_client, shards=3)
    assert str(e2.value) == str(e1.value)
