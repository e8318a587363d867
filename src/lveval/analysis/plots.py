"""PNG figures of the analyses (matplotlib, Agg backend; values in percent)."""
from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from ..atomic import atomic_write
from .results import BudgetRow, CapRow, NmsResult, RerankRow, ScoreStats, SubsetsResult

KEYS = ("AP", "APr", "APc", "APf")
COLORS = {"AP": "#222222", "APr": "#d62728", "APc": "#ff7f0e", "APf": "#1f77b4"}
NAMES = {"AP": "AP (all classes)", "APr": "APr (rare)", "APc": "APc (common)", "APf": "APf (frequent)"}
PROTO_COLORS = {"AP-Old": "#7f7f7f", "AP-Fixed": "#2ca02c", "AP-Pool": "#9467bd"}


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    plt.rcParams.update({"font.size": 10, "axes.titlesize": 11, "axes.grid": True, "grid.alpha": 0.3,
                         "text.parse_math": False})   # labels are data (class names), not TeX
    return plt


def _save(fig, path: str) -> None:
    """Plots go into directories lveval fills: symbolic links there are refused (see atomic_write)."""
    import matplotlib.pyplot as plt

    try:
        with atomic_write(path, "wb", inside=os.path.dirname(path) or ".") as f:
            fig.savefig(f, format="png", dpi=120, bbox_inches="tight")
    finally:
        plt.close(fig)


def _legend_below(ax, handles=None, labels=None) -> None:
    """Legend under the axes, where it cannot hide a curve."""
    if handles is None:
        handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(handles, labels, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.28), ncol=2,
                  frameon=False)


def _pct(v):
    return np.nan if v is None or v < 0 else 100.0 * v


def _xpos(limits):
    """x positions on a log axis; 'no limit' (None) goes one step right of the largest finite one."""
    fin = [v for v in limits if v is not None]
    top = max(fin) if fin else 1
    return [v if v is not None else top * 3 for v in limits]


def _limit_ticks(ax, limits):
    xs = _xpos(limits)
    ax.set_xscale("log")
    ax.set_xticks(xs)
    ax.set_xticklabels(["no limit" if v is None else f"{v:,}" for v in limits], rotation=30)
    ax.minorticks_off()


def _keys(d: dict):
    return [k for k in KEYS if k in d]


def plot_cap_sweep(rows: Sequence[CapRow], fixed: dict | None, path: str) -> None:
    """AP-Old vs per-image cap (AP-Fixed as dashed reference) and AP-Pool vs per-image cap."""
    plt = _plt()
    caps = [r.cap for r in rows]
    xs = _xpos(caps)
    has_pool = all(r.pooled is not None for r in rows)
    fig, axes = plt.subplots(1, 2 if has_pool else 1, figsize=(11 if has_pool else 6, 4.2), squeeze=False)
    ax = axes[0, 0]
    for k in _keys(rows[0].old):
        ax.plot(xs, [_pct(r.old[k]) for r in rows], "o-", color=COLORS[k], label=f"AP-Old {NAMES[k]}")
        if fixed and k in fixed and fixed[k] >= 0:
            ax.axhline(_pct(fixed[k]), color=COLORS[k], ls="--", lw=1, alpha=0.8)
    if fixed:
        ax.plot([], [], "k--", lw=1, label="AP-Fixed (same colour; no per-image cap)")
    _limit_ticks(ax, caps)
    ax.set_xlabel("detections per image (AP-Old's cap)")
    ax.set_ylabel("AP (%)")
    ax.set_title("AP-Old vs the per-image cap")
    _legend_below(ax)
    if has_pool:
        ax = axes[0, 1]
        for k in _keys(rows[0].pooled or {}):
            ax.plot(xs, [_pct((r.pooled or {})[k]) for r in rows], "s-", color=COLORS[k], label=f"AP-Pool {NAMES[k]}")
        _limit_ticks(ax, caps)
        ax.set_xlabel("detections per image")
        ax.set_ylabel("AP-Pool (%)")
        ax.set_title("AP-Pool vs the per-image cap")
        _legend_below(ax)
    fig.tight_layout()
    _save(fig, path)


def plot_budget_sweep(rows: Sequence[BudgetRow], path: str, class_counts: np.ndarray | None = None) -> None:
    """AP-Fixed vs the per-class budget (and how many classes reach each budget)."""
    plt = _plt()
    ks = [r.k for r in rows]
    xs = _xpos(ks)
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for k in _keys(rows[0].fixed):
        ax.plot(xs, [_pct(r.fixed[k]) for r in rows], "o-", color=COLORS[k], label=f"AP-Fixed {NAMES[k]}")
    _limit_ticks(ax, ks)
    ax.set_xlabel("detections per class over the whole set (AP-Fixed's budget)")
    ax.set_ylabel("AP-Fixed (%)")
    ax.set_title("AP-Fixed vs the per-class budget")
    if class_counts is not None:
        ax2 = ax.twinx()
        ax2.grid(False)
        reach = [int((class_counts >= k).sum()) if k is not None else 0 for k in ks]
        ax2.bar(xs, reach, width=[x * 0.25 for x in xs], color="#bbbbbb", alpha=0.5,
                label="classes with at least that many detections")
        ax2.set_ylabel("classes reaching the budget")
        ax2.set_ylim(0, max(1, max(reach)) * 1.15)
        from matplotlib.ticker import MaxNLocator
        ax2.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax2.set_zorder(ax.get_zorder() - 1)
        ax.patch.set_visible(False)
        h1, l1 = ax.get_legend_handles_labels()
        h2, l2 = ax2.get_legend_handles_labels()
        _legend_below(ax, h1 + h2, l1 + l2)
    else:
        _legend_below(ax)
    fig.tight_layout()
    _save(fig, path)


def plot_protocols(old: dict, fixed: dict, pooled: dict | None, path: str, labels: dict | None = None) -> None:
    """AP-Old, AP-Fixed and AP-Pool side by side for all, rare, common and frequent classes."""
    plt = _plt()
    protos = [("AP-Old", old), ("AP-Fixed", fixed)] + ([("AP-Pool", pooled)] if pooled else [])
    keys = [k for k in KEYS if all(k in d for _, d in protos)]
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    w = 0.8 / len(protos)
    x = np.arange(len(keys))
    for i, (name, d) in enumerate(protos):
        vals = [_pct(d[k]) for k in keys]
        lab = (labels or {}).get(name, name)
        bars = ax.bar(x + (i - (len(protos) - 1) / 2) * w, np.nan_to_num(vals), w, label=lab,
                      color=PROTO_COLORS[name])
        for b, v in zip(bars, vals):
            ax.annotate("-" if np.isnan(v) else f"{v:.1f}", (b.get_x() + b.get_width() / 2, b.get_height()),
                        ha="center", va="bottom", fontsize=8)
    ax.set_xticks(x)
    ax.set_xticklabels([NAMES[k] for k in keys])
    ax.set_ylabel("AP (%)")
    ax.set_title("The three protocols")
    ax.legend(fontsize=8)
    ax.set_ylim(0, max(5.0, np.nanmax([_pct(d[k]) for _, d in protos for k in keys] + [0]) * 1.18))
    fig.tight_layout()
    _save(fig, path)


def plot_rerank(grid: Sequence[RerankRow], before: dict, path: str, cap: int | None = None) -> None:
    """AP-Old and AP-Fixed after the gaming policy vs its per-class budget K, with the 'before' values
    (``before``: summaries keyed ``old`` and ``fixed``)."""
    plt = _plt()
    ks = [r.per_class for r in grid]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=False)
    for ax, proto, name in ((axes[0], "old", "AP-Old"), (axes[1], "fixed", "AP-Fixed")):
        for k in _keys(before[proto]):
            ax.plot(ks, [_pct(getattr(r, proto)[k]) for r in grid], "o-", color=COLORS[k], label=f"after: {NAMES[k]}")
            if before[proto][k] >= 0:
                ax.axhline(_pct(before[proto][k]), color=COLORS[k], ls="--", lw=1, alpha=0.8)
        ax.plot([], [], "k--", lw=1, label="before re-ranking (same colour)")
        ax.set_xscale("log")
        ax.set_xticks(ks)
        ax.set_xticklabels([f"{k:,}" for k in ks])
        ax.minorticks_off()
        ax.set_xlabel("K: detections kept per class over the set (gaming policy)")
        ax.set_ylabel(f"{name} (%)")
        ax.set_title(f"{name} after keeping the top K per class" + (f", then {cap}/image" if cap else ""))
        _legend_below(ax)
    fig.tight_layout()
    _save(fig, path)


def plot_scores(stats: ScoreStats, path: str) -> None:
    """Normalised mean score per frequency group (paper Figure 3) and the score histograms."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    ax = axes[0]
    sels = [("fixed", "top K per class (AP-Fixed)"), ("old", "top N per image (AP-Old)"), ("all", "all detections")]
    groups = ("r", "c", "f")
    gname = {"r": "rare", "c": "common", "f": "frequent"}
    w = 0.8 / len(sels)
    x = np.arange(len(groups))
    for i, (key, lab) in enumerate(sels):
        vals = [stats.selections[key][f].normalised_mean for f in groups]
        vals = [np.nan if v is None else v for v in vals]
        bars = ax.bar(x + (i - 1) * w, np.nan_to_num(vals), w, label=lab, alpha=0.9)
        for b, v in zip(bars, vals):
            ax.annotate("-" if np.isnan(v) else f"{v:.2f}", (b.get_x() + b.get_width() / 2, b.get_height()),
                        ha="center", va="bottom", fontsize=8)
    ax.axhline(1.0, color="k", lw=0.8, ls=":")
    ax.set_xticks(x)
    ax.set_xticklabels([gname[f] for f in groups])
    ax.set_ylabel("mean score / mean score of frequent classes")
    ax.set_title("Score by frequency group (frequent = 1.0)")
    ax.legend(fontsize=8)
    ax = axes[1]
    h = stats.histogram
    edges = np.asarray(h.edges)
    for f in groups:
        c = np.asarray(h.counts[f], float)
        if c.sum() == 0:
            continue
        dens = c / c.sum() / np.diff(edges)
        ax.step(edges[:-1], dens, where="post", color=COLORS["AP" + f], label=f"{gname[f]} ({int(c.sum()):,} dets)")
    ax.set_xlabel("detection score")
    ax.set_ylabel("density")
    ax.set_title("Score histograms, top K per class (AP-Fixed)")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    fig.tight_layout()
    _save(fig, path)


def plot_subsets(res: SubsetsResult, path: str) -> None:
    """AP at a low and a high per-image cap on each class subset (paper Table 3)."""
    plt = _plt()
    rows = res.subsets
    caps = list(rows[0].AP.keys())
    fig, ax = plt.subplots(figsize=(8, 4.2))
    x = np.arange(len(rows))
    w = 0.8 / len(caps)
    for i, c in enumerate(caps):
        vals = [_pct(r.AP[c]) for r in rows]
        ax.bar(x + (i - (len(caps) - 1) / 2) * w, np.nan_to_num(vals), w,
               label=f"AP at {'no cap' if c == 'inf' else c + ' dets/image'}")
    ax.set_xticks(x)
    ax.set_xticklabels([f"{r.subset}\n{r.num_classes} cl." for r in rows])
    ax.set_xlabel("class subset (results and ground truth restricted to it)")
    ax.set_ylabel("AP (%)")
    ax.set_title("Per-image cap on class subsets")
    ax.legend(fontsize=8)
    fig.tight_layout()
    _save(fig, path)


def plot_nms(res: NmsResult, path: str) -> None:
    """AP-Old and AP-Fixed (AP and APr) vs the NMS IoU threshold (paper Table 12)."""
    plt = _plt()
    rows = sorted((r for r in res.rows if r.threshold is not None), key=lambda r: r.threshold or 0.0)
    raw = [r for r in res.rows if r.threshold is None]
    ts = [r.threshold for r in rows]
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for proto, name, ls in (("old", "AP-Old", "-"), ("fixed", "AP-Fixed", "--")):
        for k in [k for k in ("AP", "APr") if k in getattr(rows[0], proto)]:
            ax.plot(ts, [_pct(getattr(r, proto)[k]) for r in rows], "o" + ls, color=COLORS[k],
                    label=f"{name} {NAMES[k]}")
            if raw:
                ax.scatter([1.02], [_pct(getattr(raw[0], proto)[k])], marker="x", color=COLORS[k])
    ax.set_xlabel("class-wise NMS IoU threshold" + (" (x at right: no NMS)" if raw else ""))
    ax.set_ylabel("AP (%)")
    ax.set_title("NMS threshold: AP-Old vs AP-Fixed")
    _legend_below(ax)
    fig.tight_layout()
    _save(fig, path)
