"""``lveval errors --html DIR``: one self-contained page with TIDE-style bars, the per-group breakdown
and sortable confusion and class tables (the report's style sheet and table sorter, inline)."""
from __future__ import annotations

import html
import os

from .. import __version__
from ..atomic import atomic_write
from .assign import TYPES

LABELS = {"cls": "Cls", "loc": "Loc", "both": "Both", "dupe": "Dupe", "bkg": "Bkg", "miss": "Miss",
          "fp": "FalsePos", "fn": "FalseNeg"}
COLORS = {"cls": "#e07b24", "loc": "#2f6fdb", "both": "#8e5ac8", "dupe": "#1e9c8f", "bkg": "#b03a2e",
          "miss": "#a66a00", "fp": "#5b6475", "fn": "#5b6475"}
SELECTION_NAMES = {"fixed": "AP-Fixed selection (top K per class)", "old": "AP-Old selection (cap per image)"}


def _pts(v) -> str:
    return "&ndash;" if v is None or v < 0 else f"{100 * v:.2f}"


def _num(v) -> str:
    return "-1" if v is None else repr(float(v))


def bars(dap: dict, keys, scale: float) -> str:
    """Horizontal bars, one per error type (TIDE's summary plot as HTML)."""
    rows = []
    for k in keys:
        v = dap.get(k)
        w = 0.0 if not v or v < 0 or scale <= 0 else min(100.0, 100.0 * v / scale)
        rows.append(f'<div class="bar"><span class="lbl">{LABELS[k]}</span><span class="track">'
                    f'<span class="fill" style="width:{w:.1f}%;background:{COLORS[k]}"></span></span>'
                    f'<span class="val">{_pts(v)}</span></div>')
    return '<div class="bars">' + "".join(rows) + "</div>"


def _group_table(fig: dict) -> str:
    head = "<tr><th>group</th><th>classes</th><th>AP50</th>" + "".join(
        f"<th>d{LABELS[t]}</th>" for t in TYPES) + "<th>dFP</th><th>dFN</th></tr>"
    body = []
    groups = [("all", fig)] + list(fig["by_frequency"].items())
    for g, b in groups:
        body.append(f"<tr><td>{g}</td><td>{b['num_classes']}</td><td>{_pts(b['AP50'])}</td>"
                    + "".join(f"<td>{_pts(b['dAP'][t])}</td>" for t in TYPES)
                    + f"<td>{_pts(b['dAP_special']['fp'])}</td><td>{_pts(b['dAP_special']['fn'])}</td></tr>")
    counts = "".join(f"<tr><td>{g}</td>" + "".join(f"<td>{b['counts'][t]:,}</td>" for t in TYPES) + "</tr>"
                     for g, b in groups)
    return (f"<table><thead>{head}</thead><tbody>{''.join(body)}</tbody></table>"
            "<p class=\"note\">Error counts (detections by detected class, misses by true class):</p>"
            "<table><thead><tr><th>group</th>" + "".join(f"<th>{LABELS[t]}</th>" for t in TYPES)
            + f"</tr></thead><tbody>{counts}</tbody></table>")


def _cell(v, text=None, cls="") -> str:
    c = f' class="{cls}"' if cls else ""
    return f'<td{c} data-v="{html.escape(str(v))}">{text if text is not None else html.escape(str(v))}</td>'


def _confusion_table(fig: dict) -> str:
    cols = [("detected", "detected class", "str"), ("dsyn", "detected synonyms", "str"), ("true", "true class", "str"),
            ("tsyn", "true synonyms", "str"), ("groups", "groups", "str"), ("count", "count", "num"),
            ("dap", "dAP", "num")]
    head = "".join(f'<th data-key="{k}" data-type="{t}">{n}</th>' for k, n, t in cols)
    rows = []
    for c in fig["confusions"]:
        rows.append("<tr>" + _cell(c["detected_name"]) + _cell(", ".join(c["detected_synonyms"]))
                    + _cell(c["true_name"]) + _cell(", ".join(c["true_synonyms"]))
                    + _cell(f"{c['detected_frequency']}<-{c['true_frequency']}",
                            f"{c['detected_frequency'] or '-'} &larr; {c['true_frequency'] or '-'}")
                    + _cell(c["count"]) + _cell(_num(c["dAP"]), _pts(c["dAP"])) + "</tr>")
    if not rows:
        return '<p class="note">No classification errors.</p>'
    return f'<table class="sortable"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def _group_confusions(fig: dict) -> str:
    cb = fig.get("confusion_by_frequency") or {}
    if not cb:
        return ""
    gs = list(cb)
    head = "<tr><th>true \\ detected</th>" + "".join(f"<th>{g}</th>" for g in gs) + "</tr>"
    body = "".join(f"<tr><td>{t}</td>" + "".join(
        f"<td>{cb[t][d]['count']:,} ({_pts(cb[t][d]['dAP'])})</td>" for d in gs) + "</tr>" for t in gs)
    return ("<p class=\"note\">Classification errors by frequency group: count (dAP of fixing them). "
            "Row r, column f: rare objects taken for frequent classes.</p>"
            f"<table><thead>{head}</thead><tbody>{body}</tbody></table>")


def _class_table(fig: dict) -> str:
    head = ('<th data-key="name" data-type="str">class</th><th data-key="freq" data-type="str">group</th>'
            '<th data-key="ap" data-type="num">AP50</th>'
            + "".join(f'<th data-key="d{t}" data-type="num">d{LABELS[t]}</th>' for t in TYPES)
            + "".join(f'<th data-key="n{t}" data-type="num">#{LABELS[t]}</th>' for t in TYPES))
    rows = []
    for r in fig["per_class"]:
        rows.append("<tr>" + _cell(r["name"]) + _cell(r["frequency"] or "-", cls=f"f-{r['frequency']}")
                    + _cell(_num(r["AP50"]), _pts(r["AP50"]))
                    + "".join(_cell(_num(r["dAP"][t]), _pts(r["dAP"][t])) for t in TYPES)
                    + "".join(_cell(r["counts"][t]) for t in TYPES) + "</tr>")
    return (f'<div class="scroll"><table class="sortable"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table></div>')


EXTRA_CSS = """
.bars { max-width: 560px; margin: 6px 0 14px; }
.bar { display: flex; align-items: center; gap: 8px; margin: 3px 0; font-size: 14px; }
.bar .lbl { width: 70px; } .bar .val { width: 60px; text-align: right; font-variant-numeric: tabular-nums; }
.bar .track { flex: 1; background: #eef1f6; height: 14px; border-radius: 3px; overflow: hidden; }
.bar .fill { display: block; height: 100%; }
"""


def section(d: dict) -> str:
    """The HTML of the analysis (all selections in ``d``, the ``to_dict()`` of an ErrorReport)."""
    sels = [p for p in ("fixed", "old") if p in d]
    scale = max([v for p in sels for v in list(d[p]["dAP"].values()) + list(d[p]["dAP_special"].values())
                 if v is not None and v > 0] or [0.0])
    parts = []
    for p in sels:
        f = d[p]
        parts.append(f'<section id="errors-{p}"><h2>{SELECTION_NAMES[p]}: AP50 {_pts(f["AP50"])}</h2>'
                     '<p class="note">dAP: AP50 points gained by fixing only that error type (TIDE\'s oracle); '
                     'FalsePos/FalseNeg: perfect precision / perfect recall.</p>'
                     f'<div class="cards"><div>{bars(f["dAP"], TYPES, scale)}</div>'
                     f'<div>{bars(f["dAP_special"], ("fp", "fn"), scale)}</div></div>'
                     f"<h3>Per frequency group</h3>{_group_table(f)}"
                     f"<h3>Confusions</h3>{_group_confusions(f)}{_confusion_table(f)}"
                     f"<h3>Per class</h3>{_class_table(f)}</section>")
    return "".join(parts)


def write_html(out_dir: str, d: dict) -> str:
    """Write ``errors.html`` into ``out_dir`` (created if needed); returns its path."""
    from importlib import resources

    def _asset(name: str) -> str:   # the report's stylesheet and table sorter, shared as package data
        return resources.files("lveval").joinpath("report", name).read_text(encoding="utf-8")

    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "errors.html")
    page = ("<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>lveval errors</title>"
            f"<style>{_asset('style.css')}{EXTRA_CSS}</style><script>{_asset('sort.js')}</script></head><body>"
            "<header><h1>Where the AP goes</h1><div class=\"meta\">TIDE error analysis (Bolya et al., ECCV 2020): "
            "foreground IoU 0.5, background IoU 0.1; lveval " + __version__ + "</div></header>"
            f"<main>{section(d)}</main></body></html>")
    with atomic_write(path, "w") as fh:
        fh.write(page)
    return path
