"""Fault injection: convert, topk, partition, evaluate --json and report are stopped with SIGTERM and
SIGINT at random points of their run. Each run must end with exit status 128 + the signal (or 0 when
it finished first) and at most one line on stderr, without a traceback, leave no temporary file, and
leave the outputs of an earlier run byte for byte as they were (every command's output is
deterministic, so a finished run rewrites the same bytes)."""
from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import orjson
import pytest

from tests.reliability.relkit import LVEVAL

pytestmark = pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs /proc")
RUNS_PER_COMBINATION = 5           # 5 commands x 2 signals x 5 = 50 runs
COMMANDS = {
    "convert": lambda d: ["convert", d / "r.json", d / "out" / "converted.parquet"],
    "topk": lambda d: ["topk", d / "r.json", "--max-dets-per-class", "50", "--out", d / "out" / "top.jsonl"],
    "partition": lambda d: ["partition", d / "r.json", d / "out" / "parts", "--shards", "6"],
    "evaluate": lambda d: ["evaluate", d / "gt.json", d / "r.json", "--json", d / "out" / "figures.json"],
    "report": lambda d: ["report", d / "gt.json", d / "r.json", "--out", d / "out" / "report"],
}


def _snapshot(root) -> dict:
    """{relative path: sha256} of every file under ``root``."""
    out = {}
    for dirpath, _, files in os.walk(root):
        for f in files:
            p = os.path.join(dirpath, f)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, root)] = hashlib.sha256(fh.read()).hexdigest()
    return out


def _run(args, **kw):
    env = dict(os.environ)
    env.pop("LVEVAL_MEMORY_LIMIT", None)
    return subprocess.Popen(LVEVAL + [str(a) for a in args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, env=env, **kw)


@pytest.fixture(scope="module")
def workdirs(tmp_path_factory, lvis_path):
    """One directory per command: inputs, the outputs of a first (complete) run, and its duration."""
    from lveval.simulate import simulate

    res = simulate(lvis_path, seed=0, candidates_per_image=150)   # 15k detections, 1.2 MB
    base = tmp_path_factory.mktemp("signals")
    data = orjson.dumps(res)
    gt = open(lvis_path, "rb").read()
    dirs = {}
    for name, argv in COMMANDS.items():
        d = base / name
        (d / "out").mkdir(parents=True)
        (d / "r.json").write_bytes(data)
        (d / "gt.json").write_bytes(gt)
        t = time.perf_counter()
        p = _run(argv(d))
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        dirs[name] = (d, time.perf_counter() - t, _snapshot(d))
    return dirs


def _started(pid: int) -> bool:
    """Is lveval's own code running (numpy loaded, which lveval.cli's main does after installing its
    signal handlers)? The interpreter's start-up before that is not lveval's to clean up after."""
    try:
        with open(f"/proc/{pid}/maps") as f:
            return "_multiarray_umath" in f.read()
    except OSError:
        return False


def _one(name, sig, delay, workdirs):
    d, _, before = workdirs[name]
    p = _run(COMMANDS[name](d))
    t = time.perf_counter()
    while not _started(p.pid) and p.poll() is None and time.perf_counter() - t < 30:
        time.sleep(0.005)
    time.sleep(delay)
    p.send_signal(sig)
    _, err = p.communicate(timeout=120)
    return name, sig, delay, p.returncode, err, _snapshot(d), before


def test_signals_leave_no_partial_file_and_no_damaged_output(workdirs):
    rng = random.Random(16)
    plan = []
    for name in COMMANDS:
        _, duration, _ = workdirs[name]
        for sig in (signal.SIGTERM, signal.SIGINT):
            for _ in range(RUNS_PER_COMBINATION):
                plan.append((name, sig, rng.uniform(0, duration)))
    rng.shuffle(plan)
    assert len(plan) >= 50
    with ThreadPoolExecutor(max_workers=len(COMMANDS)) as pool:   # one directory per command, runs in turn
        by_cmd = {n: [p for p in plan if p[0] == n] for n in COMMANDS}
        futures = [pool.submit(lambda runs: [_one(*r, workdirs) for r in runs], runs) for runs in by_cmd.values()]
        outcomes = [o for f in futures for o in f.result()]
    interrupted = 0
    for name, sig, delay, rc, err, after, before in outcomes:
        what = f"{name} {signal.Signals(sig).name} after {delay:.2f} s: rc {rc}, stderr {err!r}"
        assert rc in (0, 128 + sig), what
        assert "Traceback" not in err and "Exception ignored" not in err, what
        if rc:
            interrupted += 1
            assert err.strip().splitlines() == [f"lveval: interrupted by {signal.Signals(sig).name}; "
                                                "no output was written or changed"], what
        assert after == before, what   # no temporary file left, the earlier outputs unchanged
    assert interrupted >= 25   # most signals arrived while the command was running
