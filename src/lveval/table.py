"""Plain-text tables of evaluation figures for the terminal."""
from __future__ import annotations

from .params import PROTOCOLS, protocol_label

OLD_KEYS = ("AP", "AP50", "AP75", "APs", "APm", "APl", "APr", "APc", "APf", "AR")


def fmt(v) -> str:
    return "   -  " if v is None or v < 0 else f"{100 * v:6.2f}"


def protocol_table(result) -> str:
    """AP-Old, AP-Fixed and AP-Pool side by side, in percent."""
    p = result.params
    rows = []
    labels = {q: protocol_label(q, p) for q in PROTOCOLS}
    keys = [k for k in OLD_KEYS if any(k in (getattr(result, q) or {}) for q in ("old", "fixed", "pooled"))]
    width = max(len(v) for v in labels.values()) + 1
    rows.append(" " * width + "".join(f"{k:>7}" for k in keys))
    for q in ("old", "fixed", "pooled"):
        d = getattr(result, q)
        if d is None:
            continue
        rows.append(f"{labels[q]:<{width}}" + "".join(f" {fmt(d.get(k))}" if k in d else "       " for k in keys))
    head = result.headline() if hasattr(result, "headline") else None
    if head is not None:   # a challenge preset: its official figure first
        rows.insert(0, f"{head[0]}: AP = {fmt(head[1]).strip()}\n")
    return "\n".join(rows)


def notices_text(notices) -> str:
    lines = []
    plural = lambda v: "record" if v == 1 else "records"
    for k, v in notices.skipped.items():
        lines.append(f"skipped: {v} {plural(v)} ({k})")
    for k, v in notices.flagged.items():
        lines.append(f"note: {v} {plural(v)} ({k})")
    for w in notices.warnings:
        lines.append(f"warning: {w}")
    return "\n".join(lines)
