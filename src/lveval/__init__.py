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


# The exception module is still named ``errors``; load it first so that the function below keeps
# the name ``lveval.errors`` (a later ``from .errors import ...`` finds the loaded module and does not
# rebind the attribute).
from . import errors as _exceptions  # noqa: E402


def errors(gt, results, *, iou_type: str = "bbox", protocols=("fixed", "old"),
           max_dets_per_image: int | None = None, max_dets_per_class: int = 10_000,
           dataset: str | None = None, on_unknown_image: str = "error", on_unknown_category: str = "error",
           top_confusions: int = 20):
    """TIDE's error analysis (dAP per error type, per frequency group, class confusions) under
    AP-Fixed's and AP-Old's selections; see :func:`lveval.error_analysis.errors`."""
    from .error_analysis import errors as _errors
    return _errors(gt, results, iou_type=iou_type, protocols=protocols, max_dets_per_image=max_dets_per_image,
                   max_dets_per_class=max_dets_per_class, dataset=dataset, on_unknown_image=on_unknown_image,
                   on_unknown_category=on_unknown_category, top_confusions=top_confusions)


# While the exception module keeps its name: ``lveval.errors.InputError`` etc. still resolve.
for _name in ("LvevalError", "InputError", "ResourceError", "Notices"):
    setattr(errors, _name, getattr(_exceptions, _name))
del _name
