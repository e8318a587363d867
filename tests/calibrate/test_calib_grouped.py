"""GroupedCalibrator: groupings, policies, rank keeping, monotone maps, JSON models, results files."""
from __future__ import annotations

import json

import numpy as np
import pytest

import lveval
from lveval.calibrate import (
    EPS,
    GroupedCalibrator,
    Samples,
    keep_rank,
    keep_rank_strict,
    make_calibrator,
    make_monotone,
    parse_method_spec,
    subset_results,
)
from lveval.calibrate.grouped import EDGE_WIDTH
from lveval.exceptions import InputError
from lveval.io import load_gt
from lveval.io.results import load_results, write_results

ALL = ["bbq", "beta", "histogram", "isotonic", "platt", "temperature"]


def _strictly_increasing_in(s, p):
    """p orders like s: strictly larger where s is larger, equal where s is equal."""
    o = np.lexsort((p, s))
    ds, dp = np.diff(s[o]), np.diff(p[o])
    return bool(np.all(np.where(ds > 0, dp > 0, dp == 0)))


# --------------------------------------------------------------------------- rank keeping


def test_keep_rank_strict_orders_ties_at_zero_and_one():
    s = np.array([0.10, 0.20, 0.20, 0.30, 0.50, 0.60, 0.70, 0.90, 0.95])
    p = np.array([0.00, 0.00, 0.00, 0.00, 0.40, 0.40, 1.00, 1.00, 1.00])
    assert not _strictly_increasing_in(s, keep_rank(s, p))  # the methods' keep_rank cannot spread 0 and 1
    out = keep_rank_strict(s, p)
    assert _strictly_increasing_in(s, out)
    assert out[0] == 0.0 and out[-1] == 1.0  # the extreme members keep the edge value
    assert np.all(out[:4] <= EDGE_WIDTH) and np.all(out[6:] >= 1 - EDGE_WIDTH)
    np.testing.assert_array_equal(out[4:6], keep_rank(s, p)[4:6])  # the middle tie: keep_rank's spread
    assert out[4:6].mean() == pytest.approx(0.4, abs=1e-15)
    assert out[1] == out[2]  # equal originals stay equal (file order still decides, as before)


def test_keep_rank_strict_orders_values_squeezed_against_one():
    """A saturated logistic map gives distinct values within 1e-14 of 1 that keep_rank groups as one tie."""
    s = np.linspace(0.6, 0.9, 20)
    p = 1.0 - np.linspace(4e-15, 0.0, 20)  # increasing, but below keep_rank's tie tolerance
    p = np.concatenate([[0.2, 0.3], p])
    s = np.concatenate([[0.1, 0.2], s])
    out = keep_rank_strict(s, p)
    assert _strictly_increasing_in(s, out)
    assert np.max(np.abs(out - p)) <= EDGE_WIDTH


def test_keep_rank_strict_leaves_strictly_ordered_edges_alone():
    s = np.array([0.1, 0.2, 0.3, 0.4])
    p = np.array([1e-20, 1e-15, 0.5, 1.0])
    np.testing.assert_array_equal(keep_rank_strict(s, p), keep_rank(s, p))


# --------------------------------------------------------------------------- monotone maps


def test_make_monotone_platt_negative_slope_becomes_the_constrained_mle():
    s = np.array([0.1, 0.2, 0.3, 0.7, 0.8, 0.9])
    y = np.array([1, 1, 0, 1, 0, 0])
    cal = make_calibrator("platt").fit(s, y)
    assert cal.slope_ < 0
    make_monotone(cal, s, y)
    assert cal.slope_ == 0.0
    np.testing.assert_allclose(cal.predict(s, keep_rank=False), y.mean(), rtol=1e-12)
    # the constrained optimum: no (slope >= 0, intercept) pair has a lower log-loss
    from scipy.special import expit, logit

    def nll(a, b):
        p = expit(a * logit(np.clip(s, EPS, 1 - EPS)) + b)
        return -np.sum(y * np.log(p) + (1 - y) * np.log1p(-p))

    best = nll(0.0, cal.intercept_)
    grid = [nll(a, b) for a in np.linspace(0, 3, 31) for b in np.linspace(-3, 3, 61)]
    assert best <= min(grid) + 1e-12


@pytest.mark.parametrize("name", ["histogram", "bbq"])
def test_make_monotone_binning_is_the_weighted_pav_of_the_bins(name):
    rng = np.random.default_rng(3)
    s = rng.uniform(0, 1, 60)
    y = (rng.uniform(size=60) < 0.5).astype(int)  # no signal: raw bin frequencies zig-zag
    raw = make_calibrator(name).fit(s, y)
    grid = np.linspace(0, 1, 2001)
    assert np.any(np.diff(raw.predict(grid, keep_rank=False)) < 0)
    cal = make_monotone(make_calibrator(name).fit(s, y), s, y)
    q = cal.predict(grid, keep_rank=False)
    assert np.all(np.diff(q) >= 0)
    # the least-squares non-decreasing fit of the raw step values, weighted by training samples per step:
    # isotonic regression of the raw fitted values on the step index of each training sample
    from sklearn.isotonic import IsotonicRegression

    from lveval.calibrate.methods import _bin_index

    edges = np.linspace(0, 1, raw.n_bins + 1) if name == "histogram" else raw.edges_
    step = _bin_index(edges, s)
    want = IsotonicRegression().fit(step, raw.predict(s, keep_rank=False)).predict(step)
    np.testing.assert_allclose(cal.predict(s, keep_rank=False), want, atol=1e-8)
    if name == "histogram":  # raw values are bin frequencies, so this is isotonic regression on the bins
        np.testing.assert_allclose(want, IsotonicRegression().fit(step, y).predict(step), atol=1e-12)


@pytest.mark.parametrize("name", ["beta", "isotonic", "temperature"])
def test_make_monotone_leaves_monotone_methods_alone(name):
    rng = np.random.default_rng(1)
    s = rng.uniform(0, 1, 200)
    y = (rng.uniform(size=200) < s).astype(int)
    a = make_calibrator(name).fit(s, y)
    b = make_monotone(make_calibrator(name).fit(s, y), s, y)
    assert a.to_dict() == b.to_dict()


# --------------------------------------------------------------------------- groupings and policies


def _toy():
    """Four classes (r, c, f, f); class 1 (r) has no true positive, class 2 (c) is absent."""
    gt = {"images": [{"id": 1, "height": 10, "width": 10, "neg_category_ids": [],
                      "not_exhaustive_category_ids": []}],
          "annotations": [],
          "categories": [{"id": 1, "name": "a", "frequency": "r"}, {"id": 2, "name": "b", "frequency": "c"},
                         {"id": 3, "name": "c", "frequency": "f"}, {"id": 4, "name": "d", "frequency": "f"}]}
    g = load_gt(gt)
    rng = np.random.default_rng(0)
    n = [30, 0, 80, 60]
    cat = np.repeat(np.arange(4), n)
    s = rng.uniform(0.05, 0.95, cat.size)
    y = (rng.uniform(size=cat.size) < np.where(cat == 0, 0, s)).astype(bool)
    samples = Samples(rows=np.arange(cat.size), cat_idx=cat, img_idx=np.zeros(cat.size, np.int64), score=s, label=y)
    return g, samples


@pytest.mark.parametrize("policy", ["zero", "keep", "by-frequency"])
def test_per_class_policies(policy):
    g, samples = _toy()
    cal = GroupedCalibrator("platt", missing=policy, no_tp=policy, min_positives=1).fit_samples(g, samples)
    fallback = {"zero": "zero", "keep": "keep", "by-frequency": None}[policy]
    assert cal.use_[2] == "class:3" and cal.use_[3] == "class:4"
    assert cal.use_[0] == (fallback or "frequency:r")  # no true positive
    assert cal.use_[1] == (fallback or "overall")  # absent; its group 'c' has no sample either
    s = np.linspace(0.1, 0.9, 9)
    for cid in (1, 2):
        out = cal.predict(np.full(9, cid), s)
        assert _strictly_increasing_in(s, out)
        if policy == "zero":
            assert np.all(out <= EDGE_WIDTH) and out[0] == 0.0
        elif policy == "keep":
            np.testing.assert_array_equal(out, s)
        else:
            key = cal.use_[cid - 1]
            want = cal.calibrators_[key].predict(s, keep_rank=False)
            np.testing.assert_array_equal(out, keep_rank_strict(s, want))
            assert out.mean() == pytest.approx(want.mean(), abs=1e-15)  # rank keeping keeps the mean
            sel = samples.cat_idx == 0 if key == "frequency:r" else slice(None)
            ref = make_calibrator("platt").fit(samples.score[sel], samples.label[sel])
            assert cal.calibrators_[key].to_dict() == ref.to_dict()


def test_min_positives_routes_small_classes_to_the_no_tp_policy():
    g, samples = _toy()
    npos = np.bincount(samples.cat_idx[samples.label], minlength=4)
    k = int(npos[2:].min()) + 1  # more than one of the f classes has
    cal = GroupedCalibrator("platt", min_positives=k).fit_samples(g, samples)
    small = [c for c in (2, 3) if npos[c] < k]
    assert small and all(cal.use_[c] == "frequency:f" for c in small)
    with pytest.raises(InputError):
        GroupedCalibrator("platt", min_positives=0)


def test_overall_and_frequency_groupings_fit_on_the_groups_samples():
    g, samples = _toy()
    cal = GroupedCalibrator("isotonic", grouping="overall").fit_samples(g, samples)
    assert set(cal.use_) == {"overall"} and list(cal.calibrators_) == ["overall"]
    ref = make_calibrator("isotonic").fit(samples.score, samples.label)
    assert cal.calibrators_["overall"].to_dict() == ref.to_dict()
    cal = GroupedCalibrator("isotonic", grouping="frequency").fit_samples(g, samples)
    assert cal.use_ == ["frequency:r", "overall", "frequency:f", "frequency:f"]
    f = samples.cat_idx >= 2
    assert cal.calibrators_["frequency:f"].to_dict() == make_calibrator("isotonic").fit(
        samples.score[f], samples.label[f]).to_dict()


def test_overall_grouping_with_rank_keeping_keeps_the_global_order(test_set, sim_gt):
    """One shared monotone map (ties broken over the whole batch) cannot change the pooled order."""
    cal = GroupedCalibrator("histogram", grouping="overall").fit_samples(sim_gt, test_set.labeller.samples())
    out = cal.predict(test_set.dets.cat_id, test_set.dets.score)
    assert _strictly_increasing_in(test_set.dets.score, out)


def test_monotone_off_gives_the_published_method(sim_gt, train_set, test_set):
    samples = train_set.labeller.samples()
    cal = GroupedCalibrator("histogram", monotone=False, keep_rank=False, min_positives=1).fit_samples(sim_gt, samples)
    k = next(i for i, u in enumerate(cal.use_) if u.startswith("class:"))
    rows = np.flatnonzero(test_set.dets.cat_idx == k)
    sel = samples.cat_idx == k
    ref = make_calibrator("histogram").fit(samples.score[sel], samples.label[sel])
    np.testing.assert_array_equal(cal.predict(test_set.dets.cat_id[rows], test_set.dets.score[rows]),
                                  ref.predict(test_set.dets.score[rows], keep_rank=False))


def test_unknown_category_policies():
    g, samples = _toy()
    cal = GroupedCalibrator("platt").fit_samples(g, samples)
    with pytest.raises(InputError, match="category_id 99"):
        cal.predict([3, 99], [0.5, 0.5])
    np.testing.assert_array_equal(cal.predict([99, 99], [0.2, 0.7], on_unknown_category="keep"), [0.2, 0.7])
    out = cal.predict([99, 99], [0.2, 0.7], on_unknown_category="zero")
    assert out[0] == 0.0 and 0 < out[1] <= EDGE_WIDTH


def test_bad_settings_are_input_errors():
    for kw in ({"grouping": "per-image"}, {"missing": "drop"}, {"no_tp": "x"}, {"rank_spread": 1.0}):
        with pytest.raises(InputError):
            GroupedCalibrator("platt", **kw)
    with pytest.raises(InputError, match="unknown calibration method"):
        GroupedCalibrator("svm")
    with pytest.raises(InputError, match="bad parameters"):
        GroupedCalibrator("bbq:scoring=XYZ")
    assert parse_method_spec("BBQ:scoring=BIC,binning=uniform,bin_range_factor=5") == (
        "bbq", {"scoring": "BIC", "binning": "uniform", "bin_range_factor": 5})


# --------------------------------------------------------------------------- JSON models and results files


@pytest.mark.parametrize("name", ALL)
def test_model_json_round_trip_is_exact(name, sim_gt, train_set, test_set, tmp_path):
    cal = GroupedCalibrator(name).fit_samples(sim_gt, train_set.labeller.samples())
    d = cal.to_dict()
    path = tmp_path / "model.json"
    cal.save(path)
    back = GroupedCalibrator.load(path)
    assert back.to_dict() == d == json.loads(json.dumps(d))
    a = cal.predict(test_set.dets.cat_id, test_set.dets.score)
    b = back.predict(test_set.dets.cat_id, test_set.dets.score)
    np.testing.assert_array_equal(a, b)
    assert np.all((a >= 0) & (a <= 1))


def test_model_file_errors(tmp_path):
    p = tmp_path / "m.json"
    p.write_text("[1, 2]")
    with pytest.raises(InputError, match="not an lveval calibration model"):
        GroupedCalibrator.load(p)
    g, samples = _toy()
    d = GroupedCalibrator("platt").fit_samples(g, samples).to_dict()
    d["categories"][0]["use"] = "class:77"
    with pytest.raises(InputError, match="class:77"):
        GroupedCalibrator.from_dict(d)
    del d["calibrators"]
    with pytest.raises(InputError, match="malformed"):
        GroupedCalibrator.from_dict(d)


@pytest.mark.parametrize("ext", ["json", "jsonl", "parquet"])
def test_calibrated_results_file_is_valid_and_evaluates(ext, sim_gt, train_set, sim_test, tmp_path):
    cal = GroupedCalibrator("beta").fit_samples(sim_gt, train_set.labeller.samples())
    raw = subset_results(sim_test, sim_gt.img_ids[:20])  # 20 images keep the file small
    src = tmp_path / "test.json"
    write_results(raw, str(src))
    out = cal.apply(str(src))
    path = str(tmp_path / f"cal.{ext}")
    write_results(out, path)
    back = load_results(path)
    np.testing.assert_array_equal(back.score, out.score)
    np.testing.assert_array_equal(back.img_id, raw.img_id)
    np.testing.assert_array_equal(back.cat_id, raw.cat_id)
    np.testing.assert_array_equal(back.bbox, raw.bbox)
    assert not np.array_equal(back.score, raw.score)
    r = lveval.evaluate(sim_gt, path, protocols=("pooled",))
    assert 0 <= r.pooled["AP"] <= 1


def test_apply_rejects_bad_scores():
    g, samples = _toy()
    cal = GroupedCalibrator("platt").fit_samples(g, samples)
    with pytest.raises(InputError, match="record 1"):
        cal.apply([{"image_id": 1, "category_id": 3, "bbox": [0, 0, 1, 1], "score": 0.5},
                   {"image_id": 1, "category_id": 3, "bbox": [0, 0, 1, 1], "score": -1.0}])


def test_coco_rules_group_all_classes_as_unknown_frequency(coco_paths):
    """COCO ground truth has no LVIS frequency: 'frequency' grouping and 'by-frequency' use one group."""
    cal = GroupedCalibrator("platt", grouping="frequency").fit(coco_paths["gt"], coco_paths["bbox"])
    assert set(cal.use_) == {"frequency:unknown"}
    cal = GroupedCalibrator("platt", min_positives=1).fit(coco_paths["gt"], coco_paths["bbox"])
    assert {u for u in cal.use_ if not u.startswith("class:")} <= {"frequency:unknown"}
    r = lveval.evaluate(coco_paths["gt"], cal.apply(coco_paths["bbox"]), protocols=("fixed", "pooled"))
    base = lveval.evaluate(coco_paths["gt"], coco_paths["bbox"], protocols=("fixed", "pooled"))
    assert r.fixed == pytest.approx(base.fixed, abs=1e-12)
