"""Sweeps and re-ranking: one matching pass, figures identical to separate evaluations."""
import json

import numpy as np
import pytest

from lveval.analysis.common import Session, parse_limits
from lveval.analysis.rerank import gaming_selection, rerank
from lveval.analysis.sweep import sweep
from lveval.exceptions import InputError
from lveval.metrics import Evaluator, evaluate
from lveval.select import cap_per_image, top_k_per_class
from tests.support.gen import make_dataset


def _data(seed=3):
    return make_dataset(seed, kind="lvis", n_images=5, n_cats=6, max_gt=8, max_dets=30, score_levels=8)


@pytest.fixture
def count_matching(monkeypatch):
    calls = []
    orig = Evaluator.matching_for

    def counted(self, sel):
        calls.append(int(sel.sum()))
        return orig(self, sel)
    monkeypatch.setattr(Evaluator, "matching_for", counted)
    return calls


@pytest.mark.parametrize("seed", [0, 3, 7])
def test_sweep_equals_separate_evaluations_with_one_matching(seed, count_matching):
    gt, res = _data(seed)
    caps, budgets = [2, 3, 5, 8, 13, -1], [1, 2, 4, 8]
    s = Session.load(gt, res)
    out = sweep(s, caps, budgets)
    assert len(count_matching) == 1          # ten settings, one matching pass
    for n, row in zip(caps, out.dets_per_image):
        assert row.cap == (None if n < 0 else n)
        assert row.old == evaluate(gt, res, protocols=("old",), max_dets_per_image=n).old
    for k, row in zip(budgets, out.dets_per_class):
        r = evaluate(gt, res, protocols=("fixed", "pooled"), max_dets_per_class=k)
        assert row.fixed == r.fixed and row.pooled == r.pooled


def test_rerank_equals_evaluating_the_reranked_file(count_matching):
    gt, res = _data(5)
    s = Session.load(gt, res, max_dets_per_image=6, max_dets_per_class=4)
    out = rerank(s, per_class=3)
    assert len(count_matching) == 1
    # the policy, spelled out on the result list: top 3 per class (stable by file order), then 6 per image
    score = np.array([r["score"] for r in res])
    cat = np.array([r["category_id"] for r in res])
    img = np.array([r["image_id"] for r in res])
    keep = np.flatnonzero(top_k_per_class(cat, score, 3))
    keep = keep[cap_per_image(img[keep], score[keep], 6)]
    gamed = [res[i] for i in keep]
    assert np.array_equal(np.flatnonzero(gaming_selection(s, 3, 6)), keep)
    before = evaluate(gt, res, protocols=("old", "fixed"), max_dets_per_image=6, max_dets_per_class=4)
    after = evaluate(gt, gamed, protocols=("old", "fixed"), max_dets_per_image=6, max_dets_per_class=4)
    assert out.before.old == before.old and out.before.fixed == before.fixed
    assert out.after.old == after.old and out.after.fixed == after.fixed


def test_selection_outside_the_union_is_refused():
    gt, res = _data(1)
    s = Session.load(gt, res)
    s.match(s.cap(2))
    with pytest.raises(ValueError):
        s.old(s.cap(5))


def test_parse_limits():
    assert parse_limits("100, 300,inf,1e3", "x") == [100, 300, -1, 1000]
    for bad in ("", "0", "abc", "-5"):
        with pytest.raises(InputError):
            parse_limits(bad, "x")


def _files(tmp_path, seed=2):
    gt, res = _data(seed)
    g, r = tmp_path / "gt.json", tmp_path / "res.json"
    g.write_text(json.dumps(gt))
    r.write_text(json.dumps(res))
    return gt, res, g, r


def test_cli_rerank_json(run_cli, tmp_path):
    gt, res, g, r = _files(tmp_path)
    out, written = tmp_path / "rr.json", tmp_path / "gamed.jsonl"
    rc, text, err = run_cli("rerank", g, r, "--per-class", 3, "--max-dets-per-image", 5, "--json", out,
                            "--write", written)
    assert rc == 0, err
    assert "AP-Old (5/image), after re-ranking" in text
    d = json.loads(out.read_text())
    ref = evaluate(gt, res, max_dets_per_image=5).to_dict()
    for when in ("before", "after"):
        assert set(d[when]) == {"old", "fixed"}
        assert set(d[when]["old"]) == set(ref["old"]) and set(d[when]["fixed"]) == set(ref["fixed"])
    assert d["before"]["old"] == ref["old"]
    after = evaluate(gt, str(written), max_dets_per_image=5).to_dict()
    assert d["after"]["old"] == after["old"]


def test_cli_sweep_json(run_cli, tmp_path):
    gt, res, g, r = _files(tmp_path)
    out = tmp_path / "sw.json"
    rc, text, err = run_cli("sweep", g, r, "--dets-per-image", "100,300,1000", "--dets-per-class", "1000,10000",
                            "--json", out, "--compare-timing", "--plots", tmp_path / "plots")
    assert rc == 0, err
    assert "separate lveval.evaluate() calls" in text
    d = json.loads(out.read_text())
    ref = evaluate(gt, res).to_dict()
    assert [x["cap"] for x in d["dets_per_image"]] == [100, 300, 1000]
    assert [x["k"] for x in d["dets_per_class"]] == [1000, 10000]
    for x in d["dets_per_image"]:
        assert set(x) >= {"cap", "old", "pooled"}
        assert set(x["old"]) == set(ref["old"]) and set(x["pooled"]) == set(ref["pooled"])
    for x in d["dets_per_class"]:
        assert set(x) >= {"k", "fixed"} and set(x["fixed"]) == set(ref["fixed"])
    assert d["dets_per_image"][1]["old"] == ref["old"]
    assert d["dets_per_class"][1]["fixed"] == ref["fixed"]
    assert d["dets_per_class"][1]["pooled"] == ref["pooled"]
    for name in ("cap_sweep.png", "budget_sweep.png"):
        assert (tmp_path / "plots" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_sweep_plots_with_budgets_below_the_default(run_cli, tmp_path):
    """The plots use the default budget's AP-Fixed even when no swept setting contains it."""
    _, _, g, r = _files(tmp_path)
    rc, _, err = run_cli("sweep", g, r, "--dets-per-image", "3", "--dets-per-class", "5",
                         "--plots", tmp_path / "plots")
    assert rc == 0, err
    for name in ("cap_sweep.png", "budget_sweep.png"):
        assert (tmp_path / "plots" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_errors(run_cli, tmp_path):
    _, _, g, r = _files(tmp_path)
    rc, _, err = run_cli("sweep", g)
    assert rc == 2 and "expected GT and RESULTS" in err
    rc, _, err = run_cli("sweep", g, r, "--dets-per-image", "100,zero")
    assert rc == 2 and "dets-per-image" in err
    rc, _, err = run_cli("rerank", g, r, "--per-class", 0)
    assert rc == 2 and "per-class" in err
    rc, _, err = run_cli("sweep", g, r, "--demo")
    assert rc == 2


@pytest.mark.parametrize("command", ["subsets", "scores", "nms"])
def test_cli_plots_of_subsets_scores_nms(run_cli, tmp_path, command):
    """``--plots DIR`` writes the command's figure as a PNG named after it."""
    _, _, g, r = _files(tmp_path)
    rc, _, err = run_cli(command, g, r, "--plots", tmp_path / "plots", "--quiet")
    assert rc == 0, err
    assert (tmp_path / "plots" / f"{command}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
