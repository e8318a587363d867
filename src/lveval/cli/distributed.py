"""Command-line glue: ``lveval evaluate ... --workers N | --scheduler ADDRESS`` and ``lveval partition``.

``add_arguments`` only adds options (it imports nothing from Dask), so the
CLI works without the ``distributed`` extra until these options are used.
"""
from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add --scheduler, --workers and --shards to ``lveval evaluate``."""
    g = parser.add_argument_group("sharded evaluation (needs: pip install 'lveval[distributed]')")
    g.add_argument("--scheduler", metavar="ADDRESS", default=None,
                   help="evaluate on this Dask scheduler, sharded by class: tls://host:8786 (verified with "
                   "the --tls-* files or Dask's TLS configuration), or tcp:// on this machine")
    g.add_argument("--tls-ca-file", metavar="PEM", default=None,
                   help="CA certificate that signed the tls:// scheduler's certificate")
    g.add_argument("--tls-cert", metavar="PEM", default=None, help="client certificate for a tls:// scheduler")
    g.add_argument("--tls-key", metavar="PEM", default=None, help="client private key for a tls:// scheduler")
    g.add_argument("--insecure-scheduler", action="store_true",
                   help="allow plain tcp:// to another machine: whoever answers there can run code in "
                   "this process (see docs/distributed.md)")
    g.add_argument("--workers", metavar="N", type=int, default=None,
                   help="evaluate on a local Dask cluster of N worker processes, sharded by class")
    g.add_argument("--shards", metavar="S", type=int, default=None,
                   help="number of class shards (default: 4 per worker thread)")


def wants_distributed(args) -> bool:
    """True when ``lveval evaluate`` was given --scheduler or --workers."""
    return bool(getattr(args, "scheduler", None)) or getattr(args, "workers", None) is not None


def evaluate_distributed(args, protocols: list):
    """The result of ``lveval evaluate`` on a Dask cluster (the command prints and writes it as usual)."""
    from ..distributed.dask_backend import evaluate
    from ..exceptions import OptionError
    from ..progress import auto_enabled
    from .options import eval_kwargs as _eval_kwargs

    if args.workers is not None and args.workers < 1:
        raise OptionError("workers", f"expected at least 1 worker process, got {args.workers}")
    if args.shards is not None and args.shards < 1:
        raise OptionError("shards", f"expected at least 1 shard, got {args.shards}")
    scheduler, security = args.scheduler, None
    if scheduler:   # checked before anything is loaded: one line, exit 2, no 30 s wait
        from ..distributed.trust import check_scheduler

        scheduler, security = check_scheduler(scheduler, insecure=args.insecure_scheduler,
                                              ca_file=args.tls_ca_file, cert=args.tls_cert, key=args.tls_key)
    return evaluate(args.gt, args.results, protocols=protocols, scheduler=scheduler, security=security,
                    workers=None if args.scheduler else args.workers, shards=args.shards,
                    progress=auto_enabled(args.quiet), **_eval_kwargs(args))


def _cmd_partition(args) -> int:
    from ..distributed.shard import partition

    m = partition(args.results, args.out_dir, args.shards)
    print(f"wrote {m['num_rows']} detections in {len(m['parts'])} class-partitioned files to {args.out_dir}")
    return 0


def register_cli(sub, common, eval_options, eval_kwargs) -> None:
    """``lveval partition RESULTS OUT_DIR --shards S``."""
    p = sub.add_parser("partition", help="write results as class-partitioned Parquet for sharded evaluation")
    p.add_argument("results", help="results: .json array, .jsonl or .parquet")
    p.add_argument("out_dir", help="output directory (one Parquet file per shard and manifest.json)")
    p.add_argument("--shards", type=int, default=64, metavar="S", help="number of class shards (default 64)")
    common(p)
    p.set_defaults(func=_cmd_partition)
