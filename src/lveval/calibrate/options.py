"""Names and defaults shared by the calibration modules and the CLI (no heavy imports here)."""
from __future__ import annotations

#: Calibration IoU of Dave et al.'s scripts (configs/calib/base.yaml: TEST.IOU 0.75).
DEFAULT_IOU = 0.75

#: How classes share calibrators.
GROUPINGS = ("overall", "frequency", "per-class")

#: What a class absent from the calibration data, or without enough true positives there, gets.
POLICIES = ("zero", "keep", "by-frequency")

#: What ``apply`` does with a category the model was not fit with.
UNKNOWN_POLICIES = ("error", "keep", "zero")

#: True positives a class needs in the calibration data for a calibrator of its own.
DEFAULT_MIN_POSITIVES = 3

#: The methods of Table 8 of the paper, in its order.
TABLE8_METHODS = ("histogram", "bbq", "beta", "isotonic", "platt")
