"""The one writer of every output file: atomic for regular files, deliberate about everything else.

What an output path may name, and what happens:

* a new name or a regular file: the content goes to a hidden temporary file beside it
  (``.tmp-NAME.*``), renamed into place only when complete, so a failed or interrupted run leaves no
  partial file and an earlier output keeps its content. A replaced file keeps its permission bits
  (and its owner and group where the process may set them, e.g. as root); a new file gets
  ``0666 & ~umask``. The directory must exist (it is not created).
* a symbolic link given by the user: followed; its target is written and the link stays. Inside an
  output directory lveval fills itself (plots, report pages, shards: ``inside=DIR``) a symbolic link
  is refused, so a link planted in DIR cannot send a write elsewhere.
* a character device or a FIFO (``/dev/stdout``, ``/dev/null``, a named pipe): written to directly,
  nothing is replaced; a write error (``/dev/full``) is reported.
* a directory, a block device, a socket: refused.
* a file the user may not write by its permission bits (owner, group, others), also when running
  as root, which the kernel would let through: refused, and left as it is.

Errors are :class:`~lveval.errors.InputError` (one line naming the path). Temporary files still open
are listed in ``_TEMPS`` so a signal handler can remove them (:func:`remove_temps`).
"""
from __future__ import annotations

import errno
import os
import stat
import tempfile
from contextlib import contextmanager

from .exceptions import InputError

_TEMPS: set = set()   # temporary files being written (removed on failure, renamed on success)
_WRITE_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EIO)


def may_write(st: os.stat_result) -> bool:
    """Do the permission bits let this process write the file (owner, group or others; no root bypass)?"""
    uid = os.geteuid()
    if st.st_uid == uid:
        return bool(st.st_mode & stat.S_IWUSR)
    if st.st_gid == os.getegid() or st.st_gid in os.getgroups():
        return bool(st.st_mode & stat.S_IWGRP)
    return bool(st.st_mode & stat.S_IWOTH)


def check_output(path: str, *, inside: str | None = None) -> tuple[str, os.stat_result | None]:
    """(the path to write, its stat or None if new) for output ``path``; InputError if it must not be written.

    Runs the checks of :func:`atomic_write` without writing: commands call it before a long run."""
    path = os.fspath(path)
    if os.path.islink(path):
        if inside is not None:
            raise InputError(f"is a symbolic link inside the output directory {inside}; refusing to "
                             "follow it (remove it)", path=path)
        target = os.path.realpath(path)
    else:
        target = path
    try:
        st = os.stat(target)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise InputError(f"cannot use as an output ({exc.strerror})", path=path) from None
    if st is None:
        d = os.path.dirname(os.path.abspath(target))
        if not os.path.isdir(d):
            raise InputError("the output's directory does not exist", path=path)
        if not os.access(d, os.W_OK | os.X_OK):
            raise InputError("the output's directory is not writable", path=path)
        return target, None
    m = st.st_mode
    if stat.S_ISDIR(m):
        raise InputError("is a directory; expected an output file name", path=path)
    if stat.S_ISBLK(m) or stat.S_ISSOCK(m):
        raise InputError(f"is a {'block device' if stat.S_ISBLK(m) else 'socket'}; refusing to write "
                         "to it", path=path)
    if not may_write(st):
        raise InputError("permission denied (the file is not writable for this user; it is left "
                         "unchanged)", path=path)
    if stat.S_ISREG(m):
        d = os.path.dirname(os.path.abspath(target))
        if not os.access(d, os.W_OK | os.X_OK):
            raise InputError("the output's directory is not writable (the file is replaced through a "
                             "temporary file beside it)", path=path)
    return target, st


def output_dir(path: str) -> str:
    """Make sure ``path`` is a directory to fill with outputs (created with its parents if missing)."""
    path = os.fspath(path)
    if os.path.exists(path) and not os.path.isdir(path):
        raise InputError("is a file; expected an output directory", path=path)
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create the output directory ({exc.strerror})", path=path) from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise InputError("the output directory is not writable", path=path)
    return path


def remove_temps() -> None:
    """Remove every temporary file still being written (from a signal handler or at exit)."""
    for t in list(_TEMPS):
        try:
            os.unlink(t)
        except OSError:
            pass
        _TEMPS.discard(t)


def _write_error(exc: OSError, path: str) -> Exception:
    if isinstance(exc, OSError) and exc.errno in _WRITE_ERRORS:
        return InputError(f"cannot write the output ({exc.strerror})", path=path)
    return exc


@contextmanager
def atomic_write(path: str, mode: str = "w", *, inside: str | None = None, **kw):
    """Yield a file object for output ``path`` (see the module's docstring for what it may name).

    ``inside``: the output directory lveval fills itself; symbolic links there are refused."""
    path = os.fspath(path)
    target, st = check_output(path, inside=inside)
    if st is not None and not stat.S_ISREG(st.st_mode):   # device or FIFO: write through
        try:
            with open(target, mode, **kw) as f:
                yield f
        except OSError as exc:
            raise _write_error(exc, path) from None
        return
    d = os.path.dirname(os.path.abspath(target))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-" + os.path.basename(target) + ".", dir=d)
    _TEMPS.add(tmp)
    try:
        with os.fdopen(fd, mode, **kw) as f:
            yield f
        if st is not None:
            os.chmod(tmp, stat.S_IMODE(st.st_mode))
            if (st.st_uid, st.st_gid) != (os.geteuid(), os.getegid()):
                try:
                    os.chown(tmp, st.st_uid, st.st_gid)
                except OSError:
                    pass   # not allowed: the replaced file's owner becomes this user (its mode stays)
        else:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)   # mkstemp creates 0600; give the usual permissions
        os.replace(tmp, target)
        _TEMPS.discard(tmp)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        _TEMPS.discard(tmp)
        if isinstance(exc, OSError):
            raise _write_error(exc, path) from None
        raise


def write_bytes(path: str, data: bytes, *, inside: str | None = None) -> None:
    """``data`` written to ``path`` through :func:`atomic_write`."""
    with atomic_write(path, "wb", inside=inside) as f:
        f.write(data)


# ---------------------------------------------------------------------------------------------
# Signals: SIGTERM, SIGINT and SIGHUP unwind the run like an error (temporary files removed,
# earlier outputs untouched); outputs that change together are committed with signals deferred.

class Interrupted(BaseException):
    """A run stopped by a signal (not an ``Exception``: nothing may catch and carry on)."""

    def __init__(self, signum: int):
        import signal

        self.signum = signum
        self.name = signal.Signals(signum).name
        super().__init__(f"interrupted by {self.name}")


_DEFER = [0]
_PENDING: list = []
_RECEIVED: list = []
_FINISHED = [False]


def on_signal(signum, frame) -> None:
    """Signal handler of the command line: raise :class:`Interrupted`, or note it while deferred;
    ignored once the run has finished (its outputs are in place)."""
    if _FINISHED[0]:
        return
    _RECEIVED[:] = [signum]
    if _DEFER[0]:
        _PENDING.append(signum)
        return
    raise Interrupted(signum)


def received_signal() -> int | None:
    """The signal that stopped the run, if one arrived (an error raised while a library unwinds from
    :class:`Interrupted` is then part of the interruption, not a failure of its own)."""
    return _RECEIVED[0] if _RECEIVED else None


def finished(done: bool = True) -> None:
    """Mark the run as finished: signals from now on are ignored (``False``: armed again)."""
    _FINISHED[0] = done
    if not done:
        _PENDING.clear()
        _RECEIVED.clear()


@contextmanager
def deferred_signals():
    """Hold SIGTERM/SIGINT/SIGHUP (as handled by :func:`on_signal`) until the block ends: for commits
    of several files that must change together (parts and manifest, page and figures)."""
    _DEFER[0] += 1
    try:
        yield
    finally:
        _DEFER[0] -= 1
        if not _DEFER[0] and _PENDING:
            s = _PENDING[0]
            _PENDING.clear()
            raise Interrupted(s)


def write_files(files: dict, *, inside: str | None = None) -> None:
    """Several outputs ``{path: bytes}`` written through temporary files and renamed together, signals
    deferred meanwhile (the bytes are in memory, so it is quick): an interrupted run leaves either
    all the old files or all the new ones."""
    from contextlib import ExitStack

    for p in files:
        check_output(p, inside=inside)
    with deferred_signals(), ExitStack() as stack:
        for p, data in files.items():
            stack.enter_context(atomic_write(p, "wb", inside=inside)).write(data)
