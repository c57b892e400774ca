"""evaluation.json: every number checked against a direct computation on the same predictions."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

import propensity
from propensity.errors import DataError, SchemaError
from propensity.evaluation import evaluate_training, target_labels, write_evaluation
from propensity.workflows.evaluation import evaluate


@pytest.fixture(scope="module")
def training_eval(trained):
    model, out = trained
    return model, json.loads((out / "evaluation.json").read_text())


def _lift10(y, p):
    k = math.ceil(0.1 * len(y))
    top = np.argsort(-p, kind="stable")[:k]
    return y[top].mean() / y.mean()


def test_train_writes_evaluation_and_report(trained):
    _, out = trained
    assert (out / "evaluation.json").exists() and (out / "report.html").exists()
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["paths"]["report"].endswith("report.html")
    ev = json.loads((out / "evaluation.json").read_text())
    assert ev["schema"] == "propensity-evaluation" and ev["kind"] == "training" and ev["main"] == "test"
    assert set(ev["datasets"]) == {"oof", "test"}


def test_headline_numbers_equal_sklearn_on_the_same_predictions(training_eval, training_run):
    model, ev = training_eval
    run = training_run
    sets = (("test", run.y_test, run.test_proba, run.test_raw), ("oof", run.y_train, run.oof, run.oof_raw))
    for name, y, p, raw in sets:
        m = ev["datasets"][name]["metrics"]
        # ranking figures read the model's order from the raw scores; probability figures the calibrated ones
        assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(y, raw), abs=1e-12)
        assert m["pr_auc"] == pytest.approx(skm.average_precision_score(y, raw), abs=1e-12)
        assert m["lift_top10"] == pytest.approx(_lift10(y, raw), abs=1e-12)
        assert m["brier"] == pytest.approx(skm.brier_score_loss(y, p), abs=1e-12)
        assert m["n"] == len(y) and m["positives"] == int(y.sum())
        assert ev["datasets"][name]["roc"]["auc"] == pytest.approx(m["roc_auc"], abs=1e-6)
    # the bundle's one calibrator keeps the order: on the test set both give the same ranking figures
    assert skm.roc_auc_score(run.y_test, run.test_proba) == pytest.approx(
        skm.roc_auc_score(run.y_test, run.test_raw), abs=1e-12
    )
    assert skm.average_precision_score(run.y_test, run.test_proba) == pytest.approx(
        skm.average_precision_score(run.y_test, run.test_raw), abs=1e-12
    )
    raw = ev["datasets"]["test"]["raw_metrics"]
    assert raw["brier"] == pytest.approx(skm.brier_score_loss(run.y_test, run.test_raw), abs=1e-12)
    # the manifest's test metrics are the same numbers
    assert ev["datasets"]["test"]["metrics"]["roc_auc"] == pytest.approx(
        model.manifest.metrics["test"]["roc_auc"], abs=1e-6
    )


def test_deciles_gain_and_lift_agree(training_eval, training_run):
    _model, ev = training_eval
    y, p = training_run.y_test, training_run.test_proba
    test = ev["datasets"]["test"]
    deciles = test["deciles"]
    assert [d["decile"] for d in deciles] == list(range(1, 11))
    assert sum(d["customers"] for d in deciles) == len(y)
    assert sum(d["buyers"] for d in deciles) == int(y.sum())
    assert deciles[-1]["cumulative_capture"] == pytest.approx(1.0)
    assert deciles[0]["lift"] == pytest.approx(
        test["metrics"]["lift_top10"], abs=1e-6
    )  # 600 rows: top decile = top 10 %
    order = np.argsort(-p, kind="stable")
    assert deciles[1]["buyers"] == int(y[order[60:120]].sum())
    assert [d["max_score"] for d in deciles] == sorted((d["max_score"] for d in deciles), reverse=True)
    gain = test["gain"]
    assert gain["share_contacted"][10] == pytest.approx(0.1)
    assert gain["share_captured"][10] == pytest.approx(deciles[0]["cumulative_capture"], abs=1e-5)
    assert gain["lift"][10] == pytest.approx(deciles[0]["lift"], abs=1e-5)
    assert gain["share_captured"] == sorted(gain["share_captured"])


def test_threshold_sweep_and_confusion(training_eval, training_run):
    model, ev = training_eval
    y, p = training_run.y_test, training_run.test_proba
    test = ev["datasets"]["test"]
    t = model.threshold
    sweep = test["sweep"]
    i = min(range(len(sweep["threshold"])), key=lambda k: abs(sweep["threshold"][k] - round(t, 6)))
    cm = test["metrics"]["confusion"]
    contacted = int((p >= sweep["threshold"][i]).sum())
    assert sweep["contacted"][i] == contacted == cm["tp"] + cm["fp"]
    assert sweep["tp"][i] == int(((p >= t) & (y == 1)).sum()) == cm["tp"]
    assert sweep["precision"][i] == pytest.approx(test["metrics"]["precision"], abs=1e-5)
    assert sweep["recall"][i] == pytest.approx(test["metrics"]["recall"], abs=1e-5)
    assert sweep["f1"][i] == pytest.approx(test["metrics"]["f1"], abs=1e-5)
    assert sweep["threshold"] == sorted(sweep["threshold"])
    assert sweep["contacted"] == sorted(sweep["contacted"], reverse=True)


def test_profit_curve_uses_an_example_when_no_value_was_given(training_eval, training_run):
    model, ev = training_eval
    y, p = training_run.y_test, training_run.test_proba
    pf = ev["datasets"]["test"]["profit"]
    assert model.manifest.policy.kind == "f1" and pf["source"] == "example"
    value, cost = pf["value"], pf["cost"]
    for contacted, buyers, profit in zip(pf["contacted"], pf["buyers"], pf["profit"], strict=True):
        assert profit == pytest.approx(buyers * value - contacted * cost)
    order = np.argsort(-p, kind="stable")
    best_direct = max(value * y[order[:k]].sum() - cost * k for k in range(len(y) + 1))
    assert pf["best"]["profit"] == pytest.approx(best_direct)
    cm = ev["datasets"]["test"]["metrics"]["confusion"]
    assert pf["at_threshold"]["profit"] == pytest.approx(cm["tp"] * value - (cm["tp"] + cm["fp"]) * cost)
    assert pf["contact_all"] == pytest.approx(y.sum() * value - len(y) * cost)


def test_profit_policy_value_and_cost_drive_the_curve(customer_table):
    result = propensity.train(
        customer_table.head(1500),
        target="purchased",
        candidates=["logistic_regression"],
        folds=3,
        seed=1,
        policy="profit",
        value=40,
        cost=3,
    )
    model = result.model
    pf = evaluate_training(model, result.run)["datasets"]["test"]["profit"]
    assert (pf["value"], pf["cost"], pf["source"]) == (40, 3, "policy")
    given = evaluate(model, customer_table.iloc[2000:], value=25, cost=2)["datasets"]["evaluation"]["profit"]
    assert (given["value"], given["cost"], given["source"]) == (25, 2, "given")


def test_calibration_bins_and_histogram(training_eval, training_run):
    _model, ev = training_eval
    test = ev["datasets"]["test"]
    for kind in ("raw", "calibrated"):
        bins = test["calibration"][kind]
        assert sum(b["count"] for b in bins) == len(training_run.y_test)
        means = [b["mean_predicted"] for b in bins]
        assert means == sorted(means)
    observed = sum(b["observed_rate"] * b["count"] for b in test["calibration"]["calibrated"])
    assert observed == pytest.approx(training_run.y_test.sum(), abs=1e-3)
    h = test["histogram"]
    assert sum(h["positives"]) == int(training_run.y_test.sum())
    assert sum(h["negatives"]) == int((training_run.y_test == 0).sum())


def test_slices_match_a_direct_groupby(training_eval, training_run):
    _model, ev = training_eval
    run = training_run
    sl = ev["slices"]
    assert sl["dataset"] == "test" and sl["columns"]
    by_col = {c["column"]: c for c in sl["columns"]}
    assert {"device", "channel", "country", "newsletter"} <= set(by_col)
    device = run.X_test["device"].to_numpy()
    for level in by_col["device"]["levels"]:
        mask = device == level["level"]
        assert level["n"] == int(mask.sum())
        assert level["positives"] == int(run.y_test[mask].sum())
        assert level["roc_auc"] == pytest.approx(
            skm.roc_auc_score(run.y_test[mask], run.test_proba[mask]), abs=1e-6
        )
        assert level["mean_score"] == pytest.approx(run.test_proba[mask].mean(), abs=1e-6)
    assert sum(lv["n"] for lv in by_col["newsletter"]["levels"]) == len(run.y_test)
    assert {lv["level"] for lv in by_col["newsletter"]["levels"]} == {"yes", "no"}


def test_explanations_block(training_eval):
    model, ev = training_eval
    ex = ev["explanations"]
    assert "log-odds" in ex["space"] and "before calibration" in ex["space"]
    names = [r["feature"] for r in ex["importance"]]
    assert sorted(names) == sorted(model.features)
    values = [r["mean_abs"] for r in ex["importance"]]
    assert values == sorted(values, reverse=True)
    assert names[0] in {"cart_adds_30d", "days_since_last_visit", "visits_30d", "orders_lifetime"}
    assert sum(r["share"] for r in ex["importance"]) == pytest.approx(1.0, abs=1e-4)
    assert [e["kind"] for e in ex["examples"]] == ["high", "borderline", "low"]
    high, border, low = ex["examples"]
    assert high["probability"] > border["probability"] > low["probability"]
    assert abs(border["probability"] - model.threshold) <= 0.05
    for e in ex["examples"]:
        total = e["base"] + sum(c["contribution"] for c in e["contributions"]) + e["other"]["contribution"]
        assert total == pytest.approx(e["raw"], abs=1e-4)
        assert e["id"].startswith("C")  # the table's customer_id
    assert len(ex["beeswarm"]) == min(12, len(model.features))
    assert all(len(b["shap"]) == len(b["value"]) == len(b["jitter"]) for b in ex["beeswarm"])


def test_evaluate_new_labelled_data_equals_direct_computation(trained, customer_table):
    model, out = trained
    fresh = propensity.datasets.make_customer_table(1500, seed=11)
    ev = evaluate(out, fresh)  # a bundle path works as well as a model
    p = model.predict_proba(fresh)
    y = fresh["purchased"].to_numpy()
    m = ev["datasets"]["evaluation"]["metrics"]
    assert ev["kind"] == "evaluation" and ev["main"] == "evaluation"
    assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(y, p), abs=1e-9)
    assert m["brier"] == pytest.approx(skm.brier_score_loss(y, p), abs=1e-9)
    assert m["lift_top10"] == pytest.approx(_lift10(y, p), abs=1e-9)
    assert ev["warnings"] == []
    json.dumps(ev, allow_nan=False)  # strict JSON: no NaN anywhere


def test_target_spelled_differently_and_renamed(trained, customer_table):
    model, _ = trained
    fresh = customer_table.iloc[:800].copy()
    fresh["bought"] = np.where(fresh.pop("purchased") == 1, "yes", "no")
    ev = evaluate(model, fresh, target="bought")
    assert ev["datasets"]["evaluation"]["positives"] == int((fresh["bought"] == "yes").sum())
    assert ev["data"]["target_column"] == "bought"


def test_target_labels():
    y, bad = target_labels(pd.Series(["TRUE", "false", None, "maybe", "1"]), "TRUE", "FALSE")
    assert y.tolist()[:2] == [1, 0] and y[4] == 1
    assert bad.tolist() == [False, False, True, True, False]
    y, bad = target_labels(pd.Series(["gold", "silver", "bronze"]), "gold", "rest (silver, bronze)")
    assert y.tolist() == [1, 0, 0] and not bad.any()


def test_missing_target_gives_a_clear_message_with_the_flag(trained, customer_table):
    model, _ = trained
    with pytest.raises(SchemaError, match=r"no column 'purchased'.*--target") as info:
        evaluate(model, customer_table.drop(columns=["purchased"]))
    renamed = customer_table.rename(columns={"purchased": "Purchased_flag"})
    with pytest.raises(SchemaError, match="Did you mean 'Purchased_flag'"):
        evaluate(model, renamed)
    assert "customer_id" in str(info.value)  # lists the columns it has


def test_single_class_says_which_metrics_are_undefined(trained, customer_table, tmp_path):
    model, _ = trained
    only_negatives = customer_table[customer_table["purchased"] == 0]
    ev = evaluate(model, only_negatives)
    m = ev["datasets"]["evaluation"]["metrics"]
    assert m["roc_auc"] is None and m["pr_auc"] is None and m["lift_top10"] is None and m["recall"] is None
    assert set(m["undefined"]) >= {"roc_auc", "pr_auc", "lift_top10", "recall"}
    assert m["brier"] == pytest.approx(
        skm.brier_score_loss(np.zeros(len(only_negatives)), model.predict_proba(only_negatives))
    )
    text = " ".join(ev["warnings"])
    assert "single outcome" in text and "roc_auc" in text
    assert ev["datasets"]["evaluation"]["roc"] is None
    write_evaluation(ev, tmp_path / "e.json")
    from propensity.report import render_report

    html = render_report(ev)
    assert "undefined" in html and "single outcome" in html
    only_positives = evaluate(model, customer_table[customer_table["purchased"] == 1])
    assert only_positives["datasets"]["evaluation"]["metrics"]["lift_top10"] == pytest.approx(1.0)
    render_report(only_positives)


def test_bundle_trained_on_other_columns_lists_missing_and_unexpected(trained, customer_table):
    model, _ = trained
    other = customer_table.rename(columns={"visits_30d": "visits", "cart_adds_30d": "carts"}).assign(extra=1)
    with pytest.raises(SchemaError) as info:
        evaluate(model, other)
    message = str(info.value)
    assert "missing column(s) 'visits_30d', 'cart_adds_30d'" in message
    assert "unexpected column(s) 'visits', 'carts', 'extra'" in message
    # Only optional columns absent: evaluated, and the report says what was imputed.
    ev = evaluate(model, customer_table.drop(columns=["age"]).assign(extra=1))
    assert ev["data"]["imputed_columns"] == ["age"]
    assert any("age" in w and "imputed" in w for w in ev["warnings"])
    assert any("extra" in w for w in ev["warnings"])


def test_bad_rows_and_bad_labels_are_quarantined_not_fatal(trained, customer_table, tmp_path):
    model, _ = trained
    dirty = customer_table.iloc[:500].astype({"visits_30d": object, "purchased": object}).copy()
    dirty.loc[3, "visits_30d"] = "lots"
    dirty.loc[7, "purchased"] = None
    dirty.loc[9, "purchased"] = "maybe"
    ev = evaluate(model, dirty, quarantine_path=tmp_path / "q.csv")
    assert ev["data"]["rows_quarantined"] == 3 and ev["data"]["rows_used"] == 497
    q = pd.read_csv(tmp_path / "q.csv")
    assert q["row"].tolist() == [4, 8, 10]
    assert any("3 of 500 rows were quarantined" in w for w in ev["warnings"])
    with pytest.raises(DataError, match="No usable rows"):
        evaluate(model, dirty.assign(purchased="maybe"))


def test_model_without_training_run_needs_data(trained):
    _, out = trained
    with pytest.raises(propensity.errors.PropensityError, match="evaluate"):
        evaluate_training(propensity.load_model(out), None)


@pytest.mark.slow
def test_a_million_rows_keep_the_report_small(trained, tmp_path):
    """Report and evaluation.json sizes do not grow with rows: aggregates and fixed-size samples."""
    from propensity.report import write_report

    model, _ = trained
    big = propensity.datasets.make_customer_table(1_000_000, seed=5)
    ev = evaluate(model, big)
    assert ev["datasets"]["evaluation"]["n"] == 1_000_000
    path = write_report(ev, tmp_path / "big.html")
    size = path.stat().st_size
    json_size = write_evaluation(ev, tmp_path / "big.json").stat().st_size
    assert size < 10 * 2**20, size
    assert json_size < 2 * 2**20, json_size
    print(f"1M rows: report {size / 2**20:.2f} MiB, evaluation.json {json_size / 2**20:.2f} MiB")


def test_numeric_only_model_slices_by_quartiles(customer_table):
    from propensity.report import render_report

    numeric = customer_table[["visits_30d", "cart_adds_30d", "days_since_last_visit", "purchased"]].head(1500)
    result = propensity.train(
        numeric, target="purchased", candidates=["logistic_regression"], folds=3, seed=1
    )
    ev = evaluate_training(result.model, result.run)
    columns = ev["slices"]["columns"]
    assert columns and all(c["role"] == "numeric (quartiles)" for c in columns)
    assert sum(level["n"] for level in columns[0]["levels"]) == len(result.run.y_test)
    html = render_report(ev)
    assert "numeric (quartiles)" in html
