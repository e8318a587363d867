"""Reading JSON bytes with errors that name the file and the line."""
from __future__ import annotations

import gc
import os
import re
from contextlib import contextmanager

import msgspec
import orjson

from ..errors import InputError


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


def decode_error(exc: Exception, buf: bytes, path: str, *, record_base: int = 0,
                 line: int | None = None) -> InputError:
    """Translate a msgspec/orjson error into an InputError naming record and field."""
    msg = str(exc)
    if isinstance(exc, msgspec.ValidationError):
        m = _PATH_RE.search(msg)
        record = field = None
        if m:
            record = int(m.group(1)) + record_base if m.group(1) is not None else (
                record_base if line is not None else None)
            field = m.group(2)
        reason = msg.split(" - at ")[0]
        return InputError(reason, path=path, record=record, line=line, field=field)
    m = _BYTE_RE.search(msg)
    if line is None and m:
        line = line_of(buf, int(m.group(1)))
    if not buf.strip():
        return InputError("file is empty, expected JSON", path=path)
    reason = "not valid JSON (" + msg.split(" (")[0].strip().rstrip(".") + ")"
    if line is not None:
        return InputError(reason, path=path, line=line)
    return InputError(reason, path=path)


def loads_any(buf: bytes, path: str):
    """Parse JSON into Python objects (used for ground truth)."""
    try:
        with no_gc():
            return orjson.loads(buf)
    except orjson.JSONDecodeError as exc:
        if not buf.strip():
            raise InputError("file is empty, expected JSON", path=path) from None
        line = line_of(buf, exc.pos) if exc.pos is not None else None
        raise InputError(f"not valid JSON ({exc.msg})", path=path, line=line) from None
