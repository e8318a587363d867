"""What a worker runs: AP-Old's per-image cap in two passes, and one shard's evaluation.

Every function here is a plain function of picklable arguments, so any
task engine can run it; the engine's own functions do the work (``bind``,
``Evaluator``, ``rank_within``, ``per_class``).

AP-Old caps each image at its top N detections over *all* classes (ties in
file order), which a class shard cannot see alone. First pass: each chunk
of rows reports its own top N per image (``cap_candidates``); candidates are
merged (``merge_candidates``, associative and order-free) into the top N per
image of the whole set, whose last one gives each image's threshold: its
score and its record (``thresholds``). A detection is in the cap iff it beats the
threshold in (descending score, ascending record) order
(``cap_from_thresholds``), which is exactly ``select.cap_per_image`` on the
full set: the N-th best of a union is among the union of each part's N best.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field, replace

import numpy as np

from ..exceptions import Notices
from ..io.gt import load_gt
from ..io.results import images_covered
from ..metrics import Evaluator, selection_curves
from ..select import rank_within

# ---------------------------------------------------------------------------- ground truth


@dataclass(frozen=True)
class GtFile:
    """Ground truth that every worker loads from a shared path (cached per process)."""

    path: str      # absolute, so workers in another directory find it
    dataset: str | None
    stamp: tuple   # (size, mtime_ns): a changed file is loaded again
    display: str = ""   # the path as the user gave it (named in error messages)


_GT_CACHE: dict = {}


def gt_ref(source, dataset):
    """A worker-side reference to ``source`` when it is a file, else None (the caller ships it as a task)."""
    if isinstance(source, (str, os.PathLike)) and os.path.isfile(source):
        st = os.stat(source)
        return GtFile(os.path.abspath(str(source)), dataset, (st.st_size, st.st_mtime_ns), str(source))
    return None


def identity(value):
    """``value`` itself: a task whose result is data many tasks share (recomputable, unlike scattered data)."""
    return value


def resolve_gt(ref):
    """The GroundTruth behind ``ref`` (a GtFile is loaded once per worker process)."""
    if not isinstance(ref, GtFile):
        return ref
    g = _GT_CACHE.get(ref)
    if g is None:
        g = load_gt(ref.path, dataset=ref.dataset)
        g.path = ref.display or ref.path
        _GT_CACHE.clear()   # one ground truth at a time: bounded memory
        _GT_CACHE[ref] = g
    return g


# ------------------------------------------------------------------------ AP-Old, 1st pass


@dataclass
class Candidates:
    """Per image, the top-N rows of a set of rows: image index, score and record, in record order."""

    img: np.ndarray
    score: np.ndarray
    record: np.ndarray


@dataclass
class Thresholds:
    """Per image, the N-th best detection of the whole set (-inf / max record: fewer than N)."""

    score: np.ndarray
    record: np.ndarray


def _top_n(img, score, record, n, num_images: int | None = None):
    """Top ``n`` rows per image by (descending score, ascending record); with ``num_images``
    also each image's n-th best row as :class:`Thresholds` (one ranking serves both)."""
    o = np.argsort(record, kind="stable")   # row order = record order, as on the full file
    img, score, record = img[o], score[o], record[o]
    rank = rank_within(img, score)
    keep = rank < n
    c = Candidates(img[keep], score[keep], record[keep])
    if num_images is None:
        return c
    thr = Thresholds(np.full(num_images, -np.inf), np.full(num_images, np.iinfo(np.int64).max, np.int64))
    at = rank == n - 1
    thr.score[img[at]] = score[at]
    thr.record[img[at]] = record[at]
    return c, thr


def cap_candidates(chunk, gt, n: int) -> Candidates:
    """Top ``n`` rows per image of one chunk (rows that ``bind`` would drop are left out)."""
    g = resolve_gt(gt)
    c = chunk.read()
    img, ok_img = g.image_index(c.img_id)
    _, ok_cat = g.category_index(c.cat_id)
    keep = ok_img & ok_cat
    return _top_n(img[keep].astype(np.int64), c.score[keep], c.record[keep], n)


def merge_candidates(n: int, *parts: Candidates, num_images: int | None = None):
    """Top ``n`` rows per image of the union of candidate sets (and, given ``num_images``,
    the thresholds of that union, as :func:`thresholds`)."""
    return _top_n(np.concatenate([p.img for p in parts]), np.concatenate([p.score for p in parts]),
                  np.concatenate([p.record for p in parts]), n, num_images)


def thresholds(c: Candidates, n: int, num_images: int) -> Thresholds:
    """Each image's N-th best candidate (score, record) of a merged top-N set."""
    return merge_candidates(n, c, num_images=num_images)[1]


def cap_from_thresholds(img_idx: np.ndarray, score: np.ndarray, record: np.ndarray, thr: Thresholds) -> np.ndarray:
    """AP-Old's selection of some rows given every image's threshold: equal to ``cap_per_image`` on all rows."""
    s = thr.score[img_idx]
    return (score > s) | ((score == s) & (record <= thr.record[img_idx]))


# -------------------------------------------------------------------- one shard, 2nd pass


@dataclass
class ShardResult:
    """A shard's share of the figures: its classes' columns and its AP-Pool runs.

    Precision and recall hold only the (class, area range) cells with ground
    truth: the engine leaves every other cell at -1, so nothing is lost.
    Travels as a plain dict (``vars``), which Dask serialises array by array.
    """

    cats: np.ndarray                          # (k,) GT class indices this shard answers for
    num_gt: np.ndarray                        # (k, A)
    num_dets: np.ndarray                      # (k,) bound detections per class
    precision: dict = field(default_factory=dict)     # protocol -> (T, R, cells with num_gt > 0)
    recall: dict = field(default_factory=dict)        # protocol -> (T, cells)
    recall_by_md: dict = field(default_factory=dict)  # protocol -> {maxDets: (T, cells)} (COCO AR@n)
    runs: dict | None = None                  # AP-Pool rows: score, img, cat, matched, ignored
    images: np.ndarray | None = None          # packed bits: images with a bound result in this shard
    notices: Notices = field(default_factory=Notices)
    stats: dict = field(default_factory=dict)

    def cells(self) -> np.ndarray:
        """(k, A) mask of the cells that were sent."""
        return self.num_gt > 0


def peak_rss() -> int:
    """This process's peak resident memory in bytes (VmHWM: unlike ru_maxrss, not inherited
    from a parent across fork and exec), or -1 where /proc is unavailable."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return -1


def _rss() -> int:
    try:
        import psutil
        return int(psutil.Process().memory_info().rss)
    except Exception:   # noqa: BLE001 - stats only
        return -1


def evaluate_shard(source, gt, cats: np.ndarray, params, protocols: tuple,
                   thr: Thresholds | None) -> dict:
    """Bind, select, match and accumulate one shard's classes with the engine (a ShardResult as a dict)."""
    t0, c0 = time.perf_counter(), time.thread_time()
    rss0 = _rss()
    g = resolve_gt(gt)
    raw = source.read()
    ev = Evaluator.load(g, raw, params)
    dets = ev.dets
    t_read, c_read = time.perf_counter() - t0, time.thread_time() - c0
    n = len(dets)
    # AP-Old under LVIS rules: the global per-image cut; COCO's cap is per (image, class) and needs none
    cut = cap_from_thresholds(dets.img_idx, dets.score, dets.record, thr) \
        if thr is not None and "old" in protocols else None
    sel_old, sel_fixed = ev.selections(protocols, old=cut)
    m = ev.matching_for(sel_old | sel_fixed)
    t_match, c_match = time.perf_counter() - t0 - t_read, time.thread_time() - c0 - c_read

    K = g.num_categories
    local = np.full(K, -1, np.int64)
    local[cats] = np.arange(len(cats))
    if (local[m.cat] < 0).any():
        raise RuntimeError("a shard holds detections of a class it does not answer for")
    # the shard's classes only: class order and curves are those of the full Matching
    ml = replace(m, cat=local[m.cat], num_gt=m.num_gt[cats], _pool_order=None, _class_order=None)
    out = ShardResult(cats=np.asarray(cats, np.int64), num_gt=m.num_gt[cats],
                      num_dets=np.bincount(local[dets.cat_idx], minlength=len(cats)) if n
                      else np.zeros(len(cats), np.int64),
                      notices=dets.notices, images=np.packbits(images_covered(dets, g)))
    cells = out.cells()
    for proto, sel in (("old", sel_old), ("fixed", sel_fixed)):
        if proto not in protocols:
            continue
        prec, rec, by_md = selection_curves(ml, sel[m.det], params, len(cats),
                                            coco_ar=proto == "old" and g.kind == "coco")
        out.precision[proto], out.recall[proto] = prec[:, :, cells], rec[:, cells]
        if by_md is not None:   # pycocotools' AR@maxDets
            out.recall_by_md[proto] = {md: r[:, cells] for md, r in by_md.items()}
    if "pooled" in protocols:
        T = len(params.iou_thrs)
        all_ignored = m.ignored.dtype.type((1 << T) - 1)
        # rows ignored at every threshold add neither TP nor FP to any pooled curve: dropped
        keep = np.flatnonzero(sel_fixed[m.det] & (m.ignored[0] != all_ignored))
        small = np.int32 if max(g.num_images, K) < 2 ** 31 else np.int64
        out.runs = {"score": m.score[keep], "img": m.img[keep].astype(small), "cat": m.cat[keep].astype(small),
                    "matched": m.matched[0][keep], "ignored": m.ignored[0][keep]}
    out.stats = {"rows": n, "matched_rows": len(m.det), "classes": len(cats),
                 "seconds": time.perf_counter() - t0, "cpu_seconds": time.thread_time() - c0,
                 "read_seconds": t_read, "match_seconds": t_match,
                 "read_cpu_seconds": c_read, "match_cpu_seconds": c_match,
                 "rss_start": rss0, "rss_end": _rss(),
                 "peak_rss": peak_rss(), "pid": os.getpid()}
    return vars(out)
