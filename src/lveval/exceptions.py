"""Errors and warnings that reach users as one clear line.

`InputError` names the file, the record and the field at fault; the CLI
prints it without a traceback and exits with status 2.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

log = logging.getLogger("lveval")


class LvevalError(Exception):
    """Base class of lveval's own errors."""


class InputError(LvevalError):
    """Bad input: a file, record or field that does not meet the format.

    The message is a single line: ``FILE: record N (line L): field 'F': what was expected``.
    """

    def __init__(self, message: str, *, path: str | None = None,
                 record: int | None = None, line: int | None = None,
                 field: str | None = None):
        self.path, self.record, self.line, self.field = path, record, line, field
        self.reason = message
        parts = []
        if path is not None:
            parts.append(str(path))
        if record is not None:
            parts.append(f"record {record}" + (f" (line {line})" if line is not None else ""))
        elif line is not None:
            parts.append(f"line {line}")
        if field is not None:
            parts.append(f"field '{field}'")
        text = ": ".join(parts + [message]) if parts else message
        super().__init__(" ".join(text.split()))


class OptionError(LvevalError, ValueError):
    """A bad evaluation option: one line naming the option and what it accepts."""

    def __init__(self, option: str, message: str):
        self.option, self.reason = option, message
        super().__init__(f"option '{option}': {message}")


class ResourceError(LvevalError):
    """The input cannot be processed within the memory available."""


@dataclass
class Notices:
    """Counts of what was skipped or looked odd while loading; never silent."""

    skipped: dict = field(default_factory=dict)    # reason -> records dropped
    flagged: dict = field(default_factory=dict)    # reason -> records kept but worth knowing
    warnings: list = field(default_factory=list)

    def skip(self, reason: str, n: int = 1) -> None:
        if n:
            self.skipped[reason] = self.skipped.get(reason, 0) + int(n)

    def flag(self, reason: str, n: int) -> None:
        if n:
            self.flagged[reason] = self.flagged.get(reason, 0) + int(n)

    def warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)
            log.warning(message)

    def to_dict(self) -> dict:
        """The ``skipped``, ``flagged`` and ``warnings`` records of JSON outputs."""
        return {"skipped": dict(sorted(self.skipped.items())), "flagged": dict(sorted(self.flagged.items())),
                "warnings": list(self.warnings)}

    def merge(self, other: Notices) -> None:
        for k, v in other.skipped.items():
            self.skip(k, v)
        for k, v in other.flagged.items():
            self.flag(k, v)
        for w in other.warnings:
            self.warn(w)
