"""``topk_file``: the top K per class of a results file in two streaming passes.

The first pass selects rows keeping only (score, group, byte range or row) per
candidate, the second copies the selected records to the output unchanged.
"""
from __future__ import annotations

import os
import sys

import msgspec
import numpy as np

from ..exceptions import InputError
from ..io import fastjson
from ..io.decoders import Int64 as _I64  # ids must fit int64 columns
from ..io.jsonfile import open_stream, repeated_key_error, repeated_keys_suspect
from .known import _KnownIds
from .pool import _Pool
from .records import _fmt, _Records
from .writer import _Writer


class _Sel(msgspec.Struct, gc=False):
    image_id: _I64
    category_id: _I64
    score: float


_SEL_DECODER = msgspec.json.Decoder(list[_Sel])


def _progress(total: int, desc: str, enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="B", unit_scale=True, file=sys.stderr, leave=False)


def _select_json(path: str, k: int, per_image: int | None, block_size: int, progress: bool,
                 known: _KnownIds | None = None):
    """Pass 1 over a JSON file: (starts, ends) of the selected records, sorted."""
    crit = [("category_id", k)] + ([("image_id", per_image)] if per_image else [])
    pool = _Pool(crit)
    bar = _progress(os.path.getsize(path), "topk: selecting", progress)
    recs = _Records(path, block_size, bar)
    try:
        for chunk, starts, ends, base in recs:
            img, cat, score = _selection_columns(chunk, starts, ends, base, recs, path,
                                                 per_image or known is not None)
            _check_scores(score, base, path, lambda i, starts=starts: recs.line_at(int(starts[i])))
            if known is not None:
                keep = known.keep(img, cat, base, path, lambda i, starts=starts: recs.line_at(int(starts[i])))
                if keep is not None:
                    img, cat, score, starts, ends = img[keep], cat[keep], score[keep], starts[keep], ends[keep]
            cols = {"score": score, "start": starts, "len": (ends - starts).astype(np.int32)}
            pool.push(cols, [cat] + ([img] if per_image else []))
    finally:
        if bar is not None:
            bar.close()
    kept = pool.result()
    if kept is None:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), pool.n_seen
    return kept["start"], kept["start"] + kept["len"], pool.n_seen


def _selection_columns(chunk: bytes, starts, ends, base: int, recs, path: str, per_image):
    """(image_id or None, category_id, score) of a block's records: the compiled reader for plain
    box records, else msgspec (which also locates errors)."""
    fast = fastjson.box_columns(chunk, 1, len(chunk) - 1)
    if fast is not None and len(fast[0]) == len(starts):
        return (fast[0] if per_image else None), fast[1], fast[2]
    try:
        dets = _SEL_DECODER.decode(chunk)
    except msgspec.ValidationError as exc:
        from ..io.jsonfile import decode_error

        e = decode_error(exc, b"", path, record_base=base)
        line = recs.line_at(int(starts[e.record - base])) if e.record is not None else None
        raise InputError(e.reason, path=path, record=e.record, line=line, field=e.field) from None
    except msgspec.DecodeError as exc:
        raise _locate_decode_error(exc, chunk, starts, ends, base, recs, path) from None
    except RecursionError:
        from ..io.jsonfile import too_deep_error

        e = too_deep_error(chunk, path)
        i = min(max(0, (e.record or 0)), len(starts) - 1)
        raise InputError(e.reason, path=path, record=base + i, line=recs.line_at(int(starts[i]))) from None
    n = len(dets)
    if repeated_keys_suspect(chunk, n):
        err = repeated_key_error(chunk, path, record_base=base, line_of=lambda i: recs.line_at(int(starts[i])))
        if err is not None:
            raise err
    score = np.fromiter((d.score for d in dets), np.float64, n)
    cat = np.fromiter((d.category_id for d in dets), np.int64, n)
    img = np.fromiter((d.image_id for d in dets), np.int64, n) if per_image else None
    return img, cat, score


def _check_scores(score, base, path, line_of):
    bad = np.flatnonzero(~np.isfinite(score) | (score < 0))
    if len(bad):
        i = int(bad[0])
        raise InputError(f"score must be a finite number >= 0, got {score[i]!r}", path=path,
                         record=base + i, line=line_of(i), field="score")


def _locate_decode_error(exc, chunk, starts, ends, base, recs, path):
    """Map a syntax error inside a chunk to its record and line."""
    import re

    m = re.search(r"byte (\d+)", str(exc))
    reason = "not valid JSON (" + str(exc).split(" (")[0].strip().rstrip(".") + ")"
    if not m:
        return InputError(reason, path=path)
    b = int(m.group(1))
    if recs.lines:     # chunk = "[" + records joined by ","
        lens = (ends - starts).astype(np.int64)
        first = 1 + np.r_[0, np.cumsum(lens + 1)[:-1]]
        i = int(np.searchsorted(first, b, "right")) - 1
    else:              # chunk = "[" + the file's bytes from the first record + "]"
        i = int(np.searchsorted(starts, int(starts[0]) + b - 1, "right")) - 1
    i = min(max(i, 0), len(starts) - 1)
    return InputError(reason, path=path, record=base + i, line=recs.line_at(int(starts[i])))


def _select_parquet(path: str, k: int, per_image: int | None, batch_rows: int, progress: bool,
                    known: _KnownIds | None = None):
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except FileNotFoundError:
        raise InputError("file not found", path=path) from None
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"not a readable Parquet file ({str(exc).splitlines()[0]})", path=path) from None
    names = set(pf.schema_arrow.names)
    for c in ("image_id", "category_id", "score"):
        if c not in names:
            raise InputError("missing required column", path=path, field=c)
    crit = [("category_id", k)] + ([("image_id", per_image)] if per_image else [])
    pool = _Pool(crit)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=pf.metadata.num_rows, desc="topk: selecting", unit="rows", file=sys.stderr, leave=False)
    base = 0
    cols_needed = ["category_id", "score"] + (["image_id"] if per_image or known is not None else [])
    try:
        for batch in pf.iter_batches(batch_size=batch_rows, columns=cols_needed):
            n = batch.num_rows
            arrays = {}
            for c in cols_needed:
                col = batch.column(c)
                if col.null_count:
                    i = int(np.flatnonzero(col.is_null().to_numpy(zero_copy_only=False))[0])
                    raise InputError("null value", path=path, record=base + i, field=c)
                arrays[c] = col.to_numpy(zero_copy_only=False)
            score = arrays["score"].astype(np.float64, copy=False)
            _check_scores(score, base, path, lambda i: None)
            rows = np.arange(base, base + n, dtype=np.int64)
            keys = [arrays["category_id"].astype(np.int64, copy=False)]
            if per_image:
                keys.append(arrays["image_id"].astype(np.int64, copy=False))
            if known is not None:
                keep = known.keep(arrays["image_id"].astype(np.int64, copy=False), keys[0], base, path,
                                  lambda i: None)
                if keep is not None:
                    score, rows, keys = score[keep], rows[keep], [x[keep] for x in keys]
            pool.push({"score": score, "start": rows}, keys)
            base += n
            if bar is not None:
                bar.update(n)
    finally:
        if bar is not None:
            bar.close()
    kept = pool.result()
    if kept is None:
        return np.zeros(0, np.int64), pool.n_seen
    return kept["start"], pool.n_seen


def _copy_json(src: str, starts: np.ndarray, ends: np.ndarray, writer: _Writer, block_size: int,
               progress: bool) -> None:
    """Pass 2: copy the byte ranges [starts, ends) of ``src`` (sorted) to ``writer``."""
    bar = _progress(int(ends[-1]) if len(ends) else 0, "topk: writing", progress)
    try:
        with open_stream(src) as f:
            i, n = 0, len(starts)
            while i < n:
                lo = int(starts[i])
                # read a window starting at the next record, at least one record long
                hi_want = lo + block_size
                j = int(np.searchsorted(ends, hi_want, "right"))
                j = max(j, i + 1)
                hi = int(ends[j - 1])
                f.seek(lo)
                buf = f.read(hi - lo)
                s = (starts[i:j] - lo).tolist()
                e = (ends[i:j] - lo).tolist()
                writer.raw([buf[a:b] for a, b in zip(s, e)])
                if bar is not None:
                    bar.update(hi - lo)
                i = j
    finally:
        if bar is not None:
            bar.close()


def _copy_parquet(src: str, rows: np.ndarray, writer: _Writer, batch_rows: int) -> None:
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(src)
    base = 0
    for batch in pf.iter_batches(batch_size=batch_rows):
        n = batch.num_rows
        lo, hi = np.searchsorted(rows, [base, base + n])
        if hi > lo:
            import pyarrow as pa

            t = pa.Table.from_batches([batch]).take(pa.array(rows[lo:hi] - base))
            writer.table(t)
        base += n
    return pf.schema_arrow


def topk_file(src: str, out: str, k: int = 10_000, *, per_image: int | None = None,
              block_size: int = 32 << 20, progress: bool = False, gt=None,
              on_unknown_image: str = "error", on_unknown_category: str = "error") -> dict:
    """Write the top ``k`` records of each class of ``src`` to ``out`` (formats from the names).

    With ``per_image`` the top N records of each image are kept too (AP-Old
    then stays exact on the output). Records keep file order and, between
    JSON inputs and outputs, their exact bytes. With ``gt`` (a path, dict or
    GroundTruth) the evaluation's unknown-id policies apply first, so that
    evaluating the output with the same policies gives the figures of
    evaluating ``src``. Returns counts ``{"read": ..., "written": ...,
    "skipped": {"image_id": n, "category_id": m}}``. The output is written atomically.
    """
    from ..atomic import atomic_write, check_output

    if k is None or int(k) < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    if per_image is not None and int(per_image) < 1:
        raise ValueError(f"per_image must be a positive integer, got {per_image!r}")
    src, out = str(src), str(out)
    if os.path.abspath(src) == os.path.abspath(out):
        raise InputError("output would overwrite the input; choose another --out", path=out)
    in_fmt, out_fmt = _fmt(src), _fmt(out)
    check_output(out)   # before the passes: a directory or an unwritable file is refused at once
    known = None if gt is None else _KnownIds(gt, on_unknown_image, on_unknown_category)
    batch_rows = 1 << 20
    if in_fmt == "parquet":
        rows, seen = _select_parquet(src, int(k), per_image, batch_rows, progress, known)
        rows = np.sort(rows)
        with atomic_write(out, "wb") as f:
            w = _Writer(f, out_fmt)
            try:
                schema = _copy_parquet(src, rows, w, batch_rows)
            except BaseException:
                w.abort()
                raise
            w.close(schema)
        return _counts(seen, len(rows), known)
    if not os.path.isfile(src):
        raise InputError("file not found" if not os.path.exists(src) else "is a directory, expected a file"
                         if os.path.isdir(src) else "topk reads its input twice and this is a pipe or device: "
                         "save it to a file first (it may stay gzip- or zstd-compressed)", path=src)
    starts, ends, seen = _select_json(src, int(k), per_image, block_size, progress, known)
    o = np.argsort(starts)
    starts, ends = starts[o], ends[o]
    with atomic_write(out, "wb") as f:
        w = _Writer(f, out_fmt)
        try:
            _copy_json(src, starts, ends, w, block_size, progress)
        except BaseException:
            w.abort()
            raise
        w.close()
    return _counts(seen, len(starts), known)


def _counts(seen: int, written: int, known) -> dict:
    out = {"read": int(seen), "written": int(written)}
    if known is not None:
        out["skipped"] = dict(known.skipped)
    return out
