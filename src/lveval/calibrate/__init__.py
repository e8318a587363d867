"""Per-class score calibration for large-vocabulary detection (Dave et al. 2021, Sec. 6.3).

``methods`` holds the calibrators (histogram binning, BBQ, beta, isotonic,
Platt, temperature) behind one fit/predict/to_dict interface plus
:func:`keep_rank`; ``ece`` holds calibration-error metrics and reliability
diagrams.  Only numpy, scipy, scikit-learn (and matplotlib for plots) are used.
"""

from .ece import (
    ReliabilityBins,
    ece,
    ece_by_group,
    mean_per_class_ece,
    per_class_ece,
    reliability_bins,
    reliability_diagram,
)
from .methods import (
    BBQ,
    EPS,
    BetaCalibration,
    Calibrator,
    HistogramBinning,
    IsotonicCalibration,
    NotFittedError,
    PlattScaling,
    TemperatureScaling,
    available_calibrators,
    calibrator_from_dict,
    keep_rank,
    logit,
    make_calibrator,
)

__all__ = [
    "BBQ",
    "EPS",
    "BetaCalibration",
    "Calibrator",
    "HistogramBinning",
    "IsotonicCalibration",
    "NotFittedError",
    "PlattScaling",
    "ReliabilityBins",
    "TemperatureScaling",
    "available_calibrators",
    "calibrator_from_dict",
    "ece",
    "ece_by_group",
    "keep_rank",
    "logit",
    "make_calibrator",
    "mean_per_class_ece",
    "per_class_ece",
    "reliability_bins",
    "reliability_diagram",
]
