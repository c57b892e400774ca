"""Pareto/NBD (Schmittlein, Morrison & Colombo 1987): purchases at a gamma-mixed Poisson rate,
an exponential lifetime with a gamma-mixed dropout rate.

Parameters ``r``, ``alpha`` (purchase rate) and ``s``, ``beta`` (dropout rate). :func:`fit`
estimates them with pymc-marketing's ``ParetoNBDModel``; the rest are closed forms in numpy/scipy
(written here rather than calling pymc-marketing so that scoring needs only the stored numbers,
not PyMC — see :mod:`propensity.clv.beta_geo`), following Fader & Hardie's "A Note on Deriving the
Pareto/NBD Model and Related Expressions" (2005) and pymc-marketing 0.19's ``ParetoNBD.logp``
term by term, including its numerically stable ordering of the Gauss hypergeometric terms.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import gammaln, hyp2f1

from propensity.clv.base import ModelFit, Params, distinct_pairs, fit_pymc, gather, param_arrays

__all__ = [
    "NAME",
    "PARAMS",
    "expected_purchases",
    "expected_purchases_steps",
    "fit",
    "log_likelihood",
    "p_alive",
]

NAME = "pareto_nbd"
PARAMS = ("r", "alpha", "s", "beta")


def _loglik(r: Any, alpha: Any, s: Any, beta: Any, x: Any, t_x: Any, T: Any) -> Any:
    larger = np.maximum(alpha, beta)
    smaller = np.minimum(alpha, beta)
    diff = larger - smaller
    alpha_larger = alpha >= beta

    # Each Gauss hypergeometric term depends on a customer only through (x, t_x) or (x, T):
    # evaluated once per distinct pair (see propensity.clv.base.distinct_pairs).
    x1, tx1, inverse1 = distinct_pairs(x, t_x)
    rsx1 = r + s + x1
    h1 = gather(
        np.log(hyp2f1(rsx1, np.where(alpha_larger, s + 1.0, r + x1), rsx1 + 1.0, diff / (larger + tx1))),
        inverse1,
    )
    x2, T2, inverse2 = distinct_pairs(x, T)
    rsx2 = r + s + x2
    h2_pairs = np.log(
        hyp2f1(rsx2, np.where(alpha_larger, s, r + x2 + 1.0), rsx2 + 1.0, diff / (larger + T2))
    ) - rsx2 * np.log(larger + T2)
    rsx = r + s + x
    rx = r + x
    # (larger + t_x)^(r+s+x) is factored out of the first term's denominator for stability.
    refactored = rsx * np.log(larger + t_x)
    h2 = gather(h2_pairs, inverse2) + refactored
    a1 = gammaln(rx) - gammaln(r) + r * np.log(alpha) + s * np.log(beta) - refactored
    a2 = np.log(s) - np.log(rsx) + h1
    a3 = np.log(rx) - np.log(rsx) + h2
    return a1 + np.logaddexp(a2, a3)


def log_likelihood(params: Params, x: Any, t_x: Any, T: Any) -> np.ndarray:
    """Each customer's log-likelihood of (frequency ``x``, recency ``t_x``, age ``T``)."""
    r, alpha, s, beta = param_arrays(params, PARAMS)
    x, t_x, T = (np.asarray(v, dtype="float64") for v in (x, t_x, T))
    return np.asarray(_loglik(r, alpha, s, beta, x, t_x, T))


def p_alive(params: Params, x: Any, t_x: Any, T: Any) -> np.ndarray:
    """Probability that each customer is still alive at the end of the observation period
    (equation 18 of Fader & Hardie's "Additional Results for the Pareto/NBD Model", 2014)."""
    r, alpha, s, beta = param_arrays(params, PARAMS)
    x, t_x, T = (np.asarray(v, dtype="float64") for v in (x, t_x, T))
    ll = _loglik(r, alpha, s, beta, x, t_x, T)
    log_alive = (
        gammaln(r + x)
        - gammaln(r)
        + r * np.log(alpha / (alpha + T))
        - x * np.log(alpha + T)
        + s * np.log(beta / (beta + T))
    )
    # P(alive) is a ratio of two terms of the likelihood; rounding can put it a few ulp above 1.
    return np.asarray(np.minimum(np.exp(log_alive - ll), 1.0))


def expected_purchases_steps(
    params: Params, x: Any, t_x: Any, T: Any, ts: Sequence[float]
) -> list[np.ndarray]:
    """Expected purchases of each customer in the next ``t`` time units for every ``t`` of ``ts``
    (Fader & Hardie 2005, eq. 41); the likelihood they divide by is computed once for all steps."""
    r, alpha, s, beta = param_arrays(params, PARAMS)
    x, t_x, T = (np.asarray(v, dtype="float64") for v in (x, t_x, T))
    ll = _loglik(r, alpha, s, beta, x, t_x, T)
    first = (
        gammaln(r + x)
        - gammaln(r)
        + r * np.log(alpha)
        + s * np.log(beta)
        - (r + x) * np.log(alpha + T)
        - s * np.log(beta + T)
    )
    second = np.log(r + x) + np.log(beta + T) - np.log(alpha + T)
    scale = np.exp(first + second - ll)
    # The step's own factor depends on a customer only through T: once per distinct T.
    _, Tu, inverse = distinct_pairs(np.zeros_like(T), T)
    out = []
    for t in ts:
        factor = (1.0 - ((beta + Tu) / (beta + Tu + t)) ** (s - 1.0)) / (s - 1.0)  # 0 when t = 0
        out.append(np.asarray(scale * gather(factor, inverse)))
    return out


def expected_purchases(params: Params, x: Any, t_x: Any, T: Any, t: Any) -> np.ndarray:
    """Expected purchases of each customer in the next ``t`` time units (one ``t`` for everyone)."""
    return expected_purchases_steps(params, x, t_x, T, [float(t)])[0]


def fit(summary: pd.DataFrame, *, method: str = "map", seed: int = 0, **sampler: Any) -> ModelFit:
    """Fit Pareto/NBD to a summary (``customer_id``, ``frequency``, ``recency``, ``T``) with pymc-marketing.

    Flat (``HalfFlat``) priors; ``method="map"`` gives the maximum-likelihood estimates.

    Returns
    -------
    ModelFit
    """
    data = summary[["customer_id", "frequency", "recency", "T"]]
    return fit_pymc(
        "ParetoNBDModel",
        data,
        PARAMS,
        model=NAME,
        log_likelihood=lambda p: log_likelihood(p, data["frequency"], data["recency"], data["T"]).sum(),
        method=method,
        seed=seed,
        **sampler,
    )
