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
