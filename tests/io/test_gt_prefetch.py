"""Ground-truth masks converted in a background thread while results are read
(``GroundTruth.prefetch_rles``): the same RLEs, errors raised where they were before."""
import copy
import pickle

import pytest

from lveval.exceptions import InputError
from lveval.io.gt import load_gt


def _dataset(unsized: bool = False) -> dict:
    """Two images; with ``unsized`` the second has no width/height, which only converting its
    annotation's polygon to RLE finds (boxes do not need sizes)."""
    poly = [[10.0, 10.0, 40.0, 10.0, 40.0, 30.0, 10.0, 30.0]]
    anns = [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 30, 20], "area": 600.0,
             "segmentation": poly},
            {"id": 2, "image_id": 2, "category_id": 1, "bbox": [5, 5, 10, 10], "area": 50.0,
             "segmentation": [[5.0, 5.0, 15.0, 5.0, 15.0, 15.0]]}]
    second = {"id": 2, "neg_category_ids": [], "not_exhaustive_category_ids": []}
    if not unsized:
        second.update(width=64, height=48)
    return {"images": [{"id": 1, "width": 64, "height": 48, "neg_category_ids": [],
                        "not_exhaustive_category_ids": []}, second],
            "categories": [{"id": 1, "name": "a", "frequency": "f"}], "annotations": anns}


def test_prefetched_rles_equal_converted_ones():
    a, b = load_gt(_dataset()), load_gt(_dataset())
    a.prefetch_rles()
    assert a.rles() == b.rles()
    assert a.rles() is a.rles()    # converted once


def test_prefetch_error_is_raised_by_rles_not_before():
    g = load_gt(_dataset(unsized=True))
    g.prefetch_rles()              # the thread meets the unsized image; nothing is raised here
    with pytest.raises(InputError) as prefetched:
        g.rles()
    with pytest.raises(InputError) as direct:
        load_gt(_dataset(unsized=True)).rles()
    assert str(prefetched.value) == str(direct.value)
    assert prefetched.value.record == 1 and "width and height" in str(prefetched.value)


def test_results_error_still_comes_first(tmp_path):
    """A ground-truth mask that cannot be converted and a bad result: the result's error is the one reported, as
    without the prefetch (ground-truth masks are needed only when matching)."""
    import lveval

    with pytest.raises(InputError) as e:
        lveval.evaluate(_dataset(unsized=True), [{"image_id": 1, "category_id": 1, "score": "high",
                                                      "segmentation": {"size": [48, 64], "counts": "0"}}],
                        iou_type="segm")
    assert "score" in str(e.value)


def test_a_prefetching_ground_truth_pickles_and_copies():
    g = load_gt(_dataset())
    g.prefetch_rles()
    h = pickle.loads(pickle.dumps(g))
    assert h.rles() == load_gt(_dataset()).rles()
    g.prefetch_rles()
    assert copy.copy(g).rles() == h.rles()
