"""Greedy ensemble selection: weights on out-of-fold log-odds, a blend that ships as one calibrated model."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import propensity
from propensity.bundle import load_model
from propensity.explain import explain, reason_codes
from propensity.metrics import logit
from propensity.pipeline import LogOddsEnsemble
from propensity.training.ensemble import greedy_ensemble, platt_log_loss

FAMILIES = ["logistic_regression", "random_forest", "lightgbm"]


def _signals(n: int = 4000, seed: int = 0) -> tuple[list[np.ndarray], np.ndarray]:
    """Two noisy views of the same log-odds: their average beats either alone."""
    rng = np.random.default_rng(seed)
    truth = rng.normal(size=n)
    y = (rng.random(n) < 1 / (1 + np.exp(-2 * truth))).astype(int)
    return [truth + rng.normal(size=n), truth + rng.normal(size=n), rng.normal(size=n)], y


def test_greedy_selection_blends_complementary_candidates_and_ignores_noise():
    z, y = _signals()
    fit = greedy_ensemble(z, y)
    assert fit.weights.sum() == pytest.approx(1.0)
    assert fit.weights[2] < 0.1  # noise earns at most a sliver (its chance correlation in these rows)
    assert fit.weights[0] > 0.3 and fit.weights[1] > 0.3
    assert fit.score < fit.best_single
    assert fit.score == pytest.approx(platt_log_loss(np.column_stack(z) @ fit.weights, y))


def test_a_candidate_that_adds_nothing_is_left_out():
    z, y = _signals()
    fit = greedy_ensemble([z[0], 0.5 * z[0] + 1.0], y)  # the same ranking: no blend can beat it
    assert fit.members == [0] and fit.weights.tolist() == [1.0, 0.0]
    assert fit.score == fit.best_single


def test_platt_log_loss_ignores_scale_and_shift():
    z, y = _signals()
    a = platt_log_loss(z[0], y)
    assert platt_log_loss(3 * z[0] - 2, y) == pytest.approx(a, abs=1e-9)
    rate = y.mean()
    assert platt_log_loss(np.zeros(len(y)), y) == pytest.approx(
        -(rate * np.log(rate) + (1 - rate) * np.log(1 - rate)), abs=1e-6
    )


@pytest.fixture(scope="module")
def ensemble_result(customer_table: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("ensemble") / "model"
    result = propensity.train(
        customer_table, target="purchased", candidates=FAMILIES, seed=4, out=out, tracking=False
    )
    return result, out


def test_the_default_ships_an_ensemble_that_beats_its_best_member_out_of_fold(ensemble_result):
    result, _ = ensemble_result
    m = result.model.manifest
    assert m.winner == "ensemble" and isinstance(result.model.pipeline.estimator, LogOddsEnsemble)
    spec = m.ensemble
    assert spec is not None and len(spec.members) >= 2
    assert sum(e.weight for e in spec.members) == pytest.approx(1.0, abs=1e-5)
    assert {e.name for e in spec.members} <= set(FAMILIES)
    assert spec.score["ensemble"] <= spec.score["best_member"]
    reports = {c.name: c for c in m.candidates}
    assert reports["ensemble"].test_source and "blended" in reports["ensemble"].test_source
    best_member = min(reports[e.name].oof["log_loss"] for e in spec.members)
    # the calibrated, cross-fitted out-of-fold log loss of the blend: at least as good (a little slack
    # for the cross-fitting of the calibrator, which the greedy criterion does not include)
    assert reports["ensemble"].oof["log_loss"] <= best_member + 0.002
    assert m.metrics["oof"] == reports["ensemble"].oof


def test_an_ensembles_reasons_add_up_to_its_log_odds(ensemble_result, customer_table):
    result, _ = ensemble_result
    model = result.model
    rows = customer_table.head(60)
    ex = explain(model, rows)
    X = model.pipeline.encoder.transform(model.prepare(rows).features)
    z = model.pipeline.estimator.log_odds(X)
    np.testing.assert_allclose(ex.base + ex.values.sum(axis=1), z, atol=1e-8)
    np.testing.assert_allclose(logit(model.pipeline.raw_proba_encoded(X)), z, atol=1e-8)
    reasons = reason_codes(model, rows.head(5), k=3)
    assert all(1 <= len(r) <= 3 for r in reasons)


def test_an_ensemble_bundle_saves_loads_and_scores_the_same(ensemble_result, customer_table):
    result, out = ensemble_result
    again = load_model(out)
    rows = customer_table.head(300)
    np.testing.assert_allclose(again.predict_proba(rows), result.model.predict_proba(rows))
    scores, _ = again.score_frame(rows)
    np.testing.assert_allclose(scores["probability"].to_numpy(), result.model.predict_proba(rows))
    assert again.manifest.ensemble == result.model.manifest.ensemble


def test_one_family_or_no_ensemble_gives_a_single_model(customer_table):
    single = propensity.train(customer_table, target="purchased", candidates=["lightgbm"], seed=4).model
    assert single.manifest.winner == "lightgbm" and single.manifest.ensemble is None
    off = propensity.train(
        customer_table,
        target="purchased",
        candidates=["logistic_regression", "lightgbm"],
        ensemble=False,
        seed=4,
    ).model
    assert off.manifest.ensemble is None and off.manifest.winner in {"logistic_regression", "lightgbm"}
