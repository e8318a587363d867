"""Reading JSON bytes with errors that name the file, the record, the line and the field.

Also the memory check that refuses a results file too large to evaluate
before reading it (an out-of-memory kill loses the user's time and says nothing).
"""
from __future__ import annotations

import gc
import os
import re
from contextlib import contextmanager

import msgspec
import numpy as np
import orjson

from ..exceptions import InputError, ResourceError
from .chunks import CHUNK_BYTES


def read_bytes(path: str | os.PathLike) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise InputError("file not found", path=str(path)) from None
    except IsADirectoryError:
        raise InputError("is a directory, expected a file", path=str(path)) from None
    except PermissionError:
        raise InputError("permission denied", path=str(path)) from None


def strip_bom(buf: bytes) -> bytes:
    """A UTF-8 byte-order mark (some Windows tools write one) is not JSON; drop it."""
    return buf[3:] if buf[:3] == b"\xef\xbb\xbf" else buf


def check_file(path: str) -> int:
    """Size of ``path`` in bytes; InputError if it is missing, a directory or unreadable."""
    if not os.path.exists(path):
        raise InputError("file not found", path=path)
    if os.path.isdir(path):
        raise InputError("is a directory, expected a file", path=path)
    if not os.access(path, os.R_OK):
        raise InputError("permission denied", path=path)
    return os.path.getsize(path)


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

    Counts the commas at depth 1 outside strings before ``offset``, vectorised over 4 MB blocks
    (bounded memory); only used on the error path, and only in the first 1 GB.
    """
    if offset > _SCAN_LIMIT:
        return None
    end = min(offset, len(buf))
    commas = depth = backslashes = 0
    in_str = False
    for start in range(0, end, _BLOCK):
        a = np.frombuffer(buf, np.uint8, count=min(_BLOCK, end - start), offset=start)
        idx = np.arange(len(a), dtype=np.int32)
        last_plain = np.maximum.accumulate(np.where(a == 92, -1, idx))   # last non-backslash so far
        q = np.flatnonzero(a == 34)
        prev = np.where(q > 0, last_plain[np.maximum(q - 1, 0)], -1)
        run = q - 1 - prev + np.where(prev < 0, backslashes, 0)           # backslashes just before
        q = q[(run % 2) == 0]                                            # unescaped quotes
        toggles = np.zeros(len(a), np.int8)
        toggles[q] = 1
        inside = (np.cumsum(toggles, dtype=np.int64) + in_str) % 2 == 1   # inside a string
        step = np.zeros(len(a), np.int8)
        step[(a == 91) | (a == 123)] = 1
        step[(a == 93) | (a == 125)] = -1
        step[inside] = 0
        d = np.cumsum(step, dtype=np.int64) + depth
        commas += int(((a == 44) & ~inside & (d == 1)).sum())
        depth, in_str = int(d[-1]), bool(inside[-1])
        tail = len(a) - 1 - int(last_plain[-1])
        backslashes = tail + (backslashes if last_plain[-1] < 0 else 0)
    return commas


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
    except orjson.JSONDecodeError as exc:
        if not buf.strip():
            raise InputError("file is empty, expected JSON", path=path) from None
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
_MASK_FACTOR = 6                # mask results through msgspec: strings decoded, copied, packed
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
            return int(float(env))
        except ValueError:
            raise ResourceError(f"LVEVAL_MEMORY_LIMIT must be a number of bytes or 'none', got {env!r}") from None
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


def estimate_memory(path: str, size: int, fmt: str, whole: bool = False) -> int:
    """Peak bytes needed to evaluate a results file of ``size`` bytes (fmt: json, jsonl, parquet).

    ``whole``: a JSON array decoded in one go even above CHUNKED_ABOVE."""
    if fmt == "parquet":
        import pyarrow.parquet as pq

        try:
            md = pq.ParquetFile(path).metadata
        except Exception:   # noqa: BLE001 - unreadable files are reported by the reader itself
            return 0
        raw = sum(md.row_group(i).total_byte_size for i in range(md.num_row_groups))
        return _PER_CLASS_ARRAYS + 2 * raw + md.num_rows * _BYTES_PER_DET
    with open(path, "rb") as f:
        head = f.read(_SAMPLE)
    n_head = head.count(b'"score"')
    per_det = len(head) / n_head if n_head else 100.0
    n = size / per_det
    masks = b'"segmentation"' in head or b'"counts"' in head
    if fmt == "json" and size > CHUNKED_ABOVE and not whole:
        piece = CHUNK_BYTES * (1 + _BYTES_PER_DET / per_det)   # one piece's bytes and decoded records
        need = _PER_CLASS_ARRAYS + piece + size + n * _BYTES_PER_DET_CHUNKED
    else:
        need = _PER_CLASS_ARRAYS + size + n * _BYTES_PER_DET
    if masks and _compiled_masks(head):
        need += size // 2   # the strings, kept in one buffer (2M masks, 560 MB -> 0.96 GB in all)
    elif masks:
        need += (_MASK_FACTOR - 1) * size
    if fmt == "jsonl":
        need += size   # the file split into lines
    return int(need)


def check_memory(path: str, size: int, fmt: str, whole: bool = False) -> None:
    """Raise ResourceError when evaluating ``path`` would need more memory than is available."""
    avail = available_memory()
    if avail is None:
        return
    need = estimate_memory(path, size, fmt, whole)
    if need > avail:
        if whole:   # the pieces did not decode: the error must be located in the whole file
            raise ResourceError(
                f"{path} is not a valid JSON array of detections (found while decoding it in pieces), and "
                f"locating the error needs about {human_bytes(need)} but only {human_bytes(avail)} is "
                "available; check how the file was written")
        raise ResourceError(
            f"{path} is {human_bytes(size)}; evaluating it needs about {human_bytes(need)} but only "
            f"{human_bytes(avail)} is available; reduce it with "
            f"`lveval topk {path} --per-class 10000 --out smaller.json` first")
