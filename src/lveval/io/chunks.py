"""Decoding a large JSON array of detections in bounded memory.

The file is memory-mapped and cut into ~64 MB pieces at record boundaries
(a ``}`` ``,`` ``{`` sequence); each piece is decoded and turned into columns
before the next one, so Python objects exist for one piece at a time. A cut
that falls inside a record (only possible with unusual extra fields) always
leaves invalid JSON behind; any decoding problem therefore makes the caller
fall back to decoding the whole file, which also produces the precise error.
"""
from __future__ import annotations

import mmap
import re

import msgspec
import numpy as np

CHUNK_BYTES = 64 << 20
_SEP = re.compile(rb"\}\s*,\s*\{")
_WS = b" \t\r\n"


def _edges(mm) -> tuple[int, int] | None:
    """Positions just inside the outer ``[`` and of the closing ``]``, or None."""
    n = len(mm)
    i = 0
    while i < n and mm[i] in _WS:
        i += 1
    j = n - 1
    while j >= 0 and mm[j] in _WS:
        j -= 1
    if i >= n or mm[i] != ord("[") or mm[j] != ord("]"):
        return None
    return i + 1, j


def decode_chunked(path: str, decoder: msgspec.json.Decoder, to_columns, concat):
    """Decode the JSON array at ``path`` piece by piece; None if anything looks wrong."""
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        edges = _edges(mm)
        if edges is None:
            return None
        pos, end = edges
        parts, base = [], 0
        while pos < end:
            m = _SEP.search(mm, pos + CHUNK_BYTES, end) if pos + CHUNK_BYTES < end else None
            cut = m.start() + 1 if m else end
            piece = b"[" + mm[pos:cut] + b"]"
            try:
                recs = decoder.decode(piece)
            except (msgspec.ValidationError, msgspec.DecodeError):
                return None
            del piece
            parts.append(to_columns(recs, path, base))
            base += len(recs)
            del recs
            pos = m.end() - 1 if m else end
        if not parts:
            return None
    return concat(parts)


def concat_columns(parts: list):
    """One Detections from pieces decoded in file order."""
    from dataclasses import replace

    first = parts[0]
    if len(parts) == 1:
        return first
    cat = lambda name: None if getattr(first, name) is None else np.concatenate([getattr(p, name) for p in parts])
    segm = None
    if first.segm is not None:
        segm = [s for p in parts for s in p.segm]
    return replace(first, img_id=cat("img_id"), cat_id=cat("cat_id"), score=cat("score"), bbox=cat("bbox"),
                   segm=segm, record=cat("record"))


PARALLEL_ABOVE = 32 << 20


def _split_points(mm, lo: int, hi: int, parts: int) -> list:
    """Cut [lo, hi) into about ``parts`` ranges at record separators: [(start, end), ...]."""
    cuts = [lo]
    for i in range(1, parts):
        target = lo + (hi - lo) * i // parts
        if target <= cuts[-1]:
            continue
        m = _SEP.search(mm, target, hi)
        if m is None:
            break
        cuts.append(m.start() + 1)           # just after the '}' that ends a record
    bounds = []
    for i, c in enumerate(cuts):
        start = c if i == 0 else _SEP.match(mm, c - 1).end() - 1   # the next record's '{'
        end = cuts[i + 1] if i + 1 < len(cuts) else hi
        bounds.append((start, end))
    return bounds


def _decode_range(args):
    """Worker: decode records in bytes [start, end) of ``path`` piece by piece; None on any problem."""
    path, start, end = args
    from .results import _ARRAY, _columns   # noqa: PLC0415 - imported in the worker process
    import gc

    gc.disable()
    out = []
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        pos, base = start, 0
        while pos < end:
            m = _SEP.search(mm, pos + CHUNK_BYTES, end) if pos + CHUNK_BYTES < end else None
            cut = m.start() + 1 if m else end
            try:
                recs = _ARRAY.decode(b"[" + mm[pos:cut] + b"]")
            except (msgspec.ValidationError, msgspec.DecodeError):
                return None
            try:
                out.append(_columns(recs, path, base))
            except Exception:   # noqa: BLE001 - the sequential path reports it precisely
                return None
            base += len(recs)
            del recs
            pos = m.end() - 1 if m else end
    return out


def decode_parallel(path: str, workers: int):
    """Decode a large JSON array with ``workers`` forked processes; None if anything looks wrong.

    Records keep their file order and indices, so results are identical to the
    sequential decoder's.
    """
    import multiprocessing as mp

    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        edges = _edges(mm)
        if edges is None:
            return None
        ranges = _split_points(mm, edges[0], edges[1], workers)
    if len(ranges) < 2:
        return None
    with mp.get_context("fork").Pool(len(ranges)) as pool:
        pending = pool.map_async(_decode_range, [(path, s, e) for s, e in ranges])
        digest = file_digest(path)   # the parent hashes the file while the workers decode it
        results = pending.get()
    if any(r is None for r in results):
        return None
    parts, offset = [], 0
    for r in results:
        for p in r:
            p.record = p.record + offset
            parts.append(p)
        offset += sum(len(p) for p in r)
    if not parts:
        return None
    d = concat_columns(parts)
    d.digest = digest
    return d


def file_digest(path: str) -> str:
    """sha256 of a file, read in 4 MB blocks."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return "sha256:" + h.hexdigest()


def parallel_workers(size: int) -> int:
    """How many processes to decode a JSON array of ``size`` bytes with (1: do not fork).

    Forking is only safe from a single-threaded process; LVEVAL_DECODE_WORKERS overrides.
    """
    import os
    import sys
    import threading

    env = os.environ.get("LVEVAL_DECODE_WORKERS")
    if env:
        return max(1, int(env))
    if size < PARALLEL_ABOVE or sys.platform != "linux" or threading.active_count() > 1:
        return 1
    return min(os.cpu_count() or 1, 8)
