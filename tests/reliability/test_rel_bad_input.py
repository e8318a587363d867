"""Every kind of bad input gets exit status 2 and one readable line naming file, record, line
and field; allowed oddities (scores above 1, boxes outside the image, unknown ids with a skip
policy, an empty result list, extra keys) run with exit 0 and are counted in the output JSON.

Every case runs through ``lveval.cli.main`` in-process; one case per kind the issue lists also
runs the real command line in a subprocess (those are started together, so the set costs a few
interpreter start-ups of wall time rather than one per case in a row).
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from dataclasses import field as dc_field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.reliability.relkit import dumps, gt_dict, mask_results, results_list, run_cli


@dataclass
class Case:
    """One run of ``lveval evaluate GT RESULTS --json OUT``.

    ``results``/``gt``: file content (bytes), a writer ``f(path)``, or None for the valid default.
    For bad input, ``culprit`` is the file the message must name, and ``record``/``line``/``field``
    what it must point at; ``says`` is a phrase the message must contain.
    """

    id: str
    results: Any = None
    gt: Any = None
    ext: str = ".json"
    args: tuple = ()
    culprit: str = "results"
    record: int | None = None
    line: int | None = None
    field: str | None = None
    says: str = ""
    check: Callable | None = None   # for allowed inputs: check(output dict, stderr, runs)
    env: dict = dc_field(default_factory=dict)


def R(edit=None) -> bytes:
    """The valid results with ``edit`` applied (edit mutates the list in place)."""
    r = results_list()
    if edit:
        edit(r)
    return dumps(r)


def G(edit=None) -> bytes:
    g = gt_dict()
    if edit:
        edit(g)
    return dumps(g)


def M(edit=None) -> bytes:
    r = mask_results()
    if edit:
        edit(r)
    return dumps(r)


def jsonl(*lines) -> bytes:
    return b"\n".join(lines) + b"\n"


def rec(i, **changes) -> bytes:
    r = results_list()[i]
    r.update(changes)
    return dumps(r)


def parquet(**columns):
    """A writer of a Parquet file with the given Arrow arrays (defaults: the valid results)."""
    def write(path):
        base = results_list()
        cols = {"image_id": pa.array([r["image_id"] for r in base], pa.int64()),
                "category_id": pa.array([r["category_id"] for r in base], pa.int64()),
                "score": pa.array([r["score"] for r in base], pa.float64()),
                "bbox": pa.array([r["bbox"] for r in base], pa.list_(pa.float64()))}
        for k, v in columns.items():
            if v is None:
                cols.pop(k)
            else:
                cols[k] = v
        pq.write_table(pa.table(cols), path)
    return write


def _pop(key, i):
    return lambda r: r[i].pop(key)


def _set(i, **kw):
    return lambda r: r[i].update(kw)


def _truncate_inside(rec_index: int) -> bytes:
    """The valid results cut off in the middle of record ``rec_index``."""
    full = R()
    start = full.index(dumps(results_list()[rec_index]))
    return full[:start + 12]


def _missing_comma_after(rec_index: int) -> tuple[bytes, int]:
    """Results one per line, with the comma after record ``rec_index`` removed; returns (bytes, line)."""
    lines = [dumps(r) + b"," for r in results_list()]
    lines[-1] = lines[-1][:-1]
    lines[rec_index] = lines[rec_index][:-1]
    return b"[\n" + b"\n".join(lines) + b"\n]", rec_index + 3   # '[' is line 1; the next record fails


MISSING_COMMA, MISSING_COMMA_LINE = _missing_comma_after(2)
NAN_SCORE = R().replace(b'"score":0.7', b'"score":NaN')          # record 2 has score 0.7
INF_BOX = R().replace(b'[5,6,20,19]', b'[5,6,Infinity,19]')       # record 2's box


def _gt_rle(size_hw, poly_ann=0):
    """Ground truth whose annotation ``poly_ann`` carries an RLE of the given size instead of polygons."""
    from pycocotools import mask as mask_utils

    def edit(g):
        a = g["annotations"][poly_ann]
        rle = mask_utils.merge(mask_utils.frPyObjects(a["segmentation"], *size_hw))
        a["segmentation"] = {"size": list(size_hw), "counts": rle["counts"].decode()}
    return edit


def _small_rle_counts() -> str:
    """Compressed RLE of a 10x10 mask: valid characters, but its runs sum to 100, not 100*120."""
    from pycocotools import mask as mask_utils

    m = np.zeros((10, 10), np.uint8, order="F")
    m[2:5, 3:7] = 1
    return mask_utils.encode(m)["counts"].decode()


BAD = [
    # --- results: JSON syntax and top-level shape
    Case("results-not-json", b"detections: none\n", line=1, says="not valid JSON"),
    Case("results-truncated", _truncate_inside(3), record=3, says="ends in the middle"),
    Case("results-missing-comma", MISSING_COMMA, record=2, line=MISSING_COMMA_LINE, says="not valid JSON"),
    Case("results-top-level-object", dumps(results_list()[0]), says="got an object"),
    Case("results-top-level-number", b"42", says="got a number"),
    Case("results-is-a-gt-file", G(), says="looks like a ground-truth file"),
    Case("results-record-not-object", R(lambda r: r.__setitem__(1, [1, 1, 0.5])), record=1,
         says="expected an object"),
    Case("results-empty-file", b"", says="file is empty"),
    Case("results-whitespace-only", b"\n  \n", says="only whitespace"),
    # --- results: keys and types
    Case("results-missing-score", R(_pop("score", 3)), record=3, field="score", says="missing required field"),
    Case("results-missing-image-id", R(_pop("image_id", 0)), record=0, field="image_id",
         says="missing required field"),
    Case("results-misspelled-key", R(lambda r: r[4].update(scores=r[4].pop("score"))), record=4,
         field="score", says="missing required field"),
    Case("results-score-string", R(_set(2, score="high")), record=2, field="score",
         says="expected a number, got a string"),
    Case("results-score-bool", R(_set(1, score=True)), record=1, field="score", says="expected a number"),
    Case("results-image-id-float", R(_set(3, image_id=1.5)), record=3, field="image_id",
         says="expected an integer"),
    Case("results-category-id-string", R(_set(0, category_id="1")), record=0, field="category_id",
         says="expected an integer, got a string"),
    Case("results-image-id-too-big", R(_set(2, image_id=2 ** 70)), record=2, field="image_id",
         says="64 bits"),
    Case("results-bbox-string", R(_set(1, bbox="1,2,3,4")), record=1, field="bbox", says="expected an array"),
    Case("results-bbox-3-numbers", R(_set(4, bbox=[1, 2, 3])), record=4, field="bbox", says="list of 4 numbers"),
    Case("results-bbox-5-numbers", R(_set(0, bbox=[1, 2, 3, 4, 5])), record=0, field="bbox",
         says="list of 4 numbers"),
    Case("results-bbox-missing-on-one", R(_pop("bbox", 3)), record=3, field="bbox",
         says="some records have a bbox"),
    # --- results: values
    Case("results-score-nan", NAN_SCORE, record=2, line=1, field="score", says="NaN is not a JSON number"),
    Case("results-bbox-infinity", INF_BOX, record=2, line=1, field="bbox", says="Infinity is not a JSON number"),
    Case("results-score-overflow", R().replace(b'"score":0.3', b'"score":1e999'), record=3, field="score",
         says="out of range"),
    Case("results-score-negative", R(_set(3, score=-0.25)), record=3, field="score", says="must be a finite number >= 0"),
    Case("results-bbox-zero-width", R(_set(2, bbox=[5, 6, 0, 19])), record=2, field="bbox", says="w > 0"),
    Case("results-bbox-negative-height", R(_set(4, bbox=[5, 6, 3, -2])), record=4, field="bbox", says="h > 0"),
    Case("results-unknown-image", R(_set(3, image_id=999)), record=3, field="image_id",
         says="--on-unknown-image skip"),
    Case("results-unknown-category", R(_set(1, category_id=77)), record=1, field="category_id",
         says="--on-unknown-category skip"),
    # --- results: masks
    Case("segm-without-masks", R(), args=("--iou-type", "segm"), field="segmentation",
         says="carry no 'segmentation' masks"),
    Case("rle-size-mismatch", M(lambda r: r[2]["segmentation"].update(size=[100, 120])),
         args=("--iou-type", "segm"), record=2, field="segmentation.size", says="does not match the image"),
    Case("rle-bad-characters", M(lambda r: r[0]["segmentation"].update(counts="!!~~")),
         args=("--iou-type", "segm"), record=0, field="segmentation.counts", says="malformed compressed RLE"),
    Case("rle-counts-wrong-sum", M(lambda r: r[1]["segmentation"].update(counts=_small_rle_counts())),
         args=("--iou-type", "segm"), record=1, field="segmentation.counts",
         says=f"runs sum to {10 * 10}, expected height*width = {100 * 120}"),
    Case("rle-list-counts-wrong-sum", M(lambda r: r[3]["segmentation"].update(counts=[5, 5])),
         args=("--iou-type", "segm"), record=3, field="segmentation.counts", says="sum to 10"),
    Case("polygon-two-points", M(lambda r: r[4].update(segmentation=[[1, 2, 30, 4]])),
         args=("--iou-type", "segm"), record=4, field="segmentation", says="at least 3 points"),
    Case("polygon-odd-count", M(lambda r: r[0].update(segmentation=[[1, 2, 30, 4, 5, 6, 7]])),
         args=("--iou-type", "segm"), record=0, field="segmentation", says="at least 3 points"),
    Case("segmentation-a-number", M(lambda r: r[2].update(segmentation=5)),
         args=("--iou-type", "segm"), record=2, field="segmentation", says="expected an RLE"),
    # --- results: files
    Case("results-is-a-directory", "mkdir", says="is a directory"),
    Case("results-missing-file", "absent", says="file not found"),
    # --- JSON Lines: the line is named
    Case("jsonl-bad-line", jsonl(rec(0), b"", rec(1), b'{"image_id": 2, "cat', rec(2)), ext=".jsonl",
         record=2, line=4, says="not valid JSON"),
    Case("jsonl-missing-field", jsonl(rec(0), b"", dumps({"image_id": 1, "category_id": 1, "bbox": [1, 1, 5, 5]})),
         ext=".jsonl", record=1, line=3, field="score", says="missing required field"),
    Case("jsonl-negative-score", jsonl(rec(0), rec(1), b"", rec(2, score=-1.0), rec(3)), ext=".jsonl",
         record=2, line=4, field="score", says="must be a finite number >= 0"),
    Case("jsonl-nan-score", jsonl(rec(0), rec(1).replace(b'"score":0.8', b'"score":NaN')), ext=".jsonl",
         record=1, line=2, field="score", says="NaN is not a JSON number"),
    Case("jsonl-unknown-image", jsonl(rec(0), b"", b"", rec(1, image_id=5)), ext=".jsonl", record=1, line=4,
         field="image_id", says="unknown image_id 5"),
    Case("jsonl-holding-an-array", R(), ext=".jsonl", record=0, line=1, says="expected an object"),
    Case("jsonl-empty-file", b"", ext=".jsonl", says="file is empty"),
    # --- Parquet
    Case("parquet-missing-column", parquet(score=None), ext=".parquet", field="score",
         says="missing required column"),
    Case("parquet-score-strings", parquet(score=pa.array(["0.9", "0.8", "0.7", "0.3", "0.6"])), ext=".parquet",
         field="score", says="expected numeric values"),
    Case("parquet-ids-as-floats", parquet(image_id=pa.array([1.0, 1.0, 2.0, 1.5, 2.0])), ext=".parquet",
         field="image_id", says="expected integer values"),
    Case("parquet-null-category", parquet(category_id=pa.array([1, 2, None, 3, 3], pa.int64())),
         ext=".parquet", record=2, field="category_id", says="null value"),
    Case("parquet-nan-score", parquet(score=pa.array([0.9, 0.8, 0.7, float("nan"), 0.6])), ext=".parquet",
         record=3, field="score", says="must be a finite number >= 0"),
    Case("parquet-infinite-score", parquet(score=pa.array([0.9, float("inf"), 0.7, 0.3, 0.6])),
         ext=".parquet", record=1, field="score", says="must be a finite number >= 0"),
    Case("parquet-bbox-3-numbers", parquet(bbox=pa.array([[1, 1, 5, 5]] * 4 + [[1, 1, 5]], pa.list_(pa.float64()))),
         ext=".parquet", record=4, field="bbox", says="4 numbers"),
    Case("parquet-bbox-null-coordinate",
         parquet(bbox=pa.array([[1, 1, 5, 5]] * 2 + [[1, None, 5, 5]] + [[1, 1, 5, 5]] * 2, pa.list_(pa.float64()))),
         ext=".parquet", record=2, field="bbox", says="null coordinate"),
    Case("parquet-masks-without-size", parquet(segm_counts=pa.array(["abc"] * 5)), ext=".parquet",
         field="segm_h", says="missing required column"),
    Case("parquet-not-parquet", b"PAR1 but not really", ext=".parquet", says="not a readable Parquet file"),
    # --- ground truth
    Case("gt-not-json", gt=b"<html>not found</html>", culprit="gt", line=1, says="not valid JSON"),
    Case("gt-truncated", gt=G()[:-40], culprit="gt", says="ends in the middle"),
    Case("gt-empty-file", gt=b"", culprit="gt", says="file is empty"),
    Case("gt-top-level-list", gt=dumps(gt_dict()["images"]), culprit="gt", says="expected a JSON object"),
    Case("gt-missing-annotations", gt=G(lambda g: g.pop("annotations")), culprit="gt",
         says="missing required key 'annotations'"),
    Case("gt-missing-categories", gt=G(lambda g: g.pop("categories")), culprit="gt",
         says="missing required key 'categories'"),
    Case("gt-no-images", gt=G(lambda g: g.update(images=[], annotations=[])), culprit="gt", field="images",
         says="no images"),
    Case("gt-duplicate-image-id", gt=G(lambda g: g["images"][1].update(id=1)), culprit="gt", record=1,
         field="images.id", says="duplicate image id 1"),
    Case("gt-duplicate-annotation-id", gt=G(lambda g: g["annotations"][3].update(id=2)), culprit="gt",
         record=3, field="annotations.id", says="duplicate annotation id 2"),
    Case("gt-category-without-frequency", gt=G(lambda g: g["categories"][1].pop("frequency")), culprit="gt",
         record=1, field="categories.frequency", says="it is missing"),
    Case("gt-annotation-unknown-image", gt=G(lambda g: g["annotations"][2].update(image_id=9)), culprit="gt",
         record=2, field="annotations.image_id", says="unknown image_id 9"),
    Case("gt-bbox-wrong-length", gt=G(lambda g: g["annotations"][0].update(bbox=[1, 2, 3])), culprit="gt",
         record=0, field="annotations.bbox", says="4 finite numbers"),
    Case("gt-area-missing", gt=G(lambda g: g["annotations"][1].pop("area")), culprit="gt", record=1,
         field="annotations.area", says="missing required field"),
    Case("gt-height-string", gt=G(lambda g: g["images"][0].update(height="100")), culprit="gt", record=0,
         field="images.height", says="positive integer, got str '100'"),
    Case("gt-iscrowd-string", gt=G(lambda g: g["annotations"][2].update(iscrowd="no")), culprit="gt", record=2,
         field="annotations.iscrowd", says="expected 0 or 1"),
    Case("gt-polygon-two-points", gt=G(lambda g: g["annotations"][3].update(segmentation=[[1, 2, 3, 4]])),
         culprit="gt", record=3, field="annotations.segmentation", says="at least 3 points"),
    Case("gt-rle-size-mismatch", M(), gt=G(_gt_rle((50, 50), 1)), args=("--iou-type", "segm"), culprit="gt",
         record=1, field="annotations.segmentation.size", says="does not match the image"),
    Case("gt-segm-missing", M(), gt=G(lambda g: g["annotations"][2].pop("segmentation")),
         args=("--iou-type", "segm"), culprit="gt", record=2, field="annotations.segmentation",
         says="needs a segmentation"),
    Case("gt-missing-file", gt="absent", culprit="gt", says="file not found"),
    Case("gt-is-a-directory", gt="mkdir", culprit="gt", says="is a directory"),
    # --- resources
    Case("results-too-large-for-memory", R(), env={"LVEVAL_MEMORY_LIMIT": "500000"},   # the GT and its vocabulary fit
         says="lveval topk"),
    # issue 16
    Case("results-nested-100k-arrays", R().replace(b'"score":0.3', b'"score":0.3,"x":' + b"[" * 100_000
                                                     + b"]" * 100_000), record=3, line=1,
         says="nested more than 200 levels deep"),
    Case("jsonl-nested-100k-arrays", jsonl(rec(0), rec(1).replace(b'"score":0.8', b'"score":0.8,"x":' + b"[" * 100_000
                                                                   + b"]" * 100_000)), ext=".jsonl", record=1, line=2,
         says="nested more than 200 levels deep"),
    Case("results-repeated-key", R().replace(b'"score":0.7', b'"score":0.7,"score":-1'), record=2, field="score",
         says="key repeated in the record"),
    Case("results-repeated-key-in-mask", M().replace(b'"size":[60,80]', b'"size":[60,80],"size":[60,80]', 1),
         args=("--iou-type", "segm"), record=2, field="segmentation.size", says="key repeated"),
    Case("jsonl-repeated-key", jsonl(rec(0), b"", rec(1).replace(b'"image_id":1', b'"image_id":1,"image_id":2')),
         ext=".jsonl", record=1, line=3, field="image_id", says="key repeated in the record"),
    Case("results-utf16", R().decode().encode("utf-16"), says="the file is UTF-16 text"),
    Case("results-utf16-no-mark", R().decode().encode("utf-16-le"), says="the file is UTF-16 text"),
    Case("results-bzip2", __import__("bz2").compress(R()), says="bzip2-compressed"),
    Case("gt-utf16", gt=G().decode().encode("utf-16"), culprit="gt", says="the file is UTF-16 text"),
    Case("results-is-an-lvis-gt-file", dumps({"annotations": [dict(gt_dict()["annotations"][0], id=i + 1)
                                                              for i in range(2000)],
                                              "categories": gt_dict()["categories"], "images": gt_dict()["images"]}),
         says="looks like a ground-truth file"),
    Case("protocols-bogus", R(), args=("--protocols", "bogus"), culprit=None,
         says="option 'protocols': expected one of old, fixed, pooled, got 'bogus'"),
    Case("protocols-empty", R(), args=("--protocols", ","), culprit=None, says="option 'protocols': expected at least one of"),
    Case("scheduler-not-a-url", R(), args=("--scheduler", "not a url"), culprit=None, says="expected an address"),
    Case("scheduler-port-closed", R(), args=("--scheduler", "tcp://127.0.0.1:1"), culprit=None,
         says="cannot connect to tcp://127.0.0.1:1"),
    Case("scheduler-plain-tcp-elsewhere", R(), args=("--scheduler", "tcp://192.0.2.1:8786"), culprit=None,
         says="refusing plain tcp://"),
    Case("memory-limit-inf", R(), env={"LVEVAL_MEMORY_LIMIT": "inf"}, culprit=None, says="LVEVAL_MEMORY_LIMIT"),
    Case("memory-limit-negative", R(), env={"LVEVAL_MEMORY_LIMIT": "-5"}, culprit=None, says="LVEVAL_MEMORY_LIMIT"),
    Case("memory-ground-truth", R(), env={"LVEVAL_MEMORY_LIMIT": "5000"}, culprit="gt",
         says="loading this ground truth needs about"),
    Case("memory-vocabulary", R(), gt=G(lambda g: g["categories"].extend(
        {"id": 10 + i, "name": f"c{i}", "frequency": "r"} for i in range(20_000))),
         env={"LVEVAL_MEMORY_LIMIT": str(300 << 20)}, culprit="gt", says="categories would fit"),
    Case("memory-one-large-string", R(lambda r: r[0].update(caption="x" * (8 << 20))),
         env={"LVEVAL_MEMORY_LIMIT": str(100 << 20)}, says="lveval topk"),
    # the general path (msgspec, RLE objects) holds 12x the file; the compiled mask reader 1.5x
    Case("memory-masks", M(lambda r: r.extend(r * 400)), args=("--iou-type", "segm"),
         env={"LVEVAL_MEMORY_LIMIT": str(84 << 20), "LVEVAL_PURE_JSON": "1"}, says="lveval topk"),
]


def _figures(d):
    return {p: d[p] for p in ("old", "fixed", "pooled")}


def _same_figures_as(base_id):
    def check(out, err, runs):
        assert _figures(out) == _figures(runs[base_id]["out"])
    return check


def _check_above_one(out, err, runs):
    warns = [w for w in out["warnings"] if "above 1" in w]
    assert len(warns) == 1 and warns[0].split(": ", 1)[1].startswith("2 scores are above 1")
    assert sum("above 1" in ln for ln in err.splitlines()) == 1   # warned once, not per record


def _check_outside(out, err, runs):
    assert out["flagged"] == {"boxes outside the image (evaluated as given)": 2}
    assert sum("outside" in ln for ln in err.splitlines()) == 1   # said once, not as a note and a warning
    assert _figures(out) != _figures(runs["ok-base"]["out"])   # the boxes were evaluated, not dropped


def _check_skipped(expected):
    def check(out, err, runs):
        assert out["skipped"] == expected
        assert _figures(out) == _figures(runs["ok-base"]["out"])
        for reason, n in expected.items():
            assert f"skipped: {n} {'record' if n == 1 else 'records'} ({reason})" in err
    return check


def _holds(predicate):
    def check(out, err, runs):
        assert predicate(out, err, runs), err
    return check


def _check_empty(out, err, runs):
    for p in ("old", "fixed", "pooled"):
        assert out[p]["AP"] == 0.0, p   # the GT has annotations, so AP is defined and zero
    assert all(r["num_dets"] == 0 for r in out["per_class"])


def _with_extra_keys(r):
    for i, x in enumerate(r):
        x.update(id=i, area=1.0, label="whatever", extra={"nested": [1, 2]})


def _with_unknown(image=0, category=0):
    def edit(r):
        r += [dict(results_list()[0], image_id=999 + i) for i in range(image)]
        r += [dict(results_list()[1], category_id=77) for _ in range(category)]
    return edit


def _segm_struct_parquet(path):
    m = mask_results()
    seg = pa.array([x["segmentation"] for x in m],
                   pa.struct([("size", pa.list_(pa.int64())), ("counts", pa.string())]))
    pq.write_table(pa.table({"image_id": [x["image_id"] for x in m], "category_id": [x["category_id"] for x in m],
                             "score": [x["score"] for x in m], "segmentation": seg}), path)


OK = [
    Case("ok-base", R()),
    Case("ok-scores-above-1", R(lambda r: (r[0].update(score=1.5), r[2].update(score=2.0))),
         check=_check_above_one),
    Case("ok-boxes-outside-image", R(lambda r: (r[0].update(bbox=[-5, 10, 40, 30]), r[2].update(bbox=[70, 50, 20, 19]))),
         check=_check_outside),
    Case("ok-skip-unknown-image", R(_with_unknown(image=2)), args=("--on-unknown-image", "skip"),
         check=_check_skipped({"unknown image_id": 2})),
    Case("ok-skip-unknown-category", R(_with_unknown(category=3)), args=("--on-unknown-category", "skip"),
         check=_check_skipped({"unknown category_id": 3})),
    Case("ok-skip-both", R(_with_unknown(image=1, category=2)),
         args=("--on-unknown-image", "skip", "--on-unknown-category", "skip"),
         check=_check_skipped({"unknown image_id": 1, "unknown category_id": 2})),
    Case("ok-empty-array", b"[]", check=_check_empty),
    Case("ok-empty-parquet", parquet(image_id=pa.array([], pa.int64()), category_id=pa.array([], pa.int64()),
                                     score=pa.array([], pa.float64()), bbox=pa.array([], pa.list_(pa.float64()))),
         ext=".parquet", check=_check_empty),
    Case("ok-extra-keys-ignored", R(_with_extra_keys), check=_same_figures_as("ok-base")),
    Case("ok-byte-order-mark", b"\xef\xbb\xbf" + R(), check=_same_figures_as("ok-base")),
    Case("ok-jsonl-crlf-and-blank-lines", b"\r\n".join([rec(0), rec(1), b"", rec(2), rec(3), b"  ", rec(4)]),
         ext=".jsonl", check=_same_figures_as("ok-base")),
    Case("ok-segm-json", M(), args=("--iou-type", "segm")),
    Case("ok-segm-parquet-struct", _segm_struct_parquet, ext=".parquet", args=("--iou-type", "segm"),
         check=_same_figures_as("ok-segm-json")),
    Case("ok-memory-limit-generous", R(), env={"LVEVAL_MEMORY_LIMIT": str(1 << 30)},
         check=_same_figures_as("ok-base")),
    # issue 16
    Case("ok-gzip-results", __import__("gzip").compress(R()), ext=".json.gz", check=_same_figures_as("ok-base")),
    Case("ok-gzip-content-named-json", __import__("gzip").compress(R()), check=_same_figures_as("ok-base")),
    Case("ok-gzip-jsonl", __import__("gzip").compress(b"\n".join(rec(i) for i in range(5))), ext=".jsonl.gz",
         check=_same_figures_as("ok-base")),
    Case("ok-gzip-ground-truth", R(), gt=__import__("gzip").compress(G()), check=_same_figures_as("ok-base")),
    Case("ok-huge-box-no-runtime-warning", R(lambda r: r.append(dict(r[0], bbox=[1, 1, 1e200, 1e200], score=0.01))),
         check=_holds(lambda out, err, runs: "RuntimeWarning" not in err and "numpy" not in err)),
    Case("ok-budget-said-once-shortly", R(), check=_holds(lambda out, err, runs: (
        [ln for ln in err.splitlines() if "fewer than" in ln] == [
            "warning: 3 of 3 classes have fewer than 10000 detections, AP-Fixed's budget; to fill it, output more "
            "per class (lower the score threshold, raise the per-image limit)"]))),
    Case("ok-coverage-notice", R(lambda r: r.__setitem__(slice(None), [x for x in r if x["image_id"] == 1])),
         check=_holds(lambda out, err, runs: any("results cover 1 of the ground truth's 2 images" in w
                                                 for w in out["warnings"]) and "results cover 1 of" in err)),
    Case("ok-lvis-area-zero-annotation", R(), gt=G(lambda g: g["annotations"][3].update(area=0)),
         check=_holds(lambda out, err, runs: out["skipped"] == {
             "annotations with area 0 (LVIS rules drop them, as lvis-api does)": 1})),
]

BY_ID = {c.id: c for c in BAD + OK}
assert len(BY_ID) == len(BAD) + len(OK), "case ids must be unique"


def _materialise(case: Case, d) -> dict:
    """Write the case's files into directory ``d``; return the paths."""
    paths = {"gt": d / "gt.json", "results": d / ("results" + case.ext), "out": d / "out.json"}
    for kind, content, default in (("gt", case.gt, G()), ("results", case.results, R())):
        p = paths[kind]
        content = default if content is None else content
        if content == "mkdir":
            p.mkdir()
        elif content == "absent":
            pass
        elif callable(content):
            content(str(p))
        else:
            p.write_bytes(content)
    return paths


# Run through the real command line in a subprocess: every kind the issue lists. The remaining
# cases (variants of the same kinds) run through ``lveval.cli.main`` in-process, with the same checks.
CLI_BAD = [
    "results-not-json", "results-truncated", "results-missing-comma", "results-top-level-object",
    "results-missing-score", "results-misspelled-key", "results-score-string", "results-score-nan",
    "results-score-overflow", "results-score-negative", "results-bbox-3-numbers", "results-bbox-zero-width",
    "results-unknown-image", "results-unknown-category", "results-empty-file", "results-is-a-directory",
    "results-missing-file", "segm-without-masks", "rle-size-mismatch", "rle-counts-wrong-sum",
    "polygon-two-points", "jsonl-bad-line", "jsonl-negative-score", "parquet-missing-column",
    "parquet-score-strings", "parquet-null-category", "parquet-nan-score", "gt-not-json",
    "gt-missing-annotations", "gt-no-images", "gt-duplicate-image-id", "gt-duplicate-annotation-id",
    "gt-category-without-frequency", "results-too-large-for-memory",
    "results-nested-100k-arrays", "results-repeated-key", "results-utf16", "gt-utf16", "results-is-an-lvis-gt-file",
    "protocols-bogus", "scheduler-not-a-url", "scheduler-port-closed", "scheduler-plain-tcp-elsewhere",
    "memory-limit-inf", "memory-ground-truth", "memory-vocabulary",
]
CLI_OK = ["ok-base", "ok-scores-above-1", "ok-boxes-outside-image", "ok-skip-both", "ok-empty-array",
          "ok-gzip-results", "ok-gzip-ground-truth", "ok-huge-box-no-runtime-warning", "ok-budget-said-once-shortly"]


def _run_subprocess(case: Case, d) -> dict:
    paths = _materialise(case, d)
    p = run_cli(["evaluate", paths["gt"], paths["results"], "--json", paths["out"], *case.args], env=case.env)
    return _outcome(p.returncode, p.stdout, p.stderr, paths, d)


def _run_inprocess(case: Case, d) -> dict:
    from lveval.cli import main

    paths = _materialise(case, d)
    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        mp.delenv("LVEVAL_MEMORY_LIMIT", raising=False)
        for k, v in case.env.items():
            mp.setenv(k, v)
        rc = main(["evaluate", str(paths["gt"]), str(paths["results"]), "--json", str(paths["out"]),
                   *case.args])
    return _outcome(rc, out.getvalue(), err.getvalue(), paths, d)


def _outcome(rc, stdout, stderr, paths, d) -> dict:
    out = json.loads(paths["out"].read_text()) if rc == 0 and paths["out"].exists() else None
    return {"rc": rc, "stdout": stdout, "stderr": stderr, "paths": paths, "dir": d, "out": out}


class Runs:
    """Outcomes by case id, computed on first use (subprocess runs are started together)."""

    def __init__(self, run, tmp_path_factory):
        self.run, self.tmp, self.done = run, tmp_path_factory, {}

    def prefetch(self, ids) -> None:
        ids = [i for i in ids if i not in self.done]
        with ThreadPoolExecutor(max_workers=(os.cpu_count() or 2) + 2) as pool:
            futs = {i: pool.submit(self.run, BY_ID[i], self.tmp.mktemp(i)) for i in ids}
            self.done.update({i: f.result() for i, f in futs.items()})

    def __getitem__(self, case_id):
        if case_id not in self.done:
            self.done[case_id] = self.run(BY_ID[case_id], self.tmp.mktemp(case_id))
        return self.done[case_id]


@pytest.fixture(scope="module")
def inproc(tmp_path_factory):
    return Runs(_run_inprocess, tmp_path_factory)


@pytest.fixture(scope="module")
def cli(request, tmp_path_factory):
    runs = Runs(_run_subprocess, tmp_path_factory)
    wanted = set()
    for item in request.session.items:   # start every selected subprocess case at once
        cs = getattr(item, "callspec", None)
        if cs is not None and item.module is request.module and item.originalname.endswith("_cli"):
            wanted.add(cs.params["case"].id)
    if wanted & set(CLI_OK):
        wanted.add("ok-base")
    runs.prefetch(sorted(wanted))
    return runs


def _pointer(case: Case) -> list:
    """Regular expressions the message must match: record, line and field named as required."""
    pats = []
    if case.record is not None:
        pats.append(rf"\brecord {case.record}\b")
    if case.line is not None:
        pats.append(rf"\bline {case.line}\b")
    if case.field is not None:
        pats.append(re.escape(f"field '{case.field}'"))
    return pats


def check_bad(case: Case, o: dict) -> None:
    """Exit 2; one line on stderr naming file, record, line and field; no traceback; no output file."""
    assert o["rc"] == 2, (o["rc"], o["stderr"])
    assert "Traceback" not in o["stderr"]
    lines = o["stderr"].splitlines()
    assert len(lines) == 1, o["stderr"]
    msg = lines[0]
    culprit = str(o["paths"][case.culprit]) if case.culprit else ""
    assert msg.startswith("lveval: error: " + culprit), msg
    for pat in _pointer(case):
        assert re.search(pat, msg), (pat, msg)
    if case.record is None:
        assert "record" not in (msg.replace(culprit, "") if culprit else msg), msg
    assert case.says in msg, msg
    assert len(msg.replace(culprit, "") if culprit else msg) < 320, msg   # one readable line, not a dump
    assert not o["paths"]["out"].exists()
    assert not [f for f in os.listdir(o["dir"]) if f.startswith(".tmp-")]   # no partial output left
    assert o["stdout"] == ""   # no table printed for a failed run


def check_ok(case: Case, o: dict, runs) -> None:
    assert o["rc"] == 0, o["stderr"]
    assert "Traceback" not in o["stderr"] and "error" not in o["stderr"].lower()
    assert o["out"] is not None
    if case.check:
        case.check(o["out"], o["stderr"], runs)


@pytest.mark.parametrize("case", BAD, ids=[c.id for c in BAD])
def test_bad_input(case, inproc):
    check_bad(case, inproc[case.id])


@pytest.mark.parametrize("case", [BY_ID[i] for i in CLI_BAD], ids=CLI_BAD)
def test_bad_input_cli(case, cli):
    check_bad(case, cli[case.id])


@pytest.mark.parametrize("case", OK, ids=[c.id for c in OK])
def test_allowed_input(case, inproc):
    check_ok(case, inproc[case.id], inproc)


@pytest.mark.parametrize("case", [BY_ID[i] for i in CLI_OK], ids=CLI_OK)
def test_allowed_input_cli(case, cli):
    check_ok(case, cli[case.id], cli)


def test_case_lists():
    """At least 25 bad-input kinds run through the real command line (issue 7's acceptance)."""
    assert len(set(CLI_BAD)) == len(CLI_BAD) >= 25
    assert set(CLI_BAD) <= {c.id for c in BAD} and set(CLI_OK) <= {c.id for c in OK}


# ---------------------------------------------------------------------------------------------
# Other commands (issue 16): topk, convert, report, audit, partition, scores --plots. Every bad case
# runs the real command line in a directory holding the outputs of an earlier run; afterwards the
# directory must hold exactly the same files with the same bytes (nothing written, replaced or left
# behind), and stderr one line (exit 2) naming the path at fault.

@dataclass
class Cmd:
    id: str
    argv: Callable            # paths dict -> arguments after `lveval`
    says: str
    culprit: str | None = None   # key of the path the message starts with
    prepare: Callable | None = None
    record: int | None = None
    line: int | None = None
    field: str | None = None


def _pretty_jsonl(p):
    p.write_bytes(b"\n".join(json.dumps(r, indent=1).encode() for r in results_list()) + b"\n")


def _planted_link(p):
    """The plots directory holds a symbolic link named like the plot, pointing out of it."""
    p["plots"].mkdir()
    os.symlink(p["victim"], p["plots"] / "scores.png")


def _other_users_file(p):
    p["locked"].write_bytes(b"somebody else's\n")
    os.chmod(p["locked"], 0o444)
    if os.geteuid() == 0:
        os.chown(p["locked"], 12345, 12345)


CMD_BAD = [
    Cmd("report-out-is-a-file", lambda p: ["report", p["gt"], p["results"], "--out", p["old"]],
        "is a file; expected an output directory", culprit="old"),
    Cmd("audit-out-is-a-file", lambda p: ["audit", p["gt"], p["results"], "--out", p["old"]],
        "is a file; expected an output directory", culprit="old"),
    Cmd("topk-out-is-a-directory", lambda p: ["topk", p["results"], "--out", p["dir"]],
        "is a directory; expected an output file name", culprit="dir"),
    Cmd("topk-out-in-a-missing-directory", lambda p: ["topk", p["results"], "--out", p["dir"] / "no" / "t.json"],
        "the output's directory does not exist"),
    Cmd("convert-full-disk", lambda p: ["convert", p["results"], "/dev/full"], "No space left on device"),
    Cmd("topk-full-disk", lambda p: ["topk", p["results"], "--out", "/dev/full"], "No space left on device"),
    Cmd("evaluate-json-full-disk", lambda p: ["evaluate", p["gt"], p["results"], "--json", "/dev/full"],
        "No space left on device"),
    Cmd("evaluate-json-not-writable-for-this-user",
        lambda p: ["evaluate", p["gt"], p["results"], "--json", p["locked"]], "permission denied", culprit="locked",
        prepare=_other_users_file),
    Cmd("scores-plots-planted-symlink", lambda p: ["scores", p["gt"], p["results"], "--plots", p["plots"]],
        "is a symbolic link inside the output directory", prepare=_planted_link),
    Cmd("calibrate-bench-plots-planted-symlink",
        lambda p: ["calibrate", "bench", "--gt", p["gt"], "--results", p["results"], "--kfold", "2", "--methods",
                   "platt", "--plots", p["plots"], "--quiet"],
        "is a symbolic link inside the output directory", prepare=lambda p: (
            p["plots"].mkdir(), os.symlink(p["victim"], p["plots"] / "uncalibrated.png"))),
    Cmd("topk-pretty-printed-jsonl", lambda p: ["topk", p["pretty"], "--out", p["dir"] / "t.json"],
        "spans several lines", culprit="pretty", line=1, prepare=lambda p: _pretty_jsonl(p["pretty"])),
    Cmd("evaluate-pretty-printed-jsonl", lambda p: ["evaluate", p["gt"], p["pretty"]], "not valid JSON",
        culprit="pretty", prepare=lambda p: _pretty_jsonl(p["pretty"])),
    Cmd("topk-repeated-key", lambda p: ["topk", p["dup"], "--out", p["dir"] / "t.json"], "key repeated",
        culprit="dup", record=2, field="score",
        prepare=lambda p: p["dup"].write_bytes(R().replace(b'"score":0.7', b'"score":0.7,"score":-1'))),
    Cmd("topk-nested-100k-arrays", lambda p: ["topk", p["dup"], "--out", p["dir"] / "t.json"],
        "nested more than 200 levels", culprit="dup", record=1,
        prepare=lambda p: p["dup"].write_bytes(R().replace(b'"score":0.8', b'"score":0.8,"x":' + b"[" * 100_000
                                                           + b"]" * 100_000))),
    Cmd("topk-gt-unknown-image", lambda p: ["topk", p["dup"], "--gt", p["gt"], "--out", p["dir"] / "t.json"],
        "unknown image_id 999", culprit="dup", record=3, field="image_id",
        prepare=lambda p: p["dup"].write_bytes(R(_set(3, image_id=999)))),
]


def _dev_full() -> bool:
    import stat

    return os.path.exists("/dev/full") and stat.S_ISCHR(os.stat("/dev/full").st_mode)


def _cmd_paths(d) -> dict:
    p = {"gt": d / "gt.json", "results": d / "results.json", "old": d / "old.json", "dir": d / "outdir",
         "plots": d / "plots", "victim": d / "victim.txt", "locked": d / "locked.json", "pretty": d / "p.jsonl",
         "dup": d / "dup.json"}
    p["gt"].write_bytes(G())
    p["results"].write_bytes(R())
    p["old"].write_bytes(b'{"an earlier output": true}\n')
    p["dir"].mkdir()
    (p["dir"] / "report.html").write_bytes(b"<p>an earlier report</p>\n")
    p["victim"].write_bytes(b"must stay as it is\n")
    return p


def _tree(d) -> dict:
    """Every file, link and directory under ``d``: (kind, mode, owner, content digest or link target)."""
    out = {}
    for dirpath, dirs, files in os.walk(d):
        for name in dirs + files:
            q = os.path.join(dirpath, name)
            st = os.lstat(q)
            if os.path.islink(q):
                out[q] = ("link", os.readlink(q))
            elif os.path.isdir(q):
                out[q] = ("dir", st.st_mode)
            else:
                with open(q, "rb") as f:
                    out[q] = ("file", st.st_mode, st.st_uid, st.st_gid, hash(f.read()))
    return out


@pytest.fixture(scope="module")
def cmd_runs(tmp_path_factory):
    def one(case):
        d = tmp_path_factory.mktemp(case.id)
        p = _cmd_paths(d)
        if case.prepare:
            case.prepare(p)
        before = _tree(d)
        dev_full = os.stat("/dev/full").st_mode if _dev_full() else None
        r = run_cli(case.argv(p))
        return {"rc": r.returncode, "stderr": r.stderr, "stdout": r.stdout, "paths": p, "before": before,
                "after": _tree(d), "dev_full": (dev_full, os.stat("/dev/full").st_mode if dev_full else None)}
    with ThreadPoolExecutor(max_workers=(os.cpu_count() or 2) + 2) as pool:
        return dict(zip([c.id for c in CMD_BAD], pool.map(one, CMD_BAD)))


@pytest.mark.parametrize("case", CMD_BAD, ids=[c.id for c in CMD_BAD])
def test_bad_command(case, cmd_runs):
    o = cmd_runs[case.id]
    if case.id.endswith("full-disk") and not _dev_full():
        pytest.skip("needs /dev/full (a character device)")
    assert o["rc"] == 2, (o["rc"], o["stderr"])
    assert "Traceback" not in o["stderr"]
    lines = o["stderr"].splitlines()
    assert len(lines) == 1, o["stderr"]
    msg = lines[0]
    assert msg.startswith("lveval: error: " + (str(o["paths"][case.culprit]) if case.culprit else "")), msg
    assert case.says in msg, msg
    for pat in _pointer(case):
        assert re.search(pat, msg), (pat, msg)
    assert o["after"] == o["before"]   # nothing written, replaced, chmod-ed or left behind
    assert o["dev_full"][0] == o["dev_full"][1]   # /dev/full is still the device it was


def test_report_full_disk_leaves_no_partial_file(tmp_path, monkeypatch, capsys):
    """A disk that fills up while the report is written (simulated: the temporary file is /dev/full)."""
    if not _dev_full():
        pytest.skip("needs /dev/full (a character device)")
    import tempfile

    from lveval import atomic
    from lveval.cli import main

    p = _cmd_paths(tmp_path)
    real = tempfile.mkstemp

    def full_mkstemp(*a, **kw):
        fd, name = real(*a, **kw)
        full = os.open("/dev/full", os.O_WRONLY)
        os.dup2(full, fd)
        os.close(full)
        return fd, name
    before = _tree(tmp_path)
    monkeypatch.setattr(atomic.tempfile, "mkstemp", full_mkstemp)
    rc = main(["report", str(p["gt"]), str(p["results"]), "--out", str(p["dir"]), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and err.strip().splitlines() == [
        f"lveval: error: {p['dir'] / 'report.html'}: cannot write the output (No space left on device)"], err
    assert _tree(tmp_path) == before


def test_broken_pipe_is_quiet_and_the_json_is_still_written(tmp_path, gt_file, results_file):
    out = tmp_path / "out.json"
    from tests.reliability.relkit import LVEVAL

    cmd = " ".join(f"'{x}'" for x in [*LVEVAL, "evaluate", gt_file, results_file, "--json", out])
    r = __import__("subprocess").run(f"{cmd} | head -c 10 >/dev/null; echo ${{PIPESTATUS[0]}}", shell=True,
                                     executable="/bin/bash", capture_output=True, text=True, timeout=120)
    assert r.stdout.strip() == "0", r
    assert "Traceback" not in r.stderr and "Broken" not in r.stderr, r.stderr
    assert json.loads(out.read_text())["old"]


def test_pipes_and_process_substitution(tmp_path, gt_file, results_file):
    import gzip
    import subprocess

    from tests.reliability import relkit

    ref = run_cli(["evaluate", gt_file, results_file, "--quiet"]).stdout
    gz = tmp_path / "r.json.gz"
    gz.write_bytes(gzip.compress(results_file.read_bytes()))
    lv = " ".join(f"'{x}'" for x in relkit.LVEVAL)
    for shell in (f"{lv} evaluate '{gt_file}' <(zcat '{gz}') --quiet",                  # process substitution
                  f"zcat '{gz}' | {lv} evaluate '{gt_file}' /dev/stdin --quiet",       # a pipe
                  f"{lv} evaluate <(cat '{gt_file}') '{gz}' --quiet",                  # GT from a pipe, .gz results
                  f"{lv} evaluate '{gt_file}' <(gzip -c '{results_file}') --quiet"):   # compressed stream
        r = subprocess.run(shell, shell=True, executable="/bin/bash", capture_output=True, text=True, timeout=120)
        assert (r.returncode, r.stdout, r.stderr) == (0, ref, ""), shell


def test_zstd_inputs(tmp_path, gt_file, results_file):
    zstandard = pytest.importorskip("zstandard")
    z = tmp_path / "r.json.zst"
    z.write_bytes(zstandard.ZstdCompressor().compress(results_file.read_bytes()))
    g = tmp_path / "gt.json.zst"
    g.write_bytes(zstandard.ZstdCompressor().compress(gt_file.read_bytes()))
    ref = run_cli(["evaluate", gt_file, results_file, "--quiet"]).stdout
    r = run_cli(["evaluate", g, z, "--quiet"])
    assert (r.returncode, r.stdout) == (0, ref), r.stderr
    r = run_cli(["topk", z, "--out", tmp_path / "t.json"])
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "t.json").read_text()) == results_list()


def test_topk_reads_what_evaluate_reads(tmp_path, gt_file):
    """A byte-order mark (evaluate accepts it) and gzip input; the records come out unchanged."""
    import gzip

    bom = tmp_path / "bom.json"
    bom.write_bytes(b"\xef\xbb\xbf" + R())
    gz = tmp_path / "r.jsonl.gz"
    gz.write_bytes(gzip.compress(b"\n".join(rec(i) for i in range(5)) + b"\n"))
    for src in (bom, gz):
        out = tmp_path / (src.name + ".out.json")
        r = run_cli(["topk", src, "--out", out])
        assert r.returncode == 0, r.stderr
        assert json.loads(out.read_text()) == results_list()
        assert run_cli(["evaluate", gt_file, src]).returncode == 0


def test_outputs_keep_their_mode_and_write_through_fifos_and_links(tmp_path, gt_file, results_file):
    out = tmp_path / "out.json"
    out.write_text("old")
    os.chmod(out, 0o640)
    assert run_cli(["evaluate", gt_file, results_file, "--json", out]).returncode == 0
    assert os.stat(out).st_mode & 0o777 == 0o640 and json.loads(out.read_text())["old"]
    target = tmp_path / "target.json"
    link = tmp_path / "link.json"
    os.symlink(target, link)   # a link the user gave: followed, the link stays
    assert run_cli(["evaluate", gt_file, results_file, "--json", link]).returncode == 0
    assert os.path.islink(link) and json.loads(target.read_text())["old"]
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    import threading

    got = []
    reader = threading.Thread(target=lambda: got.append(open(fifo, "rb").read()))
    reader.start()
    assert run_cli(["evaluate", gt_file, results_file, "--json", fifo]).returncode == 0
    reader.join(30)
    assert json.loads(got[0])["old"] and __import__("stat").S_ISFIFO(os.stat(fifo).st_mode)
    assert not [f for f in os.listdir(tmp_path) if f.startswith(".tmp-")]


def test_partition_removes_part_files_of_an_earlier_run_with_more_shards(tmp_path, results_file):
    parts = tmp_path / "parts"
    assert run_cli(["partition", results_file, parts, "--shards", "3"]).returncode == 0
    assert len(list(parts.glob("part-*.parquet"))) == 3
    assert run_cli(["partition", results_file, parts, "--shards", "2"]).returncode == 0
    manifest = json.loads((parts / "manifest.json").read_text())
    assert sorted(f.name for f in parts.glob("part-*.parquet")) == sorted(x["file"] for x in manifest["parts"])
    assert len(manifest["parts"]) == 2


def test_report_draws_names_that_look_like_tex(tmp_path, results_file):
    g = gt_dict()
    g["categories"][0]["name"] = "$\\foo$"
    g["categories"][1]["name"] = "a_b$x"
    (tmp_path / "gt.json").write_bytes(dumps(g))
    r = run_cli(["report", tmp_path / "gt.json", results_file, "--out", tmp_path / "rep", "--classes", "$\\foo$"])
    assert r.returncode == 0, r.stderr
    assert "$\\foo$" in (tmp_path / "rep" / "report.html").read_text()
