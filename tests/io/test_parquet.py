"""Parquet output written in one place (lveval.io.parquet): write_results, `lveval topk` and the class
partitions write the same layout, which load_results reads back unchanged."""
from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq

from lveval.io.parquet import ParquetStream, results_schema, results_table
from lveval.io.results import load_results, write_results
from lveval.topk import topk_file

RLE = {"size": [4, 5], "counts": "04L4"}   # 20 pixels: 0 off, 4 on, 16 off (valid compressed RLE)


def _records(masks: bool):
    recs = [{"image_id": i % 3 + 1, "category_id": i % 2 + 1, "bbox": [i, 1.5, 2.0, 3.25], "score": 1 - i / 10}
            for i in range(6)]
    if masks:
        for r in recs:
            r["segmentation"] = dict(RLE)
    return recs


def test_every_writer_uses_the_results_layout(tmp_path):
    for masks in (False, True):
        recs = _records(masks)
        a, b, c = (str(tmp_path / f"{n}{masks:d}.parquet") for n in ("write", "topk", "again"))
        write_results(load_results(recs), a)
        (tmp_path / "r.json").write_text(str(recs).replace("'", '"'))
        topk_file(str(tmp_path / "r.json"), b, 4)
        topk_file(a, c, 4)
        for p in (a, b, c):
            assert pq.read_schema(p).remove_metadata() == results_schema(masks), p
        ta, tb, tc = (pq.read_table(p) for p in (a, b, c))
        assert tb.equals(tc) and tb.num_rows == 6 and ta.equals(tb)   # 3 images x 2 classes: k=4 keeps all
        back = load_results(b)
        assert back.bbox.tolist() == [r["bbox"] for r in recs] and back.score.tolist() == [r["score"] for r in recs]


def test_a_stream_without_rows_still_has_its_schema(tmp_path):
    p = str(tmp_path / "e.parquet")
    s = ParquetStream(p)
    s.close()
    s.close()   # twice is harmless
    assert pq.read_table(p).num_rows == 0 and pq.read_schema(p).remove_metadata() == results_schema(False)
    t = results_table(np.array([1]), [2], [0.5], np.zeros((1, 4)), ["04L4"], np.array([4]), [5])
    assert t.schema == results_schema(True) and t.column("segm_h").to_pylist() == [4]
