"""Decoding a large JSON array of detections in bounded memory.

The file is memory-mapped and cut into ~8 MB pieces at record boundaries
(a ``}`` ``,`` ``{`` sequence, :func:`lveval.io.scan.next_record`); each piece
is decoded and turned into columns before the next one, so Python objects exist for one piece at a time. A cut
that falls inside a record (only possible with unusual extra fields) always
leaves invalid JSON behind; any decoding problem therefore makes the caller
fall back to decoding the whole file, which also produces the precise error.
"""
from __future__ import annotations

import mmap
from typing import TYPE_CHECKING

import numpy as np

from .scan import array_edges, next_record

if TYPE_CHECKING:
    import msgspec

CHUNK_BYTES = 8 << 20   # small pieces stay in cache: measured faster than whole-file decoding


def decode_chunked(path: str, decoder: msgspec.json.Decoder, to_columns, concat, digest: str | None = None):
    """Decode the JSON array at ``path`` piece by piece; None if anything looks wrong.

    The file's sha256 is taken on the way and set as the result's ``digest``,
    unless the caller already has it (``digest``).
    """
    import hashlib

    h = hashlib.sha256() if digest is None else _Known()
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        edges = array_edges(mm)
        if edges is None:
            return None
        view = memoryview(mm)
        try:
            parts = _pieces(mm, view, edges, h, path, decoder, to_columns)
            if parts is None:
                return None
            h.update(view[edges[1]:])
        finally:
            view.release()   # before the map closes
    d = concat(parts)
    d.digest = digest or "sha256:" + h.hexdigest()  # type: ignore[union-attr]
    return d


class _Known:
    """Stands in for the hasher when the digest is already known."""

    def update(self, data) -> None:
        pass


def _pieces(mm, view, edges, h, path, decoder, to_columns):
    """Columns of each ~CHUNK_BYTES piece between the array's brackets, hashing as it goes."""
    from .decoders import ERRORS

    pos, end = edges
    h.update(view[:pos])
    hashed = pos
    parts, base = [], 0
    while pos < end:
        m = next_record(mm, pos + CHUNK_BYTES, end) if pos + CHUNK_BYTES < end else None
        cut = m[0] if m else end
        h.update(view[hashed:cut])
        hashed = cut
        piece = b"[" + mm[pos:cut] + b"]"
        try:
            recs = decoder.decode(piece)
        except (*ERRORS, RecursionError):
            return None
        from .jsonfile import repeated_keys_suspect

        if repeated_keys_suspect(piece, len(recs)):   # the whole-file path names the record
            return None
        del piece
        parts.append(to_columns(recs, path, base))
        base += len(recs)
        del recs
        pos = m[1] if m else end
    h.update(view[hashed:end])
    return parts or None


def concat_columns(parts: list):
    """One Detections from pieces decoded in file order."""
    from dataclasses import replace

    from ..exceptions import InputError

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

