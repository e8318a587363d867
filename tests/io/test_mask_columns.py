"""Mask results read and evaluated through the compiled paths (JSON mask reader, RLE helper) give
what the general decoder and pycocotools give: same columns, same figures, same errors."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from lveval.exceptions import InputError
from lveval.io import fastjson, masks
from lveval.io.results import load_results, write_results
from lveval.metrics import evaluate
from tests.support.gen import make_dataset

PURE = {"LVEVAL_PURE_JSON": "1", "LVEVAL_PURE_RLE": "1"}


def _with_env(env, fn):
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        return fn()
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _mask_list(segm):
    return [(list(s["size"]), s["counts"].encode() if isinstance(s["counts"], str) else s["counts"]) for s in segm]


def _dataset(seed=0, with_bbox=True):
    gt, res = make_dataset(seed, kind="lvis", n_images=4, n_cats=4, segm=True, max_dets=30)
    for i, r in enumerate(res):   # masks as compressed RLE; boxes kept or dropped
        if not isinstance(r["segmentation"], dict):
            im = next(m for m in gt["images"] if m["id"] == r["image_id"])
            h, w = im["height"], im["width"]
            rle = mask_utils.merge(mask_utils.frPyObjects(r["segmentation"], h, w))
            r["segmentation"] = {"size": rle["size"], "counts": rle["counts"].decode()}
        if not with_bbox:
            r.pop("bbox", None)
        if i % 3 == 0:   # keys in another order
            r["segmentation"] = {"counts": r["segmentation"]["counts"], "size": r["segmentation"]["size"]}
    return gt, res


needs_reader = pytest.mark.skipif(not fastjson.available() or not masks.compiled(),
                                  reason="compiled helpers not built")


@needs_reader
@pytest.mark.parametrize("with_bbox", [True, False])
@pytest.mark.parametrize("lines", [False, True])
def test_reader_equals_general_decoder(tmp_path, monkeypatch, with_bbox, lines):
    monkeypatch.setattr(fastjson, "MIN_PIECE", 1)
    monkeypatch.setattr(fastjson, "WINDOW", 4096)   # many windows and pieces
    gt, res = _dataset(1, with_bbox)
    p = tmp_path / ("r.jsonl" if lines else "r.json")
    p.write_text("\n".join(json.dumps(r) for r in res) + "\n" if lines else json.dumps(res, indent=1))
    fast = load_results(str(p))
    assert isinstance(fast.segm, masks.RLEColumn)
    slow = _with_env(PURE, lambda: load_results(str(p)))
    assert isinstance(slow.segm, list)
    for k in ("img_id", "cat_id", "score", "record"):
        np.testing.assert_array_equal(getattr(fast, k), getattr(slow, k))
    if with_bbox:
        np.testing.assert_array_equal(fast.bbox, slow.bbox)
    else:
        assert fast.bbox is None and slow.bbox is None
    if lines:
        np.testing.assert_array_equal(fast.line, slow.line)
    assert _mask_list(fast.segm) == _mask_list(slow.segm)
    assert fast.digest == slow.digest


@needs_reader
def test_backslash_in_counts(tmp_path):
    """COCO's alphabet holds the backslash, written \\\\ in JSON."""
    m = np.zeros((40, 40), np.uint8, order="F")
    rle = None
    for k in range(1, 40):   # find a mask whose string holds a backslash
        m[:, :] = 0
        m[k:40, 0:k] = 1
        rle = mask_utils.encode(m)
        if b"\\" in rle["counts"]:
            break
    assert b"\\" in rle["counts"]
    rec = {"image_id": 1, "category_id": 1, "score": 0.5,
           "segmentation": {"size": [40, 40], "counts": rle["counts"].decode()}}
    p = tmp_path / "r.json"
    p.write_text(json.dumps([rec, rec]))
    d = load_results(str(p))
    assert isinstance(d.segm, masks.RLEColumn) and d.segm[1]["counts"] == rle["counts"]
    assert _mask_list(d.segm) == _mask_list(_with_env(PURE, lambda: load_results(str(p))).segm)


@needs_reader
@pytest.mark.parametrize("seg", [
    '{"size":[2,2],"counts":"04","extra":1}',
    '{"size":[2.0,2],"counts":"04"}',
    '{"size":[2,2],"counts":[0,4]}',
    '{"size":[2,2],"counts":"0\\u00344"}',
    '{"size":[2,2],"counts":"0\\n4"}',
    '{"size":[2,2],"counts":"0\u00e94"}',
    '{"size":[2,2]}',
    '{"size":[2,2],"counts":"04","size":[2,2]}',
    '[[0,0,1,0,1,1]]',
    'null',
    '{"size":[2,2],"counts":null}',
])
def test_other_masks_are_left_to_the_general_decoder(tmp_path, seg):
    good = '{"image_id":1,"category_id":1,"score":0.5,"segmentation":{"size":[2,2],"counts":"04"}}'
    text = f'[{good},{{"image_id":1,"category_id":1,"score":0.5,"segmentation":{seg}}}]'
    buf = text.encode()
    assert fastjson.mask_columns(buf, 1, len(buf) - 1) is None
    p = tmp_path / "r.json"
    p.write_bytes(buf)
    gt = {"images": [{"id": 1, "height": 2, "width": 2}], "categories": [{"id": 1, "name": "a"}],
          "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1], "area": 1,
                           "segmentation": [[0, 0, 1, 0, 1, 1]]}]}

    def run():
        try:
            r = evaluate(gt, str(p), iou_type="segm", protocols=["fixed"])
            return ("ok", r.fixed)
        except InputError as exc:
            return ("error", str(exc))

    assert run() == _with_env(PURE, run)


@needs_reader
def test_mixed_boxes_fall_back(tmp_path):
    a = '{"image_id":1,"category_id":1,"score":0.5,"bbox":[0,0,1,1],"segmentation":{"size":[2,2],"counts":"04"}}'
    b = '{"image_id":1,"category_id":1,"score":0.5,"segmentation":{"size":[2,2],"counts":"04"}}'
    buf = f"[{a},{b}]".encode()
    assert fastjson.mask_columns(buf, 1, len(buf) - 1) is None
    p = tmp_path / "r.json"
    p.write_bytes(buf)
    with pytest.raises(InputError) as e:
        load_results(str(p))
    assert e.value.record == 1 and e.value.field == "bbox"


@pytest.mark.parametrize("fmt", ["json", "parquet", "list"])
@pytest.mark.parametrize("seed", [0, 3])
def test_figures_equal_pure_paths(tmp_path, fmt, seed):
    """Every figure and the full precision arrays: compiled paths against pure numpy/pycocotools."""
    gt, res = _dataset(seed, with_bbox=seed == 0)
    res[2]["segmentation"] = [[10.0, 10.0, 60.5, 10.0, 60.5, 50.0, 10.0, 50.0]]   # a polygon (JSON, list)
    src = res
    if fmt != "list":
        src = str(tmp_path / f"r.{fmt}")
        if fmt == "json":
            with open(src, "w") as f:
                json.dump(res, f)
        else:
            res = [r for r in res if isinstance(r["segmentation"], dict)]
            write_results(load_results(res), src)

    def run():
        r = evaluate(gt, src, iou_type="segm")
        return r.old, r.fixed, r.pooled, {k: v.tolist() for k, v in r.precision.items()}

    assert run() == _with_env(PURE, run)


@pytest.mark.parametrize("bad, field, says", [
    (lambda s: dict(s, counts=s["counts"][:-1] + "~"), "segmentation.counts", "outside COCO's compressed RLE"),
    (lambda s: dict(s, counts=s["counts"] + "0"), "segmentation.counts", "runs sum to"),
    (lambda s: dict(s, size=[s["size"][0] + 1, s["size"][1]]), "segmentation.size", "does not match the image"),
    (lambda s: dict(s, counts="o" * 13 + "0"), "segmentation.counts", "too many characters"),
])
@pytest.mark.parametrize("fmt", ["json", "parquet"])
def test_bad_masks_named_the_same_both_ways(tmp_path, bad, field, says, fmt):
    gt, res = _dataset(2)
    res[7]["segmentation"] = bad(res[7]["segmentation"])
    res[11]["segmentation"] = bad(res[11]["segmentation"])
    src = str(tmp_path / f"r.{fmt}")
    if fmt == "json":
        with open(src, "w") as f:
            json.dump(res, f)
    else:
        write_results(load_results(res), src)

    def run():
        with pytest.raises(InputError) as e:
            evaluate(gt, src, iou_type="segm")
        return e.value.record, e.value.field, str(e.value)

    got = run()
    assert got[:2] == (7, field) and says in got[2]
    assert got == _with_env(PURE, run)


@needs_reader
def test_mutated_mask_files_are_never_accepted_wrongly():
    """Random byte edits of a valid mask file: whatever the reader accepts, the general decoder
    accepts too, with the same columns and strings; the rest the reader leaves alone."""
    import msgspec

    from lveval.io.decoders import ARRAY as _ARRAY
    from lveval.io.results import _columns

    rng = np.random.default_rng(5)
    recs = [f'{{"image_id":{i},"category_id":{7 - i},"score":0.5,"bbox":[1,2,3,4],'
            f'"segmentation":{{"size":[3,{i + 2}],"counts":"0{i}1\\\\2"}}}}' for i in range(4)]
    base = ("[" + ",".join(recs) + "]").encode()
    alphabet = b'{}[],:" \n-+.e0123456789abcinrsgtuz_\\'
    accepted = rejected = 0
    for _ in range(3000):
        b = bytearray(base)
        for _ in range(int(rng.integers(1, 3))):
            i = int(rng.integers(0, len(b)))
            op = rng.integers(3)
            if op == 0:
                b[i] = alphabet[rng.integers(len(alphabet))]
            elif op == 1:
                del b[i]
            else:
                b.insert(i, alphabet[rng.integers(len(alphabet))])
        buf = bytes(b)
        if not (buf.startswith(b"[") and buf.endswith(b"]")):
            continue
        fast = fastjson.mask_columns(buf, 1, len(buf) - 1, threads=1)
        if fast is None:
            rejected += 1
            continue
        accepted += 1
        try:
            general = _columns(_ARRAY.decode(buf), "<test>")
        except (msgspec.DecodeError, msgspec.ValidationError, InputError) as exc:
            raise AssertionError(f"accepted what the general decoder refuses ({exc}): {buf!r}") from exc
        for f, g in zip(fast[:4], (general.img_id, general.cat_id, general.score, general.bbox)):
            np.testing.assert_array_equal(f, g)
        assert _mask_list(fast[4]) == _mask_list(general.segm), buf
    assert accepted > 100 and rejected > 500   # both sides were exercised


@pytest.mark.parametrize("thr", [0.0, 0.05, 0.5])
@pytest.mark.parametrize("seed", [1, 4])
def test_candidate_pairs_equal_pycocotools_groups(seed, thr):
    """The compiled pair path returns exactly the (detection position, ground-truth position, IoU)
    triples of the pycocotools per-(image, class) path, in the same order."""
    from lveval import match as M
    from lveval.io.gt import load_gt
    from lveval.io.results import bind

    gt, res = _dataset(seed, with_bbox=seed == 1)
    g = load_gt(gt)

    def pairs():
        d = bind(load_results(res), g, iou_type="segm")
        rows = M.group_order(d, np.ones(len(d), bool)).astype(np.int64)
        dkey = d.img_idx[rows] * g.num_categories + d.cat_idx[rows]
        gorder = np.argsort(g.ann_key, kind="stable")
        return M._candidate_pairs(g, d, rows, dkey, g.ann_key[gorder], gorder, "segm", thr)

    fast = pairs()
    slow = _with_env(PURE, pairs)
    assert len(fast[0]) > (1 if thr == 0.5 else 10)
    for f, s in zip(fast, slow):
        np.testing.assert_array_equal(f, s)


PEAK = """
import os, sys
import lveval, lveval.metrics
from lveval.io.gt import load_gt
from lveval.io.jsonfile import estimate_memory

def high_water():
    for ln in open("/proc/self/status"):
        if ln.startswith("VmHWM:"):
            return int(ln.split()[1]) * 1024

gt = load_gt(lveval.data_path())
gt.rles()
base = high_water()
lveval.evaluate(gt, sys.argv[1], iou_type="segm")
print(high_water() - base, estimate_memory(sys.argv[1], os.path.getsize(sys.argv[1]), "json"))
"""


@needs_reader
def test_mask_estimate_is_not_below_the_real_peak(tmp_path):
    """The memory check's estimate for a mask file read by the compiled path: not below the real
    peak of a segm evaluation, and not so pessimistic that it refuses files that fit (factor 6)."""
    import subprocess
    import sys

    import lveval

    if not os.path.exists("/proc/self/status"):
        pytest.skip("needs /proc/self/status")
    with open(lveval.data_path()) as f:
        gt = json.load(f)
    imgs, cats = gt["images"], [c["id"] for c in gt["categories"]]
    rng = np.random.default_rng(0)
    enc, recs = {}, []
    for i in range(150_000):
        im = imgs[i % len(imgs)]
        h, w, k = im["height"], im["width"], i % 11
        if (h, w, k) not in enc:
            m = np.zeros((h, w), np.uint8, order="F")
            y, x = int(rng.integers(0, h - 40)), int(rng.integers(0, w - 60))
            m[y:y + 10 + 3 * k, x:x + 20 + 4 * k] = 1
            m[y + 5, x:x + 10] = 0
            enc[h, w, k] = mask_utils.encode(m)["counts"].decode()
        recs.append({"image_id": im["id"], "category_id": cats[(7 * i) % len(cats)], "score": float(rng.random()),
                     "bbox": [1.0, 2.0, 30.0, 40.0], "segmentation": {"size": [h, w], "counts": enc[h, w, k]}})
    p = tmp_path / "r.json"
    p.write_text(json.dumps(recs))
    r = subprocess.run([sys.executable, "-c", PEAK, str(p)], capture_output=True, text=True, check=True)
    grew, est = map(int, r.stdout.split())
    assert grew <= est <= 6 * grew, (grew, est)


@needs_reader
@pytest.mark.parametrize("with_bbox", [True, False])
@pytest.mark.parametrize("lines", [False, True])
def test_masks_measured_while_read_equal_a_separate_pass(tmp_path, monkeypatch, with_bbox, lines):
    """``measure_masks``: each piece's masks are validated and measured as it is parsed; the column's
    ``measured`` must be what ``masks.stats`` gives on the finished column (bad strings included), and
    binding must give the same areas, boxes and errors as without it."""
    monkeypatch.setattr(fastjson, "MIN_PIECE", 1)
    monkeypatch.setattr(fastjson, "WINDOW", 4096)   # many windows and pieces
    gt, res = _dataset(2, with_bbox)
    for r in res:
        r.pop("bbox", None)
        if with_bbox:
            seg = {"size": r["segmentation"]["size"], "counts": r["segmentation"]["counts"].encode()}
            r["bbox"] = [float(x) for x in mask_utils.toBbox(seg)]
    bad = [3, len(res) - 2]
    for i in bad:   # runs that do not sum to h * w: invalid, still read by the reader
        res[i]["segmentation"]["counts"] = res[i]["segmentation"]["counts"] + "1"
    p = tmp_path / ("r.jsonl" if lines else "r.json")
    p.write_text("\n".join(json.dumps(r) for r in res) + "\n" if lines else json.dumps(res))
    d = load_results(str(p), measure_masks=True)
    col = d.segm
    assert isinstance(col, masks.RLEColumn) and col.measured is not None
    ok, area, box = col.measured
    assert (box is None) == with_bbox
    plain = masks.RLEColumn(col.data, col.offsets, col.h, col.w)
    ok2, area2, box2 = masks.stats(plain, boxes=True)
    np.testing.assert_array_equal(ok, ok2)
    assert sorted(np.flatnonzero(~ok)) == bad
    np.testing.assert_array_equal(area, area2)
    if box is not None:
        np.testing.assert_array_equal(box, box2)
    assert load_results(str(p)).segm.measured is None   # only when asked

    def run(measure):
        try:
            return ("ok", evaluate(gt, str(p), iou_type="segm", protocols=["fixed"]).fixed)
        except InputError as exc:
            return ("error", str(exc))

    got = run(True)
    assert got[0] == "error" and f"record {bad[0]}" in got[1]
    assert got == _with_env(PURE, lambda: run(False))
    for i in bad:
        res[i]["segmentation"]["counts"] = res[i]["segmentation"]["counts"][:-1]
    p.write_text("\n".join(json.dumps(r) for r in res) + "\n" if lines else json.dumps(res))
    assert run(True) == _with_env(PURE, lambda: run(False))
