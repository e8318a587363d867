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

    from ..errors import InputError

    first = parts[0]
    if len(parts) == 1:
        return first
    for name, what in (("bbox", "a bbox"), ("segm", "a segmentation")):   # pieces must agree
        has = [getattr(p, name) is not None for p in parts]
        if any(has) and not all(has):
            lacking = parts[has.index(False)]
            raise InputError(f"some records have {what} and this one does not", path=first.path,
                             record=int(lacking.record[0]), field="bbox" if name == "bbox" else "segmentation")
    cat = lambda name: None if getattr(first, name) is None else np.concatenate([getattr(p, name) for p in parts])
    segm = None
    if first.segm is not None:
        segm = [s for p in parts for s in p.segm]
    return replace(first, img_id=cat("img_id"), cat_id=cat("cat_id"), score=cat("score"), bbox=cat("bbox"),
                   segm=segm, record=cat("record"))

