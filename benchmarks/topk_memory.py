"""Peak memory of ``lveval topk`` on a results file larger than memory should allow.

Generates a detectron2-style results JSON array of the requested size in /tmp
(LVIS v1 vocabulary: 1,203 classes drawn with their train image counts, 20,000
images, boxes and scores rounded so that ties occur), then runs
``lveval topk RESULTS --per-class K --out OUT`` in a child process and records
its peak resident set size (``ru_maxrss`` from ``wait4``) and wall time.

    python benchmarks/topk_memory.py                 # 5 GB, K = 10,000
    python benchmarks/topk_memory.py --size-gb 1 --check

``--check`` (small sizes only) also loads the whole file and verifies that the
output is exactly the engine's ``top_k_per_class`` selection, in file order.
The target (issue 3): a 5 GB file never needs more than 2 GB.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def class_weights() -> np.ndarray:
    path = os.path.join(HERE, "data", "lvis_v1_train_cat_info.json")
    with open(path) as f:
        cats = json.load(f)
    counts = np.array([c["image_count"] for c in sorted(cats, key=lambda c: c["id"])], np.float64)
    return counts / counts.sum()


def generate(path: str, size_bytes: int, seed: int = 0, images: int = 20_000) -> int:
    """Write a JSON array of about ``size_bytes``; returns the number of records."""
    import orjson

    rng = np.random.default_rng(seed)
    w = class_weights()
    n_cls = len(w)
    written = 0
    n = 0
    chunk = 500_000
    tmp = path + ".part"
    with open(tmp, "wb") as f:
        f.write(b"[")
        while written < size_bytes:
            img = rng.integers(1, images + 1, chunk)
            # half the detections follow class frequency, half are spread uniformly (as top-k inference does)
            cat = np.where(rng.random(chunk) < 0.5, rng.choice(n_cls, chunk, p=w), rng.integers(0, n_cls, chunk)) + 1
            xy = np.round(rng.uniform(0, 600, (chunk, 2)), 2)
            wh = np.round(rng.uniform(1, 300, (chunk, 2)), 2)
            score = np.round(rng.beta(0.6, 6.0, chunk), 4)
            recs = [{"image_id": i, "category_id": c, "bbox": [x, y, ww, hh], "score": s}
                    for i, c, (x, y), (ww, hh), s in zip(img.tolist(), cat.tolist(), xy.tolist(), wh.tolist(),
                                                         score.tolist())]
            data = orjson.dumps(recs)[1:-1]
            if n:
                f.write(b",\n")
            f.write(data)
            written += len(data) + 2
            n += chunk
        f.write(b"]\n")
    os.replace(tmp, path)
    return n


def run_topk(src: str, out: str, k: int) -> dict:
    """Run ``lveval topk`` in a child and read its peak RSS.

    The child must be started from a small process: a forked child's
    ``ru_maxrss`` also counts the parent's pages it inherited before ``exec``,
    which is why generation runs in a separate process.
    """
    cmd = [sys.executable, "-m", "lveval.cli", "topk", src, "--per-class", str(k), "--out", out, "--quiet"]
    t = time.perf_counter()
    p = subprocess.Popen(cmd)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t
    rc = os.waitstatus_to_exitcode(status)
    if rc != 0:
        raise SystemExit(f"lveval topk failed with exit code {rc}")
    return {"peak_rss_mb": ru.ru_maxrss / 1024, "wall_s": wall, "user_s": ru.ru_utime, "sys_s": ru.ru_stime}


def check(src: str, out: str, k: int) -> bool:
    from lveval.io.results import load_results
    from lveval.select import top_k_per_class

    d = load_results(src)
    want = d.take(top_k_per_class(d.cat_id, d.score, k))
    got = load_results(out)
    return (len(got) == len(want) and np.array_equal(got.score, want.score)
            and np.array_equal(got.cat_id, want.cat_id) and np.array_equal(got.img_id, want.img_id)
            and np.array_equal(got.bbox, want.bbox))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-gb", type=float, default=5.0, help="size of the generated results file")
    ap.add_argument("--per-class", type=int, default=10_000)
    ap.add_argument("--dir", default="/tmp")
    ap.add_argument("--keep", action="store_true", help="keep the generated files")
    ap.add_argument("--check", action="store_true", help="verify the output against the engine (small sizes)")
    ap.add_argument("--json", metavar="OUT", help="write the figures as JSON")
    ap.add_argument("--generate-only", metavar="PATH", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.generate_only:
        print(generate(a.generate_only, int(a.size_gb * (1 << 30))))
        return 0
    src = os.path.join(a.dir, f"lveval_topk_bench_{a.size_gb:g}gb.json")
    out = os.path.join(a.dir, f"lveval_topk_bench_{a.size_gb:g}gb.top{a.per_class}.json")
    t = time.perf_counter()
    if not os.path.exists(src):     # in a child process, so this one stays small (see run_topk)
        out_gen = subprocess.run([sys.executable, os.path.abspath(__file__), "--size-gb", str(a.size_gb),
                                  "--generate-only", src], check=True, capture_output=True, text=True)
        n = int(out_gen.stdout.split()[-1])
    else:
        n = None
    gen_s = time.perf_counter() - t
    fig = {"input_bytes": os.path.getsize(src), "records": n, "per_class": a.per_class, "generate_s": gen_s}
    fig.update(run_topk(src, out, a.per_class))
    fig["output_bytes"] = os.path.getsize(out)
    if a.check:
        fig["check"] = check(src, out, a.per_class)
    print(json.dumps(fig, indent=2))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(fig, f, indent=2)
    if not a.keep:
        for p in (src, out):
            if os.path.exists(p):
                os.unlink(p)
    return 0 if fig.get("check", True) else 1


if __name__ == "__main__":
    sys.exit(main())
