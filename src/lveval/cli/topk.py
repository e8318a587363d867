"""``lveval topk RESULTS --max-dets-per-class K --out OUT``: stream a results file down to the top K per class."""
from __future__ import annotations

import argparse
import sys

from ..exceptions import InputError
from ..params import DEFAULT_MAX_DETS_PER_CLASS, POLICIES
from .options import deprecated_alias


def _cmd_topk(a) -> int:
    from ..progress import auto_enabled
    from ..topk import topk_file

    progress = auto_enabled(a.quiet)
    if a.gt is None and (a.on_unknown_image or a.on_unknown_category):
        raise InputError("--on-unknown-image/--on-unknown-category need --gt (the ground truth whose "
                         "images and categories are known)")
    k, n = a.max_dets_per_class, a.max_dets_per_image
    counts = topk_file(a.results, a.out, k, per_image=n, progress=progress, block_size=a.block_mb << 20,
                       gt=a.gt, on_unknown_image=a.on_unknown_image or "error",
                       on_unknown_category=a.on_unknown_category or "error")
    if not a.quiet:
        extra = f" and the top {n} per image" if n else ""
        print(f"kept {counts['written']} of {counts['read']} detections (the top {k} per class"
              f"{extra}) in {a.out}")
        sk = counts.get("skipped") or {}
        dropped = [f"{c} of images not in the ground truth" if w == "image_id" else
                   f"{c} of categories not in the ground truth" for w, c in sk.items() if c]
        if dropped:
            print(f"dropped before the selection: {', '.join(dropped)}", file=sys.stderr)
    return 0


def register_cli(sub, common, eval_options, eval_kwargs) -> None:
    """Add ``lveval topk``."""
    p = sub.add_parser("topk", help="keep the top K detections per class of a results file (streaming)",
                       description="Reduce a results file to the top K detections of each class over the "
                       "whole file (AP-Fixed's budget), streaming: memory grows with K x classes, not "
                       "with the file. Records keep file order (and, JSON to JSON, their exact bytes), so "
                       "`lveval evaluate` gives the same AP-Fixed and AP-Pool on the output as on the input.")
    p.add_argument("results", help="results: .json array, .jsonl or .parquet")
    p.add_argument("--max-dets-per-class", type=int, default=DEFAULT_MAX_DETS_PER_CLASS, metavar="K",
                   help=f"detections kept per class (default {DEFAULT_MAX_DETS_PER_CLASS}, the paper's budget)")
    p.add_argument("--max-dets-per-image", type=int, default=None, metavar="N",
                   help="also keep the top N of each image, so AP-Old (N >= its cap, e.g. 300) stays exact")
    deprecated_alias(p, "--per-class", "--max-dets-per-class", "max_dets_per_class", type=int)
    deprecated_alias(p, "--per-image", "--max-dets-per-image", "max_dets_per_image", type=int)
    p.add_argument("--out", required=True, metavar="OUT", help="output: .json, .jsonl or .parquet")
    p.add_argument("--gt", metavar="GT", default=None,
                   help="ground truth: apply the evaluation's unknown-id policies before selecting, so "
                   "`lveval evaluate` gives the same figures on the output as on the input")
    p.add_argument("--on-unknown-image", choices=POLICIES, default=None,
                   help="with --gt: records of images not in it stop the run (error, default) or are dropped")
    p.add_argument("--on-unknown-category", choices=POLICIES, default=None,
                   help="with --gt: records of categories not in it stop the run (error, default) or are dropped")
    p.add_argument("--block-mb", type=int, default=32, metavar="MB", help=argparse.SUPPRESS)
    common(p)
    p.set_defaults(func=_cmd_topk)
