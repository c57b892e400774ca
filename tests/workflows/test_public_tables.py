"""Every labelled table in ../shared/data trains unchanged through the CLI (skips when ../shared is absent).

Quality floors are measured by benchmarks/bench_tables.py; here the point is that each real file,
as published, goes through roles, validation, training and scoring without special code.
"""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from propensity.cli import app
from tests.conftest import shared_file

pytestmark = [pytest.mark.shared, pytest.mark.slow]
runner = CliRunner()
FAST = ["--candidates", "logistic_regression,lightgbm", "--quiet"]


def train(tmp_path, path, target, *extra):
    out = tmp_path / "m"
    result = runner.invoke(app, ["train", str(path), "--target", target, "--out", str(out), *FAST, *extra])
    assert result.exit_code == 0, result.output + result.stderr
    return json.loads((out / "manifest.json").read_text()), out


def roles(manifest):
    return {c["name"]: c["role"] for c in manifest["roles"]["columns"]}


def test_social_network_ads(tmp_path):
    manifest, _ = train(tmp_path, shared_file("social_network_ads", "Social_Network_Ads.csv"), "Purchased")
    assert roles(manifest)["User ID"] == "id" and manifest["input_schema"]["id_column"] == "User ID"
    assert manifest["metrics"]["test"]["roc_auc"] > 0.85


def test_online_shoppers_true_false_booleans(tmp_path):
    path = shared_file("online_shoppers_intention", "online_shoppers_intention.csv.gz")
    manifest, out = train(tmp_path, path, "Revenue")
    r = roles(manifest)
    assert r["Weekend"] == "boolean" and r["VisitorType"] == "categorical" and r["Month"] == "categorical"
    assert manifest["task"]["positive"] == "TRUE"
    assert manifest["metrics"]["test"]["roc_auc"] > 0.9
    scored = runner.invoke(app, ["score", str(out), str(path), "--out", str(tmp_path / "s.parquet")])
    assert scored.exit_code == 0 and "Scored 12,330 of 12,330 rows" in scored.stdout


def test_ecommerce_churn_with_missing_values(tmp_path):
    manifest, _ = train(tmp_path, shared_file("ecommerce_churn", "e_comm.csv"), "Churn")
    r = roles(manifest)
    assert r["CustomerID"] == "id" and r["PreferredLoginDevice"] == "categorical"
    tenure = next(f for f in manifest["input_schema"]["features"] if f["name"] == "Tenure")
    assert not tenure["required"] and tenure["missing_share"] > 0.03  # gaps are imputed, not dropped
    assert manifest["provenance"]["rows_quarantined"] == 0
    assert manifest["metrics"]["test"]["roc_auc"] > 0.9


def test_coil2000_through_the_datasets_command(tmp_path):
    folder = shared_file("coil2000", "ticdata2000.txt.gz").parent
    csv = tmp_path / "coil2000.csv"
    result = runner.invoke(app, ["datasets", "coil2000", str(folder), "--out", str(csv)])
    assert result.exit_code == 0 and "5,822 rows × 86 columns" in result.stdout
    manifest, _ = train(tmp_path, csv, "CARAVAN")
    assert manifest["task"]["positive_rate"] == pytest.approx(348 / 5822, abs=0.005)
    assert manifest["metrics"]["test"]["roc_auc"] > 0.65
