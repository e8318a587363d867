"""Writing outputs: deterministic JSON, written atomically, and early checks of output paths.

Below the CLI so that library code (report, audit, calibrate, integrations) writes the
same bytes ``lveval ... --json`` writes without importing the command line. Also the
base of typed results (:class:`JsonResult`): ``to_dict()`` plus deprecated dict-style reading.
"""
from __future__ import annotations

from typing import Any

import orjson

from .atomic import atomic_write
from .exceptions import InputError


class JsonResult:
    """Base of typed results (dataclasses): ``to_dict()`` is their JSON form.

    Dict-style reading (``result["key"]``, ``in``, ``get``, ``keys``, iteration) of the keys of
    ``to_dict()`` returns the attribute of that name, for code written when the
    results were dicts; it is deprecated, read the attributes.
    """

    def to_dict(self) -> dict:
        raise NotImplementedError

    def __getitem__(self, key: str) -> Any:
        if not isinstance(key, str) or key.startswith("_") or key not in self.to_dict():
            raise KeyError(key)
        return getattr(self, key)

    def __contains__(self, key: object) -> bool:
        return key in self.to_dict()

    def get(self, key: str, default: Any = None) -> Any:
        return self[key] if key in self else default

    def __iter__(self):
        return iter(self.to_dict())

    def keys(self):
        return self.to_dict().keys()


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
