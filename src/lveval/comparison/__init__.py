"""Comparing detectors: paired differences with bootstrap confidence intervals (``lveval compare``)."""
from .core import Comparison, compare, interval, verdict

__all__ = ["Comparison", "compare", "interval", "verdict"]
