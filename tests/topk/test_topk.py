"""Streaming top-K per class over files (`lveval topk`): same selection as the engine, bounded memory."""
import gc
import json
import os
import tracemalloc

import numpy as np
import orjson
import pytest

import lveval
from lveval.cli import main
from lveval.exceptions import InputError
from lveval.io.results import load_results, write_results
from lveval.select import cap_per_image, top_k_per_class
from lveval.simulate import simulate
from lveval.topk import topk_file


@pytest.fixture(scope="module")
def sim(lvis_path):
    res = simulate(lvis_path, seed=2, candidates_per_image=200)
    for r in res:
        r["score"] = round(r["score"], 2)       # many ties: the earlier record must win
    return res


@pytest.fixture(scope="module")
def files(tmp_path_factory, sim):
    d = tmp_path_factory.mktemp("topk")
    paths = {"json": d / "r.json", "jsonl": d / "r.jsonl", "parquet": d / "r.parquet"}
    paths["json"].write_bytes(orjson.dumps(sim, option=orjson.OPT_INDENT_2))   # pretty: records span lines
    paths["jsonl"].write_bytes(b"".join(orjson.dumps(r) + b"\r\n" for r in sim) + b"\n\n")
    write_results(load_results(sim), str(paths["parquet"]))
    return {k: str(v) for k, v in paths.items()}


@pytest.mark.parametrize("src, pure", [("json", False), ("json", True), ("jsonl", False), ("jsonl", True),
                                       ("parquet", False)], ids=["json", "json-msgspec", "jsonl", "jsonl-msgspec",
                                                                 "parquet"])
@pytest.mark.parametrize("out", ["json", "jsonl", "parquet"])
@pytest.mark.parametrize("k,per_image", [(7, None), (40, 25)])
def test_files_match_engine_selection(files, sim, tmp_path, src, pure, out, k, per_image, monkeypatch):
    """Both JSON readers (compiled for plain box records, msgspec for everything) select the same."""
    from lveval.io import fastjson

    if pure:
        monkeypatch.setenv("LVEVAL_PURE_JSON", "1")
    elif src == "json" and fastjson.available():   # the compiled reader does take these records
        buf = open(files["json"], "rb").read()
        assert fastjson.box_columns(buf, buf.index(b"[") + 1, buf.rindex(b"]")) is not None
    d = load_results(sim)
    want = top_k_per_class(d.cat_id, d.score, k)
    if per_image:
        want |= cap_per_image(d.img_id, d.score, per_image)
    dst = str(tmp_path / f"o.{out}")
    counts = topk_file(files[src], dst, k, per_image=per_image, block_size=1 << 14)
    got = load_results(dst)
    exp = d.take(want)
    assert counts == {"read": len(d), "written": int(want.sum())}
    assert np.array_equal(got.score, exp.score) and np.array_equal(got.cat_id, exp.cat_id)
    assert np.array_equal(got.img_id, exp.img_id) and np.array_equal(got.bbox, exp.bbox)


def test_json_records_are_copied_byte_for_byte(tmp_path):
    recs = [{"image_id": 1, "category_id": c, "bbox": [1, 2, 3, 4], "score": s,
             "note": 'braces } { and a quote \\" in a string', "extra": {"nested": [1, {"x": "}"}]}}
            for c, s in [(1, 0.5), (2, 0.7), (1, 0.9), (1, 0.5), (2, 0.1)]]
    src = tmp_path / "r.json"
    src.write_text(json.dumps(recs, indent=1))
    topk_file(str(src), str(tmp_path / "o.json"), 2, block_size=64)
    out = json.loads((tmp_path / "o.json").read_text())
    # class 1 keeps 0.9 and, of the two records at 0.5, the earlier (record 0)
    assert out == [recs[0], recs[1], recs[2], recs[4]]
    raw = (tmp_path / "o.json").read_bytes()
    assert json.dumps(recs[2], indent=1).replace("\n", "\n ").encode() in raw   # the input's bytes, indentation too


def test_topk_then_evaluate_gives_the_full_file_figures(files, sim, lvis_path, tmp_path):
    """AP-Fixed and AP-Pool of the reduced file equal the full file's; with --per-image, AP-Old too."""
    full = lveval.evaluate(lvis_path, sim, max_dets_per_class=30, max_dets_per_image=120)
    dst = str(tmp_path / "top.json")
    assert main(["topk", files["jsonl"], "--per-class", "30", "--per-image", "120", "--out", dst, "--quiet"]) == 0
    red = lveval.evaluate(lvis_path, dst, max_dets_per_class=30, max_dets_per_image=120)
    assert len(load_results(dst)) < len(sim)
    assert red.fixed == full.fixed and red.pooled == full.pooled and red.old == full.old
    np.testing.assert_array_equal(red.precision["fixed"], full.precision["fixed"])


def _write_big(path, n, seed, n_cls=40):
    rng = np.random.default_rng(seed)
    with open(path, "wb") as f:
        f.write(b"[")
        for i in range(0, n, 5000):
            m = min(5000, n - i)
            recs = [{"image_id": int(a), "category_id": int(c), "bbox": [1.5, 2.5, 30.25, 40.125],
                     "score": float(s)} for a, c, s in zip(rng.integers(0, 500, m), rng.integers(1, n_cls + 1, m),
                                                           np.round(rng.random(m), 3))]
            f.write((b"," if i else b"") + orjson.dumps(recs)[1:-1])
        f.write(b"]")


def _peak(src, dst, k):
    gc.collect()
    tracemalloc.start()
    topk_file(src, dst, k, block_size=1 << 16)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def test_memory_is_bounded_by_k_times_classes_not_input_size(tmp_path):
    """numpy buffers are traced by tracemalloc: the peak stays flat when the input grows 4x."""
    small, big = str(tmp_path / "s.json"), str(tmp_path / "b.json")
    _write_big(small, 30_000, 0)
    _write_big(big, 120_000, 1)
    p_small = _peak(small, str(tmp_path / "os.json"), 5)
    p_big = _peak(big, str(tmp_path / "ob.json"), 5)
    size_big = os.path.getsize(big)
    assert size_big > 8 << 20
    assert p_big < size_big / 8, (p_big, size_big)          # far below the input size
    assert p_big < 1.5 * p_small + (256 << 10), (p_small, p_big)
    assert len(load_results(str(tmp_path / "ob.json"))) == 40 * 5


def test_collector_memory_is_bounded(monkeypatch):
    from lveval.topk import TopKPerClass

    rng = np.random.default_rng(3)
    c = TopKPerClass(k=10)
    peak = 0
    for i in range(300):
        n = 50
        c.add(i, rng.random((n, 4)) + 1, rng.random(n), rng.integers(0, 20, n))
        peak = max(peak, len(c))
    # kept <= k x classes after each prune; pending rows are pruned at a quarter of that (or MIN_BATCH)
    assert peak <= 10 * 20 + max(10 * 20 // 4, 64) + 50
    assert c.num_seen == 300 * 50 and len(c.to_columns()["score"]) == 200


@pytest.mark.parametrize("text,reason,record,line", [
    ('[{"image_id": 1, "category_id": 1, "score": 0.5, "bbox": [1,2,3,4]},\n'
     ' {"image_id": 1, "category_id": 2, "bbox": [1,2,3,4]}]', "missing required field", 1, 2),
    ('[{"image_id": 1, "category_id": 1, "score": 0.5, "bbox": [1,2,3,4]}\n'
     ' {"image_id": 1, "category_id": 2, "score": 0.5}]', "one ','", None, 1),
    ('[{"image_id": 1, "category_id": 1, "score": 0.5, "bbox": [1,2,3,4]},\n'
     ' {"image_id": 1, "category_id": 1, "score": -0.5, "bbox": [1,2,3,4]}]', "finite number >= 0", 1, 2),
    ('[{"image_id": 1, "category_id": 1, "score": 0.5, "bbox": [1,2,3,4]},\n 7]', "expected a JSON object",
     None, 2),
    ('[{"image_id": 1, "category_id": 1, "score": 0.5, "bbox": [1,2,3,4]},\n'
     ' {"image_id": 1, "category_id": 1, "sc', "truncated", None, 2),
    ('{"image_id": 1, "category_id": 1, "score": 0.5}', "JSON array", None, None),
    ('', "empty", None, None),
])
def test_bad_input_names_record_and_line(tmp_path, text, reason, record, line):
    src = tmp_path / "bad.json"
    src.write_text(text)
    out = tmp_path / "o.json"
    with pytest.raises(InputError) as ei:
        topk_file(str(src), str(out), 3, block_size=32)
    e = ei.value
    assert reason in str(e) and e.path == str(src)
    if record is not None:
        assert e.record == record
    if line is not None:
        assert e.line == line
    assert not out.exists()                                  # nothing written on failure
    assert main(["topk", str(src), "--out", str(out), "--quiet"]) == 2


def test_cli_refuses_to_overwrite_input(files, tmp_path, capsys):
    assert main(["topk", files["json"], "--out", files["json"], "--quiet"]) == 2
    assert "overwrite" in capsys.readouterr().err
