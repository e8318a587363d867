"""Reading JSON bytes with errors that name the file, the record, the line and the field.

Also the memory check that refuses a results file too large to evaluate
before reading it (an out-of-memory kill loses the user's time and says nothing).
"""
from __future__ import annotations

import gc
import math
import os
import re
from contextlib import contextmanager

import numpy as np
import orjson

from ..exceptions import InputError, ResourceError
from .chunks import CHUNK_BYTES

# ---------------------------------------------------------------------------------------------
# Reading inputs: files, pipes and process substitution, gzip and zstd

_GZIP, _ZSTD = b"\x1f\x8b", b"\x28\xb5\x2f\xfd"
COMPRESSED_SUFFIXES = (".gz", ".zst")
_NOT_JSON = ((b"\xff\xfe\x00\x00", "UTF-32 text"), (b"\x00\x00\xfe\xff", "UTF-32 text"),
             (b"\xff\xfe", "UTF-16 text"), (b"\xfe\xff", "UTF-16 text"), (b"BZh", "bzip2-compressed"),
             (b"\xfd7zXZ\x00", "xz-compressed"), (b"PK\x03\x04", "a zip archive"), (b"PAR1", "a Parquet file"),
             (b"\x89PNG", "a PNG image"))


def compression_of(head: bytes) -> str | None:
    """'gzip' or 'zstd' from a file's first bytes, else None."""
    if head[:2] == _GZIP:
        return "gzip"
    if head[:4] == _ZSTD:
        return "zstd"
    return None


def what_is(head: bytes) -> str | None:
    """What a file that is not UTF-8 JSON looks like it is (for error messages), or None."""
    for magic, what in _NOT_JSON:
        if head.startswith(magic):
            return what
    if len(head) >= 4 and head[1:4:2] == b"\x00\x00" and head[0:1] != b"\x00":
        return "UTF-16 text"
    if b"\x00" in head[:64]:
        return "binary data"
    return None


def not_json_reason(head: bytes) -> str | None:
    """One phrase for an input that is not UTF-8 JSON, naming what it seems to be, or None."""
    w = what_is(head)
    if w is None:
        return None
    if "UTF-16" in w or "UTF-32" in w:
        return f"the file is {w}; lveval reads UTF-8 JSON (convert it, e.g. iconv -f {w.split()[0]} -t UTF-8)"
    if w == "a Parquet file":
        return "the file is Parquet; name it .parquet"
    return f"the file is {w}, not JSON (gzip and zstd files are read directly)"


def is_regular(path: str) -> bool:
    try:
        return os.path.isfile(path) and not _is_fifo(path)
    except OSError:
        return False


def _is_fifo(path: str) -> bool:
    import stat

    return stat.S_ISFIFO(os.stat(path).st_mode)


def file_head(path: str, n: int = 8) -> bytes:
    """The first ``n`` bytes of a regular file (b"" for pipes and devices: reading would consume them)."""
    if not is_regular(path):
        return b""
    with open(path, "rb") as f:
        return f.read(n)


def plain_file(path: str) -> bool:
    """A regular, uncompressed file (memory-mapped, read in pieces, estimated before reading)."""
    return is_regular(path) and compression_of(file_head(path)) is None


def _decompressor(kind: str, path: str):
    if kind == "gzip":
        import zlib

        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        import zstandard
    except ImportError:
        raise InputError("the file is zstd-compressed; reading it needs the zstandard package "
                         "(pip install zstandard), or decompress it first", path=path) from None
    return zstandard.ZstdDecompressor().decompressobj()


def read_bytes(path: str | os.PathLike, budget: int | None = None) -> bytes:
    """The whole content of ``path``: a file, a pipe or process substitution (``<(zcat r.json.gz)``), read
    once; gzip and zstd data (recognised by their first bytes) decompressed. Stops with ResourceError
    once the content exceeds ``budget`` bytes (default: the memory available)."""
    path = str(path)
    budget = available_memory() if budget is None else budget
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        raise InputError("file not found", path=path) from None
    except IsADirectoryError:
        raise InputError("is a directory, expected a file", path=path) from None
    except PermissionError:
        raise InputError("permission denied", path=path) from None

    def too_big():
        return ResourceError(f"{path}: reading it needs more than the {human_bytes(budget)} of memory "
                             "available")

    with f:
        if is_regular(path):
            head = f.read(4)
            f.seek(0)
            if compression_of(head) is None:
                if budget is not None and os.fstat(f.fileno()).st_size > budget:
                    raise too_big()
                return f.read()
        parts, total, dec, kind = [], 0, None, None
        for block in iter(lambda: f.read(1 << 24), b""):
            if kind is None:
                kind = compression_of(block[:4]) or "none"
                dec = _decompressor(kind, path) if kind != "none" else None
            while block:
                chunk = dec.decompress(block) if dec is not None else block
                block = b""
                if kind == "gzip" and dec.eof and dec.unused_data:   # type: ignore[union-attr]  # concatenated gzip members
                    block = dec.unused_data  # type: ignore[union-attr]
                    dec = _decompressor(kind, path)
                total += len(chunk)
                if budget is not None and total > budget:
                    raise too_big()
                parts.append(chunk)
        if kind == "gzip" and not dec.eof:  # type: ignore[union-attr]
            raise InputError("the gzip data ends early (truncated?)", path=path)
    return b"".join(parts)


def open_stream(path: str):
    """A binary file object reading ``path`` decompressed (gzip, zstd by their first bytes), for the
    streaming readers (topk); forward seeks only on compressed data."""
    kind = compression_of(file_head(path))
    if kind == "gzip":
        import gzip

        return gzip.open(path, "rb")
    if kind == "zstd":
        _decompressor(kind, path)   # the error when zstandard is missing
        import zstandard

        return zstandard.ZstdDecompressor().stream_reader(open(path, "rb"), closefd=True)
    return open(path, "rb")


def strip_bom(buf: bytes) -> bytes:
    """A UTF-8 byte-order mark (some Windows tools write one) is not JSON; drop it."""
    return buf[3:] if buf[:3] == b"\xef\xbb\xbf" else buf


def check_file(path: str) -> int:
    """Size of ``path`` in bytes (0 for pipes); InputError if it is missing, a directory or unreadable."""
    if not os.path.exists(path):
        raise InputError("file not found", path=path)
    if os.path.isdir(path):
        raise InputError("is a directory, expected a file", path=path)
    if not os.access(path, os.R_OK):
        raise InputError("permission denied", path=path)
    return os.path.getsize(path) if is_regular(path) else 0


def line_of(buf: bytes, offset: int) -> int:
    """1-based line number of a byte offset."""
    return buf.count(b"\n", 0, max(0, offset)) + 1


@contextmanager
def no_gc():
    """Decoding millions of small objects is several times faster without the cyclic GC."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


_BYTE_RE = re.compile(r"byte (\d+)")
_PATH_RE = re.compile(r"at `\$(?:\[(\d+)\])?\.?([A-Za-z_][\w.]*)?")
_MISSING_RE = re.compile(r"Object missing required field `([^`]+)`")
_TYPE_WORDS = {"int": "an integer", "float": "a number", "str": "a string", "array": "an array",
               "object": "an object", "null": "null", "bool": "true/false",
               "array | null": "an array", "float | null": "a number"}
_NONFINITE = (b"NaN", b"-NaN", b"Infinity", b"-Infinity", b"inf", b"-inf", b"nan")
_KEY_RE = re.compile(rb'"([A-Za-z_]\w*)"\s*:[^":]*$')
_SCAN_LIMIT = 1 << 30   # record indices of syntax errors are found in the first 1 GB
_BLOCK = 1 << 22


def _readable(reason: str) -> str:
    """msgspec's wording, made plainer: ``Expected `int`, got `float``` -> ``expected an integer, got a number``."""
    m = re.fullmatch(r"Expected `([^`]+)`, got `([^`]+)`", reason)
    if m:
        return f"expected {_TYPE_WORDS.get(m.group(1), m.group(1))}, got {_TYPE_WORDS.get(m.group(2), m.group(2))}"
    m = re.fullmatch(r"Expected `array` of length (\d+)", reason)
    if m:
        return f"expected a list of {m.group(1)} numbers [x, y, w, h]"
    m = re.fullmatch(r"Expected `int` [<>]= -?\d+", reason)
    if m:
        return "expected an integer that fits in 64 bits"
    if reason == "Number out of range":
        return "number out of range (must be finite)"
    return reason[:1].lower() + reason[1:]


def record_at(buf: bytes, offset: int) -> int | None:
    """Index of the top-level array element that contains byte ``offset`` of a JSON array.

    :func:`lveval.io.scan.element_at` over 4 MB blocks (bounded memory); only used on the error
    path, and only in the first 1 GB.
    """
    from .scan import element_at

    return element_at(buf, offset, _SCAN_LIMIT, _BLOCK)


MAX_DEPTH = 200   # nesting that no detection record needs; deeper is refused, naming the record


def too_deep_error(buf: bytes, path: str, *, record_base: int = 0, line: int | None = None) -> InputError:
    """The InputError for input nested too deeply to decode (``RecursionError`` from the decoder), naming
    the record (and line) where the nesting passes MAX_DEPTH levels."""
    a = np.frombuffer(buf, np.uint8, count=min(len(buf), _SCAN_LIMIT))
    q = np.flatnonzero(a == 34)
    if len(q):
        esc = q[(q > 0)]
        esc = esc[a[esc - 1] == 92]   # an escaped quote (a run of backslashes is rare on this path)
        q = np.setdiff1d(q, esc)
    step = np.zeros(len(a), np.int8)
    step[(a == 91) | (a == 123)] = 1
    step[(a == 93) | (a == 125)] = -1
    if len(q):
        inside = (np.searchsorted(q, np.arange(len(a)), "right") % 2) == 1
        step[inside] = 0
    depth = np.cumsum(step, dtype=np.int64)
    over = np.flatnonzero(depth > MAX_DEPTH + (0 if line is not None else 1))
    pos = int(over[0]) if len(over) else 0
    record = record_base if line is not None else record_at(buf, pos)
    return InputError(f"nested more than {MAX_DEPTH} levels deep (arrays or objects inside the record); a "
                      "detection record is a flat object", path=path,
                      record=None if record is None else record + (0 if line is not None else record_base),
                      line=line if line is not None else line_of(buf, pos))


def _nonfinite_at(buf: bytes, pos: int) -> bool:
    head = buf[pos:pos + 10]
    return any(head.startswith(t) for t in _NONFINITE)


def _key_before(buf: bytes, pos: int) -> str | None:
    m = _KEY_RE.search(buf[max(0, pos - 400):pos])
    return m.group(1).decode() if m else None


def decode_error(exc: Exception, buf: bytes, path: str, *, record_base: int = 0,
                 line: int | None = None) -> InputError:
    """Translate a msgspec/orjson error into an InputError naming record, line and field.

    ``line`` is given for JSON Lines (one record per line, ``buf`` is the line);
    otherwise ``buf`` is a whole JSON array and records are found by position.
    """
    import msgspec  # only on errors: the compiled reader needs none of it

    msg = str(exc)
    jsonl = line is not None
    if isinstance(exc, msgspec.ValidationError):
        m = _PATH_RE.search(msg)
        record = record_base if line is not None else None   # JSON Lines: the line's record
        field = None
        if m:
            if m.group(1) is not None:
                record = int(m.group(1)) + record_base
            field = m.group(2)
        reason = msg.split(" - at ")[0]
        mm = _MISSING_RE.fullmatch(reason)
        if mm:
            field = (field + "." if field else "") + mm.group(1)
            reason = "missing required field"
        return InputError(_readable(reason), path=path, record=record, line=line, field=field)
    if not buf.strip():
        return InputError("file is empty, expected JSON", path=path)
    m = _BYTE_RE.search(msg)
    pos = int(m.group(1)) if m else None
    truncated = "truncated" in msg
    if truncated:
        pos = len(buf)
    record = field = None
    if line is not None:
        record = record_base
    elif pos is not None:
        line = line_of(buf, pos)
        record = record_at(buf, pos)
    if pos is not None and not truncated and _nonfinite_at(buf, pos):
        field = _key_before(buf, pos)
        token = buf[pos:pos + 10].split(b",")[0].split(b"]")[0].split(b"}")[0].decode("ascii", "replace").strip()
        return InputError(f"{token} is not a JSON number; scores and coordinates must be finite numbers",
                          path=path, record=record, line=line, field=field)
    if truncated:
        reason = (f"not valid JSON: the {'line' if jsonl else 'file'} ends in the middle of a value"
                  + ("" if jsonl else " (truncated?)"))
    else:
        reason = "not valid JSON (" + msg.split(" (")[0].replace("JSON is malformed: ", "").strip().rstrip(".") + ")"
    return InputError(reason, path=path, record=record, line=line)


def loads_any(buf: bytes, path: str):
    """Parse JSON into Python objects (used for ground truth)."""
    try:
        with no_gc():
            return orjson.loads(buf)
    except MemoryError:
        raise ResourceError(f"{path}: not enough memory to parse it ({human_bytes(len(buf))} of JSON)") from None
    except orjson.JSONDecodeError as exc:
        if not buf.strip():
            raise InputError("file is empty, expected JSON", path=path) from None
        why = not_json_reason(buf[:64])
        if why:
            raise InputError(why, path=path) from None
        line = line_of(buf, exc.pos) if exc.pos is not None else None
        if exc.pos is not None and _nonfinite_at(buf, exc.pos):
            raise InputError("NaN/Infinity is not a JSON number; values must be finite numbers",
                             path=path, line=line, field=_key_before(buf, exc.pos)) from None
        if exc.pos is not None and exc.pos >= len(buf.rstrip()):
            raise InputError("not valid JSON: the file ends in the middle of a value (truncated?)",
                             path=path, line=line) from None
        raise InputError(f"not valid JSON ({exc.msg})", path=path, line=line) from None


# ---------------------------------------------------------------------------------------------
# Memory check

# Peak memory while loading and evaluating, measured with CPython 3.11 and msgspec 0.22 on the
# simulated LVIS results (VmHWM over an interpreter holding the ground truth):
#   whole-file decoding: 2M boxes, 167 MB of JSON -> 0.99 GB; 150k boxes, 12 MB -> 104 MB;
#   decoding in pieces (files above CHUNKED_ABOVE): 4M boxes, 334 MB -> 0.84 GB; 6M, 502 MB -> 1.11 GB,
#   i.e. ~300 MB + the file (memory-mapped) + ~50 bytes per detection;
#   200k masks, 75 MB of JSON -> 0.50 GB for a segm evaluation;
#   the compiled column reader (any size; pieces parsed on threads, then joined): whole `lveval
#   evaluate` runs, 2M boxes, 201 MB, AP-Fixed -> 0.47 GB; 6.85M boxes, 687 MB, all three
#   protocols -> 1.59 GB, i.e. the file + ~120 bytes per detection.
_BYTES_PER_DET = 450            # whole-file decoding: decoded records + columns + matching, per detection
_BYTES_PER_DET_CHUNKED = 128    # decoding in pieces or by the compiled reader: columns (twice while the
                                # threads' parts are joined) + matching, per detection
_PER_CLASS_ARRAYS = 80 << 20    # precision arrays of two protocols: 10 IoU x 101 recall x ~1,200 classes
                                # x 4 areas x 8 bytes = 39 MB each for an LVIS-size vocabulary
_MASK_FACTOR = 12               # mask results: strings decoded, copied, converted to RLE objects (200k
                                # masks, 75 MB of JSON, segm: 0.50 GB; 30k larger masks: estimated at
                                # 6x, peaked at 12x the file)
_STRING_FACTOR = 3              # any JSON decoded whole: the buffer, the decoded strings and their copies
                                # (one record holding a 512 MB string peaked at 3.1x the file)
GT_FACTOR = 12                 # ground truth: Python objects of the parsed JSON, then columns; measured
                                # 9.0x-10.0x the file (LVIS with polygons, boxes only, 4,000 classes)
_PER_CLASS = 80 << 10           # per class: precision (10 x 101 x 4) and recall arrays of two protocols,
                                # and their temporaries (100k classes peaked at 6.6 GB, 4,000 classes with
                                # 30k results at 295 MB)
_DENSE_TABLE_MAX = 200_000_000  # the federated rule's images x classes table (select.federated_mask)
_SAMPLE = 1 << 20
CHUNKED_ABOVE = 4 * CHUNK_BYTES  # JSON arrays larger than this (32 MB) are decoded piece by piece (chunks.py)
MEMINFO = "/proc/meminfo"
CGROUP_FILES = (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),                  # cgroup v2
                ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"))  # v1


def _read_int(path: str) -> int | None:
    try:
        with open(path) as f:
            v = f.read().strip()
    except OSError:
        return None
    return int(v) if v.isdigit() else None


def available_memory() -> int | None:
    """Bytes this process may still allocate: ``LVEVAL_MEMORY_LIMIT`` if set, else the least of
    /proc/meminfo's MemAvailable and the cgroup's limit minus its usage; None if unknown."""
    env = os.environ.get("LVEVAL_MEMORY_LIMIT", "").strip()
    if env:
        if env.lower() in ("none", "unlimited", "off"):
            return None
        try:
            v = float(env)
        except ValueError:
            v = None
        if v is None or not math.isfinite(v) or v < 0:
            raise ResourceError(f"LVEVAL_MEMORY_LIMIT must be a number of bytes or 'none', got {env!r} "
                                "(a finite number >= 0, e.g. 4e9; 'none' turns the check off)")
        return int(v)
    avail = []
    try:
        with open(MEMINFO) as f:
            for ln in f:
                if ln.startswith("MemAvailable:"):
                    avail.append(int(ln.split()[1]) * 1024)
                    break
    except (OSError, ValueError, IndexError):
        pass
    for limit_f, usage_f in CGROUP_FILES:
        limit = _read_int(limit_f)
        if limit is not None and limit < 1 << 60:
            avail.append(max(0, limit - (_read_int(usage_f) or 0)))
    return min(avail) if avail else None


def human_bytes(n: float) -> str:
    for unit, size in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{int(n)} bytes"


def _compiled_masks(head: bytes) -> bool:
    """Whether masks like those at the head of a file go to the compiled reader and RLE helper
    (compressed RLE strings), which keep no Python object per mask."""
    import re

    from . import fastjson, masks

    return fastjson.available() and masks.compiled() and re.search(rb'"counts"\s*:\s*"', head) is not None


def vocabulary_memory(num_categories: int, num_images: int) -> int:
    """Bytes the per-class arrays and tables of an evaluation need, whatever the number of detections."""
    return int(num_categories) * _PER_CLASS + min(int(num_images) * int(num_categories), _DENSE_TABLE_MAX)


def gt_memory(size: int) -> int:
    """Peak bytes of loading a ground-truth JSON file of ``size`` bytes."""
    return int(size) * GT_FACTOR


def check_gt_memory(path: str, size: int) -> None:
    """ResourceError, before reading, when a ground truth of ``size`` bytes cannot be loaded."""
    avail = available_memory()
    need = gt_memory(size)
    if avail is not None and need > avail:
        raise ResourceError(
            f"{path} is {human_bytes(size)}; loading this ground truth needs about {human_bytes(need)} but only "
            f"{human_bytes(avail)} is available (a ground truth up to about {human_bytes(avail // GT_FACTOR)} "
            "would fit); evaluate on fewer images or on a machine with more memory")


def check_vocabulary_memory(gt, held: int = 0) -> None:
    """ResourceError, before allocating, when ``gt``'s categories x images need more memory than there is."""
    avail = available_memory()
    if avail is None:
        return
    avail = _after(avail, held)
    need = vocabulary_memory(gt.num_categories, gt.num_images)
    if need > avail:
        fit = max(0, (avail - min(gt.num_images * gt.num_categories, _DENSE_TABLE_MAX)) // _PER_CLASS)
        raise ResourceError(
            f"{gt.path}: {gt.num_categories} categories x {gt.num_images} images need about {human_bytes(need)} "
            f"for the per-class arrays but only {human_bytes(avail)} is available (about {int(fit)} "
            "categories would fit)")


def gt_held(gt) -> int:
    """Bytes a loaded ground truth holds (the parsed JSON is kept): its file's size times GT_FACTOR."""
    p = getattr(gt, "path", None)
    if p and is_regular(p):
        return gt_memory(os.path.getsize(p))
    return 0


def _after(avail: int, held: int) -> int:
    """What is left of ``avail`` once ``held`` bytes are in use: the fixed LVEVAL_MEMORY_LIMIT counts
    them, MemAvailable and the cgroup figures already exclude them."""
    if held and os.environ.get("LVEVAL_MEMORY_LIMIT", "").strip():
        return max(0, avail - held)
    return avail


def estimate_memory(path: str, size: int, fmt: str, whole: bool = False, *, head: bytes | None = None,
                    vocabulary: int | None = None) -> int:
    """Peak bytes needed to evaluate a results file of ``size`` bytes (fmt: json, jsonl, parquet).

    ``whole``: a JSON array decoded in one go even above CHUNKED_ABOVE. ``head``: the file's first
    MiB when it cannot be read again (a pipe, decompressed data). ``vocabulary``: the bytes of the
    per-class arrays (:func:`vocabulary_memory`; default: an LVIS-size vocabulary)."""
    per_class = _PER_CLASS_ARRAYS if vocabulary is None else max(_PER_CLASS_ARRAYS, vocabulary)
    if fmt == "parquet":
        import pyarrow.parquet as pq

        try:
            md = pq.ParquetFile(path).metadata
        except Exception:   # noqa: BLE001 - unreadable files are reported by the reader itself
            return 0
        raw = sum(md.row_group(i).total_byte_size for i in range(md.num_row_groups))
        return per_class + 2 * raw + md.num_rows * _BYTES_PER_DET
    if head is None:
        with open(path, "rb") as f:
            head = f.read(_SAMPLE)
    n_head = head.count(b'"score"')
    per_det = len(head) / n_head if n_head else 100.0
    n = size / per_det
    masks = b'"segmentation"' in head or b'"counts"' in head
    if fmt == "json" and size > CHUNKED_ABOVE and not whole:
        piece = CHUNK_BYTES * (1 + _BYTES_PER_DET / per_det)   # one piece's bytes and decoded records
        need = per_class + piece + size + n * _BYTES_PER_DET_CHUNKED
    else:
        need = per_class + max(size + n * _BYTES_PER_DET, _STRING_FACTOR * size)
    if n_head < 2 and size > len(head):   # records of a megabyte or more: long strings, decoded and copied
        need = max(need, per_class + _STRING_FACTOR * size)
    if masks and _compiled_masks(head):
        need += size // 2   # the strings, kept in one buffer (2M masks, 560 MB -> 0.96 GB in all)
    elif masks:
        need += (_MASK_FACTOR - 1) * size
    if fmt == "jsonl":
        need += size   # the file split into lines
    return int(need)


def check_memory(path: str, size: int, fmt: str, whole: bool = False, *, head: bytes | None = None,
                 gt=None, held: int = 0) -> None:
    """Raise ResourceError when evaluating ``path`` would need more memory than is available.

    ``gt``: the ground truth it is evaluated against (its vocabulary sizes the per-class arrays);
    ``held``: bytes already in use for this evaluation (the ground truth, a buffered input)."""
    avail = available_memory()
    if avail is None:
        return
    avail = _after(avail, held)
    vocab = None if gt is None else vocabulary_memory(gt.num_categories, gt.num_images)
    need = estimate_memory(path, size, fmt, whole, head=head, vocabulary=vocab)
    if need > avail:
        if whole:   # the pieces did not decode: the error must be located in the whole file
            raise ResourceError(
                f"{path} is not a valid JSON array of detections (found while decoding it in pieces), and "
                f"locating the error needs about {human_bytes(need)} but only {human_bytes(avail)} is "
                "available; check how the file was written")
        raise ResourceError(
            f"{path} is {human_bytes(size)}; evaluating it needs about {human_bytes(need)} but only "
            f"{human_bytes(avail)} is available; reduce it with "
            + (f"`lveval topk {path} --max-dets-per-class 10000 --out smaller.json` first" if is_regular(path) else
               "`lveval topk FILE --max-dets-per-class 10000 --out smaller.json` first (saved to a FILE: topk reads "
               "its input twice)"))


# ---------------------------------------------------------------------------------------------
# Repeated keys: a record such as {"score": 0.9, ..., "score": -1} is refused, not read as its last value

_READ_KEYS = (b'"image_id"', b'"category_id"', b'"score"', b'"bbox"', b'"segmentation"', b'"size"', b'"counts"')
_DUP = "\0repeated"


def repeated_keys_suspect(buf, n: int) -> bool:
    """Cheap test: could one of ``n`` records in ``buf`` repeat a key lveval reads? (No false negatives:
    a repeated key makes its name occur more often than there are records, or leaves a record without
    it, which the decoder refuses anyway.)"""
    return any(buf.count(k) > n for k in _READ_KEYS)


def _pairs(pairs):
    d = dict(pairs)
    if len(d) < len(pairs):
        seen = set()
        for k, _ in pairs:
            if k in seen:
                d[_DUP] = k
                break
            seen.add(k)
    return d


def repeated_key_error(buf: bytes, path: str, *, record_base: int = 0, line_of=None) -> InputError | None:
    """The InputError for the first record of JSON array (or single record) ``buf`` that repeats a key,
    or None. ``line_of(i)``: the line of record ``i`` (relative to ``buf``), if known."""
    import json

    try:
        data = json.loads(buf, object_pairs_hook=_pairs)
    except (ValueError, RecursionError):
        return None   # the decoder's own error is reported
    recs = data if isinstance(data, list) else [data]
    for i, r in enumerate(recs):
        if not isinstance(r, dict):
            continue
        key = r.get(_DUP)
        where = ""
        if key is None and isinstance(r.get("segmentation"), dict):
            key = r["segmentation"].get(_DUP)
            where = "segmentation."
        if key is not None:
            return InputError("key repeated in the record (refused: which value is meant is ambiguous)",
                              path=path, record=record_base + i, line=None if line_of is None else line_of(i),
                              field=where + key)
    return None
