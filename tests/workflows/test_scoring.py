from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from propensity.errors import DataError, SchemaError
from propensity.sources import read_table
from propensity.workflows.scoring import score_file


def test_chunked_scoring_equals_in_memory_prediction(trained, customer_table, tmp_path):
    model, out = trained
    src = tmp_path / "in.parquet"
    customer_table.to_parquet(src)
    summary = score_file(out, src, tmp_path / "scores.parquet", batch_rows=700)
    scores = read_table(tmp_path / "scores.parquet")
    assert list(scores.columns) == [
        "customer_id",
        "probability",
        "decision",
        "band",
        "model_version",
        "scored_at",
    ]
    assert summary.rows_in == summary.rows_scored == len(customer_table)
    np.testing.assert_allclose(scores["probability"], model.predict_proba(customer_table))
    assert (scores["model_version"] == model.version).all()
    assert scores["customer_id"].tolist() == customer_table["customer_id"].tolist()
    written = json.loads((tmp_path / "scores.summary.json").read_text())
    assert written["rows_scored"] == len(customer_table)


def test_invalid_rows_are_quarantined_with_reasons_and_the_rest_scored(trained, customer_table, tmp_path):
    _, out = trained
    rows = customer_table.head(50).astype({"visits_30d": object, "days_since_last_visit": object})
    rows.loc[3, "visits_30d"] = "lots"
    rows.loc[7, "days_since_last_visit"] = -4  # never negative in training
    rows.loc[9, "device"] = "smart-fridge"  # unseen category: scored, counted
    src = tmp_path / "in.csv"
    rows.to_csv(src, index=False)
    summary = score_file(out, src, tmp_path / "s.csv")
    assert summary.rows_in == 50 and summary.rows_scored == 48 and summary.rows_quarantined == 2
    assert summary.unknown_categories == {"device": 1}
    q = pd.read_csv(summary.quarantine)
    assert q[["row", "column"]].values.tolist() == [[4, "visits_30d"], [8, "days_since_last_visit"]]
    assert "not a number" in q["reason"].iloc[0] and "never negative" in q["reason"].iloc[1]


def test_missing_required_column_is_named(trained, customer_table, tmp_path):
    _, out = trained
    src = tmp_path / "in.csv"
    customer_table.drop(columns=["cart_adds_30d"]).head(20).to_csv(src, index=False)
    with pytest.raises(SchemaError, match="missing required column\\(s\\) 'cart_adds_30d'"):
        score_file(out, src, tmp_path / "s.csv")
    summary = score_file(out, src, tmp_path / "s.csv", allow_missing=True)
    assert summary.rows_scored == 20 and summary.missing_optional == ["cart_adds_30d"]


def test_optional_columns_may_be_absent(trained, customer_table):
    model, _ = trained
    assert not model.manifest.feature("age").required  # age had gaps in training
    out = model.decide(customer_table.drop(columns=["age"]).head(10))
    assert out["probability"].between(0, 1).all()


def test_strict_prediction_explains_bad_rows(trained, customer_table):
    model, _ = trained
    rows = customer_table.head(5).astype({"visits_30d": object})
    rows.loc[1, "visits_30d"] = "n/a?"
    with pytest.raises(DataError, match="row 2 column 'visits_30d'"):
        model.predict_proba(rows)


def test_slow_explanations_are_announced_before_the_run(customer_table, monkeypatch):
    """A random forest explains slowly: scoring with reasons says how long it will take, up front."""
    import propensity
    from propensity.errors import PropensityWarning
    from propensity.workflows.scoring import warn_if_explaining_is_slow

    forest = propensity.train(
        customer_table, "purchased", candidates=["random_forest"], folds=3, seed=1
    ).model
    typed = forest.prepare(customer_table.head(50)).features
    # large batches are explained by path attribution, and the user is told so
    with pytest.warns(PropensityWarning, match=r"path attribution \(Saabas\)"):
        warn_if_explaining_is_slow(forest, typed, rows=10_000_000)
    # exact SHAP on small batches: slow enough to announce when the batch is big enough
    monkeypatch.setattr("propensity.explain.FAST_TREESHAP_ROWS", 10**9)
    with pytest.warns(PropensityWarning, match=r"rows/s, so reasons for 10,000,000 rows will take about"):
        warn_if_explaining_is_slow(forest, typed, rows=10_000_000)


def test_a_column_that_was_zero_or_one_in_training_scores_a_two(tmp_path):
    # A count that happened to be 0/1 in training (coil2000's AINBOED) must score a 2, not reject it.
    import propensity

    rng = np.random.default_rng(0)
    n = 600
    frame = pd.DataFrame(
        {
            "boats": rng.integers(0, 2, n),
            "spend": rng.gamma(2.0, 50.0, n),
        }
    )
    frame["bought"] = (rng.random(n) < 0.2 + 0.4 * frame["boats"]).astype(int)
    model = propensity.train(
        frame, target="bought", out=tmp_path / "m", candidates=["logistic_regression"], seed=0
    ).model
    roles = {c["name"]: c["role"] for c in model.manifest.roles["columns"]}
    assert roles["boats"] == "numeric"
    fresh = frame.drop(columns="bought").head(5).assign(boats=[0, 1, 2, 3, 1])
    fresh.to_csv(tmp_path / "fresh.csv", index=False)
    summary = score_file(tmp_path / "m", tmp_path / "fresh.csv", tmp_path / "scores.csv")
    assert summary.rows_scored == 5 and summary.rows_quarantined == 0
    probs = read_table(tmp_path / "scores.csv")["probability"]
    assert probs.between(0, 1).all()
