"""One comparison of lveval against the references for a generated dataset, shared by the fuzzers
(tests/test_differential.py and tests/reliability/test_fuzz_extra.py)."""
from __future__ import annotations

import numpy as np
import pytest

from lveval.metrics import evaluate
from tests.support.pooled import pooled_reference
from tests.support.reference import COCO_KEYS, KEYS, run_coco, run_lvis, top_k_per_class


def close(ours: dict, ref: dict, keys) -> None:
    for k in keys:
        assert ours[k] == pytest.approx(ref[k], abs=1e-9), k


def check_lvis(gt, res, cap, k, iou_type="bbox"):
    """AP-Old against lvis-api with a per-image cap; AP-Fixed against lvis-api on the top k per class;
    AP-Pool against the straightforward pooled reference. Full precision/recall arrays too."""
    protocols = ["old", "fixed", "pooled"] if iou_type == "bbox" else ["old"]
    ours = evaluate(gt, res, iou_type=iou_type, protocols=protocols, max_dets_per_image=cap, max_dets_per_class=k)
    ref, e = run_lvis(gt, res, max_dets=cap, iou_type=iou_type)
    close(ours.old, ref, KEYS)
    np.testing.assert_allclose(ours.precision["old"], e.eval["precision"], atol=1e-12, rtol=0)
    np.testing.assert_allclose(ours.recall["old"], e.eval["recall"], atol=1e-12, rtol=0)
    if iou_type != "bbox":
        return
    sel = top_k_per_class(res, k)
    ref, e = run_lvis(gt, sel, max_dets=-1)
    close(ours.fixed, ref, KEYS)
    np.testing.assert_allclose(ours.precision["fixed"], e.eval["precision"], atol=1e-12, rtol=0)
    np.testing.assert_allclose(ours.recall["fixed"], e.eval["recall"], atol=1e-12, rtol=0)
    pool = pooled_reference(gt, sel)
    assert ours.pooled["AP"] == pytest.approx(pool["all"], abs=1e-12)
    for key in ("AP50", "AP75"):   # the reference leaves them out when no class has ground truth
        assert ours.pooled[key] == pytest.approx(pool.get(key, -1.0), abs=1e-12), key
    for f in "rcf":
        assert ours.pooled["AP" + f] == pytest.approx(pool[f], abs=1e-12)


def check_coco(gt, res, cap=100, iou_type="bbox"):
    """pycocotools' 12 statistics (when ``cap`` is its default 100) and full arrays at maxDets = ``cap``."""
    # pycocotools sorts maxDets and evaluates with the largest: keep ``cap`` the largest
    max_dets = (1, 10, 100) if cap == 100 else (1, min(2, cap), cap)
    ref, e = run_coco(gt, res, iou_type=iou_type, max_dets=max_dets)
    ours = evaluate(gt, res, iou_type=iou_type, protocols=["old"], max_dets_per_image=cap)
    np.testing.assert_allclose(ours.precision["old"], e.eval["precision"][..., -1], atol=1e-12, rtol=0)
    np.testing.assert_allclose(ours.recall["old"], e.eval["recall"][..., -1], atol=1e-12, rtol=0)
    if cap == 100:
        close(ours.old, ref, COCO_KEYS)
