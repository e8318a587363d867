"""Command line: ``lveval evaluate|demo|convert|topk|...``, the top layer of lveval.

Bad input and bad options exit with status 2 and one line naming file, record and
field (or the option); internal errors exit 1; ``--debug`` shows tracebacks.
Output files are written atomically, so a failed run leaves none behind. One
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
from .options import common, eval_kwargs, eval_options

log = logging.getLogger("lveval")

# command group modules; the core commands start without importing the others
_CORE_MODULE = "lveval.cli.core"
_GROUPS = ("lveval.cli.topk", "lveval.cli.analysis", "lveval.cli.calibrate", "lveval.cli.report",
           "lveval.cli.distributed", "lveval.cli.errors", "lveval.cli.compare")
_CORE = ("evaluate", "demo", "convert")


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
    p = argparse.ArgumentParser(prog="lveval", description="Evaluate large-vocabulary object detectors: "
                                "AP-Old, AP-Fixed and AP-Pool (Dave et al., 2021).")
    p.add_argument("--version", action="version", version=f"lveval {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    modules = (_CORE_MODULE,) + (_GROUPS if all_groups else ())
    for register in _registrations(modules):
        register(sub, common, eval_options, eval_kwargs)
    return p


def main(argv=None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    command = next((x for x in args if not x.startswith("-")), None)
    parser = build_parser(all_groups=command not in _CORE)
    a = parser.parse_args(args)
    if not getattr(a, "command", None):
        parser.print_help()
        return 2
    log.propagate = False   # notices are printed once, by the command itself
    try:
        return int(a.func(a) or 0)
    except LvevalError as exc:
        if a.debug:
            raise
        print(f"lveval: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("lveval: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:   # noqa: BLE001 - last line of defence, exit 1
        if a.debug:
            raise
        print(f"lveval: internal error: {type(exc).__name__}: {exc} (run with --debug for a traceback)",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
