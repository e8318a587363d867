"""Binary score calibrators for per-class detector calibration.

Dave et al. 2021 ("Evaluating Large-Vocabulary Object Detectors: The Devil is
in the Details", Sec. 6.3, Table 8) improve AP-Pool by calibrating each class's
detection scores separately, comparing the five methods of Kueppers et al.
(CVPR-W 2020): histogram binning, BBQ, beta calibration, isotonic regression
and Platt scaling.  This module implements those (plus temperature scaling)
with numpy / scipy / scikit-learn only, behind one small interface::

    cal = make_calibrator("platt").fit(scores, labels)   # labels: 1 = true positive
    calibrated = cal.predict(new_scores)                  # in [0, 1]
    cal2 = calibrator_from_dict(json.loads(json.dumps(cal.to_dict())))

Conventions shared by every method
----------------------------------
* ``scores`` is a 1-D array of finite confidences; values outside [0, 1] are
  clipped to [0, 1] (non-finite values raise ``ValueError``).  ``labels`` is a
  1-D array of 0/1 (or bool).  ``fit`` needs at least one sample.
* Methods that take a logarithm or logit first clip scores to
  ``[EPS, 1 - EPS]`` with ``EPS = float64 machine epsilon`` (~2.2e-16, the
  value netcal and the authors' ``betacal`` package use), so scores of exactly
  0 or 1 map to logits of about -36.0 / +36.0 instead of infinities.
* ``predict(scores, keep_rank=True)`` finally applies :func:`keep_rank`, which
  breaks the ties that binning methods create while preserving each tied
  group's mean.  Strictly monotone maps (Platt, beta, temperature) are in
  effect left unchanged: they create no ties, equal inputs stay equal, and only
  outputs closer than ``rank_tol`` (1e-12) are re-spread in input order.
* Degenerate training data always yields finite outputs in [0, 1]; each class
  documents what it does for all-0 / all-1 labels, a single sample or
  constant scores.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import expit, gammaln, logsumexp, xlogy
from sklearn.isotonic import IsotonicRegression as _SkIsotonic

__all__ = [
    "EPS",
    "NotFittedError",
    "Calibrator",
    "HistogramBinning",
    "BBQ",
    "BetaCalibration",
    "IsotonicCalibration",
    "PlattScaling",
    "TemperatureScaling",
    "keep_rank",
    "logit",
    "equal_width_bin_index",
    "bbq_bin_range",
    "make_calibrator",
    "calibrator_from_dict",
    "available_calibrators",
]

#: Clip applied before any log/logit (float64 machine epsilon, as in netcal and betacal).
EPS: float = float(np.finfo(np.float64).eps)

#: Default fraction of the half-gap to neighbouring groups used by :func:`keep_rank`.
DEFAULT_RANK_SPREAD: float = 0.5

#: Default tolerance below which :func:`keep_rank` treats calibrated values as tied.
DEFAULT_RANK_TOL: float = 1e-12

_FORMAT_VERSION = 1


class NotFittedError(RuntimeError):
    """Raised when ``predict`` or ``to_dict`` state is needed before ``fit``."""


# ----------------------------------------------------------------------------
# small helpers
# ----------------------------------------------------------------------------


def _as_scores(scores: Any) -> np.ndarray:
    """Validate a 1-D array of finite scores and clip it to [0, 1]."""
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 1:
        raise ValueError(f"scores must be 1-D, got shape {s.shape}")
    if not np.all(np.isfinite(s)):
        raise ValueError("scores must be finite")
    return np.clip(s, 0.0, 1.0)


def _as_fit_inputs(scores: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
    s = _as_scores(scores)
    y = np.asarray(labels)
    if y.ndim != 1 or y.shape[0] != s.shape[0]:
        raise ValueError(f"labels must be 1-D with the same length as scores ({s.shape[0]}), got shape {y.shape}")
    if s.shape[0] == 0:
        raise ValueError("cannot fit a calibrator on zero samples")
    y = y.astype(np.float64)
    if not np.all((y == 0.0) | (y == 1.0)):
        raise ValueError("labels must be 0/1")
    return s, y


def logit(scores: Any, eps: float = EPS) -> np.ndarray:
    """Log-odds of scores clipped to ``[eps, 1 - eps]`` (finite for 0 and 1)."""
    p = np.clip(np.asarray(scores, dtype=np.float64), eps, 1.0 - eps)
    return np.log(p) - np.log1p(-p)


def _safe_logit_scalar(p: float) -> float:
    p = min(max(float(p), EPS), 1.0 - EPS)
    return math.log(p) - math.log1p(-p)


def _bin_index(edges: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Bin of each score for sorted ``edges``: bins are [e_k, e_k+1), the last one closed."""
    idx = np.searchsorted(edges, s, side="right") - 1
    return np.clip(idx, 0, len(edges) - 2)


def equal_width_bin_index(scores: Any, n_bins: int) -> np.ndarray:
    """Equal-width bin of each score in [0, 1]: bin k is [k/n, (k+1)/n), the last bin includes 1.

    Shared by :class:`HistogramBinning` and the ECE helpers so both use exactly
    the same bin boundaries (``np.linspace(0, 1, n_bins + 1)``).
    """
    if int(n_bins) < 1:
        raise ValueError("n_bins must be >= 1")
    edges = np.linspace(0.0, 1.0, int(n_bins) + 1)
    return _bin_index(edges, np.clip(np.asarray(scores, dtype=np.float64), 0.0, 1.0))


def _floats(a: Any) -> list[float]:
    return [float(v) for v in np.asarray(a, dtype=np.float64).ravel()]


def _ints(a: Any) -> list[int]:
    return [int(v) for v in np.asarray(a).ravel()]


# ----------------------------------------------------------------------------
# rank keeping
# ----------------------------------------------------------------------------


def keep_rank(
    original_scores: Any,
    calibrated: Any,
    spread: float = DEFAULT_RANK_SPREAD,
    tol: float = DEFAULT_RANK_TOL,
) -> np.ndarray:
    """Break ties in ``calibrated`` by the original scores, preserving every tie group's mean.

    Binning calibrators (histogram, BBQ, isotonic) send many raw scores to one
    value; within a class that destroys the detector's ranking, and across
    classes it creates large blocks of tied scores in AP-Pool.  This function
    restores a strict order inside each block without moving the block.

    Construction.  Sort the distinct calibrated values and cut them into
    groups wherever two consecutive values differ by more than ``tol``
    (default 1e-12; so values equal up to floating-point noise, as produced by
    BBQ's weighted sums, form one group; ``tol=0`` groups exactly equal values
    only).  Group k has members with values in ``[lo_k, hi_k]`` and mean value
    ``v_k``.  Put virtual neighbours at 0 and 1 and the group boundaries
    halfway between neighbouring groups, ``L_k = (hi_{k-1} + lo_k) / 2`` and
    ``U_k = (hi_k + lo_{k+1}) / 2``; the group may use the half-gap
    ``h_k = min(v_k - L_k, U_k - v_k)``.  For member i with original score
    ``s_i``, group mean original score ``m_k`` and largest absolute deviation
    ``D_k = max_j |s_j - m_k|``::

        out_i = v_k + spread * h_k * (s_i - m_k) / D_k

    (members keep their calibrated value when ``D_k == 0``).  Consequences:
    (1) the group mean equals ``v_k`` up to rounding (the deviations sum to
    zero), so with exact ties every group keeps its mean calibrated score;
    (2) inside a group the output is an increasing affine function of the
    original score, so distinct originals become strictly ordered and equal
    originals stay equal; (3) every output lies within ``v_k +/- spread * h_k``,
    strictly inside the midpoints to the neighbouring groups for
    ``spread < 1``, so groups stay separated and keep their order, and outputs
    stay in [0, 1].  A group whose value is exactly 0 or 1 has ``h_k = 0`` and
    cannot be spread: a mean of 0 (or 1) inside [0, 1] forces all members to 0
    (or 1).  The result is strictly monotone overall when the calibration map
    was non-decreasing; for non-monotone maps (histogram frequencies need not
    increase) only the order inside each group is restored.  It depends on the
    batch passed in (groups and neighbours are those present in
    ``calibrated``), so call it once per class on all of that class's
    detections.  Spreads below float64 resolution (about 1e-16) cannot be
    represented.

    Args:
        original_scores: raw scores, same length as ``calibrated``.
        calibrated: calibrated scores in [0, 1].
        spread: fraction in [0, 1) of the half-gap a group may occupy; 0 disables it.
        tol: values closer than this (chained) count as one group.
    """
    s = np.asarray(original_scores, dtype=np.float64)
    c = np.asarray(calibrated, dtype=np.float64)
    if s.shape != c.shape or c.ndim != 1:
        raise ValueError("original_scores and calibrated must be 1-D arrays of the same length")
    if not (0.0 <= spread < 1.0):
        raise ValueError("spread must be in [0, 1)")
    if tol < 0.0:
        raise ValueError("tol must be >= 0")
    if not (np.all(np.isfinite(s)) and np.all(np.isfinite(c))):
        raise ValueError("keep_rank needs finite inputs")
    if c.size and (c.min() < 0.0 or c.max() > 1.0):
        raise ValueError("calibrated scores must lie in [0, 1]")
    if c.size < 2 or spread == 0.0:
        return c.copy()
    uniq, uinv = np.unique(c, return_inverse=True)
    group_of_uniq = np.concatenate(([0], np.cumsum(np.diff(uniq) > tol)))
    inverse = group_of_uniq[uinv]
    n_groups = int(group_of_uniq[-1]) + 1
    counts = np.bincount(inverse, minlength=n_groups)
    first = np.searchsorted(group_of_uniq, np.arange(n_groups), side="left")
    last = np.searchsorted(group_of_uniq, np.arange(n_groups), side="right") - 1
    lo, hi = uniq[first], uniq[last]
    value = np.bincount(inverse, weights=c, minlength=n_groups) / counts
    value = np.where(lo == hi, lo, np.clip(value, lo, hi))  # exact ties: the shared value itself
    lower = 0.5 * (np.concatenate(([0.0], hi[:-1])) + lo)
    upper = 0.5 * (hi + np.concatenate((lo[1:], [1.0])))
    half_gap = np.maximum(np.minimum(value - lower, upper - value), 0.0)
    mean_s = np.bincount(inverse, weights=s, minlength=n_groups) / counts
    dev = s - mean_s[inverse]
    max_dev = np.zeros(n_groups)
    np.maximum.at(max_dev, inverse, np.abs(dev))
    safe = np.where(max_dev > 0.0, max_dev, 1.0)
    scale = np.where(max_dev > 0.0, spread * half_gap / safe, 0.0)
    out = np.where(max_dev[inverse] > 0.0, value[inverse] + scale[inverse] * dev, c)
    return np.clip(out, 0.0, 1.0)


# ----------------------------------------------------------------------------
# base class and registry
# ----------------------------------------------------------------------------

_REGISTRY: dict[str, type[Calibrator]] = {}


def _register(cls: type[Calibrator]) -> type[Calibrator]:
    _REGISTRY[cls.name] = cls
    return cls


class Calibrator:
    """Common interface: ``fit(scores, labels) -> self``, ``predict(scores) -> [0, 1]``.

    Subclasses implement ``_fit``, ``_predict``, ``get_params`` and the
    ``_get_state`` / ``_set_state`` pair; ``to_dict`` / ``from_dict`` give a
    JSON-serialisable form that round-trips exactly (floats are stored as
    Python floats, whose JSON repr is exact).
    """

    name: ClassVar[str] = ""

    def __init__(self) -> None:
        self._fitted = False

    # -- public API ---------------------------------------------------------
    def fit(self, scores: Any, labels: Any) -> Calibrator:
        """Fit on raw scores and 0/1 correctness labels (1 = true positive)."""
        s, y = _as_fit_inputs(scores, labels)
        self._fit(s, y)
        self._fitted = True
        return self

    def predict(
        self,
        scores: Any,
        keep_rank: bool = True,
        rank_spread: float = DEFAULT_RANK_SPREAD,
        rank_tol: float = DEFAULT_RANK_TOL,
    ) -> np.ndarray:
        """Calibrated scores in [0, 1]; with ``keep_rank`` ties are broken by :func:`keep_rank`."""
        self._check_fitted()
        s = _as_scores(scores)
        p = np.clip(self._predict(s), 0.0, 1.0)
        if keep_rank:
            p = _keep_rank(s, p, spread=rank_spread, tol=rank_tol)
        return p

    @property
    def is_fitted(self) -> bool:
        return self._fitted

    def get_params(self) -> dict[str, Any]:
        """Constructor arguments (JSON-serialisable)."""
        return {}

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable description: method name, constructor params, fitted state (or None)."""
        return {
            "method": self.name,
            "format_version": _FORMAT_VERSION,
            "params": self.get_params(),
            "state": self._get_state() if self._fitted else None,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Calibrator:
        """Inverse of :meth:`to_dict`."""
        if d.get("method") != cls.name:
            raise ValueError(f"dict describes method {d.get('method')!r}, not {cls.name!r}")
        if d.get("format_version", _FORMAT_VERSION) != _FORMAT_VERSION:
            raise ValueError(f"unsupported format_version {d.get('format_version')!r}")
        obj = cls(**d.get("params", {}))
        state = d.get("state")
        if state is not None:
            obj._set_state(state)
            obj._fitted = True
        return obj

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    # -- to implement -------------------------------------------------------
    def _fit(self, s: np.ndarray, y: np.ndarray) -> None:
        raise NotImplementedError

    def _predict(self, s: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _get_state(self) -> dict[str, Any]:
        raise NotImplementedError

    def _set_state(self, state: dict[str, Any]) -> None:
        raise NotImplementedError

    def _check_fitted(self) -> None:
        if not self._fitted:
            raise NotFittedError(f"{type(self).__name__} is not fitted; call fit() first")


_keep_rank = keep_rank  # predict() has a parameter of the same name


def available_calibrators() -> list[str]:
    """Registered method names accepted by :func:`make_calibrator`."""
    return sorted(_REGISTRY)


def make_calibrator(name: str, **params: Any) -> Calibrator:
    """Build an unfitted calibrator by name (see :func:`available_calibrators`)."""
    key = str(name).lower()
    if key not in _REGISTRY:
        raise ValueError(f"unknown calibrator {name!r}; available: {', '.join(available_calibrators())}")
    return _REGISTRY[key](**params)


def calibrator_from_dict(d: dict[str, Any]) -> Calibrator:
    """Rebuild any calibrator from :meth:`Calibrator.to_dict` output."""
    key = d.get("method")
    if key not in _REGISTRY:
        raise ValueError(f"unknown calibrator {key!r}; available: {', '.join(available_calibrators())}")
    return _REGISTRY[key].from_dict(d)


# ----------------------------------------------------------------------------
# histogram binning
# ----------------------------------------------------------------------------


@_register
class HistogramBinning(Calibrator):
    """Histogram binning (Zadrozny & Elkan, ICML 2001).

    [0, 1] is cut into ``n_bins`` equal-width bins (bin k = [k/n, (k+1)/n), the
    last bin includes 1, see :func:`equal_width_bin_index`); a score is mapped
    to the empirical positive frequency of the training samples in its bin.

    Empty bins (no training sample) output the bin's midpoint: with no
    evidence the raw score is trusted, which is also what netcal does.
    Degenerate data follows directly: all-0 labels give 0 in every non-empty
    bin, all-1 labels give 1, a single sample or constant scores fill one bin.
    """

    name = "histogram"

    def __init__(self, n_bins: int = 15) -> None:
        super().__init__()
        if int(n_bins) != n_bins or n_bins < 1:
            raise ValueError("n_bins must be a positive integer")
        self.n_bins = int(n_bins)

    def get_params(self) -> dict[str, Any]:
        return {"n_bins": self.n_bins}

    def _fit(self, s: np.ndarray, y: np.ndarray) -> None:
        idx = equal_width_bin_index(s, self.n_bins)
        counts = np.bincount(idx, minlength=self.n_bins)
        positives = np.bincount(idx, weights=y, minlength=self.n_bins)
        edges = np.linspace(0.0, 1.0, self.n_bins + 1)
        mids = 0.5 * (edges[:-1] + edges[1:])
        self.bin_counts_ = counts.astype(np.int64)
        self.bin_positives_ = np.rint(positives).astype(np.int64)
        self.bin_values_ = np.where(counts > 0, positives / np.maximum(counts, 1), mids)

    def _predict(self, s: np.ndarray) -> np.ndarray:
        return self.bin_values_[equal_width_bin_index(s, self.n_bins)]

    def _get_state(self) -> dict[str, Any]:
        return {
            "bin_values": _floats(self.bin_values_),
            "bin_counts": _ints(self.bin_counts_),
            "bin_positives": _ints(self.bin_positives_),
        }

    def _set_state(self, state: dict[str, Any]) -> None:
        self.bin_values_ = np.asarray(state["bin_values"], dtype=np.float64)
        self.bin_counts_ = np.asarray(state["bin_counts"], dtype=np.int64)
        self.bin_positives_ = np.asarray(state["bin_positives"], dtype=np.int64)
        if self.bin_values_.shape != (self.n_bins,):
            raise ValueError("bin_values length does not match n_bins")


# ----------------------------------------------------------------------------
# BBQ
# ----------------------------------------------------------------------------


def bbq_bin_range(n_samples: int, factor: float = 10.0) -> tuple[int, int]:
    """Bin counts BBQ averages over: ``floor(N^(1/3)/C) .. min(ceil(N/5), ceil(C * N^(1/3)))``.

    Naeini et al. (AAAI 2015) use ``N^(1/3)/C .. C * N^(1/3)`` with C = 10;
    netcal additionally caps at N/5 so bins are not almost empty.  At least one
    model (one bin) is always used.  Perfect cubes get their exact integer
    root (``1e6 ** (1/3)`` is 99.999... in floating point; netcal keeps that
    rounding, so its lower bound differs by one bin for such N).
    """
    root = float(n_samples) ** (1.0 / 3.0)
    if round(root) ** 3 == n_samples:
        root = float(round(root))
    lo = max(1, int(math.floor(root / factor)))
    hi = int(min(math.ceil(n_samples / 5.0), math.ceil(root * factor)))
    return lo, max(lo, hi)


@_register
class BBQ(Calibrator):
    """Bayesian Binning into Quantiles (Naeini, Cooper & Hauskrecht, AAAI 2015).

    BBQ averages histogram-binning models with B = ``bbq_bin_range(N)`` bins,
    weighting each model by its posterior probability.  ``scoring`` chooses the
    (approximate) log marginal likelihood of a model:

    * ``"AIC"`` (default, Table 8 of Dave et al. uses BBQ (AIC)) and ``"BIC"``:
      ``log w_M = -IC_M / 2 + const`` with ``IC = -2 LL + 2K`` (AIC) or
      ``-2 LL + K ln N`` (BIC), LL the training log-likelihood of the bin
      frequencies and K the number of bins -- this is how netcal scores BBQ.
      Each model predicts its empirical bin frequencies.
    * ``"BDeu"``: the Bayesian score of the original paper, a Beta-Binomial
      marginal likelihood per bin with prior ``Beta(N' p_b / B, N' (1-p_b) / B)``
      (``p_b`` = bin midpoint, ``N' = prior_strength`` = 2), and each model
      predicts the posterior mean of its bin.

    ``binning="quantile"`` (default) uses equal-frequency bins as in the paper
    (edges at sample quantiles, outermost edges at 0 and 1, duplicate edges
    from tied scores merged); ``"uniform"`` uses equal-width bins, which is
    what netcal's BBQ actually does (its ``equal_intervals=True`` default; its
    quantile mode is not implemented).  ``prune="elbow"`` reproduces netcal's
    model pruning: sort relative likelihoods (max = 1) descending, keep the
    leading run of exact ties, then keep extending while the drop to the next
    model divided by the variance of all relative likelihoods exceeds
    ``prune_alpha`` (1e-3); the kept weights are renormalised.  So
    ``BBQ(scoring="AIC", binning="uniform", prune="elbow")`` is the
    netcal-compatible configuration (:meth:`netcal_compatible`).

    Empty bins predict their midpoint, as in :class:`HistogramBinning`.  The
    fitted average is a step function, stored as one merged table of edges and
    values so prediction is a single lookup; the individual models are kept in
    ``models_`` after ``fit`` (not serialised) for inspection.  Degenerate data:
    all-0 (all-1) labels give 0 (1) in every occupied bin under AIC/BIC; a
    single sample or constant scores give one occupied bin.
    """

    name = "bbq"
    _SCORINGS = ("AIC", "BIC", "BDEU")

    def __init__(
        self,
        scoring: str = "AIC",
        binning: str = "quantile",
        prune: str | None = None,
        prune_alpha: float = 1e-3,
        bin_range_factor: float = 10.0,
        prior_strength: float = 2.0,
    ) -> None:
        super().__init__()
        if str(scoring).upper() not in self._SCORINGS:
            raise ValueError(f"scoring must be one of AIC, BIC, BDeu; got {scoring!r}")
        if binning not in ("quantile", "uniform"):
            raise ValueError("binning must be 'quantile' or 'uniform'")
        if prune not in (None, "elbow"):
            raise ValueError("prune must be None or 'elbow'")
        if bin_range_factor <= 0 or prior_strength <= 0 or prune_alpha < 0:
            raise ValueError("bin_range_factor and prior_strength must be > 0, prune_alpha >= 0")
        self.scoring = {"AIC": "AIC", "BIC": "BIC", "BDEU": "BDeu"}[str(scoring).upper()]
        self.binning = binning
        self.prune = prune
        self.prune_alpha = float(prune_alpha)
        self.bin_range_factor = float(bin_range_factor)
        self.prior_strength = float(prior_strength)

    @classmethod
    def netcal_compatible(cls, scoring: str = "AIC") -> BBQ:
        """BBQ configured like ``netcal.binning.BBQ(scoring)``: equal-width bins, elbow pruning."""
        return cls(scoring=scoring, binning="uniform", prune="elbow")

    def get_params(self) -> dict[str, Any]:
        return {
            "scoring": self.scoring,
            "binning": self.binning,
            "prune": self.prune,
            "prune_alpha": self.prune_alpha,
            "bin_range_factor": self.bin_range_factor,
            "prior_strength": self.prior_strength,
        }

    def _edges(self, s_sorted: np.ndarray, n_bins: int) -> np.ndarray:
        if self.binning == "uniform":
            return np.linspace(0.0, 1.0, n_bins + 1)
        # equal-frequency edges: linear-interpolated sample quantiles of the sorted scores
        pos = np.linspace(0.0, 1.0, n_bins + 1) * (s_sorted.size - 1)
        lo = np.floor(pos).astype(np.int64)
        hi = np.minimum(lo + 1, s_sorted.size - 1)
        frac = pos - lo
        edges = s_sorted[lo] + frac * (s_sorted[hi] - s_sorted[lo])
        edges[0], edges[-1] = 0.0, 1.0
        edges = np.unique(edges)
        if edges.size < 2:  # every score is 0 or 1 and the quantiles collapsed
            edges = np.array([0.0, 1.0])
        return edges

    def _fit(self, s: np.ndarray, y: np.ndarray) -> None:
        n = s.size
        order = np.argsort(s, kind="stable")
        s_sorted = s[order]
        cum_pos = np.concatenate(([0.0], np.cumsum(y[order])))
        lo_b, hi_b = bbq_bin_range(n, self.bin_range_factor)
        models: list[dict[str, Any]] = []
        for n_bins in range(lo_b, hi_b + 1):
            edges = self._edges(s_sorted, n_bins)
            # samples in [e_k, e_{k+1}); the last bin also holds scores equal to 1
            start = np.searchsorted(s_sorted, edges[:-1], side="left")
            stop = np.append(start[1:], n)
            start[0] = 0
            counts = (stop - start).astype(np.float64)
            positives = cum_pos[stop] - cum_pos[start]
            mids = 0.5 * (edges[:-1] + edges[1:])
            k = edges.size - 1
            if self.scoring == "BDeu":
                prior = self.prior_strength / k
                a, b = prior * mids, prior * (1.0 - mids)
                values = (positives + a) / (counts + prior)
                log_score = float(
                    np.sum(
                        gammaln(prior)
                        - gammaln(counts + prior)
                        + gammaln(positives + a)
                        - gammaln(a)
                        + gammaln(counts - positives + b)
                        - gammaln(b)
                    )
                )
            else:
                values = np.where(counts > 0, positives / np.maximum(counts, 1.0), mids)
                ll = float(np.sum(xlogy(positives, values) + xlogy(counts - positives, 1.0 - values)))
                penalty = 2.0 * k if self.scoring == "AIC" else k * math.log(n)
                log_score = -0.5 * (-2.0 * ll + penalty)
            models.append({"n_bins": n_bins, "edges": edges, "values": values, "log_score": log_score})

        log_scores = np.array([m["log_score"] for m in models])
        relative = np.exp(log_scores - log_scores.max())  # relative likelihoods, max = 1
        if self.prune == "elbow":
            keep = self._elbow(relative, self.prune_alpha)
            weights = np.zeros_like(relative)
            weights[keep] = relative[keep] / relative[keep].sum()
        else:
            weights = np.exp(log_scores - logsumexp(log_scores))
        for m, w in zip(models, weights):
            m["weight"] = float(w)
        self.models_ = models
        self.model_n_bins_ = np.array([m["n_bins"] for m in models], dtype=np.int64)
        self.model_log_scores_ = log_scores
        self.model_weights_ = weights
        self.edges_, self.values_ = self._merge(models)

    @staticmethod
    def _elbow(relative: np.ndarray, alpha: float) -> np.ndarray:
        """Indices kept by netcal-style elbow pruning of relative likelihoods."""
        order = np.argsort(-relative, kind="stable")
        r = relative[order]
        var = float(np.var(relative))
        k = 0
        while k < r.size - 1 and r[k] == r[k + 1]:
            k += 1
        while k < r.size - 1 and var > 0.0 and (r[k] - r[k + 1]) / var > alpha:
            k += 1
        return order[: k + 1]

    @staticmethod
    def _merge(models: list[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
        """Weighted average of step functions as one step function on the union of edges."""
        used = [m for m in models if m["weight"] > 0.0]
        edges = np.unique(np.concatenate([m["edges"] for m in used]))
        left = edges[:-1]  # each merged interval lies inside one bin of every model
        values = np.zeros(left.size)
        for m in used:
            values += m["weight"] * m["values"][_bin_index(m["edges"], left)]
        return edges, np.clip(values, 0.0, 1.0)

    def predict_models(self, scores: Any) -> np.ndarray:
        """Per-model predictions (n_models x n_scores) of the last ``fit``; for inspection and tests."""
        if not hasattr(self, "models_"):
            raise NotFittedError("per-model predictions need a fit() in this process")
        s = _as_scores(scores)
        return np.stack([m["values"][_bin_index(m["edges"], s)] for m in self.models_])

    def _predict(self, s: np.ndarray) -> np.ndarray:
        return self.values_[_bin_index(self.edges_, s)]

    def _get_state(self) -> dict[str, Any]:
        return {
            "edges": _floats(self.edges_),
            "values": _floats(self.values_),
            "model_n_bins": _ints(self.model_n_bins_),
            "model_log_scores": _floats(self.model_log_scores_),
            "model_weights": _floats(self.model_weights_),
        }

    def _set_state(self, state: dict[str, Any]) -> None:
        self.edges_ = np.asarray(state["edges"], dtype=np.float64)
        self.values_ = np.asarray(state["values"], dtype=np.float64)
        self.model_n_bins_ = np.asarray(state["model_n_bins"], dtype=np.int64)
        self.model_log_scores_ = np.asarray(state["model_log_scores"], dtype=np.float64)
        self.model_weights_ = np.asarray(state["model_weights"], dtype=np.float64)
        if self.edges_.size != self.values_.size + 1:
            raise ValueError("BBQ state: len(edges) must be len(values) + 1")


# ----------------------------------------------------------------------------
# logistic-family helpers
# ----------------------------------------------------------------------------


def _fit_logistic(X: np.ndarray, y: np.ndarray, l2: float) -> tuple[np.ndarray, float]:
    """Minimise ``sum_i CE(y_i, sigmoid(X_i w + c)) + l2/2 ||w||^2`` (intercept unpenalised).

    Damped Newton with exact Hessian and Armijo backtracking: the problem is
    convex and has at most three parameters here, so this converges to machine
    precision in a handful of iterations.  Columns of X that are constant carry
    no information beyond the intercept and get weight 0.  Labels must not be
    all equal (callers handle that case separately).
    """
    n, d = X.shape
    weights = np.zeros(d)
    active = np.flatnonzero(np.ptp(X, axis=0) > 0.0) if n else np.array([], dtype=np.int64)
    A = np.column_stack([X[:, active], np.ones(n)])
    reg = np.concatenate([np.full(active.size, float(l2)), [0.0]])
    theta = np.zeros(A.shape[1])
    theta[-1] = _safe_logit_scalar(float(np.mean(y)))

    def objective(t: np.ndarray) -> float:
        z = A @ t
        return float(np.sum(np.logaddexp(0.0, z) - y * z) + 0.5 * np.sum(reg * t * t))

    f = objective(theta)
    gtol = 1e-10 * max(1.0, float(n))
    for _ in range(200):
        z = A @ theta
        p = expit(z)
        g = A.T @ (p - y) + reg * theta
        if np.max(np.abs(g)) <= gtol:
            break
        H = (A * (p * (1.0 - p))[:, None]).T @ A + np.diag(reg)
        try:
            step = np.linalg.solve(H, g)
        except np.linalg.LinAlgError:
            step = np.linalg.lstsq(H, g, rcond=None)[0]
        slope = float(g @ step)
        if not np.isfinite(slope) or slope <= 0.0:
            step, slope = g, float(g @ g)
        t = 1.0
        while True:
            cand = theta - t * step
            f_new = objective(cand)
            if f_new <= f - 1e-4 * t * slope or t < 1e-12:
                break
            t *= 0.5
        if f_new > f:  # no decrease possible at this precision
            break
        moved = np.max(np.abs(cand - theta))
        theta, f = cand, f_new
        if moved <= 1e-15 * (1.0 + np.max(np.abs(theta))):
            break
    weights[active] = theta[:-1]
    return weights, float(theta[-1])


def _constant_logit(y: np.ndarray) -> float:
    """Logit of Platt's smoothed target (n_pos + 1) / (n + 2), used when all labels are equal."""
    return _safe_logit_scalar((float(np.sum(y)) + 1.0) / (y.size + 2.0))


def _all_equal(y: np.ndarray) -> bool:
    return bool(np.all(y == y[0]))


# ----------------------------------------------------------------------------
# Platt scaling
# ----------------------------------------------------------------------------


@_register
class PlattScaling(Calibrator):
    """Platt scaling (Platt 1999): ``p = sigmoid(A * f(s) + B)`` fit by maximum likelihood.

    ``input="logit"`` (default) uses ``f(s) = logit(s)``; ``input="score"`` uses
    ``f(s) = s``.  The logit is the default because Platt's method was designed
    for an unbounded classifier output (SVM margins), of which the logit is the
    probability-scale analogue, and because ``A = 1, B = 0`` is then the
    identity, so an already calibrated detector stays calibrated; it is also
    what netcal's ``LogisticCalibration`` (used by Dave et al. via Kueppers et
    al.) does.  (Platt writes ``1 / (1 + exp(A f + B))``; we use the opposite
    sign of A and B so that A > 0 means "increasing".)

    The fit minimises the summed negative log-likelihood plus ``l2/2 * A^2``;
    the default ``l2 = 1e-6`` is negligible on real data (equivalent to
    scikit-learn's ``C = 1e6``) but keeps A finite on perfectly separable data
    (e.g. two samples).  Degenerate data: all labels equal -> A = 0 and
    ``B = logit((n_pos + 1) / (n + 2))``, Platt's smoothed target (the MLE
    would be at infinity); constant scores -> A = 0, ``B = logit(mean label)``.
    """

    name = "platt"

    def __init__(self, input: str = "logit", l2: float = 1e-6) -> None:
        super().__init__()
        if input not in ("logit", "score"):
            raise ValueError("input must be 'logit' or 'score'")
        if l2 < 0:
            raise ValueError("l2 must be >= 0")
        self.input = input
        self.l2 = float(l2)

    def get_params(self) -> dict[str, Any]:
        return {"input": self.input, "l2": self.l2}

    def _feature(self, s: np.ndarray) -> np.ndarray:
        return logit(s) if self.input == "logit" else s

    def _fit(self, s: np.ndarray, y: np.ndarray) -> None:
        if _all_equal(y):
            self.slope_, self.intercept_ = 0.0, _constant_logit(y)
            return
        w, c = _fit_logistic(self._feature(s)[:, None], y, self.l2)
        self.slope_, self.intercept_ = float(w[0]), c

    def _predict(self, s: np.ndarray) -> np.ndarray:
        return expit(self.slope_ * self._feature(s) + self.intercept_)

    def _get_state(self) -> dict[str, Any]:
        return {"slope": float(self.slope_), "intercept": float(self.intercept_)}

    def _set_state(self, state: dict[str, Any]) -> None:
        self.slope_ = float(state["slope"])
        self.intercept_ = float(state["intercept"])


# ----------------------------------------------------------------------------
# beta calibration
# ----------------------------------------------------------------------------


@_register
class BetaCalibration(Calibrator):
    """Three-parameter beta calibration (Kull, Silva Filho & Flach, AISTATS 2017).

    ``p = sigmoid(a * ln(s) - b * ln(1 - s) + c)``, i.e. logistic regression on
    the features ``[ln s, -ln(1 - s)]`` (scores clipped to ``[EPS, 1 - EPS]``).
    The map is monotone increasing iff ``a, b >= 0``; as in the paper (and the
    authors' ``betacal`` package) the constraint is handled by refitting: fit
    both features; if ``a < 0`` refit with ``a = 0`` (feature ``-ln(1-s)``
    only), else if ``b < 0`` refit with ``b = 0`` (``ln s`` only).  If the
    refitted coefficient is still negative it is also set to 0 and only the
    intercept remains (``c = logit(mean label)``) -- a case the paper does not
    discuss.  With ``a = b`` the model is Platt scaling on the logit, so beta
    calibration contains :class:`PlattScaling` (``input="logit"``) and the
    identity map (``a = b = 1, c = 0``).

    ``l2`` and the degenerate cases behave as in :class:`PlattScaling`: all
    labels equal -> ``a = b = 0``, ``c = logit((n_pos + 1) / (n + 2))``;
    constant scores -> ``a = b = 0``, ``c = logit(mean label)``.
    """

    name = "beta"

    def __init__(self, l2: float = 1e-6) -> None:
        super().__init__()
        if l2 < 0:
            raise ValueError("l2 must be >= 0")
        self.l2 = float(l2)

    def get_params(self) -> dict[str, Any]:
        return {"l2": self.l2}

    @staticmethod
    def _features(s: np.ndarray) -> np.ndarray:
        p = np.clip(s, EPS, 1.0 - EPS)
        return np.column_stack([np.log(p), -np.log1p(-p)])

    def _fit(self, s: np.ndarray, y: np.ndarray) -> None:
        if _all_equal(y):
            self.a_, self.b_, self.c_ = 0.0, 0.0, _constant_logit(y)
            return
        X = self._features(s)
        (a, b), c = _fit_logistic(X, y, self.l2)
        if a < 0.0 or b < 0.0:
            keep = 1 if a < 0.0 else 0  # refit on the other feature only
            w, c = _fit_logistic(X[:, [keep]], y, self.l2)
            coef = float(w[0])
            if coef < 0.0:
                coef, c = 0.0, _safe_logit_scalar(float(np.mean(y)))
            a, b = (0.0, coef) if keep == 1 else (coef, 0.0)
        self.a_, self.b_, self.c_ = float(a), float(b), float(c)

    def _predict(self, s: np.ndarray) -> np.ndarray:
        X = self._features(s)
        return expit(self.a_ * X[:, 0] + self.b_ * X[:, 1] + self.c_)

    def _get_state(self) -> dict[str, Any]:
        return {"a": float(self.a_), "b": float(self.b_), "c": float(self.c_)}

    def _set_state(self, state: dict[str, Any]) -> None:
        self.a_, self.b_, self.c_ = float(state["a"]), float(state["b"]), float(state["c"])


# ----------------------------------------------------------------------------
# temperature scaling
# ----------------------------------------------------------------------------


@_register
class TemperatureScaling(Calibrator):
    """Temperature scaling (Guo et al., ICML 2017), binary form: ``p = sigmoid(logit(s) / T)``.

    T is the minimiser of the negative log-likelihood, found with scipy's
    bounded scalar minimiser over ``ln T`` in ``[ln T_min, ln T_max]``
    (default ``[1e-3, 1e3]``).  The NLL is convex in ``1/T``, so the optimum is
    unique.  Degenerate data (all labels equal, or scores all on one side of
    0.5 with every label agreeing) pushes the optimum to a bound, which is
    returned; if every score is 0.5 the likelihood does not depend on T and
    T = 1.  A single temperature cannot shift scores, only sharpen or soften
    them around 0.5.  T is kept positive so the ranking is never inverted;
    netcal's unconstrained fit can return a negative temperature when labels
    fall as the logit rises, where this class stops at ``t_max`` instead.
    """

    name = "temperature"

    def __init__(self, t_min: float = 1e-3, t_max: float = 1e3) -> None:
        super().__init__()
        if not (0.0 < t_min < t_max):
            raise ValueError("need 0 < t_min < t_max")
        self.t_min = float(t_min)
        self.t_max = float(t_max)

    def get_params(self) -> dict[str, Any]:
        return {"t_min": self.t_min, "t_max": self.t_max}

    @staticmethod
    def nll(temperature: float, scores: Any, labels: Any) -> float:
        """Summed binary NLL of ``sigmoid(logit(scores) / temperature)``."""
        z = logit(_as_scores(scores)) / temperature
        y = np.asarray(labels, dtype=np.float64)
        return float(np.sum(np.logaddexp(0.0, z) - y * z))

    def _fit(self, s: np.ndarray, y: np.ndarray) -> None:
        z = logit(s)
        if not np.any(z != 0.0):
            self.temperature_ = 1.0
            return

        def objective(log_t: float) -> float:
            u = z * math.exp(-log_t)
            return float(np.sum(np.logaddexp(0.0, u) - y * u))

        res = minimize_scalar(
            objective,
            bounds=(math.log(self.t_min), math.log(self.t_max)),
            method="bounded",
            options={"xatol": 1e-12, "maxiter": 500},
        )
        self.temperature_ = float(min(max(math.exp(res.x), self.t_min), self.t_max))

    def _predict(self, s: np.ndarray) -> np.ndarray:
        return expit(logit(s) / self.temperature_)

    def _get_state(self) -> dict[str, Any]:
        return {"temperature": float(self.temperature_)}

    def _set_state(self, state: dict[str, Any]) -> None:
        self.temperature_ = float(state["temperature"])


# ----------------------------------------------------------------------------
# isotonic regression
# ----------------------------------------------------------------------------


@_register
class IsotonicCalibration(Calibrator):
    """Isotonic regression (Zadrozny & Elkan, KDD 2002) via scikit-learn.

    Fits ``sklearn.isotonic.IsotonicRegression(increasing=True, y_min=0,
    y_max=1, out_of_bounds="clip")``: the non-decreasing step function that
    minimises squared error to the labels (pool-adjacent-violators; tied
    scores are pooled first).  Only its breakpoints are stored and prediction
    is ``np.interp`` over them, which is what scikit-learn's ``predict`` does
    (linear between breakpoints, constant beyond the training range).
    Degenerate data: all-0 (all-1) labels give 0 (1) everywhere; a single
    sample or constant scores give the constant mean label.
    """

    name = "isotonic"

    def get_params(self) -> dict[str, Any]:
        return {}

    def _fit(self, s: np.ndarray, y: np.ndarray) -> None:
        iso = _SkIsotonic(increasing=True, y_min=0.0, y_max=1.0, out_of_bounds="clip")
        iso.fit(s, y)
        self.x_thresholds_ = np.asarray(iso.X_thresholds_, dtype=np.float64)
        self.y_thresholds_ = np.asarray(iso.y_thresholds_, dtype=np.float64)

    def _predict(self, s: np.ndarray) -> np.ndarray:
        return np.interp(s, self.x_thresholds_, self.y_thresholds_)

    def _get_state(self) -> dict[str, Any]:
        return {"x_thresholds": _floats(self.x_thresholds_), "y_thresholds": _floats(self.y_thresholds_)}

    def _set_state(self, state: dict[str, Any]) -> None:
        self.x_thresholds_ = np.asarray(state["x_thresholds"], dtype=np.float64)
        self.y_thresholds_ = np.asarray(state["y_thresholds"], dtype=np.float64)
        if self.x_thresholds_.size == 0 or self.x_thresholds_.size != self.y_thresholds_.size:
            raise ValueError("isotonic state: thresholds must be non-empty and of equal length")
