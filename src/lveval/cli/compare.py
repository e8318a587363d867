"""``lveval compare GT A.json B.json [...]``: paired differences with bootstrap intervals."""
from __future__ import annotations

import os
import sys

from ..exceptions import InputError


def _names(a) -> list:
    if not a.names:
        names = [os.path.splitext(os.path.basename(r))[0] for r in a.results]
        if len(set(names)) == len(names):
            return names
        return [f"{n}#{i}" for i, n in enumerate(names)]
    names = [n.strip() for n in a.names.split(",")]
    if len(names) != len(a.results):
        raise InputError(f"--names gives {len(names)} names for {len(a.results)} results", field="names")
    return names


def cmd_compare(a, eval_kwargs) -> int:
    from ..comparison.core import compare
    from ..comparison.report import text_table, write_html
    from ..output import check_writable, write_json
    from .options import protocols_arg

    if len(a.results) < 2:
        raise InputError("give at least two results files (the first is the baseline)")
    check_writable(a.json)
    names = _names(a)
    if a.workers is not None and a.workers < 1:
        raise InputError(f"--workers must be at least 1, got {a.workers}", field="workers")
    c = compare(a.gt, dict(zip(names, a.results)), bootstrap=a.bootstrap, seed=a.seed,
                confidence=a.confidence, protocols=protocols_arg(a), workers=a.workers,
                scheduler=a.scheduler, **eval_kwargs(a))
    d = c.to_dict()
    print(text_table(d))
    if not a.quiet:
        for w in c.notices.warnings:
            print(f"warning: {w}", file=sys.stderr)
        t = c.timings
        print(f"{len(names)} models loaded and matched once ({t['load_s'] + t['match_s']:.1f} s); "
              f"{a.bootstrap} replicates in {t['bootstrap_s']:.1f} s", file=sys.stderr)
    if a.json:
        write_json(a.json, d)
    if a.html:
        path = write_html(d, a.html, os.path.basename(a.gt))
        if not a.quiet:
            print(f"wrote {path}", file=sys.stderr)
    return 0


def register_cli(sub, common, eval_options, eval_kwargs) -> None:
    """Add ``lveval compare``."""
    p = sub.add_parser("compare", help="compare detectors: differences to a baseline with bootstrap intervals",
                       description="Evaluate every RESULTS against GT (each loaded and matched once), report each "
                       "model's AP-Old, AP-Fixed and AP-Pool, its difference to the first (the baseline) with a "
                       "paired bootstrap confidence interval over images, a verdict (gain under AP-Fixed, "
                       "AP-Old only, noise, loss) and the classes that changed beyond their own interval.")
    p.add_argument("gt", help="ground truth JSON (COCO or LVIS format)")
    p.add_argument("results", nargs="+", help="results files (.json, .jsonl, .parquet); the first is the baseline")
    p.add_argument("--names", metavar="A,B,...", help="model names, comma-separated (default: file names)")
    p.add_argument("--bootstrap", type=int, default=1000, metavar="N", help="bootstrap replicates (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the image draws (default 0)")
    p.add_argument("--confidence", type=float, default=0.95, help="confidence of the intervals (default 0.95)")
    eval_options(p)
    g = p.add_argument_group("replicates on Dask (needs: pip install 'lveval[distributed]'); same figures")
    g.add_argument("--workers", metavar="N", type=int, default=None, help="a local cluster of N worker processes")
    g.add_argument("--scheduler", metavar="ADDRESS", default=None, help="a Dask scheduler (e.g. tcp://host:8786)")
    p.add_argument("--json", metavar="OUT", help="write models, differences and intervals as JSON")
    p.add_argument("--html", metavar="DIR", help="write DIR/compare.html (one self-contained page)")
    common(p)
    p.set_defaults(func=lambda a: cmd_compare(a, eval_kwargs))
