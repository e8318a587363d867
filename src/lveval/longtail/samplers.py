"""Image samplers compared in Dave et al. 2021, Table 5c.

All three yield indices into ``dataset['images']`` of a COCO/LVIS-format
dict and are reproducible: the order depends only on ``seed`` and the epoch
set with :meth:`set_epoch` (the ``torch.utils.data.DistributedSampler``
convention: the generator is seeded with ``seed + epoch``).

For distributed training every sampler takes ``num_replicas`` and ``rank``
(by default those of the initialised ``torch.distributed`` process group, else
1 and 0). Every rank draws the same epoch order and keeps every
``num_replicas``-th index from its ``rank`` on, after the order is padded by
repeating its start to a multiple of ``num_replicas``, as
``DistributedSampler`` does, so all ranks take the same number of steps.

* :class:`UniformSampler` -- a random permutation of all images.
* :class:`ClassAwareSampler` -- pick a class uniformly, then an image
  containing it uniformly (Shen et al., "Relay Backpropagation", ECCV 2016).
* :class:`RepeatFactorSampler` -- repeat-factor sampling (Gupta et al.,
  "LVIS", CVPR 2019): r(c) = max(1, sqrt(t / f(c))), r(I) = max over I's
  classes, with stochastic rounding of r(I) each epoch.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import torch
from torch.utils.data import Sampler

from .stats import ClassStats, image_category_sets

#: Repeat-factor threshold t of the LVIS paper (also Dave et al.'s setup).
RFS_THRESHOLD = 1e-3


def category_repeat_factors(image_frequency: np.ndarray, threshold: float = RFS_THRESHOLD) -> np.ndarray:
    """r(c) = max(1, sqrt(t / f(c))) for image frequencies f(c) > 0 (f(c) = 0 gives inf)."""
    freq = np.asarray(image_frequency, dtype=np.float64)
    with np.errstate(divide="ignore"):
        return np.maximum(1.0, np.sqrt(threshold / freq))


def image_repeat_factors(
    dataset: Mapping[str, Any],
    threshold: float = RFS_THRESHOLD,
    category_frequency: Mapping[int, float] | None = None,
) -> np.ndarray:
    """r(I) = max over the classes in image I of r(c); 1 for images without annotations.

    ``category_frequency`` maps category id -> f(c); by default f(c) is the
    fraction of ``dataset``'s images that contain c.
    """
    if category_frequency is None:
        stats = ClassStats.from_dataset(dataset)
        category_frequency = dict(zip(stats.ids.tolist(), stats.image_frequency.tolist()))
    ids = list(category_frequency)
    per_class = dict(zip(ids, category_repeat_factors(np.array([category_frequency[c] for c in ids]), threshold)))
    return np.array([max((per_class[c] for c in cats), default=1.0) for cats in image_category_sets(dataset)])


def _replicas(num_replicas: int | None, rank: int | None) -> tuple[int, int]:
    """(num_replicas, rank): as given, else the torch.distributed group's, else (1, 0)."""
    dist = torch.distributed
    active = dist.is_available() and dist.is_initialized()
    if num_replicas is None:
        num_replicas = dist.get_world_size() if active else 1
    if rank is None:
        rank = dist.get_rank() if active else 0
    num_replicas, rank = int(num_replicas), int(rank)
    if num_replicas < 1 or not 0 <= rank < num_replicas:
        raise ValueError(f"need num_replicas >= 1 and 0 <= rank < num_replicas, got {num_replicas} and {rank}")
    return num_replicas, rank


class EpochSampler(Sampler[int]):
    """Base: a seed and an epoch that together fix the sampling order; this rank's share of it."""

    def __init__(self, seed: int = 0, num_replicas: int | None = None, rank: int | None = None):
        self.seed = int(seed)
        self.epoch = 0
        self.num_replicas, self.rank = _replicas(num_replicas, rank)

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose (reproducible) order ``__iter__`` yields next."""
        self.epoch = int(epoch)

    def _generator(self) -> torch.Generator:
        return torch.Generator().manual_seed(self.seed + self.epoch)

    def epoch_order(self) -> list[int]:
        """The whole epoch's order, the same on every rank."""
        raise NotImplementedError

    def _share(self, n: int) -> int:
        return -(-n // self.num_replicas)   # ceil

    def __iter__(self) -> Iterator[int]:
        order = self.epoch_order()
        if self.num_replicas == 1 or not order:
            return iter(order)
        total = self._share(len(order)) * self.num_replicas
        padded = order + (order * (total // len(order) + 1))[: total - len(order)]
        return iter(padded[self.rank::self.num_replicas])

    def __len__(self) -> int:
        return self._share(self._epoch_length())

    def _epoch_length(self) -> int:
        return len(self.epoch_order())


class UniformSampler(EpochSampler):
    """Every image once per epoch, in random order."""

    def __init__(self, dataset: Mapping[str, Any], seed: int = 0, num_replicas: int | None = None,
                 rank: int | None = None):
        super().__init__(seed, num_replicas, rank)
        self.num_images = len(dataset["images"])

    def epoch_order(self) -> list[int]:
        return torch.randperm(self.num_images, generator=self._generator()).tolist()

    def _epoch_length(self) -> int:
        return self.num_images


class ClassAwareSampler(EpochSampler):
    """Draw a class uniformly among classes with images, then one of its images uniformly.

    ``num_samples`` (draws per epoch) defaults to the number of images.
    """

    def __init__(self, dataset: Mapping[str, Any], num_samples: int | None = None, seed: int = 0,
                 num_replicas: int | None = None, rank: int | None = None):
        super().__init__(seed, num_replicas, rank)
        by_class: dict[int, list[int]] = {}
        for index, cats in enumerate(image_category_sets(dataset)):
            for c in cats:
                by_class.setdefault(c, []).append(index)
        if not by_class:
            raise ValueError("class-aware sampling needs at least one annotated image")
        self.category_ids = sorted(by_class)
        lists = [by_class[c] for c in self.category_ids]
        self._counts = torch.tensor([len(x) for x in lists])
        self._offsets = torch.cumsum(self._counts, 0) - self._counts
        self._images = torch.tensor([i for x in lists for i in x])
        self.num_samples = len(dataset["images"]) if num_samples is None else int(num_samples)

    def sample(self) -> tuple[torch.Tensor, torch.Tensor]:
        """This epoch's (class positions in ``category_ids``, image indices)."""
        g = self._generator()
        classes = torch.randint(len(self.category_ids), (self.num_samples,), generator=g)
        counts = self._counts[classes]
        within = (torch.rand(self.num_samples, generator=g, dtype=torch.float64) * counts).long()
        within = torch.minimum(within, counts - 1)
        return classes, self._images[self._offsets[classes] + within]

    def epoch_order(self) -> list[int]:
        return self.sample()[1].tolist()

    def _epoch_length(self) -> int:
        return self.num_samples


class RepeatFactorSampler(EpochSampler):
    """Repeat each image r(I) times per epoch, rounding r(I) stochastically, then shuffle.

    An image with r(I) = 2.3 appears 2 times plus once more with probability
    0.3, so its expected count per epoch is exactly r(I).  The epoch length
    therefore varies; ``len()`` reports the current epoch's (this rank's share).
    """

    def __init__(
        self,
        dataset: Mapping[str, Any],
        threshold: float = RFS_THRESHOLD,
        category_frequency: Mapping[int, float] | None = None,
        seed: int = 0,
        num_replicas: int | None = None,
        rank: int | None = None,
    ):
        super().__init__(seed, num_replicas, rank)
        self.repeat_factors = torch.from_numpy(image_repeat_factors(dataset, threshold, category_frequency))
        self._cached: tuple[int, int, list[int]] | None = None

    def epoch_order(self) -> list[int]:
        """This epoch's image indices, all ranks' (cached per seed and epoch)."""
        key = (self.seed, self.epoch)
        if self._cached is None or self._cached[:2] != key:
            g = self._generator()
            whole = torch.floor(self.repeat_factors)
            extra = torch.rand(len(whole), generator=g, dtype=torch.float64) < (self.repeat_factors - whole)
            repeats = (whole + extra).long()
            order = torch.repeat_interleave(torch.arange(len(whole)), repeats)
            order = order[torch.randperm(len(order), generator=g)]
            self._cached = (*key, order.tolist())
        return self._cached[2]
