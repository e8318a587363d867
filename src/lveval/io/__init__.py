"""Load and validate ground truth and detection results into columnar arrays."""
from .gt import GroundTruth, load_gt
from .results import Detections, load_results, write_results

__all__ = ["GroundTruth", "load_gt", "Detections", "load_results", "write_results"]
