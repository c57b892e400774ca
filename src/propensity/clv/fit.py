"""Fit the purchase-count model(s) and the spend model on a summary; predict; check on a holdout.

:func:`fit_clv` returns a :class:`ClvFit` (one :class:`~propensity.clv.base.ModelFit` per model),
:func:`predict` turns it into per-customer columns, and :func:`holdout_check` compares the
calibration-period predictions with what customers did in the holdout period — the table behind
Fader and Hardie's "calibration frequency vs holdout purchases" plot.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from propensity.clv import beta_geo, gamma_gamma, pareto_nbd
from propensity.clv.base import FIT_METHODS, ModelFit
from propensity.clv.predict import TRANSACTION_MODELS, predict_customers
from propensity.clv.summary import check_time_scaler
from propensity.errors import InsufficientDataError, ParameterError

__all__ = ["MODEL_CHOICES", "ClvFit", "fit_clv", "holdout_check", "models_for", "predict"]

log = logging.getLogger(__name__)

#: What ``--model`` accepts, and the transaction models each fits (the first is the primary one).
MODEL_CHOICES: dict[str, tuple[str, ...]] = {
    "bgnbd": (beta_geo.NAME,),
    "pareto": (pareto_nbd.NAME,),
    "both": (beta_geo.NAME, pareto_nbd.NAME),
}
#: Calibration frequencies from this one up share the last bucket of the holdout check.
HOLDOUT_BUCKETS = 7


def models_for(choice: str) -> tuple[str, ...]:
    """The transaction models of a ``--model`` choice, or a clear error."""
    try:
        return MODEL_CHOICES[choice]
    except KeyError:
        raise ParameterError(
            f"The 'model' parameter must be one of {', '.join(MODEL_CHOICES)}. Got {choice!r} instead."
        ) from None


@dataclass
class ClvFit:
    """The fitted lifetime-value models of one summary.

    Attributes
    ----------
    transactions
        BG/NBD and/or Pareto/NBD fits by name, the primary one first.
    spend
        The Gamma-Gamma fit, or ``None`` when no customer had a positive repeat spend.
    time_scaler
        Days per time unit of the summary the models were fitted on.
    notes
        Why a model is missing, and what was left out of a fit.
    """

    transactions: dict[str, ModelFit]
    spend: ModelFit | None
    time_scaler: float = 1.0
    notes: list[str] = field(default_factory=list)

    @property
    def primary(self) -> str:
        return next(iter(self.transactions))

    @property
    def fits(self) -> list[ModelFit]:
        return [*self.transactions.values(), *([self.spend] if self.spend else [])]


def fit_clv(
    summary: pd.DataFrame,
    *,
    models: Sequence[str] = (beta_geo.NAME,),
    spend: bool = True,
    method: str = "map",
    time_scaler: float = 1.0,
    seed: int = 0,
    **sampler: Any,
) -> ClvFit:
    """Fit the named purchase-count models and (with ``spend``) Gamma-Gamma on a summary.

    Parameters
    ----------
    summary
        Output of :func:`propensity.clv.summary.rfm_summary` as a DataFrame.
    models
        ``bgnbd`` and/or ``pareto_nbd``; the first is the primary model of the predictions.
    spend
        Also fit Gamma-Gamma. When no customer has a repeat purchase of positive value the
        spend model is skipped with a note (P(alive) and purchases are still predicted).
    method
        ``map`` (default; flat priors, the maximum-likelihood estimates) or ``mcmc`` (a posterior,
        hence credible intervals; minutes rather than seconds).
    time_scaler
        Days per time unit of the summary.
    seed, **sampler
        Passed to the sampler with ``mcmc`` (``draws``, ``tune``, ``chains``).

    Raises
    ------
    ParameterError
        Unknown model or method.
    InsufficientDataError
        No customer in the summary.
    """
    if method not in FIT_METHODS:
        raise ParameterError(
            f"The 'method' parameter must be one of {', '.join(FIT_METHODS)}. Got {method!r} instead."
        )
    unknown = [m for m in models if m not in TRANSACTION_MODELS]
    if unknown or not models:
        raise ParameterError(
            f"The 'models' parameter must name {' and/or '.join(TRANSACTION_MODELS)}. Got {list(models)!r} instead."
        )
    if summary.empty:
        raise InsufficientDataError("The customer summary is empty: no customer bought before the cutoff.")
    scaler = check_time_scaler(time_scaler)
    fits = {
        name: TRANSACTION_MODELS[name].fit(summary, method=method, seed=seed, **sampler) for name in models
    }
    notes: list[str] = []
    spend_fit = None
    if spend:
        try:
            spend_fit = gamma_gamma.fit(summary, method=method, seed=seed, **sampler)
        except InsufficientDataError as exc:
            notes.append(f"no spend model: {exc}")
            log.warning("Gamma-Gamma skipped: %s", exc)
    return ClvFit(transactions=fits, spend=spend_fit, time_scaler=scaler, notes=notes)


def predict(
    summary: pd.DataFrame,
    fit: ClvFit,
    *,
    horizon_days: float = 365.0,
    discount_rate: float = 0.0,
    interval: float = 0.9,
) -> pd.DataFrame:
    """Per-customer predictions of every fitted model: the primary one's columns unprefixed
    (``p_alive``, ``expected_purchases``, ``expected_spend``, ``clv``), the others' prefixed with
    their name (``pareto_nbd_p_alive`` …). See :func:`propensity.clv.predict.predict_customers`."""
    out: pd.DataFrame | None = None
    for i, (name, transactions) in enumerate(fit.transactions.items()):
        cols = predict_customers(
            summary,
            transactions,
            fit.spend,
            horizon_days=horizon_days,
            discount_rate=discount_rate,
            time_scaler=fit.time_scaler,
            interval=interval,
            prefix="" if i == 0 else f"{name}_",
        )
        # Spend per purchase comes from the one Gamma-Gamma fit: the second model would repeat it.
        repeated = ["customer_id"] + [c for c in cols.columns if c.startswith(f"{name}_expected_spend")]
        out = (
            cols
            if out is None
            else pd.concat([out, cols.drop(columns=[c for c in repeated if c in cols])], axis=1)
        )
    assert out is not None
    return out


def holdout_check(summary: pd.DataFrame, fit: ClvFit) -> dict[str, Any]:
    """Calibration-period predictions against the holdout period (the summary's holdout columns).

    Returns
    -------
    dict
        ``by_frequency``: per calibration frequency (0 … 6, then "7+"), the customers, the mean
        purchases in the holdout and each model's mean prediction — the Fader–Hardie plot;
        ``models``: per model, total predicted vs actual holdout purchases, mean absolute error
        per customer, and for Gamma-Gamma the error of the predicted spend per purchase among
        customers who bought in the holdout; ``duration`` of the holdout in model time units.
    """
    if "frequency_holdout" not in summary.columns:
        raise ParameterError("The summary has no holdout columns: build it with holdout_days.")
    duration = float(summary["duration_holdout"].iloc[0]) if len(summary) else 0.0
    x = summary["frequency"].to_numpy(dtype="float64")
    t_x = summary["recency"].to_numpy(dtype="float64")
    T = summary["T"].to_numpy(dtype="float64")
    actual = summary["frequency_holdout"].to_numpy(dtype="float64")
    bucket = np.minimum(summary["frequency"].to_numpy(), HOLDOUT_BUCKETS)
    table = pd.DataFrame({"bucket": bucket, "actual": actual})
    models: dict[str, Any] = {}
    for name, mf in fit.transactions.items():
        predicted = TRANSACTION_MODELS[name].expected_purchases(mf.params, x, t_x, T, duration)
        table[name] = predicted
        models[name] = {
            "predicted_purchases": round(float(predicted.sum()), 3),
            "actual_purchases": int(actual.sum()),
            "mean_absolute_error": round(float(np.abs(predicted - actual).mean()), 5),
            "rmse": round(float(np.sqrt(((predicted - actual) ** 2).mean())), 5),
        }
    grouped = table.groupby("bucket", sort=True)
    by_frequency = []
    for key, rows in grouped:
        b = int(key)  # type: ignore[arg-type]
        entry: dict[str, Any] = {
            "frequency": f"{b}+" if b == HOLDOUT_BUCKETS else str(b),
            "customers": len(rows),
            "actual": round(float(rows["actual"].mean()), 5),
        }
        entry.update({name: round(float(rows[name].mean()), 5) for name in fit.transactions})
        by_frequency.append(entry)
    if fit.spend is not None:
        buyers = summary[summary["frequency_holdout"] > 0]
        if len(buyers):
            predicted_spend = gamma_gamma.expected_spend(
                fit.spend.params, buyers["frequency"], buyers["monetary_value"]
            )
            error = predicted_spend - buyers["monetary_value_holdout"].to_numpy(dtype="float64")
            models[gamma_gamma.NAME] = {
                "holdout_buyers": len(buyers),
                "mean_predicted_spend": round(float(predicted_spend.mean()), 4),
                "mean_actual_spend": round(float(buyers["monetary_value_holdout"].mean()), 4),
                "mean_absolute_error": round(float(np.abs(error).mean()), 4),
            }
    return {"duration": duration, "by_frequency": by_frequency, "models": models}


def fits_from_dicts(items: Sequence[Mapping[str, Any]], time_scaler: float) -> ClvFit:
    """A :class:`ClvFit` back from stored fit dictionaries (the bundle manifest's ``models``)."""
    fits = [ModelFit.from_dict(item) for item in items]
    transactions = {f.model: f for f in fits if f.model in TRANSACTION_MODELS}
    spend = next((f for f in fits if f.model == gamma_gamma.NAME), None)
    if not transactions:
        raise ParameterError("The stored models hold no BG/NBD or Pareto/NBD fit.")
    return ClvFit(transactions=transactions, spend=spend, time_scaler=time_scaler)
