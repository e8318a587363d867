"""Uniform, class-aware and repeat-factor samplers: formulas, statistics, seeding."""

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from lveval.longtail import (  # noqa: E402
    ClassAwareSampler,
    RepeatFactorSampler,
    UniformSampler,
    category_repeat_factors,
    image_repeat_factors,
)


def dataset_from(image_classes):
    """A COCO-style dict whose image i holds one annotation per category in image_classes[i]."""
    images = [{"id": 100 + i} for i in range(len(image_classes))]
    annotations = [{"id": len(images) * 10 + j * len(images) + i, "image_id": 100 + i, "category_id": c}
                   for i, cats in enumerate(image_classes) for j, c in enumerate(cats)]
    categories = [{"id": c} for c in sorted({c for cats in image_classes for c in cats})]
    return {"images": images, "annotations": annotations, "categories": categories}


def test_category_repeat_factors_on_lvis_v1(lvis_stats):
    r = category_repeat_factors(lvis_stats.image_frequency)  # t = 0.001
    by_hand = [max(1.0, math.sqrt(0.001 / (n / 100_170))) for n in lvis_stats.image_count]
    np.testing.assert_allclose(r, by_hand, rtol=1e-12)
    # f(c) < t  <=>  image_count <= 100  <=>  rare or common: exactly those are repeated
    groups = lvis_stats.group_indices()
    assert np.flatnonzero(r > 1).tolist() == sorted(np.concatenate([groups["r"], groups["c"]]).tolist())
    assert len(groups["r"]) + len(groups["c"]) == 798
    assert r.max() == pytest.approx(math.sqrt(100.17), rel=1e-12)  # a class in a single image
    np.testing.assert_allclose(category_repeat_factors(lvis_stats.image_frequency, threshold=0.01),
                               np.maximum(1, np.sqrt(0.01 / lvis_stats.image_frequency)))


def lvis_images(lvis_stats):
    """Four images built from real LVIS classes: (single-image class + frequent), common, frequent, none."""
    index = {n: i for i, n in enumerate(lvis_stats.image_count)}
    one, fifty, freq = (int(lvis_stats.ids[index[n]]) for n in (1, 50, 1969))
    frequency = dict(zip(lvis_stats.ids.tolist(), lvis_stats.image_frequency.tolist()))
    return dataset_from([[one, freq], [fifty], [freq], []]), frequency


def test_image_repeat_factor_is_max_over_classes(lvis_stats):
    dataset, frequency = lvis_images(lvis_stats)
    r = image_repeat_factors(dataset, category_frequency=frequency)
    np.testing.assert_allclose(r, [math.sqrt(100.17), math.sqrt(0.001 * 100_170 / 50), 1.0, 1.0], rtol=1e-12)


def test_image_repeat_factors_default_to_dataset_frequencies():
    dataset = dataset_from([[1]] + [[2]] * 9999)  # f(1) = 1e-4, f(2) ~ 1
    r = image_repeat_factors(dataset)
    assert r[0] == pytest.approx(math.sqrt(10)) and np.all(r[1:] == 1.0)


def test_repeat_factor_sampling_averages_to_r(lvis_stats):
    four, frequency = lvis_images(lvis_stats)
    copies = 1000  # each of the four image kinds 1000 times: many draws per epoch
    dataset = dataset_from([[a["category_id"] for a in four["annotations"] if a["image_id"] == img["id"]]
                            for img in four["images"] for _ in range(copies)])
    sampler = RepeatFactorSampler(dataset, category_frequency=frequency, seed=0)
    kind = np.arange(4 * copies) // copies
    epochs, counts, lengths = 4, np.zeros(4), set()
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        order = list(sampler)
        assert len(order) == len(sampler)
        lengths.add(len(order))
        counts += np.bincount(kind[order], minlength=4)
    r = image_repeat_factors(four, category_frequency=frequency)
    np.testing.assert_allclose(sampler.repeat_factors.numpy(), np.repeat(r, copies))
    frac, draws = r - np.floor(r), epochs * copies
    # per image and epoch: floor(r) copies plus one with probability frac(r) -- mean r, binomial spread
    assert np.all(np.abs(counts / draws - r) <= 4.5 * np.sqrt(frac * (1 - frac) / draws) + 1e-12)
    assert counts[2] == counts[3] == draws  # r = 1: exactly once per epoch
    assert counts[1] / draws == pytest.approx(r[1], abs=0.02) and 0 < frac[1] < 1
    assert len(lengths) > 1  # stochastic rounding varies the epoch length


def test_seed_and_epoch_determinism(lvis_stats):
    dataset, frequency = lvis_images(lvis_stats)

    def make(seed):
        return RepeatFactorSampler(dataset, category_frequency=frequency, seed=seed)

    a, b = make(0), make(0)
    assert list(a) == list(b)
    orders = set()
    for epoch in range(6):
        a.set_epoch(epoch)
        orders.add(tuple(a))
    assert len(orders) > 1
    a.set_epoch(2)
    b.set_epoch(2)
    assert list(a) == list(b)


def test_uniform_sampler():
    dataset = dataset_from([[1]] * 50)
    sampler = UniformSampler(dataset, seed=3)
    first = list(sampler)
    assert sorted(first) == list(range(50)) and len(sampler) == 50
    assert list(UniformSampler(dataset, seed=3)) == first
    sampler.set_epoch(1)
    assert list(sampler) != first


def test_class_aware_sampling_is_near_uniform_over_classes(lvis_stats):
    # 30 classes with real LVIS image counts spanning r/c/f, one class per image
    order = np.argsort(lvis_stats.image_count, kind="stable")
    pick = order[np.linspace(0, len(order) - 1, 30).round().astype(int)]
    counts = lvis_stats.image_count[pick]
    assert counts.min() == 1 and counts.max() >= 1900
    image_class = np.repeat(np.arange(30), counts)
    sampler = ClassAwareSampler(dataset_from([[int(c)] for c in image_class]), num_samples=30_000, seed=0)
    drawn = np.bincount(image_class[list(sampler)], minlength=30)
    # chi-square against uniform, 29 degrees of freedom: 58.3 is the 0.001 critical value
    chi2 = ((drawn - 1000) ** 2 / 1000).sum()
    assert chi2 < 58.3, (chi2, drawn)
    assert drawn.min() > 850 and drawn.max() < 1150  # vs image-uniform sampling: 1 of ~14,000


def test_class_aware_picks_images_uniformly_within_a_class():
    dataset = dataset_from([[1], [1], [1], [1], [2], [1, 2]])  # class 1: 5 images, class 2: 2 images
    sampler = ClassAwareSampler(dataset, num_samples=20_000, seed=1)
    drawn = np.bincount(list(sampler), minlength=6)
    # P(image) = 1/2 * 1/5 (+ 1/2 * 1/2 for images of class 2)
    expected = 20_000 * np.array([0.1, 0.1, 0.1, 0.1, 0.25, 0.35])
    assert np.all(np.abs(drawn - expected) <= 4.5 * np.sqrt(expected))
    assert len(sampler) == 20_000
    assert ClassAwareSampler(dataset).num_samples == 6


def test_class_aware_skips_unannotated_images_and_is_seeded():
    dataset = dataset_from([[], [3], [], [4]])
    sampler = ClassAwareSampler(dataset, num_samples=200, seed=5)
    assert set(sampler) == {1, 3}
    assert list(sampler) == list(ClassAwareSampler(dataset, num_samples=200, seed=5))
    with pytest.raises(ValueError):
        ClassAwareSampler(dataset_from([[], []]))


def test_samplers_drive_a_dataloader():
    dataset = dataset_from([[1], [2], [2]])
    loader = torch.utils.data.DataLoader(list(range(3)), batch_size=2, sampler=RepeatFactorSampler(dataset))
    assert sum(len(batch) for batch in loader) >= 3


@pytest.mark.parametrize("make", [
    lambda ds, **kw: UniformSampler(ds, seed=3, **kw),
    lambda ds, **kw: ClassAwareSampler(ds, num_samples=23, seed=3, **kw),
    lambda ds, **kw: RepeatFactorSampler(ds, threshold=0.5, seed=3, **kw),
], ids=["uniform", "class-aware", "repeat-factor"])
@pytest.mark.parametrize("replicas", [2, 3, 7])
def test_replicas_split_one_epoch_order(make, replicas):
    """Ranks take disjoint strided shares of the same epoch order, padded like DistributedSampler."""
    ds = dataset_from([[1], [1, 2], [3], [], [2], [1], [4], [4, 1], [2], [3, 4]])
    whole = make(ds)
    for epoch in (0, 5):
        whole.set_epoch(epoch)
        order = list(whole)
        shares = []
        for rank in range(replicas):
            s = make(ds, num_replicas=replicas, rank=rank)
            s.set_epoch(epoch)
            shares.append(list(s))
            assert len(s) == len(shares[-1]) == -(-len(order) // replicas)
        padded = order + order[: len(shares[0]) * replicas - len(order)]
        merged = [shares[r][i] for i in range(len(shares[0])) for r in range(replicas)]
        assert merged == padded


def test_replicas_default_to_one_and_are_checked():
    ds = dataset_from([[1], [2], [1, 2]])
    s = UniformSampler(ds)
    assert (s.num_replicas, s.rank) == (1, 0) and len(s) == 3
    for bad in [dict(num_replicas=0, rank=0), dict(num_replicas=2, rank=2), dict(num_replicas=2, rank=-1)]:
        with pytest.raises(ValueError, match="num_replicas"):
            UniformSampler(ds, **bad)


def test_replicas_come_from_the_process_group(monkeypatch):
    """With torch.distributed initialised, the group's world size and rank are used by default."""
    import torch.distributed as dist

    monkeypatch.setattr(dist, "is_available", lambda: True)
    monkeypatch.setattr(dist, "is_initialized", lambda: True)
    monkeypatch.setattr(dist, "get_world_size", lambda: 4)
    monkeypatch.setattr(dist, "get_rank", lambda: 2)
    ds = dataset_from([[1], [2], [1, 2], [3], [3], [1]])
    s = UniformSampler(ds, seed=1)
    assert (s.num_replicas, s.rank) == (4, 2)
    explicit = UniformSampler(ds, seed=1, num_replicas=4, rank=2)
    assert list(s) == list(explicit) and len(s) == 2
