"""Command line: ``lveval evaluate|demo|convert|topk|...``, the top layer of lveval.

Bad input, bad options, an output that cannot be written, or too little memory
exit with status 2 and one line naming file, record and field (or the option);
SIGTERM, SIGINT and SIGHUP with 128 + the signal after removing temporary files;
internal errors exit 1; ``--debug`` shows tracebacks. Outputs go through
``lveval.atomic``, so a failed or interrupted run leaves none behind and changes
no earlier one. One
module per command group; the options they share are defined once in
:mod:`lveval.cli.options`. Nothing below this package imports it.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys

from .. import __version__
from ..exceptions import LvevalError

log = logging.getLogger("lveval")

# command group modules; the core commands start without importing the others
_CORE_MODULE = "lveval.cli.core"
_GROUPS = ("lveval.cli.topk", "lveval.cli.analysis", "lveval.cli.calibrate", "lveval.cli.report",
           "lveval.cli.distributed", "lveval.cli.errors", "lveval.cli.compare")
_CORE = ("evaluate", "demo", "convert")
# compiled libraries a command imports on first use, imported up front (with signals held)
_PRELOAD = {cmd: ("pyarrow", "pyarrow.parquet") for cmd in ("convert", "topk", "partition")}
_PRELOAD.update({cmd: ("matplotlib", "matplotlib.pyplot") for cmd in ("report", "audit")})


def _registrations(modules) -> list:
    out = []
    for mod in modules:
        try:
            m = importlib.import_module(mod)
        except ModuleNotFoundError as exc:   # a group whose optional dependency is missing
            if exc.name and mod.startswith(exc.name):
                continue
            raise
        if hasattr(m, "register_cli"):
            out.append(m.register_cli)
    return out


def build_parser(all_groups: bool = True) -> argparse.ArgumentParser:
    """The argument parser (``all_groups=False``: the core commands only)."""
    from .options import common, eval_kwargs, eval_options  # numpy and the rest: after the signal handlers

    p = argparse.ArgumentParser(prog="lveval", description="Evaluate large-vocabulary object detectors: "
                                "AP-Old, AP-Fixed and AP-Pool (Dave et al., 2021).")
    p.add_argument("--version", action="version", version=f"lveval {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    modules = (_CORE_MODULE,) + (_GROUPS if all_groups else ())
    for register in _registrations(modules):
        register(sub, common, eval_options, eval_kwargs)
    return p


def main(argv=None) -> int:
    """The command line; ``argv`` None: run as the program (late signals are then ignored at exit)."""
    from .. import atomic
    from .process import handle_signals, ordinary_pages, quiet_numeric_warnings

    restore = handle_signals(program=argv is None)
    if argv is None:
        quiet_numeric_warnings()
        ordinary_pages()
    try:
        return _main(argv)
    except (atomic.Interrupted, KeyboardInterrupt) as exc:   # arrived while reporting another error
        return _interrupted(exc)
    finally:
        if argv is None:
            atomic.finished()   # the process is about to exit: a late signal changes nothing
        atomic.remove_temps()
        restore()


def _interrupted(exc) -> int:
    from .. import atomic

    atomic.remove_temps()
    sig = getattr(exc, "signum", 2)
    print(f"lveval: interrupted by {getattr(exc, 'name', 'SIGINT')}; no output was written or changed",
          file=sys.stderr)
    return 128 + sig


def _main(argv) -> int:
    from .. import atomic

    args = sys.argv[1:] if argv is None else list(argv)
    command = next((x for x in args if not x.startswith("-")), None)
    # modules are imported with signals held: a signal in the middle of a compiled module's
    # initialisation can leave it half made (and the interpreter crashing at exit); it is raised
    # as soon as the imports are done, at a point the run can unwind from
    with atomic.deferred_signals():
        parser = build_parser(all_groups=command not in _CORE)
        for module in _PRELOAD.get(command, ()):
            importlib.import_module(module)
    a = parser.parse_args(args)
    if not getattr(a, "command", None):
        parser.print_help()
        return 2
    log.propagate = False   # notices are printed once, by the command itself
    try:
        rc = int(a.func(a) or 0)
        atomic.finished()   # every output is in place: a signal from here on is ignored
        return rc
    except LvevalError as exc:
        if a.debug:
            raise
        if atomic.received_signal() is not None:   # an error of the unwinding: the signal stopped the run
            return _interrupted(atomic.Interrupted(atomic.received_signal()))
        print(f"lveval: error: {exc}", file=sys.stderr)
        return 2
    except (atomic.Interrupted, KeyboardInterrupt) as exc:   # SIGTERM/SIGHUP, or SIGINT (Ctrl-C)
        return _interrupted(exc)
    except RecursionError:
        if a.debug:
            raise
        print("lveval: error: an input is nested too deeply (thousands of nested arrays or objects); "
              "a detection record has a flat object", file=sys.stderr)
        return 2
    except Exception as exc:
        sig = atomic.received_signal()
        if sig is not None and not a.debug:   # raised while a library unwound from the signal
            return _interrupted(atomic.Interrupted(sig))
        return _failed(exc, a)


def _failed(exc: Exception, a) -> int:
    """Exit status and one line of an error that is not lveval's own."""
    if isinstance(exc, OSError):
        if a.debug:
            raise exc
        where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        print(f"lveval: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    if a.debug:   # last line of defence, exit 1
        raise exc
    print(f"lveval: internal error: {type(exc).__name__}: {exc} (run with --debug for a traceback)",
          file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
