"""Ground-truth field checks: the bulk pass must let no bad value through, and the record pass names it."""
from __future__ import annotations

import math

import pytest

from lveval.exceptions import InputError
from lveval.io.gt import from_dict


def _gt() -> dict:
    return {"images": [{"id": i, "height": 100, "width": 120} for i in range(1, 6)],
            "categories": [{"id": c, "name": f"c{c}"} for c in (1, 2, 3)],
            "annotations": [{"id": a, "image_id": 1 + a % 5, "category_id": 1 + a % 3, "bbox": [1, 2.5, 10, 20],
                             "area": 200.0, "iscrowd": 0} for a in range(1, 13)]}


@pytest.mark.parametrize("section, record, key, value", [
    ("images", 3, "id", True),
    ("images", 2, "id", 2 ** 63),
    ("images", 4, "id", 1.0),
    ("images", 1, "height", 0),
    ("images", 3, "width", -5),
    ("images", 2, "height", "100"),
    ("categories", 2, "id", None),
    ("annotations", 7, "id", "7"),
    ("annotations", 5, "image_id", -2 ** 63 - 1),
    ("annotations", 9, "category_id", 2.0),
    ("annotations", 4, "bbox", [1, 2, 3]),
    ("annotations", 6, "bbox", (1, 2, 3, 4)),
    ("annotations", 8, "bbox", [1, 2, math.nan, 4]),
    ("annotations", 3, "bbox", [1, 2, 3, True]),
    ("annotations", 10, "bbox", [1, 2, 3, math.inf]),
    ("annotations", 2, "area", -0.5),
    ("annotations", 11, "area", math.inf),
    ("annotations", 5, "area", None),
    ("annotations", 6, "area", False),
    ("annotations", 1, "area", "missing"),
])
def test_a_bad_field_is_named_with_its_record(section, record, key, value):
    g = _gt()
    if value == "missing":
        del g[section][record][key]
    else:
        g[section][record][key] = value
    with pytest.raises(InputError) as e:
        from_dict(g)
    assert (e.value.record, e.value.field) == (record, f"{section}.{key}")


def test_a_record_that_is_not_an_object_is_named():
    g = _gt()
    g["annotations"][4] = [1, 2]
    with pytest.raises(InputError) as e:
        from_dict(g)
    assert (e.value.record, e.value.field) == (4, "annotations")


def test_valid_values_at_the_edges_pass():
    g = _gt()
    g["images"] += [{"id": -2 ** 63, "height": 1, "width": 1}, {"id": 2 ** 63 - 1, "height": 1, "width": 1}]
    g["annotations"][0]["image_id"] = -2 ** 63
    g["annotations"][1].update(image_id=2 ** 63 - 1, bbox=[0, 0, 0, 0], area=0)
    gt = from_dict(g)
    assert gt.num_images == 7
