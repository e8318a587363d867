"""``lveval errors GT RESULTS``: TIDE's error decomposition under AP-Fixed's and AP-Old's selections."""
from __future__ import annotations

import sys

from ..error_analysis.assign import TYPES
from ..exceptions import InputError

LABELS = {"cls": "Cls", "loc": "Loc", "both": "Both", "dupe": "Dupe", "bkg": "Bkg", "miss": "Miss"}
NAMES = {"fixed": "AP-Fixed selection (top K per class)", "old": "AP-Old selection (cap per image)"}


def _pts(v) -> str:
    return "     -" if v is None or v < 0 else f"{100 * v:6.2f}"


def text_report(fig: dict, selection: str, limit: int = 10) -> str:
    """The figures of one selection as text (points of AP50)."""
    lines = [f"{NAMES[selection]}: AP50 {_pts(fig['AP50']).strip()}",
             "          " + "".join(f"{LABELS[t]:>7}" for t in TYPES) + "     FP     FN",
             "  dAP    " + "".join(f" {_pts(fig['dAP'][t])}" for t in TYPES)
             + f" {_pts(fig['dAP_special']['fp'])} {_pts(fig['dAP_special']['fn'])}",
             "  count  " + "".join(f" {fig['counts'][t]:6d}" for t in TYPES)]
    for g, b in fig["by_frequency"].items():
        lines.append(f"  {g}: AP50 {_pts(b['AP50']).strip():>6} dAP" + "".join(f" {_pts(b['dAP'][t])}" for t in TYPES)
                     + f"   ({b['num_classes']} class{'' if b['num_classes'] == 1 else 'es'})")
    cb = fig.get("confusion_by_frequency") or {}
    if cb:
        lines.append("  classification errors, true group -> detected group: "
                     + ", ".join(f"{t}->{d} {cb[t][d]['count']}" for t in cb for d in cb[t]))
    if fig["confusions"]:
        lines.append("  top confusions (detected <- true: count, dAP):")
        for c in fig["confusions"][:limit]:
            lines.append(f"    {c['detected_name']} <- {c['true_name']}: {c['count']}, {_pts(c['dAP']).strip()}")
    return "\n".join(lines)


def cmd_errors(a, eval_kwargs) -> int:
    from ..error_analysis.core import analyze
    from ..output import check_writable
    from .analysis import _session

    check_writable(a.json)
    if a.top < 0:
        raise InputError(f"--top must be >= 0, got {a.top}", field="top")
    s = _session(a, eval_kwargs)
    protocols = ("fixed", "old") if a.protocol == "both" else (a.protocol,)
    rep = analyze(s.ev, protocols, top_confusions=a.top, notices=s.notices, inputs=s.inputs)
    print("TIDE error analysis (Bolya et al. 2020): dAP = AP50 gained by fixing only that error type, "
          "in points\n")
    print("\n\n".join(text_report(rep[p], p) for p in protocols))
    d = rep.to_dict()
    if a.json:
        from ..output import write_json
        write_json(a.json, d)
    if a.html:
        from ..error_analysis.html import write_html
        path = write_html(a.html, d)
        if not a.quiet:
            print(f"\nwrote {path}", file=sys.stderr)
    return 0


def register_cli(sub, common, eval_options, eval_kwargs) -> None:
    """Add ``lveval errors`` to lveval's command line."""
    from .analysis import _inputs

    e = sub.add_parser("errors", help="TIDE error analysis: dAP per error type, per frequency group, "
                       "class confusions")
    _inputs(e)
    e.add_argument("--protocol", choices=("old", "fixed", "both"), default="both",
                   help="the selection analysed: AP-Old's per-image cap, AP-Fixed's per-class top K, or both "
                        "(default)")
    e.add_argument("--top", type=int, default=20, metavar="N", help="confusion pairs listed (default 20)")
    eval_options(e, protocols=False)
    e.add_argument("--json", metavar="OUT", help="write all figures as JSON")
    e.add_argument("--html", metavar="DIR", help="write an HTML page (errors.html) into DIR")
    common(e)
    e.set_defaults(func=lambda a: cmd_errors(a, eval_kwargs))
