"""Event log → training set → model → scores, and time-ordered validation of stacked snapshots."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import propensity
from propensity.bundle import load_model
from propensity.errors import BundleError, DataError, InsufficientDataError, ParameterError, PropensityWarning
from propensity.features.labels import plan_cutoffs
from propensity.training.cv import time_ordered_split
from propensity.workflows.events import compute_features, score_events, train_from_events
from tests.features.fixtures import hand_log

FAST = {"candidates": ["lightgbm"], "seed": 3}


@pytest.fixture(scope="module")
def shop_model(tmp_path_factory, small_shop):
    out = tmp_path_factory.mktemp("event_model") / "model"
    model = train_from_events(
        small_shop / "events.parquet",
        horizon_days=14,
        cutoffs=4,
        step_days=14,
        lookbacks=(7, 30),
        eligible_days=30,
        out=out,
        **FAST,
    ).model
    return model, out


def test_training_from_events_records_everything_needed_to_score(shop_model):
    model, out = shop_model
    m = model.manifest
    ev = m.events.model_dump()  # the block as manifest.json stores it
    assert ev["label"] == {
        "kind": "purchase",
        "horizon_days": 14,
        "column": "purchase_next_14d",
        "definition": ev["label"]["definition"],
    }
    assert len(ev["cutoffs"]) == 4 and ev["step_days"] == 14 and ev["test_cutoff"] == ev["cutoffs"][-1]
    assert ev["features"]["config"]["lookbacks"] == [7, 30]
    assert set(ev["features"]["config"]["levels"]) == {"device", "channel"}
    assert {d["name"] for d in ev["features"]["definitions"]} >= set(model.features)
    assert ev["mapping"]["session_gap_minutes"] == 30 and ev["eligibility"]["active_days"] == 30
    assert ev["data"]["rows_in"] == ev["data"]["rows_ok"] + ev["data"]["rows_quarantined"]
    assert m.task.target == "purchase_next_14d" and "purchase event in the 14 days" in m.task.label_definition
    # descriptions and units reach the feature specs (reason codes read them)
    spec = m.feature("days_since_last_add_to_cart")
    assert spec.description == "days since the last add to cart" and spec.unit == "days"
    assert "cutoff" not in model.features and "customer_id" not in model.features
    # time-ordered: test on the last cutoff, validation on the one before it
    assert m.provenance.test_source.startswith(f"latest cutoff {ev['cutoffs'][-1][:10]}")
    assert m.provenance.validation.startswith(f"time-ordered: validated on cutoff {ev['cutoffs'][-2][:10]}")
    assert m.provenance.rows_test == ev["per_cutoff"][-1]["eligible"]
    for name in (
        "manifest.json",
        "model.joblib",
        "metrics.json",
        "validation.json",
        "events_quarantine.csv",
        "training_set.parquet",
    ):
        assert (out / name).exists(), name
    stacked = pd.read_parquet(out / "training_set.parquet")
    assert not stacked.duplicated(["customer_id", "cutoff"]).any()
    # reproducible: each snapshot in customer order, whatever order the engine's threads return
    for _, snap in stacked.groupby("cutoff", sort=False):
        assert snap["customer_id"].is_monotonic_increasing


def test_the_model_finds_real_signal_but_no_leak(shop_model):
    model, _ = shop_model
    test = model.manifest.metrics["test"]
    assert 0.62 < test["roc_auc"] < 0.95
    assert test["lift_top10"] > 1.5


def test_scoring_a_log_needs_only_the_model_and_the_log(shop_model, small_shop, tmp_path):
    _, out = shop_model
    loaded = load_model(out)  # nothing from training is kept in memory
    as_of = "2024-04-20"
    summary = score_events(loaded, small_shop / "events.parquet", tmp_path / "scores.csv", as_of=as_of)
    scores = pd.read_csv(tmp_path / "scores.csv")
    assert list(scores.columns) == [
        "customer_id",
        "probability",
        "decision",
        "band",
        "eligible",
        "as_of",
        "model_version",
        "scored_at",
    ]
    # every customer seen before as_of, lapsed ones too, with an eligibility flag
    feats, fsum = compute_features(small_shop / "events.parquet", as_of, lookbacks=(7, 30), eligible_days=30)
    assert len(scores) == summary.customers == fsum.customers == len(feats)
    assert set(scores["customer_id"]) == set(feats["customer_id"])
    assert 0 < summary.eligible == int(scores["eligible"].sum()) == fsum.eligible < len(scores)
    # by default everyone seen before the cutoff is eligible: the population scoring ranks
    _, everyone = compute_features(small_shop / "events.parquet", as_of, lookbacks=(7, 30))
    assert everyone.eligible == everyone.customers == len(scores)
    assert scores["probability"].between(0, 1).all()
    assert ((scores["probability"] >= summary.threshold) == scores["decision"]).all()
    # the rebuilt features score exactly like the same features passed as a table
    feats = feats.sort_values("customer_id")
    direct = loaded.predict_proba(feats)
    np.testing.assert_allclose(scores.sort_values("customer_id")["probability"], direct, rtol=1e-9)
    only = score_events(
        loaded, small_shop / "events.parquet", tmp_path / "eligible.parquet", as_of=as_of, eligible_only=True
    )
    assert (
        only.scored == summary.eligible and pd.read_parquet(tmp_path / "eligible.parquet")["eligible"].all()
    )
    assert json.loads((tmp_path / "scores.summary.json").read_text())["as_of"] == "2024-04-20 00:00:00"
    assert (tmp_path / "scores.quarantine.csv").exists()


def test_recent_cart_adds_raise_the_score(shop_model):
    """Behavioural check on the synthetic shop: more recent add-to-cart activity, higher scores on average."""
    model, _ = shop_model
    base = (
        pd.read_parquet(model.path / "training_set.parquet")
        .drop(columns=["cutoff", "purchase_next_14d"])
        .head(400)
    )
    busier = base.copy()
    for col in ("n_add_to_cart_7d", "n_add_to_cart_30d", "n_add_to_cart_all"):
        busier[col] = base[col] + 3
    busier["days_since_last_add_to_cart"] = 0.5
    assert model.predict_proba(busier).mean() > model.predict_proba(base).mean()


def test_scoring_refuses_what_it_cannot_do(shop_model, small_shop, trained, tmp_path):
    model, _ = shop_model
    with pytest.raises(DataError, match="after the end of the data"):
        score_events(model, small_shop / "events.parquet", tmp_path / "s.csv", as_of="2025-06-01")
    table_model, _ = trained
    with pytest.raises(BundleError, match="trained on a table"):
        score_events(table_model, small_shop / "events.parquet", tmp_path / "s.csv")


def test_no_purchase_events_means_nothing_to_predict(tmp_path):
    raw = hand_log()
    raw = raw[raw["event_type"] != "purchase"]
    with pytest.raises(DataError, match="no purchase events, so there is nothing to predict"):
        train_from_events(raw, horizon_days=7, cutoffs=1, export_time="2024-03-20", **FAST)


def test_cutoffs_and_horizons_that_do_not_fit_the_data_are_refused(small_shop):
    first, end = pd.Timestamp("2024-01-01 00:05"), pd.Timestamp("2024-04-30")
    plan = plan_cutoffs(first, end, horizon_days=30, cutoffs=3, step_days=30)
    assert plan == [pd.Timestamp("2024-01-31"), pd.Timestamp("2024-03-01"), pd.Timestamp("2024-03-31")]
    with pytest.raises(DataError, match=r"At most 3 fit; pass --cutoffs 3"):
        plan_cutoffs(first, end, horizon_days=30, cutoffs=5, step_days=30)
    # as an upper bound (train_from_events' default): the 3 that fit, and a warning that says so
    with pytest.warns(PropensityWarning, match=r"5 cutoffs 30 days apart.*training on the 3 that fit"):
        assert plan_cutoffs(first, end, horizon_days=30, cutoffs=5, step_days=30, at_most=True) == plan
    with pytest.raises(DataError, match="At most 1 fit"):  # not even one: still an error
        plan_cutoffs(first, end, horizon_days=118, cutoffs=4, step_days=30, at_most=True)
    with pytest.raises(DataError, match=r"reaches 15 day\(s\) past the end of the data"):
        plan_cutoffs(first, end, horizon_days=30, cutoffs=1, step_days=30, last="2024-04-15")
    with pytest.raises(DataError, match="past the end of the data"):
        compute_features(small_shop / "events.parquet", "2024-04-15", horizon_days=30)
    with pytest.raises(ParameterError, match="revenue is a number"):
        train_from_events(small_shop / "events.parquet", label="revenue")
    with pytest.raises(ParameterError, match="'label' parameter"):
        train_from_events(small_shop / "events.parquet", label="clicks")


def test_features_with_labels_write_files_beside_the_output(small_shop, tmp_path):
    out = tmp_path / "f.parquet"
    frame, summary = compute_features(small_shop / "events.parquet", "2024-03-15", horizon_days=14, out=out)
    assert frame is None
    table = pd.read_parquet(out)
    assert {"purchase_next_14d", "churn_next_14d", "revenue_next_14d", "eligible", "as_of"} <= set(
        table.columns
    )
    buyers = table["n_orders_all"] > 0
    assert table.loc[~buyers, "churn_next_14d"].isna().all()
    assert (table.loc[buyers, "churn_next_14d"] == 1 - table.loc[buyers, "purchase_next_14d"]).all()
    assert (table["revenue_next_14d"] > 0).eq(table["purchase_next_14d"] == 1).all()
    assert summary.labels["purchase_next_14d"] == pytest.approx(table["purchase_next_14d"].mean(), abs=1e-6)
    meta = json.loads((tmp_path / "f.summary.json").read_text())
    assert meta["customers"] == len(table) and len(meta["registry"]) == summary.features
    assert (tmp_path / "f.quarantine.csv").exists()


def test_time_ordered_split_never_trains_on_a_window_that_reaches_the_evaluated_cutoff():
    cutoffs = pd.date_range("2024-01-01", periods=6, freq="14D")  # .. 2024-02-26, 2024-03-11
    times = pd.Series(np.repeat(cutoffs, 20))
    y = np.tile(np.r_[np.ones(5), np.zeros(15)], 6).astype(int)
    gap = pd.Timedelta(days=20)
    split = time_ordered_split(times, y, gap=gap, validation_times=2)
    assert split.test_time == cutoffs[-1] and set(times.iloc[split.test]) == {cutoffs[-1]}
    pool = times.iloc[split.train].reset_index(drop=True)
    assert (pool + gap <= cutoffs[-1]).all() and split.purged == 20  # 2024-02-26 + 20d > 2024-03-11
    assert split.validation_times == [cutoffs[2], cutoffs[3]]
    assert len(split.folds) == 2
    for fit, val in split.folds:
        (v,) = set(pool.iloc[val])
        assert (pool.iloc[fit] + gap <= v).all() and (pool.iloc[fit] < v).all()
    with pytest.raises(InsufficientDataError, match="two or more times"):
        time_ordered_split(pd.Series([cutoffs[0]] * 4), np.array([0, 1, 0, 1]))


def test_trainer_with_a_time_column_keeps_plain_tables_unchanged(customer_table):
    """Stacked copies of a table with a cutoff column train time-ordered; the same id may repeat per cutoff."""
    parts = []
    for k, cutoff in enumerate(pd.to_datetime(["2024-01-01", "2024-02-01", "2024-03-01", "2024-04-01"])):
        part = customer_table.sample(frac=0.6, random_state=k).assign(cutoff=cutoff)
        parts.append(part)
    stacked = pd.concat(parts, ignore_index=True)
    result = propensity.train(
        stacked,
        "purchased",
        candidates=["logistic_regression"],
        time_column="cutoff",
        time_gap=pd.Timedelta(days=31),
    )
    model = result.model
    p = model.manifest.provenance
    assert p.rows_quarantined == 0  # ids repeat across cutoffs, not within one
    assert p.rows_test == len(parts[-1]) and p.test_source == "latest cutoff 2024-04-01"
    assert p.rows_train == len(parts[0]) + len(parts[1]) + len(parts[2])  # 2024-03-01 + 31 days = 2024-04-01
    # validated on 2024-03-01, trained for that on 2024-01-01 only (2024-02-01 + 31 days > 2024-03-01)
    assert p.validation.startswith("time-ordered: validated on cutoff 2024-03-01")
    assert "cutoff" not in model.features
    assert len(result.run.y_train) == len(parts[2]) == len(result.run.oof)  # OOF = the validation cutoff only


def test_cutoffs_closer_than_the_horizon_are_told_to_be_spaced():
    cutoffs = pd.date_range("2024-01-01", periods=6, freq="30D")
    times = np.repeat(cutoffs, 20)
    y = np.tile([0, 1], 60)
    with pytest.raises(InsufficientDataError, match="Space the cutoffs at least 90 days apart"):
        time_ordered_split(times, y, gap=pd.Timedelta(days=90))
    spaced = np.repeat(pd.date_range("2024-01-01", periods=4, freq="90D"), 20)
    split = time_ordered_split(spaced, np.tile([0, 1], 40), gap=pd.Timedelta(days=90))
    assert len(split.folds) == 1
