"""Process-level behaviour of the command line: signals, a closed stdout, numeric warnings, the allocator.

SIGTERM, SIGINT and SIGHUP stop a run like an error (temporary files removed, earlier outputs
untouched, one line, exit status 128 + the signal); ``lveval ... | head`` is not an error.
"""
from __future__ import annotations

import sys


def quiet_numeric_warnings() -> None:
    """numpy's RuntimeWarnings (overflow, invalid value) carry source paths and say nothing a user can
    act on: the engine handles inf and NaN explicitly, and input problems are reported as errors."""
    import warnings

    warnings.filterwarnings("ignore", category=RuntimeWarning, module=r"(lveval|numpy)(\..*)?$")


# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_KEEP_BYTES = 256 << 20


def tune_allocator() -> bool:
    """Let the C allocator keep and reuse freed memory up to 256 MiB a block (glibc only).

    By default glibc maps every block above 32 MiB afresh and unmaps it when freed, so each large
    numpy array (the per-class precision array is 40 MB for LVIS) faults its pages in again, and
    where transparent huge pages are on, the kernel may compact memory first: measured on 200k
    masks, the precision array's allocation took 30-150 ms that way and 2-5 ms once memory is
    reused. The evaluation's peak is unchanged (blocks are reused, not added). Only the command line
    does this, never ``import lveval``; ``LVEVAL_DEFAULT_MALLOC=1`` leaves the allocator alone.
    Returns whether the settings were applied."""
    import os

    if os.environ.get("LVEVAL_DEFAULT_MALLOC", "") not in ("", "0") or not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        if not hasattr(libc, "gnu_get_libc_version") or not hasattr(libc, "mallopt"):
            return False   # musl and others: their own policies
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, _KEEP_BYTES)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, _KEEP_BYTES))
    except (OSError, AttributeError):
        return False


class PipeSafeStdout:
    """stdout that turns a closed pipe (``lveval evaluate ... | head -2``) into silence: the run goes on
    and writes its files; the rest of the printed text is dropped."""

    def __init__(self, stream):
        self._stream, self.closed_pipe = stream, False

    def _closed(self) -> None:
        import os

        self.closed_pipe = True
        try:   # later flushes (at exit too) go nowhere instead of raising again
            os.dup2(os.open(os.devnull, os.O_WRONLY), self._stream.fileno())
        except (OSError, ValueError):
            pass

    def write(self, text):
        if not self.closed_pipe:
            try:
                return self._stream.write(text)
            except BrokenPipeError:
                self._closed()
        return len(text)

    def flush(self) -> None:
        if not self.closed_pipe:
            try:
                self._stream.flush()
            except BrokenPipeError:
                self._closed()

    def __getattr__(self, name):
        return getattr(self._stream, name)


def handle_signals(program: bool = True):
    """SIGTERM, SIGINT and SIGHUP stop the run like an error: temporary files are removed, earlier
    outputs stay, one line, exit status 128 + the signal's number. A closed stdout is not an error."""
    import signal
    import threading

    from ..atomic import on_signal

    old = {}
    if threading.current_thread() is threading.main_thread():
        for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            old[s] = signal.signal(s, on_signal)
    out = sys.stdout
    if sys.stdout is sys.__stdout__ and sys.stdout is not None:
        sys.stdout = PipeSafeStdout(sys.stdout)

    def restore() -> None:
        try:
            sys.stdout.flush()
        except (BrokenPipeError, ValueError):
            pass
        sys.stdout = out if not isinstance(sys.stdout, PipeSafeStdout) or not sys.stdout.closed_pipe else sys.stdout
        if not program:   # called from Python (tests): the caller's handlers come back
            from .. import atomic

            atomic.finished(False)
            for s, h in old.items():
                signal.signal(s, h)
        else:   # the outputs are in place; ignored signals stay ignored while the interpreter shuts down
            for s in old:
                signal.signal(s, signal.SIG_IGN)

    return restore
