"""Figures of the HTML report, drawn with matplotlib (Agg, no display) and embedded as base64 PNG."""
from __future__ import annotations

import base64
import io

import numpy as np

COLORS = {"old": "#8c96a8", "fixed": "#2f6fdb", "pooled": "#e07b24"}
LABELS = {"old": "AP-Old", "fixed": "AP-Fixed", "pooled": "AP-Pool"}
FREQ_COLORS = {"r": "#b03a2e", "c": "#d39a1c", "f": "#1e7b34"}
FREQ_NAMES = {"r": "rare", "c": "common", "f": "frequent"}


def _figure(w: float, h: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(w, h), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def png_data_uri(fig) -> str:
    """The figure as a ``data:image/png;base64,...`` URI."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def frequency_bars(result) -> str | None:
    """Grouped bars: APr / APc / APf (and overall AP) of each protocol."""
    protos = [p for p in ("old", "fixed", "pooled") if getattr(result, p)]
    keys = [k for k in ("AP", "APr", "APc", "APf") if any(k in getattr(result, p) for p in protos)]
    if not protos:
        return None
    fig = _figure(8.5, 3.8)
    ax = fig.add_subplot(1, 1, 1)
    x = np.arange(len(keys))
    w = 0.8 / len(protos)
    for i, p in enumerate(protos):
        vals = [100 * getattr(result, p).get(k, -1) for k in keys]
        vals = [v if v >= 0 else np.nan for v in vals]
        bars = ax.bar(x + (i - (len(protos) - 1) / 2) * w, vals, w, label=LABELS[p], color=COLORS[p])
        for b, v in zip(bars, vals):
            if np.isfinite(v):
                ax.annotate(f"{v:.1f}", (b.get_x() + b.get_width() / 2, v), ha="center", va="bottom",
                            fontsize=8, xytext=(0, 2), textcoords="offset points")
    names = {"AP": "all classes", "APr": "rare (APr)", "APc": "common (APc)", "APf": "frequent (APf)"}
    ax.set_xticks(x, [names[k] for k in keys])
    ax.set_ylabel("AP (%)")
    top = np.nanmax([100 * getattr(result, p).get(k, -1) for p in protos for k in keys] + [1.0])
    ax.set_ylim(0, top * 1.12)
    ax.legend(frameon=False, ncol=len(protos), loc="lower center", bbox_to_anchor=(0.5, 1.0))
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    ax.spines[["top", "right"]].set_visible(False)
    return png_data_uri(fig)


def _mean_curve(prec: np.ndarray, t: int | None) -> np.ndarray | None:
    """Mean precision over classes with ground truth (area 'all'); ``t`` None averages IoU thresholds."""
    p = prec[:, :, :, 0]
    valid = (p > -1).all(axis=(0, 1))
    if not valid.any():
        return None
    p = p[:, :, valid]
    return p.mean(axis=(0, 2)) if t is None else p[t].mean(axis=1)


def pr_curves(result) -> str | None:
    """Precision-recall: one panel per protocol (class-averaged curves; pooled curves for AP-Pool)."""
    protos = [p for p in ("old", "fixed") if p in result.precision]
    has_pool = bool(result.pooled_precision)
    n = len(protos) + int(has_pool)
    if n == 0:
        return None
    rec = result.params.rec_thrs
    thr = result.params.iou_thrs
    t50 = int(np.flatnonzero(np.isclose(thr, 0.5))[0]) if np.isclose(thr, 0.5).any() else 0
    fig = _figure(4.2 * n, 3.8)
    for i, p in enumerate(protos):
        ax = fig.add_subplot(1, n, i + 1)
        for t, style, lbl in ((t50, "-", "IoU 0.50"), (None, "--", "IoU 0.50:0.95")):
            c = _mean_curve(result.precision[p], t)
            if c is not None:
                ax.plot(rec, c, style, color=COLORS[p], label=lbl)
        ax.set_title(f"{LABELS[p]}: mean over classes", fontsize=11)
        _pr_axes(ax)
    if has_pool:
        ax = fig.add_subplot(1, n, n)
        for pool, color in (("all", COLORS["pooled"]), ("r", FREQ_COLORS["r"]), ("c", FREQ_COLORS["c"]),
                            ("f", FREQ_COLORS["f"])):
            q = result.pooled_precision.get(pool)
            if q is not None:
                ax.plot(rec, q[t50], color=color, label=f"{pool} (IoU 0.50)", lw=2 if pool == "all" else 1.2)
        ax.set_title("AP-Pool: one curve per pool", fontsize=11)
        _pr_axes(ax)
    fig.tight_layout()
    return png_data_uri(fig)


def _pr_axes(ax) -> None:
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(frameon=False, fontsize=8, loc="best")
    else:
        ax.text(0.5, 0.5, "no ground truth", ha="center", va="center", color="0.5", transform=ax.transAxes)
    ax.spines[["top", "right"]].set_visible(False)


def class_pr_curves(result, cat_indices: list) -> str | None:
    """Precision-recall of chosen classes: AP-Old vs AP-Fixed at IoU 0.50."""
    protos = [p for p in ("old", "fixed") if p in result.precision]
    if not cat_indices or not protos:
        return None
    rec = result.params.rec_thrs
    thr = result.params.iou_thrs
    t50 = int(np.flatnonzero(np.isclose(thr, 0.5))[0]) if np.isclose(thr, 0.5).any() else 0
    n = len(cat_indices)
    cols = min(n, 4)
    rows = (n + cols - 1) // cols
    fig = _figure(3.6 * cols, 3.2 * rows)
    gt = result.gt
    for i, k in enumerate(cat_indices):
        ax = fig.add_subplot(rows, cols, i + 1)
        for p in protos:
            q = result.precision[p][t50, :, k, 0]
            if (q > -1).all():
                ap = result.precision[p][:, :, k, 0].mean()
                ax.plot(rec, q, color=COLORS[p], label=f"{LABELS[p]} (AP {100 * ap:.1f})")
        freq = str(gt.cat_freq[k])
        ax.set_title(f"{gt.cat_names[k]}" + (f" [{freq}]" if freq else ""), fontsize=10)
        _pr_axes(ax)
    fig.tight_layout()
    return png_data_uri(fig)


def score_distributions(scores: np.ndarray, freq: np.ndarray, tp: np.ndarray | None,
                        tp_scores: np.ndarray | None) -> str | None:
    """Left: score histograms per frequency group (as the paper's Fig. 3); right: TP vs FP at IoU 0.50."""
    if len(scores) == 0:
        return None
    hi = max(1.0, float(scores.max()))
    bins = np.linspace(0, hi, 41)
    panels = 2 if tp is not None and len(tp) else 1
    fig = _figure(5.2 * panels, 3.6)
    ax = fig.add_subplot(1, panels, 1)
    groups = [g for g in ("r", "c", "f") if (freq == g).any()]
    if groups:
        for g in groups:
            s = scores[freq == g]
            ax.hist(s, bins=bins, density=True, histtype="step", lw=1.8, color=FREQ_COLORS[g],
                    label=f"{FREQ_NAMES[g]} ({len(s):,})")
    else:
        ax.hist(scores, bins=bins, density=True, histtype="step", lw=1.8, color=COLORS["fixed"],
                label=f"all ({len(scores):,})")
    ax.set_yscale("log")
    ax.set_xlabel("detection score")
    ax.set_ylabel("density (log)")
    ax.set_title("Scores of the evaluated detections", fontsize=11)
    ax.legend(frameon=False, fontsize=8)
    ax.spines[["top", "right"]].set_visible(False)
    if panels == 2:
        ax = fig.add_subplot(1, 2, 2)
        ax.hist(tp_scores[tp], bins=bins, histtype="stepfilled", alpha=0.55, color="#1e7b34",
                label=f"true positives ({int(tp.sum()):,})")
        ax.hist(tp_scores[~tp], bins=bins, histtype="step", lw=1.6, color="#b03a2e",
                label=f"false positives ({int((~tp).sum()):,})")
        ax.set_yscale("log")
        ax.set_xlabel("detection score")
        ax.set_ylabel("detections (log)")
        ax.set_title("True vs false positives (IoU 0.50)", fontsize=11)
        ax.legend(frameon=False, fontsize=8)
        ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    return png_data_uri(fig)
