"""ECE, per-class / per-group ECE and reliability diagram tests."""

from __future__ import annotations

import numpy as np
import pytest

from lveval.calibrate import (
    ece,
    ece_by_group,
    make_calibrator,
    mean_per_class_ece,
    per_class_ece,
    reliability_bins,
    reliability_diagram,
)


def test_ece_hand_computation_two_bins():
    s = [0.1, 0.2, 0.3, 0.8, 0.9]
    y = [0, 0, 1, 1, 1]
    # bin [0, .5): mean score .2, frequency 1/3, weight 3/5; bin [.5, 1]: mean .85, frequency 1, weight 2/5
    want = 3 / 5 * abs(1 / 3 - 0.2) + 2 / 5 * abs(1.0 - 0.85)
    assert ece(s, y, n_bins=2) == pytest.approx(want, abs=1e-15)
    assert want == pytest.approx(0.14)


def test_ece_hand_computation_default_15_bins():
    s = [0.05, 0.1, 0.5, 0.55, 0.95]  # each in its own bin of width 1/15
    y = [0, 1, 1, 0, 1]
    assert ece(s, y) == pytest.approx((0.05 + 0.9 + 0.5 + 0.55 + 0.05) / 5, abs=1e-15)


def test_ece_perfect_and_worst():
    assert ece([1.0, 1.0, 0.0], [1, 1, 0]) == 0.0
    assert ece([1.0, 0.0], [0, 1]) == 1.0
    with pytest.raises(ValueError):
        ece([], [])


def test_reliability_bins_content():
    b = reliability_bins([0.1, 0.2, 0.9], [0, 1, 1], n_bins=2)
    np.testing.assert_array_equal(b.counts, [2, 1])
    np.testing.assert_allclose(b.mean_score, [0.15, 0.9])
    np.testing.assert_allclose(b.frequency, [0.5, 1.0])
    b = reliability_bins([0.1], [1], n_bins=3)
    assert np.isnan(b.frequency[1]) and b.counts[1] == 0


def test_per_class_and_group_ece():
    s = np.array([0.1, 0.2, 0.3, 0.8, 0.9, 0.6, 0.6])
    y = np.array([0, 0, 1, 1, 1, 0, 1])
    cls = np.array([3, 3, 3, 3, 3, 7, 7])
    grp = np.array(["f", "f", "f", "f", "f", "r", "r"])
    per = per_class_ece(s, y, cls, n_bins=2)
    assert set(per) == {3, 7}
    assert per[3] == pytest.approx(0.14)
    assert per[7] == pytest.approx(abs(0.5 - 0.6))
    assert mean_per_class_ece(s, y, cls, n_bins=2) == pytest.approx((0.14 + 0.1) / 2)
    pooled = ece_by_group(s, y, grp, n_bins=2)
    assert pooled == {"f": pytest.approx(0.14), "r": pytest.approx(0.1)}
    # with class ids, each group is the mean per-class ECE of its classes
    grp2 = np.array(["c"] * 7)
    assert ece_by_group(s, y, grp2, class_ids=cls, n_bins=2)["c"] == pytest.approx(0.12)
    assert ece_by_group(s, y, grp2, n_bins=2)["c"] == pytest.approx(ece(s, y, n_bins=2))


def test_calibration_reduces_ece_in_sample():
    rng = np.random.default_rng(0)
    s = rng.beta(2, 2, 5000)
    y = (rng.uniform(size=s.size) < s**3).astype(int)
    before = ece(s, y)
    for name in ("histogram", "isotonic", "platt", "beta", "bbq"):
        after = ece(make_calibrator(name).fit(s, y).predict(s, keep_rank=False), y)
        assert after < 0.25 * before, name


def test_reliability_diagram_png(tmp_path):
    rng = np.random.default_rng(1)
    s = rng.beta(2, 2, 3000)
    y = (rng.uniform(size=s.size) < s**2).astype(int)
    path = tmp_path / "single.png"
    bins = reliability_diagram(s, y, path, title="uncalibrated")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert bins.ece == pytest.approx(ece(s, y))
    cal = make_calibrator("platt").fit(s, y)
    path2 = tmp_path / "multi.png"
    out = reliability_diagram({"uncalibrated": s, "Platt": cal.predict(s)}, y, path2)
    assert set(out) == {"uncalibrated", "Platt"} and path2.stat().st_size > 10_000
