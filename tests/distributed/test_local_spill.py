"""A cluster started by ``evaluate(..., workers=N)`` reads a JSON results file through a
temporary class partition (the driver does not ship every row in memory): the same figures,
exactly, and nothing left on disk."""
import json
import os
import tempfile

import pytest

import lveval
from lveval.distributed import dask_backend, shard
from lveval.simulate import simulate
from tests.support.same import assert_same

pytest.importorskip("distributed")


@pytest.mark.slow
def test_local_cluster_json_goes_through_a_removed_partition(lvis_path, tmp_path, monkeypatch):
    res = simulate(lvis_path, seed=3, candidates_per_image=80, iou_type="segm")
    path = tmp_path / "r.json"
    path.write_text(json.dumps(res))
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    calls = []
    real = shard.partition

    def spy(results, out_dir, num_shards, **kw):
        calls.append((str(results), out_dir, num_shards))
        return real(results, out_dir, num_shards, **kw)

    monkeypatch.setattr(shard, "partition", spy)
    single = lveval.evaluate(lvis_path, str(path), iou_type="segm")
    sharded = dask_backend.evaluate(lvis_path, str(path), iou_type="segm", workers=1, shards=3)
    assert_same(single, sharded)
    assert [(c[0], c[2]) for c in calls] == [(str(path), 3)]
    assert os.path.dirname(calls[0][1]) == str(scratch)
    assert [n for n in os.listdir(scratch) if n.startswith("lveval-")] == []   # Dask keeps its own scratch


def test_spill_only_for_a_local_cluster_and_a_json_file(tmp_path):
    f = tmp_path / "r.json"
    f.write_text("[]")
    pq = tmp_path / "r.parquet"
    pq.write_bytes(b"")
    assert dask_backend._spill(str(f), local=True)
    assert not dask_backend._spill(str(f), local=False)     # remote workers cannot read this disk
    assert not dask_backend._spill(str(pq), local=True)     # shards scan a Parquet file directly
    assert not dask_backend._spill([{"image_id": 1}], local=True)
    assert not dask_backend._spill(str(tmp_path), local=True)
