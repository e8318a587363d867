"""Cross-check against netcal (Kueppers et al.), the implementation Dave et al. 2021 used.

Optional (marker ``optional``): skipped unless netcal is importable, so CI never runs it and it
is not counted as coverage of the calibrators (tests/calibrate/test_calib_methods.py is). netcal
needs torch, which the project
venv must not depend on, so run it from a separate venv, e.g.::

    PYTHONPATH=src /tmp/netcal-venv/bin/python -m pytest tests/calibrate/test_calib_netcal.py -s

Tolerances: histogram binning and isotonic regression are deterministic and
must agree to rounding.  netcal evaluates BBQ likelihoods in float32 and fits
the logistic-family models with scipy's default tolerances and numerical
gradients, so those agree to ~1e-5; 1e-4 is allowed.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

pytestmark = pytest.mark.optional
netcal = pytest.importorskip("netcal")
from netcal.binning import BBQ as NetcalBBQ  # noqa: E402
from netcal.binning import HistogramBinning as NetcalHistogram  # noqa: E402
from netcal.binning import IsotonicRegression as NetcalIsotonic  # noqa: E402
from netcal.scaling import BetaCalibration as NetcalBeta  # noqa: E402
from netcal.scaling import LogisticCalibration as NetcalLogistic  # noqa: E402
from netcal.scaling import TemperatureScaling as NetcalTemperature  # noqa: E402

from lveval.calibrate import (  # noqa: E402
    BBQ,
    BetaCalibration,
    HistogramBinning,
    IsotonicCalibration,
    PlattScaling,
    TemperatureScaling,
)


def _pairs():
    return {
        "histogram": (lambda: HistogramBinning(15), lambda: NetcalHistogram(bins=15), 1e-12),
        "bbq_aic": (lambda: BBQ.netcal_compatible("AIC"), lambda: NetcalBBQ(score_function="AIC"), 1e-4),
        "bbq_bic": (lambda: BBQ.netcal_compatible("BIC"), lambda: NetcalBBQ(score_function="BIC"), 1e-4),
        "isotonic": (IsotonicCalibration, NetcalIsotonic, 1e-12),
        "platt": (PlattScaling, NetcalLogistic, 1e-4),
        "beta": (BetaCalibration, NetcalBeta, 1e-4),
        "temperature": (TemperatureScaling, NetcalTemperature, 1e-4),
    }


def _dataset(kind, n, seed):
    rng = np.random.default_rng(seed)
    s = rng.beta(2.0, 3.0, n)
    if kind == "power":
        p = np.clip(1.3 * s**1.5, 0, 1)
    else:  # "neg_a": true map has a negative weight on ln(s), so beta calibration must refit with a = 0
        p = 1 / (1 + np.exp(-(-0.5 * np.log(s) - 1.5 * np.log1p(-s) - 0.5)))
    y = (rng.uniform(size=n) < p).astype(np.int64)
    return s, y, rng.beta(2.0, 3.0, 2000)


MEASURED: dict[tuple[str, str], float] = {}


@pytest.mark.parametrize("data", [("power", 300, 0), ("power", 3000, 1), ("neg_a", 3000, 2)])
@pytest.mark.parametrize("method", sorted(_pairs()))
def test_agrees_with_netcal(method, data):
    ours_factory, theirs_factory, tol = _pairs()[method]
    s, y, t = _dataset(*data)
    ours, theirs = ours_factory(), theirs_factory()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours.fit(s, y)
        theirs.fit(s, y)
        want = np.asarray(theirs.transform(t)).ravel()
    got = ours.predict(t, keep_rank=False)
    if method == "temperature" and data[0] == "neg_a":
        # Here the NLL falls for *negative* 1/T.  netcal's unconstrained fit returns that
        # rank-inverting "temperature"; ours keeps T > 0 and stops at the t_max bound.
        assert float(np.ravel(theirs.weights)[0]) < 0
        assert ours.temperature_ == pytest.approx(ours.t_max)
        return
    diff = float(np.max(np.abs(got - want)))
    MEASURED[(method, f"{data[0]}-{data[1]}")] = diff
    print(f"netcal agreement {method:12s} {data[0]:6s} n={data[1]:5d}: max |diff| = {diff:.3e}")
    if method == "beta" and data[0] == "neg_a":
        assert ours.a_ == 0.0
    assert diff <= tol
