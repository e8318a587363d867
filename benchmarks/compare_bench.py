"""Time and peak memory of ``lveval compare`` (paired bootstrap over images).

Each run is one ``lveval compare`` process; wall time, CPU time (user + sys) and peak RSS come from
``os.wait4`` (with ``--workers``, of the driver process only: the Dask workers are its grandchildren).
Medians over ``--repeat`` runs are printed as JSON, with the digest of the JSON written (the same for
a seed, with or without ``--workers``).

    # two simulated detectors on the bundled 100-image LVIS subset, 1,000 replicates
    python benchmarks/compare_bench.py bundled --bootstrap 1000 --repeat 3
    # two results files of ~1M detections each (generate.py, same --seed so the ground truth is shared)
    python benchmarks/generate.py --n-images 2000 --candidates-per-image 500 --out-dir bench-out/a
    python benchmarks/generate.py --n-images 2000 --candidates-per-image 520 --out-dir bench-out/b
    python benchmarks/compare_bench.py files bench-out/a/gt.json bench-out/a/dets_c500.json \\
        bench-out/b/dets_c520.json --bootstrap 200 --repeat 3
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time


def run_once(cmd: list) -> dict:
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, ru = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    err = proc.stderr.read().decode() if proc.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"lveval compare failed: {err}")
    return {"wall_s": wall, "cpu_s": ru.ru_utime + ru.ru_stime, "peak_rss_mb": ru.ru_maxrss / 1024}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("mode", choices=("bundled", "files"))
    ap.add_argument("paths", nargs="*", help="files mode: GT A B [...]")
    ap.add_argument("--bootstrap", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--protocols", default="old,fixed,pooled")
    ap.add_argument("--workers", type=int, default=None, help="replicates on a local Dask cluster of N workers")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        if args.mode == "bundled":
            import lveval
            from lveval.simulate import simulate

            gt = lveval.data_path()
            paths = [gt]
            for seed in (0, 1):
                p = os.path.join(tmp, f"sim{seed}.json")
                with open(p, "w") as f:
                    json.dump(simulate(gt, seed=seed), f)
                paths.append(p)
        else:
            if len(args.paths) < 3:
                raise SystemExit("files mode needs GT and at least two results files")
            paths = args.paths
        out = os.path.join(tmp, "compare.json")
        cmd = [sys.executable, "-m", "lveval.cli", "compare", *paths, "--bootstrap", str(args.bootstrap),
               "--protocols", args.protocols, "--json", out, "--quiet"]
        if args.workers:
            cmd += ["--workers", str(args.workers)]
        runs = [run_once(cmd) for _ in range(args.repeat)]
        with open(out) as f:
            raw = f.read()
        d = json.loads(raw)
    med = {k: round(statistics.median(r[k] for r in runs), 2) for k in runs[0]}
    print(json.dumps({"mode": args.mode, "models": len(paths) - 1, "replicates": args.bootstrap,
                      "workers": args.workers,
                      "protocols": args.protocols, "runs": runs, "median": med,
                      "verdicts": [x["verdict"] for x in d["differences"]],
                      "json_sha256": hashlib.sha256(raw.encode()).hexdigest()}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
