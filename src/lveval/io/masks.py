"""Compressed RLE masks as columns: one byte buffer of COCO run-length strings and their offsets.

A Python dict per mask costs ~400 bytes and a Python loop per mask ~10 us;
at millions of masks both dominate the evaluation. :class:`RLEColumn` keeps
the strings of N masks in one ``uint8`` buffer (``offsets[i]:offsets[i+1]``)
with their heights and widths, and behaves as a sequence of pycocotools RLE
dicts where code needs one. The compiled helper ``_rle`` validates the
strings and computes areas, boxes and pair IoUs with pycocotools' integer
arithmetic, with the GIL released; without it (no C compiler, or
``LVEVAL_PURE_RLE=1``) numpy and pycocotools give the same numbers, slower.
"""
from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from ..threads import halves

try:
    from . import _rle  # type: ignore[attr-defined]
except ImportError:   # built without a C compiler
    _rle = None

_THREADS_ABOVE = 20_000   # rows above which the compiled routines run on two threads (stats: ~0.6 us a mask)
_PAIRS_THREADS_ABOVE = 10_000   # pairs above which IoU runs on two threads (a pair decodes two masks)


def compiled() -> bool:
    """Whether the compiled RLE routines are built (and not turned off with LVEVAL_PURE_RLE=1)."""
    return _rle is not None and os.environ.get("LVEVAL_PURE_RLE", "") in ("", "0")


class RLEColumn(Sequence):
    """N compressed RLE masks: ``data`` (uint8, the strings end to end), ``offsets`` (int64, N + 1),
    ``h`` and ``w`` (int64, N). Item ``i`` is pycocotools' dict ``{"size": [h, w], "counts": bytes}``."""

    def __init__(self, data, offsets, h, w, box=None):
        self.box = box   # optional (N, 4) xywh boxes of the masks (pycocotools' toBbox), set by stats users
        # optional (ok, area, box or None) of every row, as :func:`stats` gives them: the JSON reader
        # measures the masks while it parses them, so binding does not read the strings again (binding
        # then drops it; rows taken from the column, or a pickled copy, do not carry it)
        self.measured: tuple | None = None
        self.data = np.frombuffer(data, np.uint8) if isinstance(data, (bytes, bytearray, memoryview)) \
            else np.ascontiguousarray(data, np.uint8)
        self.offsets = np.ascontiguousarray(offsets, np.int64)
        self.h = np.ascontiguousarray(h, np.int64)
        self.w = np.ascontiguousarray(w, np.int64)

    def __len__(self) -> int:
        return len(self.h)

    def counts(self, i: int) -> bytes:
        """The RLE string of row ``i``."""
        return self.data[self.offsets[i]:self.offsets[i + 1]].tobytes()

    def __getitem__(self, i):
        if isinstance(i, slice):
            return self.take(np.arange(len(self))[i])
        if isinstance(i, np.ndarray):
            return self.take(i)
        i = int(i)
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError("mask index out of range")
        return {"size": [int(self.h[i]), int(self.w[i])], "counts": self.counts(i)}

    def __iter__(self):
        off, data = self.offsets, self.data
        for i in range(len(self)):
            yield {"size": [int(self.h[i]), int(self.w[i])], "counts": data[off[i]:off[i + 1]].tobytes()}

    def __repr__(self) -> str:
        return f"RLEColumn({len(self)} masks, {len(self.data)} bytes)"

    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def take(self, idx) -> RLEColumn:
        """Rows ``idx`` (indices or a boolean mask), in that order."""
        idx = np.asarray(idx)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        idx = idx.astype(np.int64, copy=False)
        lens = self.lengths()[idx]
        new_off = np.zeros(len(idx) + 1, np.int64)
        np.cumsum(lens, out=new_off[1:])
        out = np.empty(int(new_off[-1]), np.uint8)
        if compiled():
            _rle.gather(self.data, self.offsets, idx, new_off, out)
        else:
            for lo in range(0, len(idx), 50_000):   # chunks bound the index temporaries
                ii = idx[lo:lo + 50_000]
                ln = lens[lo:lo + 50_000]
                src = np.repeat(self.offsets[ii] - new_off[lo:lo + len(ii)], ln) + \
                    np.arange(new_off[lo], new_off[lo + len(ii)])
                out[new_off[lo]:new_off[lo + len(ii)]] = self.data[src]
        return RLEColumn(out, new_off, self.h[idx], self.w[idx], None if self.box is None else self.box[idx])

    @classmethod
    def from_strings(cls, strings: list, h, w) -> RLEColumn:
        lens = np.fromiter(map(len, strings), np.int64, len(strings))
        off = np.zeros(len(strings) + 1, np.int64)
        np.cumsum(lens, out=off[1:])
        return cls(b"".join(strings), off, h, w)

    @classmethod
    def concat(cls, parts: list) -> RLEColumn:
        if len(parts) == 1:
            return parts[0]
        sizes = np.cumsum([0] + [len(p.data) for p in parts])
        off = np.concatenate([parts[0].offsets[:1]] + [p.offsets[1:] - p.offsets[0] + s
                                                      for p, s in zip(parts, sizes[:-1])])
        box = None if any(p.box is None for p in parts) else np.concatenate([p.box for p in parts])
        return cls(np.concatenate([p.data[p.offsets[0]:p.offsets[-1]] for p in parts]), off,
                   np.concatenate([p.h for p in parts]), np.concatenate([p.w for p in parts]), box)

    def __reduce__(self):   # only the bytes in use (a view may sit in a larger buffer)
        data = self.data[self.offsets[0]:self.offsets[-1]] if len(self) else self.data[:0]
        return RLEColumn, (data, self.offsets - self.offsets[0] if len(self) else self.offsets, self.h, self.w,
                           self.box)


def _plain(m, h: int, w: int):
    """The counts string of a dict {size: [h, w] (two ints), counts: str or bytes}, else None
    (the compiled ``pack`` takes exactly these)."""
    if type(m) is not dict:
        return None
    c, size = m.get("counts"), m.get("size")
    if c is None or size is None or type(size) not in (list, tuple) or len(size) != 2:
        return None
    if type(size[0]) is not int or type(size[1]) is not int or size[0] != h or size[1] != w:
        return None
    if type(c) is bytes:
        return c
    if type(c) is str:
        try:
            return c.encode()
        except UnicodeEncodeError:
            return None
    return None


def pack(masks: list, h: np.ndarray, w: np.ndarray) -> tuple[RLEColumn, np.ndarray]:
    """(column, ok): the masks that are plain compressed RLE dicts of size (h[i], w[i]) packed into a
    column; rows with ``ok`` False (polygons, uncompressed RLE, other sizes or types) hold no bytes."""
    n = len(masks)
    h = np.ascontiguousarray(h, np.int64)
    w = np.ascontiguousarray(w, np.int64)
    if compiled():
        off = np.empty(n + 1, np.int64)
        ok = np.empty(n, np.uint8)
        data = _rle.pack(masks, h, w, off, ok)
        return RLEColumn(data, off, h, w), ok.astype(bool)
    strings = [_plain(m, int(a), int(b)) for m, a, b in zip(masks, h.tolist(), w.tolist())]
    ok = np.fromiter((s is not None for s in strings), bool, n)
    return RLEColumn.from_strings([s or b"" for s in strings], h, w), ok


def _split(n: int, fn, above: int | None = None) -> None:
    """``fn(start, stop)`` over 0..n, on two threads when n is ``above`` or more (default
    ``_THREADS_ABOVE``; the C routines release the GIL)."""
    halves(n, fn, n >= (_THREADS_ABOVE if above is None else above))


def measure_into(data: np.ndarray, offsets: np.ndarray, h: np.ndarray, w: np.ndarray, status: np.ndarray,
                 area: np.ndarray, box: np.ndarray | None) -> None:
    """:func:`stats` of the masks ``data[offsets[i]:offsets[i + 1]]`` (sizes ``h``, ``w``) written into the
    given rows: ``status`` (uint8, 0 when valid), ``area``, and ``box`` (n, 4) unless None. Compiled
    routines only; on the caller's thread."""
    _rle.stats(data, offsets, h, w, status, area, box, 0, len(h))


def stats(col: RLEColumn, boxes: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(ok, area, bbox) of every mask: ok when its string decodes (as pycocotools' rleFrString) to
    non-negative runs summing to h * w; area and xywh box as pycocotools' ``area`` and ``toBbox``
    (zeros for invalid rows). ``boxes=False``: bbox is None (about half the work). ``col.measured``,
    when set, is returned instead of measuring again."""
    n = len(col)
    got = col.measured
    if got is not None and (not boxes or got[2] is not None):
        return got[0].copy(), got[1], got[2] if boxes else None
    area = np.zeros(n)
    box = np.zeros((n, 4)) if boxes else None
    if compiled():
        status = np.empty(n, np.uint8)
        _split(n, lambda a, b: _rle.stats(col.data, col.offsets, col.h, col.w, status, area, box, a, b))
        return status == 0, area, box
    from pycocotools import mask as mask_utils

    from .results import batch_counts_valid

    step = 20_000   # masks per vectorised batch: bounds the temporaries (~100 bytes per RLE byte)
    ok = np.ones(n, bool)
    for lo in range(0, n, step):
        hi = min(n, lo + step)
        part = col.take(np.arange(lo, hi))
        strings = [part.counts(i) for i in range(hi - lo)]
        ok[lo:hi] = batch_counts_valid(strings, part.h * part.w)
        good = np.flatnonzero(ok[lo:hi])
        rles = [{"size": [int(part.h[i]), int(part.w[i])], "counts": strings[i]} for i in good]
        for j in range(0, len(rles), 255):   # pycocotools 2.0.11's area overflows past 255 masks
            sub = rles[j:j + 255]
            area[lo + good[j:j + 255]] = np.asarray(mask_utils.area(sub), np.float64).reshape(-1)
            if boxes:
                box[lo + good[j:j + 255]] = np.asarray(mask_utils.toBbox(sub), np.float64).reshape(-1, 4)  # type: ignore[index]
    return ok, area, box


def pair_iou(dcol: RLEColumn, gcol: RLEColumn, d_rows: np.ndarray, g_rows: np.ndarray,
             crowd: np.ndarray) -> np.ndarray:
    """Mask IoU of pairs (``dcol`` row ``d_rows[k]``, ``gcol`` row ``g_rows[k]``), pycocotools'
    ``iou`` for one pair (intersection over the detection's area when ``crowd[k]``). Masks are
    valid and of one size per pair; consecutive pairs of one detection decode it once."""
    n = len(d_rows)
    out = np.zeros(n)
    d_rows = np.ascontiguousarray(d_rows, np.int64)
    g_rows = np.ascontiguousarray(g_rows, np.int64)
    crowd = np.ascontiguousarray(crowd, np.uint8)
    if compiled():
        _split(n, lambda a, b: _rle.iou(dcol.data, dcol.offsets, gcol.data, gcol.offsets, d_rows, g_rows,
                                        crowd, out, a, b), _PAIRS_THREADS_ABOVE)
        return out
    from pycocotools import mask as mask_utils

    starts = np.flatnonzero(np.r_[True, d_rows[1:] != d_rows[:-1]]) if n else np.zeros(0, np.int64)
    for s, e in zip(starts, np.r_[starts[1:], n]):
        m = mask_utils.iou([dcol[int(d_rows[s])]], [gcol[int(g)] for g in g_rows[s:e]],
                           [int(c) for c in crowd[s:e]])
        out[s:e] = np.asarray(m, np.float64).reshape(-1)
    return out
