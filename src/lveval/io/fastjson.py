"""Box detections from a JSON array or JSON Lines straight into columns, on several threads.

The compiled helper ``_jsoncols`` parses the common case (every record holds
exactly image_id, category_id, bbox and score) without building a Python
object per detection, with the GIL released; anything else makes
:func:`box_columns` return None and the caller uses the general decoder,
which is also the one that explains bad input. Measured on 2M detections
(201 MB): msgspec structs plus column building take ~1.3 s, a vectorised
numpy tokenizer over 2 s; this reader 0.22 s on one thread.
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


def box_columns(buf, start: int, end: int, threads: int | None = None, lines: bool = False):
    """(image_id, category_id, score, bbox) columns of the records in ``buf[start:end]``, or None
    when the compiled reader is missing or a record is not a plain box.

    ``buf[start:end]`` is the inside of a JSON array, or with ``lines`` a JSON
    Lines text; then a fifth column gives each row's 1-based line number
    (counted from ``start``).
    """
    if not available():
        return None
    if threads is None:
        threads = min(os.cpu_count() or 1, 4)
    pieces = max(1, min(threads, (end - start) // MIN_PIECE))
    cuts = _cuts(buf, start, end, pieces, lines)
    spans = list(zip(cuts[0::2], cuts[1::2]))
    if len(spans) == 1:
        parts = [_parse(buf, start, end, lines)]
    else:
        with ThreadPoolExecutor(len(spans)) as pool:
            parts = list(pool.map(lambda s: _parse(buf, *s, lines), spans))
    if any(p is None for p in parts):
        return None
    if lines:   # line numbers count from each piece's start: add the lines of the pieces before
        offset = 0
        for p in parts:
            p[4][:] += offset
            offset += p[5]
        parts = [p[:5] for p in parts]
    if len(parts) == 1:   # views: the capacity beyond ``rows`` was never touched, so holds no memory
        return parts[0]
    return tuple(np.concatenate(cols) for cols in zip(*parts))
