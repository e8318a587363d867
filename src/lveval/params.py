"""Evaluation parameters, with the references' exact threshold arrays."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

AREA_LABELS = ("all", "small", "medium", "large")
IOU_TYPES = ("bbox", "segm", "boundary")
MASK_IOU_TYPES = ("segm", "boundary")   # types that evaluate masks


def _iou_thrs() -> np.ndarray:
    # Same construction as lvis-api / pycocotools (np.arange drifts).
    return np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1, endpoint=True)


def _rec_thrs() -> np.ndarray:
    return np.linspace(0.0, 1.00, int(np.round((1.00 - 0.0) / 0.01)) + 1, endpoint=True)


def _area_rng() -> np.ndarray:
    return np.array([[0 ** 2, 1e5 ** 2], [0 ** 2, 32 ** 2], [32 ** 2, 96 ** 2], [96 ** 2, 1e5 ** 2]],
                    dtype=np.float64)


@dataclass
class Params:
    """What an evaluation uses; recorded in every output.

    ``max_dets_per_image``: AP-Old's cap (LVIS default 300; for COCO rules it is
    pycocotools' largest ``maxDets``, applied per image and category as
    pycocotools does). ``max_dets_per_class``: AP-Fixed's per-class budget.
    ``dilation_ratio``: Boundary IoU's band width as a fraction of the image
    diagonal (``iou_type="boundary"`` only).
    """

    iou_type: str = "bbox"
    dataset: str = "lvis"
    max_dets_per_image: int | None = None
    max_dets_per_class: int = 10_000
    coco_max_dets: tuple = (1, 10, 100)
    iou_thrs: np.ndarray = field(default_factory=_iou_thrs)
    rec_thrs: np.ndarray = field(default_factory=_rec_thrs)
    area_rng: np.ndarray = field(default_factory=_area_rng)
    dilation_ratio: float = 0.02

    def __post_init__(self):
        if self.iou_type not in IOU_TYPES:
            raise ValueError(f"iou_type must be 'bbox', 'segm' or 'boundary', not {self.iou_type!r}")
        r = self.dilation_ratio
        if isinstance(r, bool) or not isinstance(r, (int, float)) or not 0 < r < float("inf"):
            raise ValueError(f"dilation_ratio must be a number > 0, not {r!r}")
        if self.max_dets_per_image is None:
            self.max_dets_per_image = 300 if self.dataset == "lvis" else self.coco_max_dets[-1]
        if self.dataset == "coco":
            n = self.max_dets_per_image
            self.coco_max_dets = tuple(m for m in self.coco_max_dets[:-1] if m < n) + (n,)

    def to_dict(self) -> dict:
        return {"iou_type": self.iou_type, "dataset": self.dataset,
                "max_dets_per_image": self.max_dets_per_image,
                "max_dets_per_class": self.max_dets_per_class,
                **({"coco_max_dets": list(self.coco_max_dets)} if self.dataset == "coco" else {}),
                "iou_thrs": [round(float(t), 10) for t in self.iou_thrs],
                "num_rec_thrs": len(self.rec_thrs),
                "area_rng": {k: [float(a), float(b)] for k, (a, b) in zip(AREA_LABELS, self.area_rng)},
                **({"dilation_ratio": float(self.dilation_ratio)} if self.iou_type == "boundary" else {})}
