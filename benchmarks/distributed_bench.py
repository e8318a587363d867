"""Sharded evaluation benchmark: one process vs a local Dask cluster; and Dask vs Ray task costs.

``run``: the same results file evaluated (all three protocols)

* by ``lveval.evaluate`` in one process (wall time, peak RSS of that process);
* by ``lveval.distributed.evaluate`` on a fresh ``LocalCluster`` of
  ``--workers`` processes, for each ``--shards`` count, from a
  class-partitioned directory (``lveval.distributed.partition``, timed
  separately) and once from the single Parquet file (each shard scans it).

Each configuration runs in its own driver process with its own cluster, so
every worker's peak RSS (``getrusage`` in the worker, read with
``client.run``) is that configuration's. A worker's *baseline* is its peak
after a warm-up task that imports lveval and loads the ground truth; the
peak minus the baseline is what evaluating its shards cost, reported next
to the largest shard's rows. Figures are checked equal (``==``) to the
single-process run. Per-shard stats give the per-detection costs used for
the estimates in docs/distributed.md.

``engines``: task overhead and data transfer of Dask distributed and (when
importable) Ray on the same machine: cluster start, sequential no-op round
trips, a burst of no-op tasks, and a shard-sized array sent to a task and
one returned from a task.

Examples::

    python benchmarks/generate.py --n-images 5000 --parquet --no-json --out-dir bench-out/d5k
    python benchmarks/distributed_bench.py run --gt bench-out/d5k/gt.json \\
        --results bench-out/d5k/dets_c1000.parquet --workers 2 --shards 2,8,32,128 \\
        --out bench-out/distributed
    python benchmarks/distributed_bench.py run ... --scan-shards "" --eval-kwargs '{"dataset": "coco"}'
    python benchmarks/distributed_bench.py engines --workers 2 --out bench-out/engines.json  # Ray if importable
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve()


def _maxrss_bytes() -> int:
    """Peak RSS of this process (VmHWM; ru_maxrss would include the parent's RSS at fork)."""
    from lveval.distributed.work import peak_rss
    return peak_rss()


def _child(args: list) -> dict:
    """Run this script's hidden sub-command in a fresh interpreter; its JSON, wall time and peak RSS."""
    t = time.perf_counter()
    p = subprocess.Popen([sys.executable, str(HERE)] + args, stdout=subprocess.PIPE, text=True)
    out = p.stdout.read()
    _, status, _ = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{args[0]} failed with status {status}")
    d = json.loads(out.strip().splitlines()[-1])
    d["process_wall_s"] = wall
    return d


# --------------------------------------------------------------------------- measured children

def _single(a) -> None:
    import lveval

    t, c = time.perf_counter(), time.process_time()
    r = lveval.evaluate(a.gt, a.results, **json.loads(a.eval_kwargs))
    dt, cpu = time.perf_counter() - t, time.process_time() - c
    a.json_out and Path(a.json_out).write_text(json.dumps(r.to_dict()))
    print(json.dumps({"evaluate_s": dt, "cpu_s": cpu, "maxrss": _maxrss_bytes(), "old": r.old["AP"],
                      "fixed": r.fixed["AP"], "pooled": r.pooled["AP"]}))


def _warm(gt_path):
    """Import what a shard task uses and load the ground truth in a worker; its peak RSS afterwards."""
    import pyarrow.parquet  # noqa: F401

    from lveval.distributed import work
    from lveval.metrics import Evaluator  # noqa: F401

    work.resolve_gt(work.gt_ref(gt_path, None))
    return work.peak_rss()


def _peak():
    from lveval.distributed.work import peak_rss
    return peak_rss()


def _dist(a) -> None:
    import numpy as np

    import lveval.distributed as ld
    from distributed import Client
    from lveval.distributed.dask_backend import local_cluster

    t0 = time.perf_counter()
    with local_cluster(a.workers, memory_limit=0) as cluster, Client(cluster) as c:
        start_s = time.perf_counter() - t0
        base = c.run(_warm, os.path.abspath(a.gt))
        driver_base = _maxrss_bytes()
        t = time.perf_counter()
        r = ld.evaluate(a.gt, a.results, client=c, shards=a.shards, **json.loads(a.eval_kwargs))
        dt = time.perf_counter() - t
        peak = c.run(_peak)
    same = None
    if a.compare:
        ref = json.loads(Path(a.compare).read_text())
        same = json.loads(json.dumps(r.to_dict())) == ref
    st = r.shard_stats
    rows = np.array([s["rows"] for s in st])
    secs = np.array([s["seconds"] for s in st])
    cpu = np.array([s["cpu_seconds"] for s in st])
    print(json.dumps({
        "cluster_start_s": start_s, "evaluate_s": dt, "identical_to_single": same,
        "shards": len(st), "rows_total": int(rows.sum()), "rows_max_shard": int(rows.max()),
        "shard_seconds_sum": float(secs.sum()), "shard_seconds_max": float(secs.max()),
        "shard_cpu_seconds_sum": float(cpu.sum()),
        "cpu_seconds_per_million_rows": float(cpu.sum() / max(rows.sum(), 1) * 1e6),
        "matched_rows_total": int(sum(s["matched_rows"] for s in st)),
        "read_cpu_seconds_sum": float(sum(s["read_cpu_seconds"] for s in st)),
        "match_cpu_seconds_sum": float(sum(s["match_cpu_seconds"] for s in st)),
        "timings": r.timings,
        "workers": {w: {"baseline": base[w], "peak": peak[w], "delta": peak[w] - base[w]} for w in base},
        "shard_stats": st, "driver_baseline": driver_base, "maxrss": _maxrss_bytes(),
        "old": r.old["AP"], "fixed": r.fixed["AP"], "pooled": r.pooled["AP"]}))


# ------------------------------------------------------------------------------------- run

def cmd_run(a) -> None:
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    ref_json = str(out / "single.json")
    rows = []
    print("single process ...", file=sys.stderr)
    single = _child(["_single", a.gt, a.results, "--json-out", ref_json, "--eval-kwargs", a.eval_kwargs])
    rows.append(("1 process", "-", "-", single["evaluate_s"], single["maxrss"], None, None, None, True))
    report = {"eval_kwargs": json.loads(a.eval_kwargs), "single": single, "distributed": []}
    import lveval.distributed as ld

    configs = [("scan", int(s)) for s in a.scan_shards.split(",") if s] + \
              [("partition", int(s)) for s in a.shards.split(",") if s]
    for kind, s in configs:
        src = a.results
        part_s = None
        if kind == "partition":
            src = str(out / f"parts_{s}")
            t = time.perf_counter()
            ld.partition(a.results, src, s)
            part_s = time.perf_counter() - t
        print(f"{kind}, {s} shards ...", file=sys.stderr)
        d = _child(["_dist", a.gt, src, "--workers", str(a.workers), "--shards", str(s), "--compare", ref_json,
                    "--eval-kwargs", a.eval_kwargs])
        d.update(kind=kind, partition_s=part_s)
        report["distributed"].append(d)
        w = list(d["workers"].values())
        rows.append((f"{a.workers} workers, {kind}", d["shards"], d["rows_max_shard"], d["evaluate_s"],
                     d["maxrss"], max(x["peak"] for x in w), max(x["baseline"] for x in w),
                     max(x["delta"] for x in w), d["identical_to_single"]))
    mb = lambda v: "-" if v is None else f"{v / 2 ** 20:,.0f}"
    lines = ["| run | shards | largest shard (rows) | evaluate (s) | driver peak (MiB) | worker peak (MiB) "
             "| worker baseline (MiB) | worker peak - baseline (MiB) | figures == 1 process |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        lines.append(f"| {r[0]} | {r[1]} | {r[2] if r[2] == '-' else f'{r[2]:,}'} | {r[3]:.2f} | {mb(r[4])} | "
                     f"{mb(r[5])} | {mb(r[6])} | {mb(r[7])} | {r[8]} |")
    text = "\n".join(lines)
    (out / "distributed.md").write_text(text + "\n")
    (out / "distributed.json").write_text(json.dumps(report, indent=1))
    print(text)


# --------------------------------------------------------------------------------- engines

def _noop(x=None):
    return x


def _arr_sum(a):
    return float(a[:1].sum())


def _arr_make(n):
    import numpy as np
    return np.ones(n)


def _median_time(fn, reps: int) -> float:
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def _bench_dask(workers: int, n: int, burst: int, reps: int) -> dict:
    import numpy as np

    from distributed import Client, LocalCluster

    t = time.perf_counter()
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0")
    c = Client(cluster)
    c.submit(_noop, 0, pure=False).result()
    start = time.perf_counter() - t
    seq = _median_time(lambda: c.submit(_noop, 1, pure=False).result(), 200)
    burst_s = _median_time(lambda: c.gather([c.submit(_noop, i, pure=False) for i in range(burst)]), 3)
    arr = np.ones(n)
    send = _median_time(lambda: c.submit(_arr_sum, arr, pure=False).result(), reps)
    recv = _median_time(lambda: c.submit(_arr_make, n, pure=False).result(), reps)
    c.close()
    cluster.close()
    return {"version": __import__("distributed").__version__, "start_s": start, "roundtrip_ms": seq * 1e3,
            f"burst_{burst}_s": burst_s, "per_task_in_burst_ms": burst_s / burst * 1e3,
            "send_s": send, "receive_s": recv}


def _bench_ray(workers: int, n: int, burst: int, reps: int) -> dict:
    import numpy as np
    import ray

    t = time.perf_counter()
    ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
    noop = ray.remote(_noop)
    s = ray.remote(_arr_sum)
    mk = ray.remote(_arr_make)
    ray.get(noop.remote(0))
    start = time.perf_counter() - t
    seq = _median_time(lambda: ray.get(noop.remote(1)), 200)
    burst_s = _median_time(lambda: ray.get([noop.remote(i) for i in range(burst)]), 3)
    arr = np.ones(n)
    send = _median_time(lambda: ray.get(s.remote(arr)), reps)
    recv = _median_time(lambda: ray.get(mk.remote(n)), reps)
    ray.shutdown()
    return {"version": ray.__version__, "start_s": start, "roundtrip_ms": seq * 1e3,
            f"burst_{burst}_s": burst_s, "per_task_in_burst_ms": burst_s / burst * 1e3,
            "send_s": send, "receive_s": recv}


def cmd_engines(a) -> None:
    n = int(a.mb * 2 ** 20 // 8)
    out = {"workers": a.workers, "array_mib": a.mb, "burst": a.burst}
    out["dask"] = _bench_dask(a.workers, n, a.burst, a.reps)
    try:
        import ray  # noqa: F401
        out["ray"] = _bench_ray(a.workers, n, a.burst, a.reps)
    except ModuleNotFoundError:
        out["ray"] = "not installed"
    text = json.dumps(out, indent=1)
    if a.out:
        Path(a.out).write_text(text + "\n")
    print(text)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="one process vs a local cluster on the same results")
    r.add_argument("--gt", required=True)
    r.add_argument("--results", required=True, help="a .parquet results file")
    r.add_argument("--workers", type=int, default=2)
    r.add_argument("--shards", default="2,8,32", help="shard counts for partitioned runs (comma-separated)")
    r.add_argument("--scan-shards", default="8", help="shard counts for runs scanning the one Parquet file")
    r.add_argument("--out", default="bench-out/distributed")
    r.add_argument("--eval-kwargs", default="{}", help='evaluate() options as JSON, e.g. \'{"dataset": "coco"}\'')
    r.set_defaults(func=cmd_run)
    e = sub.add_parser("engines", help="task overhead and data transfer: Dask vs Ray")
    e.add_argument("--workers", type=int, default=2)
    e.add_argument("--mb", type=float, default=64, help="size of the array sent and received (MiB)")
    e.add_argument("--burst", type=int, default=1000)
    e.add_argument("--reps", type=int, default=5)
    e.add_argument("--out")
    e.set_defaults(func=cmd_engines)
    s = sub.add_parser("_single")
    s.add_argument("gt")
    s.add_argument("results")
    s.add_argument("--json-out")
    s.add_argument("--eval-kwargs", default="{}")
    s.set_defaults(func=_single)
    d = sub.add_parser("_dist")
    d.add_argument("gt")
    d.add_argument("results")
    d.add_argument("--workers", type=int, default=2)
    d.add_argument("--shards", type=int, default=None)
    d.add_argument("--compare")
    d.add_argument("--eval-kwargs", default="{}")
    d.set_defaults(func=_dist)
    a = ap.parse_args(argv)
    a.func(a)


if __name__ == "__main__":
    main()
