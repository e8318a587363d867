"""Per-class score calibration for large-vocabulary detection (Dave et al. 2021, Sec. 6.3).

``methods`` holds the calibrators (histogram binning, BBQ, beta, isotonic,
Platt, temperature) behind one fit/predict/to_dict interface plus
:func:`keep_rank`; ``ece`` holds calibration-error metrics and reliability
diagrams.  On top of the evaluation engine: ``labels`` (which detections are
true positives at the calibration IoU), ``grouped`` (per-class, per-frequency
or overall calibration of whole results files; JSON models), ``splits``
(train/test, k-fold over images, oracle), ``bench`` (the paper's Table 8) and
``lveval.cli.calibrate`` (``lveval calibrate fit|apply|bench``).  Only numpy, scipy,
scikit-learn (and matplotlib for plots) are used.

The names below are imported on first use: most ``lveval`` commands import
``lveval.cli.calibrate`` to register their sub-commands, and loading scipy and
scikit-learn eagerly would add about a second to each of them.
"""
from __future__ import annotations

import importlib
import sys
import types

_EXPORTS = {
    # methods
    "BBQ": "methods", "EPS": "methods", "BetaCalibration": "methods", "Calibrator": "methods",
    "HistogramBinning": "methods", "IsotonicCalibration": "methods", "NotFittedError": "methods",
    "PlattScaling": "methods", "TemperatureScaling": "methods", "available_calibrators": "methods",
    "calibrator_from_dict": "methods", "keep_rank": "methods", "logit": "methods", "make_calibrator": "methods",
    # ece
    "ReliabilityBins": "ece", "ece": "ece", "ece_by_group": "ece", "mean_per_class_ece": "ece",
    "per_class_ece": "ece", "reliability_bins": "ece", "reliability_diagram": "ece",
    # options
    "DEFAULT_IOU": "options", "GROUPINGS": "options", "POLICIES": "options", "TABLE8_METHODS": "options",
    # labels
    "Labeller": "labels", "Samples": "labels", "calibration_samples": "labels",
    # grouped
    "GroupedCalibrator": "grouped", "keep_rank_strict": "grouped", "make_monotone": "grouped",
    "method_label": "grouped", "parse_method_spec": "grouped",
    # splits
    "CalibrationSet": "splits", "cross_fit": "splits", "fit_apply": "splits", "image_folds": "splits",
    "oracle": "splits", "subset_dataset": "splits", "subset_results": "splits",
    # bench
    "BenchEntry": "bench", "BenchResult": "bench", "CalibrationError": "bench", "bench": "bench",
    "calibration_error": "bench", "format_table": "bench",
}

__all__ = sorted(_EXPORTS)


class _Package(types.ModuleType):
    """Loads exported names on first access.

    Two submodules share their name with the function they export (``ece``,
    ``bench``).  Importing such a submodule makes Python set the package
    attribute to the module; ``__setattr__`` keeps the function there
    instead, as an eager ``from .ece import ece`` would.
    """

    def __getattr__(self, name: str):
        module = _EXPORTS.get(name)
        if module is None:
            raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{self.__name__}.{module}"), name)
        types.ModuleType.__setattr__(self, name, value)
        return value

    def __setattr__(self, name: str, value) -> None:
        if _EXPORTS.get(name) == name and isinstance(value, types.ModuleType):
            value = getattr(value, name)
        types.ModuleType.__setattr__(self, name, value)

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(_EXPORTS))


sys.modules[__name__].__class__ = _Package
