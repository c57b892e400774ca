"""Drift tests and performance estimates: pure functions of binned counts and probabilities.

Every test compares a *reference* (the training profile stored in the bundle) with a *current*
sample reduced to the same bins, so the data never has to be held in memory twice:

- :func:`psi` — population stability index over shares (Siddiqi 2006: < 0.1 stable, 0.1–0.25 a
  moderate shift, > 0.25 a major shift);
- :func:`ks_binned` — the Kolmogorov–Smirnov distance between the two binned CDFs (a lower bound
  of the exact statistic; the bins are the training deciles) and its asymptotic p-value;
- :func:`chi_square` and :func:`jensen_shannon` — for categorical level shares;
- :func:`cbpe` — confidence-based performance estimation (NannyML): the ROC-AUC, precision and
  recall a *calibrated* model is expected to reach on unlabelled rows;
- :func:`auc_interval` — the Hanley–McNeil interval of a realised ROC-AUC;
- :func:`expected_calibration_error`.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from propensity.metrics import cbpe  # the reference profile computes it at training time too

__all__ = [
    "EPS",
    "auc_interval",
    "cbpe",
    "chi_square",
    "expected_calibration_error",
    "jensen_shannon",
    "ks_binned",
    "psi",
    "shares",
]

#: Floor of a share in PSI, so an empty bin on one side gives a large but finite term.
EPS = 1e-4


def shares(counts: np.ndarray) -> np.ndarray:
    """Counts as shares (all zeros when there is nothing)."""
    counts = np.asarray(counts, dtype=float)
    total = counts.sum()
    return counts / total if total > 0 else np.zeros_like(counts)


def psi(reference: np.ndarray, current: np.ndarray) -> float:
    """Population stability index ``Σ (c - r) · ln(c / r)`` over shares floored at :data:`EPS`."""
    r = np.maximum(np.asarray(reference, dtype=float), EPS)
    c = np.maximum(np.asarray(current, dtype=float), EPS)
    return float(np.sum((c - r) * np.log(c / r)))


def ks_binned(
    reference: np.ndarray, current: np.ndarray, n_reference: int, n_current: int
) -> tuple[float, float]:
    """Largest gap between the binned CDFs, and its two-sample asymptotic p-value."""
    gap = float(np.max(np.abs(np.cumsum(reference) - np.cumsum(current)))) if len(reference) else 0.0
    if n_reference <= 0 or n_current <= 0:
        return gap, 1.0
    n_eff = n_reference * n_current / (n_reference + n_current)
    return gap, float(stats.kstwobign.sf(gap * math.sqrt(n_eff)))


def chi_square(reference: np.ndarray, current_counts: np.ndarray) -> tuple[float, float]:
    """Goodness of fit of the current level counts to the reference shares: (statistic, p-value)."""
    observed = np.asarray(current_counts, dtype=float)
    n = observed.sum()
    expected = np.maximum(np.asarray(reference, dtype=float), EPS)
    expected = expected / expected.sum() * n
    if n <= 0 or len(observed) < 2:
        return 0.0, 1.0
    statistic = float(np.sum((observed - expected) ** 2 / expected))
    return statistic, float(stats.chi2.sf(statistic, df=len(observed) - 1))


def jensen_shannon(reference: np.ndarray, current: np.ndarray) -> float:
    """Jensen–Shannon distance (base 2, in [0, 1]) between two share vectors."""
    r, c = np.asarray(reference, dtype=float), np.asarray(current, dtype=float)
    if r.sum() <= 0 or c.sum() <= 0:
        return 0.0
    r, c = r / r.sum(), c / c.sum()
    m = (r + c) / 2

    def kl(p: np.ndarray) -> float:
        mask = p > 0
        return float(np.sum(p[mask] * np.log2(p[mask] / m[mask])))

    return float(math.sqrt(max(0.0, (kl(r) + kl(c)) / 2)))


def auc_interval(auc: float, n_positive: int, n_negative: int, level: float = 0.95) -> tuple[float, float]:
    """Hanley & McNeil (1982) normal interval of a ROC-AUC from its class counts."""
    if n_positive <= 0 or n_negative <= 0 or not math.isfinite(auc):
        return float("nan"), float("nan")
    q1, q2 = auc / (2 - auc), 2 * auc * auc / (1 + auc)
    var = (auc * (1 - auc) + (n_positive - 1) * (q1 - auc * auc) + (n_negative - 1) * (q2 - auc * auc)) / (
        n_positive * n_negative
    )
    half = float(stats.norm.ppf(0.5 + level / 2)) * math.sqrt(max(var, 0.0))
    return max(0.0, auc - half), min(1.0, auc + half)


def expected_calibration_error(y: np.ndarray, probability: np.ndarray, bins: int = 10) -> float:
    """Mean |observed rate - mean probability| over equal-width probability bins, weighted by size."""
    y, p = np.asarray(y, dtype=float), np.asarray(probability, dtype=float)
    if not len(p):
        return float("nan")
    idx = np.minimum((p * bins).astype(int), bins - 1)
    total = 0.0
    for b in np.unique(idx):
        mask = idx == b
        total += mask.sum() * abs(y[mask].mean() - p[mask].mean())
    return float(total / len(p))
