"""Defining-property tests for lveval.calibrate.methods (no netcal needed)."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest
from scipy.optimize import minimize
from scipy.special import expit, gammaln, xlogy
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

from lveval.calibrate import (
    BBQ,
    EPS,
    BetaCalibration,
    HistogramBinning,
    IsotonicCalibration,
    NotFittedError,
    PlattScaling,
    TemperatureScaling,
    available_calibrators,
    calibrator_from_dict,
    keep_rank,
    logit,
    make_calibrator,
)
from lveval.calibrate.methods import bbq_bin_range

ALL = ["bbq", "beta", "histogram", "isotonic", "platt", "temperature"]


def _data(n=2000, seed=0):
    rng = np.random.default_rng(seed)
    s = rng.beta(2.0, 3.0, n)
    y = (rng.uniform(size=n) < np.clip(1.3 * s**1.5, 0, 1)).astype(np.int64)
    return s, y


def _nll_grad(theta, F, y):
    """Summed logistic NLL and gradient for p = sigmoid(F @ w + c), theta = (w..., c)."""
    z = F @ theta[:-1] + theta[-1]
    f = np.sum(np.logaddexp(0.0, z) - y * z)
    r = expit(z) - y
    return f, np.concatenate([F.T @ r, [r.sum()]])


# --------------------------------------------------------------------------- interface


def test_registry_lists_all_methods():
    assert available_calibrators() == ALL
    with pytest.raises(ValueError, match="unknown calibrator"):
        make_calibrator("nope")
    assert isinstance(make_calibrator("HISTOGRAM", n_bins=7), HistogramBinning)
    assert make_calibrator("histogram", n_bins=7).n_bins == 7


@pytest.mark.parametrize("name", ALL)
def test_fit_predict_roundtrip(name):
    s, y = _data(1500, seed=1)
    cal = make_calibrator(name)
    assert cal.fit(s, y) is cal
    t = np.concatenate([np.linspace(0, 1, 101), s[:200]])
    p = cal.predict(t)
    assert p.shape == t.shape and np.all(np.isfinite(p)) and p.min() >= 0 and p.max() <= 1
    d = cal.to_dict()
    text = json.dumps(d)  # must be JSON-serialisable
    d2 = json.loads(text)
    assert d2 == d
    cal2 = calibrator_from_dict(d2)
    assert type(cal2) is type(cal)
    assert cal2.to_dict() == d  # exact round trip
    np.testing.assert_array_equal(cal2.predict(t), p)
    np.testing.assert_array_equal(cal2.predict(t, keep_rank=False), cal.predict(t, keep_rank=False))


@pytest.mark.parametrize("name", ALL)
def test_unfitted_behaviour(name):
    cal = make_calibrator(name)
    with pytest.raises(NotFittedError):
        cal.predict([0.5])
    d = cal.to_dict()
    assert d["state"] is None
    assert calibrator_from_dict(json.loads(json.dumps(d))).to_dict() == d


def test_input_validation():
    cal = HistogramBinning()
    with pytest.raises(ValueError):
        cal.fit([0.1, 0.2], [0, 2])
    with pytest.raises(ValueError):
        cal.fit([0.1, np.nan], [0, 1])
    with pytest.raises(ValueError):
        cal.fit([], [])
    with pytest.raises(ValueError):
        cal.fit([0.1, 0.2], [1])
    with pytest.raises(ValueError):
        calibrator_from_dict({"method": "histogram", "params": {}, "state": None, "format_version": 99})
    with pytest.raises(ValueError):
        PlattScaling.from_dict(HistogramBinning().to_dict())


def test_logit_clip_is_documented_epsilon():
    z = logit(np.array([0.0, 1.0, 0.5]))
    assert z[0] == pytest.approx(math.log(EPS) - math.log1p(-EPS))
    assert z[1] == pytest.approx(-z[0])
    assert z[2] == 0.0


# --------------------------------------------------------------------------- edge cases

EDGE_CASES = {
    "all_zero": (np.linspace(0.05, 0.95, 40), np.zeros(40)),
    "all_one": (np.linspace(0.05, 0.95, 40), np.ones(40)),
    "single_0": (np.array([0.3]), np.array([0])),
    "single_1": (np.array([0.7]), np.array([1])),
    "constant_scores": (np.full(30, 0.42), np.r_[np.ones(10), np.zeros(20)]),
    "extreme_scores": (np.r_[np.zeros(10), np.ones(10), [0.5] * 4], np.r_[[0, 1] * 5, [1] * 8, [0] * 2, [1, 0, 1, 0]]),
    "two_separable": (np.array([0.2, 0.8]), np.array([0, 1])),
}


@pytest.mark.parametrize("case", sorted(EDGE_CASES))
@pytest.mark.parametrize("name", ALL)
def test_edge_cases_finite_in_unit_interval(name, case):
    s, y = EDGE_CASES[case]
    cal = make_calibrator(name).fit(s, y)
    t = np.array([0.0, 1e-300, 0.1, 0.42, 0.5, 0.9, 1.0 - 1e-16, 1.0])
    for kr in (True, False):
        p = cal.predict(t, keep_rank=kr)
        assert np.all(np.isfinite(p)) and p.min() >= 0.0 and p.max() <= 1.0
    assert calibrator_from_dict(json.loads(json.dumps(cal.to_dict()))).to_dict() == cal.to_dict()


def test_edge_case_documented_values():
    s, y = EDGE_CASES["all_zero"]
    # histogram / isotonic / bbq: empirical frequency 0
    for name in ("histogram", "isotonic", "bbq"):
        assert np.all(make_calibrator(name).fit(s, y).predict(s, keep_rank=False) == 0.0)
    # logistic family: constant Platt target (n_pos + 1) / (n + 2)
    for name in ("platt", "beta"):
        p = make_calibrator(name).fit(s, y).predict([0.1, 0.9], keep_rank=False)
        np.testing.assert_allclose(p, 1.0 / 42.0, rtol=1e-12)
    p = PlattScaling().fit(*EDGE_CASES["all_one"]).predict([0.3], keep_rank=False)
    np.testing.assert_allclose(p, 41.0 / 42.0, rtol=1e-12)
    # constant scores: mean label
    s, y = EDGE_CASES["constant_scores"]
    for name in ("platt", "beta", "isotonic"):
        p = make_calibrator(name).fit(s, y).predict([0.1, 0.42, 0.9], keep_rank=False)
        np.testing.assert_allclose(p, 1.0 / 3.0, rtol=1e-9)
    # temperature: every score 0.5 -> likelihood flat in T -> T = 1
    assert TemperatureScaling().fit([0.5, 0.5], [0, 1]).temperature_ == 1.0
    # histogram, single sample: its bin gets the label, others their midpoint
    h = HistogramBinning(n_bins=4).fit([0.3], [1])
    np.testing.assert_array_equal(h.bin_values_, [0.125, 1.0, 0.625, 0.875])


# --------------------------------------------------------------------------- histogram binning


def test_histogram_outputs_bin_frequencies():
    s = np.array([0.0, 0.1, 0.2, 0.25, 0.3, 0.49, 0.5, 0.74, 1.0, 1.0])
    y = np.array([0, 1, 1, 0, 0, 1, 1, 0, 1, 0])
    h = HistogramBinning(n_bins=4).fit(s, y)
    # bins [0, .25) [.25, .5) [.5, .75) [.75, 1]; written out by hand
    expected_bins = [2 / 3, 1 / 3, 1 / 2, 1 / 2]
    np.testing.assert_allclose(h.bin_values_, expected_bins)
    np.testing.assert_array_equal(h.bin_counts_, [3, 3, 2, 2])
    np.testing.assert_allclose(h.predict([0.0, 0.24, 0.25, 0.5, 0.75, 0.99, 1.0], keep_rank=False),
                               [2 / 3, 2 / 3, 1 / 3, 1 / 2, 1 / 2, 1 / 2, 1 / 2])


def test_histogram_matches_bruteforce_on_random_data():
    s, y = _data(3000, seed=2)
    n_bins = 15
    h = HistogramBinning(n_bins).fit(s, y)
    edges = np.linspace(0, 1, n_bins + 1)
    for k in range(n_bins):
        last = k == n_bins - 1
        inside = (s >= edges[k]) & ((s <= edges[k + 1]) if last else (s < edges[k + 1]))
        want = y[inside].mean() if inside.any() else 0.5 * (edges[k] + edges[k + 1])
        assert h.bin_values_[k] == pytest.approx(want, abs=1e-15)
        probe = s[inside][:5] if inside.any() else [0.5 * (edges[k] + edges[k + 1])]
        np.testing.assert_allclose(h.predict(probe, keep_rank=False), want, atol=1e-15)


def test_histogram_empty_bin_gets_midpoint():
    h = HistogramBinning(n_bins=10).fit([0.05, 0.06, 0.95], [0, 1, 1])
    assert h.predict([0.55], keep_rank=False)[0] == pytest.approx(0.55)
    assert h.predict([0.051], keep_rank=False)[0] == pytest.approx(0.5)


# --------------------------------------------------------------------------- isotonic regression


def _pav(y, w):
    """Textbook pool-adjacent-violators on already-sorted targets with weights."""
    blocks = []  # [value, weight, count]
    for yi, wi in zip(y, w):
        blocks.append([float(yi), float(wi), 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            v2, w2, c2 = blocks.pop()
            v1, w1, c1 = blocks.pop()
            blocks.append([(v1 * w1 + v2 * w2) / (w1 + w2), w1 + w2, c1 + c2])
    return np.repeat([b[0] for b in blocks], [b[2] for b in blocks])


def _best_monotone_bruteforce(y):
    """Least-squares monotone fit by enumerating every split into contiguous blocks."""
    n = len(y)
    best, best_sse = None, np.inf
    for cuts in itertools.product([0, 1], repeat=n - 1):
        bounds = [0] + [i + 1 for i, c in enumerate(cuts) if c] + [n]
        fit = np.concatenate([np.full(b - a, np.mean(y[a:b])) for a, b in zip(bounds, bounds[1:])])
        if np.all(np.diff(fit) >= -1e-15):
            sse = np.sum((fit - y) ** 2)
            if sse < best_sse - 1e-12:
                best, best_sse = fit, sse
    return best, best_sse


@pytest.mark.parametrize("seed", range(6))
def test_isotonic_is_least_squares_monotone_fit_bruteforce(seed):
    rng = np.random.default_rng(seed)
    s = np.sort(rng.uniform(size=9))
    y = (rng.uniform(size=9) < s).astype(float)
    fit = IsotonicCalibration().fit(s, y).predict(s, keep_rank=False)
    best, best_sse = _best_monotone_bruteforce(y)
    assert np.all(np.diff(fit) >= 0)
    assert np.sum((fit - y) ** 2) == pytest.approx(best_sse, abs=1e-12)
    np.testing.assert_allclose(fit, best, atol=1e-12)


def test_isotonic_matches_pav_and_sklearn_with_ties():
    rng = np.random.default_rng(7)
    s = np.round(rng.uniform(size=500), 2)  # many tied scores
    y = (rng.uniform(size=500) < s**2).astype(float)
    cal = IsotonicCalibration().fit(s, y)
    xs, inv, cnt = np.unique(s, return_inverse=True, return_counts=True)
    ybar = np.bincount(inv, weights=y) / cnt
    want = _pav(ybar, cnt)
    np.testing.assert_allclose(cal.predict(xs, keep_rank=False), want, atol=1e-12)
    t = np.linspace(-0.1, 1.1, 301)
    sk = IsotonicRegression(out_of_bounds="clip", y_min=0, y_max=1).fit(s, y)
    np.testing.assert_allclose(cal.predict(t, keep_rank=False), sk.predict(np.clip(t, 0, 1)), atol=1e-12)
    assert np.all(np.diff(cal.predict(t, keep_rank=False)) >= 0)


# --------------------------------------------------------------------------- Platt scaling


@pytest.mark.parametrize("feature", ["logit", "score"])
def test_platt_is_maximum_likelihood_logistic_regression(feature):
    s, y = _data(3000, seed=3)
    cal = PlattScaling(input=feature, l2=0.0).fit(s, y)
    F = (logit(s) if feature == "logit" else s)[:, None]
    # (1) gradient of the NLL vanishes at the fitted parameters
    _, g = _nll_grad(np.array([cal.slope_, cal.intercept_]), F, y)
    assert np.max(np.abs(g)) < 1e-7
    # (2) same optimum as a direct scipy minimisation of the NLL
    res = minimize(_nll_grad, np.zeros(2), args=(F, y), jac=True, method="BFGS", options={"gtol": 1e-10})
    np.testing.assert_allclose([cal.slope_, cal.intercept_], res.x, rtol=1e-6, atol=1e-8)
    # (3) and as scikit-learn's (effectively unregularised) logistic regression
    lr = LogisticRegression(C=1e12, tol=1e-12, max_iter=10_000).fit(F, y)
    np.testing.assert_allclose([cal.slope_, cal.intercept_], [lr.coef_[0, 0], lr.intercept_[0]], rtol=1e-5)
    np.testing.assert_allclose(cal.predict(s, keep_rank=False), lr.predict_proba(F)[:, 1], atol=1e-6)


def test_platt_recovers_generating_parameters():
    rng = np.random.default_rng(4)
    s = rng.uniform(0.01, 0.99, 100_000)
    y = (rng.uniform(size=s.size) < expit(0.6 * logit(s) - 0.8)).astype(float)
    cal = PlattScaling().fit(s, y)
    assert cal.slope_ == pytest.approx(0.6, abs=0.03)
    assert cal.intercept_ == pytest.approx(-0.8, abs=0.03)


def test_platt_l2_keeps_separable_data_finite():
    cal = PlattScaling().fit([0.2, 0.8], [0, 1])
    assert np.isfinite(cal.slope_) and cal.slope_ > 0
    p = cal.predict([0.2, 0.8], keep_rank=False)
    assert p[0] < 0.01 and p[1] > 0.99


# --------------------------------------------------------------------------- beta calibration


def _beta_model(s, a, b, c):
    return expit(a * np.log(s) - b * np.log1p(-s) + c)


def test_beta_recovers_known_parameters():
    rng = np.random.default_rng(5)
    s = rng.uniform(0.001, 0.999, 200_000)
    a, b, c = 2.0, 0.6, -0.4
    y = (rng.uniform(size=s.size) < _beta_model(s, a, b, c)).astype(float)
    cal = BetaCalibration().fit(s, y)
    assert cal.a_ == pytest.approx(a, abs=0.05)
    assert cal.b_ == pytest.approx(b, abs=0.05)
    assert cal.c_ == pytest.approx(c, abs=0.08)
    t = np.linspace(0.01, 0.99, 99)
    np.testing.assert_allclose(cal.predict(t, keep_rank=False), _beta_model(t, a, b, c), atol=0.01)


def test_beta_is_mle_on_log_features():
    s, y = _data(3000, seed=6)
    cal = BetaCalibration(l2=0.0).fit(s, y)
    assert cal.a_ > 0 and cal.b_ > 0  # unconstrained optimum is feasible here
    F = np.column_stack([np.log(s), -np.log1p(-s)])
    _, g = _nll_grad(np.array([cal.a_, cal.b_, cal.c_]), F, y)
    assert np.max(np.abs(g)) < 1e-7
    lr = LogisticRegression(C=1e12, tol=1e-12, max_iter=10_000).fit(F, y)
    np.testing.assert_allclose([cal.a_, cal.b_, cal.c_], [*lr.coef_[0], lr.intercept_[0]], rtol=1e-5)


def test_beta_reduces_to_platt():
    # a = b is exactly Platt scaling on the logit
    p, bt = PlattScaling(), BetaCalibration()
    p._set_state({"slope": 0.7, "intercept": -0.3})
    bt._set_state({"a": 0.7, "b": 0.7, "c": -0.3})
    p._fitted = bt._fitted = True
    t = np.linspace(0, 1, 201)
    np.testing.assert_allclose(bt.predict(t, keep_rank=False), p.predict(t, keep_rank=False), rtol=1e-12)
    # and on data generated by a Platt model the fitted a and b agree with Platt's slope
    rng = np.random.default_rng(8)
    s = rng.uniform(0.01, 0.99, 100_000)
    y = (rng.uniform(size=s.size) < expit(1.5 * logit(s) + 0.5)).astype(float)
    beta, platt = BetaCalibration().fit(s, y), PlattScaling().fit(s, y)
    assert beta.a_ == pytest.approx(platt.slope_, abs=0.05)
    assert beta.b_ == pytest.approx(platt.slope_, abs=0.05)
    np.testing.assert_allclose(beta.predict(t, keep_rank=False), platt.predict(t, keep_rank=False), atol=0.01)


def test_beta_negative_coefficient_is_refit_at_zero():
    # outcome depends on -ln(1-s) only, with a *negative* weight on ln s
    rng = np.random.default_rng(9)
    s = rng.uniform(0.001, 0.999, 20_000)
    y = (rng.uniform(size=s.size) < _beta_model(s, -0.5, 1.5, -0.5)).astype(float)
    cal = BetaCalibration(l2=0.0).fit(s, y)
    assert cal.a_ == 0.0 and cal.b_ > 0
    F = -np.log1p(-s)[:, None]
    lr = LogisticRegression(C=1e12, tol=1e-12, max_iter=10_000).fit(F, y)
    np.testing.assert_allclose([cal.b_, cal.c_], [lr.coef_[0, 0], lr.intercept_[0]], rtol=1e-5)
    assert np.all(np.diff(cal.predict(np.linspace(0, 1, 101), keep_rank=False)) >= 0)  # monotone


# --------------------------------------------------------------------------- temperature scaling


def test_temperature_minimises_nll():
    s, y = _data(3000, seed=10)
    cal = TemperatureScaling().fit(s, y)
    T = cal.temperature_
    z = logit(s)
    u = 1.0 / T
    grad_u = np.sum(z * (expit(u * z) - y))  # d NLL / d(1/T)
    assert abs(grad_u) < 1e-5 * s.size
    f0 = TemperatureScaling.nll(T, s, y)
    for factor in (0.999, 1.001, 0.9, 1.1):
        assert TemperatureScaling.nll(T * factor, s, y) > f0


def test_temperature_recovers_known_temperature():
    rng = np.random.default_rng(11)
    s = rng.uniform(0.01, 0.99, 50_000)
    y = (rng.uniform(size=s.size) < expit(logit(s) / 2.5)).astype(float)
    assert TemperatureScaling().fit(s, y).temperature_ == pytest.approx(2.5, rel=0.04)


def test_temperature_bounds_on_degenerate_data():
    cal = TemperatureScaling(t_min=0.01, t_max=100).fit([0.1, 0.2, 0.3], [0, 0, 0])
    assert cal.temperature_ == pytest.approx(0.01, rel=1e-6)


# --------------------------------------------------------------------------- BBQ


def _bbq_reference_weights(s, y, scoring, binning, n_bins_list):
    """Independent recomputation of BBQ model weights (no code shared with the library)."""
    n = s.size
    logs = []
    for B in n_bins_list:
        if binning == "uniform":
            edges = np.linspace(0, 1, B + 1)
        else:
            edges = np.quantile(s, np.linspace(0, 1, B + 1))
            edges[0], edges[-1] = 0, 1
            edges = np.unique(edges)
        k = edges.size - 1
        ll, bd = 0.0, 0.0
        for j in range(k):
            inside = (s >= edges[j]) & ((s <= 1) if j == k - 1 else (s < edges[j + 1]))
            cnt, pos = inside.sum(), y[inside].sum()
            mid = 0.5 * (edges[j] + edges[j + 1])
            if cnt:
                f = pos / cnt
                ll += xlogy(pos, f) + xlogy(cnt - pos, 1 - f)
            al, be = 2.0 / k * mid, 2.0 / k * (1 - mid)
            bd += gammaln(2.0 / k) - gammaln(cnt + 2.0 / k) + gammaln(pos + al) - gammaln(al)
            bd += gammaln(cnt - pos + be) - gammaln(be)
        if scoring == "AIC":
            logs.append(-0.5 * (-2 * ll + 2 * k))
        elif scoring == "BIC":
            logs.append(-0.5 * (-2 * ll + k * np.log(n)))
        else:
            logs.append(bd)
    logs = np.array(logs)
    w = np.exp(logs - logs.max())
    return w / w.sum()


@pytest.mark.parametrize("binning", ["quantile", "uniform"])
@pytest.mark.parametrize("scoring", ["AIC", "BIC", "BDeu"])
def test_bbq_is_weighted_average_with_criterion_weights(scoring, binning):
    s, y = _data(600, seed=12)
    cal = BBQ(scoring=scoring, binning=binning).fit(s, y)
    lo, hi = bbq_bin_range(600)
    np.testing.assert_array_equal(cal.model_n_bins_, np.arange(lo, hi + 1))
    want = _bbq_reference_weights(s, y, scoring, binning, range(lo, hi + 1))
    np.testing.assert_allclose(cal.model_weights_, want, rtol=1e-9, atol=1e-300)
    t = np.concatenate([np.linspace(0, 1, 257), s])
    per_model = cal.predict_models(t)
    np.testing.assert_allclose(cal.predict(t, keep_rank=False), cal.model_weights_ @ per_model, atol=1e-12)


def test_bbq_quantile_bins_have_equal_frequency():
    s, y = _data(1000, seed=13)
    cal = BBQ().fit(s, y)
    for m in cal.models_:
        counts = np.bincount(np.clip(np.searchsorted(m["edges"], s, "right") - 1, 0, len(m["edges"]) - 2))
        assert counts.max() - counts.min() <= 2
        assert counts.size == m["n_bins"]


def test_bbq_member_models_are_bin_frequencies():
    s, y = _data(800, seed=14)
    cal = BBQ(scoring="BIC").fit(s, y)
    for m in cal.models_[:5]:
        h_edges = m["edges"]
        idx = np.clip(np.searchsorted(h_edges, s, "right") - 1, 0, len(h_edges) - 2)
        for k in np.unique(idx):
            assert m["values"][k] == pytest.approx(y[idx == k].mean(), abs=1e-15)


def test_bbq_aic_prefers_more_bins_than_bic():
    s, y = _data(3000, seed=15)
    aic, bic = BBQ(scoring="AIC").fit(s, y), BBQ(scoring="BIC").fit(s, y)
    assert aic.model_weights_ @ aic.model_n_bins_ > bic.model_weights_ @ bic.model_n_bins_


def test_bbq_elbow_pruning():
    s, y = _data(1000, seed=16)
    full = BBQ(binning="uniform").fit(s, y)
    pruned = BBQ.netcal_compatible("AIC").fit(s, y)
    kept = pruned.model_weights_ > 0
    assert 1 <= kept.sum() < kept.size
    assert pruned.model_weights_.sum() == pytest.approx(1.0)
    # kept models are the most likely ones, reweighted proportionally to their likelihood
    assert full.model_weights_[kept].min() >= full.model_weights_[~kept].max()
    np.testing.assert_allclose(pruned.model_weights_[kept], full.model_weights_[kept] / full.model_weights_[kept].sum())


def test_bbq_bin_range():
    assert bbq_bin_range(1) == (1, 1)
    assert bbq_bin_range(1000) == (1, 100)
    assert bbq_bin_range(10**6) == (10, 1000)


# --------------------------------------------------------------------------- keep_rank


def _groups(c, tol):
    """Label each value with its tie group: sorted values chained while gaps are <= tol."""
    order = np.argsort(c, kind="stable")
    breaks = np.concatenate(([0], np.cumsum(np.diff(c[order]) > tol)))
    g = np.empty(c.size, dtype=np.int64)
    g[order] = breaks
    return g


def _check_keep_rank(s, c, out, spread=0.5, tol=1e-12):
    assert np.all((out >= 0) & (out <= 1))
    g = _groups(c, tol)
    n_groups = g.max() + 1
    lo = np.array([c[g == k].min() for k in range(n_groups)])
    hi = np.array([c[g == k].max() for k in range(n_groups)])
    for k in range(n_groups):
        sel = g == k
        v = c[sel].mean()
        assert out[sel].mean() == pytest.approx(v, abs=1e-13)  # group mean unchanged
        left = 0.5 * ((hi[k - 1] if k else 0.0) + lo[k])
        right = 0.5 * (hi[k] + (lo[k + 1] if k + 1 < n_groups else 1.0))
        h = min(v - left, right - v)
        assert np.all(np.abs(out[sel] - v) <= spread * h + 1e-15)  # inside the gap (up to rounding)
        if h > 1e-9:
            gs, go = s[sel], out[sel]
            order = np.argsort(gs, kind="stable")
            ds, do = np.diff(gs[order]), np.diff(go[order])
            assert np.all(do[ds > 0] > 0)  # distinct originals -> strictly ordered
            assert np.all(do[ds == 0] == 0)  # equal originals stay equal
        elif lo[k] == hi[k] and (v == 0.0 or v == 1.0):
            assert np.all(out[sel] == v)  # a group at exactly 0 or 1 cannot move
    # groups do not overlap: sorting by calibrated value keeps the group order
    for k in range(n_groups - 1):
        assert out[g == k].max() < out[g == k + 1].min()


@pytest.mark.parametrize("seed", range(5))
def test_keep_rank_properties_random(seed):
    rng = np.random.default_rng(seed)
    s = rng.uniform(size=400)
    c = rng.choice([0.0, 0.1, 0.1000001, 0.3, 0.8, 1.0], size=400)  # arbitrary (non-monotone) groups
    s[:20] = s[20]  # some tied originals
    out = keep_rank(s, c)
    _check_keep_rank(s, c, out)
    _check_keep_rank(s, c, keep_rank(s, c, tol=0.0), tol=0.0)
    _check_keep_rank(s, c, keep_rank(s, c, spread=0.9), spread=0.9)


@pytest.mark.parametrize("name", ["histogram", "isotonic", "bbq"])
def test_keep_rank_on_binning_outputs_restores_order(name):
    s, y = _data(2000, seed=17)
    cal = make_calibrator(name).fit(s, y)
    t = np.random.default_rng(18).uniform(0.05, 0.95, 3000)
    raw = cal.predict(t, keep_rank=False)
    out = cal.predict(t)
    _check_keep_rank(t, raw, out)
    if name == "isotonic":  # monotone map -> whole output strictly monotone (except groups at 0 / 1)
        order = np.argsort(t)
        movable = (raw[order][1:] > 0) & (raw[order][:-1] < 1)
        assert np.all(np.diff(out[order])[movable] > 0)


def test_keep_rank_small_cases():
    np.testing.assert_array_equal(keep_rank([0.3], [0.5]), [0.5])
    np.testing.assert_array_equal(keep_rank([], []), [])
    out = keep_rank([0.1, 0.2, 0.3], [0.4, 0.4, 0.4])
    np.testing.assert_allclose(out, [0.3, 0.4, 0.5])  # half-gap min(0.4, 0.6)/2 = 0.2, spread 0.5
    np.testing.assert_array_equal(keep_rank([0.1, 0.2], [0.4, 0.4], spread=0.0), [0.4, 0.4])
    with pytest.raises(ValueError):
        keep_rank([0.1], [0.4], spread=1.0)
    with pytest.raises(ValueError):
        keep_rank([0.1, 0.2], [0.4, 1.2])
    # values equal up to floating-point noise form one group and are re-ordered by original score
    out = keep_rank([0.2, 0.1], [0.3, 0.3 + 1e-15])
    assert out[0] > out[1] and out.mean() == pytest.approx(0.3 + 0.5e-15, abs=1e-16)
    out = keep_rank([0.2, 0.1], [0.3, 0.3 + 1e-15], tol=0.0)
    assert out[0] < out[1]


@pytest.mark.parametrize("name", ["platt", "beta", "temperature"])
def test_keep_rank_is_noop_for_strictly_monotone_maps(name):
    s, y = _data(500, seed=19)
    cal = make_calibrator(name).fit(s, y)
    np.testing.assert_array_equal(cal.predict(s), cal.predict(s, keep_rank=False))
