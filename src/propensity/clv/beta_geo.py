"""BG/NBD (Fader, Hardie & Lee 2005): purchases at a gamma-mixed Poisson rate, dropout after each purchase.

Parameters ``r``, ``alpha`` (gamma heterogeneity of the purchase rate) and ``a``, ``b`` (beta
heterogeneity of the dropout probability). :func:`fit` estimates them with pymc-marketing's
``BetaGeoModel``; the other functions are the model's closed forms, vectorised over customers
(and over posterior draws when the parameters are arrays of shape ``(draws, 1)``).

The closed forms are written here in numpy/scipy on purpose instead of calling pymc-marketing's
``BetaGeoModel.expected_purchases`` and friends: those need a fitted PyMC model object (PyMC and
PyTensor, seconds to import) and xarray, while scoring a bundle needs only the four stored
numbers. They follow pymc-marketing 0.19's formulas term by term, and the tests check them
against pymc-marketing's own predictions on the CDNOW sample.
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

NAME = "bgnbd"
PARAMS = ("r", "alpha", "a", "b")


def log_likelihood(params: Params, x: Any, t_x: Any, T: Any) -> np.ndarray:
    """Each customer's log-likelihood of (frequency ``x``, recency ``t_x``, age ``T``).

    Equation (6) of Fader, Hardie & Lee (2005), in logs: its sum over the CDNOW sample at the
    published parameters is -9,582.43.
    """
    r, alpha, a, b = param_arrays(params, PARAMS)
    x, t_x, T = (np.asarray(v, dtype="float64") for v in (x, t_x, T))
    a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    a2 = gammaln(a + b) + gammaln(b + x) - gammaln(b) - gammaln(a + b + x)
    a3 = -(r + x) * np.log(alpha + T)
    with np.errstate(divide="ignore", invalid="ignore"):
        a4 = np.log(a) - np.log(b + np.maximum(x, 1) - 1) - (r + x) * np.log(alpha + t_x)
    return np.asarray(a1 + a2 + np.where(x > 0, np.logaddexp(a3, a4), a3))


def _log_odds_dead(r: Any, alpha: Any, a: Any, b: Any, x: Any, t_x: Any, T: Any) -> Any:
    """log(P(dead) / P(alive)) for customers with a repeat purchase (x > 0)."""
    return (r + x) * np.log((alpha + T) / (alpha + t_x)) + np.log(a / (b + np.maximum(x, 1) - 1))


def p_alive(params: Params, x: Any, t_x: Any, T: Any) -> np.ndarray:
    """Probability that each customer is still alive at the end of the observation period.

    1 for customers without a repeat purchase: in BG/NBD a customer can drop out only right
    after a purchase. (Fader, Hardie & Lee 2008, "Computing P(alive) using the BG/NBD model".)
    """
    r, alpha, a, b = param_arrays(params, PARAMS)
    x, t_x, T = (np.asarray(v, dtype="float64") for v in (x, t_x, T))
    with np.errstate(over="ignore"):  # exp(large) = inf gives the right limit, P(alive) = 0
        alive = 1.0 / (1.0 + np.exp(_log_odds_dead(r, alpha, a, b, x, t_x, T)))
    return np.asarray(np.where(x == 0, 1.0, alive))


def expected_purchases_steps(
    params: Params, x: Any, t_x: Any, T: Any, ts: Sequence[float]
) -> list[np.ndarray]:
    """Expected purchases of each customer in the next ``t`` time units, for every ``t`` of ``ts``.

    Equation (10) of the paper. The hypergeometric term depends on a customer only through
    (frequency, T), so it is evaluated once per distinct pair (see
    :func:`~propensity.clv.base.distinct_pairs`), and what does not depend on ``t`` once for all steps.
    """
    r, alpha, a, b = param_arrays(params, PARAMS)
    x, t_x, T = (np.asarray(v, dtype="float64") for v in (x, t_x, T))
    xu, Tu, inverse = distinct_pairs(x, T)
    scale = (a + b + x - 1.0) / (a - 1.0)
    # 1 + (x > 0) a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x), through logs: the power overflows for
    # long-lived heavy buyers, its log does not.
    with np.errstate(over="ignore"):  # exp(large) = inf gives the right limit, 0 purchases
        denominator = 1.0 + np.where(x > 0, np.exp(_log_odds_dead(r, alpha, a, b, x, t_x, T)), 0.0)
    weight = scale / denominator
    out = []
    for t in ts:
        term = ((alpha + Tu) / (alpha + Tu + t)) ** (r + xu) * hyp2f1(
            r + xu, b + xu, a + b + xu - 1.0, t / (alpha + Tu + t)
        )
        out.append(np.asarray((1.0 - gather(term, inverse)) * weight))
    return out


def expected_purchases(params: Params, x: Any, t_x: Any, T: Any, t: Any) -> np.ndarray:
    """Expected purchases of each customer in the next ``t`` time units (equation 10 of the paper).

    ``t`` is one horizon for everyone, or one per customer.
    """
    if np.ndim(t) == 0:
        return expected_purchases_steps(params, x, t_x, T, [float(t)])[0]
    r, alpha, a, b = param_arrays(params, PARAMS)
    x, t_x, T, t = (np.asarray(v, dtype="float64") for v in (x, t_x, T, t))
    numerator = 1.0 - ((alpha + T) / (alpha + T + t)) ** (r + x) * hyp2f1(
        r + x, b + x, a + b + x - 1.0, t / (alpha + T + t)
    )
    numerator = numerator * (a + b + x - 1.0) / (a - 1.0)
    with np.errstate(over="ignore"):
        denominator = 1.0 + np.where(x > 0, np.exp(_log_odds_dead(r, alpha, a, b, x, t_x, T)), 0.0)
    return np.asarray(numerator / denominator)


def fit(summary: pd.DataFrame, *, method: str = "map", seed: int = 0, **sampler: Any) -> ModelFit:
    """Fit BG/NBD to a summary (``customer_id``, ``frequency``, ``recency``, ``T``) with pymc-marketing.

    Flat (``HalfFlat``) priors on every parameter; ``method="map"`` gives the maximum-likelihood
    estimates, ``"mcmc"`` a posterior (and so credible intervals).

    Returns
    -------
    ModelFit
    """
    data = summary[["customer_id", "frequency", "recency", "T"]]
    return fit_pymc(
        "BetaGeoModel",
        data,
        PARAMS,
        model=NAME,
        log_likelihood=lambda p: log_likelihood(p, data["frequency"], data["recency"], data["T"]).sum(),
        method=method,
        seed=seed,
        **sampler,
    )
