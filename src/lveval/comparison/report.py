"""Text table, figures and the self-contained HTML page of a comparison (uses the report's style)."""
from __future__ import annotations

import html
import os

import numpy as np

from .. import __version__
from ..atomic import atomic_write
from ..report.build import _asset, _section
from ..report.figures import (
    COLORS,
    FREQ_COLORS,
    FREQ_NAMES,
    LABELS,
    _figure,
    png_data_uri,
)

KEYS = ("AP", "APr", "APc", "APf")
NAMES = {"old": "AP-Old", "fixed": "AP-Fixed", "pooled": "AP-Pool"}


def _pts(v) -> str:
    return "-" if v is None or v < 0 else f"{100 * v:.2f}"


def _delta(f: dict | None) -> str:
    if not f or f.get("delta") is None:
        return "-"
    s = f"{100 * f['delta']:+.2f}"
    if f.get("low") is not None:
        s += f" [{100 * f['low']:+.2f}, {100 * f['high']:+.2f}]"
    return s


def _keys(c: dict, proto: str) -> list:
    m = c["models"][0].get(proto) or {}
    return [k for k in KEYS if k in m]


def text_table(c: dict) -> str:
    """Each model's AP/APr/APc/APf per protocol, then each difference with its interval (points)."""
    conf = c["bootstrap"]["confidence"]
    lines = []
    for proto in ("old", "fixed", "pooled"):
        if proto not in c["models"][0]:
            continue
        keys = _keys(c, proto)
        w = max(12, max(len(m["name"]) for m in c["models"]) + 4)
        lines.append(f"{NAMES[proto]:<{w}}" + "".join(f"{k:>26}" for k in keys))
        for i, m in enumerate(c["models"]):
            lines.append(f"{m['name']:<{w}}" + "".join(f"{_pts(m[proto].get(k)):>26}" for k in keys))
            if i:
                d = c["differences"][i - 1][proto]
                lines.append(f"{'  - ' + c['models'][0]['name']:<{w}}" + "".join(f"{_delta(d.get(k)):>26}" for k in keys))
        lines.append("")
    reps = c["bootstrap"]["replicates"]
    lines.append(f"Differences in points; [{100 * conf:g}% paired bootstrap interval over images, {reps} replicates, "
                 f"seed {c['bootstrap']['seed']}]")
    for d in c["differences"]:
        ch = d.get("per_class", {}).get("changed", {})
        parts = [f"{FREQ_NAMES.get(f, 'all')}: {len(v['up'])} up, {len(v['down'])} down" for f, v in ch.items()]
        lines.append(f"{d['name']} vs {d['baseline']}: {d['verdict_text']} ({d['verdict']})"
                     + (f"; classes beyond their own interval (AP-Fixed) - {'; '.join(parts)}" if parts else ""))
    return "\n".join(lines)


def difference_bars(c: dict) -> str | None:
    """Bars with error bars: each model's difference to the baseline per frequency group and protocol."""
    diffs = c["differences"]
    protos = [p for p in ("old", "fixed", "pooled") if p in c["models"][0]]
    if not diffs or not protos:
        return None
    fig = _figure(4.2 * len(diffs), 3.6)
    for j, d in enumerate(diffs):
        ax = fig.add_subplot(1, len(diffs), j + 1)
        keys = _keys(c, "fixed" if "fixed" in protos else protos[0])
        x = np.arange(len(keys))
        w = 0.8 / len(protos)
        for i, p in enumerate(protos):
            vals, lo, hi = [], [], []
            for k in keys:
                f = d[p].get(k) or {}
                v = f.get("delta")
                vals.append(np.nan if v is None else 100 * v)
                lo.append(0 if f.get("low") is None or v is None else 100 * (v - f["low"]))
                hi.append(0 if f.get("high") is None or v is None else 100 * (f["high"] - v))
            ax.bar(x + (i - (len(protos) - 1) / 2) * w, vals, w, yerr=[np.maximum(lo, 0), np.maximum(hi, 0)],
                   capsize=3, label=LABELS[p], color=COLORS[p], error_kw={"lw": 1})
        ax.axhline(0, color="#444", lw=0.8)
        ax.set_xticks(x, keys)
        ax.set_title(f"{d['name']} - {d['baseline']}", fontsize=10)
        ax.set_ylabel("difference (points)")
        ax.spines[["top", "right"]].set_visible(False)
        if j == 0:
            ax.legend(frameon=False, fontsize=8)
    return png_data_uri(fig)


def class_plot(d: dict) -> str | None:
    """Per-class AP-Fixed differences (sorted) with their intervals, coloured by frequency group."""
    rows = d.get("per_class", {}).get("classes", [])
    if not rows:
        return None
    rows = sorted(rows, key=lambda r: (r["delta"], r["category_id"]))
    x = np.arange(len(rows))
    v = np.array([100 * r["delta"] for r in rows])
    lo = np.array([100 * r["low"] if r["low"] is not None else np.nan for r in rows])
    hi = np.array([100 * r["high"] if r["high"] is not None else np.nan for r in rows])
    fig = _figure(9.0, 3.4)
    ax = fig.add_subplot(1, 1, 1)
    for f, col in list(FREQ_COLORS.items()) + [("", "#777")]:
        sel = np.array([r["frequency"] == f for r in rows])
        if sel.any():
            ax.vlines(x[sel], lo[sel], hi[sel], color=col, alpha=0.35, lw=1)
            ax.scatter(x[sel], v[sel], s=6, color=col, label=FREQ_NAMES.get(f, "classes"))
    ax.axhline(0, color="#444", lw=0.8)
    ax.set_xlabel("classes with ground truth, sorted by difference")
    ax.set_ylabel("AP-Fixed difference (points)")
    ax.set_title(f"{d['name']} - {d['baseline']}, per class", fontsize=10)
    ax.legend(frameon=False, fontsize=8, markerscale=2)
    ax.spines[["top", "right"]].set_visible(False)
    return png_data_uri(fig)


def _cell(m: dict, d: dict | None, k: str) -> str:
    """A value, and for a model after the baseline its difference and interval; green (red) when the
    interval lies above (below) 0 (the report's td.pos / td.neg)."""
    v = m.get(k)
    s = "&ndash;" if v is None or v < 0 else f"{100 * v:.2f}"
    cls = ""
    if d is not None and d.get(k) and d[k].get("delta") is not None:
        f = d[k]
        if f["low"] is not None:
            cls = "pos" if f["low"] > 0 else ("neg" if f["high"] < 0 else "")
        iv = "" if f["low"] is None else f"<br><small>[{100 * f['low']:+.2f}, {100 * f['high']:+.2f}]</small>"
        s += f" ({100 * f['delta']:+.2f}){iv}"
    return f'<td class="{cls}">{s}</td>' if cls else f"<td>{s}</td>"


def table4(c: dict) -> str:
    """The paper's Table 4 layout: one row per model, AP/APr/APc/APf per protocol, differences with intervals."""
    protos = [p for p in ("old", "fixed", "pooled") if p in c["models"][0]]
    head = "".join(f'<th colspan="{len(_keys(c, p))}">{NAMES[p]}</th>' for p in protos)
    sub = "".join(f"<th>{k}</th>" for p in protos for k in _keys(c, p))
    body = []
    for i, m in enumerate(c["models"]):
        d = c["differences"][i - 1] if i else None
        cells = "".join(_cell(m[p], d[p] if d else None, k) for p in protos for k in _keys(c, p))
        verdict = f"{html.escape(d['verdict_text'])}" if d else "baseline"
        body.append(f"<tr><td>{html.escape(m['name'])}</td>{cells}<td>{verdict}</td></tr>")
    return (f'<div class="scroll"><table><thead><tr><th rowspan="2">model</th>{head}<th rowspan="2">verdict</th></tr>'
            f"<tr>{sub}</tr></thead><tbody>{''.join(body)}</tbody></table></div>")


def _changed(d: dict) -> str:
    ch = d.get("per_class", {}).get("changed", {})
    items = []
    for f, v in ch.items():
        for key, word in (("up", "gained"), ("down", "lost")):
            names = v[key]
            if names:
                items.append(f"<li>{FREQ_NAMES.get(f, 'classes')}: {len(names)} {word} "
                             f"({html.escape(', '.join(names[:20]))}{', ...' if len(names) > 20 else ''})</li>")
    return "<ul>" + "".join(items) + "</ul>" if items else '<p class="note">No class changed beyond its own interval.</p>'


def render(c: dict, gt_label: str) -> str:
    """The comparison page (HTML string)."""
    b = c["bootstrap"]
    intro = (f'<p class="note">Values in percent; in parentheses the difference to the baseline '
             f"<b>{html.escape(c['models'][0]['name'])}</b>, below it the {100 * b['confidence']:g}% paired bootstrap "
             f"interval ({b['replicates']} replicates over images, seed {b['seed']}). Green: the interval excludes 0 "
             "from above; red: from below. The interval reflects the sampling of evaluation images only, not "
             "training-run variance.</p>")
    from ..report.build import _img
    parts = [_section("table", "Models (Table 4 layout)", intro + table4(c)),
             _section("bars", "Differences per frequency group",
                      '<p class="note">Bars: difference to the baseline; error bars: the interval.</p>'
                      + _img(difference_bars(c), "differences with intervals"))]
    links = [("table", "Table"), ("bars", "Groups")]
    for j, d in enumerate(c["differences"]):
        sid = f"class-{j + 1}"
        links.append((sid, f"Classes: {html.escape(d['name'])}"))
        parts.append(_section(sid, f"Per class: {html.escape(d['name'])} vs {html.escape(d['baseline'])}",
                              '<p class="note">AP-Fixed per class, paired difference and its own interval. '
                              "Classes whose interval excludes 0:</p>" + _changed(d)
                              + _img(class_plot(d), "per-class AP-Fixed differences")))
    nav = "".join(f'<a href="#{s}">{t}</a>' for s, t in links)
    meta = (f"ground truth <code>{html.escape(gt_label)}</code> &middot; {len(c['models'])} models &middot; "
            f"{c['params']['iou_type']} &middot; lveval {__version__}")
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>lveval comparison</title><style>{_asset('style.css')}</style></head><body>"
            f"<header><h1>Detector comparison</h1><div class=\"meta\">{meta}</div></header>"
            f"<nav>{nav}</nav><main>{''.join(parts)}</main>"
            f"<footer>AP-Old, AP-Fixed and AP-Pool as defined by Dave et al. (2021); paired percentile bootstrap "
            f"over images. Generated by lveval {__version__}.</footer></body></html>\n")


def write_html(c: dict, out_dir: str, gt_label: str) -> str:
    """Write ``out_dir/compare.html``; returns its path."""
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "compare.html")
    with atomic_write(path, "w", encoding="utf-8") as f:
        f.write(render(c, gt_label))
    return path
