"""Params: the references' defaults, validation with one line naming the option, derived values."""
from __future__ import annotations

import numpy as np
import pytest

import lveval
from lveval import OptionError, Params


def test_defaults_are_the_references_arrays():
    p = Params()
    # lvis-api / pycocotools build them exactly this way (cocoeval.py, Params.setDetParams)
    np.testing.assert_array_equal(p.iou_thrs, np.linspace(.5, 0.95, int(np.round((0.95 - .5) / .05)) + 1,
                                                          endpoint=True))
    np.testing.assert_array_equal(p.rec_thrs, np.linspace(.0, 1.00, int(np.round((1.00 - .0) / .01)) + 1,
                                                          endpoint=True))
    np.testing.assert_array_equal(p.area_rng, [[0, 1e10], [0, 32 ** 2], [32 ** 2, 96 ** 2], [96 ** 2, 1e10]])
    assert p.max_dets_per_class == 10_000 and p.dataset is None and p.max_dets_per_image is None


def test_resolution_by_rules():
    assert Params().resolve("lvis").max_dets_per_image == 300
    coco = Params().resolve("coco")
    assert coco.max_dets_per_image == 100 and coco.coco_max_dets == (1, 10, 100)
    assert Params(dataset="coco", max_dets_per_image=3).coco_max_dets == (1, 3)
    assert Params(dataset="coco", max_dets=(100, 300, 1000)).max_dets_per_image == 1000
    assert Params(dataset="lvis", max_dets_per_image=50).resolve("lvis").max_dets_per_image == 50


@pytest.mark.parametrize("kw, option", [
    (dict(iou_type="keypoints"), "iou_type"),
    (dict(protocols=("old", "bogus")), "protocols"),
    (dict(protocols=()), "protocols"),
    (dict(dataset="openimages"), "dataset"),
    (dict(on_unknown_image="drop"), "on_unknown_image"),
    (dict(max_dets_per_class=1.5), "max_dets_per_class"),
    (dict(max_dets_per_image="300"), "max_dets_per_image"),
    (dict(iou_thresholds=(0.7, 0.5)), "iou_thresholds"),
    (dict(iou_thresholds=(0.0, 0.5)), "iou_thresholds"),
    (dict(iou_thresholds=()), "iou_thresholds"),
    (dict(rec_thresholds=(0.0, 1.5)), "rec_thresholds"),
    (dict(area_ranges=()), "area_ranges"),
    (dict(area_ranges=(("all", 10, 1),)), "area_ranges"),
    (dict(area_ranges=(("all", 0, 1e10), ("small", 0, 1), ("size", 1, 2))), "area_ranges"),
    (dict(area_ranges=(("x", 0),)), "area_ranges"),
    (dict(max_dets=(10, 10)), "max_dets"),
    (dict(max_dets=(0, 1)), "max_dets"),
    (dict(splits=(("", "r"),)), "splits"),
    (dict(splits=(("a", " "),)), "splits"),
    (dict(class_agnostic="yes"), "class_agnostic"),
])
def test_bad_values_raise_one_line_naming_the_option(kw, option):
    with pytest.raises(OptionError) as exc:
        Params(**kw)
    msg = str(exc.value)
    assert msg.startswith(f"option '{option}':") and "\n" not in msg
    assert isinstance(exc.value, ValueError)   # also a ValueError, as scikit-learn's parameter checks


def test_frozen_and_hashable():
    p = Params(iou_thresholds=[0.5, 0.75], area_ranges=[["all", 0, 1e10]])
    assert p.iou_thresholds == (0.5, 0.75) and hash(p) == hash(Params(iou_thresholds=(0.5, 0.75),
                                                                       area_ranges=(("all", 0.0, 1e10),)))
    with pytest.raises(AttributeError):
        p.iou_type = "segm"


def test_public_api_signature_and_names():
    import inspect

    sig = inspect.signature(lveval.evaluate)
    assert {"iou_type", "protocols", "max_dets_per_image", "max_dets_per_class", "dataset",
            "class_agnostic", "iou_thresholds"} <= set(sig.parameters)
    for name in ("Params", "EvalResult", "load_gt", "load_results", "Detections", "GroundTruth",
                 "TopKPerClass", "InputError", "OptionError", "ResourceError", "errors"):
        assert getattr(lveval, name) is not None
