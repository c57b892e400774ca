from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import spearmanr

from propensity.errors import DataError, ParameterError
from propensity.training.calibration import choose_calibration, fit_calibrator
from propensity.training.policy import PolicySpec, choose_policy, make_bands

Y = np.array([1, 1, 0, 1, 0, 0, 1, 0, 0, 0])
P = np.array([0.95, 0.9, 0.8, 0.7, 0.6, 0.4, 0.35, 0.2, 0.1, 0.05])


def test_f1_policy_by_hand():
    # contacting the top 4 gives tp=3 fp=1 fn=1 -> F1 = 6/8 = 0.75, the best here
    pol = choose_policy(PolicySpec("f1"), Y, P)
    assert pol.threshold == pytest.approx(0.7)
    assert pol.expected["contacted"] == 4 and pol.expected["buyers_reached"] == 3


def test_profit_policy_is_cost_over_value():
    pol = choose_policy(PolicySpec("profit", value=50, cost=10), Y, P)
    assert pol.threshold == pytest.approx(0.2)
    # contacts 8 rows (p >= 0.2), 4 buyers -> 4*50 - 8*10 = 120
    assert pol.expected["profit"] == pytest.approx(120.0)


def test_top_policy_contacts_the_fraction():
    pol = choose_policy(PolicySpec("top", fraction=0.3), Y, P)
    assert pol.threshold == pytest.approx(0.8) and pol.expected["contacted"] == 3


def test_precision_and_recall_policies():
    prec = choose_policy(PolicySpec("precision", min=0.75), Y, P)
    assert prec.threshold == pytest.approx(0.7)  # lowest threshold with precision >= 0.75
    rec = choose_policy(PolicySpec("recall", min=1.0), Y, P)
    assert rec.threshold == pytest.approx(0.35)  # highest threshold reaching every buyer
    with pytest.raises(DataError, match="best reachable"):
        choose_policy(
            PolicySpec("precision", min=1.0), np.array([0, 1, 0, 1]), np.array([0.9, 0.8, 0.7, 0.6])
        )


@pytest.mark.parametrize(
    "kwargs",
    [
        {"kind": "profit", "value": 10},
        {"kind": "top", "fraction": 1.5},
        {"kind": "precision"},
        {"kind": "best"},
    ],
)
def test_policy_parameters_are_validated(kwargs):
    with pytest.raises(ParameterError):
        PolicySpec(**kwargs)


def test_bands_cover_all_rows_and_report_observed_rates():
    bands = make_bands(Y, P, threshold=0.7)
    assert [b.name for b in bands] == ["high", "medium", "low"]
    assert sum(b.share for b in bands) == pytest.approx(1.0)
    assert bands[0].observed_rate == pytest.approx(0.75)  # 3 of the 4 rows >= 0.7 are buyers


def test_isotonic_never_reorders_customers():
    rng = np.random.default_rng(1)
    p = rng.random(2000)
    y = (rng.random(2000) < p**2).astype(int)
    cal = fit_calibrator("isotonic", p, y)
    q = cal(p)
    assert spearmanr(p, q).statistic == pytest.approx(1.0)
    assert np.all(np.diff(q[np.argsort(p)]) > 0)


def test_miscalibrated_scores_get_calibrated():
    rng = np.random.default_rng(2)
    true_p = rng.random(4000) * 0.3
    y = (rng.random(4000) < true_p).astype(int)
    inflated = np.clip(true_p * 3, 0, 0.999)  # what balanced class weights do to probabilities
    folds = [
        (np.flatnonzero(np.arange(4000) % 5 != k), np.flatnonzero(np.arange(4000) % 5 == k)) for k in range(5)
    ]
    choice = choose_calibration(inflated, y, folds)
    assert choice.method != "none"
    assert choice.scores[choice.method]["log_loss"] < choice.scores["none"]["log_loss"]
    assert abs(choice.oof.mean() - y.mean()) < 0.01


def test_calibration_never_reverses_the_order():
    rng = np.random.default_rng(3)
    p = rng.random(3000)
    y = (rng.random(3000) < 1 - p).astype(int)  # scores that rank worse than chance
    q = fit_calibrator("sigmoid", p, y)(p)
    assert np.all(np.diff(q[np.argsort(p)]) >= 0)
    assert q.mean() == pytest.approx(y.mean(), abs=0.01)  # the base rate, not the reversed order


def test_cross_fitted_calibrators_reorder_rows_across_folds_the_final_one_does_not():
    # Why ranking metrics of out-of-fold predictions are read from the raw scores.
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(4)
    p = rng.random(5000)
    y = (rng.random(5000) < p**2).astype(int)
    folds = [
        (np.flatnonzero(np.arange(5000) % 5 != k), np.flatnonzero(np.arange(5000) % 5 == k)) for k in range(5)
    ]
    choice = choose_calibration(p, y, folds, methods=("isotonic",))
    assert roc_auc_score(y, choice.calibrator(p)) == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert roc_auc_score(y, choice.oof) < roc_auc_score(y, p) - 1e-4
