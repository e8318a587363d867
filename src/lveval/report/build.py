"""One self-contained HTML page summarising an evaluation: protocols, r/c/f, PR curves, classes, scores.

Everything is inline (CSS, a few lines of JS for the sortable table,
figures as base64 PNG), so the page can be mailed or archived as one file.
"""
from __future__ import annotations

import html
import json
import os
from importlib import resources

import numpy as np

from .. import __version__
from ..atomic import check_output, output_dir, write_files
from ..params import protocol_label
from . import figures

SUMMARY_KEYS = ("AP", "AP50", "AP75", "APs", "APm", "APl", "APr", "APc", "APf", "AR")
SECTIONS = {"protocols": "Protocols", "frequency": "r/c/f", "pr-curves": "PR curves", "classes": "Classes",
            "per-class": "Per-class table", "scores": "Scores", "calibration": "Calibration", "notices": "Notices"}
DESCRIPTIONS = {
    "old": "LVIS AP as published so far: the top {n} detections of each image, then class-averaged AP "
           "(lvis-api 0.5.3 semantics). Re-ranking scores across classes can change it.",
    "fixed": "The paper's recommendation: the top {k} detections of each class over the whole set, no "
             "per-image limit. Independent per class; cannot be gamed by cross-class re-ranking.",
    "pooled": "One precision-recall curve over all classes' detections (the same {k} per class): rewards "
              "scores that are comparable across classes, i.e. calibration.",
}


def _asset(name: str) -> str:
    return resources.files("lveval.report").joinpath(name).read_text(encoding="utf-8")


def _pct(v) -> str:
    return "&ndash;" if v is None or v < 0 else f"{100 * v:.2f}"


def _img(uri: str | None, alt: str) -> str:
    if not uri:
        return '<p class="note">No data for this figure.</p>'
    return f'<img class="fig" alt="{html.escape(alt)}" src="{uri}">'


def pick_classes(result, wanted) -> list:
    """Category indices for the per-class PR curves.

    ``wanted``: names or ids (strings or ints); unknown ones raise
    ``ValueError``. None: the class with most ground truth in each frequency
    group (or the three largest classes under COCO rules).
    """
    gt = result.gt
    num_gt = np.array([r["num_gt"] for r in result.per_class]) if result.per_class else np.zeros(0)
    if wanted:
        by_name = {n.lower(): i for i, n in enumerate(gt.cat_names)}
        out = []
        for w in wanted:
            s = str(w).strip()
            if s.lower() in by_name:
                out.append(by_name[s.lower()])
            elif s.lstrip("-").isdigit() and int(s) in set(gt.cat_ids.tolist()):
                out.append(int(np.searchsorted(gt.cat_ids, int(s))))
            else:
                raise ValueError(f"unknown class {s!r} (give names or category ids of the ground truth)")
        return out
    if not len(num_gt):
        return []
    groups = [np.flatnonzero(gt.cat_freq == f) for f in ("r", "c", "f")]
    if any(len(g) for g in groups):
        return [int(g[np.argmax(num_gt[g])]) for g in groups if len(g) and num_gt[g].max() > 0]
    return [int(i) for i in np.argsort(-num_gt, kind="stable")[:3] if num_gt[i] > 0]


def score_data(result, ev):
    """Scores and frequency of AP-Fixed's detections, and TP flags (IoU 0.50) of the evaluated ones."""
    bound = ev.dets
    sel = ev.fixed_selection()
    scores = bound.score[sel]
    freq = result.gt.cat_freq[bound.cat_idx[sel]]
    m = result.matching
    if m is None or not len(m.det):
        return scores, freq, None, None, None
    in_fixed = sel[m.det]
    mt = (m.matched[0] & 1).astype(bool)     # bit 0: IoU threshold 0.50, area range 'all'
    ig = (m.ignored[0] & 1).astype(bool)
    evald = in_fixed & ~ig
    tp = mt[evald]
    return scores, freq, tp, m.score[evald], m.cat[evald]


def load_calibration(path: str):
    """A function ``(category_ids, scores) -> calibrated scores`` from a calibration model JSON.

    Accepted: the model ``lveval calibrate fit`` writes (a ``GroupedCalibrator``;
    classes it does not know keep their scores), one calibrator
    (``Calibrator.to_dict()``: ``{"method": ..., "state": ...}``) applied to
    every class, or ``{"per_class": {"<category_id>": calibrator, ...},
    "fallback": calibrator | null}``. Raises ImportError when
    ``lveval.calibrate`` is not available.
    """
    from ..calibrate import calibrator_from_dict

    with open(path, "rb") as f:
        spec = json.load(f)
    if isinstance(spec, dict) and "format" in spec:
        from ..calibrate.grouped import GroupedCalibrator

        model = GroupedCalibrator.from_dict(spec, path=path)
        return lambda cats, s: model.predict(cats, s, on_unknown_category="keep")
    if isinstance(spec, dict) and "method" in spec:
        one = calibrator_from_dict(spec)
        return lambda cats, s: one.predict(s)
    table = spec.get("per_class") if isinstance(spec, dict) else None
    if not isinstance(table, dict):
        raise ValueError(f"{path}: not a calibration model (expected `lveval calibrate fit` output, "
                         "a calibrator or {'per_class': {...}})")
    cals = {int(k): calibrator_from_dict(v) for k, v in table.items()}
    fb = spec.get("fallback")
    fallback = calibrator_from_dict(fb) if fb else None

    def apply(cats, s):
        out = np.array(s, np.float64, copy=True)
        for c in np.unique(cats):
            sel = cats == c
            cal = cals.get(int(c), fallback)
            if cal is not None:
                out[sel] = cal.predict(s[sel])
        return out
    return apply


def calibration_figure(result, tp, tp_scores, tp_cats, calibration: str | None) -> tuple[str | None, str]:
    """(figure URI, note) of the reliability diagram, or (None, why it is absent)."""
    if not calibration:
        return None, "No calibration model given (use --calibration MODEL.json)."
    try:
        from ..calibrate import reliability_diagram
        apply = load_calibration(calibration)
    except ImportError:
        return None, "lveval.calibrate is not available in this installation; section skipped."
    if tp is None or not len(tp):
        return None, "No evaluated detections to draw a reliability diagram from."
    import base64
    import tempfile

    cat_ids = result.gt.cat_ids[tp_cats]
    calibrated = apply(cat_ids, tp_scores)
    with tempfile.TemporaryDirectory() as d:
        png = os.path.join(d, "rel.png")
        bins = reliability_diagram({"uncalibrated": np.clip(tp_scores, 0, 1), "calibrated": calibrated},
                                   tp.astype(np.int8), png, title="Reliability (true positive at IoU 0.50)")
        with open(png, "rb") as f:
            uri = "data:image/png;base64," + base64.b64encode(f.read()).decode("ascii")
    eces = ", ".join(f"{k}: ECE {v.ece:.4f}" for k, v in bins.items())
    return uri, f"Model: {html.escape(os.path.basename(calibration))}. {eces}."


def render(result, *, gt_path: str, results_path: str, classes=None, calibration: str | None = None,
           evaluator=None, errors: dict | None = None) -> str:
    """The report page as a string. ``errors``: an error analysis (``ErrorReport.to_dict()``) to add."""
    p = result.params
    protos = [q for q in ("old", "fixed", "pooled") if getattr(result, q)]
    keys = [k for k in SUMMARY_KEYS if any(k in getattr(result, q) for q in protos)]
    parts = []
    # protocols
    cards = []
    for q in protos:
        d = getattr(result, q)
        desc = DESCRIPTIONS[q].format(n=p.max_dets_per_image, k=f"{p.max_dets_per_class:,}")
        cards.append(f'<div class="card {q}"><div class="name">{figures.LABELS[q]}</div>'
                     f'<div class="value" id="value-{q}">{_pct(d.get("AP"))}</div>'
                     f'<div class="desc">{html.escape(desc)}</div></div>')
    rows = []
    for q in protos:
        d = getattr(result, q)
        label = protocol_label(q, p, thousands=True)
        rows.append(f'<tr class="{q}"><td class="proto">{html.escape(label)}</td>'
                    + "".join(f"<td>{_pct(d[k]) if k in d else ''}</td>" for k in keys) + "</tr>")
    parts.append(_section("protocols", "The three protocols side by side",
                          '<div class="cards">' + "".join(cards) + "</div>"
                          '<table class="protocols"><thead><tr><th>protocol</th>'
                          + "".join(f"<th>{k}</th>" for k in keys) + "</tr></thead><tbody>"
                          + "".join(rows) + "</tbody></table>"
                          '<p class="note">Percent. AP-Pool reports AP, AP50, AP75 and one pool per frequency group; '
                          "&ndash; where a figure is undefined or not part of the protocol.</p>"))
    # r/c/f
    note = ("Rare, common and frequent classes (LVIS frequency groups). The paper finds AP-Old's per-image cap "
            "hurts rare classes most." if result.gt.kind == "lvis" else
            "COCO rules: no frequency groups; overall AP per protocol.")
    parts.append(_section("frequency", "Rare / common / frequent",
                          f'<p class="note">{note}</p>' + _img(figures.frequency_bars(result), "AP per frequency group")))
    # PR curves
    parts.append(_section("pr-curves", "Precision&ndash;recall curves",
                          '<p class="note">Per-class curves averaged over classes with ground truth (area all); '
                          "AP-Pool ranks all classes' detections together, one curve per pool.</p>"
                          + _img(figures.pr_curves(result), "precision-recall curves per protocol")))
    # chosen classes
    chosen = pick_classes(result, classes)
    names = ", ".join(html.escape(result.gt.cat_names[k]) for k in chosen)
    how = "chosen with --classes" if classes else "the class with most ground truth in each group (choose with --classes)"
    parts.append(_section("classes", "Chosen classes",
                          f'<p class="note">{names or "none"} &mdash; {how}. Curves at IoU 0.50; AP over IoU 0.50:0.95.</p>'
                          + _img(figures.class_pr_curves(result, chosen), "precision-recall of chosen classes")))
    # per-class table
    parts.append(_section("per-class", "Per-class results", _class_table(result)))
    # scores
    tp = tp_scores = tp_cats = None
    if evaluator is not None:
        scores, freq, tp, tp_scores, tp_cats = score_data(result, evaluator)
        fig = figures.score_distributions(scores, freq, tp, tp_scores)
    else:
        fig = None
    parts.append(_section("scores", "Score distributions",
                          '<p class="note">Left: scores of the detections AP-Fixed evaluates, per frequency group '
                          "(cf. the paper's Fig. 3: losses that tilt these distributions change AP-Old more than "
                          "AP-Fixed). Right: true and false positives at IoU 0.50 among evaluated detections.</p>"
                          + _img(fig, "score distributions")))
    # calibration
    uri, cnote = calibration_figure(result, tp, tp_scores, tp_cats, calibration)
    parts.append(_section("calibration", "Calibration", f'<p class="note">{cnote}</p>'
                          + (_img(uri, "reliability diagram").replace('class="fig"', 'class="fig narrow"')
                             if uri else "")))
    # error analysis (lveval errors), when asked for
    sections = dict(SECTIONS)
    if errors:
        from ..error_analysis.html import EXTRA_CSS
        from ..error_analysis.html import section as errors_section
        parts.append(f"<style>{EXTRA_CSS}</style>" + errors_section(errors))
        sections = {**{k: v for k, v in SECTIONS.items() if k != "notices"},
                    f"errors-{next(q for q in ('fixed', 'old') if q in errors)}": "Errors", "notices": "Notices"}
    # notices
    n = result.notices
    items = [f"skipped: {v} records ({html.escape(k)})" for k, v in n.skipped.items()]
    items += [f"note: {v} records ({html.escape(k)})" for k, v in n.flagged.items()]
    items += [f"warning: {html.escape(w)}" for w in n.warnings]
    parts.append(_section("notices", "Notices", '<ul class="notices">' + "".join(f"<li>{i}</li>" for i in items)
                          + "</ul>" if items else '<p class="note">None: every record was evaluated as given.</p>'))
    nav = "".join(f'<a href="#{s}">{t}</a>' for s, t in sections.items())
    meta = (f"ground truth <code>{html.escape(str(gt_path))}</code> ({result.gt.num_images:,} images, "
            f"{result.gt.num_categories:,} classes, {result.gt.kind.upper()} rules) &middot; results "
            f"<code>{html.escape(str(results_path))}</code> &middot; {p.iou_type} &middot; lveval {__version__}")
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>lveval report: {html.escape(os.path.basename(str(results_path)))}</title>"
            f"<style>{_asset('style.css')}</style></head><body>"
            f"<header><h1>Large-vocabulary detection report</h1><div class=\"meta\">{meta}</div></header>"
            f"<nav>{nav}</nav><main>{''.join(parts)}</main>"
            f"<footer>AP-Old, AP-Fixed and AP-Pool as defined by Dave et al., <i>Evaluating Large-Vocabulary "
            f"Object Detectors: The Devil is in the Details</i> (2021). Generated by lveval {__version__}.</footer>"
            f"<script>{_asset('sort.js')}</script></body></html>\n")


def _section(sid: str, title: str, body: str) -> str:
    return f'<section id="{sid}"><h2>{title}</h2>{body}</section>'


def _class_table(result) -> str:
    rows = []
    has_old = any("AP_old" in r for r in result.per_class)
    has_fixed = any("AP_fixed" in r for r in result.per_class)
    first = result.per_class[0] if result.per_class else {}
    # the fuller per-class figures (params.per_class_metrics): AP50, AP75, AP per area, AR, TP at 0.5
    extra = [f"{k}_{q}" for q in ("fixed", "old") for k in ("AP50", "AP75", *(f"AP{n[0]}" for n in
             result.params.area_names[1:]), "AR", "TP50") if f"{k}_{q}" in first]
    names = {"fixed": "Fixed", "old": "Old"}
    for r in result.per_class:
        f = r.get("frequency", "")
        cells = [f'<td data-v="{html.escape(r["name"].lower())}">{html.escape(r["name"])}</td>',
                 f'<td class="f-{f}" data-v="{"rcf".find(f) if f else -1}">{f or "&ndash;"}</td>',
                 f'<td data-v="{r["num_gt"]}">{r["num_gt"]:,}</td>',
                 f'<td data-v="{r["num_dets"]}">{r["num_dets"]:,}</td>']
        vals = []
        for key, on in (("AP_old", has_old), ("AP_fixed", has_fixed)):
            if on:
                v = r.get(key, -1)
                vals.append(v)
                cells.append(f'<td data-v="{v:.10f}">{_pct(v)}</td>')
        if has_old and has_fixed:
            a, b = vals
            if a >= 0 and b >= 0:
                d = 100 * (b - a)
                cls = "pos" if d > 0.005 else ("neg" if d < -0.005 else "")
                cells.append(f'<td class="{cls}" data-v="{d:.10f}">{d:+.2f}</td>')
            else:
                cells.append('<td data-v="-1000">&ndash;</td>')
        for key in extra:
            v = r[key]
            if key.startswith("TP50"):
                cells.append(f'<td data-v="{v}">{v:,}</td>')
            else:
                cells.append(f'<td data-v="{v:.10f}">{_pct(v)}</td>')
        rows.append(f'<tr data-id="{r["category_id"]}">' + "".join(cells) + "</tr>")
    head = [("name", "name", "str"), ("frequency", "frequency", "num"), ("num_gt", "#GT", "num"),
            ("num_dets", "#detections", "num")]
    if has_old:
        head.append(("ap_old", "AP-Old", "num"))
    if has_fixed:
        head.append(("ap_fixed", "AP-Fixed", "num"))
    if has_old and has_fixed:
        head.append(("delta", "Fixed &minus; Old", "num"))
    for key in extra:
        k, q = key.rsplit("_", 1)
        head.append((key.lower(), f"{k} ({names[q]})", "num"))
    ths = "".join(f'<th data-key="{k}" data-type="{t}">{lbl}</th>' for k, lbl, t in head)
    return ('<p class="note">Click a column header to sort (again to reverse). AP in percent over IoU '
            "0.50:0.95; &ndash; for classes without ground truth. #detections counts all detections of the "
            "class in the results.</p>"
            f'<div class="scroll"><table class="sortable" id="class-table"><thead><tr>{ths}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table></div>")


def build_report(gt, results, out_dir: str, *, classes=None, calibration: str | None = None,
                 errors: bool = False, **eval_kwargs) -> str:
    """Evaluate ``results`` against ``gt`` and write ``out_dir/report.html`` and ``out_dir/figures.json``.

    ``eval_kwargs`` go to :func:`lveval.evaluate` (iou_type, caps, dataset,
    on_unknown_*). ``errors``: add the TIDE error analysis (``lveval errors``) as a section and
    write it to ``out_dir/errors.json``. Returns the path of the page.
    """
    from ..metrics import Evaluator, evaluate_loaded, make_params
    from ..output import json_bytes

    output_dir(out_dir)   # before the run: an existing file there is refused, not found out at the end
    names = ("report.html", "figures.json") + (("errors.json",) if errors else ())
    for name in names:
        check_output(os.path.join(out_dir, name), inside=out_dir)
    # loaded once for figures and scores; the class table shows the fuller per-class figures
    ev = Evaluator.load(gt, results, make_params(per_class_metrics=True, **eval_kwargs))
    result = evaluate_loaded(ev)
    if classes is not None:
        pick_classes(result, classes)   # fail early on unknown names
    err = None
    if errors:
        from ..error_analysis import analyze

        sel = [q for q in ("fixed", "old") if getattr(result, q)] or ["fixed"]
        err = analyze(ev, sel, inputs=result.inputs).to_dict()
    import matplotlib

    # names are data, not TeX: a category called "$\\foo$" is drawn as written (mathtext would fail on it)
    with matplotlib.rc_context({"text.parse_math": False}):
        page = render(result, gt_path=gt if isinstance(gt, (str, os.PathLike)) else "<ground truth>",
                      results_path=results if isinstance(results, (str, os.PathLike)) else "<results>",
                      classes=classes, calibration=calibration, evaluator=ev, errors=err)
    out = os.path.join(out_dir, "report.html")
    files = {out: page.encode("utf-8"), os.path.join(out_dir, "figures.json"): json_bytes(result.to_dict())}
    if err is not None:
        files[os.path.join(out_dir, "errors.json")] = json_bytes(err)
    write_files(files, inside=out_dir)   # the page and its figures change together
    return out
