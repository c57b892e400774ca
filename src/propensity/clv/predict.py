"""Per-customer predictions from stored parameters: P(alive), purchases, spend, lifetime value.

Everything here is numpy/scipy on whole columns (no per-customer Python loop, no PyMC), so a
service or a batch job scores a CLV bundle from its manifest alone. With a posterior (a fit by
``mcmc``), the same closed forms run once per stored draw and give equal-tailed credible intervals.

Lifetime value over a horizon of H days, like pymc-marketing's ``customer_lifetime_value`` (and
``lifetimes`` before it): the horizon is cut into 30-day steps (the last one may be shorter); each
step's expected purchases (the increase of the cumulative expectation) times the expected spend per
purchase is discounted by ``(1 + discount_rate) ** (end of step / 30 days)``. ``discount_rate`` is
per 30 days (0.01 a month is about 12.7 % a year); with 0 the value is simply expected purchases
over H times expected spend.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd

from propensity.clv import beta_geo, gamma_gamma, pareto_nbd
from propensity.clv.base import ModelFit
from propensity.errors import ParameterError, SchemaError

__all__ = [
    "STEP_DAYS",
    "TRANSACTION_MODELS",
    "customer_lifetime_value",
    "predict_customers",
]

#: Discounting step of the lifetime value, in days (a month, as pymc-marketing's time_unit="D").
STEP_DAYS = 30.0
#: The purchase-count models by name.
TRANSACTION_MODELS: dict[str, ModuleType] = {beta_geo.NAME: beta_geo, pareto_nbd.NAME: pareto_nbd}
_CHUNK_CELLS = 4_000_000  # draws x customers evaluated at once with a posterior (~32 MB per array)


def _steps(horizon: float, step: float) -> np.ndarray:
    n = math.ceil(horizon / step - 1e-9)
    ends = np.minimum(np.arange(1, n + 1) * step, horizon)
    return ends


def _value(
    cumulative: list[np.ndarray], ends: np.ndarray, spend: Any, step: float, discount_rate: float
) -> np.ndarray:
    """Discounted value from cumulative expected purchases at the step ends (see the module docstring)."""
    if discount_rate == 0.0:
        return np.asarray(cumulative[-1] * spend)
    value: Any = 0.0
    previous: Any = 0.0
    for end, current in zip(ends, cumulative, strict=True):
        value = value + (current - previous) * spend / (1.0 + discount_rate) ** (end / step)
        previous = current
    return np.asarray(value)


def _ends(horizon: float, step: float, discount_rate: float) -> np.ndarray:
    return np.array([horizon]) if discount_rate == 0.0 else _steps(horizon, step)


def customer_lifetime_value(
    model: ModuleType,
    params: Mapping[str, Any],
    x: Any,
    t_x: Any,
    T: Any,
    spend: Any,
    *,
    horizon: float,
    step: float,
    discount_rate: float = 0.0,
) -> np.ndarray:
    """Discounted value of each customer's purchases over ``horizon`` time units.

    Parameters
    ----------
    model
        A transaction model module (:mod:`~propensity.clv.beta_geo` or :mod:`~propensity.clv.pareto_nbd`).
    params
        Its parameters (scalars, or arrays of shape ``(draws, 1)``).
    x, t_x, T
        Frequency, recency and age of each customer (model time units).
    spend
        Expected spend per purchase of each customer.
    horizon, step
        Horizon and discounting step, in model time units.
    discount_rate
        Per step; 0 = no discounting.
    """
    ends = _ends(horizon, step, discount_rate)
    cumulative = model.expected_purchases_steps(params, x, t_x, T, list(ends))
    return _value(cumulative, ends, spend, step, discount_rate)


def _check(horizon_days: float, discount_rate: float, interval: float) -> None:
    if not (isinstance(horizon_days, (int, float)) and 1 <= horizon_days <= 3650):
        raise ParameterError(
            f"The 'horizon_days' parameter must be a number of days in [1, 3650]. Got {horizon_days!r} instead."
        )
    if not (isinstance(discount_rate, (int, float)) and 0 <= discount_rate < 1):
        raise ParameterError(
            f"The 'discount_rate' parameter must be a rate per 30 days in [0, 1), e.g. 0.01. Got {discount_rate!r} instead."
        )
    if not 0 < interval < 1:
        raise ParameterError(
            f"The 'interval' parameter must be in (0, 1), e.g. 0.9. Got {interval!r} instead."
        )


def predict_customers(
    summary: pd.DataFrame,
    transactions: ModelFit,
    spend: ModelFit | None = None,
    *,
    horizon_days: float = 365.0,
    discount_rate: float = 0.0,
    time_scaler: float = 1.0,
    interval: float = 0.9,
    prefix: str = "",
) -> pd.DataFrame:
    """Every customer's P(alive), expected purchases and spend, and lifetime value over ``horizon_days``.

    Parameters
    ----------
    summary
        ``customer_id``, ``frequency``, ``recency``, ``T`` and (for spend and value)
        ``monetary_value``, as :func:`propensity.clv.summary.rfm_summary` gives them.
    transactions
        A BG/NBD or Pareto/NBD fit.
    spend
        A Gamma-Gamma fit (``None``: no spend or value columns).
    horizon_days
        Horizon of the purchases and the value, in days.
    discount_rate
        Per 30 days (see the module docstring).
    time_scaler
        Days per model time unit (as the summary was built).
    interval
        Mass of the equal-tailed credible intervals (fits with a posterior only).
    prefix
        Prefix of the output column names (e.g. ``pareto_nbd_`` for a second model).

    Returns
    -------
    pandas.DataFrame
        ``customer_id``, ``p_alive``, ``expected_purchases``, and with ``spend``
        ``expected_spend`` and ``clv``; with a posterior, ``<column>_lower`` and ``<column>_upper``.

    Raises
    ------
    SchemaError
        A summary column is missing.
    """
    _check(horizon_days, discount_rate, interval)
    model = TRANSACTION_MODELS.get(transactions.model)
    if model is None:
        raise ParameterError(
            f"{transactions.model!r} is not a transaction model; expected one of {', '.join(TRANSACTION_MODELS)}."
        )
    needed = ["customer_id", "frequency", "recency", "T"] + (["monetary_value"] if spend else [])
    missing = [c for c in needed if c not in summary.columns]
    if missing:
        raise SchemaError(
            f"The customer summary lacks {', '.join(missing)}; it needs {', '.join(needed)} "
            "(propensity.clv.summary.rfm_summary gives them)."
        )
    x = summary["frequency"].to_numpy(dtype="float64")
    t_x = summary["recency"].to_numpy(dtype="float64")
    T = summary["T"].to_numpy(dtype="float64")
    horizon = horizon_days / time_scaler
    step = STEP_DAYS / time_scaler
    out = pd.DataFrame({"customer_id": summary["customer_id"].to_numpy()})
    p = transactions.params
    ends = _ends(horizon, step, discount_rate)  # the last end is the horizon
    cumulative = model.expected_purchases_steps(p, x, t_x, T, list(ends))
    out[f"{prefix}p_alive"] = model.p_alive(p, x, t_x, T)
    out[f"{prefix}expected_purchases"] = cumulative[-1]
    m = summary["monetary_value"].to_numpy(dtype="float64") if spend else None
    if spend is not None and m is not None:
        expected_spend = gamma_gamma.expected_spend(spend.params, x, m)
        out[f"{prefix}expected_spend"] = expected_spend
        out[f"{prefix}clv"] = _value(cumulative, ends, expected_spend, step, discount_rate)
    draws_t = transactions.draws()
    draws_s = spend.draws() if spend is not None else None
    if draws_t is None and draws_s is None:
        return out
    lo, hi = (1 - interval) / 2, 1 - (1 - interval) / 2
    bounds: dict[str, list[np.ndarray]] = {}
    n_draws = max(len(next(iter(d.values()))) for d in (draws_t, draws_s) if d is not None)
    chunk = max(1, _CHUNK_CELLS // n_draws)
    for start in range(0, len(out), chunk):
        sl = slice(start, start + chunk)
        xs, txs, Ts = x[sl], t_x[sl], T[sl]
        cols: dict[str, np.ndarray] = {}
        pt = draws_t if draws_t is not None else p
        steps = model.expected_purchases_steps(pt, xs, txs, Ts, list(ends))
        if draws_t is not None:
            cols["p_alive"] = model.p_alive(pt, xs, txs, Ts)
            cols["expected_purchases"] = steps[-1]
        if spend is not None and m is not None:
            spend_draws = gamma_gamma.expected_spend(
                draws_s if draws_s is not None else spend.params, xs, m[sl]
            )
            if draws_s is not None:
                cols["expected_spend"] = spend_draws
            cols["clv"] = _value(steps, ends, spend_draws, step, discount_rate)
        for name, values in cols.items():
            q = np.quantile(np.atleast_2d(values), [lo, hi], axis=0)
            bounds.setdefault(name, []).append(q)
    for name, parts in bounds.items():
        both = np.concatenate(parts, axis=1)
        out[f"{prefix}{name}_lower"] = both[0]
        out[f"{prefix}{name}_upper"] = both[1]
    return out
