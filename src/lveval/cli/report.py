"""``lveval report GT RESULTS --out DIR``: one self-contained HTML page of an evaluation."""
from __future__ import annotations


def _cmd_report(a) -> int:
    from ..report.build import build_report
    from .options import protocols_arg

    protocols = protocols_arg(a)
    classes = [c for c in a.classes.split(",") if c.strip()] if a.classes else None
    try:
        path = build_report(a.gt, a.results, a.out, classes=classes, calibration=a.calibration,
                            errors=a.errors, protocols=protocols, **a._eval_kwargs(a))
    except ValueError as exc:
        from ..exceptions import InputError

        raise InputError(str(exc)) from None
    if not a.quiet:
        print(f"wrote {path}")
    return 0


def register_cli(sub, common, eval_options, eval_kwargs) -> None:
    """Add ``lveval report``."""
    p = sub.add_parser("report", help="write a self-contained HTML report of an evaluation",
                       description="Evaluate RESULTS against GT and write DIR/report.html (one page: the three "
                       "protocols side by side, rare/common/frequent bars, precision-recall curves, a sortable "
                       "per-class table, score distributions, and the reliability diagram when a calibration "
                       "model is given) plus DIR/figures.json (what `lveval evaluate --json` writes).")
    p.add_argument("gt", help="ground truth JSON (COCO or LVIS format)")
    p.add_argument("results", help="results: .json array, .jsonl or .parquet")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory")
    p.add_argument("--classes", metavar="A,B,...",
                   help="classes (names or ids) whose precision-recall curves to draw "
                        "(default: the class with most ground truth in each frequency group)")
    p.add_argument("--calibration", metavar="MODEL.json",
                   help="calibration model (lveval.calibrate); adds the reliability diagram")
    p.add_argument("--errors", action="store_true",
                   help="add the TIDE error analysis of `lveval errors` (also written to DIR/errors.json)")
    eval_options(p)
    common(p)
    p.set_defaults(func=_cmd_report, _eval_kwargs=eval_kwargs)
