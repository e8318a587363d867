"""Record boundaries of a JSON array or JSON Lines file, found without parsing, streamed in blocks."""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ..exceptions import InputError
from ..io.jsonfile import open_stream
from ..io.scan import WS as _WS
from ..io.scan import ScanError, object_spans


class _Records:
    """Stream a JSON array or JSON Lines file as chunks of complete records.

    Yields ``(chunk, starts, ends, base)``: ``chunk`` is a JSON array of the
    chunk's records ready for msgspec, ``starts``/``ends`` are the records'
    absolute byte offsets (end exclusive) and ``base`` the first record's index.
    """

    def __init__(self, path: str, block_size: int = 32 << 20, progress=None):
        self.path = path
        self.lines = _fmt(path) == "jsonl"
        self.block_size = block_size
        self.progress = progress
        self._line_base = 0           # newlines before the current block
        self._cur = (0, b"")

    def line_at(self, offset: int) -> int:
        """1-based line of an absolute offset within the current block."""
        pos, buf = self._cur
        return self._line_base + buf.count(b"\n", 0, max(0, offset - pos)) + 1

    def _err(self, msg, offset=None, record=None, field=None):
        line = self.line_at(offset) if offset is not None else None
        return InputError(msg, path=self.path, record=record, line=line, field=field)

    def __iter__(self) -> Iterator[tuple[bytes, np.ndarray, np.ndarray, int]]:
        try:
            f = open_stream(self.path)
        except FileNotFoundError:
            raise InputError("file not found", path=self.path) from None
        except IsADirectoryError:
            raise InputError("is a directory, expected a file", path=self.path) from None
        with f:
            yield from self._iter(f)

    def _iter(self, f):
        pos = 0                 # absolute offset of buf[0]
        buf = b""
        first = True
        closed = False
        count = 0
        eof = False
        while not eof:
            block = f.read(self.block_size)
            eof = not block
            if self.progress is not None and block:
                self.progress.update(len(block))
            buf = buf + block if buf else block
            if first and pos == 0 and buf[:3] == b"\xef\xbb\xbf":   # a UTF-8 byte-order mark, as evaluate allows
                buf, pos = buf[3:], 3
            if first:
                skip = len(buf) - len(buf.lstrip())
                if not eof and skip == len(buf):
                    pos += skip
                    buf = b""
                    continue
                first = False
                head = buf[skip:skip + 1]
                if not self.lines:
                    if not head:
                        raise InputError("file is empty, expected a JSON array of detections", path=self.path)
                    if head != b"[":
                        kind = "an object" if head == b"{" else "not an array"
                        from ..io.jsonfile import not_json_reason

                        why = not_json_reason(buf[skip:skip + 64])
                        looks_gt = any(k in buf[:1 << 16] for k in (b'"images"', b'"annotations"', b'"categories"'))
                        hint = (" (this looks like a ground-truth file)" if head == b"{" and looks_gt else
                                " (JSON Lines files need a .jsonl name)")
                        raise InputError(why or f"expected a JSON array of detections at the top level, got "
                                         f"{kind}{hint}", path=self.path)
                    skip += 1
                elif not head:
                    raise InputError("file has no detections (empty JSON Lines file)", path=self.path)
                pos += skip
                buf = buf[skip:]
            self._cur = (pos, buf)
            arr = np.frombuffer(buf, np.uint8)
            try:
                starts, ends = object_spans(arr)
            except ScanError as exc:
                raise self._err(f"not valid JSON ({exc})", pos + exc.offset) from None
            consumed = int(ends[-1]) + 1 if len(ends) else 0
            if len(ends):
                self._check_gaps(arr, starts, ends, pos, count == 0)
                if self.lines:
                    self._check_one_line(arr, starts, ends, pos)
                if self.lines:
                    chunk = b"[" + b",".join([buf[s:e + 1] for s, e in zip(starts.tolist(), ends.tolist())]) + b"]"
                else:
                    chunk = b"[" + buf[int(starts[0]):consumed] + b"]"
                yield chunk, starts + pos, ends + 1 + pos, count
                count += len(starts)
            if eof:     # after the records, so an earlier bad record is reported first
                closed = self._check_tail(buf[consumed:], pos + consumed)
            self._line_base += buf.count(b"\n", 0, consumed)
            pos += consumed
            buf = buf[consumed:]
            if len(buf) > max(4 * self.block_size, 1 << 28):
                raise self._err("a record longer than 256 MB (or not valid JSON)", pos)
        if not self.lines and not closed:
            raise InputError("truncated JSON array (no closing ']')", path=self.path)
        if self.lines and count == 0:
            raise InputError("file has no detections (empty JSON Lines file)", path=self.path)

    def _check_gaps(self, arr, starts, ends, pos, first_chunk):
        """Only separators between records: one comma (JSON array) or line breaks (JSON Lines)."""
        sep_byte = 0x0A if self.lines else 0x2C
        lo = int(starts[0])
        # bytes between consecutive records, gathered without a block-sized temporary
        gs = ends[:-1] + 1
        gl = starts[1:] - gs
        tot = int(gl.sum())
        if tot:
            first = np.repeat(np.cumsum(gl) - gl, gl)
            idx = np.repeat(gs, gl) + (np.arange(tot) - first)
        else:
            idx = np.zeros(0, np.int64)
        idx = np.concatenate([np.arange(lo), idx])      # and the bytes before the first record
        gap = arr[idx]
        bad = np.flatnonzero(~(_WS[gap] | (gap == sep_byte)))
        if len(bad):
            raise self._err("expected a JSON object (a detection record) here", pos + int(idx[bad[0]]))
        is_sep = gap[lo:] == sep_byte
        per_gap = np.add.reduceat(is_sep, np.r_[0, np.cumsum(gl)[:-1]]) if tot else np.zeros(len(gl), np.int64)
        per_gap = np.where(gl > 0, per_gap, 0)
        lead = int((gap[:lo] == sep_byte).sum())
        if self.lines:
            wrong = np.flatnonzero(per_gap < 1)
            if len(wrong) or (not first_chunk and lead < 1):
                at = int(ends[wrong[0]]) + 1 if len(wrong) else lo
                raise self._err("two records on one line", pos + at)
        else:
            wrong = np.flatnonzero(per_gap != 1)
            if len(wrong) or lead != (0 if first_chunk else 1):
                at = int(ends[wrong[0]]) + 1 if len(wrong) else 0
                raise self._err("expected exactly one ',' between records", pos + at)

    def _check_one_line(self, arr, starts, ends, pos) -> None:
        """JSON Lines: each record on one line (as ``lveval evaluate`` reads them), not pretty-printed."""
        nl = np.flatnonzero(arr[int(starts[0]):int(ends[-1]) + 1] == 0x0A) + int(starts[0])
        if not len(nl):
            return
        inside = np.searchsorted(nl, ends) - np.searchsorted(nl, starts)
        bad = np.flatnonzero(inside > 0)
        if len(bad):
            i = int(bad[0])
            raise self._err("a record spans several lines; JSON Lines holds one record per line (a "
                            "pretty-printed file is a .json array)", pos + int(starts[i]))

    def _check_tail(self, tail: bytes, off: int) -> bool:
        """Bytes after the last complete record: ``]`` closes an array; anything else is an error."""
        i = len(tail) - len(tail.lstrip())
        t = tail[i:].rstrip()
        if not t:
            return self.lines
        if not self.lines:
            if t == b"]":
                return True
            if t[:1] == b"]":
                raise self._err("data after the closing ']'", off + i + 1)
            if t[:1] == b",":
                rest = t[1:]
                j = i + 1 + len(rest) - len(rest.lstrip())
                rest = rest.lstrip()
                if rest == b"]":
                    raise self._err("trailing ',' before ']'", off + i)
                i, t = j, rest
        if t[:1] == b"{":
            raise self._err("truncated record at the end of the file", off + i)
        raise self._err("expected a JSON object (a detection record) here", off + i)


def _fmt(path: str) -> str:
    from ..io.results import format_of

    return format_of(path) or "json"   # a .gz or .zst ending aside
