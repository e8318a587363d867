"""lveval: exact, fast evaluation of large-vocabulary object detectors."""
__version__ = "0.1.0"

import logging as _logging

# A library does not print: notices are collected on results and printed by the CLI.
_logging.getLogger("lveval").addHandler(_logging.NullHandler())

import os as _os

DEFAULT_GT = _os.path.join(_os.path.dirname(__file__), "data", "lvis_v0.5_val_100.json")


def data_path(name: str = "lvis_v0.5_val_100.json") -> str:
    """Path of a file bundled with lveval (see data/ATTRIBUTION.md)."""
    return _os.path.join(_os.path.dirname(__file__), "data", name)


def evaluate(*args, **kwargs):
    """Evaluate detections under AP-Old, AP-Fixed and AP-Pool; see :func:`lveval.metrics.evaluate`."""
    from .metrics import evaluate as _evaluate
    return _evaluate(*args, **kwargs)


def compare(gt, models, *, bootstrap: int = 1000, seed: int = 0, confidence: float = 0.95,
            protocols=("old", "fixed", "pooled"), iou_type: str = "bbox", max_dets_per_image: int | None = None,
            max_dets_per_class: int = 10_000, dataset: str | None = None, on_unknown_image: str = "error",
            on_unknown_category: str = "error", client=None, workers: int | None = None,
            scheduler: str | None = None):
    """Compare detectors (``{"name": results, ...}``, the first is the baseline) with paired bootstrap
    confidence intervals; see :func:`lveval.comparison.compare`."""
    from .comparison import compare as _compare
    return _compare(gt, models, bootstrap=bootstrap, seed=seed, confidence=confidence, protocols=protocols,
                    iou_type=iou_type, max_dets_per_image=max_dets_per_image,
                    max_dets_per_class=max_dets_per_class, dataset=dataset,
                    on_unknown_image=on_unknown_image, on_unknown_category=on_unknown_category,
                    client=client, workers=workers, scheduler=scheduler)
