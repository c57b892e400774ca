from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from propensity.metrics import binary_metrics, lift_at


def test_metrics_match_scikit_learn():
    rng = np.random.default_rng(0)
    y = (rng.random(500) < 0.2).astype(int)
    p = np.clip(0.2 + 0.5 * y * rng.random(500) + 0.1 * rng.standard_normal(500), 0.001, 0.999)
    m = binary_metrics(y, p, threshold=0.4)
    assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(y, p))
    assert m["pr_auc"] == pytest.approx(skm.average_precision_score(y, p))
    assert m["brier"] == pytest.approx(skm.brier_score_loss(y, p))
    assert m["log_loss"] == pytest.approx(skm.log_loss(y, p))
    assert m["f1"] == pytest.approx(skm.f1_score(y, p >= 0.4))
    assert m["precision"] == pytest.approx(skm.precision_score(y, p >= 0.4))


def test_lift_by_hand():
    # 10 rows, 2 positives; the top 10 % (1 row) is a positive -> rate 1.0 / base 0.2 = 5
    y = np.array([1, 0, 0, 0, 1, 0, 0, 0, 0, 0])
    p = np.array([0.9, 0.8, 0.1, 0.1, 0.2, 0.3, 0.1, 0.1, 0.1, 0.1])
    assert lift_at(y, p, 0.1) == pytest.approx(5.0)
    # top 20 % = rows 0 and 1 -> 1 positive of 2 -> 0.5 / 0.2 = 2.5
    assert lift_at(y, p, 0.2) == pytest.approx(2.5)


def test_single_class_says_which_metrics_are_undefined():
    y = np.zeros(20, dtype=int)
    m = binary_metrics(y, np.linspace(0, 1, 20), threshold=0.5)
    assert m["roc_auc"] is None and m["pr_auc"] is None and m["recall"] is None
    assert "roc_auc" in m["undefined"] and "recall" in m["undefined"]
    assert m["brier"] is not None
