"""Every evaluation option in one frozen, validated object: :class:`Params`.

The defaults are the references' (lvis-api 0.5.3 / pycocotools): IoU thresholds
0.50:0.95:0.05 and recall thresholds 0:1:0.01 built with ``np.linspace`` exactly
as they build them (``np.arange`` drifts), area ranges all/small/medium/large.
A bad value raises :class:`~lveval.exceptions.OptionError` naming the option.

Adding an option: a field here (typed, with the reference default), its check in
``_validate``, its key in ``to_dict`` (written only when it differs from the
default, so existing outputs stay byte-identical), then the stage that uses it
(see docs/engine.md, "Where a new option goes").
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace
from functools import cached_property
from typing import Any, Literal, get_args

import numpy as np

from .exceptions import OptionError

IouType = Literal["bbox", "segm", "boundary"]
Protocol = Literal["old", "fixed", "pooled"]
Dataset = Literal["lvis", "coco"]
Policy = Literal["error", "skip"]

IOU_TYPES: tuple[str, ...] = get_args(IouType)
MASK_IOU_TYPES: tuple[str, ...] = ("segm", "boundary")   # types that evaluate masks
PROTOCOLS: tuple[Protocol, ...] = get_args(Protocol)
DATASETS: tuple[str, ...] = get_args(Dataset)
POLICIES: tuple[str, ...] = get_args(Policy)

#: AP-Fixed's per-class budget (paper, Section 4: 10,000 detections per class)
DEFAULT_MAX_DETS_PER_CLASS = 10_000
#: AP-Old's per-image cap under LVIS rules (lvis-api's ``max_dets``)
LVIS_MAX_DETS_PER_IMAGE = 300
#: pycocotools' ``maxDets``; its last value is the per-image-and-class cap under COCO rules
COCO_MAX_DETS: tuple[int, ...] = (1, 10, 100)

AREA_LABELS = ("all", "small", "medium", "large")
AREA_RANGES: tuple[tuple[str, float, float], ...] = (
    ("all", 0.0 ** 2, 1e5 ** 2), ("small", 0.0 ** 2, 32.0 ** 2),
    ("medium", 32.0 ** 2, 96.0 ** 2), ("large", 96.0 ** 2, 1e5 ** 2))


def _linspace(start: float, stop: float, step: float) -> tuple[float, ...]:
    """The references' threshold construction (``np.linspace`` with a rounded count)."""
    n = int(np.round((stop - start) / step)) + 1
    return tuple(float(x) for x in np.linspace(start, stop, n, endpoint=True))


IOU_THRS = _linspace(0.5, 0.95, 0.05)
REC_THRS = _linspace(0.0, 1.00, 0.01)


@dataclass(frozen=True)
class Params:
    """What an evaluation uses; recorded in every output (``to_dict``).

    ``max_dets_per_image``: AP-Old's cap (None: the rules' default, LVIS 300;
    under COCO rules pycocotools' largest ``maxDets``, applied per image and
    category as pycocotools does; negative: no cap). ``max_dets_per_class``:
    AP-Fixed's and AP-Pool's per-class budget over the whole set (negative: no
    budget). ``dataset``: "lvis" (federated rules) or "coco" (crowd rules);
    None until resolved from the ground truth (:meth:`resolve`).
    ``dilation_ratio``: Boundary IoU's band width as a fraction of the image
    diagonal (``iou_type="boundary"`` only). ``challenge``: the name of the preset
    (:data:`CHALLENGES`) these parameters were made from, or None.
    """

    iou_type: IouType = "bbox"
    protocols: tuple[Protocol, ...] = PROTOCOLS
    dataset: Dataset | None = None
    max_dets_per_image: int | None = None
    max_dets_per_class: int = DEFAULT_MAX_DETS_PER_CLASS
    on_unknown_image: Policy = "error"
    on_unknown_category: Policy = "error"
    iou_thresholds: tuple[float, ...] = IOU_THRS
    rec_thresholds: tuple[float, ...] = REC_THRS
    area_ranges: tuple[tuple[str, float, float], ...] = AREA_RANGES
    max_dets: tuple[int, ...] | None = None
    class_agnostic: bool = False
    splits: tuple[tuple[str, str], ...] = ()
    per_class_metrics: bool = False
    dilation_ratio: float = 0.02
    challenge: str | None = None
    coco_max_dets: tuple[int, ...] = field(default=COCO_MAX_DETS, init=False)

    def __post_init__(self) -> None:
        _normalise(self)
        _validate(self)
        limits = self.max_dets if self.max_dets is not None else COCO_MAX_DETS
        if self.dataset is not None and self.max_dets_per_image is None:
            if self.max_dets is not None:
                default = self.max_dets[-1]   # as pycocotools: AP at the largest limit
            else:
                default = LVIS_MAX_DETS_PER_IMAGE if self.dataset == "lvis" else COCO_MAX_DETS[-1]
            object.__setattr__(self, "max_dets_per_image", default)
        if self.dataset == "coco":
            n = self.max_dets_per_image
            assert n is not None   # set just above
            object.__setattr__(self, "coco_max_dets", tuple(m for m in limits[:-1] if m < n) + (n,))

    # ---- derived views ----------------------------------------------------------------------
    def resolve(self, dataset: str) -> Params:
        """These parameters under ``dataset``'s rules (self when they are already resolved)."""
        if self.dataset == dataset and self.max_dets_per_image is not None:
            return self
        return replace(self, dataset=dataset)  # type: ignore[arg-type]

    def replace(self, **changes: Any) -> Params:
        """A copy with ``changes`` (validated like the constructor's arguments)."""
        return replace(self, **changes)

    @cached_property
    def iou_thrs(self) -> np.ndarray:
        """IoU thresholds as float64 (T,)."""
        return np.asarray(self.iou_thresholds, np.float64)

    @cached_property
    def rec_thrs(self) -> np.ndarray:
        """Recall thresholds as float64 (R,)."""
        return np.asarray(self.rec_thresholds, np.float64)

    @cached_property
    def area_rng(self) -> np.ndarray:
        """Area ranges as float64 (A, 2), in the order of ``area_names``."""
        return np.array([[lo, hi] for _, lo, hi in self.area_ranges], np.float64).reshape(-1, 2)

    @property
    def area_names(self) -> tuple[str, ...]:
        return tuple(name for name, _, _ in self.area_ranges)

    def to_dict(self) -> dict:
        """The ``params`` record of JSON outputs."""
        return {"iou_type": self.iou_type, "dataset": self.dataset,
                "max_dets_per_image": self.max_dets_per_image,
                "max_dets_per_class": self.max_dets_per_class,
                **({"coco_max_dets": list(self.coco_max_dets)} if self.dataset == "coco" else {}),
                "iou_thrs": [round(float(t), 10) for t in self.iou_thrs],
                "num_rec_thrs": len(self.rec_thrs),
                "area_rng": {name: [float(lo), float(hi)] for name, lo, hi in self.area_ranges},
                **({"max_dets": list(self.max_dets)} if self.max_dets is not None else {}),
                **({"class_agnostic": True} if self.class_agnostic else {}),
                **({"splits": {name: spec for name, spec in self.splits}} if self.splits else {}),
                **({"per_class_metrics": True} if self.per_class_metrics else {}),
                **({"dilation_ratio": float(self.dilation_ratio)} if self.iou_type == "boundary" else {})}

    @classmethod
    def option_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))


def _floats(name: str, v: Any) -> tuple[float, ...]:
    try:
        arr = np.asarray(v, np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise OptionError(name, f"expected numbers, got {v!r}") from None
    return tuple(float(x) for x in arr)


def _normalise(p: Params) -> None:
    """Sequences given as lists or arrays become tuples (the object is frozen and hashable)."""
    set_ = object.__setattr__
    if isinstance(p.protocols, str):
        set_(p, "protocols", tuple(x.strip() for x in p.protocols.split(",") if x.strip()))
    else:
        set_(p, "protocols", tuple(p.protocols))
    set_(p, "iou_thresholds", _floats("iou_thresholds", p.iou_thresholds))
    set_(p, "rec_thresholds", _floats("rec_thresholds", p.rec_thresholds))
    if p.max_dets is not None:
        if isinstance(p.max_dets, str):
            set_(p, "max_dets", tuple(int(x) for x in p.max_dets.split(",") if x.strip()))
        else:
            set_(p, "max_dets", tuple(p.max_dets))
    splits = p.splits.items() if isinstance(p.splits, dict) else p.splits
    try:
        set_(p, "splits", tuple((str(n), str(v)) for n, v in splits))
    except (TypeError, ValueError):
        raise OptionError("splits", f"expected (name, classes) pairs, got {p.splits!r}") from None
    ranges = []
    for r in p.area_ranges:
        try:
            name, lo, hi = r
            ranges.append((str(name), float(lo), float(hi)))
        except (TypeError, ValueError):
            raise OptionError("area_ranges", f"expected (name, low, high) triples, got {r!r}") from None
    set_(p, "area_ranges", tuple(ranges))


def _is_int(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _choice(name: str, v: Any, allowed: tuple[str, ...]) -> None:
    if v not in allowed:
        raise OptionError(name, f"expected one of {', '.join(allowed)}, got {v!r}")


def _validate(p: Params) -> None:
    _choice("iou_type", p.iou_type, IOU_TYPES)
    if not p.protocols:
        raise OptionError("protocols", f"expected at least one of {', '.join(PROTOCOLS)}")
    for x in p.protocols:
        _choice("protocols", x, PROTOCOLS)
    if p.dataset is not None:
        _choice("dataset", p.dataset, DATASETS)
    _choice("on_unknown_image", p.on_unknown_image, POLICIES)
    _choice("on_unknown_category", p.on_unknown_category, POLICIES)
    if p.max_dets_per_image is not None and not _is_int(p.max_dets_per_image):
        raise OptionError("max_dets_per_image", f"expected an integer, got {p.max_dets_per_image!r}")
    if not _is_int(p.max_dets_per_class):
        raise OptionError("max_dets_per_class", f"expected an integer, got {p.max_dets_per_class!r}")
    _thresholds("iou_thresholds", p.iou_thresholds, low_open=True)
    if len(p.iou_thresholds) > 64:
        raise OptionError("iou_thresholds", "at most 64 thresholds")
    _thresholds("rec_thresholds", p.rec_thresholds, low_open=False)
    if not p.area_ranges:
        raise OptionError("area_ranges", "expected at least one area range")
    names = [n for n, _, _ in p.area_ranges]
    if len(set(names)) != len(names) or not all(names):
        raise OptionError("area_ranges", f"names must be non-empty and distinct, got {names}")
    initials = [n[0] for n in names[1:]]   # the first range is AP's own; the others key AP<initial>
    if len(set(initials)) != len(initials) or set(initials) & {"r", "c", "f", "_"}:
        raise OptionError("area_ranges", "after the first, names must start with distinct letters other than "
                          f"r, c, f (keys AP<initial>, APr/APc/APf are the frequency groups), got {names}")
    for name, lo, hi in p.area_ranges:
        if not (math.isfinite(lo) and lo >= 0 and hi >= lo) or math.isnan(hi):
            raise OptionError("area_ranges", f"range {name!r} must have 0 <= low <= high, got {lo}:{hi}")
    if p.max_dets is not None:
        if not p.max_dets or not all(_is_int(m) and m > 0 for m in p.max_dets):
            raise OptionError("max_dets", f"expected positive integers, got {list(p.max_dets)}")
        if list(p.max_dets) != sorted(set(p.max_dets)):
            raise OptionError("max_dets", f"expected strictly increasing values, got {list(p.max_dets)}")
    if not isinstance(p.class_agnostic, bool):
        raise OptionError("class_agnostic", f"expected True or False, got {p.class_agnostic!r}")
    if not isinstance(p.per_class_metrics, bool):
        raise OptionError("per_class_metrics", f"expected True or False, got {p.per_class_metrics!r}")
    r = p.dilation_ratio
    if isinstance(r, bool) or not isinstance(r, (int, float)) or not 0 < r < float("inf"):
        raise OptionError("dilation_ratio", f"expected a number > 0, got {r!r}")
    if p.challenge is not None:
        _choice("challenge", p.challenge, tuple(CHALLENGES))
        c = CHALLENGES[p.challenge]
        for name in ("iou_type", "max_dets_per_class", "dilation_ratio"):
            if getattr(p, name) != c[name]:
                raise OptionError(name, f"challenge {p.challenge} fixes {name} = {c[name]!r}, got "
                                        f"{getattr(p, name)!r}")
        extra = [x for x in p.protocols if x not in c["protocols"]]
        if extra:
            raise OptionError("protocols", f"challenge {p.challenge} reports {', '.join(c['protocols'])} only "
                                           f"(no per-image cap), not {', '.join(extra)}")
    names = [n for n, _ in p.splits]
    if len(set(names)) != len(names) or not all(n and n.replace("_", "").isalnum() for n in names):
        raise OptionError("splits", f"split names must be distinct words (letters, digits, _), got {names}")
    for n, spec in p.splits:
        if not spec.strip():
            raise OptionError("splits", f"split {n!r} names no classes")


def _thresholds(name: str, v: tuple[float, ...], low_open: bool) -> None:
    if not v:
        raise OptionError(name, "expected at least one threshold")
    if any(math.isnan(x) for x in v) or any(b <= a for a, b in zip(v, v[1:])):
        raise OptionError(name, f"expected strictly increasing values, got {list(v)}")
    lo_ok = v[0] > 0 if low_open else v[0] >= 0
    if not lo_ok or v[-1] > 1:
        interval = "(0, 1]" if low_open else "[0, 1]"
        raise OptionError(name, f"values must lie in {interval}, got {list(v)}")


# Presets fixing what an official benchmark reports. lvis2021: the LVIS 2021 challenge
# (lvis-api's lvis_challenge_2021 branch, LVISEval(..., mode="challenge2021")): Boundary IoU,
# the top 10,000 detections per class, no per-image cap, i.e. AP-Fixed; AP-Pool on the same set.
CHALLENGES: dict[str, dict[str, Any]] = {
    "lvis2021": {"iou_type": "boundary", "max_dets_per_class": 10_000, "dilation_ratio": 0.02,
                 "protocols": ("fixed", "pooled"),
                 "headline": "LVIS 2021 challenge: boundary AP-Fixed (10000/class, no per-image cap)"},
}


def challenge_settings(challenge: str, **given: Any) -> dict:
    """The Params fields a preset fixes, merged with the options ``given`` (those not None).

    OptionError for an unknown preset or an option that contradicts it (``iou_type="bbox"``,
    the API's and CLI's default, counts as not given; ``protocols``: all three means the
    preset's, else a subset of them)."""
    if challenge not in CHALLENGES:
        raise OptionError("challenge", f"expected one of {', '.join(CHALLENGES)}, got {challenge!r}")
    c = CHALLENGES[challenge]
    out = {k: v for k, v in given.items() if v is not None}
    if out.get("iou_type") == "bbox":
        del out["iou_type"]
    protocols = out.get("protocols")
    if protocols is not None and tuple(Params(protocols=protocols).protocols) == PROTOCOLS:
        del out["protocols"]
    for name in ("iou_type", "max_dets_per_class", "dilation_ratio", "protocols"):
        out.setdefault(name, c[name])
    out["challenge"] = challenge
    return out


PROTOCOL_NAMES = {"old": "AP-Old", "fixed": "AP-Fixed", "pooled": "AP-Pool"}


def protocol_label(protocol: str, params: Params, thousands: bool = False) -> str:
    """The printed name of a protocol with its limit, e.g. ``AP-Old (300/image)``,
    ``AP-Old (100/image/class)`` under COCO rules (pycocotools' limit is per image and class),
    ``AP-Fixed (10000/class)``; ``thousands``: ``10,000``."""
    def num(v: int | None) -> str:
        return f"{v:,}" if thousands and v is not None else str(v)

    if protocol == "old":
        n = params.max_dets_per_image
        if n is not None and n < 0:
            return "AP-Old (no cap)"
        per = "/image/class" if params.dataset == "coco" and not params.class_agnostic else "/image"
        return f"AP-Old ({num(n)}{per})"
    k = params.max_dets_per_class
    return f"{PROTOCOL_NAMES[protocol]} ({'no budget' if k < 0 else num(k) + '/class'})"
