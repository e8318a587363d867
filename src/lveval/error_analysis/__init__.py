"""TIDE-style error analysis for large vocabularies (``lveval errors``).

``lveval.errors(gt, results)`` returns an :class:`ErrorReport`: per selection
(AP-Fixed's per-class top K, AP-Old's per-image cap) the AP50 each error type
costs, per frequency group and class, and the most costly class confusions.
"""
from .assign import BKG_THR, POS_THR, TYPES, Assignment, assign
from .core import SELECTIONS, ErrorReport, analyze, errors

__all__ = ["TYPES", "POS_THR", "BKG_THR", "SELECTIONS", "Assignment", "ErrorReport", "assign", "analyze",
           "errors"]
