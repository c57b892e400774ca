"""`propensity evaluate` and `propensity score --reasons`, in process like typer's own tests."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest
from typer.testing import CliRunner

from propensity.cli import app
from propensity.errors import ParameterError
from propensity.explain import reason_codes
from propensity.sources import read_table
from propensity.workflows.scoring import score_file

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def assert_user_error(result, pattern: str) -> None:
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error:"), result.stderr
    assert "Traceback" not in result.output + result.stderr
    assert re.search(pattern, " ".join(result.stderr.split())), result.stderr


@pytest.fixture(scope="module")
def fresh_csv(tmp_path_factory):
    from propensity.datasets import make_customer_table

    path = tmp_path_factory.mktemp("eval") / "june.csv"
    make_customer_table(1200, seed=21).to_csv(path, index=False)
    return path


def test_evaluate_writes_report_and_json(trained, fresh_csv, tmp_path):
    _, bundle = trained
    result = invoke(
        "evaluate", bundle, fresh_csv, "--report", tmp_path / "june.html", "--value", "30", "--cost", "2"
    )
    assert result.exit_code == 0, result.output
    assert "Evaluated 1,200 rows" in result.stdout and "ROC-AUC 0." in result.stdout
    ev = json.loads((tmp_path / "june.json").read_text())
    assert ev["kind"] == "evaluation" and ev["datasets"]["evaluation"]["profit"]["source"] == "given"
    html = (tmp_path / "june.html").read_text()
    assert "Evaluation of the purchased model" in html
    assert (
        f'data-metric="evaluation.roc_auc" data-value="{ev["datasets"]["evaluation"]["metrics"]["roc_auc"]}"'
        in html
    )


def test_evaluate_without_the_target_hints_at_the_flag(trained, fresh_csv, tmp_path):
    _, bundle = trained
    frame = pd.read_csv(fresh_csv).rename(columns={"purchased": "converted"})
    frame.to_csv(tmp_path / "x.csv", index=False)
    result = invoke("evaluate", bundle, tmp_path / "x.csv", "--report", tmp_path / "r.html")
    assert_user_error(result, r"no column 'purchased'.*--target COL")
    ok = invoke(
        "evaluate", bundle, tmp_path / "x.csv", "--target", "converted", "--report", tmp_path / "r.html"
    )
    assert ok.exit_code == 0, ok.output


def test_evaluate_single_class_reports_undefined_metrics(trained, fresh_csv, tmp_path):
    _, bundle = trained
    frame = pd.read_csv(fresh_csv)
    frame[frame["purchased"] == 0].to_csv(tmp_path / "neg.csv", index=False)
    result = invoke("evaluate", bundle, tmp_path / "neg.csv", "--report", tmp_path / "neg.html")
    assert result.exit_code == 0, result.output
    assert "ROC-AUC –" in result.stdout
    assert "single outcome" in " ".join(result.stderr.split())
    assert "roc_auc (needs both outcomes" in (tmp_path / "neg.html").read_text()


def test_evaluate_other_columns_lists_missing_and_unexpected(trained, fresh_csv, tmp_path):
    _, bundle = trained
    frame = pd.read_csv(fresh_csv).rename(columns={"visits_30d": "visits"})
    frame.to_csv(tmp_path / "o.csv", index=False)
    result = invoke("evaluate", bundle, tmp_path / "o.csv", "--report", tmp_path / "o.html")
    assert_user_error(result, r"missing column\(s\) 'visits_30d'.*unexpected column\(s\) 'visits'")


def test_evaluate_option_errors(trained, fresh_csv, tmp_path):
    _, bundle = trained
    assert_user_error(
        invoke("evaluate", bundle, fresh_csv, "--report", tmp_path / "r.pdf"), r"must end in \.html"
    )
    assert_user_error(invoke("evaluate", bundle, fresh_csv, "--value", "3"), "--value and --cost go together")
    assert_user_error(invoke("evaluate", bundle, tmp_path / "none.csv"), "File not found")
    assert_user_error(invoke("evaluate", tmp_path / "nomodel", fresh_csv), "does not exist")


def test_score_with_reasons_in_chunks(trained, fresh_csv, tmp_path):
    model, bundle = trained
    result = invoke(
        "score", bundle, fresh_csv, "--out", tmp_path / "s.parquet", "--reasons", "3", "--batch-rows", "250"
    )
    assert result.exit_code == 0, result.output
    scores = read_table(tmp_path / "s.parquet")
    assert list(scores.columns)[-3:] == ["reason_1", "reason_2", "reason_3"]
    assert len(scores) == 1200
    frame = pd.read_csv(fresh_csv)
    expected = [[r.text for r in row] for row in reason_codes(model, frame, k=3)]
    assert scores["reason_1"].tolist() == [row[0] for row in expected]
    assert scores["reason_3"].tolist() == [row[2] if len(row) > 2 else "" for row in expected]
    assert scores["reason_1"].str.contains(r" \([+−]\d+\.\d\d\)$").all()


def test_score_reasons_skip_quarantined_rows(trained, fresh_csv, tmp_path):
    _, bundle = trained
    frame = pd.read_csv(fresh_csv).head(40).astype({"visits_30d": object})
    frame.loc[5, "visits_30d"] = "lots"
    frame.to_csv(tmp_path / "in.csv", index=False)
    summary = score_file(bundle, tmp_path / "in.csv", tmp_path / "out.csv", reasons=2)
    out = pd.read_csv(tmp_path / "out.csv", keep_default_na=False)
    assert summary.rows_scored == 39 and len(out) == 39
    assert (out["reason_1"] != "").all()
    assert frame.loc[5, "customer_id"] not in set(out["customer_id"])
    with pytest.raises(ParameterError, match="'reasons' parameter"):
        score_file(bundle, tmp_path / "in.csv", tmp_path / "out.csv", reasons=-1)
