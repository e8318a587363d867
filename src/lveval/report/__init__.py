"""Self-contained HTML report of an evaluation (``lveval report GT RESULTS --out DIR``)."""
from .build import build_report, render

__all__ = ["build_report", "render"]
