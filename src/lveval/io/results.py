"""Detection results as columns: JSON array, JSON Lines, Parquet, or Python objects.

Rows keep file order: lvis-api and pycocotools break score ties by it, and so
do we. ``bind`` checks results against a ground truth and maps ids to indices.
"""
from __future__ import annotations

import hashlib
import math
import os
import re
from dataclasses import dataclass, field, replace
from itertools import chain
from operator import attrgetter
from typing import Any

import numpy as np

from ..exceptions import InputError, Notices
from .chunks import concat_columns, decode_chunked
from .jsonfile import (
    CHUNKED_ABOVE,
    COMPRESSED_SUFFIXES,
    check_file,
    check_memory,
    decode_error,
    no_gc,
    not_json_reason,
    plain_file,
    read_bytes,
    repeated_key_error,
    repeated_keys_suspect,
    strip_bom,
    too_deep_error,
)


@dataclass
class Detections:
    """Columnar detections. ``img_idx``/``cat_idx``/``area`` are set by :func:`bind`."""

    img_id: np.ndarray                 # (N,) int64
    cat_id: np.ndarray                 # (N,) int64
    score: np.ndarray                  # (N,) float64
    bbox: np.ndarray | None = None  # (N, 4) float64 xywh
    segm: Any | None = None         # N masks: an RLEColumn, or a list of RLE dicts / polygons
    path: str = "<results>"
    img_idx: np.ndarray | None = None
    cat_idx: np.ndarray | None = None
    area: np.ndarray | None = None
    record: np.ndarray | None = None  # original record index of each row (after skips)
    digest: str | None = None         # "sha256:..." of the file it was read from
    line: np.ndarray | None = None    # 1-based line of each row in a JSON Lines file
    notices: Notices = field(default_factory=Notices)

    def __len__(self) -> int:
        return len(self.score)

    def take(self, idx: np.ndarray) -> Detections:
        """Rows ``idx`` (bool mask or indices), keeping their relative order."""
        idx = np.asarray(idx)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        g = lambda a: None if a is None else a[idx]
        return replace(self, img_id=self.img_id[idx], cat_id=self.cat_id[idx], score=self.score[idx],
                       bbox=g(self.bbox), segm=_take_masks(self.segm, idx),
                       img_idx=g(self.img_idx), cat_idx=g(self.cat_idx), area=g(self.area),
                       record=g(self.record), line=g(self.line), notices=self.notices)

    def to_records(self) -> list:
        """List of result dicts in the usual COCO results format."""
        out = []
        for i in range(len(self)):
            r = {"image_id": int(self.img_id[i]), "category_id": int(self.cat_id[i]),
                 "score": float(self.score[i])}
            if self.bbox is not None:
                r["bbox"] = [float(v) for v in self.bbox[i]]  # type: ignore[assignment]
            if self.segm is not None and self.segm[i] is not None:
                r["segmentation"] = _segm_record(self.segm[i])
            out.append(r)
        return out


def _take_masks(segm, idx: np.ndarray):
    if segm is None:
        return None
    if hasattr(segm, "take"):   # an RLEColumn
        return segm.take(idx)
    return [segm[i] for i in idx]


def _segm_record(s):
    """A mask as written to JSON: RLE with text counts; polygons and list counts as given."""
    if isinstance(s, dict) and "counts" in s:
        c = s["counts"]
        return {"size": [int(v) for v in s["size"]], "counts": c.decode() if isinstance(c, bytes) else c}
    return s


def _columns(dets: list, path: str, record_base: int = 0) -> Detections:
    """Columns from decoded records; a fast path when every record has a box and no mask."""
    n = len(dets)
    img = np.fromiter(map(attrgetter("image_id"), dets), np.int64, n)
    cat = np.fromiter(map(attrgetter("category_id"), dets), np.int64, n)
    score = np.fromiter(map(attrgetter("score"), dets), np.float64, n)
    bbox = segm = None
    try:
        bbox = np.fromiter(chain.from_iterable(map(attrgetter("bbox"), dets)), np.float64, 4 * n).reshape(n, 4)
    except TypeError:   # some records lack a box
        has_box = [d.bbox is not None for d in dets]
        if any(has_box):
            i = has_box.index(False)
            raise InputError("some records have a bbox and this one does not", path=path,
                             record=i + record_base, field="bbox") from None
    has_seg = [s is not None for s in map(attrgetter("segmentation"), dets)]
    if any(has_seg):
        if not all(has_seg):
            i = has_seg.index(False)
            raise InputError("some records have a segmentation and this one does not", path=path,
                             record=i + record_base, field="segmentation")
        segm = [d.segmentation for d in dets]
    return Detections(img_id=img, cat_id=cat, score=score, bbox=bbox, segm=segm, path=path,
                      record=np.arange(n, dtype=np.int64) + record_base)


_EMPTY = "file is empty (0 bytes); an empty result set is written as []"
_KINDS = {b"{": "an object", b'"': "a string", b"t": "true", b"f": "false", b"n": "null"}


def _not_json(buf: bytes, path: str) -> None:
    why = not_json_reason(buf[:64])
    if why:
        raise InputError(why, path=path)


def _from_json_array(buf: bytes, path: str) -> Detections:
    _not_json(buf, path)
    buf = strip_bom(buf)
    stripped = buf.lstrip()
    if not stripped:
        raise InputError(_EMPTY if not buf else "file holds only whitespace; an empty result set is "
                         "written as []", path=path)
    if stripped[:1] != b"[":
        c = stripped[:1]
        kind = _KINDS.get(c, "a number" if c in b"-0123456789" else None)
        if kind is None:
            raise InputError("not valid JSON (expected a JSON array of detections, starting with '[')",
                             path=path, line=1)
        head = stripped[:1 << 16]
        looks_gt = any(k in head for k in (b'"images"', b'"annotations"', b'"categories"'))   # LVIS: annotations first
        hint = " (this looks like a ground-truth file)" if looks_gt else ""
        raise InputError(f"expected a JSON array of detections at the top level, got {kind}{hint}",
                         path=path)
    from .decoders import ARRAY, ERRORS

    try:
        with no_gc():
            dets = ARRAY.decode(buf)
    except ERRORS as exc:
        raise decode_error(exc, buf, path) from None
    except RecursionError:
        raise too_deep_error(buf, path) from None
    if repeated_keys_suspect(buf, len(dets)):
        err = repeated_key_error(buf, path, line_of=lambda i: None)
        if err is not None:
            raise err
    return _columns(dets, path)


def _from_json_lines(buf: bytes, path: str) -> Detections:
    _not_json(buf, path)
    buf = strip_bom(buf)
    if not buf.strip():
        raise InputError(_EMPTY if not buf else "file holds only whitespace; an empty result set is "
                         "written as [] in a .json file", path=path)
    from .decoders import ERRORS, ONE

    lines = buf.split(b"\n")
    dets, line_nos = [], []
    with no_gc():
        for ln, raw in enumerate(lines, 1):
            if not raw.strip():
                continue
            try:
                dets.append(ONE.decode(raw))
            except ERRORS as exc:
                raise decode_error(exc, raw, path, record_base=len(dets), line=ln) from None
            except RecursionError:
                raise too_deep_error(raw, path, record_base=len(dets), line=ln) from None
            if repeated_keys_suspect(raw, 1):
                err = repeated_key_error(raw, path, record_base=len(dets) - 1, line_of=lambda i, ln=ln: ln)
                if err is not None:
                    raise err
            line_nos.append(ln)
    del lines
    try:
        d = _columns(dets, path)
    except InputError as exc:   # name the line too
        if exc.record is None:
            raise
        raise InputError(exc.reason, path=path, record=exc.record, line=line_nos[exc.record],
                         field=exc.field) from None
    d.line = np.asarray(line_nos, dtype=np.int64)
    return d


def _from_parquet(path: str) -> Detections:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        why = re.sub(r"^Could not open Parquet input source '[^']*': ", "", str(exc).splitlines()[0])
        raise InputError(f"not a readable Parquet file ({why.split('. ')[0].rstrip('.')})", path=path) from None
    pool = pa.default_memory_pool()
    pool.release_unused()   # decompression scratch: hundreds of MB on mask files
    d = from_table(table, path)
    del table
    pool.release_unused()   # the table's buffers that the columns did not keep
    return d


def from_table(table, path: str) -> Detections:
    """Detections from an Arrow table: image_id, category_id (integers), score (numbers), and
    bbox (list of 4 numbers) or x, y, w, h; masks as segm_counts + segm_h + segm_w, or a
    ``segmentation`` struct {size, counts} (what pandas writes for a column of RLE dicts)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    names = set(table.column_names)
    have = ", ".join(table.column_names) or "none"
    for k in ("image_id", "category_id", "score"):
        if k not in names:
            raise InputError(f"missing required column (the file has: {have})", path=path, field=k)

    def first_null(c) -> int:
        return int(np.flatnonzero(c.is_null().to_numpy(zero_copy_only=False))[0])

    def numeric(t, integer: bool) -> bool:
        return pa.types.is_integer(t) or (not integer and pa.types.is_floating(t))

    def col(name, integer: bool):
        c = table.column(name)
        if not numeric(c.type, integer):
            raise InputError(f"expected {'integer' if integer else 'numeric'} values, got column type "
                             f"{c.type}", path=path, field=name)
        if c.null_count:
            raise InputError("null value", path=path, record=first_null(c), field=name)
        v = c.to_numpy()
        if integer and v.dtype == np.uint64 and len(v) and v.max() > np.iinfo(np.int64).max:
            i = int(np.argmax(v > np.iinfo(np.int64).max))
            raise InputError("expected an integer that fits in 64 bits", path=path, record=i, field=name)
        return v.astype(np.int64 if integer else np.float64, copy=False)

    img = col("image_id", True)
    cat = col("category_id", True)
    score = col("score", False)
    bbox = None
    if "bbox" in names:
        c = table.column("bbox").combine_chunks()
        if not (pa.types.is_fixed_size_list(c.type) or pa.types.is_list(c.type)
                or pa.types.is_large_list(c.type)) or not numeric(c.type.value_type, False):
            raise InputError(f"expected a list of 4 numbers per row, got column type {c.type}", path=path,
                             field="bbox")
        if c.null_count:
            raise InputError("null value", path=path, record=first_null(c), field="bbox")
        if pa.types.is_fixed_size_list(c.type):
            if c.type.list_size != 4:
                raise InputError(f"expected 4 numbers [x, y, w, h] per bbox, got {c.type.list_size}",
                                 path=path, field="bbox")
        else:
            lens = c.value_lengths().to_numpy()
            bad = np.flatnonzero(lens != 4)
            if len(bad):
                raise InputError(f"expected 4 numbers [x, y, w, h], got {int(lens[bad[0]])}", path=path,
                                 record=int(bad[0]), field="bbox")
        flat = c.flatten()
        if flat.null_count:
            j = first_null(flat)
            row = j // 4 if pa.types.is_fixed_size_list(c.type) else int(pc.list_parent_indices(c)[j].as_py())
            raise InputError("null coordinate", path=path, record=row, field="bbox")
        bbox = flat.to_numpy().astype(np.float64).reshape(-1, 4)
    elif {"x", "y", "w", "h"} <= names:
        bbox = np.stack([col(k, False) for k in ("x", "y", "w", "h")], axis=1)
    segm = None
    if "segm_counts" in names or "segmentation" in names:
        name = "segm_counts" if "segm_counts" in names else "segmentation"
        c = table.column(name)
        if pa.types.is_struct(c.type):
            segm = _arrow_struct_masks(c) or c.to_pylist()
        elif pa.types.is_string(c.type) or pa.types.is_large_string(c.type) or pa.types.is_binary(c.type):
            for k in ("segm_h", "segm_w"):
                if k not in names:
                    raise InputError(f"missing required column (masks as RLE strings need {name}, segm_h "
                                     f"and segm_w; the file has: {have})", path=path, field=k)
            hs, ws = col("segm_h", True), col("segm_w", True)
            segm = _arrow_masks(c, hs, ws) or [{"size": [int(h), int(w)], "counts": v}
                                               for v, h, w in zip(c.to_pylist(), hs, ws)]
        else:
            raise InputError(f"expected RLE strings or {{size, counts}} structs, got column type {c.type}",
                             path=path, field=name)
    return Detections(img_id=img, cat_id=cat, score=score, bbox=bbox, segm=segm, path=path,
                      record=np.arange(len(score), dtype=np.int64))


def _arrow_strings(c):
    """(bytes uint8, offsets int64) of an Arrow string/binary column without nulls, or None."""
    import pyarrow as pa

    c = c.combine_chunks() if isinstance(c, pa.ChunkedArray) else c
    if c.null_count or not (pa.types.is_string(c.type) or pa.types.is_large_string(c.type)
                            or pa.types.is_binary(c.type) or pa.types.is_large_binary(c.type)):
        return None
    big = pa.types.is_large_string(c.type) or pa.types.is_large_binary(c.type)
    _, ob, db = c.buffers()
    off = np.frombuffer(ob, np.int64 if big else np.int32)[c.offset:c.offset + len(c) + 1].astype(np.int64)
    data = np.frombuffer(db, np.uint8) if db is not None else np.zeros(0, np.uint8)
    return data, off


def _arrow_masks(c, h: np.ndarray, w: np.ndarray):
    """An RLEColumn over an Arrow column of RLE strings (no copy of the strings), or None."""
    from .masks import RLEColumn

    got = _arrow_strings(c)
    return None if got is None else RLEColumn(got[0], got[1], h, w)


def _arrow_struct_masks(c):
    """An RLEColumn from a struct<size: list<int> of 2, counts: string> column, or None when it is
    anything else (then the rows go through Python objects and are checked one by one)."""
    import pyarrow as pa

    c = c.combine_chunks()
    t = c.type
    if c.null_count or {t.field(i).name for i in range(t.num_fields)} != {"size", "counts"}:
        return None
    size = c.field("size")
    if not (pa.types.is_list(size.type) or pa.types.is_large_list(size.type)
            or pa.types.is_fixed_size_list(size.type)) or not pa.types.is_integer(size.type.value_type):
        return None
    if size.null_count or len(size) and (size.value_lengths().to_numpy() != 2).any():
        return None
    flat = size.flatten()
    if flat.null_count:
        return None
    hw = flat.to_numpy().astype(np.int64).reshape(-1, 2)
    return _arrow_masks(c.field("counts"), hw[:, 0], hw[:, 1])


def _from_python(obj, path: str) -> Detections:
    if isinstance(obj, dict):   # columns
        for k in ("image_id", "category_id", "score"):
            if k not in obj:
                raise InputError("missing required column", path=path, field=k)
        n = len(obj["score"])

        def column(name, dtype, shape):
            v = np.asarray(obj[name])
            if v.dtype.kind not in "iub" + ("f" if dtype is np.float64 else ""):
                if not (v.dtype.kind == "f" and np.array_equal(v, np.round(v))):   # 1.0 as an id is fine
                    raise InputError(f"expected {'integers' if dtype is np.int64 else 'numbers'}, got "
                                     f"dtype {v.dtype}", path=path, field=name)
            if v.size != int(np.prod(shape)):
                raise InputError(f"expected shape {shape} (as many rows as 'score'), got {v.shape}",
                                 path=path, field=name)
            return v.astype(dtype).reshape(shape)

        bbox = obj.get("bbox")
        segm = obj.get("segmentation")
        if segm is not None and len(segm) != n:
            raise InputError(f"expected {n} masks (as many rows as 'score'), got {len(segm)}", path=path,
                             field="segmentation")
        return Detections(img_id=column("image_id", np.int64, (n,)),
                          cat_id=column("category_id", np.int64, (n,)),
                          score=column("score", np.float64, (n,)),
                          bbox=None if bbox is None else column("bbox", np.float64, (n, 4)),
                          segm=None if segm is None else list(segm), path=path,
                          record=np.arange(n, dtype=np.int64))
    if isinstance(obj, (list, tuple)):
        from .decoders import ValidationError, convert

        try:
            dets = convert(list(obj))
        except ValidationError:
            try:   # numpy scalars and arrays (np.int64 ids, np.float32 scores) are fine as values
                dets = convert([_plain(r) for r in obj])
            except ValidationError as exc:
                raise decode_error(exc, b"", path) from None
        return _columns(dets, path)
    raise TypeError(f"results must be a path, a list of dicts, a dict of columns or Detections, "
                    f"not {type(obj).__name__}")


def _plain(v):
    """``v`` with numpy scalars and arrays turned into Python numbers and lists."""
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return v


def format_of(path: str) -> str | None:
    """'json', 'jsonl' or 'parquet' from a file name (a .gz or .zst ending aside); None if it does not say."""
    low = str(path).lower()
    for suffix in COMPRESSED_SUFFIXES:
        if low.endswith(suffix):
            low = low[:-len(suffix)]
    if low.endswith((".parquet", ".pq")):
        return "parquet"
    if low.endswith((".jsonl", ".ndjson")):
        return "jsonl"
    if low.endswith(".json"):
        return "json"
    return None


def _sniff(buf: bytes) -> str:
    """The format of a nameless input (a pipe, ``<(zcat r.jsonl.gz)``) from its first bytes."""
    if buf[:4] == b"PAR1":
        return "parquet"
    return "jsonl" if strip_bom(buf).lstrip()[:1] == b"{" else "json"


def _from_buffer(p: str, gt=None) -> Detections:
    """Results that are read once into memory: a pipe, process substitution, a gzip or zstd file."""
    from .jsonfile import available_memory, gt_held

    held = gt_held(gt)
    avail = available_memory()
    buf = read_bytes(p, budget=None if avail is None else max(0, avail - held) // 3)
    fmt = format_of(p) or _sniff(buf)
    check_memory(p, len(buf), fmt, head=buf[:1 << 20], gt=gt, held=held)   # the estimate counts the bytes read
    if fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(pa.BufferReader(buf))
        except (pa.ArrowInvalid, OSError) as exc:
            raise InputError(f"not a readable Parquet file ({str(exc).splitlines()[0]})", path=p) from None
        d = from_table(table, p)
    else:
        d = _from_json_lines(buf, p) if fmt == "jsonl" else _from_json_array(buf, p)
    d.digest = "sha256:" + hashlib.sha256(buf).hexdigest()   # of the content as read (decompressed)
    return d


_DIGEST_WINDOW = 64 << 20


def file_sha256(path: str) -> str:
    """``"sha256:" + hex digest`` of a regular file, hashed in 64 MB windows of a memory map: hashlib
    lets go of the interpreter for a whole window and takes it back once per window (a 4 MB read
    loop takes it back, and may wait for another thread, 16 times as often); pages are dropped
    behind, so the file is never resident whole."""
    import mmap

    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        try:
            mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) if size else None
        except (OSError, ValueError):   # a file that cannot be mapped is read
            mm = None
        h = hashlib.sha256()
        if mm is None:   # also files whose size says 0 but that hold bytes (/proc)
            for chunk in iter(lambda: f.read(1 << 22), b""):
                h.update(chunk)
            return "sha256:" + h.hexdigest()
        with mm, memoryview(mm) as view:
            for lo in range(0, size, _DIGEST_WINDOW):
                hi = min(size, lo + _DIGEST_WINDOW)
                h.update(view[lo:hi])
                _drop_pages(mm, lo, hi)
    return "sha256:" + h.hexdigest()


class PendingDigest:
    """The sha256 of a regular file, computed in a background thread from the moment it is made.

    ``Evaluator.load`` starts one for the results file before it loads the ground truth, whose
    decoding holds the interpreter while hashing does not: the digest then costs no time of its own
    (200k masks, 56 MB: 50 ms of CPU that the JSON reader's threads no longer share). :meth:`result`
    is the digest, or None if the file could not be read (the loader then reports the problem and
    hashes as it reads)."""

    def __init__(self, path: str):
        import threading

        self._value: str | None = None
        self._thread = threading.Thread(target=self._run, args=(path,), daemon=True, name="lveval-digest")
        self._thread.start()

    def _run(self, path: str) -> None:
        try:
            self._value = file_sha256(path)
        except (OSError, ValueError):
            self._value = None

    def result(self) -> str | None:
        self._thread.join()
        return self._value


def pending_digest(source: Any) -> PendingDigest | None:
    """A :class:`PendingDigest` of ``source`` if it is a path to a regular, uncompressed file (one that
    can be read twice); else None."""
    if not isinstance(source, (str, os.PathLike)):
        return None
    try:
        return PendingDigest(str(source)) if plain_file(str(source)) else None
    except OSError:
        return None


def load_results(source: Any, *, path: str | None = None, gt=None, measure_masks: bool = False,
                 digest: PendingDigest | None = None) -> Detections:
    """Read detections from a file (.json, .jsonl/.ndjson, .parquet; also gzip- or zstd-compressed, a
    pipe or process substitution) or Python objects. ``gt``: the ground truth they will be evaluated
    against, for the memory check (its vocabulary and its own size count). ``measure_masks``: the masks
    will be evaluated; the compiled JSON reader then validates and measures them as it parses them
    (binding reuses that instead of reading the strings again). ``digest``: the file's
    :func:`pending_digest`, taken instead of hashing while reading."""
    if gt is not None:
        from .jsonfile import check_vocabulary_memory, gt_held

        check_vocabulary_memory(gt, held=gt_held(gt))
    if isinstance(source, Detections):
        return source
    if isinstance(source, (str, os.PathLike)):
        p = str(source)
        size = check_file(p)
        if not plain_file(p):
            return _from_buffer(p, gt)
        fmt = format_of(p) or "json"
        from .jsonfile import gt_held

        check_memory(p, size, fmt, gt=gt, held=gt_held(gt))
        if fmt == "parquet":
            pq_d = _from_parquet(p)
            if digest is not None and pq_d.digest is None:
                pq_d.digest = digest.result()
            return pq_d
        known = digest.result if digest is not None else None
        taken = None
        if fmt in ("json", "jsonl"):   # plain box or mask records: compiled reader, no object per record
            d, taken = _from_json_boxes(p, lines=fmt == "jsonl", measure=measure_masks, digest=known)
            if d is not None:
                return d
        if fmt == "json" and size > CHUNKED_ABOVE:   # large arrays: decode piece by piece
            from .decoders import ARRAY

            with no_gc():
                d = decode_chunked(p, ARRAY, _columns, concat_columns, digest=taken or (known and known()))
            if d is not None:
                return d
            check_memory(p, size, fmt, whole=True, gt=gt, held=gt_held(gt))   # the precise error needs the whole file
        buf = read_bytes(p)
        d = _from_json_lines(buf, p) if fmt == "jsonl" else _from_json_array(buf, p)
        d.digest = taken or (known and known()) or "sha256:" + hashlib.sha256(buf).hexdigest()
        return d
    return _from_python(source, path or "<results>")


def _from_json_boxes(path: str, lines: bool = False, measure: bool = False,
                     digest=None) -> tuple[Detections | None, str | None]:
    """(Detections, digest) from the compiled reader for a JSON array (or JSON Lines), the file
    hashed meanwhile, unless ``digest`` (a callable giving it, or None if it could not) is given.
    When the reader does not apply the Detections are None (the general decoder reads the file then)
    and the digest, if taken, is still returned for it."""
    import mmap
    from concurrent.futures import ThreadPoolExecutor

    from . import fastjson
    from .scan import array_edges

    if not fastjson.available():
        return None, None
    with open(path, "rb") as f:
        if os.fstat(f.fileno()).st_size == 0:
            return None, None
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            edges = (0, len(mm)) if lines else array_edges(mm)
            if edges is None:
                return None, None
            view = memoryview(mm)
            # records with masks (told by the first one) go to the mask reader
            first_end = mm.find(b"}", edges[0], min(edges[1], edges[0] + (1 << 16)))
            with_masks = mm.find(b'"segmentation"', edges[0], min(edges[1], edges[0] + (1 << 16))) >= 0
            with_masks = with_masks and (first_end < 0 or mm.find(b'"segmentation"', edges[0], first_end) >= 0)
            try:
                if with_masks:   # hashed (unless known) and released window by window: never resident whole
                    hasher = hashlib.sha256() if digest is None else None
                    cols = fastjson.mask_columns(mm, *edges, lines=lines, hasher=hasher, measure=measure,
                                                 release=lambda lo, hi: _drop_pages(mm, lo, hi))
                    if hasher is None:
                        digest = digest() or "sha256:" + hashlib.sha256(view).hexdigest()
                    else:
                        if cols is not None:
                            hasher.update(view[edges[1]:])
                        else:
                            hasher = hashlib.sha256(view)
                        digest = "sha256:" + hasher.hexdigest()
                elif digest is not None:
                    cols = fastjson.box_columns(mm, *edges, lines=lines)
                    digest = digest() or "sha256:" + hashlib.sha256(view).hexdigest()
                else:
                    with ThreadPoolExecutor(1) as pool:
                        digest = pool.submit(lambda: "sha256:" + hashlib.sha256(view).hexdigest())  # type: ignore[assignment]
                        cols = fastjson.box_columns(mm, *edges, lines=lines)
                        digest = digest.result()  # type: ignore[attr-defined]
            finally:
                view.release()   # before the map closes
    if cols is None or (lines and len(cols[0]) == 0):   # no records: the general reader says why
        return None, digest
    img, cat, score, bbox = cols[:4]
    segm = cols[4] if with_masks else None
    return Detections(img_id=img, cat_id=cat, score=score, bbox=bbox, segm=segm, path=path,
                      record=np.arange(len(score), dtype=np.int64), digest=digest,
                      line=cols[-1] if lines else None), digest


def _drop_pages(mm, lo: int, hi: int) -> None:
    """Let the kernel drop the mapped pages of ``mm[lo:hi]`` from this process (read already)."""
    import mmap

    if not hasattr(mmap, "MADV_DONTNEED"):
        return
    a = lo - lo % mmap.PAGESIZE
    b = hi - hi % mmap.PAGESIZE
    if b > a:
        try:
            mm.madvise(mmap.MADV_DONTNEED, a, b - a)
        except (OSError, ValueError):
            pass


def check_policy(policy: str) -> None:
    """ValueError unless ``policy`` (for unknown image or category ids) is 'error' or 'skip'."""
    if policy not in ("error", "skip"):
        raise ValueError(f"policy must be 'error' or 'skip', not {policy!r}")


def bind(dets: Detections, gt, *, iou_type: str = "bbox", on_unknown_image: str = "error",
         on_unknown_category: str = "error") -> Detections:
    """Validate detections against ``gt`` and attach image/category indices and areas.

    Unknown ids raise (``error``) or are dropped and counted (``skip``). Scores
    must be finite and >= 0; scores above 1 are allowed with one warning.
    """
    path = dets.path
    notices = Notices()
    notices.merge(dets.notices)
    rec = dets.record if dets.record is not None else np.arange(len(dets))
    lines = dets.line

    def at(i):   # where row i came from: record index, and line for JSON Lines
        return dict(path=path, record=int(rec[i]), line=None if lines is None else int(lines[i]))

    bad = np.flatnonzero(~np.isfinite(dets.score) | (dets.score < 0))
    if len(bad):
        i = int(bad[0])
        raise InputError(f"must be a finite number >= 0, got {float(dets.score[i])}", **at(i),
                         field="score")
    if len(dets) and dets.score.max() > 1:
        # no path in notices: they go into the output JSON, which must not depend on where files are
        notices.warn(f"results: {int((dets.score > 1).sum())} scores are above 1 (allowed; "
                     "calibration and pooled AP assume comparable scores)")
    masks = iou_type in ("segm", "boundary")   # boundary IoU evaluates masks as segm does
    if masks and dets.segm is None:
        raise InputError(f"{iou_type} evaluation requested but the results carry no 'segmentation' masks",
                         path=path, field="segmentation")
    if iou_type == "bbox" and dets.bbox is None:
        if dets.segm is None:
            if len(dets):
                raise InputError("bbox evaluation requested but the results carry no 'bbox'", path=path,
                                 field="bbox")
            dets = replace(dets, bbox=np.zeros((0, 4)))
    if dets.bbox is not None and len(dets):
        b = dets.bbox
        badb = np.flatnonzero(~np.isfinite(b).all(axis=1) | (b[:, 2] <= 0) | (b[:, 3] <= 0))
        if len(badb):
            i = int(badb[0])
            raise InputError(f"expected [x, y, w, h] with finite numbers and w > 0, h > 0, got {b[i].tolist()}",
                             **at(i), field="bbox")

    img_idx, ok_img = gt.image_index(dets.img_id)
    cat_idx, ok_cat = gt.category_index(dets.cat_id)
    keep = np.ones(len(dets), bool)
    for ok, what, policy, field_ in ((ok_img, "image_id", on_unknown_image, "image_id"),
                                     (ok_cat, "category_id", on_unknown_category, "category_id")):
        check_policy(policy)
        if not ok.all():
            if policy == "error":
                i = int(np.flatnonzero(~ok)[0])
                raise InputError(f"unknown {what} {int(getattr(dets, 'img_id' if what == 'image_id' else 'cat_id')[i])}"
                                 f" (not in the ground truth; use --on-unknown-"
                                 f"{'image' if what == 'image_id' else 'category'} skip to drop such records)",
                                 **at(i), field=field_)
            notices.skip(f"unknown {what}", int((~ok & keep).sum()))
            keep &= ok
    if not keep.all():
        dets = dets.take(keep)
        img_idx, cat_idx = img_idx[keep], cat_idx[keep]
        rec = rec[keep]
        lines = None if lines is None else lines[keep]

    segm = dets.segm
    area = mask_box = None
    if segm is not None and masks:
        segm, area, mask_box = _check_masks(segm, gt, img_idx, path, rec, lines, boxes=dets.bbox is None)
    bbox = dets.bbox
    if bbox is None and segm is not None:
        if mask_box is None:
            segm, _, mask_box = _check_masks(segm, gt, img_idx, path, rec, lines)
        bbox = mask_box
    if area is None:
        with np.errstate(over="ignore", under="ignore"):   # inf and 0 are what lvis-api computes too
            area = bbox[:, 2] * bbox[:, 3]  # type: ignore[index]
    if len(dets) and bbox is not None:
        h = gt.img_h[img_idx]
        w = gt.img_w[img_idx]
        sized = (h > 0) & (w > 0)    # images without a size: the check is skipped (said when loading)
        outside = sized & ((bbox[:, 0] < 0) | (bbox[:, 1] < 0) | (bbox[:, 0] + bbox[:, 2] > w)
                           | (bbox[:, 1] + bbox[:, 3] > h))
        n_out = int(outside.sum())
        if n_out:   # said once: counted under 'flagged' (and printed as one note)
            notices.flag("boxes outside the image (evaluated as given)", n_out)

    return replace(dets, bbox=bbox, segm=segm, img_idx=img_idx.astype(np.int64),
                   cat_idx=cat_idx.astype(np.int64), area=np.asarray(area, np.float64), record=rec,
                   notices=notices)


def images_covered(dets: Detections, gt) -> np.ndarray:
    """Bool (num_images,): images with at least one bound result."""
    return np.bincount(dets.img_idx, minlength=gt.num_images) > 0 if len(dets) else np.zeros(gt.num_images, bool)  # type: ignore[arg-type]


COVERAGE_WARNING = "results cover "   # the start of coverage_warning's text


def coverage_warning(dets: Detections | None, gt, covered_mask: np.ndarray | None = None) -> str | None:
    """A warning when bound results cover less than 90% of the ground truth's images (results of a
    subset evaluated against the whole set?); None otherwise, and for an empty result set.
    ``covered_mask``: :func:`images_covered` when the results are not at hand (sharded runs)."""
    mask = images_covered(dets, gt) if covered_mask is None else covered_mask  # type: ignore[arg-type]
    covered = int(np.count_nonzero(mask))
    if covered == 0 or covered >= 0.9 * gt.num_images:
        return None
    return (f"{COVERAGE_WARNING}{covered} of the ground truth's {gt.num_images} images; the others count as "
            "images where the detector found nothing (results of a subset?)")


def _finite_numbers(v) -> bool:
    return all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in v)


def polygon_problem(seg) -> str | None:
    """What is wrong with a list of polygons (COCO format), or None."""
    if not seg:
        return "expected at least one polygon, got an empty list"
    for j, poly in enumerate(seg):
        if not isinstance(poly, list):
            return f"polygon {j}: expected a list of numbers [x1, y1, x2, y2, ...], got {type(poly).__name__}"
        if len(poly) < 6 or len(poly) % 2:
            return (f"polygon {j}: a polygon needs at least 3 points (6 numbers, an even count), "
                    f"got {len(poly)} numbers")
        try:   # one C-level sum: NaN or infinity anywhere makes it non-finite (fast on large sets)
            total = sum(poly)
        except TypeError:
            total = None
        if not isinstance(total, (int, float)) or not math.isfinite(total):
            return f"polygon {j}: coordinates must be finite numbers"
    return None


def rle_problem(s: dict, h: int, w: int) -> str | None:
    """What is wrong with an RLE {size, counts} for an h x w image, or None."""
    size = s["size"]
    if not (isinstance(size, (list, tuple)) and len(size) == 2 and _finite_numbers(size)):
        return f"size: expected [height, width], got {size!r:.40}"
    if [size[0], size[1]] != [h, w]:
        return f"size: RLE size {list(size)} does not match the image ({h}x{w}, height x width)"
    c = s["counts"]
    if isinstance(c, list):
        if not all(isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in c):
            return "counts: uncompressed RLE counts must be non-negative integers"
        if sum(c) != h * w:
            return f"counts: uncompressed RLE counts sum to {sum(c)}, expected height*width = {h * w}"
        return None
    if isinstance(c, (str, bytes)):
        cb = c.encode() if isinstance(c, str) else c
        why = counts_problem(cb, h * w)
        return None if why is None else f"counts: malformed compressed RLE: {why}"
    return f"counts: expected a string or a list of integers, got {type(c).__name__}"


def _check_masks(segm, gt, img_idx: np.ndarray, path: str, rec: np.ndarray, lines=None, boxes: bool = True):
    """Normalise result masks to a column of compressed RLE; returns (column, areas, boxes); the
    boxes (pycocotools' toBbox) are None unless ``boxes``.

    Plain compressed RLE dicts (or an :class:`RLEColumn`) are packed and validated together
    (:func:`masks.stats`, compiled when built); polygons and uncompressed RLE are converted by
    pycocotools one by one. The first bad mask, in record order, is then described precisely by
    :func:`rle_problem` or :func:`polygon_problem`.
    """
    from pycocotools import mask as mask_utils

    from . import masks as mk

    h = gt.img_h[img_idx].astype(np.int64)
    w = gt.img_w[img_idx].astype(np.int64)
    first_bad = None
    rebuilt = True
    if isinstance(segm, mk.RLEColumn):
        col = segm
        wrong = np.flatnonzero((col.h != h) | (col.w != w))
        if len(wrong):
            first_bad = int(wrong[0])
    else:
        col, plain = mk.pack(segm, h, w)
        other = np.flatnonzero(~plain)
        if len(other):   # polygons, uncompressed RLE, odd size values, bad records: one by one
            fixed = {}
            for i in other.tolist():
                s = segm[i]
                hi, wi = int(h[i]), int(w[i])
                if isinstance(s, dict) and "counts" in s and "size" in s:
                    c = s["counts"]
                    size = s["size"]
                    if isinstance(c, (str, bytes)) and isinstance(size, (list, tuple)) and len(size) == 2 \
                            and size[0] == hi and size[1] == wi:
                        fixed[i] = c.encode() if isinstance(c, str) else c
                        continue
                    if rle_problem(s, hi, wi):
                        first_bad = i
                        break
                    fixed[i] = mask_utils.frPyObjects({"size": [hi, wi], "counts": c}, hi, wi)["counts"]
                elif isinstance(s, list):
                    if polygon_problem(s):
                        first_bad = i
                        break
                    fixed[i] = mask_utils.merge(mask_utils.frPyObjects(s, hi, wi))["counts"]
                else:
                    first_bad = i
                    break
            rebuilt = first_bad is None
            if rebuilt:
                col = mk.RLEColumn.from_strings([fixed[i] if i in fixed else col.counts(i)
                                                 for i in range(len(col))], h, w)
    ok, area, box = mk.stats(col, boxes)
    col.measured = None   # used once: the areas and boxes live on in the bound Detections
    if not rebuilt:   # rows not packed hold no string: the loop above judged those it reached
        ok |= ~plain
    if not ok.all():
        j = int(np.flatnonzero(~ok)[0])
        first_bad = j if first_bad is None else min(first_bad, j)
    if first_bad is not None:
        i = first_bad
        s = segm[i]
        hi, wi = int(h[i]), int(w[i])
        where = dict(path=path, record=int(rec[i]), line=None if lines is None else int(lines[i]))
        if isinstance(s, dict) and "counts" in s and "size" in s:
            sub, _, why = (rle_problem(s, hi, wi) or "counts: malformed compressed RLE").partition(": ")
            raise InputError(why, **where, field=f"segmentation.{sub}")  # type: ignore[arg-type]
        if isinstance(s, list):
            raise InputError(polygon_problem(s), **where, field="segmentation")  # type: ignore[arg-type]
        raise InputError(f"expected an RLE {{size, counts}} or a list of polygons, got {type(s).__name__}",
                         **where, field="segmentation")  # type: ignore[arg-type]
    if box is not None:
        col.box = box   # kept for matching: masks whose boxes do not meet need no IoU
    return col, area, box


def batch_counts_valid(strings: list, totals: np.ndarray) -> np.ndarray:
    """For many compressed RLE strings at once: does each decode (as pycocotools' rleFrString
    does) to non-negative runs summing to its ``totals`` entry? Vectorised over all bytes."""
    n = len(strings)
    ok = np.ones(n, bool)
    if n == 0:
        return ok
    lens = np.fromiter(map(len, strings), np.int64, n)
    ends_of = np.cumsum(lens)
    arr = np.frombuffer(b"".join(strings), np.uint8)
    owner_of = lambda pos: np.searchsorted(ends_of, pos, "right")   # mask of byte positions
    bad = np.flatnonzero((arr < 48) | (arr > 111))
    if len(bad):
        ok[np.unique(owner_of(bad))] = False
    v = arr - np.uint8(48)
    more = (v & 0x20) != 0
    nonempty = lens > 0
    ok[nonempty] &= ~more[ends_of[nonempty] - 1]    # a run cut off at the end
    ok[~nonempty] = totals[~nonempty] == 0
    use = ok & nonempty
    if not use.all():
        keep = np.repeat(use, lens)
        v, more = v[keep], more[keep]
        lens = np.where(use, lens, 0)
        ends_of = np.cumsum(lens)
    if len(v) == 0:
        return ok
    ends = np.flatnonzero(~more)
    starts = np.r_[0, ends[:-1] + 1]
    glen = ends - starts + 1
    g_owner = np.searchsorted(ends_of, ends, "right")
    too_long = glen > 12
    if too_long.any():
        ok[np.unique(g_owner[too_long])] = False        # too many characters for one run
    shift = (np.arange(len(v), dtype=np.int32) - np.repeat(starts.astype(np.int32), glen)) * 5
    shift = np.minimum(shift, 55).astype(np.int64)
    vals = np.add.reduceat((v & 0x1F).astype(np.int64) << shift, starts)
    neg = (v[ends] & 0x10) != 0
    vals = np.where(neg, vals - (np.int64(1) << (5 * np.minimum(glen, 12))), vals)
    # index of each run inside its mask; runs from index 3 on are deltas on index - 2, i.e. two
    # interleaved running sums per mask (k = 1, 3, 5, ... and k = 2, 4, ...), k = 0 alone.
    # Each chain is contiguous among the runs of one global index parity: no sort needed.
    gb = np.flatnonzero(np.r_[True, g_owner[1:] != g_owner[:-1]])     # first run of each mask
    k = np.arange(len(vals)) - np.repeat(gb, np.diff(np.r_[gb, len(vals)]))
    counts = np.empty_like(vals)
    for p in (0, 1):
        x = vals[p::2]
        cs = np.cumsum(x)
        kp = k[p::2]
        seg = np.flatnonzero(kp <= 2)                     # k = 0, 1, 2 each start a chain
        base = np.r_[0, cs[seg[1:] - 1]] if len(seg) else np.zeros(0, np.int64)
        counts[p::2] = cs - np.repeat(base, np.diff(np.r_[seg, len(x)]))
    negative = counts < 0
    if negative.any():
        ok[np.unique(g_owner[negative])] = False
    sums = np.bincount(g_owner, weights=counts.astype(np.float64), minlength=n)
    ok &= ~(nonempty & (sums != totals))
    return ok


def mask_area(rles) -> np.ndarray:
    """Areas of compressed RLEs (a list of dicts or an :class:`RLEColumn`). pycocotools 2.0.11's
    ``area`` overflows past 255 masks in one call ("out of bounds for uint8"), so it is called in chunks."""
    from pycocotools import mask as mask_utils

    from .masks import RLEColumn, stats

    if isinstance(rles, RLEColumn):
        return stats(rles)[1]

    parts = [np.asarray(mask_utils.area(rles[i:i + 255]), np.float64).reshape(-1)
             for i in range(0, len(rles), 255)]
    return np.concatenate(parts) if parts else np.zeros(0)


def counts_problem(cb: bytes, total: int) -> str | None:
    """What is wrong with COCO's compressed RLE string ``cb`` for a mask of ``total`` pixels, or None."""
    counts, why = decode_counts(cb)
    if why is None and int(counts.sum()) != total:
        why = f"runs sum to {int(counts.sum())}, expected height*width = {total}"
    return why


def decode_counts(cb: bytes):
    """Run lengths of COCO's compressed RLE string (pycocotools' rleFrString, vectorised).

    Returns (counts, None), or (None, reason) for characters outside the alphabet, a run cut
    off, or a negative run length."""
    arr = np.frombuffer(cb, dtype=np.uint8)
    if len(arr) == 0:
        return np.zeros(0, np.int64), None
    if arr.min() < 48 or arr.max() > 111:
        return None, "characters outside COCO's compressed RLE alphabet ('0' to 'o')"
    v = arr.astype(np.int64) - 48
    more = (v & 0x20) != 0
    if more[-1]:
        return None, "the string ends in the middle of a run"
    ends = np.flatnonzero(~more)
    starts = np.r_[0, ends[:-1] + 1]
    # value = sum of 5-bit groups, little end first; sign from bit 4 of the last group
    pos = np.arange(len(v)) - np.repeat(starts, ends - starts + 1)
    if pos.max() > 12:
        return None, "a run is encoded with too many characters"
    vals = np.add.reduceat((v & 0x1F) << (5 * pos), starts)
    neg = (v[ends] & 0x10) != 0
    vals = np.where(neg, vals - (1 << (5 * (pos[ends] + 1))), vals)
    # runs are delta-coded from index 3 on: counts[i] += counts[i-2], in two interleaved chains
    counts = vals.copy()
    if len(counts) > 3:
        for start in (1, 2):
            idx = np.arange(start, len(counts), 2)
            chain = counts[idx]
            if len(chain) > 1:
                counts[idx] = np.cumsum(chain)
    if (counts < 0).any():
        return None, "decodes to a negative run length"
    return counts, None


def write_results(dets: Detections, path: str) -> None:
    """Write detections as .json, .jsonl or .parquet, atomically."""
    from ..atomic import atomic_write

    low = path.lower()
    if low.endswith((".parquet", ".pq")):
        from .masks import RLEColumn
        from .parquet import results_table, string_column, write_table

        segm = {}
        if isinstance(dets.segm, RLEColumn) and not (dets.segm.data >= 0x80).any():   # ASCII: valid UTF-8
            m = dets.segm
            segm = {"segm_counts": string_column(m.data, m.offsets), "segm_h": m.h, "segm_w": m.w}
        elif dets.segm is not None:
            for i, m in enumerate(dets.segm):
                if not (isinstance(m, dict) and isinstance(m.get("counts"), (str, bytes))):
                    raise InputError("Parquet stores masks as compressed RLE; this one is polygons or "
                                     "uncompressed RLE (evaluate with --iou-type segm, or convert to JSON)",
                                     path=dets.path, record=int(dets.record[i]) if dets.record is not None else i,
                                     field="segmentation")
            segm = {"segm_counts": [s["counts"].decode() if isinstance(s["counts"], bytes) else s["counts"]
                                    for s in dets.segm],
                    "segm_h": [int(s["size"][0]) for s in dets.segm], "segm_w": [int(s["size"][1]) for s in dets.segm]}
        table = results_table(dets.img_id, dets.cat_id, dets.score, dets.bbox, **segm)
        with atomic_write(path, "wb") as f:
            write_table(table, f)
        return
    import orjson

    recs = dets.to_records()
    with atomic_write(path, "wb") as f:
        if low.endswith((".jsonl", ".ndjson")):
            for r in recs:
                f.write(orjson.dumps(r) + b"\n")
        else:
            f.write(orjson.dumps(recs))
