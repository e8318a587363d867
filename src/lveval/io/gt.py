"""Ground truth in COCO or LVIS format, as columnar numpy arrays.

Images and categories are kept sorted by id (the order lvis-api and
pycocotools evaluate them in); annotations keep file order, which decides
ties in matching exactly as the references do.
"""
from __future__ import annotations

import hashlib
import math
import os
import threading
import time
from dataclasses import dataclass, field
from itertools import chain
from typing import Any

import numpy as np

from ..exceptions import InputError, Notices
from .jsonfile import loads_any, read_bytes, strip_bom

FREQUENCIES = ("r", "c", "f")


@dataclass
class GroundTruth:
    """Validated ground truth. ``key`` arrays encode (image, category) as img_idx * n_cats + cat_idx."""

    path: str | None
    kind: str                      # "lvis" (federated rules) or "coco" (crowd rules)
    img_ids: np.ndarray            # (I,) int64, sorted
    img_h: np.ndarray              # (I,) int64
    img_w: np.ndarray              # (I,) int64
    cat_ids: np.ndarray            # (K,) int64, sorted
    cat_names: list
    cat_freq: np.ndarray           # (K,) '<U1': r/c/f, '' when unknown
    ann_ids: np.ndarray            # (G,) int64, file order
    ann_img: np.ndarray            # (G,) image index
    ann_cat: np.ndarray            # (G,) category index
    ann_box: np.ndarray            # (G, 4) float64 xywh
    ann_area: np.ndarray           # (G,) float64, the file's "area"
    ann_crowd: np.ndarray          # (G,) bool
    ann_ignore: np.ndarray         # (G,) bool: the rules' ignore flag (COCO: iscrowd; LVIS: "ignore")
    neg_keys: np.ndarray           # sorted keys verified absent (LVIS)
    nel_keys: np.ndarray           # sorted keys not exhaustively annotated (LVIS)
    ann_rec: np.ndarray | None = None  # (G,) record index in the file of each kept annotation
    dataset: dict = field(repr=False, default_factory=dict)
    notices: Notices = field(default_factory=Notices)
    digest: str | None = None      # "sha256:..." of the file it was read from
    _rles: list | None = field(default=None, repr=False)
    _rles_pending: Any = field(default=None, repr=False, compare=False)   # a prefetch thread, see prefetch_rles

    @property
    def num_images(self) -> int:
        return len(self.img_ids)

    @property
    def num_categories(self) -> int:
        return len(self.cat_ids)

    @property
    def ann_key(self) -> np.ndarray:
        return self.ann_img * self.num_categories + self.ann_cat

    def image_index(self, image_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Map image ids to indices; second value flags ids that are known."""
        return _lookup(self.img_ids, image_ids)

    def category_index(self, cat_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return _lookup(self.cat_ids, cat_ids)

    def freq_groups(self) -> dict:
        """Category indices of each frequency group r/c/f."""
        return {f: np.flatnonzero(self.cat_freq == f) for f in FREQUENCIES}

    @property
    def has_frequencies(self) -> bool:
        """True when categories carry LVIS frequencies (r/c/f figures are reported)."""
        return bool(np.isin(self.cat_freq, FREQUENCIES).any())

    def class_indices(self, spec: str, *, what: str = "split") -> np.ndarray:
        """Category indices named by ``spec``: tokens joined by '+' (a union), each 'r', 'c' or 'f',
        a file of category ids or names (one a line), or comma-separated ids or names. Names match
        case-insensitively, spaces and underscores alike. InputError for a class the GT lacks."""
        by_name = {_norm_name(n): k for k, n in enumerate(self.cat_names)}
        out: list[int] = []
        for token in (t.strip() for t in str(spec).split("+")):
            if not token:
                continue
            if token in FREQUENCIES:
                out.extend(np.flatnonzero(self.cat_freq == token).tolist())
                continue
            if os.path.isfile(token):
                with open(token, encoding="utf-8") as f:
                    items = [(ln.strip(), f"{token}: line {i}") for i, ln in enumerate(f, 1) if ln.strip()]
            else:
                items = [(x.strip(), what) for x in token.split(",") if x.strip()]
            for item, where in items:
                k = by_name.get(_norm_name(item))
                if k is None and item.lstrip("-").isdigit():
                    idx, ok = self.category_index(np.array([int(item)]))
                    k = int(idx[0]) if ok[0] else None
                if k is None:
                    raise InputError(f"{where}: unknown class {item!r} (not a category name or id of the "
                                     "ground truth)", path=self.path)
                out.append(k)
        return np.unique(np.asarray(out, np.int64))

    def rles(self) -> list:
        """Compressed RLE of every annotation (polygons and uncompressed RLE converted)."""
        pending = self._rles_pending
        if pending is not None:
            self._rles_pending = None
            pending.join()
            if pending.error is not None:
                raise pending.error
            self._rles = pending.value
        if self._rles is None:
            self._rles = _annotation_rles(self)
        return self._rles

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        if state.get("_rles_pending") is not None:   # a thread does not travel: wait for its value
            try:
                state["_rles"] = self.rles()
            except Exception:
                pass        # the receiver converts again and meets the error itself
            state["_rles_pending"] = None
        return state

    def prefetch_rles(self) -> None:
        """Start converting the annotations' masks in a background thread.

        The conversion runs while the results are read (the compiled reader
        and numpy release the interpreter); :meth:`rles` waits for it and
        raises its error, if any, at the moment it would have been raised
        without the prefetch, so error order does not change.
        """
        if self._rles is None and self._rles_pending is None and "annotations" in self.dataset:
            self._rles_pending = _Prefetch(_annotation_rles, self, True)


class _Prefetch(threading.Thread):
    """``fn(*args)`` in a daemon thread, keeping its value or its exception."""

    def __init__(self, fn, *args):
        super().__init__(daemon=True, name="lveval-prefetch")
        self.fn, self.args, self.value, self.error = fn, args, None, None
        self.start()

    def run(self) -> None:
        try:
            self.value = self.fn(*self.args)
        except BaseException as exc:   # re-raised by the caller that needs the value
            self.error = exc


def _sorted_unique(a: np.ndarray) -> np.ndarray:
    """``np.unique`` of an integer array (sorted, no repeats), without the import of ``numpy.ma`` that
    ``np.unique`` costs on its first plain call (12 ms of start-up)."""
    a = np.sort(a)
    return a[np.r_[True, a[1:] != a[:-1]]] if len(a) else a


def _norm_name(name: str) -> str:
    return " ".join(str(name).lower().replace("_", " ").split())


def _lookup(sorted_ids: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ids = np.asarray(ids, dtype=np.int64)
    if len(sorted_ids) == 0:
        return np.zeros(len(ids), np.int64), np.zeros(len(ids), bool)
    lo, hi = int(sorted_ids[0]), int(sorted_ids[-1])
    if len(ids) > 10_000 and 0 <= lo and hi < 50_000_000:   # a dense table beats binary search
        table = np.full(hi + 2, -1, np.int64)
        table[sorted_ids] = np.arange(len(sorted_ids))
        idx = table[np.where((ids >= lo) & (ids <= hi), ids, hi + 1)]   # out of range -> the -1 slot
        ok = idx >= 0
        return np.where(ok, idx, 0), ok
    idx = np.searchsorted(sorted_ids, ids)
    idx_c = np.minimum(idx, len(sorted_ids) - 1)
    ok = sorted_ids[idx_c] == ids
    return idx_c, ok


def _is_int(v) -> bool:
    """An integer that fits the int64 id columns (bools are not ids)."""
    return isinstance(v, int) and not isinstance(v, bool) and -2 ** 63 <= v < 2 ** 63


def _is_num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def load_gt(source: Any, *, dataset: str | None = None) -> GroundTruth:
    """Load ground truth from a path, a JSON-like dict, or pass a GroundTruth through.

    ``dataset`` forces "lvis" or "coco" rules; by default LVIS rules apply when
    images carry ``neg_category_ids``/``not_exhaustive_category_ids`` or
    categories carry ``frequency``.
    """
    if isinstance(source, GroundTruth):
        if dataset and dataset != source.kind:
            return from_dict(source.dataset, path=source.path, dataset=dataset)  # type: ignore[arg-type]
        return source
    if isinstance(source, (str, os.PathLike)):
        path = str(source)
        from .jsonfile import GT_FACTOR, available_memory, check_gt_memory, is_regular

        if is_regular(path):
            check_gt_memory(path, os.path.getsize(path))   # before reading: refused, not killed
        avail = available_memory()
        buf = read_bytes(path, budget=None if avail is None else avail // GT_FACTOR)
        digest = "sha256:" + hashlib.sha256(buf).hexdigest()   # of the file as it is, mark included
        g = from_dict(loads_any(strip_bom(buf), path), path=path, dataset=dataset)
        g.digest = digest
        return g
    if isinstance(source, dict):
        return from_dict(source, path="<ground truth>", dataset=dataset)
    raise TypeError(f"ground truth must be a path, a dict or a GroundTruth, not {type(source).__name__}")


def _records(data: dict, key: str, path: str) -> list:
    if key not in data:
        raise InputError(f"missing required key '{key}' at the top level", path=path)
    recs = data[key]
    if not isinstance(recs, list):
        raise InputError(f"expected a list, got {type(recs).__name__}", path=path, field=key)
    return recs


def _check_records(recs: list, section: str, path: str, spec: dict) -> None:
    """Validate required keys and types of every record; raises on the first bad one.

    ``spec`` maps a key to (kind, description), kind one of ``_CHECKS``. A
    bulk pass over whole columns accepts the usual valid file quickly; only
    when it finds something does the record-by-record pass run, to name the
    first bad record.
    """
    if _bulk_ok(recs, spec):
        return
    for i, r in enumerate(recs):
        if not isinstance(r, dict):
            raise InputError(f"expected an object, got {type(r).__name__}", path=path,
                             record=i, field=section)
        for k, (kind, what) in spec.items():
            if k not in r:
                raise InputError("missing required field", path=path, record=i, field=f"{section}.{k}")
            if not _CHECKS[kind](r[k]):
                raise InputError(f"expected {what}, got {_show(r[k])}", path=path, record=i,
                                 field=f"{section}.{k}")


_CHECKS = {
    "id": lambda v: _is_int(v),
    "positive": lambda v: _is_int(v) and v > 0,
    "box": lambda v: isinstance(v, list) and len(v) == 4 and all(_finite_num(x) for x in v),
    "non-negative": lambda v: _finite_num(v) and v >= 0,
}


def _bulk_ok(recs: list, spec: dict) -> bool:
    """True when every record passes ``spec`` (checked a column at a time); False to look closer."""
    if set(map(type, recs)) - {dict}:
        return False
    try:
        for k, (kind, _) in spec.items():
            vals = [r[k] for r in recs]
            if kind == "box":
                if set(map(type, vals)) - {list} or set(map(len, vals)) - {4}:
                    return False
                vals = list(chain.from_iterable(vals))
            types = set(map(type, vals))
            if kind in ("id", "positive"):
                if types - {int}:
                    return False
                a = np.array(vals, dtype=np.int64)   # OverflowError beyond int64
                if kind == "positive" and len(a) and a.min() <= 0:
                    return False
            else:
                if types - {int, float}:
                    return False
                a = np.array(vals, dtype=np.float64)
                if not np.isfinite(a).all() or (kind == "non-negative" and len(a) and a.min() < 0):
                    return False
    except (KeyError, OverflowError):
        return False
    return True


_TYPES = {list: "a list", str: "a string", int: "a number", float: "a number", bool: "true/false",
          type(None): "null"}


def _show(v) -> str:
    """A value for an error message: short, one line."""
    t = repr(v)
    t = t if len(t) <= 60 else t[:57] + "..."
    return f"{type(v).__name__} {t}" if isinstance(v, (str, bool, float)) else t


def _int_list(v) -> bool:
    return isinstance(v, list) and all(_is_int(x) for x in v)


def _finite_num(v) -> bool:
    return _is_num(v) and math.isfinite(v)


def from_dict(data: dict, *, path: str = "<ground truth>", dataset: str | None = None) -> GroundTruth:
    """Validate a COCO/LVIS dict and convert it to a GroundTruth."""
    if not isinstance(data, dict):
        hint = (" (this looks like a results file)" if isinstance(data, list) and data and isinstance(data[0], dict)
                and "score" in data[0] else "")
        raise InputError(f"expected a JSON object with images, annotations and categories, got "
                         f"{_TYPES.get(type(data), type(data).__name__)}{hint}", path=path)
    images = _records(data, "images", path)
    anns = _records(data, "annotations", path)
    cats = _records(data, "categories", path)
    if not images:
        raise InputError("ground truth has no images (an empty list); nothing can be evaluated", path=path,
                         field="images")
    if not cats:
        raise InputError("ground truth has no categories", path=path, field="categories")
    notices = Notices()

    _check_records(images, "images", path, {"id": ("id", "an integer id")})
    sized = [im for im in images if isinstance(im, dict) and ("height" in im or "width" in im)]
    _check_records(sized, "images", path, {
        "height": ("positive", "a positive integer"),
        "width": ("positive", "a positive integer"),
    })
    _check_records(cats, "categories", path, {"id": ("id", "an integer id")})
    _check_records(anns, "annotations", path, {
        "id": ("id", "an integer id"),
        "image_id": ("id", "an integer image id"),
        "category_id": ("id", "an integer category id"),
        "area": ("non-negative", "a non-negative number"),
    })
    boxless = [i for i, a in enumerate(anns) if "bbox" not in a]
    for i in boxless:   # pycocotools evaluates masks without a box; the box is then the mask's
        if not a_has_mask(anns[i]):
            raise InputError("missing required field (a box, or a segmentation to derive it from)", path=path,
                             record=i, field="annotations.bbox")
    _check_records([a for a in anns if "bbox" in a], "annotations", path,
                   {"bbox": ("box", "a list of 4 finite numbers [x, y, w, h]")})

    if dataset not in (None, "lvis", "coco"):
        raise ValueError(f"dataset must be 'lvis' or 'coco', not {dataset!r}")
    looks_lvis = any(("neg_category_ids" in im or "not_exhaustive_category_ids" in im) for im in images) \
        or any("frequency" in c for c in cats)
    kind = dataset or ("lvis" if looks_lvis else "coco")

    img_ids = np.array([im["id"] for im in images], dtype=np.int64)
    order = np.argsort(img_ids, kind="stable")
    s = img_ids[order]
    dup = np.flatnonzero(s[1:] == s[:-1])
    if len(dup):
        rec = int(order[dup[0] + 1])
        raise InputError(f"duplicate image id {int(s[dup[0]])}", path=path, record=rec, field="images.id")
    img_ids = s
    img_h = np.array([images[i].get("height", 0) for i in order], dtype=np.int64)
    img_w = np.array([images[i].get("width", 0) for i in order], dtype=np.int64)
    unsized = int(((img_h == 0) | (img_w == 0)).sum())
    if unsized:
        notices.warn(f"{unsized} images have no width/height: boxes are evaluated, the check for boxes "
                     "outside the image is skipped, masks cannot be evaluated on them")

    cat_ids = np.array([c["id"] for c in cats], dtype=np.int64)
    corder = np.argsort(cat_ids, kind="stable")
    cs = cat_ids[corder]
    dup = np.flatnonzero(cs[1:] == cs[:-1])
    if len(dup):
        raise InputError(f"duplicate category id {int(cs[dup[0]])}", path=path,
                         record=int(corder[dup[0] + 1]), field="categories.id")
    cat_ids = cs
    cat_names = [str(cats[i].get("name", cats[i]["id"])) for i in corder]
    freq = []
    with_freq = sum("frequency" in c for c in cats)
    for i in corder:
        f = cats[i].get("frequency", "")
        if kind == "lvis" and with_freq and f not in FREQUENCIES:   # r/c/f for all or for none
            got = "it is missing" if "frequency" not in cats[i] else f"got {_show(f)}"
            raise InputError(f"LVIS rules need a frequency 'r', 'c' or 'f' for every category, {got} "
                             "(use --dataset coco for COCO rules)", path=path, record=int(i),
                             field="categories.frequency")
        freq.append(f if f in FREQUENCIES else "")
    cat_freq = np.array(freq, dtype="<U1")

    n_cat = len(cat_ids)
    ann_ids = np.array([a["id"] for a in anns], dtype=np.int64)
    if len(ann_ids):
        ao = np.argsort(ann_ids, kind="stable")
        sa = ann_ids[ao]
        dup = np.flatnonzero(sa[1:] == sa[:-1])
        if len(dup):
            raise InputError(f"duplicate annotation id {int(sa[dup[0]])}", path=path,
                             record=int(ao[dup[0] + 1]), field="annotations.id")
    a_img, ok = _lookup(img_ids, np.array([a["image_id"] for a in anns], dtype=np.int64))
    if not ok.all():
        i = int(np.flatnonzero(~ok)[0])
        raise InputError(f"unknown image_id {anns[i]['image_id']} (not in images)", path=path,
                         record=i, field="annotations.image_id")
    a_cat, ok = _lookup(cat_ids, np.array([a["category_id"] for a in anns], dtype=np.int64))
    if not ok.all():
        i = int(np.flatnonzero(~ok)[0])
        raise InputError(f"unknown category_id {anns[i]['category_id']} (not in categories)",
                         path=path, record=i, field="annotations.category_id")
    derived = _derive_boxes(anns, boxless, a_img, images, order, path) if boxless else {}
    box = np.array([derived[i] if i in derived else a["bbox"] for i, a in enumerate(anns)],
                   dtype=np.float64).reshape(-1, 4)
    if derived:
        notices.flag("annotations without bbox (box derived from the mask)", len(derived))
    bad = np.flatnonzero((box[:, 2] < 0) | (box[:, 3] < 0))
    if len(bad):
        raise InputError("bbox width and height must be >= 0", path=path, record=int(bad[0]),
                         field="annotations.bbox")
    area = np.array([a["area"] for a in anns], dtype=np.float64)
    for flag in ("iscrowd", "ignore"):
        for i, a in enumerate(anns):
            if flag in a and a[flag] not in (0, 1):   # also accepts true/false
                raise InputError(f"expected 0 or 1, got {_show(a[flag])}", path=path, record=i,
                                 field=f"annotations.{flag}")
    crowd = np.array([bool(a.get("iscrowd", 0)) for a in anns], dtype=bool)
    if kind == "coco":
        ignore = crowd.copy()           # pycocotools: ignore = iscrowd
    else:
        ignore = np.array([bool(a.get("ignore", 0)) for a in anns], dtype=bool)
        crowd = np.zeros(len(anns), bool)   # lvis-api evaluates every annotation as non-crowd
    ann_rec = np.arange(len(anns), dtype=np.int64)
    if kind == "lvis":
        # lvis-api's get_ann_ids keeps only 0 < area < inf: other annotations are neither ground truth
        # nor part of the image's positive set (the federated rule). The area check above bounds it.
        keep = area > 0
        if not keep.all():
            notices.skip("annotations with area 0 (LVIS rules drop them, as lvis-api does)",
                         int((~keep).sum()))
            ann_rec = ann_rec[keep]
            ann_ids, a_img, a_cat, box, area = ann_ids[keep], a_img[keep], a_cat[keep], box[keep], area[keep]
            crowd, ignore = crowd[keep], ignore[keep]

    for i, a in enumerate(anns):
        seg = a.get("segmentation")
        if isinstance(seg, list) and seg:
            for j, poly in enumerate(seg):
                if not isinstance(poly, list) or len(poly) < 6 or len(poly) % 2:
                    raise InputError(f"polygon {j}: a polygon needs at least 3 points (6 numbers, an even "
                                     f"count), got {_show(poly)}", path=path, record=i,
                                     field="annotations.segmentation")

    lists = {"neg_category_ids": ([], []), "not_exhaustive_category_ids": ([], [])}   # type: ignore[var-annotated]  # (image idx, ids)
    missing_fed = 0
    for ii, i in enumerate(order):
        im = images[i]
        if kind == "lvis" and ("neg_category_ids" not in im or "not_exhaustive_category_ids" not in im):
            missing_fed += 1
        for name, (where, ids) in lists.items():
            v = im.get(name, [])
            if not _int_list(v):
                raise InputError("expected a list of integer category ids", path=path, record=int(i),
                                 field=f"images.{name}")
            if v:
                where.append(np.full(len(v), ii, np.int64))
                ids.extend(v)
    keys = {}
    for name, (where, ids) in lists.items():   # one lookup per list kind, not per image
        if not ids:
            keys[name] = np.zeros(0, np.int64)
            continue
        ci, okc = _lookup(cat_ids, np.array(ids, dtype=np.int64))
        if not okc.all():
            notices.skip(f"images.{name}: unknown category ids", int((~okc).sum()))
        keys[name] = _sorted_unique(np.concatenate(where)[okc] * n_cat + ci[okc])
    neg_keys, nel_keys = keys["neg_category_ids"], keys["not_exhaustive_category_ids"]
    if kind == "coco" and looks_lvis and (len(neg_keys) or len(nel_keys)):
        notices.warn("COCO rules: the images' neg_category_ids / not_exhaustive_category_ids are not used "
                     f"({len(neg_keys)} negative and {len(nel_keys)} not-exhaustive labels); drop --dataset coco "
                     "for federated (LVIS) rules")
        neg_keys, nel_keys = np.zeros(0, np.int64), np.zeros(0, np.int64)
    n_zero = int((ann_ids == 0).sum())
    if n_zero:
        notices.warn("an annotation has id 0: lveval evaluates it like any other, pycocotools and lvis-api "
                     "count a match to it as no match (their figures differ)")
    if missing_fed:
        notices.warn(f"{missing_fed} images lack neg_category_ids/not_exhaustive_category_ids; "
                     "treated as empty lists")

    return GroundTruth(path=path, kind=kind, img_ids=img_ids, img_h=img_h, img_w=img_w,
                       cat_ids=cat_ids, cat_names=cat_names, cat_freq=cat_freq,
                       ann_ids=ann_ids, ann_img=a_img.astype(np.int64), ann_cat=a_cat.astype(np.int64),
                       ann_box=box, ann_area=area, ann_crowd=crowd, ann_ignore=ignore,
                       neg_keys=neg_keys.astype(np.int64), nel_keys=nel_keys.astype(np.int64),
                       ann_rec=ann_rec, dataset=data, notices=notices)


def a_has_mask(a: dict) -> bool:
    seg = a.get("segmentation")
    return (isinstance(seg, list) and bool(seg)) or (isinstance(seg, dict) and "counts" in seg)


def _derive_boxes(anns: list, idx: list, a_img, images, order, path: str) -> dict:
    """The box of annotations that have a mask but no ``bbox`` (pycocotools' toBbox of the mask)."""
    from pycocotools import mask as mask_utils

    from .results import polygon_problem, rle_problem

    out = {}
    for i in idx:
        a = anns[i]
        im = images[order[a_img[i]]]
        h, w = int(im.get("height", 0)), int(im.get("width", 0))
        seg = a["segmentation"]
        if not (h and w):
            raise InputError("a box must be derived from the mask, but the image has no width/height",
                             path=path, record=i, field="annotations.bbox")
        problem = polygon_problem(seg) if isinstance(seg, list) else rle_problem(seg, h, w)
        if problem:
            raise InputError(problem, path=path, record=i, field="annotations.segmentation")
        rle = mask_utils.merge(mask_utils.frPyObjects(seg, h, w)) if isinstance(seg, list) else \
            mask_utils.frPyObjects(seg, h, w) if isinstance(seg.get("counts"), list) else seg
        out[i] = [float(x) for x in mask_utils.toBbox(rle)]
    return out


def _annotation_rles(gt: GroundTruth, courteous: bool = False) -> list:
    """Convert every annotation's segmentation to compressed RLE, as the references do.

    ``courteous`` (in a background thread): offer the interpreter lock to the other threads every
    few masks. pycocotools holds it while it rasterises; without the pauses the main thread waits up
    to a switch interval (5 ms) each time it gets the lock back after a system call."""
    from pycocotools import mask as mask_utils

    from .results import polygon_problem, rle_problem

    anns = gt.dataset["annotations"]
    recs = range(len(gt.ann_ids)) if gt.ann_rec is None else gt.ann_rec
    out = []
    for j, i in enumerate(recs):
        if courteous and j % 16 == 15:
            time.sleep(0)
        i = int(i)
        a = anns[i]
        seg = a.get("segmentation")
        ii = gt.ann_img[j]
        h, w = int(gt.img_h[ii]), int(gt.img_w[ii])
        if not (h and w):
            raise InputError(f"masks need the width and height of image {int(gt.img_ids[ii])}, which has none",
                             path=gt.path, record=i, field="annotations.segmentation")
        if seg is None or (isinstance(seg, list) and not seg):
            raise InputError("segm evaluation needs a segmentation on every annotation",
                             path=gt.path, record=i, field="annotations.segmentation")
        if isinstance(seg, list):
            problem = polygon_problem(seg)
            if problem:
                raise InputError(problem, path=gt.path, record=i, field="annotations.segmentation")
            parts = mask_utils.frPyObjects(seg, h, w)
            rle = parts[0] if len(parts) == 1 else mask_utils.merge(parts)   # merging one part is a copy
        elif isinstance(seg, dict) and "counts" in seg and "size" in seg:
            problem = rle_problem(seg, h, w)
            if problem:
                sub, _, why = problem.partition(": ")
                raise InputError(why, path=gt.path, record=i, field=f"annotations.segmentation.{sub}")
            c = seg["counts"]
            rle = (mask_utils.frPyObjects({"size": [h, w], "counts": c}, h, w) if isinstance(c, list)
                   else {"size": [h, w], "counts": c.encode() if isinstance(c, str) else c})
        else:
            raise InputError("expected polygons or an RLE {size, counts}", path=gt.path, record=i,
                             field="annotations.segmentation")
        out.append(rle)
    return out
