"""Time and compare LVIS evaluators on the same files, one subprocess per tool.

Tools:
  lvis-api          lvis 0.5.3 (the reference): LVISResults(gt, res, max_dets) + LVISEval.run().
                    AP-Fixed: max_dets=-1 on a file already cut to the top K per class.
                    AP-Old:   max_dets=300 (per-image cap applied by LVISResults).
  lvis-api-challenge  lvis-api's lvis_challenge_2021 branch from a checkout (--lvis-api-path):
                    LVISResults(max_dets_per_cat=K, max_dets_per_im=-1) for AP-Fixed.
  faster-coco-eval  COCOeval_faster(lvis_style=True) with its per-image, per-class cap
                    (params.maxDets, default 100) lifted to the number of detections.
                    AP-Old: the 300-per-image cap is applied by this harness before
                    loading, exactly as LVISResults.limit_dets_per_image does.
  lveval            its command line only: ``lveval evaluate GT RES --protocols fixed
                    --max-dets-per-class K --iou-type bbox --json OUT``.
  lveval-parquet    the same command on the Parquet copy of the results (--parquet).

Each run happens in its own process so its peak RSS is its own: measured by
``/usr/bin/time -v`` when present, else by polling the process tree with psutil.
Wall time is measured by this parent around the whole subprocess (interpreter
start, imports, JSON loading, evaluation), which is what a user waits for.
Tools run in rounds (each tool once per round, ``--repeat`` rounds), so a drift
of a shared machine's speed touches all of them alike; besides the ratio of the
medians, each tool gets the median over rounds of lvis-api's time divided by its
own in the same round (``paired_speedup_vs_lvis_api``).

Output (``--out DIR``): ``results.json`` (every run, the medians, agreement
check) and ``results.md`` (the table).  ``--topk-memory`` instead measures
``lveval topk RESULTS --per-class K --out OUT`` (and a NumPy reference
selection) on a large file.

A tool that is missing, crashes (e.g. std::bad_alloc), or times out becomes a
row with its status instead of stopping the run.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve()
TOOLS = ("lvis-api", "lvis-api-challenge", "faster-coco-eval", "lveval", "lveval-parquet")
PROTOCOLS = ("fixed", "old")
AGREEMENT_KEYS = ("AP", "APr", "APc", "APf", "APs", "APm", "APl")
REPORT_KEYS = ("AP", "AP50", "AP75", "APs", "APm", "APl", "APr", "APc", "APf", "AR")
TOLERANCE = 1e-9
DEFAULT_LVEVAL_ARGS = {
    "fixed": "evaluate {gt} {results} --protocols fixed --max-dets-per-class {k} --iou-type {iou} --json {out} --quiet",
    "old": "evaluate {gt} {results} --protocols old --max-dets-per-image {m} --iou-type {iou} --json {out} --quiet",
}
DEFAULT_TOPK_ARGS = "topk {results} --per-class {k} --out {out} --quiet"


# --------------------------------------------------------------------------- workers
# These run inside the measured subprocess and import the tool under test only there.

def _segm_results(a):
    """Results for the reference tools.  In segm mode, like detectron2's LVIS
    evaluator, drop ``bbox`` so that small/medium/large come from the mask area:
    lvis-api (and faster-coco-eval) would otherwise take the box area, a rule
    lveval deliberately does not copy.  Otherwise the path, read by the tool."""
    if a.iou_type != "segm" or a.keep_segm_bbox:
        return a.results
    with open(a.results) as f:
        anns = json.load(f)
    for ann in anns:
        ann.pop("bbox", None)
    return anns


def _worker_lvis_api(a) -> dict:
    import numpy

    numpy.float = float  # lvis 0.5.3 still uses the removed alias
    from lvis import LVIS, LVISEval, LVISResults

    t0 = time.perf_counter()
    gt = LVIS(a.gt)
    max_dets = -1 if a.protocol == "fixed" else a.max_dets_per_image
    dt = LVISResults(gt, _segm_results(a), max_dets=max_dets)
    t1 = time.perf_counter()
    ev = LVISEval(gt, dt, iou_type=a.iou_type)
    ev.params.max_dets = max_dets
    ev.evaluate()
    t2 = time.perf_counter()
    ev.accumulate()
    ev.summarize()
    t3 = time.perf_counter()
    res = dict(ev.get_results())
    metrics = {k: float(res[k]) for k in REPORT_KEYS if k in res}
    metrics["AR"] = float(next(v for k, v in res.items() if k.startswith("AR@")))
    return {"metrics": metrics, "phases": {"load": t1 - t0, "evaluate": t2 - t1, "accumulate": t3 - t2}}


def _worker_lvis_api_challenge(a) -> dict:
    """lvis-api's lvis_challenge_2021 branch, imported from the checkout ``--lvis-api-path``:
    ``LVISResults(gt, res, max_dets_per_cat=K, max_dets_per_im=-1)`` for AP-Fixed (its own top-K
    per class), ``max_dets_per_cat=-1, max_dets_per_im=300`` for AP-Old, then ``LVISEval.run()``."""
    import numpy

    numpy.float = float
    sys.path.insert(0, a.lvis_api_path)
    import lvis
    from lvis import LVIS, LVISEval, LVISResults

    if not str(Path(lvis.__file__).resolve()).startswith(str(Path(a.lvis_api_path).resolve())):
        raise RuntimeError(f"lvis imported from {lvis.__file__}, not from {a.lvis_api_path}")
    t0 = time.perf_counter()
    gt = LVIS(a.gt)
    if a.protocol == "fixed":
        dt = LVISResults(gt, _segm_results(a), max_dets_per_cat=a.k, max_dets_per_im=-1)
    else:
        dt = LVISResults(gt, _segm_results(a), max_dets_per_cat=-1, max_dets_per_im=a.max_dets_per_image)
    t1 = time.perf_counter()
    ev = LVISEval(gt, dt, iou_type=a.iou_type)
    if a.protocol == "fixed":
        ev.params.max_dets, ev.params.max_dets_per_cat = -1, a.k
    else:
        ev.params.max_dets, ev.params.max_dets_per_cat = a.max_dets_per_image, -1
    ev.evaluate()
    t2 = time.perf_counter()
    ev.accumulate()
    ev.summarize()
    t3 = time.perf_counter()
    res = dict(ev.get_results())
    metrics = {k: float(res[k]) for k in REPORT_KEYS if k in res}
    metrics["AR"] = float(next(v for k, v in res.items() if k.startswith("AR@")))
    return {"metrics": metrics, "phases": {"load": t1 - t0, "evaluate": t2 - t1, "accumulate": t3 - t2}}


def cap_per_image(anns: list[dict], max_dets: int) -> list[dict]:
    """AP-Old's cap exactly as lvis-api's LVISResults.limit_dets_per_image: group by
    image in first-seen order, keep each image's top ``max_dets`` by a stable
    descending sort on score."""
    by_img: dict = {}
    for ann in anns:
        by_img.setdefault(ann["image_id"], []).append(ann)
    out = []
    for group in by_img.values():
        if len(group) > max_dets:
            group = sorted(group, key=lambda d: d["score"], reverse=True)[:max_dets]
        out.extend(group)
    return out


def fce_cap(anns: list[dict], how: str) -> int:
    """faster-coco-eval's ``params.maxDets[-1]`` caps detections per (image, class)
    pair (COCO semantics; default 100).  "auto" lifts it exactly: the largest
    number of detections any pair has.  "total" uses the number of detections,
    which its C++ core turns into allocations of that size (std::bad_alloc at
    ~2M detections).  An integer is used as given."""
    if how == "total":
        return max(len(anns), 1)
    if how != "auto":
        return int(how)
    counts: dict = {}
    for d in anns:
        key = (d["image_id"], d["category_id"])
        counts[key] = counts.get(key, 0) + 1
    return max(counts.values(), default=1)


def _worker_faster_coco_eval(a) -> dict:
    from faster_coco_eval import COCO, COCOeval_faster

    t0 = time.perf_counter()
    gt = COCO(a.gt)
    res = _segm_results(a)
    if a.protocol == "old":  # it has no per-image cap: apply lvis-api's first
        if isinstance(res, str):
            with open(res) as f:
                res = json.load(f)
        res = cap_per_image(res, a.max_dets_per_image)
    dt = gt.loadRes(res)  # a path: its own JSON loader
    cap = fce_cap(dt.dataset["annotations"], a.fce_cap)
    t1 = time.perf_counter()
    ev = COCOeval_faster(gt, dt, iouType=a.iou_type, lvis_style=True, print_function=lambda *x: None)
    ev.params.maxDets = [cap]
    ev.evaluate()
    t2 = time.perf_counter()
    ev.accumulate()
    ev.summarize()
    t3 = time.perf_counter()
    s = ev.stats_as_dict
    names = {"AP": "AP_all", "AP50": "AP_50", "AP75": "AP_75", "APs": "AP_small", "APm": "AP_medium",
             "APl": "AP_large", "APr": "APr", "APc": "APc", "APf": "APf", "AR": "AR_all",
             "ARs": "AR_small", "ARm": "AR_medium", "ARl": "AR_large"}
    metrics = {k: float(s[v]) for k, v in names.items() if v in s}
    return {"metrics": metrics, "max_dets_param": ev.params.maxDets,
            "phases": {"load": t1 - t0, "evaluate": t2 - t1, "accumulate": t3 - t2}}


def _worker_numpy_topk(a) -> dict:
    """Reference top-K selection (orjson + NumPy stable lexsort), for --topk-memory."""
    import numpy as np
    import orjson

    with open(a.results, "rb") as f:
        anns = orjson.loads(f.read())
    cat = np.fromiter((d["category_id"] for d in anns), np.int64, len(anns))
    score = np.fromiter((d["score"] for d in anns), np.float64, len(anns))
    order = np.lexsort((-score, cat))
    starts = np.searchsorted(cat[order], cat[order])
    keep = np.sort(order[(np.arange(cat.size) - starts) < a.k])
    with open(a.out_json, "wb") as f:
        f.write(orjson.dumps([anns[i] for i in keep.tolist()]))
    return {"n_in": len(anns), "n_out": int(keep.size)}


WORKERS = {"lvis-api": _worker_lvis_api, "lvis-api-challenge": _worker_lvis_api_challenge,
           "faster-coco-eval": _worker_faster_coco_eval, "numpy-topk": _worker_numpy_topk}


def worker_main(argv: list[str]) -> int:
    """Entry of the measured subprocess: run one tool once, write its JSON report."""
    ap = argparse.ArgumentParser()
    ap.add_argument("tool", choices=sorted(WORKERS))
    ap.add_argument("--gt")
    ap.add_argument("--results", required=True)
    ap.add_argument("--protocol", default="fixed")
    ap.add_argument("--iou-type", default="bbox")
    ap.add_argument("--max-dets-per-image", type=int, default=300)
    ap.add_argument("--k", type=int, default=10000)
    ap.add_argument("--report", required=True)
    ap.add_argument("--out-json")
    ap.add_argument("--fce-cap", default="auto")
    ap.add_argument("--keep-segm-bbox", action="store_true")
    ap.add_argument("--lvis-api-path")
    a = ap.parse_args(argv)
    try:
        rep = {"status": "ok", **WORKERS[a.tool](a)}
        code = 0
    except BaseException as e:  # noqa: BLE001 - a failing tool is a result, e.g. MemoryError from bad_alloc
        rep = {"status": "failed", "error": f"{type(e).__name__}: {e}"[:2000]}
        code = 3
    Path(a.report).write_text(json.dumps(rep))
    return code


# --------------------------------------------------------------------------- measuring

def _parse_gnu_time(path: Path) -> dict:
    out = {}
    for line in path.read_text(errors="replace").splitlines():
        line = line.strip()
        if line.startswith("Maximum resident set size (kbytes):"):
            out["peak_rss_mib"] = int(line.rsplit(":", 1)[1]) / 1024
        elif line.startswith(("User time (seconds):", "System time (seconds):")):   # CPU: less noisy when shared
            out["cpu_s"] = out.get("cpu_s", 0.0) + float(line.rsplit(":", 1)[1])
        elif line.startswith("Command terminated by signal"):
            out["signal"] = int(line.rsplit(" ", 1)[1])
    return out


def _set_mem_limit(limit_bytes: int | None):
    if not limit_bytes:
        return None

    def apply():
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (limit_bytes, limit_bytes))

    return apply


def measure(cmd: list[str], timeout: float | None, mem_limit_gb: float | None, workdir: Path,
            rss_method: str = "auto") -> dict:
    """Run ``cmd`` once; return wall seconds, peak RSS (MiB), exit code, stderr tail."""
    gnu_time = shutil.which("time", path="/usr/bin") if rss_method in ("auto", "gnu-time") else None
    if rss_method == "gnu-time" and not gnu_time:
        raise SystemExit("--rss-method gnu-time: /usr/bin/time not found")
    time_file = workdir / "time.txt"
    full = [gnu_time, "-v", "-o", str(time_file), *cmd] if gnu_time else cmd
    preexec = _set_mem_limit(int(mem_limit_gb * 2**30) if mem_limit_gb else None)
    err_path = workdir / "stderr.txt"
    t0 = time.perf_counter()
    peak = 0
    with open(err_path, "wb") as err:
        proc = subprocess.Popen(full, stdout=subprocess.DEVNULL, stderr=err, preexec_fn=preexec)
        timed_out = False
        if gnu_time:
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                timed_out = True
        else:
            import psutil

            ps = psutil.Process(proc.pid)
            while proc.poll() is None:
                try:
                    peak = max(peak, sum(p.memory_info().rss for p in [ps, *ps.children(recursive=True)]))
                except psutil.Error:
                    pass
                if timeout and time.perf_counter() - t0 > timeout:
                    timed_out = True
                    break
                time.sleep(0.05)
        if timed_out:
            proc.kill()  # the child we started, by its handle
            proc.wait()
    wall = time.perf_counter() - t0
    out = {"wall_s": wall, "returncode": proc.returncode, "timed_out": timed_out,
           "rss_method": "gnu-time" if gnu_time else "psutil-poll"}
    if gnu_time and time_file.exists():
        out.update(_parse_gnu_time(time_file))
    elif peak:
        out["peak_rss_mib"] = peak / 2**20
    tail = err_path.read_text(errors="replace")[-1500:]
    if tail.strip():
        out["stderr_tail"] = tail
    return out


def lveval_available(exe: str | None, subcommand: str) -> tuple[bool, str]:
    """True when ``lveval SUBCOMMAND --help`` runs; else the reason."""
    if not exe:
        return False, "lveval executable not found"
    try:
        p = subprocess.run([exe, subcommand, "--help"], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as e:
        return False, f"{type(e).__name__}: {e}"
    if p.returncode != 0:
        return False, (p.stderr.strip().splitlines() or [f"exit {p.returncode}"])[-1][:300]
    return True, ""


def find_lveval(explicit: str | None) -> str | None:
    if explicit:
        return explicit
    beside = Path(sys.executable).with_name("lveval")
    return str(beside) if beside.exists() else shutil.which("lveval")


def _lveval_metrics(path: Path, protocol: str) -> dict:
    data = json.loads(path.read_text())
    metrics = {k: float(v) for k, v in data[protocol].items() if isinstance(v, (int, float))}
    pooled = data.get("pooled")
    return {"metrics": metrics, "pooled": pooled}


def warm_bytecode() -> None:
    """Write the bytecode caches of lveval and lvis-api before timing, as any install leaves them:
    an environment that does not write them (PYTHONDONTWRITEBYTECODE) would otherwise charge every
    run the compilation of sources changed since the last cache (an editable checkout's)."""
    import compileall
    import importlib.util

    for name in ("lveval", "lvis"):
        spec = importlib.util.find_spec(name)
        for d in (spec.submodule_search_locations or []) if spec else []:
            compileall.compile_dir(d, quiet=1)


def _paired_ratios(summary: list, by_tool: dict, protocol: str) -> None:
    """Each tool's median over rounds of lvis-api's wall time divided by its own in the same round."""
    ref = by_tool.get("lvis-api")
    if not ref:
        return
    for s in summary:
        rows = by_tool.get(s["tool"]) if s.get("protocol") == protocol else None
        if not rows or s["tool"] == "lvis-api":
            continue
        r = [a["wall_s"] / b["wall_s"] for a, b in zip(ref, rows)
             if a.get("status") == "ok" and b.get("status") == "ok" and b["wall_s"] > 0]
        if r:
            s["paired_speedup_vs_lvis_api"] = statistics.median(r)


def run_once(tool: str, protocol: str, args, lveval_exe: str | None, workdir: Path) -> dict:
    """One measured run of one tool on one protocol."""
    report = workdir / "report.json"
    results = args.results_old if protocol == "old" and args.results_old else args.results
    if tool == "lveval-parquet":
        results = args.parquet_old if protocol == "old" and args.parquet_old else args.parquet
    if tool.startswith("lveval"):
        out = workdir / "lveval.json"
        template = args.lveval_old_args if protocol == "old" else args.lveval_fixed_args
        cmd = [lveval_exe, *shlex.split(template.format(gt=shlex.quote(str(args.gt)),
                                                        results=shlex.quote(str(results)),
                                                        out=shlex.quote(str(out)), k=args.max_dets_per_class,
                                                        m=args.max_dets_per_image, iou=args.iou_type))]
    else:
        cmd = [sys.executable, str(HERE), "_worker", tool, "--gt", str(args.gt), "--results", str(results),
               "--protocol", protocol, "--iou-type", args.iou_type,
               "--max-dets-per-image", str(args.max_dets_per_image), "--k", str(args.max_dets_per_class),
               "--report", str(report), "--fce-cap", args.fce_cap]
        if args.keep_segm_bbox:
            cmd.append("--keep-segm-bbox")
        if tool == "lvis-api-challenge":
            cmd += ["--lvis-api-path", str(args.lvis_api_path)]
    m = measure(cmd, args.timeout, args.mem_limit_gb, workdir, args.rss_method)
    row = {"tool": tool, "protocol": protocol, "results": str(results), "command": shlex.join(cmd), **m}
    if tool.startswith("lveval"):
        if m["returncode"] == 0 and (workdir / "lveval.json").exists():
            try:
                row.update(status="ok", **_lveval_metrics(workdir / "lveval.json", protocol))
            except (KeyError, ValueError) as e:
                row.update(status="failed", error=f"unreadable lveval JSON: {e}")
        else:
            row.update(status="failed")
    elif report.exists():
        row.update(json.loads(report.read_text()))
    else:
        row["status"] = "failed"
    if m.get("timed_out"):
        row["status"] = "timeout"
    elif row["status"] == "failed" and "error" not in row:
        sig = m.get("signal") or (-m["returncode"] if m["returncode"] < 0 else None)
        row["error"] = (f"killed by signal {sig}" if sig else f"exit {m['returncode']}") + (
            ": " + m["stderr_tail"].strip().splitlines()[-1] if m.get("stderr_tail") else "")
    return row


# --------------------------------------------------------------------------- reporting

def summarise(runs: list[dict]) -> dict:
    """Median/min wall time and max peak RSS over repeats of one (tool, protocol)."""
    ok = [r for r in runs if r["status"] == "ok"]
    base = ok[0] if ok else runs[0]
    s = {"tool": base["tool"], "protocol": base["protocol"], "status": base["status"] if not ok else "ok",
         "repeats": len(runs), "ok_repeats": len(ok)}
    if not ok:
        s["error"] = base.get("error", base["status"])
        rss = [r["peak_rss_mib"] for r in runs if "peak_rss_mib" in r]
        if rss:
            s["peak_rss_mib"] = max(rss)
        s["wall_s_median"] = statistics.median(r["wall_s"] for r in runs)
        return s
    s["wall_s_median"] = statistics.median(r["wall_s"] for r in ok)
    s["wall_s_min"] = min(r["wall_s"] for r in ok)
    if all("cpu_s" in r for r in ok):
        s["cpu_s_median"] = statistics.median(r["cpu_s"] for r in ok)
    rss = [r["peak_rss_mib"] for r in ok if "peak_rss_mib" in r]
    s["peak_rss_mib"] = max(rss) if rss else None
    s["metrics"] = ok[0].get("metrics", {})
    if ok[0].get("pooled") is not None:
        s["pooled"] = ok[0]["pooled"]
    if ok[0].get("phases"):
        s["phases_s_median"] = {k: statistics.median(r["phases"][k] for r in ok) for k in ok[0]["phases"]}
    # Repeats of a deterministic tool must agree with themselves.
    s["repeat_spread"] = max((abs(r["metrics"].get(k, 0) - s["metrics"].get(k, 0))
                              for r in ok for k in s["metrics"]), default=0.0)
    return s


def add_comparisons(summary: list[dict]) -> None:
    """Ratios vs lveval and AP agreement vs lvis-api, per protocol."""
    for s in summary:
        same = {o["tool"]: o for o in summary if o["protocol"] == s["protocol"] and o["status"] == "ok"}
        lv = same.get("lveval")
        if s["status"] == "ok" and lv:
            s["time_vs_lveval"] = s["wall_s_median"] / lv["wall_s_median"]
            if s.get("peak_rss_mib") and lv.get("peak_rss_mib"):
                s["rss_vs_lveval"] = s["peak_rss_mib"] / lv["peak_rss_mib"]
        ref = same.get("lvis-api")
        if s["status"] == "ok" and ref and s["tool"] != "lvis-api":
            diffs = {k: abs(s["metrics"][k] - ref["metrics"][k])
                     for k in AGREEMENT_KEYS if k in s["metrics"] and k in ref["metrics"]}
            missing = [k for k in AGREEMENT_KEYS if k not in diffs]
            s["max_abs_diff_vs_lvis_api"] = max(diffs.values()) if diffs else None
            s["diff_by_key"] = diffs
            s["agrees"] = bool(diffs) and not missing and max(diffs.values()) <= TOLERANCE
            if missing:
                s["missing_keys"] = missing


def _f(x, fmt):
    return "–" if x is None else format(x, fmt)


def markdown(summary: list[dict], meta: dict) -> str:
    lines = [f"# lveval benchmark — {meta['date']}", "",
             f"- GT: `{meta['gt']}` ({meta['gt_mib']:.1f} MiB)",
             f"- results: `{meta['results']}` ({meta['results_mib']:.1f} MiB)"
             + (f"; AP-Old results: `{meta['results_old']}`" if meta.get("results_old") else "")
             + (f"; Parquet: `{meta['parquet']}`" if meta.get("parquet") else "")
             + (f", `{meta['parquet_old']}`" if meta.get("parquet_old") else ""),
             f"- iou type: {meta['iou_type']}; K = {meta['max_dets_per_class']} per class (fixed); "
             f"{meta['max_dets_per_image']} per image (old); repeats: {meta['repeat']}",
             f"- machine: {meta['machine']}", "",
             "| protocol | tool | status | wall s (median) | wall s (min) | peak RSS MiB | time ÷ lveval "
             "| RSS ÷ lveval | AP | APr | APc | APf | APs | APm | APl | max abs Δ vs lvis-api | agrees (≤1e-9) |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for s in summary:
        m = s.get("metrics", {})
        status = s["status"] if s["status"] == "ok" else f"{s['status']}: {s.get('error', '')}".replace("|", "/")
        agrees = {True: "yes", False: "**NO**"}.get(s.get("agrees"), "ref" if s["tool"] == "lvis-api" else "–")
        lines.append("| " + " | ".join([
            s["protocol"], s["tool"], status[:160], _f(s.get("wall_s_median"), ".2f"), _f(s.get("wall_s_min"), ".2f"),
            _f(s.get("peak_rss_mib"), ".0f"), _f(s.get("time_vs_lveval"), ".2f"), _f(s.get("rss_vs_lveval"), ".2f"),
            *[_f(m.get(k), ".4f") for k in ("AP", "APr", "APc", "APf", "APs", "APm", "APl")],
            _f(s.get("max_abs_diff_vs_lvis_api"), ".2e"), agrees]) + " |")
    pooled = [s for s in summary if s.get("pooled")]
    if pooled:
        lines += ["", "lveval AP-Pool: " + "; ".join(
            f"{s['protocol']}: " + ", ".join(f"{k} {v:.4f}" for k, v in s["pooled"].items()
                                             if isinstance(v, (int, float))) for s in pooled)]
    return "\n".join(lines) + "\n"


def _machine() -> str:
    import platform

    try:
        import psutil

        mem = f"{psutil.virtual_memory().total / 2**30:.0f} GiB"
    except ImportError:
        mem = "?"
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, {mem}, Python {platform.python_version()}"


def _mib(p) -> float:
    return Path(p).stat().st_size / 2**20 if p and Path(p).exists() else 0.0


def _same_bytes(a: Path, b: Path) -> bool:
    """Byte equality up to trailing whitespace, compared in blocks (bounded memory)."""
    import mmap

    with open(a, "rb") as fa, open(b, "rb") as fb:
        if os.fstat(fa.fileno()).st_size == 0 or os.fstat(fb.fileno()).st_size == 0:
            return fa.read().strip() == fb.read().strip()
        with mmap.mmap(fa.fileno(), 0, access=mmap.ACCESS_READ) as ma, \
                mmap.mmap(fb.fileno(), 0, access=mmap.ACCESS_READ) as mb:
            def end(m):
                n = len(m)
                while n and m[n - 1:n].isspace():
                    n -= 1
                return n

            n = end(ma)
            if n != end(mb):
                return False
            block = 64 << 20
            return all(ma[i:min(i + block, n)] == mb[i:min(i + block, n)] for i in range(0, n, block))


def _same_records(a: Path, b: Path) -> bool:
    """Whether two results files hold the same records in the same order: byte
    equality first (cheap), else both are parsed and compared."""
    import orjson

    if _same_bytes(a, b):
        return True

    def load(p):
        p = Path(p)
        if p.suffix in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            return [{**r, "bbox": list(r["bbox"])} for r in pq.read_table(p).to_pylist()]
        text = p.read_bytes()
        if p.suffix in (".jsonl", ".ndjson"):
            return [orjson.loads(line) for line in text.splitlines() if line.strip()]
        return orjson.loads(text)

    return load(a) == load(b)


def topk_memory(args, lveval_exe) -> int:
    """Peak RSS of per-class top-K selection on a big results file."""
    rows = []
    ok, why = lveval_available(lveval_exe, "topk")
    tools = [t for t, name in (("lveval", "lveval"), ("numpy-topk", "reference")) if name in args.topk_tools]
    if args.results.suffix != ".json" and "numpy-topk" in tools:
        tools.remove("numpy-topk")  # the reference reads JSON arrays only
    for tool in tools:
        for rep in range(args.repeat):
            with tempfile.TemporaryDirectory(dir=args.out) as td:
                wd = Path(td)
                out = wd / ("topk" + args.results.suffix)  # same format as the input
                if tool == "lveval":
                    if not ok:
                        rows.append({"tool": tool, "status": "not available", "error": why})
                        break
                    cmd = [lveval_exe, *shlex.split(args.topk_args.format(
                        results=shlex.quote(str(args.results)), k=args.max_dets_per_class, out=shlex.quote(str(out))))]
                else:
                    cmd = [sys.executable, str(HERE), "_worker", "numpy-topk", "--results", str(args.results),
                           "--k", str(args.max_dets_per_class), "--out-json", str(out), "--report", str(wd / "r.json")]
                m = measure(cmd, args.timeout, args.mem_limit_gb, wd, args.rss_method)
                row = {"tool": tool, "repeat": rep, "command": shlex.join(cmd), **m,
                       "status": "ok" if m["returncode"] == 0 else ("timeout" if m["timed_out"] else "failed"),
                       "out_mib": _mib(out)}
                if args.topk_expected and row["status"] == "ok":
                    row["matches_expected"] = _same_records(out, args.topk_expected)
                rows.append(row)
    meta = {"mode": "topk-memory", "results": str(args.results), "results_mib": _mib(args.results),
            "k": args.max_dets_per_class, "machine": _machine(), "date": time.strftime("%Y-%m-%d %H:%M:%S")}
    (args.out / "topk_memory.json").write_text(json.dumps({"meta": meta, "runs": rows}, indent=2))
    md = [f"# per-class top-K memory — {meta['date']}", "",
          f"- input: `{meta['results']}` ({meta['results_mib']:.0f} MiB), K = {meta['k']}", f"- machine: {meta['machine']}", "",
          "| tool | status | wall s | peak RSS MiB | output MiB | same records as expected |",
          "|---|---|---:|---:|---:|---|"]
    for r in rows:
        st = r["status"] if r["status"] == "ok" else f"{r['status']}: {r.get('error', r.get('stderr_tail', ''))}"
        md.append(f"| {r['tool']} | {st.strip()[:160]} | {_f(r.get('wall_s'), '.2f')} | "
                  f"{_f(r.get('peak_rss_mib'), '.0f')} | {_f(r.get('out_mib'), '.1f')} | "
                  f"{ {True: 'yes', False: '**NO**'}.get(r.get('matches_expected'), '–')} |")
    (args.out / "topk_memory.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "_worker":
        return worker_main(argv[1:])
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gt", type=Path, help="LVIS-format ground truth JSON")
    ap.add_argument("--results", type=Path, required=True,
                    help="results JSON; for AP-Fixed it should be the top-K-per-class file")
    ap.add_argument("--results-old", type=Path, help="results for AP-Old (default: --results), e.g. all candidates")
    ap.add_argument("--parquet", type=Path, help="Parquet copy of --results, for the lveval-parquet tool")
    ap.add_argument("--parquet-old", type=Path, help="Parquet copy of --results-old")
    ap.add_argument("--tools", default=None,
                    help=f"comma list of {', '.join(TOOLS)} (default: all; lveval-parquet only with --parquet)")
    ap.add_argument("--protocols", default="fixed", help="comma list of fixed, old")
    ap.add_argument("--max-dets-per-class", type=int, default=10000, help="K of AP-Fixed")
    ap.add_argument("--max-dets-per-image", type=int, default=300, help="per-image cap of AP-Old")
    ap.add_argument("--iou-type", choices=("bbox", "segm"), default="bbox")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--out", type=Path, default=Path("bench-out/run"))
    ap.add_argument("--timeout", type=float, default=None, help="seconds per run")
    ap.add_argument("--mem-limit-gb", type=float, default=None, help="RLIMIT_AS for each run")
    ap.add_argument("--keep-segm-bbox", action="store_true",
                    help="segm: let lvis-api/faster-coco-eval see the results' boxes (they then size results by "
                         "box area, unlike lveval); by default the boxes are dropped, as detectron2 does")
    ap.add_argument("--rss-method", choices=("auto", "gnu-time", "psutil"), default="auto",
                    help="peak RSS from /usr/bin/time -v (auto: when present) or by polling with psutil")
    ap.add_argument("--fce-cap", default="auto",
                    help="faster-coco-eval per-(image, class) cap: auto (max pair count), total, or an integer")
    ap.add_argument("--lvis-api-path", type=Path,
                    help="a checkout of lvis-api's lvis_challenge_2021 branch: enables the lvis-api-challenge tool")
    ap.add_argument("--lveval", help="path of the lveval executable (default: beside this Python, then PATH)")
    ap.add_argument("--lveval-fixed-args", default=DEFAULT_LVEVAL_ARGS["fixed"])
    ap.add_argument("--lveval-old-args", default=DEFAULT_LVEVAL_ARGS["old"])
    ap.add_argument("--topk-memory", action="store_true", help="measure `lveval topk` on --results instead")
    ap.add_argument("--topk-args", default=DEFAULT_TOPK_ARGS)
    ap.add_argument("--topk-tools", default="lveval,reference", help="lveval and/or reference (orjson+NumPy)")
    ap.add_argument("--topk-expected", type=Path,
                    help="results file the selection must reproduce record for record, e.g. generate.py's "
                         "--per-class-topk output (loaded whole: keep it below ~1 GB)")
    args = ap.parse_args(argv)

    args.out.mkdir(parents=True, exist_ok=True)
    lveval_exe = find_lveval(args.lveval)
    warm_bytecode()
    if args.topk_memory:
        return topk_memory(args, lveval_exe)
    if args.gt is None:
        ap.error("--gt is required")
    tools = [t.strip() for t in (args.tools or ",".join(TOOLS)).split(",") if t.strip()]
    if args.tools is None and not args.parquet:
        tools.remove("lveval-parquet")
    if args.tools is None and not args.lvis_api_path:
        tools.remove("lvis-api-challenge")
    protocols = [p.strip() for p in args.protocols.split(",") if p.strip()]
    for name, allowed, given in (("tool", TOOLS, tools), ("protocol", PROTOCOLS, protocols)):
        bad = [g for g in given if g not in allowed]
        if bad:
            ap.error(f"unknown {name}: {', '.join(bad)}")

    available = {t: (True, "") for t in tools}
    for t in ("lveval", "lveval-parquet"):
        if t in tools:
            available[t] = lveval_available(lveval_exe, "evaluate")
    if "lveval-parquet" in tools and not args.parquet:
        available["lveval-parquet"] = (False, "no --parquet file given")
    if "lvis-api-challenge" in tools and not (args.lvis_api_path and (args.lvis_api_path / "lvis").is_dir()):
        available["lvis-api-challenge"] = (False, "no --lvis-api-path checkout (with an lvis/ package) given")
    runs, summary = [], []
    for protocol in protocols:
        live = []
        for tool in tools:
            ok, why = available[tool]
            if ok and tool == "lveval-parquet" and protocol == "old" and args.results_old and not args.parquet_old:
                ok, why = False, "no --parquet-old file given"
            if not ok:
                summary.append({"tool": tool, "protocol": protocol, "status": "not available", "error": why})
                print(f"[{protocol}] {tool}: not available ({why})", flush=True)
                continue
            live.append(tool)
        # rounds: every tool once per round, so a drift of the machine's speed during the call touches
        # every tool alike (and each round's ratio to lvis-api is a paired comparison)
        by_tool: dict = {t: [] for t in live}
        for rep in range(args.repeat):
            for tool in live:
                with tempfile.TemporaryDirectory(dir=args.out) as td:
                    row = run_once(tool, protocol, args, lveval_exe, Path(td))
                row["repeat"] = rep
                by_tool[tool].append(row)
                print(f"[{protocol}] {tool} #{rep}: {row['status']} {row['wall_s']:.2f}s "
                      f"{row.get('peak_rss_mib', float('nan')):.0f} MiB AP={row.get('metrics', {}).get('AP')}",
                      flush=True)
        for tool in live:
            runs += by_tool[tool]
            summary.append(summarise(by_tool[tool]))
        _paired_ratios(summary, by_tool, protocol)
    add_comparisons(summary)
    meta = {"date": time.strftime("%Y-%m-%d %H:%M:%S"), "gt": str(args.gt), "gt_mib": _mib(args.gt),
            "results": str(args.results), "results_mib": _mib(args.results),
            "results_old": str(args.results_old) if args.results_old else None,
            "parquet": str(args.parquet) if args.parquet else None,
            "parquet_old": str(args.parquet_old) if args.parquet_old else None,
            "iou_type": args.iou_type, "max_dets_per_class": args.max_dets_per_class,
            "max_dets_per_image": args.max_dets_per_image, "repeat": args.repeat, "machine": _machine(),
            "tolerance": TOLERANCE}
    (args.out / "results.json").write_text(json.dumps({"meta": meta, "summary": summary, "runs": runs}, indent=2))
    md = markdown(summary, meta)
    (args.out / "results.md").write_text(md)
    print(md)
    # Exit 1 when lveval disagrees with lvis-api: the harness doubles as an exactness check.
    disagree = [s for s in summary if s.get("agrees") is False and s["tool"].startswith("lveval")]
    return 1 if disagree else 0


if __name__ == "__main__":
    sys.exit(main())
