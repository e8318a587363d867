"""Class statistics from the LVIS v1 cat-info list and from a GT dict."""

import numpy as np
import pytest

pytest.importorskip("torch")

from lveval.longtail import LVIS_V1_TRAIN_NUM_IMAGES, ClassStats, frequency_group  # noqa: E402


def test_lvis_v1_train_statistics(lvis_stats):
    assert lvis_stats.num_classes == 1203
    assert lvis_stats.num_images == LVIS_V1_TRAIN_NUM_IMAGES == 100_170
    # the LVIS v1 description gives 1,270,141 train instances: the counts agree
    assert lvis_stats.instance_count.sum() == 1_270_141
    assert np.all(np.diff(lvis_stats.ids) > 0) and lvis_stats.ids[0] == 1
    assert {g: len(v) for g, v in lvis_stats.group_indices().items()} == {"r": 337, "c": 461, "f": 405}
    np.testing.assert_allclose(lvis_stats.image_frequency, lvis_stats.image_count / 100_170)


def test_frequency_groups_match_lvis_labels(lvis_stats):
    """LVIS: rare = 1-10 images, common = 11-100, frequent > 100 -- every label agrees."""
    derived = [frequency_group(n) for n in lvis_stats.image_count]
    assert derived == list(lvis_stats.frequency)
    assert [frequency_group(n) for n in (1, 10, 11, 100, 101)] == ["r", "r", "c", "c", "f"]


def test_from_cat_info_accepts_a_list_and_sorts_by_id():
    cats = [{"id": 7, "name": "b", "image_count": 200, "instance_count": 900},
            {"id": 2, "name": "a", "image_count": 3, "instance_count": 4, "frequency": "r"}]
    stats = ClassStats.from_cat_info(cats, num_images=1000)
    assert stats.ids.tolist() == [2, 7] and stats.names == ("a", "b") and stats.frequency == ("r", "f")
    np.testing.assert_allclose(stats.image_frequency, [0.003, 0.2])
    assert stats.index_of() == {2: 0, 7: 1}


def test_from_dataset_counts_images_and_instances():
    dataset = {
        "images": [{"id": 10}, {"id": 11}, {"id": 12}, {"id": 13}],
        "annotations": [
            {"id": 1, "image_id": 10, "category_id": 1},
            {"id": 2, "image_id": 10, "category_id": 1},
            {"id": 3, "image_id": 11, "category_id": 1},
            {"id": 4, "image_id": 11, "category_id": 3},
        ],
        "categories": [{"id": 3, "name": "c3"}, {"id": 1, "name": "c1"}, {"id": 2, "name": "c2"}],
    }
    stats = ClassStats.from_dataset(dataset)
    assert stats.ids.tolist() == [1, 2, 3]
    assert stats.image_count.tolist() == [2, 0, 1]
    assert stats.instance_count.tolist() == [3, 0, 1]
    assert stats.num_images == 4 and stats.frequency == ("r", "r", "r")
    np.testing.assert_allclose(stats.image_frequency, [0.5, 0.0, 0.25])


def test_subset_keeps_denominator(lvis_stats):
    sub = lvis_stats.subset([0, 5])
    assert sub.num_classes == 2 and sub.num_images == 100_170
    assert sub.names == (lvis_stats.names[0], lvis_stats.names[5])


def test_from_cat_info_path(cat_info_path):
    assert ClassStats.from_cat_info(str(cat_info_path)).num_classes == 1203
