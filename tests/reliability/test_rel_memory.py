"""Resource safety: a results file too large for the memory available is refused before it is read,
with a message pointing to ``lveval topk``, instead of an out-of-memory kill."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap

import orjson
import pytest

import lveval
from lveval.exceptions import ResourceError
from lveval.io import jsonfile
from lveval.io.results import load_results
from tests.reliability.relkit import results_list, run_cli

MESSAGE = re.compile(r"^(?P<path>.+) is [\d.]+ (bytes|KB|MB|GB); evaluating it needs about [\d.]+ (bytes|KB|MB|GB) "
                     r"but only (?P<avail>[\d.]+ (bytes|KB|MB|GB)) is available; reduce it with "
                     r"`lveval topk (?P=path) --max-dets-per-class 10000 --out smaller.json` first$")


@pytest.fixture
def many(tmp_path):
    p = tmp_path / "many.json"
    p.write_bytes(orjson.dumps(results_list() * 40))   # 200 detections, ~13 KB
    return p


def test_refused_before_reading(monkeypatch, many):
    monkeypatch.setenv("LVEVAL_MEMORY_LIMIT", "50000")

    def must_not_read(path):
        raise AssertionError("the file was read before the memory check")
    monkeypatch.setattr("lveval.io.results.read_bytes", must_not_read)
    with pytest.raises(ResourceError) as e:
        load_results(str(many))
    m = MESSAGE.match(str(e.value))
    assert m and m["path"] == str(many) and m["avail"] == "48.8 KB", str(e.value)   # 50000 / 1024


@pytest.mark.parametrize("limit", [str(1 << 30), "none"])
def test_enough_memory_or_check_off(monkeypatch, many, limit):
    monkeypatch.setenv("LVEVAL_MEMORY_LIMIT", limit)
    assert len(load_results(str(many))) == 200


def test_bad_override_is_reported(monkeypatch, many):
    monkeypatch.setenv("LVEVAL_MEMORY_LIMIT", "lots")
    with pytest.raises(ResourceError, match="LVEVAL_MEMORY_LIMIT must be a number of bytes"):
        load_results(str(many))


def test_jsonl_and_parquet_are_checked_too(monkeypatch, tmp_path, many):
    from lveval.io.results import write_results

    d = load_results(str(many))
    for ext in (".jsonl", ".parquet"):
        p = tmp_path / ("r" + ext)
        write_results(d, str(p))
        monkeypatch.setenv("LVEVAL_MEMORY_LIMIT", "20000")
        with pytest.raises(ResourceError, match="lveval topk"):
            load_results(str(p))
        monkeypatch.delenv("LVEVAL_MEMORY_LIMIT")
        assert len(load_results(str(p))) == 200


def test_available_memory_reads_meminfo_and_cgroup(monkeypatch, tmp_path):
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       16000000 kB\nMemFree:         1000000 kB\nMemAvailable:    8000000 kB\n")
    v2_max, v2_cur = tmp_path / "memory.max", tmp_path / "memory.current"
    monkeypatch.delenv("LVEVAL_MEMORY_LIMIT", raising=False)
    monkeypatch.setattr(jsonfile, "MEMINFO", str(meminfo))
    monkeypatch.setattr(jsonfile, "CGROUP_FILES", ((str(v2_max), str(v2_cur)),))
    assert jsonfile.available_memory() == 8000000 * 1024          # no cgroup files: MemAvailable
    v2_max.write_text("max\n")
    v2_cur.write_text("123\n")
    assert jsonfile.available_memory() == 8000000 * 1024          # an unlimited cgroup changes nothing
    v2_max.write_text(str(2 << 30))
    v2_cur.write_text(str(1 << 29))
    assert jsonfile.available_memory() == (2 << 30) - (1 << 29)   # the container's limit minus its usage
    monkeypatch.setattr(jsonfile, "MEMINFO", str(tmp_path / "absent"))
    monkeypatch.setattr(jsonfile, "CGROUP_FILES", ())
    assert jsonfile.available_memory() is None                     # unknown: no check


def _mem_total() -> int | None:
    try:
        with open("/proc/meminfo") as f:
            for ln in f:
                if ln.startswith("MemTotal:"):
                    return int(ln.split()[1]) * 1024
    except OSError:
        return None
    return None


@pytest.mark.parametrize("ext", [".json", ".jsonl"])
def test_file_far_larger_than_memory_is_refused_by_the_cli(tmp_path, gt_file, ext):
    """No override: the real MemAvailable/cgroup figures refuse a (sparse) file 4x the machine's memory."""
    total = _mem_total()
    if total is None:
        pytest.skip("needs /proc/meminfo")
    big = tmp_path / ("huge" + ext)
    with open(big, "wb") as f:
        f.truncate(4 * total)
    if os.stat(big).st_blocks * 512 > 1 << 20:
        os.unlink(big)
        pytest.skip("the file system does not keep sparse files sparse")
    out = tmp_path / "out.json"
    p = run_cli(["evaluate", gt_file, big, "--json", out])
    assert p.returncode == 2, p.stderr
    lines = p.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("lveval: error: ")
    assert MESSAGE.match(lines[0][len("lveval: error: "):]), lines[0]
    assert not out.exists()


PEAK = textwrap.dedent("""
    import os, sys
    import lveval, lveval.metrics
    from lveval.io.gt import load_gt
    from lveval.io.jsonfile import estimate_memory

    def high_water():   # VmHWM starts afresh at exec, unlike ru_maxrss
        for ln in open("/proc/self/status"):
            if ln.startswith("VmHWM:"):
                return int(ln.split()[1]) * 1024

    gt = load_gt(lveval.data_path())
    base = high_water()
    lveval.evaluate(gt, sys.argv[1])
    fmt = "jsonl" if sys.argv[1].endswith(".jsonl") else "json"
    print(high_water() - base, estimate_memory(sys.argv[1], os.path.getsize(sys.argv[1]), fmt))
""")


def test_estimate_is_not_below_the_real_peak(tmp_path):
    """The estimate must not promise less than an evaluation takes (that is the OOM it prevents),
    nor be so pessimistic that it refuses files that fit (within a factor 6)."""
    if not os.path.exists("/proc/self/status"):
        pytest.skip("needs /proc/self/status")
    from lveval.io.results import write_results
    from lveval.simulate import simulate

    res = simulate(lveval.data_path(), seed=0, candidates_per_image=1500)   # 150k detections
    p = tmp_path / "r.json"
    p.write_bytes(orjson.dumps(res))
    q = tmp_path / "r.jsonl"
    write_results(load_results(str(p)), str(q))
    for f in (p, q):
        r = subprocess.run([sys.executable, "-c", PEAK, str(f)], capture_output=True, text=True, check=True)
        grew, est = map(int, r.stdout.split())
        assert grew <= est <= 6 * grew, (f.name, grew, est)


def test_the_suggested_topk_command_works(tmp_path, gt_file):
    """Follow the message literally: run the `lveval topk ...` it names, then evaluate the smaller file
    (3 classes x 10,000 kept of 200k detections)."""
    big = tmp_path / "big.json"
    big.write_bytes(orjson.dumps(results_list() * 40_000))   # 200k detections, 13 MB
    est = jsonfile.estimate_memory(str(big), big.stat().st_size, "json")
    limit = {"LVEVAL_MEMORY_LIMIT": str(est * 2 // 3)}
    p = run_cli(["evaluate", gt_file, big, "--quiet"], env=limit)
    assert p.returncode == 2, p.stderr
    command = re.search(r"`lveval (topk [^`]+)`", p.stderr).group(1).split()
    assert command == ["topk", str(big), "--max-dets-per-class", "10000", "--out", "smaller.json"]
    r = subprocess.run([sys.executable, "-m", "lveval.cli", *command], cwd=tmp_path, capture_output=True,
                       text=True, env={**os.environ, **limit})
    assert r.returncode == 0, r.stderr
    p = run_cli(["evaluate", gt_file, tmp_path / "smaller.json", "--quiet"], env=limit)
    assert p.returncode == 0, p.stderr


# ---------------------------------------------------------------------------------------------
# issue 16: the ground truth, the vocabulary, record sizes and masks count too

VOCAB_PEAK = textwrap.dedent("""
    import json, os, sys
    import lveval, lveval.metrics
    from lveval.io.gt import load_gt
    from lveval.io.jsonfile import estimate_memory, gt_memory, vocabulary_memory

    def high_water():
        for ln in open("/proc/self/status"):
            if ln.startswith("VmHWM:"):
                return int(ln.split()[1]) * 1024

    base = high_water()
    gt = load_gt(sys.argv[1])
    after_gt = high_water()
    lveval.evaluate(gt, sys.argv[2])
    grew = high_water() - after_gt
    est = estimate_memory(sys.argv[2], os.path.getsize(sys.argv[2]), "json",
                          vocabulary=vocabulary_memory(gt.num_categories, gt.num_images))
    print(after_gt - base, gt_memory(os.path.getsize(sys.argv[1])), grew, est)
""")


def test_ground_truth_and_vocabulary_estimates_are_not_below_the_real_peaks(tmp_path):
    """A 4,000-class ground truth (the bundled images and annotations, every class defined): loading it
    and evaluating on it stay within the estimates, which are not more than 6x the peaks."""
    if not os.path.exists("/proc/self/status"):
        pytest.skip("needs /proc/self/status")
    from lveval.simulate import simulate

    g = orjson.loads(open(lveval.data_path(), "rb").read())
    top = max(c["id"] for c in g["categories"])
    g["categories"] += [{"id": top + 1 + i, "name": f"extra {i}", "frequency": "r"} for i in range(4000 - len(g["categories"]))]
    gp = tmp_path / "gt.json"
    gp.write_bytes(orjson.dumps(g))
    rp = tmp_path / "r.json"
    rp.write_bytes(orjson.dumps(simulate(lveval.data_path(), seed=0, candidates_per_image=300)))
    r = subprocess.run([sys.executable, "-c", VOCAB_PEAK, str(gp), str(rp)], capture_output=True, text=True, check=True)
    gt_grew, gt_est, grew, est = map(int, r.stdout.split())
    assert gt_grew <= gt_est <= 6 * max(gt_grew, 1 << 20), (gt_grew, gt_est)
    assert grew <= est <= 6 * grew, (grew, est)


def test_a_huge_vocabulary_is_refused_before_allocating(tmp_path, monkeypatch):
    """200,000 categories need ~15 GB of per-class arrays: refused at once with what would fit."""
    import time

    g = {"images": [{"id": 1, "height": 10, "width": 10}], "annotations": [],
         "categories": [{"id": i + 1, "name": str(i)} for i in range(200_000)]}
    gp = tmp_path / "gt.json"
    gp.write_bytes(orjson.dumps(g))
    rp = tmp_path / "r.json"
    rp.write_bytes(b"[]")
    t = time.perf_counter()
    p = run_cli(["evaluate", gp, rp], env={"LVEVAL_MEMORY_LIMIT": "8e9"})
    assert p.returncode == 2, p.stderr
    need = re.escape(jsonfile.human_bytes(jsonfile.vocabulary_memory(200_000, 1)))
    assert re.fullmatch(rf"lveval: error: {re.escape(str(gp))}: 200000 categories x 1 images need about {need} "
                        r"for the per-class arrays but only 7\.\d GB is available \(about \d+ categories would "
                        r"fit\)\n", p.stderr), p.stderr
    assert time.perf_counter() - t < 30


def test_a_ground_truth_too_large_is_refused_before_reading(monkeypatch, tmp_path):
    from lveval.io.gt import load_gt

    gp = tmp_path / "gt.json"
    gp.write_bytes(orjson.dumps({"images": [{"id": 1, "height": 10, "width": 10}], "annotations": [],
                                 "categories": [{"id": 1, "name": "x" * 5000}]}))
    monkeypatch.setenv("LVEVAL_MEMORY_LIMIT", "20000")
    monkeypatch.setattr("lveval.io.gt.read_bytes", lambda *a, **k: pytest.fail("read before the check"))
    need = jsonfile.human_bytes(gp.stat().st_size * jsonfile.GT_FACTOR)
    with pytest.raises(ResourceError, match=rf"loading this ground truth needs about {re.escape(need)} but only 19\.5 KB"):
        load_gt(str(gp))


def test_a_pipe_is_not_consumed_by_the_estimate(tmp_path, gt_file):
    """The estimate of a pipe's results is made from the bytes read once (the check still applies)."""
    import subprocess as sp

    data = orjson.dumps(results_list() * 2000)
    cmd = [sys.executable, "-m", "lveval.cli", "evaluate", str(gt_file), "/dev/stdin", "--quiet"]
    env = {**os.environ, "LVEVAL_MEMORY_LIMIT": str(1 << 30)}
    r = sp.run(cmd, input=data, capture_output=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    env["LVEVAL_MEMORY_LIMIT"] = "2000000"
    r = sp.run(cmd, input=data, capture_output=True, env=env, timeout=120)
    assert r.returncode == 2 and b"lveval topk" in r.stderr, r.stderr
