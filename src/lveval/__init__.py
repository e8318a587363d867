"""lveval: exact, fast evaluation of large-vocabulary object detectors.

``lveval.evaluate(gt, results, ...)`` gives AP-Old, AP-Fixed and AP-Pool (Dave et
al., 2021) in one :class:`EvalResult`; :class:`Params` holds every option. The names
below are imported on first use, so ``import lveval`` stays cheap.
"""
from __future__ import annotations

import importlib as _importlib
import logging as _logging
import os as _os
from typing import TYPE_CHECKING

from ._version import __version__  # written once, in _version.py (pyproject.toml reads it)

# A library does not print: notices are collected on results and printed by the CLI.
_logging.getLogger("lveval").addHandler(_logging.NullHandler())

# public name -> module that defines it
_LAZY = {
    "evaluate": "lveval.metrics", "EvalResult": "lveval.metrics", "Evaluator": "lveval.metrics",
    "Params": "lveval.params",
    "load_gt": "lveval.io.gt", "GroundTruth": "lveval.io.gt",
    "load_results": "lveval.io.results", "Detections": "lveval.io.results",
    "TopKPerClass": "lveval.topk",
    "errors": "lveval.error_analysis.core",
    "compare": "lveval.comparison.core",
    "LvevalError": "lveval.exceptions", "InputError": "lveval.exceptions",
    "OptionError": "lveval.exceptions", "ResourceError": "lveval.exceptions",
}

__all__ = ["__version__", "data_path", "evaluate", "EvalResult", "Evaluator", "Params", "load_gt", "GroundTruth",
           "load_results", "Detections", "TopKPerClass", "errors", "compare", "LvevalError", "InputError",
           "OptionError", "ResourceError"]

if TYPE_CHECKING:   # for type checkers and editors; at run time the module __getattr__ imports them
    from .comparison.core import compare
    from .error_analysis.core import errors
    from .exceptions import InputError, LvevalError, OptionError, ResourceError
    from .io.gt import GroundTruth, load_gt
    from .io.results import Detections, load_results
    from .metrics import EvalResult, Evaluator, evaluate
    from .params import Params
    from .topk import TopKPerClass


def data_path(name: str = "lvis_v0.5_val_100.json") -> str:
    """Path of a file bundled with lveval (see data/ATTRIBUTION.md)."""
    return _os.path.join(_os.path.dirname(__file__), "data", name)


def __getattr__(name: str):
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(f"module 'lveval' has no attribute {name!r}")
    value = getattr(_importlib.import_module(mod), name)
    globals()[name] = value
    return value


def __dir__() -> list:
    return sorted(set(globals()) | set(_LAZY))
