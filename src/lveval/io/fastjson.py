"""Box and mask detections from a JSON array or JSON Lines straight into columns, on several threads.

The compiled helper ``_jsoncols`` parses the common cases (every record holds
exactly image_id, category_id, bbox and score; or image_id, category_id, score,
a compressed-RLE segmentation {size, counts} and optionally a bbox) without
building a Python object per detection, with the GIL released; anything else
makes :func:`box_columns` / :func:`mask_columns` return None and the caller
uses the general decoder, which is also the one that explains bad input.
Measured on 2M detections (201 MB): msgspec structs plus column building take
~1.3 s, a vectorised numpy tokenizer over 2 s; this reader 0.22 s on one thread.
Mask strings land in one buffer (an RLEColumn), ~130 bytes per mask instead of
a dict, a list and a str (~450 bytes).
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .chunks import RECORD_SEP

try:
    from . import _jsoncols
except ImportError:   # built without a C compiler: the general decoder does everything
    _jsoncols = None

# the shortest record with its separator: bounds the rows a piece can hold
MIN_RECORD = len(b'{"image_id":0,"category_id":0,"bbox":[0,0,0,0],"score":0},')
MIN_MASK_RECORD = len(b'{"image_id":0,"category_id":0,"score":0,"segmentation":{"size":[0,0],"counts":""}},')
MIN_PIECE = 4 << 20   # pieces smaller than this are not worth a thread


def available() -> bool:
    """Whether the compiled reader was built (and is not turned off with LVEVAL_PURE_JSON=1)."""
    return _jsoncols is not None and os.environ.get("LVEVAL_PURE_JSON", "") in ("", "0")


def _cuts(buf, start: int, end: int, pieces: int, lines: bool) -> list[int]:
    """Piece boundaries near evenly spaced offsets: (start, end) pairs flattened, each piece made of
    whole records (array pieces exclude the comma between them; line pieces end after a newline)."""
    cuts = [start]
    step = (end - start) // pieces
    for k in range(1, pieces):
        at = max(cuts[-1], start + k * step)
        if lines:
            i = buf.find(b"\n", at, end)
            if i < 0:
                break
            cuts += [i + 1, i + 1]
        else:
            m = RECORD_SEP.search(buf, at, end)
            if m is None:
                break
            cuts += [m.start() + 1, m.end() - 1]   # end of one record, start of the next
    return cuts + [end]


def _parse_masks(buf, start: int, end: int, lines: bool):
    """Columns of mask records in buf[start:end]: (img, cat, score, bbox, has_bbox, h, w, offsets,
    counts) + (line, newlines) with ``lines``; None when a record is not a plain one."""
    cap = (end - start) // (MIN_MASK_RECORD - 1) + 1
    img, cat = np.empty(cap, np.int64), np.empty(cap, np.int64)
    score, bbox = np.empty(cap, np.float64), np.empty((cap, 4), np.float64)
    has_bbox = np.empty(cap, np.uint8)
    seg_h, seg_w, off = np.empty(cap, np.int64), np.empty(cap, np.int64), np.empty(cap + 1, np.int64)
    counts = np.empty(max(end - start, 1), np.uint8)   # strings are shorter than their piece
    line = np.empty(cap, np.int64) if lines else None
    rows, status, _, newlines, n_bytes = _jsoncols.parse_masks(buf, start, end, img, cat, score, bbox, has_bbox,
                                                               seg_h, seg_w, off, counts,
                                                               *([line] if lines else []))
    if status != 0:
        return None
    cols = (img[:rows], cat[:rows], score[:rows], bbox[:rows], has_bbox[:rows].view(bool), seg_h[:rows],
            seg_w[:rows], off[:rows + 1], counts[:n_bytes])
    return cols + ((line[:rows], newlines) if lines else ())


def mask_columns(buf, start: int, end: int, threads: int | None = None, lines: bool = False):
    """Like :func:`box_columns` for records with a compressed-RLE ``segmentation`` (and a bbox on
    all or none of them): (image_id, category_id, score, bbox or None, RLEColumn) [+ line], or None
    when the compiled reader is missing or a record is anything else."""
    from .masks import RLEColumn

    parts = _pieces(buf, start, end, threads, lines, _parse_masks)
    if parts is None:
        return None
    has = np.concatenate([p[4] for p in parts])
    if has.any() and not has.all():   # the general decoder names the record
        return None
    col = RLEColumn.concat([RLEColumn(p[8], p[7], p[5], p[6]) for p in parts])
    cat = (lambda k: parts[0][k]) if len(parts) == 1 else (lambda k: np.concatenate([p[k] for p in parts]))
    out = (cat(0), cat(1), cat(2), cat(3) if has.all() and len(has) else None, col)
    return out + ((cat(9),) if lines else ())


def _parse(buf, start: int, end: int, lines: bool):
    cap = (end - start) // (MIN_RECORD - 1) + 1
    img, cat = np.empty(cap, np.int64), np.empty(cap, np.int64)
    score, bbox = np.empty(cap, np.float64), np.empty((cap, 4), np.float64)
    line = np.empty(cap, np.int64) if lines else None
    rows, status, _, newlines = _jsoncols.parse_boxes(buf, start, end, img, cat, score, bbox,
                                                      *([line] if lines else []))
    if status != 0:
        return None
    return (img[:rows], cat[:rows], score[:rows], bbox[:rows]) + ((line[:rows], newlines) if lines else ())


def _pieces(buf, start: int, end: int, threads: int | None, lines: bool, parse):
    """``parse`` on pieces of whole records, on several threads; None when one bails. With ``lines``
    the second-to-last column (line numbers) counts from the file's start and the last is dropped."""
    if not available():
        return None
    if threads is None:
        threads = min(os.cpu_count() or 1, 4)
    pieces = max(1, min(threads, (end - start) // MIN_PIECE))
    cuts = _cuts(buf, start, end, pieces, lines)
    spans = list(zip(cuts[0::2], cuts[1::2]))
    if len(spans) == 1:
        parts = [parse(buf, start, end, lines)]
    else:
        with ThreadPoolExecutor(len(spans)) as pool:
            parts = list(pool.map(lambda s: parse(buf, *s, lines), spans))
    if any(p is None for p in parts):
        return None
    if lines:   # line numbers count from each piece's start: add the lines of the pieces before
        offset = 0
        for p in parts:
            p[-2][:] += offset
            offset += p[-1]
        parts = [p[:-1] for p in parts]
    return parts


def box_columns(buf, start: int, end: int, threads: int | None = None, lines: bool = False):
    """(image_id, category_id, score, bbox) columns of the records in ``buf[start:end]``, or None
    when the compiled reader is missing or a record is not a plain box.

    ``buf[start:end]`` is the inside of a JSON array, or with ``lines`` a JSON
    Lines text; then a fifth column gives each row's 1-based line number
    (counted from ``start``).
    """
    parts = _pieces(buf, start, end, threads, lines, _parse)
    if parts is None:
        return None
    if len(parts) == 1:   # views: the capacity beyond ``rows`` was never touched, so holds no memory
        return parts[0]
    return tuple(np.concatenate(cols) for cols in zip(*parts))
