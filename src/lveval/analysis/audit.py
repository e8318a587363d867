"""``lveval audit``: one report on how a detector's results fare under the three protocols.

It answers, for the user's own results: is AP-Old sensitive to the per-image
cap and to re-ranking (paper Section 3), how many classes lack the per-class
budget of detections (Section 4), how scores differ across rare, common and
frequent classes (Figure 3), how AP-Old, AP-Fixed and AP-Pool compare
(Sections 4 and 6), and what to report. Everything comes from one load and one
matching pass; the output directory gets index.html, report.md, PNG plots and
figures.json.
"""
from __future__ import annotations

import html
import os
import time
from dataclasses import replace

import numpy as np

from .. import __version__
from ..atomic import atomic_write, output_dir
from ..output import write_json
from . import plots
from .common import Session, limit_json, limit_label
from .rerank import grid_for, rerank_grid
from .results import AuditCounts, AuditResult, AuditSettings, BudgetRow, CapRow
from .scores import score_stats
from .subsets import subsets as subsets_analysis

AUDIT_CAPS = (100, 300, 1000, 2000, 5000, 10000, -1)
SENSITIVE_POINTS = 0.5   # AP-Old change (points) we call "sensitive"; paper: +3.5 LVIS, +0.1 COCO (Table 2)


CAPTIONS = {
    "protocols": "AP-Old, AP-Fixed and AP-Pool for all, rare, common and frequent classes.",
    "cap_sweep": "AP-Old and AP-Pool as the per-image cap grows (paper Tables 2 and 6); dashed: AP-Fixed.",
    "rerank": "The gaming policy (paper Table 1): keep the top K per class, then the per-image cap; "
              "dashed: before.",
    "budget_sweep": "AP-Fixed as the per-class budget grows (paper Table 4); bars: classes that reach it.",
    "scores": "Mean score per frequency group, frequent = 1.0 (paper Figure 3), and score histograms.",
    "subsets": "AP on class subsets at the default and with no per-image cap (paper Table 3).",
}


def _pts(v) -> str:
    return "-" if v is None or v < 0 else f"{100 * v:.2f}"


def _dpts(v) -> str:
    return "-" if v is None else f"{100 * v:+.2f}"


def _budgets(k: int) -> list:
    """Per-class budgets around AP-Fixed's K (paper Table 4 spans 1,000 to 50,000 for K = 10,000)."""
    if k < 0:
        return [-1]
    return sorted({max(1, int(round(k * f))) for f in (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)}) + [-1]


def run_audit(s: Session) -> AuditResult:
    """All figures of the audit (``to_dict()`` is figures.json), from one matching pass over every detection."""
    t0 = time.perf_counter()
    p = s.params
    n, K = p.max_dets_per_image, p.max_dets_per_class
    caps = sorted(set(AUDIT_CAPS) | {n}, key=lambda v: float("inf") if v < 0 else v)
    budgets = _budgets(K)
    s.match(np.ones(len(s.dets), bool))   # the no-cap setting contains every selection
    sel_old, sel_fixed = s.cap(n), s.budget(K)
    settings = AuditSettings(max_dets_per_image=limit_json(n), max_dets_per_class=limit_json(K),
                             iou_type=p.iou_type, dataset=p.dataset)
    protocols = {"old": s.old(sel_old), "fixed": s.fixed(sel_fixed), "pooled": s.pooled(sel_fixed)}
    per_image = [CapRow(cap=limit_json(c), old=s.old(s.cap(c)), pooled=s.pooled(s.cap(c))) for c in caps]
    per_class = [BudgetRow(k=limit_json(k), fixed=s.fixed(s.budget(k))) for k in budgets]
    grid = rerank_grid(s, grid_for(s), n)

    d = s.dets
    ngt = s.num_gt()
    counts = np.bincount(d.cat_idx, minlength=s.gt.num_categories)
    per_img = np.bincount(d.img_idx, minlength=s.gt.num_images)
    top = int(per_img.max()) if len(per_img) else 0
    by_freq = ({f: int(((s.gt.cat_freq == f) & (ngt > 0)).sum()) for f in ("r", "c", "f")}
               if s.has_frequencies else None)
    c = AuditCounts(num_detections=int(len(d)), num_images=int(s.gt.num_images),
                    num_classes=int(s.gt.num_categories), classes_with_gt=int((ngt > 0).sum()),
                    classes_below_budget=int((counts < K).sum()) if K >= 0 else 0,
                    classes_with_gt_below_budget=int(((counts < K) & (ngt > 0)).sum()) if K >= 0 else 0,
                    classes_without_detections=int((counts == 0).sum()),
                    classes_with_gt_without_detections=int(((counts == 0) & (ngt > 0)).sum()),
                    max_dets_per_image_in_results=top,
                    images_at_max=float((per_img == top).mean()) if top else 0.0,
                    median_dets_per_class=float(np.median(counts)), classes_with_gt_by_frequency=by_freq)
    fig = AuditResult(lveval_version=__version__, inputs=s.inputs, settings=settings, protocols=protocols,
                      dets_per_image=per_image, dets_per_class=per_class, rerank=grid, counts=c,
                      findings={}, timing={},
                      scores=score_stats(s) if s.has_frequencies else None,
                      subsets=subsets_analysis(s, caps=(n, -1)) if s.has_frequencies else None)
    fig = replace(fig, findings=findings(fig))
    return replace(fig, timing={"load_s": s.timings.get("load"), "match_s": s.timings.get("match"),
                                "total_s": (s.timings.get("load") or 0.0) + time.perf_counter() - t0})


def findings(fig: AuditResult) -> dict:
    """The audit's answers, as numbers and one sentence each."""
    st = fig.settings
    n, K = st.max_dets_per_image, st.max_dets_per_class
    old, fixed, pooled = (fig.protocols[k] for k in ("old", "fixed", "pooled"))
    nocap = fig.dets_per_image[-1].old
    d_cap = nocap["AP"] - old["AP"]
    out = {}
    groups = {k: nocap[k] - old[k] for k in ("APr", "APc", "APf")
              if k in old and old[k] >= 0 and nocap.get(k, -1) >= 0}
    cap_sens = abs(d_cap) >= SENSITIVE_POINTS / 100 or any(abs(v) >= 2 * SENSITIVE_POINTS / 100
                                                           for v in groups.values())
    ngt = fig.counts.classes_with_gt_by_frequency or {}
    text = (f"Lifting the per-image cap of {n} changes AP-Old by {_dpts(d_cap)} points"
            + (" (" + ", ".join(f"{k} {_dpts(v)}"
                                + (f" over {ngt[k[-1]]} class{'' if ngt[k[-1]] == 1 else 'es'} with ground truth"
                                   if k[-1] in ngt else "")
                                for k, v in groups.items()) + ")" if groups else "")
            + (": AP-Old depends on the cap." if cap_sens else ": AP-Old barely depends on the cap.")
            + f" (We call it dependent from {SENSITIVE_POINTS} points on AP or {2 * SENSITIVE_POINTS} on "
            "APr/APc/APf; the paper finds +3.5 AP and +7.2 APr on LVIS v1 and +0.1 AP on COCO, Table 2.)")
    out["cap"] = {"delta_AP": d_cap, "sensitive": bool(cap_sens), "text": text}

    best = max(fig.rerank, key=lambda r: r.old["AP"])
    gain = best.old["AP"] - old["AP"]
    fgain = best.fixed["AP"] - fixed["AP"]
    if gain > 0:
        text = (f"Re-ranking raises AP-Old by {_dpts(gain)} points: keeping only the top {best.per_class:,} "
                f"detections per class and then {n} per image (the paper's gaming policy, Table 1) discards "
                f"detections yet scores higher. AP-Fixed changes by {_dpts(fgain)} points under the same policy.")
    else:
        text = (f"The gaming policy (top K per class, then {n} per image) does not raise AP-Old for any K tried "
                f"({', '.join(str(r.per_class) for r in fig.rerank)}); best change {_dpts(gain)} points.")
    out["rerank"] = {"best_per_class": best.per_class, "delta_AP_old": gain, "delta_AP_fixed": fgain,
                     "gameable": bool(gain > 0), "text": text}

    c = fig.counts
    text = (f"{c.classes_below_budget:,} of {c.num_classes:,} classes have fewer than {K:,} detections "
            f"({c.classes_with_gt_below_budget:,} of the {c.classes_with_gt:,} classes with ground truth; "
            f"{c.classes_with_gt_without_detections:,} of those have none). AP-Fixed lets every class "
            f"use {K:,} detections; a class with fewer is evaluated on what the detector output.")
    if c.images_at_max >= 0.9 and c.max_dets_per_image_in_results <= 1000:
        text += (f" {100 * c.images_at_max:.0f}% of images have exactly {c.max_dets_per_image_in_results} "
                 "detections: the results look capped per image by the detector itself; for AP-Fixed, "
                 "lower the score threshold and raise the per-image output (the paper keeps the top "
                 "10,000 per class over the set).")
    out["budget"] = {"text": text}

    if fig.scores is not None:
        g = fig.scores.selections["fixed"]
        r, cc = g["r"].normalised_mean, g["c"].normalised_mean
        sh = fig.scores.shares
        text = ("Mean score relative to frequent classes (top K per class): "
                f"rare {'-' if r is None else f'{r:.2f}'}, common {'-' if cc is None else f'{cc:.2f}'}. "
                f"Rare classes get {100 * sh['r'].detections_in_cap:.1f}% of the detections AP-Old keeps "
                f"per image while holding {100 * sh['r'].classes:.1f}% of the classes.")
        if r is not None and r < 0.8:
            text += (" Lower rare-class scores push rare detections out of the per-image cap, which AP-Old "
                     "penalises and AP-Fixed does not (paper, Section 5.1 and Figure 3).")
        out["scores"] = {"rare_vs_frequent": r, "common_vs_frequent": cc, "text": text}

    text = (f"AP-Old {_pts(old['AP'])}, AP-Fixed {_pts(fixed['AP'])}, AP-Pool {_pts(pooled['AP'])}. "
            f"AP-Fixed - AP-Old = {_dpts(fixed['AP'] - old['AP'])} points")
    if "APr" in old and old["APr"] >= 0 and fixed["APr"] >= 0:
        text += f" (APr {_dpts(fixed['APr'] - old['APr'])})"
    text += "."
    if "APr" in pooled and pooled.get("APr", -1) >= 0 and fixed.get("APr", -1) >= 0:
        text += (f" AP-Pool's rare pool is {_pts(pooled['APr'])} vs AP-Fixed's APr {_pts(fixed['APr'])}: "
                 "a pool far below the per-class figure means rare-class scores are not comparable with "
                 "other classes' (a calibration problem AP-Fixed cannot see).")
    out["protocols"] = {"text": text}
    out["recommendation"] = (
        f"Report AP-Fixed (top {K:,} detections per class, no per-image cap) as the main number: it is "
        "independent across classes and cannot be raised by re-ranking (paper, Section 4). Report AP-Pool "
        "beside it as the calibration diagnostic: it ranks all classes' detections together and rewards "
        "comparable scores (Section 6). Give AP-Old (top "
        f"{n} per image) only to compare with older papers, stating that it depends on the cap and on "
        "cross-class ranking (Section 3).")
    return out


def _md_table(header, rows) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---:" if i else "---" for i in range(len(header))) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def _keys(d):
    return [k for k in ("AP", "AP50", "AP75", "APr", "APc", "APf") if k in d]


def markdown(fig: AuditResult, images: dict) -> str:
    """report.md text."""
    st, f = fig.settings, fig.findings
    n, K = st.max_dets_per_image, st.max_dets_per_class
    P = fig.protocols
    L = ["# lveval audit", "",
         f"lveval {fig.lveval_version}; {fig.counts.num_detections:,} detections on "
         f"{fig.counts.num_images:,} images, {fig.counts.num_classes:,} classes "
         f"({fig.counts.classes_with_gt:,} with ground truth); iou type {st.iou_type}, "
         f"{st.dataset} rules. Values are AP in percent.", "",
         "## What to report", "", f["recommendation"], "",
         "## AP-Old vs AP-Fixed vs AP-Pool", ""]
    keys = _keys(P["old"])
    L.append(_md_table(["protocol"] + keys,
                       [[f"AP-Old ({n}/image)"] + [_pts(P["old"][k]) for k in keys],
                        [f"AP-Fixed ({K:,}/class)"] + [_pts(P["fixed"][k]) for k in keys],
                        [f"AP-Pool ({K:,}/class)"] + [_pts(P["pooled"].get(k)) for k in keys]]))
    L += ["", f["protocols"]["text"], "", f"![protocols]({images['protocols']})", "",
          "## Is AP-Old sensitive to the per-image cap?", "", f["cap"]["text"], ""]
    rk = [k for k in ("AP", "APr", "APc", "APf") if k in P["old"]]
    L.append(_md_table(["dets/image"] + [f"AP-Old {k}" for k in rk] + ["AP-Pool"],
                       [[limit_label(r.cap)] + [_pts(r.old[k]) for k in rk]
                        + [_pts(r.pooled["AP"] if r.pooled else None)] for r in fig.dets_per_image]))
    L += ["", f"![cap sweep]({images['cap_sweep']})", "",
          "## Can AP-Old be gamed by re-ranking?", "", f["rerank"]["text"], ""]
    L.append(_md_table(["K/class", "detections kept"] + [f"AP-Old {k}" for k in rk] + ["AP-Fixed"],
                       [["before", f"{fig.counts.num_detections:,}"] + [_pts(P["old"][k]) for k in rk]
                        + [_pts(P["fixed"]["AP"])]]
                       + [[f"{r.per_class:,}", f"{r.num_detections:,}"] + [_pts(r.old[k]) for k in rk]
                          + [_pts(r.fixed["AP"])] for r in fig.rerank]))
    L += ["", f"![re-ranking]({images['rerank']})", "",
          "## Classes and the per-class budget", "", f["budget"]["text"], ""]
    L.append(_md_table(["dets/class"] + [f"AP-Fixed {k}" for k in rk],
                       [[limit_label(r.k)] + [_pts(r.fixed[k]) for k in rk]
                        for r in fig.dets_per_class]))
    L += ["", f"![budget sweep]({images['budget_sweep']})", ""]
    if fig.scores is not None:
        from .scores import table as score_table
        L += ["## Scores across frequency groups", "", f["scores"]["text"], "", "```", score_table(fig.scores),
              "```", "", f"![scores]({images['scores']})", ""]
    if fig.subsets is not None:
        caps = fig.subsets.caps
        L += ["## Class subsets (paper Table 3)", "",
              "Results and ground truth restricted to each subset; AP over the subset's classes.", ""]
        L.append(_md_table(["subset", "classes", "with GT", "instances/class"]
                           + [f"AP@{limit_label(c)}" for c in caps] + ["Δ"],
                           [[r.subset, r.num_classes, r.num_classes_with_gt,
                             f"{r.instances_per_class:.1f}"] + [_pts(v) for v in r.AP.values()]
                            + [_dpts(r.delta)] for r in fig.subsets.subsets]))
        L += ["", f"![subsets]({images['subsets']})", ""]
    L += ["## Files", "", "- `figures.json`: every figure above (fractions, -1 where undefined).",
          "- `*.png`: the plots.", ""]
    return "\n".join(L)


def html_page(fig: AuditResult, images: dict) -> str:
    """index.html: the welcome page (verdicts, main table, plots, links)."""
    e = html.escape
    f = fig.findings
    P = fig.protocols
    st = fig.settings
    keys = [k for k in ("AP", "APr", "APc", "APf") if k in P["old"]]
    rows = "".join(f"<tr><th>{e(name)}</th>" + "".join(f"<td>{_pts(d.get(k))}</td>" for k in keys) + "</tr>"
                   for name, d in ((f"AP-Old ({st.max_dets_per_image}/image)", P["old"]),
                                   (f"AP-Fixed ({st.max_dets_per_class:,}/class)", P["fixed"]),
                                   (f"AP-Pool ({st.max_dets_per_class:,}/class)", P["pooled"])))
    verdicts = [("Cap", f["cap"]["text"]), ("Re-ranking", f["rerank"]["text"]), ("Budget", f["budget"]["text"])]
    if "scores" in f:
        verdicts.append(("Scores", f["scores"]["text"]))
    verdicts.append(("Protocols", f["protocols"]["text"]))
    items = "".join(f"<li><b>{e(a)}.</b> {e(b)}</li>" for a, b in verdicts)
    imgs = "".join(f'<figure><img src="{e(p)}" alt="{e(CAPTIONS.get(k, k))}"><figcaption>'
                   f'{e(CAPTIONS.get(k, k))}</figcaption></figure>' for k, p in images.items())
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>lveval audit</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 1150px; margin: 2em auto; padding: 0 1em; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; }} th, td {{ padding: .3em .8em; border-bottom: 1px solid #ddd; }}
td {{ text-align: right; font-variant-numeric: tabular-nums; }}
.rec {{ background: #eef7ee; border-left: 4px solid #2ca02c; padding: .8em 1em; }}
figure {{ margin: 1.5em 0; }} img {{ max-width: 100%; border: 1px solid #eee; }}
li {{ margin: .4em 0; }}
</style></head><body>
<h1>lveval audit</h1>
<p>{fig.counts.num_detections:,} detections on {fig.counts.num_images:,} images and
{fig.counts.num_classes:,} classes; AP in percent. Full report: <a href="report.md">report.md</a>;
all figures: <a href="figures.json">figures.json</a>.</p>
<div class="rec"><b>What to report.</b> {e(f['recommendation'])}</div>
<table><tr><th></th>{''.join(f'<th>{k}</th>' for k in keys)}</tr>{rows}</table>
<h2>Findings</h2><ul>{items}</ul>
<h2>Plots</h2>{imgs}
<p><small>lveval {e(fig.lveval_version)}. Method: Dave et al., <i>Evaluating Large-Vocabulary Object
Detectors: The Devil is in the Details</i> (2021).</small></p>
</body></html>
"""


def write_audit(s: Session, out_dir: str) -> AuditResult:
    """Run the audit and write index.html, report.md, figures.json and the PNG plots into ``out_dir``."""
    output_dir(out_dir)
    fig = run_audit(s)
    P, st = fig.protocols, fig.settings
    images = {"protocols": "protocols.png", "cap_sweep": "cap_sweep.png", "rerank": "rerank.png",
              "budget_sweep": "budget_sweep.png"}
    j = lambda name: os.path.join(out_dir, name)
    plots.plot_protocols(P["old"], P["fixed"], P["pooled"], j(images["protocols"]),
                         labels={"AP-Old": f"AP-Old ({st.max_dets_per_image}/image)",
                                 "AP-Fixed": f"AP-Fixed ({st.max_dets_per_class:,}/class)",
                                 "AP-Pool": "AP-Pool (same detections as AP-Fixed)"})
    plots.plot_cap_sweep(fig.dets_per_image, P["fixed"], j(images["cap_sweep"]))
    plots.plot_rerank(fig.rerank, P, j(images["rerank"]), cap=st.max_dets_per_image)
    counts = np.bincount(s.dets.cat_idx, minlength=s.gt.num_categories)
    plots.plot_budget_sweep(fig.dets_per_class, j(images["budget_sweep"]), counts)
    if fig.scores is not None:
        images["scores"] = "scores.png"
        plots.plot_scores(fig.scores, j(images["scores"]))
    if fig.subsets is not None:
        images["subsets"] = "subsets.png"
        plots.plot_subsets(fig.subsets, j(images["subsets"]))
    fig = replace(fig, files=sorted(["index.html", "report.md", "figures.json"] + list(images.values())))
    with atomic_write(j("report.md"), "w", encoding="utf-8", inside=out_dir) as fh:
        fh.write(markdown(fig, images))
    with atomic_write(j("index.html"), "w", encoding="utf-8", inside=out_dir) as fh:
        fh.write(html_page(fig, images))
    write_json(j("figures.json"), fig.to_dict(), inside=out_dir)
    return fig
