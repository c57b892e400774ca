"""Gamma-Gamma (Fader & Hardie 2013): how much a customer spends per purchase, independent of how often.

Parameters ``p``, ``q``, ``v``: each spend is gamma(``p``, ``nu``) with a customer's ``nu`` gamma(``q``,
``v``) across customers, so the expected spend per purchase is a weighted mean of the population
mean ``p v / (q - 1)`` and the customer's own mean of repeat purchases. :func:`fit` uses
pymc-marketing's ``GammaGammaModel``; :func:`expected_spend` is its closed form in numpy (scoring
needs no PyMC; see :mod:`propensity.clv.beta_geo`).

Only customers with a repeat purchase (``frequency > 0``) and a positive mean repeat spend
(``monetary_value > 0``) carry information the model can use (its likelihood needs the log of the
mean); the others are left out of the fit and counted in the fit's notes. Their prediction is
still defined: with ``frequency = 0`` it is the population mean, and a zero or negative mean
(free or refunded repeat orders) is read as 0, which pulls the estimate below the population mean
by the customer's weight ``p x / (p x + q - 1)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy.special import gammaln

from propensity.clv.base import ModelFit, Params, fit_pymc, param_arrays
from propensity.errors import InsufficientDataError

__all__ = ["NAME", "PARAMS", "expected_spend", "fit", "fit_rows", "log_likelihood", "population_mean"]

NAME = "gamma_gamma"
PARAMS = ("p", "q", "v")


def fit_rows(summary: pd.DataFrame) -> pd.Series:
    """Which customers the spend model is fitted on: a repeat purchase and a positive mean spend."""
    return (summary["frequency"] > 0) & (summary["monetary_value"] > 0)


def log_likelihood(params: Params, x: Any, m: Any) -> np.ndarray:
    """Each customer's log-likelihood of mean repeat spend ``m`` over ``x`` purchases (eq. 1a of the note)."""
    p, q, v = param_arrays(params, PARAMS)
    x, m = (np.asarray(a, dtype="float64") for a in (x, m))
    return np.asarray(
        gammaln(p * x + q)
        - gammaln(p * x)
        - gammaln(q)
        + q * np.log(v)
        + (p * x - 1) * np.log(m)
        + (p * x) * np.log(x)
        - (p * x + q) * np.log(x * m + v)
    )


def population_mean(params: Params) -> Any:
    """Expected spend per purchase of a customer with no repeat purchase: ``p v / (q - 1)``."""
    p, q, v = param_arrays(params, PARAMS)
    return p * v / (q - 1.0)


def expected_spend(params: Params, x: Any, m: Any) -> np.ndarray:
    """Each customer's expected spend per future purchase (eq. 5 of the note).

    A mean ``m`` below zero (refunds netted into spend outside validation) is read as 0.
    """
    p, q, v = param_arrays(params, PARAMS)
    x = np.asarray(x, dtype="float64")
    m = np.maximum(np.asarray(m, dtype="float64"), 0.0)
    weight = p * x / (p * x + q - 1.0)
    return np.asarray((1.0 - weight) * (p * v / (q - 1.0)) + weight * m)


def fit(summary: pd.DataFrame, *, method: str = "map", seed: int = 0, **sampler: Any) -> ModelFit:
    """Fit Gamma-Gamma to the repeat buyers of a summary (``frequency``, ``monetary_value``).

    Raises
    ------
    InsufficientDataError
        No customer with a repeat purchase of positive value.
    """
    keep = fit_rows(summary)
    data = summary.loc[keep, ["customer_id", "frequency", "monetary_value"]]
    excluded_single = int((summary["frequency"] == 0).sum())
    excluded_value = int(((summary["frequency"] > 0) & ~keep).sum())
    if data.empty:
        raise InsufficientDataError(
            f"No customer has a repeat purchase with a positive amount ({excluded_single:,} bought once, "
            f"{excluded_value:,} repeat buyers spent 0 or less), so the Gamma-Gamma spend model cannot be fitted. "
            "Check that the log maps an amount column (--map amount=COLUMN)."
        )
    notes = [
        f"fitted on {len(data):,} repeat buyers; {excluded_single:,} customers with one purchase day "
        "predict the population mean"
    ]
    if excluded_value:
        notes.append(
            f"{excluded_value:,} repeat buyers with a mean repeat spend of 0 or less were left out of the fit "
            "(their mean is read as 0 when predicting)"
        )
    fitted = fit_pymc(
        "GammaGammaModel",
        data,
        PARAMS,
        model=NAME,
        log_likelihood=lambda p: log_likelihood(p, data["frequency"], data["monetary_value"]).sum(),
        method=method,
        seed=seed,
        notes=notes,
        **sampler,
    )
    if fitted.params["q"] <= 1:
        fitted.notes.append(
            "q <= 1: the population mean spend p v / (q - 1) is undefined; spend predictions are unusable"
        )
    return fitted
