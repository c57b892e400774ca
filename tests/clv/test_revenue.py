"""Revenue predictors compared on a holdout: the figures of one predictor, by hand."""

from __future__ import annotations

import numpy as np
import pytest

from propensity.clv.revenue import revenue_metrics


def test_revenue_metrics_by_hand():
    actual = np.array([0.0, 10.0, 0.0, 50.0, 0.0, 0.0, 5.0, 0.0, 0.0, 35.0])  # 100 in all
    predicted = np.array([1.0, 8.0, 0.0, 20.0, 2.0, 0.0, 4.0, 0.0, 0.0, 30.0])
    m = revenue_metrics(actual, predicted)
    errors = predicted - actual  # 1, -2, 0, -30, 2, 0, -1, 0, 0, -5
    assert m["mae"] == pytest.approx(41 / 10)
    assert m["rmse"] == pytest.approx(np.sqrt((1 + 4 + 900 + 4 + 1 + 25) / 10), abs=1e-4)
    assert m["predicted_total"] == 65.0 and m["actual_total"] == 100.0
    # the top decile of 10 customers is one customer: the highest prediction (30) spent 35 of 100
    assert m["top_decile_capture"] == pytest.approx(0.35)
    assert errors.sum() == -35


def test_no_revenue_gives_no_capture_share():
    m = revenue_metrics(np.zeros(4), np.array([1.0, 0.0, 2.0, 0.0]))
    assert np.isnan(m["top_decile_capture"]) and m["mae"] == pytest.approx(0.75)
