"""Model-level behaviour: directional checks of the closed forms, input checks, and a real posterior fit."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from propensity.clv import beta_geo, gamma_gamma, pareto_nbd
from propensity.clv.base import ModelFit
from propensity.clv.fit import fit_clv, predict
from propensity.clv.predict import predict_customers
from propensity.errors import ParameterError, SchemaError

BG = {"r": 0.2426, "alpha": 4.4136, "a": 0.7930, "b": 2.4262}
PN = {"r": 0.5533, "alpha": 10.5777, "s": 0.6062, "beta": 11.6684}
GG = {"p": 6.2496, "q": 3.7442, "v": 15.4436}


@pytest.mark.parametrize(("module", "params"), [(beta_geo, BG), (pareto_nbd, PN)])
def test_directional_behaviour(module, params):
    # the same frequency, a more recent last purchase: more likely alive and more future purchases
    x, T = np.array([4.0, 4.0]), np.array([30.0, 30.0])
    recent, stale = np.array([29.0]), np.array([5.0])
    t_x = np.concatenate([recent, stale])
    alive = module.p_alive(params, x, t_x, T)
    assert alive[0] > alive[1]
    purchases = module.expected_purchases(params, x, t_x, T, 10.0)
    assert purchases[0] > purchases[1]
    # more purchases over a longer horizon; none over an empty one
    assert (module.expected_purchases(params, x, t_x, T, 20.0) > purchases).all()
    np.testing.assert_allclose(module.expected_purchases(params, x, t_x, T, 0.0), 0.0, atol=1e-12)
    assert ((alive > 0) & (alive <= 1)).all()


def test_bgnbd_one_purchase_customers_are_alive_and_heavy_buyers_do_not_overflow():
    assert beta_geo.p_alive(BG, 0, 0.0, 30.0) == 1.0
    heavy = beta_geo.expected_purchases(BG, 400.0, 50.0, 400.0, 10.0)
    assert np.isfinite(heavy) and heavy >= 0
    assert np.isfinite(beta_geo.p_alive(BG, 400.0, 50.0, 400.0))


def test_spend_shrinks_to_the_population_mean_and_reads_negative_means_as_zero():
    pop = gamma_gamma.population_mean(GG)
    assert gamma_gamma.expected_spend(GG, 0, 0.0) == pytest.approx(pop)
    assert gamma_gamma.expected_spend(GG, 1, 100.0) > gamma_gamma.expected_spend(GG, 1, 10.0)
    # more purchases, more weight on the customer's own mean
    assert gamma_gamma.expected_spend(GG, 10, 100.0) > gamma_gamma.expected_spend(GG, 1, 100.0)
    assert gamma_gamma.expected_spend(GG, 3, -50.0) == pytest.approx(gamma_gamma.expected_spend(GG, 3, 0.0))
    assert gamma_gamma.expected_spend(GG, 3, 0.0) < pop


def test_predictions_check_their_inputs():
    summary = pd.DataFrame({"customer_id": ["a"], "frequency": [1], "recency": [3.0], "T": [9.0]})
    fit = ModelFit("bgnbd", BG, 0.0, 0.0, 1)
    with pytest.raises(SchemaError, match="lacks monetary_value"):
        predict_customers(summary, fit, ModelFit("gamma_gamma", GG, 0.0, 0.0, 1))
    with pytest.raises(ParameterError, match="'discount_rate' parameter must be a rate per 30 days"):
        predict_customers(summary, fit, discount_rate=1.5)
    with pytest.raises(ParameterError, match="'horizon_days' parameter"):
        predict_customers(summary, fit, horizon_days=0)
    with pytest.raises(ParameterError, match="parameter 'a' must be positive"):
        predict_customers(summary, ModelFit("bgnbd", {**BG, "a": -1.0}, 0.0, 0.0, 1))
    with pytest.raises(ParameterError, match="'model' parameter|not a transaction model"):
        predict_customers(summary, ModelFit("gamma_gamma", GG, 0.0, 0.0, 1))


def test_discounting_lowers_value_and_steps_add_up():
    summary = pd.DataFrame(
        {
            "customer_id": ["a", "b"],
            "frequency": [3, 0],
            "recency": [20.0, 0.0],
            "T": [40.0, 40.0],
            "monetary_value": [30.0, 0.0],
        }
    )
    fit = ModelFit("bgnbd", BG, 0.0, 0.0, 2)
    spend = ModelFit("gamma_gamma", GG, 0.0, 0.0, 2)
    plain = predict_customers(summary, fit, spend, horizon_days=95)
    discounted = predict_customers(summary, fit, spend, horizon_days=95, discount_rate=0.02)
    assert (discounted["clv"] < plain["clv"]).all()
    # a vanishing rate gives back the undiscounted value (30 + 30 + 30 + 5 days of steps)
    tiny = predict_customers(summary, fit, spend, horizon_days=95, discount_rate=1e-12)
    np.testing.assert_allclose(tiny["clv"], plain["clv"], rtol=1e-9)


@pytest.mark.slow
def test_mcmc_gives_a_posterior_and_intervals_around_the_point(tmp_path):
    """A real (short) NUTS run through pymc-marketing; stored draws give the intervals."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from benchmarks.bench_clv import synthetic_orders

    from propensity.clv.summary import rfm_summary
    from propensity.events.validate import load_events

    with load_events(synthetic_orders(300, seed=3), {"order_log": True}, export_time="2025-02-01") as ev:
        summary = ev.engine.execute(rfm_summary(ev.events, "2025-01-01", time_scaler=7))
    fit = fit_clv(summary, method="mcmc", time_scaler=7, draws=100, tune=100, chains=1, seed=4)
    bg = fit.transactions["bgnbd"]
    assert bg.method == "mcmc" and bg.posterior is not None
    assert all(len(v) == 100 for v in bg.posterior.values())  # 1 chain x 100 draws, all kept (<= 400)
    assert fit.spend is not None and fit.spend.posterior is not None
    out = predict(summary, fit, horizon_days=90, interval=0.9)
    for col in ("p_alive", "expected_purchases", "expected_spend", "clv"):
        assert (out[f"{col}_lower"] <= out[f"{col}_upper"]).all()
    inside = (out["expected_purchases_lower"] <= out["expected_purchases"] + 1e-9) & (
        out["expected_purchases"] <= out["expected_purchases_upper"] + 1e-9
    )
    # The point prediction (at the posterior-mean parameters) is not a quantile of the predictions,
    # but it sits inside their 90 % interval for most customers (93 % in a 150-draw run).
    assert inside.mean() > 0.8
    assert (out["clv_upper"] > out["clv_lower"]).mean() > 0.99
