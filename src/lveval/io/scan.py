"""JSON structure found in raw bytes without decoding: strings, top-level objects, array elements.

One vectorised scanner for the three places that need a file's structure
before (or instead of) decoding it: ``lveval topk`` (the byte range of every
record of a block, :func:`object_spans`), error messages (which record a byte
offset falls in, :func:`element_at`) and chunked decoding (the array's
brackets, :func:`array_edges`, and where to cut it, :func:`next_record`).

Strings are found from the unescaped quotes (:func:`quotes`: a quote after an
odd run of backslashes is escaped); a structural byte is outside every string
when an even number of them precede it. Work and temporaries grow with the
number of quotes, backslashes and structural bytes, not with the block size.
"""
from __future__ import annotations

import re

import numpy as np

WS = np.zeros(256, bool)   # JSON whitespace, by byte value
WS[[0x20, 0x09, 0x0A, 0x0D]] = True
RECORD_SEP = re.compile(rb"\}\s*,\s*\{")   # between two records of a JSON array

_QUOTE, _BACKSLASH, _COMMA = 0x22, 0x5C, 0x2C
_STRUCT = np.zeros(256, bool)
_STRUCT[[0x5B, 0x7B, 0x5D, 0x7D, _COMMA]] = True   # [ { ] } ,
_STEP = np.zeros(256, np.int8)
_STEP[[0x5B, 0x7B]] = 1
_STEP[[0x5D, 0x7D]] = -1


class ScanError(Exception):
    """Structure no JSON text can have (``offset``: where, within the scanned bytes)."""

    def __init__(self, msg: str, offset: int):
        super().__init__(msg)
        self.offset = offset


def quotes(a: np.ndarray, carry: int = 0) -> np.ndarray:
    """Positions of the unescaped ``"`` in the bytes ``a``.

    ``carry``: backslashes just before ``a[0]`` (when ``a`` continues earlier
    bytes). A quote is escaped when an odd run of backslashes precedes it.
    """
    q = np.flatnonzero(a == _QUOTE)
    if not len(q):
        return q
    after = (a[np.maximum(q - 1, 0)] == _BACKSLASH) & (q > 0)
    if carry and q[0] == 0:
        after[0] = True
    if not after.any():
        return q
    bs = np.flatnonzero(a == _BACKSLASH)
    first = np.ones(len(bs), bool)
    first[1:] = np.diff(bs) != 1
    run_start = bs[first][np.cumsum(first) - 1]          # where each backslash's run begins
    cand = q[after]
    j = np.searchsorted(bs, cand - 1)
    j = np.minimum(j, max(len(bs) - 1, 0))
    start = np.where(cand == 0, 0, run_start[j] if len(bs) else 0)
    run = cand - start + np.where(start == 0, carry, 0)   # backslashes right before each candidate
    escaped = np.zeros(len(q), bool)
    escaped[np.flatnonzero(after)[run % 2 == 1]] = True
    return q[~escaped]


def trailing_backslashes(a: np.ndarray, carry: int = 0) -> int:
    """Backslashes at the end of ``a`` (plus ``carry`` when ``a`` is all backslashes): the next block's carry."""
    plain = np.flatnonzero(a != _BACKSLASH)
    if not len(plain):
        return len(a) + carry
    return len(a) - 1 - int(plain[-1])


def object_spans(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (inclusive) of each complete top-level JSON object in the bytes ``a``.

    ``a`` must begin outside any string and object; braces inside strings are
    ignored, brackets are not looked at (``a`` may hold an array's ``]``).
    Raises :class:`ScanError` at a ``}`` that closes nothing.
    """
    q = quotes(a)
    ob = np.flatnonzero(a == 0x7B)
    cb = np.flatnonzero(a == 0x7D)
    if len(q):
        ob = ob[np.searchsorted(q, ob) % 2 == 0]
        cb = cb[np.searchsorted(q, cb) % 2 == 0]
    if not len(ob):
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    pos = np.concatenate([ob, cb])
    delta = np.concatenate([np.ones(len(ob), np.int8), -np.ones(len(cb), np.int8)])
    o = np.argsort(pos, kind="stable")
    pos, delta = pos[o], delta[o]
    depth = np.cumsum(delta, dtype=np.int64)
    if len(depth) and depth.min() < 0:
        raise ScanError("unbalanced '}'", int(pos[np.argmax(depth < 0)]))
    starts = pos[(delta == 1) & (depth == 1)]
    ends = pos[(delta == -1) & (depth == 0)]
    return starts[:len(ends)], ends


def element_at(buf, offset: int, limit: int = 1 << 30, block: int = 1 << 22) -> int | None:
    """Index of the top-level array element that contains byte ``offset`` of a JSON array.

    Counts the commas at depth 1 outside strings before ``offset``, ``block``
    bytes at a time (bounded memory), carrying string, depth and backslash
    state across blocks; None past ``limit`` bytes.
    """
    if offset > limit:
        return None
    end = min(offset, len(buf))
    commas = depth = carry = 0
    in_str = False
    for start in range(0, end, block):
        a = np.frombuffer(buf, np.uint8, count=min(block, end - start), offset=start)
        q = quotes(a, carry)
        s = np.flatnonzero(_STRUCT[a])
        s = s[(np.searchsorted(q, s) + in_str) % 2 == 0]    # outside strings
        c = a[s]
        d = np.cumsum(_STEP[c], dtype=np.int64) + depth
        commas += int(((c == _COMMA) & (d == 1)).sum())
        if len(d):
            depth = int(d[-1])
        in_str = (len(q) + in_str) % 2 == 1
        carry = trailing_backslashes(a, carry)
    return commas


def array_edges(buf) -> tuple[int, int] | None:
    """Positions just inside the outer ``[`` and of the closing ``]`` of a JSON array, or None."""
    n = len(buf)
    i = 0
    while i < n and WS[buf[i]]:
        i += 1
    j = n - 1
    while j >= 0 and WS[buf[j]]:
        j -= 1
    if i >= n or buf[i] != ord("[") or buf[j] != ord("]"):
        return None
    return i + 1, j


def next_record(buf, at: int, end: int) -> tuple[int, int] | None:
    """The first ``}`` ``,`` ``{`` between records at or after ``at``: (end of one record, start of the next).

    A separator search, not a scan: inside a string (only possible with unusual
    extra fields) it cuts a record in two, which then fails to decode; callers
    fall back to decoding the whole text.
    """
    m = RECORD_SEP.search(buf, at, end)
    return (m.start() + 1, m.end() - 1) if m else None
