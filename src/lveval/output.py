"""Writing outputs: deterministic JSON, written atomically, and early checks of output paths.

Below the CLI so that library code (report, audit, calibrate, integrations) writes the
same bytes ``lveval ... --json`` writes without importing the command line.
"""
from __future__ import annotations

from typing import Any

import orjson

from .atomic import atomic_write
from .exceptions import InputError


def json_bytes(obj: Any) -> bytes:
    """Deterministic JSON (sorted keys, two-space indent, numpy values), newline-terminated."""
    return orjson.dumps(obj, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS | orjson.OPT_SERIALIZE_NUMPY) + b"\n"


def write_json(path: str, obj: Any, inside: str | None = None) -> None:
    """Write ``obj`` as deterministic JSON through the safe writer (``inside``: see
    :func:`lveval.atomic.atomic_write`); InputError when the path cannot be written."""
    data = json_bytes(obj)
    try:
        with atomic_write(path, "wb", inside=inside) as f:
            f.write(data)
    except OSError as exc:
        raise InputError(f"cannot write the output ({exc.strerror or exc})", path=path) from None


def check_writable(path: str | None) -> None:
    """Fail before a long run, not after it, when an output path cannot be written."""
    from .atomic import check_output

    if path:
        check_output(path)
