"""Loader internals behind the one-line errors: RLE decoding, record positions in a JSON array,
Python inputs (numpy scalars, column dicts), and decoding a large array in pieces."""
from __future__ import annotations

import json

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lveval.exceptions import InputError, ResourceError
from lveval.io import chunks, jsonfile
from lveval.io.jsonfile import record_at
from lveval.io.results import counts_problem, decode_counts, load_results
from tests.reliability.relkit import results_list

SETTINGS = dict(deadline=None, derandomize=True)


def _runs(mask: np.ndarray) -> np.ndarray:
    """Run lengths of a mask in column-major order, starting with a run of zeros (COCO's RLE)."""
    flat = mask.ravel(order="F").astype(np.int8)
    change = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.r_[0, change, len(flat)]
    runs = np.diff(bounds)
    return np.r_[0, runs] if flat[0] == 1 else runs


@settings(max_examples=60, **SETTINGS)
@given(h=st.integers(1, 40), w=st.integers(1, 40), seed=st.integers(0, 2 ** 31), density=st.floats(0, 1))
def test_decode_counts_matches_pycocotools_encoding(h, w, seed, density):
    from pycocotools import mask as mask_utils

    m = (np.random.default_rng(seed).random((h, w)) < density).astype(np.uint8)
    cb = mask_utils.encode(np.asfortranarray(m))["counts"]
    counts, why = decode_counts(cb)
    assert why is None
    np.testing.assert_array_equal(counts, _runs(m))
    assert counts_problem(cb, h * w) is None
    assert counts_problem(cb, h * w + 1) is not None


@pytest.mark.parametrize("cb, says", [
    (b"!!", "alphabet"),
    (b"0p", "alphabet"),        # 'p' is one past the last character COCO uses ('o')
    (b"9`", "middle of a run"),   # '`' (96) has the continuation bit set and nothing follows
    (b"0@", "negative run"),      # '@' is 16: sign bit set in a one-character run -> 16 - 32 = -16
])
def test_counts_problem_names_the_defect(cb, says):
    assert says in counts_problem(cb, 100)


def _array_with_tricky_strings(texts) -> bytes:
    recs = [dict(results_list()[i % 5], note=t, nested={"a": [t, {"b": t}]}) for i, t in enumerate(texts)]
    return json.dumps(recs, indent=None if len(texts) % 2 else 1).encode()


@settings(max_examples=60, **SETTINGS)
@given(texts=st.lists(st.text(alphabet='ab,[]{}"\\: \n', max_size=8), min_size=1, max_size=8),
       block=st.sampled_from([1, 2, 3, 7, 64, 1 << 22]))
def test_record_at_counts_records_not_commas_in_strings(texts, block):
    """Also with tiny blocks, so strings, escapes and nesting cross block boundaries."""
    jsonfile._BLOCK = block
    buf = _array_with_tricky_strings(texts)
    starts = []   # byte offset where each record's text begins
    pos = 1
    for _ in range(len(texts)):
        j = buf.index(b"{", pos)
        starts.append(j)
        # skip to the end of this record by decoding progressively
        depth, k, in_str = 0, j, False
        while True:
            c = buf[k:k + 1]
            if in_str:
                if c == b"\\":
                    k += 1
                elif c == b'"':
                    in_str = False
            elif c == b'"':
                in_str = True
            elif c in b"{[":
                depth += 1
            elif c in b"}]":
                depth -= 1
                if depth == 0:
                    break
            k += 1
        pos = k + 1
    try:
        for i, s in enumerate(starts):
            assert record_at(buf, s + 1) == i
    finally:
        jsonfile._BLOCK = 1 << 22


def test_python_lists_may_hold_numpy_scalars():
    r = [{"image_id": np.int64(1), "category_id": np.int32(2), "score": np.float32(0.5),
          "bbox": np.array([1.0, 2.0, 3.0, 4.0])}]
    d = load_results(r)
    assert d.img_id.tolist() == [1] and d.cat_id.tolist() == [2] and d.bbox.tolist() == [[1, 2, 3, 4]]


@pytest.mark.parametrize("cols, field, says", [
    ({"image_id": [1, 2], "category_id": [1], "score": [0.5, 0.4]}, "category_id", "as many rows"),
    ({"image_id": [1.5], "category_id": [1], "score": [0.5]}, "image_id", "expected integers"),
    ({"image_id": [1], "category_id": [1], "score": ["high"]}, "score", "expected numbers"),
    ({"image_id": [1], "category_id": [1], "score": [0.5], "bbox": [[1, 2, 3]]}, "bbox", "as many rows"),
])
def test_column_dicts_are_checked(cols, field, says):
    with pytest.raises(InputError) as e:
        load_results(cols)
    assert e.value.field == field and says in str(e.value)


@pytest.fixture
def small_pieces(monkeypatch):
    """Decode JSON arrays above 2 KB in ~1 KB pieces, as large files are (compiled reader off)."""
    monkeypatch.setenv("LVEVAL_PURE_JSON", "1")
    monkeypatch.setattr(chunks, "CHUNK_BYTES", 1000)
    monkeypatch.setattr(jsonfile, "CHUNK_BYTES", 1000)
    monkeypatch.setattr(jsonfile, "CHUNKED_ABOVE", 2000)
    monkeypatch.setattr("lveval.io.results.CHUNKED_ABOVE", 2000)


def test_pieces_give_the_same_columns(tmp_path, small_pieces):
    recs = results_list() * 30
    p = tmp_path / "r.json"
    p.write_bytes(orjson.dumps(recs))
    d = load_results(str(p))
    w = load_results(recs)
    for k in ("img_id", "cat_id", "score", "bbox", "record"):
        np.testing.assert_array_equal(getattr(d, k), getattr(w, k))


def test_a_bad_record_found_in_pieces_is_located_precisely(tmp_path, small_pieces):
    recs = [dict(r) for r in results_list() * 30]
    recs[101]["score"] = "high"
    p = tmp_path / "r.json"
    p.write_bytes(orjson.dumps(recs))
    with pytest.raises(InputError) as e:
        load_results(str(p))
    assert e.value.record == 101 and e.value.field == "score"


def test_a_bad_file_too_large_to_locate_the_error_is_refused(tmp_path, small_pieces, monkeypatch):
    recs = results_list() * 30
    p = tmp_path / "r.json"
    p.write_bytes(orjson.dumps(recs)[:-5])   # truncated: the last piece does not decode
    size = p.stat().st_size
    pieces = jsonfile.estimate_memory(str(p), size, "json")
    whole = jsonfile.estimate_memory(str(p), size, "json", whole=True)
    assert pieces < whole
    monkeypatch.setenv("LVEVAL_MEMORY_LIMIT", str((pieces + whole) // 2))
    with pytest.raises(ResourceError, match="not a valid JSON array of detections"):
        load_results(str(p))


def test_chunked_pieces_must_agree_on_masks(tmp_path, monkeypatch):
    """A large array decoded in pieces reports a record without a mask like the whole-file decoder."""
    import orjson

    from lveval.exceptions import InputError
    from lveval.io import chunks, decoders, results

    recs = [{"image_id": 1, "category_id": 1, "score": 0.5, "bbox": [1, 1, 4, 4],
             "segmentation": {"size": [10, 10], "counts": "0d1"}} for _ in range(400)]
    recs += [{"image_id": 1, "category_id": 1, "score": 0.5, "bbox": [1, 1, 4, 4]} for _ in range(400)]
    p = tmp_path / "r.json"
    p.write_bytes(orjson.dumps(recs))
    monkeypatch.setattr(chunks, "CHUNK_BYTES", 4096)
    with pytest.raises(InputError) as e:
        chunks.decode_chunked(str(p), decoders.ARRAY, results._columns, chunks.concat_columns)
    assert e.value.record == 400 and e.value.field == "segmentation"
