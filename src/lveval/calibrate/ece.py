"""Expected calibration error (ECE) and reliability diagrams for detection scores.

In the detection setting of Dave et al. 2021 (Sec. 6.3, following Kueppers
et al., CVPR-W 2020) a detection with confidence s should be a true positive
s% of the time, so a "label" here is 1 for a true-positive detection and 0
otherwise.  ECE uses equal-width bins over [0, 1] (default 15), the same bins
as :class:`lveval.calibrate.methods.HistogramBinning`::

    ECE = sum_b (n_b / N) * |mean label in b - mean score in b|

Empty bins contribute nothing.  The per-class and per-group helpers exist
because the paper calibrates -- and so should evaluate calibration -- per
class, and reports results by LVIS frequency group (rare/common/frequent).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .methods import equal_width_bin_index

__all__ = [
    "ReliabilityBins",
    "reliability_bins",
    "ece",
    "per_class_ece",
    "mean_per_class_ece",
    "ece_by_group",
    "reliability_diagram",
]


@dataclass(frozen=True)
class ReliabilityBins:
    """Per-bin statistics: ``counts``, ``mean_score`` and ``frequency`` (NaN where empty)."""

    edges: np.ndarray
    counts: np.ndarray
    mean_score: np.ndarray
    frequency: np.ndarray

    @property
    def ece(self) -> float:
        n = self.counts.sum()
        occupied = self.counts > 0
        gaps = np.abs(self.frequency[occupied] - self.mean_score[occupied])
        return float(np.sum(self.counts[occupied] * gaps) / n)


def _inputs(scores: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    if s.ndim != 1 or s.shape != y.shape:
        raise ValueError("scores and labels must be 1-D arrays of the same length")
    if s.size == 0:
        raise ValueError("ECE is undefined for zero samples")
    if not np.all(np.isfinite(s)):
        raise ValueError("scores must be finite")
    if not np.all((y == 0.0) | (y == 1.0)):
        raise ValueError("labels must be 0/1")
    return np.clip(s, 0.0, 1.0), y


def reliability_bins(scores: Any, labels: Any, n_bins: int = 15) -> ReliabilityBins:
    """Bin scores into ``n_bins`` equal-width bins and return counts, mean score and label frequency."""
    s, y = _inputs(scores, labels)
    idx = equal_width_bin_index(s, n_bins)
    counts = np.bincount(idx, minlength=n_bins)
    sum_s = np.bincount(idx, weights=s, minlength=n_bins)
    sum_y = np.bincount(idx, weights=y, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_s = np.where(counts > 0, sum_s / counts, np.nan)
        freq = np.where(counts > 0, sum_y / counts, np.nan)
    return ReliabilityBins(np.linspace(0.0, 1.0, n_bins + 1), counts, mean_s, freq)


def ece(scores: Any, labels: Any, n_bins: int = 15) -> float:
    """Expected calibration error over all samples (equal-width bins, weighted by bin count)."""
    return reliability_bins(scores, labels, n_bins).ece


def per_class_ece(scores: Any, labels: Any, class_ids: Any, n_bins: int = 15) -> dict[Any, float]:
    """ECE of each class separately: ``{class_id: ece}`` for every class that has samples."""
    s, y = _inputs(scores, labels)
    c = np.asarray(class_ids)
    if c.shape != s.shape:
        raise ValueError("class_ids must have the same length as scores")
    classes, inverse = np.unique(c, return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    bounds = np.searchsorted(inverse[order], np.arange(classes.size + 1))
    out: dict[Any, float] = {}
    for k, cls in enumerate(classes):
        sel = order[bounds[k] : bounds[k + 1]]
        out[cls.item() if hasattr(cls, "item") else cls] = ece(s[sel], y[sel], n_bins)
    return out


def mean_per_class_ece(scores: Any, labels: Any, class_ids: Any, n_bins: int = 15) -> float:
    """Unweighted mean over classes of the per-class ECE (each class counts once, like AP)."""
    return float(np.mean(list(per_class_ece(scores, labels, class_ids, n_bins).values())))


def ece_by_group(
    scores: Any, labels: Any, groups: Any, class_ids: Any = None, n_bins: int = 15
) -> dict[Any, float]:
    """ECE per group (e.g. LVIS frequency 'r'/'c'/'f'), one entry per group present.

    ``groups`` gives each sample's group.  Without ``class_ids`` the ECE of all
    samples of the group pooled together is returned; with ``class_ids`` the
    mean per-class ECE over the classes of that group.
    """
    s, y = _inputs(scores, labels)
    g = np.asarray(groups)
    if g.shape != s.shape:
        raise ValueError("groups must have the same length as scores")
    c = None if class_ids is None else np.asarray(class_ids)
    if c is not None and c.shape != s.shape:
        raise ValueError("class_ids must have the same length as scores")
    out: dict[Any, float] = {}
    for grp in np.unique(g):
        sel = g == grp
        key = grp.item() if hasattr(grp, "item") else grp
        if c is None:
            out[key] = ece(s[sel], y[sel], n_bins)
        else:
            out[key] = mean_per_class_ece(s[sel], y[sel], c[sel], n_bins)
    return out


def reliability_diagram(
    scores: Any,
    labels: Any,
    path: str | os.PathLike[str],
    n_bins: int = 15,
    title: str | None = None,
    inside: str | None = None,
) -> ReliabilityBins | dict[str, ReliabilityBins]:
    """Write a reliability diagram PNG and return the bin statistics.

    ``scores`` is one array, or a mapping ``{name: scores}`` to compare several
    calibrations of the same detections (e.g. uncalibrated vs. Platt) on one
    figure.  Top panel: positive frequency per bin against the bin's mean
    score, the identity line, and the ECE in the legend; bottom panel: number
    of samples per bin (log scale when counts span a wide range).  Uses matplotlib's Agg backend, so it needs
    no display.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    series: dict[str, Any]
    single = not isinstance(scores, Mapping)
    series = {"scores": scores} if single else dict(scores)
    if not series:
        raise ValueError("no scores to plot")
    stats = {name: reliability_bins(sc, labels, n_bins) for name, sc in series.items()}

    fig = Figure(figsize=(6.4, 7.2), dpi=120)
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(2, 1, height_ratios=(3, 1.2), hspace=0.08)
    ax = fig.add_subplot(grid[0])
    axc = fig.add_subplot(grid[1], sharex=ax)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    width = 1.0 / n_bins
    k = len(stats)
    ax.plot([0, 1], [0, 1], linestyle="--", color="0.4", linewidth=1.2, label="perfect calibration")
    colors = matplotlib.colormaps["tab10"].colors
    for i, (name, st) in enumerate(stats.items()):
        color = colors[i % len(colors)]
        occ = st.counts > 0
        label = f"{name} (ECE {st.ece:.3f})" if not single else f"positive frequency (ECE {st.ece:.3f})"
        if k == 1:
            ax.bar(edges[:-1][occ], st.frequency[occ], width=width, align="edge", color=color, alpha=0.55,
                   edgecolor="black", linewidth=0.6, label=label)
            ax.plot(st.mean_score[occ], st.frequency[occ], "o", color="black", markersize=3.5,
                    label="bin mean score vs. frequency")
        else:
            ax.plot(st.mean_score[occ], st.frequency[occ], "o-", color=color, markersize=4, linewidth=1.5,
                    label=label)
        sub = width / k
        axc.bar(edges[:-1] + i * sub, st.counts, width=sub, align="edge", color=color, alpha=0.8,
                edgecolor="black", linewidth=0.4, label=name if k > 1 else None)
    ax.set_xlim(0.0, 1.0)
    ax.set_ylim(0.0, 1.02)
    ax.set_ylabel("fraction of true positives")
    ax.set_title(title or "Reliability diagram")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", fontsize=9, framealpha=0.9)
    ax.tick_params(labelbottom=False)
    axc.set_xlabel(f"confidence score ({n_bins} equal-width bins)")
    axc.set_ylabel("detections per bin")
    positive = np.concatenate([st.counts[st.counts > 0] for st in stats.values()])
    if positive.size and positive.max() > 50 * positive.min():  # log only for a wide range
        from matplotlib.ticker import FuncFormatter, NullFormatter

        axc.set_yscale("log")
        axc.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        axc.yaxis.set_minor_formatter(NullFormatter())
    axc.grid(True, axis="y", alpha=0.3)
    if k > 1:
        axc.legend(loc="upper center", fontsize=8, ncol=min(k, 4), framealpha=0.9)
    from ..atomic import atomic_write

    # the safe writer (``inside``: the output directory, where symbolic links are refused)
    with atomic_write(os.fspath(path), "wb", inside=inside) as f:
        fig.savefig(f, format="png", bbox_inches="tight")
    return next(iter(stats.values())) if single else stats
