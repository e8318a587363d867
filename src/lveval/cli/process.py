"""Process-level behaviour of the command line: signals, a closed stdout, numeric warnings, memory pages.

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


def ordinary_pages() -> bool:
    """Ask numpy for ordinary pages instead of transparent huge pages (unless the user set
    NUMPY_MADVISE_HUGEPAGE); returns whether the setting was made.

    numpy asks the kernel for huge pages for every array of 4 MiB or more, and the kernel may first
    compact memory to find them, which stalls the allocation. Measured here (2 cores): at LVIS v1
    val scale (10.7M masks, ``--iou-type segm``, all three protocols) 38.9 s with huge pages, 30.1 s
    without, same peak memory; on 200k masks, the per-class accumulation (which allocates the 40 MB
    precision array of LVIS's 1,203 classes) took 128-140 ms in 3 of 8 runs with huge pages and
    41-53 ms in every run without. Only the command line does this, before numpy is imported, never
    ``import lveval``; ``NUMPY_MADVISE_HUGEPAGE=1`` (numpy's own switch) keeps huge pages."""
    import os

    if "numpy" in sys.modules:
        return False   # numpy reads the setting once, when imported
    os.environ.setdefault("NUMPY_MADVISE_HUGEPAGE", "0")
    return os.environ["NUMPY_MADVISE_HUGEPAGE"] == "0"


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
