"""lveval.compat.COCOeval against pycocotools' COCOeval."""
import contextlib
import copy
import io
import json

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval as RefCOCOeval

from lveval.compat import COCOeval
from tests.support.gen import make_dataset


def _coco(dataset):
    with contextlib.redirect_stdout(io.StringIO()):
        c = COCO()
        c.dataset = copy.deepcopy(dataset)
        c.createIndex()
    return c


def _run(cls, gt, dt, iou_type, max_dets=None, img_ids=None, cat_ids=None):
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        e = cls(gt, dt, iou_type)
        if max_dets is not None:
            e.params.maxDets = max_dets
        if img_ids is not None:
            e.params.imgIds = img_ids
        if cat_ids is not None:
            e.params.catIds = cat_ids
        e.evaluate()
        e.accumulate()
        e.summarize()
    lines = [ln for ln in buf.getvalue().splitlines() if ln.startswith(" Average")]
    return e, lines


def _same(ours, ref, ours_lines, ref_lines):
    np.testing.assert_allclose(ours.stats, ref.stats, rtol=0, atol=1e-12)
    assert ours.eval["precision"].shape == ref.eval["precision"].shape      # (T, R, K, A, M)
    np.testing.assert_allclose(ours.eval["precision"], ref.eval["precision"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(ours.eval["recall"], ref.eval["recall"], rtol=0, atol=1e-12)
    assert ours_lines == ref_lines                                          # the 12 printed lines


@pytest.mark.parametrize("iou_type", ["bbox", "segm"])
def test_pycocotools_fake_results(coco_paths, iou_type):
    gt = json.load(open(coco_paths["gt"]))
    res = json.load(open(coco_paths[iou_type]))
    g = _coco(gt)
    with contextlib.redirect_stdout(io.StringIO()):
        d = g.loadRes(copy.deepcopy(res))
    ref, ref_lines = _run(RefCOCOeval, g, d, iou_type)
    ours, lines = _run(COCOeval, g, d, iou_type)
    _same(ours, ref, lines, ref_lines)


def test_params_maxdets_images_and_classes(coco_paths):
    gt = json.load(open(coco_paths["gt"]))
    res = json.load(open(coco_paths["bbox"]))
    g = _coco(gt)
    with contextlib.redirect_stdout(io.StringIO()):
        d = g.loadRes(copy.deepcopy(res))
    img_ids = sorted(g.getImgIds())[::3]
    cat_ids = sorted(g.getCatIds())[::2]
    for kw in (dict(max_dets=[1, 3, 7]), dict(img_ids=img_ids, cat_ids=cat_ids)):
        ref, ref_lines = _run(RefCOCOeval, g, d, "bbox", **kw)
        ours, lines = _run(COCOeval, g, d, "bbox", **kw)
        _same(ours, ref, lines, ref_lines)


@pytest.mark.parametrize("seed", [0, 2, 4, 6])
def test_generated_coco_data(seed):
    gt, res = make_dataset(seed, kind="coco", n_images=4, n_cats=4, max_dets=14)
    if not res:
        pytest.skip("pycocotools cannot take an empty result list")
    g = _coco(gt)
    with contextlib.redirect_stdout(io.StringIO()):
        d = g.loadRes(copy.deepcopy(res))
    ref, ref_lines = _run(RefCOCOeval, g, d, "bbox", max_dets=[1, 2, 5])
    ours, lines = _run(COCOeval, g, d, "bbox", max_dets=[1, 2, 5])
    _same(ours, ref, lines, ref_lines)


def test_unsupported_options_fail_loudly(coco_paths):
    g = _coco(json.load(open(coco_paths["gt"])))
    with pytest.raises(NotImplementedError):
        COCOeval(g, None, "keypoints")
