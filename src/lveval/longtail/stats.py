"""Per-class training statistics: image/instance counts, frequencies, r/c/f groups.

Long-tail losses (EQL, Federated, BaGS) and samplers (repeat-factor) are all
parameterised by how often each class occurs in the *training* set.  This
module derives those numbers either from a COCO/LVIS-format dataset dict or
from a "cat-info" list (one dict per class with ``image_count`` and
``instance_count``, as shipped for LVIS v1 train).  It needs only numpy.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

#: Number of images in the LVIS v1 *train* split (LVIS v1 dataset description,
#: lvisdataset.org/dataset: 100,170 train images, 1,270,141 instances).  The
#: cat-info list carries per-class counts but not this denominator, which is
#: needed for f(c) = image_count / num_images.
LVIS_V1_TRAIN_NUM_IMAGES = 100_170

#: LVIS frequency groups (Gupta et al., "LVIS", CVPR 2019): a class is *rare*
#: if it appears in 1-10 training images, *common* in 11-100, *frequent* in >100.
RARE_MAX_IMAGES = 10
COMMON_MAX_IMAGES = 100
GROUPS = ("r", "c", "f")


def frequency_group(image_count: int) -> str:
    """LVIS frequency group ('r', 'c' or 'f') of a class seen in ``image_count`` images."""
    if image_count <= RARE_MAX_IMAGES:
        return "r"
    if image_count <= COMMON_MAX_IMAGES:
        return "c"
    return "f"


def load_json(src: str | os.PathLike | Any) -> Any:
    """Return ``src`` parsed from JSON if it is a path, else ``src`` unchanged."""
    if isinstance(src, (str, os.PathLike)):
        with open(src, "rb") as fh:
            return json.load(fh)
    return src


def image_category_sets(dataset: Mapping[str, Any]) -> list[set[int]]:
    """Category ids present in each image, aligned with ``dataset['images']``."""
    position = {img["id"]: i for i, img in enumerate(dataset["images"])}
    cats: list[set[int]] = [set() for _ in position]
    for ann in dataset.get("annotations", ()):
        cats[position[ann["image_id"]]].add(ann["category_id"])
    return cats


@dataclass(frozen=True, eq=False)  # numpy fields: no element-wise __eq__
class ClassStats:
    """Training statistics of K classes, in a fixed class order.

    The order (``ids``) defines the class index 0..K-1 used by the losses; the
    background index is K.  ``frequency`` holds the LVIS r/c/f label, taken
    from the source when given and otherwise derived from ``image_count``.
    """

    ids: np.ndarray
    names: tuple[str, ...]
    image_count: np.ndarray
    instance_count: np.ndarray
    frequency: tuple[str, ...]
    num_images: int

    @property
    def num_classes(self) -> int:
        return len(self.ids)

    @property
    def image_frequency(self) -> np.ndarray:
        """f(c): fraction of training images containing class c (float64, shape (K,))."""
        return self.image_count / float(self.num_images)

    def group_indices(self) -> dict[str, np.ndarray]:
        """Class indices (0..K-1) of each frequency group 'r', 'c', 'f'."""
        freq = np.asarray(self.frequency)
        return {g: np.flatnonzero(freq == g) for g in GROUPS}

    def index_of(self) -> dict[int, int]:
        """Map category id -> class index."""
        return {int(c): i for i, c in enumerate(self.ids)}

    def subset(self, indices: Sequence[int]) -> ClassStats:
        """Statistics of the classes at ``indices`` (same image denominator)."""
        idx = np.asarray(indices, dtype=np.int64)
        return ClassStats(
            ids=self.ids[idx],
            names=tuple(self.names[i] for i in idx),
            image_count=self.image_count[idx],
            instance_count=self.instance_count[idx],
            frequency=tuple(self.frequency[i] for i in idx),
            num_images=self.num_images,
        )

    @classmethod
    def from_cat_info(
        cls, src: str | os.PathLike | Iterable[Mapping[str, Any]], num_images: int | None = None
    ) -> ClassStats:
        """Build from a cat-info list (path or list of dicts), sorted by id.

        ``num_images`` defaults to :data:`LVIS_V1_TRAIN_NUM_IMAGES` because the
        list itself does not record the number of training images.
        """
        cats = sorted(load_json(src), key=lambda c: c["id"])
        return cls._from_records(cats, LVIS_V1_TRAIN_NUM_IMAGES if num_images is None else num_images)

    @classmethod
    def from_dataset(cls, src: str | os.PathLike | Mapping[str, Any]) -> ClassStats:
        """Count images and instances per category of a COCO/LVIS-format GT dict or file."""
        dataset = load_json(src)
        image_count: dict[int, int] = {}
        for present in image_category_sets(dataset):
            for c in present:
                image_count[c] = image_count.get(c, 0) + 1
        instance_count: dict[int, int] = {}
        for ann in dataset.get("annotations", ()):
            instance_count[ann["category_id"]] = instance_count.get(ann["category_id"], 0) + 1
        cats = [
            {
                **c,
                "image_count": image_count.get(c["id"], 0),
                "instance_count": instance_count.get(c["id"], 0),
                "frequency": None,  # recomputed from this dataset's counts
            }
            for c in sorted(dataset["categories"], key=lambda c: c["id"])
        ]
        return cls._from_records(cats, len(dataset["images"]))

    @classmethod
    def _from_records(cls, cats: Sequence[Mapping[str, Any]], num_images: int) -> ClassStats:
        image_count = np.array([c["image_count"] for c in cats], dtype=np.int64)
        return cls(
            ids=np.array([c["id"] for c in cats], dtype=np.int64),
            names=tuple(str(c.get("name", c["id"])) for c in cats),
            image_count=image_count,
            instance_count=np.array([c["instance_count"] for c in cats], dtype=np.int64),
            frequency=tuple(c.get("frequency") or frequency_group(n) for c, n in zip(cats, image_count)),
            num_images=int(num_images),
        )
