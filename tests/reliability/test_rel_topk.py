"""``lveval topk --gt``: the evaluation's unknown-id policies before the selection, so topk then evaluate
equals evaluate; and topk reads and refuses the same files evaluate does."""
import copy

import numpy as np
import orjson
import pytest

from lveval.metrics import evaluate
from lveval.simulate import simulate
from lveval.topk import topk_file
from tests.reliability.relkit import run_cli

FIGS = ("fixed", "pooled")


@pytest.fixture(scope="module")
def polluted(lvis_path):
    """Simulated results plus high-scoring records of images and categories the ground truth lacks."""
    res = simulate(lvis_path, seed=3, candidates_per_image=60)
    rng = np.random.default_rng(0)
    extra = []
    for r in rng.choice(len(res), 3000, replace=False).tolist():
        e = copy.deepcopy(res[r])
        e["score"] = min(1.0, e["score"] + 0.5)
        if len(extra) % 3:
            e["image_id"] = 10_000_000 + len(extra)
        else:
            e["category_id"] = 9_999_999
        extra.append(e)
    out = []
    for i, r in enumerate(res):   # interleaved, so they compete inside every block
        out.append(r)
        if i < len(extra):
            out.append(extra[i])
    return out


@pytest.mark.parametrize("fmt", ["json", "jsonl", "parquet"])
def test_topk_with_gt_then_evaluate_equals_evaluate(tmp_path, lvis_path, polluted, fmt):
    from lveval.io.results import load_results, write_results

    src = tmp_path / f"r.{fmt}"
    write_results(load_results(polluted), str(src))
    out = tmp_path / "top.json"
    kw = dict(on_unknown_image="skip", on_unknown_category="skip", max_dets_per_class=20)
    full = evaluate(lvis_path, str(src), protocols=FIGS, **kw)
    counts = topk_file(str(src), str(out), 20, gt=lvis_path, on_unknown_image="skip", on_unknown_category="skip")
    assert counts["skipped"] == {"image_id": 2000, "category_id": 1000}
    cut = evaluate(lvis_path, str(out), protocols=FIGS, **kw)
    assert cut.fixed == full.fixed and cut.pooled == full.pooled
    # without --gt the records of unknown ids take places in the top K: the figures differ
    topk_file(str(src), str(out), 20)
    blind = evaluate(lvis_path, str(out), protocols=FIGS, **kw)
    assert blind.pooled["AP"] != full.pooled["AP"]


def test_topk_cli_says_what_it_dropped(tmp_path, lvis_path, polluted):
    src = tmp_path / "r.json"
    src.write_bytes(orjson.dumps(polluted))
    out = tmp_path / "top.json"
    p = run_cli(["topk", src, "--gt", lvis_path, "--on-unknown-image", "skip", "--on-unknown-category",
                 "skip", "--per-class", "20", "--out", out])
    assert p.returncode == 0, p.stderr
    assert "dropped before the selection: 2000 of images not in the ground truth, 1000 of categories" in p.stderr


def test_topk_with_gt_and_error_policy_names_the_record(tmp_path, lvis_path, polluted):
    src = tmp_path / "r.jsonl"
    src.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in polluted))
    out = tmp_path / "top.json"
    p = run_cli(["topk", src, "--gt", lvis_path, "--out", out])
    assert p.returncode == 2
    assert p.stderr.strip() == (f"lveval: error: {src}: record 3 (line 4): field 'image_id': unknown "
                                "image_id 10000001 (not in the ground truth; use --on-unknown-image "
                                "skip to drop such records)")
    assert p.stderr == run_cli(["evaluate", lvis_path, src]).stderr   # the evaluation's own line
    assert not out.exists()


def test_topk_policy_without_gt_is_refused(tmp_path, results_file):
    p = run_cli(["topk", results_file, "--on-unknown-image", "skip", "--out", tmp_path / "o.json"])
    assert p.returncode == 2 and "need --gt" in p.stderr
