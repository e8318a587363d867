"""Command line: ``lveval evaluate|demo|convert|topk|...``.

Bad input (and an output that cannot be written, or too little memory) exits
with status 2 and one line naming file, record and field; SIGTERM, SIGINT and
SIGHUP with 128 + the signal after removing temporary files; internal errors
exit 1; ``--debug`` shows tracebacks. Outputs go through ``lveval.atomic``, so
a failed or interrupted run leaves none behind and changes no earlier one.
"""
from __future__ import annotations

import argparse
import logging
import sys

import orjson

from . import __version__
from .atomic import atomic_write
from .errors import InputError, ResourceError

log = logging.getLogger("lveval")


def json_bytes(obj) -> bytes:
    """Deterministic JSON (sorted keys, indented), as every JSON output is written."""
    return orjson.dumps(obj, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS | orjson.OPT_SERIALIZE_NUMPY) + b"\n"


def write_json(path: str, obj, inside: str | None = None) -> None:
    """Deterministic JSON (sorted keys) written by the safe writer (``inside``: see atomic_write)."""
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


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    p.add_argument("--quiet", action="store_true", help="no progress bars or notices")


def _eval_options(p: argparse.ArgumentParser, protocols=True) -> None:
    p.add_argument("--iou-type", choices=("bbox", "segm"), default="bbox")
    if protocols:
        p.add_argument("--protocols", default="old,fixed,pooled",
                       help="comma-separated subset of old,fixed,pooled (default: all three)")
    p.add_argument("--max-dets-per-image", type=int, default=None, metavar="N",
                   help="AP-Old's cap per image (LVIS: 300; COCO: pycocotools' 100 per image and class)")
    p.add_argument("--max-dets-per-class", type=int, default=10_000, metavar="K",
                   help="AP-Fixed/AP-Pool budget per class over the whole set (default 10000)")
    p.add_argument("--dataset", choices=("lvis", "coco"), default=None,
                   help="force LVIS federated rules or COCO crowd rules (default: guessed from the GT)")
    p.add_argument("--on-unknown-image", choices=("error", "skip"), default="error")
    p.add_argument("--on-unknown-category", choices=("error", "skip"), default="error")


def _eval_kwargs(a) -> dict:
    return dict(iou_type=a.iou_type, max_dets_per_image=a.max_dets_per_image,
                max_dets_per_class=a.max_dets_per_class, dataset=a.dataset,
                on_unknown_image=a.on_unknown_image, on_unknown_category=a.on_unknown_category)


def protocols_arg(a) -> list:
    """The --protocols option as a list; InputError for a name that is not a protocol."""
    from .metrics import PROTOCOLS

    out = [p.strip() for p in a.protocols.split(",") if p.strip()]
    bad = [p for p in out if p not in PROTOCOLS] or ([] if out else [a.protocols])
    if bad:
        raise InputError(f"--protocols: unknown protocol {bad[0]!r}; choose one or more of "
                         f"{','.join(PROTOCOLS)} (comma-separated)")
    return out


def _print_result(result, quiet: bool, table=None) -> None:
    """The figures (``table(result)``, by default the protocol table) on stdout, notices on stderr."""
    from .table import notices_text, protocol_table

    print((table or protocol_table)(result))
    if not quiet:
        n = notices_text(result.notices)
        if n:
            print(n, file=sys.stderr)


def cmd_evaluate(a) -> int:
    from .distributed.cli import evaluate_distributed, wants_distributed
    from .metrics import evaluate

    from .progress import auto_enabled

    protocols = protocols_arg(a)
    check_writable(a.json)
    if wants_distributed(a):
        r = evaluate_distributed(a, protocols)
    else:
        r = evaluate(a.gt, a.results, protocols=protocols, progress=auto_enabled(a.quiet), **_eval_kwargs(a))
    if a.json:   # written before anything is printed: a failed write is then the only line
        write_json(a.json, r.to_dict())
    _print_result(r, a.quiet)
    return 0


def cmd_demo(a) -> int:
    from . import data_path
    from .metrics import evaluate
    from .simulate import simulate

    check_writable(a.json)
    gt = data_path()
    print(f"Ground truth: {gt}\n  (100 images of LVIS v0.5 val, CC BY 4.0, lvisdataset.org)")
    print(f"Results: a simulated detector (seed {a.seed}, {a.candidates} candidates per image,\n"
          "  under-confident on rare classes)\n")
    res = simulate(gt, seed=a.seed, candidates_per_image=a.candidates, iou_type=a.iou_type)
    r = evaluate(gt, res, iou_type=a.iou_type)
    _print_result(r, a.quiet, table=protocol_table_with_note)
    if a.json:
        write_json(a.json, r.to_dict())
    return 0


def protocol_table_with_note(r) -> str:
    from .table import protocol_table

    text = protocol_table(r)
    if r.old and r.fixed:
        d = (r.fixed["AP"] - r.old["AP"]) * 100
        text += (f"\n\nAP-Fixed - AP-Old = {d:+.2f} points: the per-image cap drops detections that the "
                 "per-class budget keeps.\nAP-Pool ranks all classes' detections together and so "
                 "rewards scores that are comparable across classes.")
    return text


def cmd_convert(a) -> int:
    from .io.results import load_results, write_results

    check_writable(a.output)
    d = load_results(a.input)
    write_results(d, a.output)
    print(f"wrote {len(d)} detections to {a.output}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lveval", description="Evaluate large-vocabulary object detectors: "
                                "AP-Old, AP-Fixed and AP-Pool (Dave et al., 2021).")
    p.add_argument("--version", action="version", version=f"lveval {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    e = sub.add_parser("evaluate", help="AP-Old, AP-Fixed and AP-Pool of a results file")
    e.add_argument("gt", help="ground truth JSON (COCO or LVIS format)")
    e.add_argument("results", help="results: .json array, .jsonl or .parquet")
    _eval_options(e)
    from .distributed.cli import add_arguments as _distributed_arguments
    _distributed_arguments(e)   # --workers / --scheduler (needs the 'distributed' extra only when used)
    e.add_argument("--json", metavar="OUT", help="write all figures as JSON")
    _common(e)
    e.set_defaults(func=cmd_evaluate)

    d = sub.add_parser("demo", help="evaluate a simulated detector on the bundled LVIS subset")
    d.add_argument("--iou-type", choices=("bbox", "segm"), default="bbox")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--candidates", type=int, default=1000, help="detections per image")
    d.add_argument("--json", metavar="OUT")
    _common(d)
    d.set_defaults(func=cmd_demo)

    c = sub.add_parser("convert", help="convert results between .json, .jsonl and .parquet")
    c.add_argument("input")
    c.add_argument("output")
    _common(c)
    c.set_defaults(func=cmd_convert)

    for register in _EXTENSIONS:
        register(sub, _common, _eval_options, _eval_kwargs)
    return p


# Other modules add their sub-commands here (analysis, calibrate, report, topk).
_EXTENSIONS: list = []


def _load_extensions() -> None:
    import importlib

    for mod in ("lveval.topk", "lveval.analysis.cli", "lveval.calibrate.cli", "lveval.report.cli",
                "lveval.distributed.cli"):
        try:
            m = importlib.import_module(mod)
        except ModuleNotFoundError as exc:
            if exc.name and mod.startswith(exc.name):
                continue
            raise
        if hasattr(m, "register_cli") and m.register_cli not in _EXTENSIONS:
            _EXTENSIONS.append(m.register_cli)


_CORE = ("evaluate", "demo", "convert")


def main(argv=None) -> int:
    """The command line; ``argv`` None: run as the program (late signals are then ignored at exit)."""
    from . import atomic

    restore = _handle_signals(program=argv is None)
    if argv is None:
        _quiet_numeric_warnings()
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
    from . import atomic

    atomic.remove_temps()
    sig = getattr(exc, "signum", 2)
    print(f"lveval: interrupted by {getattr(exc, 'name', 'SIGINT')}; no output was written or changed",
          file=sys.stderr)
    return 128 + sig


def _main(argv) -> int:
    from . import atomic

    args = sys.argv[1:] if argv is None else list(argv)
    command = next((x for x in args if not x.startswith("-")), None)
    if command not in _CORE:   # the core commands start without importing the others' modules
        _load_extensions()
    parser = build_parser()
    a = parser.parse_args(args)
    if not getattr(a, "command", None):
        parser.print_help()
        return 2
    log.propagate = False   # notices are printed once, by the command itself
    try:
        rc = int(a.func(a) or 0)
        atomic.finished()   # every output is in place: a signal from here on is ignored
        return rc
    except (InputError, ResourceError) as exc:
        if a.debug:
            raise
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
    except OSError as exc:
        if a.debug:
            raise
        where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        print(f"lveval: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    except Exception as exc:   # noqa: BLE001 - last line of defence, exit 1
        if a.debug:
            raise
        print(f"lveval: internal error: {type(exc).__name__}: {exc} (run with --debug for a traceback)",
              file=sys.stderr)
        return 1


def _quiet_numeric_warnings() -> None:
    """numpy's RuntimeWarnings (overflow, invalid value) carry source paths and say nothing a user can
    act on: the engine handles inf and NaN explicitly, and input problems are reported as errors."""
    import warnings

    warnings.filterwarnings("ignore", category=RuntimeWarning, module=r"(lveval|numpy)(\..*)?$")


class _PipeSafeStdout:
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


def _handle_signals(program: bool = True):
    """SIGTERM, SIGINT and SIGHUP stop the run like an error: temporary files are removed, earlier
    outputs stay, one line, exit status 128 + the signal's number. A closed stdout is not an error."""
    import signal
    import threading

    from .atomic import on_signal

    old = {}
    if threading.current_thread() is threading.main_thread():
        for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            old[s] = signal.signal(s, on_signal)
    out = sys.stdout
    if sys.stdout is sys.__stdout__ and sys.stdout is not None:
        sys.stdout = _PipeSafeStdout(sys.stdout)

    def restore() -> None:
        try:
            sys.stdout.flush()
        except (BrokenPipeError, ValueError):
            pass
        sys.stdout = out if not isinstance(sys.stdout, _PipeSafeStdout) or not sys.stdout.closed_pipe else sys.stdout
        if not program:   # called from Python (tests): the caller's handlers come back
            from . import atomic

            atomic.finished(False)
            for s, h in old.items():
                signal.signal(s, h)
        else:   # the outputs are in place; ignored signals stay ignored while the interpreter shuts down
            for s in old:
                signal.signal(s, signal.SIG_IGN)

    return restore


if __name__ == "__main__":
    sys.exit(main())
