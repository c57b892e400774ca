"""Revenue in a horizon: the probabilistic models against a LightGBM regression, on the same holdout.

BG/NBD (or Pareto/NBD) × Gamma-Gamma predict a customer's spend in the next ``D`` days as expected
purchase days × expected spend per purchase day, from four numbers and no labels. A regression
learns the same quantity from labelled history instead: :func:`compare_revenue` trains a LightGBM
regressor (Tweedie loss, for the many zeros and the long right tail of spend) on the customers'
summaries one holdout length *earlier* (features at ``cutoff - D``, label = spend in
``[cutoff - D, cutoff)``), predicts from the summaries at the cutoff, and scores both — and the
naive "same as the last period" — against the spend actually observed in ``[cutoff, cutoff + D)``.
Nothing after the cutoff is used to fit anything.

Figures per predictor: RMSE and MAE per customer, predicted vs actual total, and the share of
the holdout revenue held by the top decile of customers ranked by the prediction (what a
campaign aimed at the 10 % most valuable would reach).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from propensity.clv import gamma_gamma

if TYPE_CHECKING:
    from propensity.clv.fit import ClvFit

__all__ = ["REVENUE_FEATURES", "compare_revenue", "revenue_metrics"]

#: The summary columns the regression reads (all known at the cutoff), plus the derived ``idle``
#: (time since the last purchase day, ``T - recency``).
REVENUE_FEATURES = (
    "frequency",
    "recency",
    "T",
    "monetary_value",
    "purchases",
    "spend",
    "returns",
    "returned_amount",
)

#: LightGBM settings: small trees and shrinkage, a fixed number of rounds (no label of the
#: evaluation period may steer the fit), Tweedie loss for zero-inflated, skewed spend.
LGBM_PARAMS: dict[str, Any] = {
    "objective": "tweedie",
    "tweedie_variance_power": 1.3,
    "n_estimators": 300,
    "learning_rate": 0.03,
    "num_leaves": 15,
    "min_child_samples": 40,
    "subsample": 0.8,
    "subsample_freq": 1,
    "colsample_bytree": 0.9,
    "reg_lambda": 1.0,
    "verbose": -1,
}


def _matrix(summary: pd.DataFrame) -> pd.DataFrame:
    X = summary[list(REVENUE_FEATURES)].astype("float64")
    return X.assign(idle=X["T"] - X["recency"])


def revenue_metrics(actual: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """RMSE, MAE, totals and the top-decile revenue capture of one predictor."""
    actual = np.asarray(actual, dtype="float64")
    predicted = np.asarray(predicted, dtype="float64")
    n = len(actual)
    top = max(1, int(np.ceil(0.1 * n))) if n else 0
    order = np.argsort(-predicted, kind="stable")[:top]
    total = float(actual.sum())
    return {
        "rmse": round(float(np.sqrt(np.mean((predicted - actual) ** 2))), 4) if n else float("nan"),
        "mae": round(float(np.mean(np.abs(predicted - actual))), 4) if n else float("nan"),
        "predicted_total": round(float(predicted.sum()), 2),
        "actual_total": round(total, 2),
        "top_decile_capture": round(float(actual[order].sum()) / total, 4) if total > 0 else float("nan"),
    }


def _probabilistic(fit: ClvFit, summary: pd.DataFrame, duration: float) -> np.ndarray | None:
    """Expected spend in the holdout from the primary transaction model × Gamma-Gamma."""
    if fit.spend is None:
        return None
    from propensity.clv.predict import TRANSACTION_MODELS

    name, mf = next(iter(fit.transactions.items()))
    x = summary["frequency"].to_numpy(dtype="float64")
    purchases = TRANSACTION_MODELS[name].expected_purchases(
        mf.params,
        x,
        summary["recency"].to_numpy(dtype="float64"),
        summary["T"].to_numpy(dtype="float64"),
        duration,
    )
    spend = gamma_gamma.expected_spend(
        fit.spend.params, x, summary["monetary_value"].to_numpy(dtype="float64")
    )
    return np.asarray(purchases * spend, dtype="float64")


def compare_revenue(
    earlier: pd.DataFrame, calibration: pd.DataFrame, fit: ClvFit, *, seed: int = 0
) -> dict[str, Any]:
    """Each predictor's holdout figures (see the module docstring).

    Parameters
    ----------
    earlier
        The summary at ``cutoff - D`` with a ``D``-day holdout (its ``spend_holdout`` is the
        regression's label).
    calibration
        The summary at the cutoff with a ``D``-day holdout (features, and the truth in
        ``spend_holdout``).
    fit
        The lifetime-value models fitted on ``calibration``.

    Returns
    -------
    dict
        ``customers``, ``trained_on`` (rows of ``earlier``), ``features`` and per predictor
        (``lightgbm``, ``<model>_gamma_gamma``, ``last_period``) the :func:`revenue_metrics`.
    """
    from lightgbm import LGBMRegressor

    actual = calibration["spend_holdout"].to_numpy(dtype="float64")
    duration = float(calibration["duration_holdout"].iloc[0]) if len(calibration) else 0.0
    out: dict[str, Any] = {
        "customers": len(calibration),
        "trained_on": len(earlier),
        "features": [*REVENUE_FEATURES, "idle"],
        "models": {},
    }
    label = earlier["spend_holdout"].to_numpy(dtype="float64")
    if len(earlier) >= 50 and float(label.sum()) > 0:
        model = LGBMRegressor(**LGBM_PARAMS, random_state=seed, n_jobs=1)
        model.fit(_matrix(earlier), label)
        predicted = np.clip(model.predict(_matrix(calibration)), 0.0, None)
        out["models"]["lightgbm"] = revenue_metrics(actual, predicted)
    else:
        out["note"] = (
            f"the regression was not trained: {len(earlier)} customer(s) bought before the earlier cutoff "
            f"and they spent {float(label.sum()):g} in the period after it (need 50 and a positive spend)"
        )
    probabilistic = _probabilistic(fit, calibration, duration)
    if probabilistic is not None:
        out["models"][f"{next(iter(fit.transactions))}_gamma_gamma"] = revenue_metrics(actual, probabilistic)
    # naive: the spend of the last D days before the cutoff repeats
    before = calibration[["customer_id"]].merge(
        earlier[["customer_id", "spend"]], on="customer_id", how="left"
    )
    last = calibration["spend"].to_numpy(dtype="float64") - before["spend"].fillna(0.0).to_numpy(
        dtype="float64"
    )
    out["models"]["last_period"] = revenue_metrics(actual, last)
    return out
