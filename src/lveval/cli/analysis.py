"""Sub-commands of the analyses: toy, rerank, sweep, subsets, scores, nms, audit."""
from __future__ import annotations

import os
import sys
import time
from dataclasses import replace

from ..analysis.common import Session, limit_label, parse_limits
from ..atomic import output_dir
from ..exceptions import InputError
from ..table import fmt
from .options import deprecated_alias, max_dets_options

KEYS = ("AP", "APr", "APc", "APf")


def _inputs(p, what="results") -> None:
    p.add_argument("gt", nargs="?", help="ground truth JSON (COCO or LVIS format)")
    p.add_argument("results", nargs="?", help=f"{what}: .json array, .jsonl or .parquet")
    p.add_argument("--demo", action="store_true",
                   help="use the bundled 100-image LVIS v0.5 subset and the simulated detector instead")
    p.add_argument("--seed", type=int, default=0, help="simulated detector's seed (with --demo)")


def _session(a, eval_kwargs) -> Session:
    kw = eval_kwargs(a)
    if a.demo:
        if a.gt or a.results:
            raise InputError("give either GT and RESULTS or --demo, not both")
        from ..analysis.common import demo_inputs
        gt, res = demo_inputs(seed=a.seed, iou_type=kw["iou_type"])
        if not a.quiet:
            print(f"Ground truth: bundled 100 images of LVIS v0.5 val (CC BY 4.0); results: the simulated "
                  f"detector, seed {a.seed}\n", file=sys.stderr)
        s = Session.load(gt, res, **kw)
        s.demo = (gt, res)
    else:
        if not (a.gt and a.results):
            raise InputError("expected GT and RESULTS (or --demo)")
        s = Session.load(a.gt, a.results, **kw)
    if not a.quiet:
        from ..table import notices_text
        t = notices_text(s.notices)
        if t:
            print(t, file=sys.stderr)
    return s


def _keys(d: dict) -> list:
    return [k for k in KEYS if k in d]


def _row(label: str, d: dict, keys, width: int) -> str:
    return f"{label:<{width}}" + "".join(f" {fmt(d.get(k))}" for k in keys)


def _delta(a: dict, b: dict, keys, width: int, label="  change") -> str:
    cells = []
    for k in keys:
        x, y = a.get(k, -1), b.get(k, -1)
        cells.append("    -  " if x < 0 or y < 0 else f" {100 * (y - x):+6.2f}")
    return f"{label:<{width}}" + "".join(cells)


def _header(keys, width: int, extra=()) -> str:
    return " " * width + "".join(f"{k:>7}" for k in keys) + "".join(f"{e:>9}" for e in extra)


def _before_after(name: str, before: dict, after: dict, keys, width: int) -> list:
    """Three lines: a summary before, after, and the change in points."""
    return [_row(f"{name}, before", before, keys, width), _row(f"{name}, after re-ranking", after, keys, width),
            _delta(before, after, keys, width)]


def _pooled_table(title: str, rows, keys, width: int) -> list:
    """A titled table of (label, summary, AP-Pool summary) rows, AP-Pool's AP in the last column."""
    return [title, _header(keys, width, ("AP-Pool",))] + [
        _row(label, d, keys, width) + f"   {fmt(pooled['AP'])}" for label, d, pooled in rows]


def _side_by_side(label: str, old: dict, fixed: dict, keys, width: int, delta_from=None) -> list:
    """AP-Old's and AP-Fixed's keys on one line; with ``delta_from`` (old, fixed), the change below."""
    lines = [_row(label, old, keys, width) + " " + _row("", fixed, keys, 0)]
    if delta_from is not None:
        lines.append(_delta(delta_from[0], old, keys, width) + " " + _delta(delta_from[1], fixed, keys, 0, label=""))
    return lines


def _print(lines) -> None:
    for line in lines:
        print(line)


def _write_json(a, result) -> None:
    """``--json OUT``: the result's ``to_dict()``."""
    if a.json:
        from ..output import write_json
        write_json(a.json, result.to_dict())


def _plot(a, plot: str, res, filename: str) -> None:
    """With ``--plots DIR``: ``lveval.analysis.plots.<plot>(res, DIR/filename)``."""
    if a.plots:
        from ..analysis import plots
        output_dir(a.plots)
        getattr(plots, plot)(res, os.path.join(a.plots, filename))


# ---- toy ------------------------------------------------------------------------------------------
def cmd_toy(a) -> int:
    from ..analysis import toy
    fig = toy.run()
    print(toy.report(fig))
    _write_json(a, fig)
    return 0


# ---- rerank -----------------------------------------------------------------------------------------
def cmd_rerank(a, eval_kwargs) -> int:
    from ..analysis.rerank import gaming_selection, rerank
    if a.keep_per_class is None:
        raise InputError("the policy needs --keep-per-class K (detections kept per class over the set)")
    if a.keep_per_class <= 0:
        raise InputError(f"--keep-per-class must be positive, got {a.keep_per_class}", field="keep-per-class")
    s = _session(a, eval_kwargs)
    res = rerank(s, a.keep_per_class)
    st, before, after = res.settings, res.before, res.after
    keys = _keys(before.old)
    w = 44
    n, K = limit_label(st.max_dets_per_image or -1), limit_label(st.max_dets_per_class or -1)
    print(f"Gaming policy (paper Table 1): keep the top {a.keep_per_class:,} detections per class over the set, "
          f"then {n} per image\n({st.num_detections_before:,} detections before, "
          f"{st.num_detections_after:,} after)\n")
    print(_header(keys, w))
    _print(_before_after(f"AP-Old ({n}/image)", before.old, after.old, keys, w)
           + _before_after(f"AP-Fixed ({K}/class)", before.fixed, after.fixed, keys, w))
    d_old = after.old["AP"] - before.old["AP"]
    d_fix = after.fixed["AP"] - before.fixed["AP"]
    print(f"\nAP-Old {'rises' if d_old > 0 else 'does not rise'} ({100 * d_old:+.2f}) and AP-Fixed "
          f"{'rises' if d_fix > 0 else 'does not rise'} ({100 * d_fix:+.2f}) under a policy that only "
          "discards detections.")
    if a.write:
        from ..io.results import write_results
        keep = gaming_selection(s, a.keep_per_class)
        write_results(s.dets.take(keep), a.write)
        print(f"wrote {int(keep.sum()):,} re-ranked detections to {a.write}")
    _write_json(a, res)
    return 0


# ---- sweep -------------------------------------------------------------------------------------------
def cmd_sweep(a, eval_kwargs) -> int:
    from ..analysis.sweep import sweep, time_separate
    caps = parse_limits(a.max_dets_per_image, "max-dets-per-image")
    budgets = parse_limits(a.max_dets_per_class, "max-dets-per-class")
    s = _session(a, eval_kwargs)
    res = sweep(s, caps, budgets)
    keys = _keys(res.dets_per_image[0].old)
    w = 14
    _print(_pooled_table("AP-Old vs detections per image (paper Tables 2 and 6)",
                         [(limit_label(r.cap), r.old, r.pooled) for r in res.dets_per_image], keys, w)
           + _pooled_table("\nAP-Fixed vs detections per class, no per-image cap (paper Table 4)",
                           [(limit_label(r.k), r.fixed, r.pooled) for r in res.dets_per_class], keys, w))
    t = res.timing
    print(f"\n{t.settings} settings from one load ({t.load_s:.2f} s) and one matching pass "
          f"({t.match_s:.2f} s), accumulated in {t.accumulate_s:.2f} s: {t.total_s:.2f} s in all")
    if a.compare_timing:
        gt, res_in = s.demo or (a.gt, a.results)
        kw = eval_kwargs(a)
        sep = time_separate(gt, res_in, caps, budgets, **kw)
        res = replace(res, timing=replace(t, separate_evaluations_s=sep.total_s))
        print(f"the same figures from {sep.settings} separate lveval.evaluate() calls: {sep.total_s:.2f} s "
              f"({sep.total_s / max(t.total_s, 1e-9):.1f}x as long)")
    if a.plots:
        from ..analysis import plots
        output_dir(a.plots)
        budget = s.budget()
        s.ensure_matched(budget)   # the default budget may lie outside the swept settings
        fixed = s.fixed(budget)
        plots.plot_cap_sweep(res.dets_per_image, fixed, os.path.join(a.plots, "cap_sweep.png"))
        import numpy as np
        counts = np.bincount(s.dets.cat_idx, minlength=s.gt.num_categories)
        plots.plot_budget_sweep(res.dets_per_class, os.path.join(a.plots, "budget_sweep.png"), counts)
        print(f"plots: {os.path.join(a.plots, 'cap_sweep.png')}, {os.path.join(a.plots, 'budget_sweep.png')}")
    _write_json(a, res)
    return 0


# ---- subsets ---------------------------------------------------------------------------------------
def cmd_subsets(a, eval_kwargs) -> int:
    from ..analysis.subsets import subsets
    caps = parse_limits(a.caps, "caps")
    if len(caps) < 2:
        raise InputError("give two caps, e.g. --caps 300,5000", field="caps")
    s = _session(a, eval_kwargs)
    res = subsets(s, caps)
    labels = [limit_label(c) for c in res.caps]
    print("Per-image cap on class subsets (paper Table 3): results and ground truth restricted to each subset\n")
    print(f"{'subset':<8}{'classes':>9}{'with GT':>9}{'inst/class':>12}" + "".join(f"{'AP@' + lbl:>10}" for lbl in labels)
          + f"{'change':>9}")
    for r in res.subsets:
        print(f"{r.subset:<8}{r.num_classes:>9,}{r.num_classes_with_gt:>9,}{r.instances_per_class:>12.1f}"
              + "".join(f"{fmt(v):>10}" for v in r.AP.values())
              + (f"{100 * r.delta:+9.2f}" if r.delta is not None else f"{'-':>9}"))
    _plot(a, "plot_subsets", res, "subsets.png")
    _write_json(a, res)
    return 0


# ---- scores ----------------------------------------------------------------------------------------
def cmd_scores(a, eval_kwargs) -> int:
    from ..analysis.scores import score_stats, table
    s = _session(a, eval_kwargs)
    res = score_stats(s)
    print("Score by frequency group (paper Figure 3), normalised so frequent classes = 1.0\n")
    print(table(res))
    _plot(a, "plot_scores", res, "scores.png")
    _write_json(a, res)
    return 0


# ---- nms -------------------------------------------------------------------------------------------
def cmd_nms(a, eval_kwargs) -> int:
    from ..analysis.nms import nms_sensitivity, parse_thresholds
    ths = parse_thresholds(a.thresholds)
    s = _session(a, eval_kwargs)
    res = nms_sensitivity(s, ths)
    rows = res.rows
    base = rows[0]
    keys = _keys(base.old)
    print(f"Class-wise NMS over {len(s.dets):,} raw detections, then AP-Old and AP-Fixed (paper Table 12); "
          f"changes are against threshold {base.threshold if base.threshold is not None else 'none'}\n")
    w = 22
    print(f"{'':<{w}}{'AP-Old':^{7 * len(keys)}} {'AP-Fixed':^{7 * len(keys)}}")
    print(f"{'NMS IoU   dets kept':<{w}}" + "".join(f"{k:>7}" for k in keys) + " " + "".join(f"{k:>7}" for k in keys))
    for r in rows:
        t = "none" if r.threshold is None else f"{r.threshold:.2f}"
        _print(_side_by_side(f"{t:<8}{r.num_detections:>12,}", r.old, r.fixed, keys, w,
                             delta_from=None if r is base else (base.old, base.fixed)))
    print(f"\nNMS for all thresholds: {res.timing.nms_s:.2f} s; total {res.timing.total_s:.2f} s")
    _plot(a, "plot_nms", res, "nms.png")
    _write_json(a, res)
    return 0


# ---- audit -----------------------------------------------------------------------------------------
def cmd_audit(a, eval_kwargs) -> int:
    from ..analysis.audit import write_audit
    t0 = time.perf_counter()
    output_dir(a.out)   # before the run: --out naming a file is refused at once
    s = _session(a, eval_kwargs)
    fig = write_audit(s, a.out)
    f = fig.findings
    print(f"lveval audit: {fig.counts.num_detections:,} detections, {fig.counts.num_images:,} images\n")
    for key in ("cap", "rerank", "budget", "scores", "protocols"):
        if key in f:
            print("- " + f[key]["text"])
    print("\n" + f["recommendation"])
    n_png = sum(x.endswith(".png") for x in fig.files)
    print(f"\nwrote {os.path.join(a.out, 'index.html')} (report.md, figures.json and {n_png} "
          f"plots beside it) in {time.perf_counter() - t0:.1f} s")
    return 0


def register_cli(sub, common, eval_options, eval_kwargs) -> None:
    """Add the analysis sub-commands to lveval's command line."""
    t = sub.add_parser("toy", help="the paper's toy example (Figure 2) computed by the engine")
    t.add_argument("--json", metavar="OUT", help="write the figures as JSON")
    common(t)
    t.set_defaults(func=cmd_toy)

    r = sub.add_parser("rerank", help="gaming policy: top K per class, then the per-image cap (Table 1)")
    _inputs(r)
    r.add_argument("--keep-per-class", type=int, default=None, metavar="K",
                   help="the policy: detections kept per class over the whole set before the per-image cap")
    deprecated_alias(r, "--per-class", "--keep-per-class", "keep_per_class", type=int)
    eval_options(r, protocols=False)
    r.add_argument("--write", metavar="OUT", help="also write the re-ranked results (.json, .jsonl, .parquet)")
    r.add_argument("--json", metavar="OUT", help="write the figures as JSON")
    common(r)
    r.set_defaults(func=lambda a: cmd_rerank(a, eval_kwargs))

    w = sub.add_parser("sweep", help="AP-Old/AP-Pool per per-image cap, AP-Fixed per per-class budget "
                       "(Tables 2, 4, 6), one matching pass")
    _inputs(w)
    max_dets_options(w, type=str, metavar=("LIST", "LIST"), per_image_default="100,300,1000,2000,5000,10000",
                     per_class_default="1000,5000,10000,30000,50000",
                     per_image_help="per-image caps, comma-separated; 'inf' for none (default: Table 2's)",
                     per_class_help="per-class budgets, comma-separated; 'inf' for none (default: Table 4's)")
    deprecated_alias(w, "--dets-per-image", "--max-dets-per-image", "max_dets_per_image")
    deprecated_alias(w, "--dets-per-class", "--max-dets-per-class", "max_dets_per_class")
    eval_options(w, protocols=False, max_dets=False)
    w.add_argument("--compare-timing", action="store_true",
                   help="also time one lveval.evaluate() call per setting, for comparison")
    w.add_argument("--plots", metavar="DIR", help="write cap_sweep.png and budget_sweep.png into DIR")
    w.add_argument("--json", metavar="OUT", help="write the figures as JSON")
    common(w)
    w.set_defaults(func=lambda a: cmd_sweep(a, eval_kwargs))

    u = sub.add_parser("subsets", help="per-image cap on rare/common/frequent subsets (Table 3)")
    _inputs(u)
    u.add_argument("--caps", default="300,5000", metavar="LOW,HIGH", help="the two per-image caps compared")
    eval_options(u, protocols=False)
    u.add_argument("--plots", metavar="DIR", help="write subsets.png into DIR")
    u.add_argument("--json", metavar="OUT", help="write the figures as JSON")
    common(u)
    u.set_defaults(func=lambda a: cmd_subsets(a, eval_kwargs))

    c = sub.add_parser("scores", help="mean score per frequency group, frequent = 1.0 (Figure 3)")
    _inputs(c)
    eval_options(c, protocols=False)
    c.add_argument("--plots", metavar="DIR", help="write scores.png into DIR")
    c.add_argument("--json", metavar="OUT", help="write the figures as JSON")
    common(c)
    c.set_defaults(func=lambda a: cmd_scores(a, eval_kwargs))

    n = sub.add_parser("nms", help="class-wise NMS thresholds on raw detections: AP-Old vs AP-Fixed (Table 12)")
    _inputs(n, what="raw (pre-NMS) results")
    n.add_argument("--thresholds", default="0.5,0.1,0.3,0.7,0.9", metavar="LIST",
                   help="NMS IoU thresholds; the first is the baseline; 'none' = no NMS (default: Table 12's)")
    eval_options(n, protocols=False)
    n.add_argument("--plots", metavar="DIR", help="write nms.png into DIR")
    n.add_argument("--json", metavar="OUT", help="write the figures as JSON")
    common(n)
    n.set_defaults(func=lambda a: cmd_nms(a, eval_kwargs))

    d = sub.add_parser("audit", help="one report: cap and re-ranking sensitivity, budgets, scores, protocols")
    _inputs(d)
    d.add_argument("--out", required=True, metavar="DIR", help="output directory (index.html, report.md, ...)")
    eval_options(d, protocols=False)
    common(d)
    d.set_defaults(func=lambda a: cmd_audit(a, eval_kwargs))
