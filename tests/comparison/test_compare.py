"""lveval.compare / lveval compare: point differences, invariances, verdicts, determinism, outputs."""
from __future__ import annotations

import json

import numpy as np
import pytest

import lveval
from lveval.comparison import interval
from lveval.metrics import PROTOCOLS, evaluate


def test_point_differences_equal_separate_evaluations(sims):
    gt, a, b = sims
    c = lveval.compare(gt, {"a": a, "b": b}, bootstrap=20, seed=1)
    d = c.to_dict()
    ea, eb = evaluate(gt, a), evaluate(gt, b)
    for p in PROTOCOLS:
        assert d["models"][0][p] == ea[p] and d["models"][1][p] == eb[p]
        for k, f in d["differences"][0][p].items():
            assert f["delta"] == eb[p][k] - ea[p][k]
    # per-class AP-Fixed differences are those of the per-class tables
    rows = {r["category_id"]: r for r in d["differences"][0]["per_class"]["classes"]}
    for ra, rb in zip(ea.per_class, eb.per_class):
        if ra["AP_fixed"] >= 0 and rb["AP_fixed"] >= 0:
            assert rows[ra["category_id"]]["delta"] == rb["AP_fixed"] - ra["AP_fixed"]


def test_same_options_as_evaluate(sims):
    gt, a, b = sims
    kw = {"max_dets_per_image": 100, "max_dets_per_class": 50, "protocols": ("old", "fixed")}
    c = lveval.compare(gt, [a, b], bootstrap=5, **kw)
    assert c.names == ["model0", "model1"]
    e = evaluate(gt, b, **kw)
    assert c.points[1]["old"] == e.old and c.points[1]["fixed"] == e.fixed and "pooled" not in c.points[1]
    assert c.to_dict()["params"] == e.params.to_dict()


def test_self_comparison_is_exactly_zero(sims):
    gt, a, _ = sims
    c = lveval.compare(gt, {"a": a, "b": a}, bootstrap=50, seed=3)
    d = c.differences[0]
    for p in PROTOCOLS:
        for k, f in d[p].items():
            if f["delta"] is not None:
                assert f["delta"] == 0.0 and f["low"] == 0.0 and f["high"] == 0.0 and f["p"] == 1.0, (p, k)
    assert d["verdict"] == "noise"
    assert all(not v["up"] and not v["down"] for v in d["per_class"]["changed"].values())


def test_per_class_monotone_transform_leaves_ap_fixed_unchanged_in_every_replicate(sims):
    gt, a, _ = sims
    # a strictly increasing map of each class's scores (differing across classes): the per-class
    # rankings, hence AP-Fixed, stay; the cross-class ranking, hence AP-Pool and AP-Old, change
    rng = np.random.default_rng(0)
    scale = {c["id"]: float(rng.uniform(0.05, 1.0)) for c in gt["categories"]}
    shift = {c["id"]: float(rng.uniform(0.0, 0.5)) for c in gt["categories"]}
    b = [dict(r, score=scale[r["category_id"]] * r["score"] + shift[r["category_id"]]) for r in a]
    c = lveval.compare(gt, {"a": a, "b": b}, bootstrap=100, seed=0)
    for k, v in c.replicates[0]["fixed"].items():
        assert np.array_equal(v, c.replicates[1]["fixed"][k]), k
    assert np.array_equal(c.class_ap[0], c.class_ap[1], equal_nan=True)
    d = c.differences[0]
    assert all(f["delta"] in (0.0, None) and f["low"] in (0.0, None) and f["high"] in (0.0, None)
               for f in d["fixed"].values())
    assert d["pooled"]["AP"]["delta"] != 0.0
    assert not np.array_equal(c.replicates[0]["pooled"]["AP"], c.replicates[1]["pooled"]["AP"])


def test_gaming_reranking_is_old_only(sims):
    from lveval.analysis.common import Session
    from lveval.analysis.rerank import gaming_selection

    gt, a, _ = sims
    # the paper's Table 1 policy: top 20 per class over the set, then the per-image cap (50 here, so
    # that the cap binds on 100 images)
    s = Session.load(gt, a, max_dets_per_image=50)
    gamed = s.dets.take(gaming_selection(s, 20)).to_records()
    c = lveval.compare(gt, {"base": a, "gamed": gamed}, bootstrap=200, seed=0, max_dets_per_image=50)
    d = c.differences[0]
    assert d["old"]["AP"]["delta"] > 0 and d["old"]["AP"]["low"] > 0
    assert d["fixed"]["AP"]["delta"] <= 0
    assert d["verdict"] == "old_only" and "AP-Old only" in d["verdict_text"]


def test_interval_and_verdicts():
    d = np.array([-1.0, 0.0, 1.0, 2.0, 3.0, np.nan])
    lo, hi, p = interval(d, 0.5)
    assert (lo, hi) == (0.0, 2.0) and p == 0.4            # quartiles of the five finite values; 2 of 5 <= 0
    assert interval(np.array([np.nan]), 0.9) == (None, None, None)
    from lveval.comparison import verdict
    f = lambda lo, hi: {"AP": {"low": lo, "high": hi}}
    assert verdict({"old": f(0.01, 0.02), "fixed": f(0.001, 0.01)}) == "fixed_gain"
    assert verdict({"old": f(0.01, 0.02), "fixed": f(-0.01, 0.01)}) == "old_only"
    assert verdict({"old": f(-0.01, 0.02), "fixed": f(-0.03, -0.01)}) == "loss"
    assert verdict({"old": f(-0.01, 0.02), "fixed": f(-0.01, 0.01)}) == "noise"


def test_bad_input():
    from lveval.exceptions import InputError

    gt = lveval.data_path()
    with pytest.raises(InputError, match="at least two"):
        lveval.compare(gt, {"a": []})
    with pytest.raises(InputError, match="confidence"):
        lveval.compare(gt, {"a": [], "b": []}, confidence=1.5)


def test_cli_json_is_byte_identical_for_a_seed_and_html(run_cli, tmp_path, sims):
    gt, a, b = sims
    paths = []
    for name, res in (("g", gt), ("a", a), ("b", b)):
        p = tmp_path / f"{name}.json"
        p.write_text(json.dumps(res))
        paths.append(p)
    outs = []
    for i in range(2):
        out = tmp_path / f"c{i}.json"
        rc, text, err = run_cli("compare", *paths, "--names", "base,other", "--bootstrap", 60, "--seed", 7,
                                "--json", out, *(["--html", tmp_path / "html"] if i == 0 else []))
        assert rc == 0, err
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]
    d = json.loads(outs[0])
    assert [m["name"] for m in d["models"]] == ["base", "other"]
    assert d["bootstrap"]["replicates"] == 60 and d["bootstrap"]["seed"] == 7
    diff = d["differences"][0]
    assert diff["baseline"] == "base" and diff["verdict"] in ("fixed_gain", "old_only", "noise", "loss")
    for p in PROTOCOLS:
        assert set(diff[p]) == set(d["models"][0][p])     # every figure key of `lveval evaluate`
    assert "AP-Fixed" in text and "other vs base" in text
    page = (tmp_path / "html" / "compare.html").read_text()
    assert page.count("data:image/png;base64,") == 2 and "Table 4" in page
    out3 = tmp_path / "c3.json"
    assert run_cli("compare", *paths, "--bootstrap", 60, "--seed", 8, "--json", out3)[0] == 0
    assert out3.read_bytes() != outs[0]


def test_cli_errors(run_cli, tmp_path):
    g = lveval.data_path()
    r = tmp_path / "r.json"
    r.write_text("[]")
    rc, _, err = run_cli("compare", g, r)
    assert rc == 2 and "at least two" in err
    rc, _, err = run_cli("compare", g, r, r, "--names", "x")
    assert rc == 2 and "names" in err
    rc, _, err = run_cli("compare", g, r, r, "--protocols", "old,new")
    assert rc == 2 and "option 'protocols'" in err


def test_replicates_do_not_depend_on_chunking(sims):
    from lveval.comparison.resample import ModelResampler, draw_weights
    from lveval.io.gt import load_gt
    from lveval.io.results import bind, load_results
    from lveval.metrics import Evaluator
    from lveval.params import Params

    gt, a, _ = sims
    g = load_gt(gt)
    W = draw_weights(g.num_images, 12, seed=5)
    r = ModelResampler(Evaluator(g, bind(load_results(a), g), Params(max_dets_per_class=40)), PROTOCOLS, W)
    whole = r.replicate(W)
    parts = [r.replicate(W[i:j]) for i, j in ((0, 1), (1, 7), (7, 12))]
    for p in PROTOCOLS:
        for k, v in whole[p].items():
            assert np.array_equal(v, np.concatenate([x[p][k] for x in parts])), (p, k)
    assert np.array_equal(whole["class_ap_fixed"], np.concatenate([x["class_ap_fixed"] for x in parts]),
                          equal_nan=True)


def test_dask_gives_the_same_json(sims):
    pytest.importorskip("distributed")
    import distributed
    from lveval.distributed.dask_backend import local_cluster

    gt, a, b = sims
    local = lveval.compare(gt, {"a": a, "b": b}, bootstrap=30, seed=4, max_dets_per_class=40)
    with local_cluster(2) as cluster, distributed.Client(cluster) as client:
        sharded = lveval.compare(gt, {"a": a, "b": b}, bootstrap=30, seed=4, max_dets_per_class=40, client=client)
    assert sharded.to_dict() == local.to_dict()
    for x, y in zip(local.replicates, sharded.replicates):
        for p in x:
            for k in x[p]:
                assert np.array_equal(x[p][k], y[p][k])
