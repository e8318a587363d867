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

from ..params import DATASETS, DEFAULT_MAX_DETS_PER_CLASS, IOU_TYPES, POLICIES, PROTOCOLS, Params

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
    p.add_argument("--iou-type", choices=IOU_TYPES, default="bbox")
    if protocols:
        p.add_argument("--protocols", default=",".join(PROTOCOLS),
                       help=f"comma-separated subset of {','.join(PROTOCOLS)} (default: all three)")
    if max_dets:
        max_dets_options(p)
    p.add_argument("--dataset", choices=DATASETS, default=None,
                   help="force LVIS federated rules or COCO crowd rules (default: guessed from the GT)")
    p.add_argument("--on-unknown-image", choices=POLICIES, default="error")
    p.add_argument("--on-unknown-category", choices=POLICIES, default="error")


def eval_kwargs(a: argparse.Namespace) -> dict:
    """The evaluation options of parsed arguments, as keywords of ``lveval.evaluate`` / ``Params``."""
    out = dict(iou_type=a.iou_type, dataset=a.dataset, on_unknown_image=a.on_unknown_image,
               on_unknown_category=a.on_unknown_category)
    for k in ("max_dets_per_image", "max_dets_per_class"):
        v = getattr(a, k, None)
        if isinstance(v, int) or v is None:
            out[k] = v
    return out


def protocols_arg(a: argparse.Namespace) -> list:
    """The --protocols option as a list (validated: a bad name is one OptionError line)."""
    return list(Params(protocols=a.protocols).protocols)
