"""The core sub-commands: ``evaluate``, ``demo`` and ``convert``."""
from __future__ import annotations

import sys

from ..output import check_writable, write_json
from .options import common, eval_kwargs, eval_options, protocols_arg


def print_result(result, quiet: bool, table=None) -> None:
    """The figures (``table(result)``, by default the protocol table) on stdout, notices on stderr."""
    from ..table import notices_text, protocol_table

    print((table or protocol_table)(result))
    if not quiet:
        n = notices_text(result.notices)
        if n:
            print(n, file=sys.stderr)


def cmd_evaluate(a) -> int:
    from ..metrics import evaluate
    from ..progress import auto_enabled
    from .distributed import evaluate_distributed, wants_distributed

    protocols = protocols_arg(a)
    check_writable(a.json)
    if wants_distributed(a):
        r = evaluate_distributed(a, protocols)
    else:
        r = evaluate(a.gt, a.results, protocols=protocols, progress=auto_enabled(a.quiet), **eval_kwargs(a))
    if a.json:   # written before anything is printed: a failed write is then the only line
        write_json(a.json, r.to_dict())
    print_result(r, a.quiet)
    return 0


def cmd_demo(a) -> int:
    from .. import data_path
    from ..metrics import evaluate
    from ..simulate import simulate

    check_writable(a.json)
    gt = data_path()
    print(f"Ground truth: {gt}\n  (100 images of LVIS v0.5 val, CC BY 4.0, lvisdataset.org)")
    print(f"Results: a simulated detector (seed {a.seed}, {a.candidates} candidates per image,\n"
          "  under-confident on rare classes)\n")
    res = simulate(gt, seed=a.seed, candidates_per_image=a.candidates, iou_type=a.iou_type)
    r = evaluate(gt, res, iou_type=a.iou_type)
    print_result(r, a.quiet, table=protocol_table_with_note)
    if a.json:
        write_json(a.json, r.to_dict())
    return 0


def protocol_table_with_note(r) -> str:
    from ..table import protocol_table

    text = protocol_table(r)
    if r.old and r.fixed:
        d = (r.fixed["AP"] - r.old["AP"]) * 100
        text += (f"\n\nAP-Fixed - AP-Old = {d:+.2f} points: the per-image cap drops detections that the "
                 "per-class budget keeps.\nAP-Pool ranks all classes' detections together and so "
                 "rewards scores that are comparable across classes.")
    return text


def cmd_convert(a) -> int:
    from ..io.results import load_results, write_results

    check_writable(a.output)
    d = load_results(a.input)
    write_results(d, a.output)
    print(f"wrote {len(d)} detections to {a.output}")
    return 0


def register_cli(sub, common_=common, eval_options_=eval_options, eval_kwargs_=eval_kwargs) -> None:
    """Add ``evaluate``, ``demo`` and ``convert``."""
    from ..params import IOU_TYPES
    from .distributed import add_arguments as distributed_arguments

    e = sub.add_parser("evaluate", help="AP-Old, AP-Fixed and AP-Pool of a results file")
    e.add_argument("gt", help="ground truth JSON (COCO or LVIS format)")
    e.add_argument("results", help="results: .json array, .jsonl or .parquet")
    eval_options(e)
    distributed_arguments(e)   # --workers / --scheduler (needs the 'distributed' extra only when used)
    e.add_argument("--json", metavar="OUT", help="write all figures as JSON")
    common(e)
    e.set_defaults(func=cmd_evaluate)

    d = sub.add_parser("demo", help="evaluate a simulated detector on the bundled LVIS subset")
    d.add_argument("--iou-type", choices=IOU_TYPES, default="bbox")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--candidates", type=int, default=1000, help="detections per image")
    d.add_argument("--json", metavar="OUT")
    common(d)
    d.set_defaults(func=cmd_demo)

    c = sub.add_parser("convert", help="convert results between .json, .jsonl and .parquet")
    c.add_argument("input")
    c.add_argument("output")
    common(c)
    c.set_defaults(func=cmd_convert)
