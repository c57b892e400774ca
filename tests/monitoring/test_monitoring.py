"""Monitoring: drift statistics, the monitor on tables and event logs, and the CLI's alert exit code."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score
from typer.testing import CliRunner

from propensity.cli import app
from propensity.datasets import make_customer_table
from propensity.errors import DataError, ParameterError
from propensity.monitoring import Thresholds
from propensity.monitoring.stats import auc_interval, cbpe, chi_square, jensen_shannon, ks_binned, psi
from propensity.workflows.events import train_from_events
from propensity.workflows.monitoring import monitor

# ------------------------------------------------------------------------------ statistics


def test_psi_is_zero_for_equal_shares_and_grows_with_the_shift():
    ref = np.full(10, 0.1)
    assert psi(ref, ref) == pytest.approx(0.0)
    small = psi(ref, np.array([0.12, 0.08] * 5))
    large = psi(ref, np.array([0.3, 0.0] * 5))
    assert 0 < small < 0.1 < 0.25 < large


def test_ks_and_jensen_shannon_distances():
    ref = np.array([0.25, 0.25, 0.25, 0.25])
    gap, p = ks_binned(ref, np.array([0.4, 0.3, 0.2, 0.1]), 10_000, 10_000)
    assert gap == pytest.approx(0.2) and p < 1e-6
    assert ks_binned(ref, ref, 100, 100) == (0.0, 1.0)
    assert jensen_shannon(ref, ref) == pytest.approx(0.0)
    assert jensen_shannon(np.array([1.0, 0.0]), np.array([0.0, 1.0])) == pytest.approx(1.0)
    stat, p = chi_square(np.array([0.5, 0.5]), np.array([50, 50]))
    assert stat == pytest.approx(0.0) and p == pytest.approx(1.0)


def test_cbpe_estimates_the_roc_auc_of_calibrated_probabilities():
    rng = np.random.default_rng(0)
    p = rng.beta(1, 5, 100_000)
    y = rng.random(len(p)) < p
    estimated = cbpe(p, threshold=0.3)
    realised = roc_auc_score(y, p)
    low, high = auc_interval(realised, int(y.sum()), int((~y).sum()))
    assert low <= estimated["roc_auc"] <= high
    assert estimated["recall"] == pytest.approx(p[p >= 0.3].sum() / p.sum())
    assert np.isnan(cbpe(np.zeros(0), 0.5)["roc_auc"])


def test_thresholds_parse_and_refuse_nonsense():
    th = Thresholds.parse(["psi=0.05,0.2", "auc-drop=0.01,0.03"])
    assert th.psi == (0.05, 0.2) and th.auc_drop == (0.01, 0.03) and th.ks == (0.1, 0.2)
    for bad in (["psi=0.3,0.1"], ["psi=0.1"], ["nope=0.1,0.2"], ["min_rows=1,2"]):
        with pytest.raises(ParameterError):
            Thresholds.parse(bad)


# ------------------------------------------------------------------------------ tables


@pytest.fixture(scope="module")
def table_model(trained_result):
    return trained_result[1]


def test_an_unchanged_shop_raises_no_alert_across_resamples(table_model):
    reds, ambers = 0, 0
    for seed in range(20):
        result = monitor(table_model, make_customer_table(2000, seed=100 + seed), report=False)
        reds += result.status == "red"
        ambers += result.status == "amber"
    assert reds == 0
    assert ambers <= 2  # amber is a warning: a rare false one is expected at 2,000 rows


def test_a_shifted_generator_is_detected_and_the_cli_exits_3(table_model, tmp_path):
    shifted = make_customer_table(3000, seed=7, engagement=2.0, mobile_share=0.9)
    path = tmp_path / "shifted.parquet"
    shifted.to_parquet(path)
    result = monitor(table_model, path, labels="purchased", out=tmp_path / "mon")
    status = {f["name"]: f["status"] for f in result.features}
    assert result.status == "red"
    assert status["device"] == "red" and status["visits_30d"] == "red"
    assert status["country"] == "green"  # not shifted
    assert result.score["status"] in ("amber", "red")  # more engaged customers score higher
    assert result.score["mean"] > result.score["reference"]["mean"]
    saved = json.loads((tmp_path / "mon" / "monitor.json").read_text())
    assert saved["status"] == "red" and saved["alerts"]
    html = (tmp_path / "mon" / "monitor.html").read_text()
    assert "Alert:" in html and "https://" not in html.split("<script>")[0]

    run = CliRunner().invoke(app, ["monitor", str(table_model), str(path), "--out", str(tmp_path / "cli")])
    assert run.exit_code == 3, run.output
    assert "device" in run.output


def test_realised_performance_needs_labels_and_stays_within_its_interval(table_model, tmp_path):
    fresh = make_customer_table(3000, seed=21)
    path = tmp_path / "fresh.csv"
    fresh.to_csv(path, index=False)
    result = monitor(table_model, path, labels="purchased", report=False)
    perf = result.performance
    assert perf is not None and perf["rows"] == 3000
    low, high = perf["roc_auc_interval"]
    assert low <= perf["roc_auc"] <= high
    assert abs(result.score["estimated"]["roc_auc"] - perf["roc_auc"]) < 0.05
    assert monitor(table_model, path, report=False).performance is None


def test_drift_is_computed_on_every_row_and_scores_on_a_sample(table_model):
    frame = make_customer_table(5000, seed=9)
    result = monitor(table_model, frame, sample_rows=500, report=False)
    assert result.data["rows"] == 5000
    assert 450 <= result.score["sampled"] <= 500  # a Bernoulli sample of about 500 rows
    assert all(f["rows"] + round(f["missing_current"] * 5000) == 5000 for f in result.features)


def test_bad_input_is_one_clear_error(table_model, tmp_path):
    frame = make_customer_table(300, seed=2)
    with pytest.raises(DataError, match="labels column 'outcome'"):
        monitor(table_model, frame, labels="outcome", report=False)
    with pytest.raises(DataError, match="no such file"):
        monitor(table_model, tmp_path / "missing.csv", report=False)
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"this is not parquet at all")
    with pytest.raises(DataError, match="bad.parquet"):
        monitor(table_model, bad, report=False)
    with pytest.raises(DataError, match="no rows"):
        monitor(table_model, frame.head(0), report=False)
    with pytest.raises(ParameterError, match="as-of"):
        monitor(table_model, frame, as_of="2024-01-01", report=False)


def test_unreadable_values_and_a_missing_column_are_reported_not_fatal(table_model):
    frame = make_customer_table(1000, seed=5).astype({"age": "object"})
    frame.loc[:99, "age"] = "unknown"
    frame = frame.drop(columns=["channel"])
    result = monitor(table_model, frame, report=False)
    by_name = {f["name"]: f for f in result.features}
    assert by_name["age"]["unreadable"] == 100
    assert by_name["channel"]["status"] == "red"
    assert "absent" in by_name["channel"]["reasons"][0]
    # the model imputes the missing column; the unreadable ages are quarantined, not scored
    assert (result.score["scored"], result.score["quarantined"]) == (900, 100)


# ------------------------------------------------------------------------------ event logs


@pytest.mark.slow
def test_event_model_monitoring_reads_the_outcome_from_the_log(tmp_path):
    # 3,000 customers: on the 800 of the small shop the 14-day outcome has ~50 positives per
    # cutoff and early stopping leaves a ten-round model whose refit is overconfident.
    from propensity.datasets import generate_shop

    shop = tmp_path / "shop"
    generate_shop(3000, days=120, seed=11, out=shop)
    out = tmp_path / "model"
    train_from_events(
        shop / "events.parquet",
        horizon_days=14,
        cutoffs=4,
        step_days=14,
        lookbacks=(7, 30),
        out=out,
        candidates=["lightgbm"],
        seed=3,
        refit_all=False,  # keep the last cutoff out of the shipped model: it is monitored out of sample
    )
    data_end = pd.Timestamp("2024-01-01") + pd.Timedelta(days=120)
    # the as-of of the last cutoff (the model's test rows): scored out of sample, outcome in the log
    result = monitor(out, shop / "events.parquet", as_of=str((data_end - pd.Timedelta(days=14)).date()))
    perf = result.performance
    assert result.data["kind"] == "event log" and result.data["labels"]
    assert perf is not None and "roc_auc" in perf
    low, high = perf["roc_auc_interval"]
    assert low <= result.score["estimated"]["roc_auc"] <= high  # CBPE within the realised interval
    assert result.data["rows"] == result.performance["rows"]  # the eligible customers, as in training
    late = monitor(out, shop / "events.parquet", report=False)  # at the end: no outcome yet
    assert late.performance is None and "no outcome" in late.data["labels_note"]
