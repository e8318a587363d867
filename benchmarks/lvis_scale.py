"""LVIS-v1-val-scale mask runs of ``lveval evaluate``: segm (all three protocols) and the
LVIS 2021 challenge (boundary AP-Fixed), in one process and sharded on a local Dask cluster.

Each configuration is one ``lveval evaluate ... --json OUT`` command run ``--repeat`` times
in its own process; wall time and the peak of the summed RSS of the whole process tree
(the command and, when sharded, its Dask scheduler and workers; sampled every 50 ms with
psutil) are recorded and their medians reported side by side. Figures of the sharded run
are checked equal (``==``, every key and array) to the one-process run of the same
configuration; exit status 1 on a difference.

    python benchmarks/generate.py --n-images 19809 --per-class-topk 10000 --segm --out-dir bench-out/v1
    python benchmarks/lvis_scale.py --data bench-out/v1 --repeat 3 --out bench-out/v1-run
    python benchmarks/lvis_scale.py --data bench-out/v1 --configs challenge,challenge-dask --repeat 1
    lveval partition bench-out/v1/dets_c1000_top10000.json bench-out/v1/part --shards 16
    python benchmarks/lvis_scale.py --data bench-out/v1 --partition bench-out/v1/part \
        --configs challenge,challenge-dask-partition

The generator's ``--per-class-topk 10000`` file is what the LVIS challenge asks for (at most
10,000 detections per class); AP-Old is read from the same file with its 300-per-image cap.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

# name -> extra arguments of `lveval evaluate GT RESULTS`
CONFIGS = {
    "segm": ["--iou-type", "segm"],
    "challenge": ["--challenge", "lvis2021"],
    "challenge-dask": ["--challenge", "lvis2021", "--workers", "2"],
    "segm-dask": ["--iou-type", "segm", "--workers", "2"],
    # the same, reading a class-partitioned directory (``lveval partition``, ``--partition``)
    "challenge-dask-partition": ["--challenge", "lvis2021", "--workers", "2"],
    "segm-dask-partition": ["--iou-type", "segm", "--workers", "2"],
}
SAME_AS = {"challenge-dask": "challenge", "segm-dask": "segm",
           "challenge-dask-partition": "challenge", "segm-dask-partition": "segm"}
VOLATILE = ("inputs", "timing", "seconds")


def _tree_rss(p: psutil.Process) -> int:
    total = 0
    for q in [p] + p.children(recursive=True):
        try:
            total += q.memory_info().rss
        except psutil.Error:
            pass
    return total


def run_once(argv: list[str]) -> dict:
    """Wall time, peak tree RSS and exit status of one command."""
    t = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    ps, peak, done = psutil.Process(proc.pid), [0], threading.Event()

    def sample():
        while not done.is_set():
            try:
                peak[0] = max(peak[0], _tree_rss(ps))
            except psutil.Error:
                pass
            done.wait(0.05)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    out, err = proc.communicate()
    done.set()
    th.join()
    return {"wall_s": time.perf_counter() - t, "peak_rss_mib": peak[0] / 2**20, "rc": proc.returncode,
            "stdout": out.decode(errors="replace"), "stderr": err.decode(errors="replace")[-2000:]}


def _figures(path: Path) -> dict:
    d = json.loads(path.read_text())
    for k in VOLATILE:
        d.pop(k, None)
    return d


def _headline(d: dict) -> dict:
    return {p: round(d[p]["AP"] * 100, 2) for p in ("old", "fixed", "pooled") if isinstance(d.get(p), dict)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, required=True, help="a generate.py --segm --per-class-topk output directory")
    ap.add_argument("--results", type=Path, help="results file (default: the directory's dets_*_top*.json)")
    ap.add_argument("--configs", default=",".join(CONFIGS), help=f"comma list of {', '.join(CONFIGS)}")
    ap.add_argument("--partition", type=Path, help="`lveval partition RESULTS DIR` output for the *-partition configs")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", type=Path, default=Path("bench-out/lvis-scale"))
    args = ap.parse_args(argv)
    gt = args.data / "gt.json"
    results = args.results or sorted(args.data.glob("dets_*_top*.json"))[0]
    args.out.mkdir(parents=True, exist_ok=True)
    lveval = [sys.executable, "-m", "lveval.cli"]
    rows, status = [], 0
    for name in [c.strip() for c in args.configs.split(",") if c.strip()]:
        if name not in CONFIGS:
            ap.error(f"unknown config {name!r} (known: {', '.join(CONFIGS)})")
        out = args.out / f"{name}.json"
        source = results
        if name.endswith("-partition"):
            if not args.partition:
                ap.error(f"{name} needs --partition DIR")
            source = args.partition
        cmd = lveval + ["evaluate", str(gt), str(source), *CONFIGS[name], "--json", str(out), "--quiet"]
        runs = []
        for i in range(args.repeat):
            r = run_once(cmd)
            print(f"{name} run {i + 1}: {r['wall_s']:.1f} s, {r['peak_rss_mib']:.0f} MiB, exit {r['rc']}", flush=True)
            if r["rc"]:
                print(r["stderr"], file=sys.stderr)
                status = 1
                break
            runs.append(r)
        shown = ["lveval", "evaluate", "GT", "PARTITION" if source != results else "RESULTS",
                 *CONFIGS[name], "--json", "OUT", "--quiet"]
        row = {"config": name, "command": " ".join(shown), "runs": [
            {k: v for k, v in r.items() if k not in ("stdout", "stderr")} for r in runs]}
        if runs:
            row.update(wall_s_median=statistics.median(r["wall_s"] for r in runs),
                       peak_rss_mib_median=statistics.median(r["peak_rss_mib"] for r in runs),
                       ap=_headline(_figures(out)))
            ref = SAME_AS.get(name)
            if ref and (args.out / f"{ref}.json").exists():
                row["equal_to"] = ref
                row["equal"] = _figures(out) == _figures(args.out / f"{ref}.json")
                status |= 0 if row["equal"] else 1
        rows.append(row)
    head = json.loads(gt.read_text()) if gt.stat().st_size < 2**30 else {}
    n_images = len(head.get("images", []))
    manifest = args.data / f"manifest_{results.stem}.json"
    n_dets = json.loads(manifest.read_text()).get("n_detections_written") if manifest.exists() else None
    lines = [f"# lveval at LVIS v1 val scale — {time.strftime('%Y-%m-%d %H:%M:%S')}", "",
             f"- GT `{gt}` ({n_images} images, {len(head.get('annotations', []))} annotations), "
             f"results `{results}` ({n_dets if n_dets is not None else '?'} masks, {results.stat().st_size / 2**30:.2f} GiB)",
             f"- repeats: {args.repeat}; {psutil.cpu_count()} CPUs, {psutil.virtual_memory().total / 2**30:.0f} GiB", "",
             "| config | command | wall s (median) | peak RSS MiB (median, process tree) | AP-Old | AP-Fixed | AP-Pool | "
             "equal to |", "|---|---|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        a = r.get("ap", {})
        eq = f"{r['equal_to']}: {'yes' if r['equal'] else 'NO'}" if "equal_to" in r else ""
        lines.append(f"| {r['config']} | `{r['command']}` | {r.get('wall_s_median', float('nan')):.1f} | "
                     f"{r.get('peak_rss_mib_median', float('nan')):.0f} | {a.get('old', '')} | {a.get('fixed', '')} | "
                     f"{a.get('pooled', '')} | {eq} |")
    md = "\n".join(lines) + "\n"
    (args.out / "lvis_scale.md").write_text(md)
    (args.out / "lvis_scale.json").write_text(json.dumps(rows, indent=2))
    print(md)
    return status


if __name__ == "__main__":
    sys.exit(main())
