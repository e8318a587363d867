"""Mask benchmarks: lveval against the reference evaluators on the generator's mask workloads.

One command runs every tool of every chosen mode on the same files, each run in its own
process (``run.py`` does the measuring: wall time, peak RSS, agreement with lvis-api), and
writes one table with the medians side by side and each tool's speed-up over lvis-api 0.5.3,
in wall time and in CPU time (user + system, from GNU time: steadier on a shared machine).

    python benchmarks/masks.py --data bench-out/masks-200k --repeat 3 --out bench-out/masks-run

``--data`` is a ``generate.py --segm --parquet`` output directory (gt.json and one
dets_*.json / .parquet pair); ``--lvis-api-path`` adds lvis-api's lvis_challenge_2021 branch.

Modes are entries of ``MODES``: an IoU type and the tools run for it. A new mode (e.g.
boundary IoU: ``Mode("boundary", ("lvis-api-challenge", "faster-coco-eval", "lveval", ...))``)
is one entry here; a tool that is not a command of lveval needs a worker in ``run.WORKERS``.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _run_module():
    spec = importlib.util.spec_from_file_location("lveval_bench_run", HERE / "run.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@dataclass(frozen=True)
class Mode:
    iou_type: str
    tools: tuple[str, ...]


MODES = {
    "segm": Mode("segm", ("lvis-api", "lvis-api-challenge", "faster-coco-eval", "lveval", "lveval-parquet")),
}


def _files(data: Path) -> tuple[Path, Path, Path | None]:
    results = sorted(p for p in data.glob("dets_*.json"))
    if len(results) != 1:
        raise SystemExit(f"{data}: expected one dets_*.json results file, found {len(results)} (use --results)")
    pq = results[0].with_suffix(".parquet")
    return data / "gt.json", results[0], pq if pq.exists() else None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, help="a generate.py --segm output directory")
    ap.add_argument("--gt", type=Path)
    ap.add_argument("--results", type=Path, help="mask results JSON (the top-K file for AP-Fixed)")
    ap.add_argument("--parquet", type=Path, help="Parquet copy of --results")
    ap.add_argument("--modes", default="segm", help=f"comma list of {', '.join(MODES)}")
    ap.add_argument("--tools", help="comma list restricting every mode's tools")
    ap.add_argument("--protocols", default="fixed")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--lvis-api-path", type=Path, help="checkout of lvis-api's lvis_challenge_2021 branch")
    ap.add_argument("--timeout", type=float)
    ap.add_argument("--out", type=Path, default=Path("bench-out/masks"))
    args = ap.parse_args(argv)
    gt, results, parquet = (args.gt, args.results, args.parquet) if args.results else _files(args.data)
    gt = gt or (args.data / "gt.json")
    run = _run_module()
    rows, status = [], 0
    for name in [m.strip() for m in args.modes.split(",") if m.strip()]:
        if name not in MODES:
            ap.error(f"unknown mode {name!r} (known: {', '.join(MODES)})")
        mode = MODES[name]
        tools = [t for t in mode.tools if not args.tools or t in args.tools.split(",")]
        if not args.lvis_api_path and "lvis-api-challenge" in tools and not args.tools:
            tools.remove("lvis-api-challenge")
        if not parquet and "lveval-parquet" in tools:
            tools.remove("lveval-parquet")
        out = args.out / name
        cmd = ["--gt", str(gt), "--results", str(results), "--iou-type", mode.iou_type,
               "--tools", ",".join(tools), "--protocols", args.protocols, "--repeat", str(args.repeat),
               "--out", str(out)]
        if parquet:
            cmd += ["--parquet", str(parquet)]
        if args.lvis_api_path:
            cmd += ["--lvis-api-path", str(args.lvis_api_path)]
        if args.timeout:
            cmd += ["--timeout", str(args.timeout)]
        status |= run.main(cmd)
        for s in json.loads((out / "results.json").read_text())["summary"]:
            rows.append({"mode": name, **s})
    lines = [f"# lveval mask benchmark — {time.strftime('%Y-%m-%d %H:%M:%S')}", "",
             f"- GT `{gt}`, results `{results}`" + (f", Parquet `{parquet}`" if parquet else ""),
             f"- repeats: {args.repeat}; machine: {run._machine()}", "",
             "- tools run in rounds (each tool once per round); 'paired' is the median over rounds of "
             "lvis-api's wall time over the tool's in the same round", "",
             "| mode | protocol | tool | status | wall s (median) | speed-up vs lvis-api | paired speed-up | "
             "CPU s (median) | CPU speed-up | peak RSS MiB | AP | max abs Δ vs lvis-api |",
             "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        ref = next((o for o in rows if o["mode"] == r["mode"] and o["protocol"] == r["protocol"]
                    and o["tool"] == "lvis-api" and o["status"] == "ok"), None)
        speed = ref["wall_s_median"] / r["wall_s_median"] if ref and r["status"] == "ok" else None
        cpu = ref["cpu_s_median"] / r["cpu_s_median"] if ref and r["status"] == "ok" and ref.get("cpu_s_median") \
            and r.get("cpu_s_median") else None
        lines.append("| " + " | ".join([
            r["mode"], r["protocol"], r["tool"], r["status"] if r["status"] == "ok" else
            f"{r['status']}: {r.get('error', '')}"[:120].replace("|", "/"), run._f(r.get("wall_s_median"), ".2f"),
            run._f(speed, ".1f"), run._f(r.get("paired_speedup_vs_lvis_api"), ".1f"),
            run._f(r.get("cpu_s_median"), ".2f"), run._f(cpu, ".1f"),
            run._f(r.get("peak_rss_mib"), ".0f"), run._f(r.get("metrics", {}).get("AP"), ".4f"),
            run._f(r.get("max_abs_diff_vs_lvis_api"), ".1e")]) + " |")
    md = "\n".join(lines) + "\n"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "masks.md").write_text(md)
    (args.out / "masks.json").write_text(json.dumps(rows, indent=2))
    print(md)
    return status


if __name__ == "__main__":
    sys.exit(main())
