"""Options shared by the sub-commands, defined once: the evaluation options of :class:`lveval.Params`
and the common ``--debug``/``--quiet``.

One vocabulary: ``--max-dets-per-image N`` and ``--max-dets-per-class K`` on every command
(sweeps take comma lists on the same flags). Older spellings (``--per-class``,
``--per-image``, ``--dets-per-class``, ``--dets-per-image``) still work and print a
deprecation warning.
"""
from __future__ import annotations

import argparse
import sys
from typing import Any

from ..params import CHALLENGES, DATASETS, DEFAULT_MAX_DETS_PER_CLASS, IOU_TYPES, POLICIES, PROTOCOLS, Params

HELP_PER_IMAGE = "AP-Old's cap per image (LVIS: 300; COCO: pycocotools' 100 per image and class)"
HELP_PER_CLASS = f"AP-Fixed/AP-Pool budget per class over the whole set (default {DEFAULT_MAX_DETS_PER_CLASS})"


class Deprecated(argparse.Action):
    """An old spelling of an option: stores into the new option's destination and warns once."""

    def __init__(self, option_strings, dest, new: str = "", **kw):
        self.new = new
        super().__init__(option_strings, dest, **kw)

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"lveval: warning: {option_string} is deprecated; use {self.new}", file=sys.stderr)
        setattr(namespace, self.dest, values)


def deprecated_alias(p: argparse.ArgumentParser, old: str, new: str, dest: str, type=None) -> None:
    """Accept ``old`` as a hidden, warning spelling of ``new``."""
    p.add_argument(old, dest=dest, action=Deprecated, new=new, type=type, help=argparse.SUPPRESS)


def common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    p.add_argument("--quiet", action="store_true", help="no progress bars or notices")


def max_dets_options(p: argparse.ArgumentParser, *, per_image_help: str = HELP_PER_IMAGE,
                     per_class_help: str = HELP_PER_CLASS, per_class_default: Any = DEFAULT_MAX_DETS_PER_CLASS,
                     per_image_default: Any = None, type=int, metavar=("N", "K")) -> None:
    """``--max-dets-per-image`` and ``--max-dets-per-class`` (``type=str`` for comma lists)."""
    p.add_argument("--max-dets-per-image", type=type, default=per_image_default, metavar=metavar[0],
                   help=per_image_help)
    p.add_argument("--max-dets-per-class", type=type, default=per_class_default, metavar=metavar[1],
                   help=per_class_help)


def eval_options(p: argparse.ArgumentParser, protocols: bool = True, max_dets: bool = True) -> None:
    """The evaluation options every evaluating command takes (fields of ``lveval.Params``)."""
    p.add_argument("--iou-type", choices=IOU_TYPES, default="bbox",
                   help="boundary: Boundary IoU, min(mask IoU, IoU of the masks' boundaries)")
    p.add_argument("--dilation-ratio", type=float, default=None, metavar="R",
                   help="--iou-type boundary: band width as a fraction of the image diagonal (default 0.02)")
    if protocols:
        p.add_argument("--challenge", choices=tuple(CHALLENGES), default=None,
                       help="lvis2021: the LVIS 2021 challenge figure, boundary AP-Fixed (10000/class, "
                            "no per-image cap, dilation 0.02), with AP-Pool on the same detections")
        p.add_argument("--protocols", default=",".join(PROTOCOLS),
                       help=f"comma-separated subset of {','.join(PROTOCOLS)} (default: all three)")
    if max_dets:
        max_dets_options(p)
    p.add_argument("--dataset", choices=DATASETS, default=None,
                   help="force LVIS federated rules or COCO crowd rules (default: guessed from the GT)")
    p.add_argument("--on-unknown-image", choices=POLICIES, default="error")
    p.add_argument("--on-unknown-category", choices=POLICIES, default="error")
    g = p.add_argument_group("evaluation settings (defaults: lvis-api's / pycocotools')")
    g.add_argument("--iou-thrs", metavar="START:STOP:STEP|LIST", default=None,
                   help="IoU thresholds (default 0.5:0.95:0.05)")
    g.add_argument("--rec-thrs", metavar="START:STOP:STEP|LIST", default=None,
                   help="recall thresholds (default 0:1:0.01)")
    g.add_argument("--area-ranges", metavar="NAME=LO:HI,...", default=None,
                   help="named area ranges in order; the first is AP's own, the others key AP<initial> "
                        "(default all=0:1e10,small=0:1024,medium=1024:9216,large=9216:1e10)")
    g.add_argument("--max-dets", metavar="N,N,...", default=None,
                   help="detection limits: recall AR@N at each; AP-Old at the largest unless "
                        "--max-dets-per-image is given (COCO rules: pycocotools' maxDets)")
    g.add_argument("--class-agnostic", action="store_true", default=None,
                   help="match every detection to every object regardless of class (pycocotools' useCats=0)")
    g.add_argument("--split", metavar="NAME=CLASSES", action="append", default=None,
                   help="report AP, AP50, AP75 (and AP-Pool) over a class split, keys AP_NAME...; CLASSES: "
                        "r, c, f, a file of ids or names (one a line) or comma-separated ids or names, "
                        "joined by '+' for a union; repeatable")
    g.add_argument("--per-class-metrics", action="store_true", default=None,
                   help="per-class AP50, AP75, AP per area, AR and true positives at IoU 0.5 in the JSON")


def parse_thresholds(text: str, option: str) -> tuple:
    """'0.5:0.95:0.05' (the references' linspace construction) or '0.5,0.75' -> floats."""
    from ..exceptions import OptionError
    from ..params import _linspace

    try:
        if ":" in text:
            start, stop, step = (float(x) for x in text.split(":"))
            if step <= 0 or stop < start:
                raise ValueError
            return _linspace(start, stop, step)
        return tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise OptionError(option, f"expected START:STOP:STEP or a comma list of numbers, got {text!r}") from None


def parse_area_ranges(text: str) -> tuple:
    """'all=0:1e10,small=0:1024' -> (("all", 0.0, 1e10), ("small", 0.0, 1024.0))."""
    from ..exceptions import OptionError

    out = []
    for part in (x.strip() for x in text.split(",")):
        name, eq, rng = part.partition("=")
        lo, colon, hi = rng.partition(":")
        try:
            if not (eq and colon and name.strip()):
                raise ValueError
            out.append((name.strip(), float(lo), float(hi)))
        except ValueError:
            raise OptionError("area-ranges", f"expected NAME=LOW:HIGH, got {part!r}") from None
    return tuple(out)


def parse_splits(items: list) -> tuple:
    from ..exceptions import OptionError

    out = []
    for item in items:
        name, eq, spec = item.partition("=")
        if not eq:
            raise OptionError("split", f"expected NAME=CLASSES, got {item!r}")
        out.append((name.strip(), spec.strip()))
    return tuple(out)


def eval_kwargs(a: argparse.Namespace) -> dict:
    """The evaluation options of parsed arguments, as keywords of ``lveval.evaluate`` / ``Params``."""
    from ..exceptions import OptionError

    out = dict(iou_type=a.iou_type, dataset=a.dataset, on_unknown_image=a.on_unknown_image,
               on_unknown_category=a.on_unknown_category)
    for k in ("max_dets_per_image", "max_dets_per_class"):
        v = getattr(a, k, None)
        if isinstance(v, int) or v is None:
            out[k] = v
    if getattr(a, "iou_thrs", None) is not None:
        out["iou_thresholds"] = parse_thresholds(a.iou_thrs, "iou-thrs")
    if getattr(a, "rec_thrs", None) is not None:
        out["rec_thresholds"] = parse_thresholds(a.rec_thrs, "rec-thrs")
    if getattr(a, "area_ranges", None) is not None:
        out["area_ranges"] = parse_area_ranges(a.area_ranges)
    if getattr(a, "max_dets", None) is not None:
        try:
            out["max_dets"] = tuple(int(x) for x in a.max_dets.split(",") if x.strip())
        except ValueError:
            raise OptionError("max-dets", f"expected a comma list of integers, got {a.max_dets!r}") from None
    for k in ("dilation_ratio", "challenge"):
        if getattr(a, k, None) is not None:
            out[k] = getattr(a, k)
    for k in ("class_agnostic", "per_class_metrics"):
        if getattr(a, k, None):
            out[k] = True
    if getattr(a, "split", None):
        out["splits"] = parse_splits(a.split)
    return out


def protocols_arg(a: argparse.Namespace) -> list:
    """The --protocols option as a list (validated: a bad name is one OptionError line)."""
    return list(Params(protocols=a.protocols).protocols)
