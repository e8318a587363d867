"""Time and peak memory of ``lveval errors`` against ``lveval evaluate`` on the same files.

Both run through the command line, each in its own process, ``--repeat`` times; medians are reported.
Peak RSS comes from GNU ``/usr/bin/time -v``.

    python benchmarks/generate.py --n-images 1000 --candidates-per-image 1000 --parquet --no-json \\
        --out-dir bench-out/1m
    python benchmarks/errors_bench.py bench-out/1m/gt.json bench-out/1m/dets_c1000.parquet --repeat 3
"""
from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import time


def run(cmd: list) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one command."""
    t0 = time.perf_counter()
    p = subprocess.run(["/usr/bin/time", "-v"] + cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if p.returncode:
        sys.exit(f"failed: {' '.join(cmd)}\n{p.stderr[-2000:]}")
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr)
    return wall, (int(rss.group(1)) / 1024 if rss else float("nan"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("gt")
    ap.add_argument("results")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--dataset", choices=("lvis", "coco"), help="passed to both commands (coco: no federated "
                    "filtering, every detection is evaluated)")
    ap.add_argument("--json", metavar="OUT")
    a = ap.parse_args()
    base = [sys.executable, "-m", "lveval.cli"]
    opt = ["--quiet"] + (["--dataset", a.dataset] if a.dataset else [])
    cmds = {"evaluate": base + ["evaluate", a.gt, a.results] + opt,
            "errors (fixed + old)": base + ["errors", a.gt, a.results] + opt,
            "errors --protocol fixed": base + ["errors", a.gt, a.results, "--protocol", "fixed"] + opt}
    out = {}
    for name, cmd in cmds.items():
        runs = [run(cmd) for _ in range(a.repeat)]
        out[name] = {"wall_s": statistics.median(r[0] for r in runs),
                     "peak_rss_mb": statistics.median(r[1] for r in runs), "runs": runs}
    ref = out["evaluate"]["wall_s"]
    for name, r in out.items():
        print(f"{name:<26} {r['wall_s']:7.2f} s  ({r['wall_s'] / ref:4.2f}x evaluate)  peak RSS {r['peak_rss_mb']:7.0f} MB")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
